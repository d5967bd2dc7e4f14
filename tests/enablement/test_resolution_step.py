"""Resolving duplicate groups on the practice org, with a snapshot first, and undoing it from the snapshot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup
from backstory_desktop.enablement.resolution import (
    apply_resolution,
    list_resolutions,
    preview_resolution,
    summarise_snapshot,
    task_fields,
    undo_resolution,
)
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed import SCENARIOS
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.task_writes import update_tasks
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.store.snapshots import (
    PARTLY_APPLIED,
    PARTLY_UNDONE,
    UNDONE,
    SnapshotError,
    load_snapshot,
)
from tests.conftest import StartOrg

KEY = "Message_ID__c"
# Salesforce stamps these on every write, so no undo can put them back.
AUDIT_FIELDS = ("LastModifiedDate", "LastModifiedById", "SystemModstamp")
# The seeded scenarios whose Message-ID field is not Unique, so they hold duplicate groups.
DUPLICATE_SCENARIOS = [name for name in ("non-unique", "duplicates") if name in SCENARIOS]


def _scanned_run(org: PracticeOrg) -> enablement.EnablementRun:
    connection = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=connection)
    # The step fails on a field that is not Unique, but the field is inspected and usable.
    enablement.check_field(run)
    assert run.field_state is not None and run.field_state.exists
    assert enablement.scan_conflicts(run).status is StepStatus.PASSED
    assert run.groups
    return run


def _every_task(conn: OrgConnection) -> dict[str, dict[str, Any]]:
    fields = [name for name in task_fields(conn) if name not in AUDIT_FIELDS]
    rows = conn.query_all(f"SELECT {', '.join(fields)} FROM Task", include_deleted=True)
    return {str(row["Id"]): row for row in rows}


def _flagged(run: enablement.EnablementRun) -> list[DuplicateGroup]:
    return [group for group in run.groups if group.flagged]


@pytest.mark.parametrize("scenario", DUPLICATE_SCENARIOS)
def test_resolve_then_undo__every_task_as_before(start_org: StartOrg, scenario: str) -> None:
    run = _scanned_run(start_org(scenario))
    conn = run.require_connection()
    before = _every_task(conn)

    preview = preview_resolution(run, run.groups)
    outcome = apply_resolution(run, preview)
    resolved = _every_task(conn)
    undo = undo_resolution(run, outcome.snapshot_id)
    after = _every_task(conn)

    # Keyless clones block nothing, so clearing the key on the others has nothing to do.
    idle = [group.group_id for group in run.groups if not any(record.key for record in group.records)]
    assert preview.problems == [f"Group {group_id} needs no change, so it was left out." for group_id in idle]
    assert outcome.failed == {}
    assert sorted(outcome.resolved_group_ids) == sorted(group.group_id for group in run.groups
                                                        if group.group_id not in idle)
    assert resolved != before
    assert undo.failed == {}
    assert undo.not_in_bin == {}
    assert sorted(after) == sorted(before)
    for record_id, fields in before.items():
        for name, value in fields.items():
            assert after[record_id][name] == value, f"{record_id}.{name}"


@pytest.mark.parametrize("scenario", DUPLICATE_SCENARIOS)
def test_resolve__unique_fix_finds_no_blockers(start_org: StartOrg, scenario: str) -> None:
    run = _scanned_run(start_org(scenario))
    assert enablement.plan_field_fix(run, case_sensitive=False).blockers

    outcome = apply_resolution(run, preview_resolution(run, run.groups))
    plan = enablement.plan_field_fix(run, case_sensitive=False)

    assert outcome.failed == {}
    assert plan.blockers == []
    assert plan.can_apply


def test_undo__unique_field_rejects_duplicate_key(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    outcome = apply_resolution(run, preview_resolution(run, _flagged(run)))
    fix = enablement.apply_field_fix(run, enablement.plan_field_fix(run, case_sensitive=False))
    assert fix.status is StepStatus.PASSED, fix.reason

    undo = undo_resolution(run, outcome.snapshot_id)

    assert undo.failed
    assert all("DUPLICATE_VALUE" in reason for reason in undo.failed.values())
    assert load_snapshot(outcome.snapshot_path).status == PARTLY_UNDONE


def test_resolve__deleted_tasks_lose_key(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    conn = run.require_connection()

    preview = preview_resolution(run, _flagged(run))
    apply_resolution(run, preview)
    tasks = _every_task(conn)

    deleted = [record_id for plan in preview.plans for record_id in plan.delete_ids]
    assert deleted
    for record_id in deleted:
        assert tasks[record_id]["IsDeleted"] is True
        assert tasks[record_id][KEY] is None
    for plan in preview.plans:
        assert tasks[plan.survivor_id]["IsDeleted"] is False


def test_resolve__change_recorded_with_lines(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    preview = preview_resolution(run, _flagged(run)[:1])

    outcome = apply_resolution(run, preview)

    change = run.changes[-1]
    assert change.step is Step.CONFLICTS
    assert change.lines == tuple(preview.lines())
    assert outcome.snapshot_id in change.summary


def test_resolve__snapshot_holds_every_touched_task(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    preview = preview_resolution(run, _flagged(run))

    outcome = apply_resolution(run, preview)
    snapshot = load_snapshot(outcome.snapshot_path)

    touched = {record_id for plan in preview.plans for record_id in plan.touched_ids}
    assert touched <= set(snapshot.records)
    for values in snapshot.records.values():
        assert "IsDeleted" in values
        assert KEY in values
        assert "Description" in values
    assert snapshot.status == "applied"
    text = outcome.snapshot_path.read_text(encoding="utf-8")
    tokens = run.require_connection().tokens
    assert tokens.access_token not in text
    assert tokens.refresh_token is None or tokens.refresh_token not in text


def test_preview__changed_key_left_out(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    group = _flagged(run)[0]
    live = next(record for record in group.records if not record.is_deleted)
    update_tasks(run.require_connection(), [{"Id": live.id, KEY: "<changed-after-scan@x>"}])

    preview = preview_resolution(run, _flagged(run))

    assert group.group_id not in [plan.group_id for plan in preview.plans]
    assert len(preview.plans) == len(_flagged(run)) - 1
    assert preview.problems == [f"Group {group.group_id} was left out because the key of Task {live.id} "
                                "changed since the scan; scan again."]


def test_apply__rejected_writes_fail_group(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    run = _scanned_run(org)
    preview = preview_resolution(run, _flagged(run))
    org.faults = FaultPlan(unable_to_lock_row_rate=1.0)

    outcome = apply_resolution(run, preview)

    assert outcome.resolved_group_ids == []
    assert set(outcome.failed) == {plan.group_id for plan in preview.plans}
    assert all("UNABLE_TO_LOCK_ROW" in reason for reason in outcome.failed.values())
    assert load_snapshot(outcome.snapshot_path).status == PARTLY_APPLIED


def test_apply__cancel_writes_nothing(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    conn = run.require_connection()
    preview = preview_resolution(run, _flagged(run))
    before = _every_task(conn)
    cancel = threading.Event()
    cancel.set()

    outcome = apply_resolution(run, preview, cancel=cancel)

    assert outcome.stopped.startswith("The resolution was cancelled")
    assert outcome.resolved_group_ids == []
    assert _every_task(conn) == before
    assert load_snapshot(outcome.snapshot_path).status == PARTLY_APPLIED


def test_undo__purged_task_named(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    run = _scanned_run(org)
    preview = preview_resolution(run, _flagged(run))
    outcome = apply_resolution(run, preview)
    purged = preview.plans[0].delete_ids[0]
    org.empty_recycle_bin([purged])

    undo = undo_resolution(run)

    assert list(undo.not_in_bin) == [purged]
    assert "is no longer in the recycle bin" in undo.not_in_bin[purged]
    assert "Message_ID__c value cannot be put back" in undo.not_in_bin[purged]
    assert undo.failed == {}
    assert load_snapshot(outcome.snapshot_path).status == PARTLY_UNDONE


def test_undo__twice_rejected(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    outcome = apply_resolution(run, preview_resolution(run, _flagged(run)[:1]))
    undo_resolution(run, outcome.snapshot_id)

    with pytest.raises(SnapshotError, match="was undone already"):
        undo_resolution(run, outcome.snapshot_id)
    with pytest.raises(SnapshotError, match="No resolution of this org is left to undo"):
        undo_resolution(run)


def test_list_resolutions__newest_first_with_status(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    groups = _flagged(run)
    first = apply_resolution(run, preview_resolution(run, groups[:1]))
    second = apply_resolution(run, preview_resolution(run, groups[1:2]))
    undo_resolution(run, first.snapshot_id)

    summaries = list_resolutions(run)

    assert [summary.snapshot_id for summary in summaries] == [second.snapshot_id, first.snapshot_id]
    assert [summary.status for summary in summaries] == ["applied", UNDONE]
    assert summaries[0].undoable
    assert not summaries[1].undoable


def test_summarise_snapshot__old_one_says_bin_purged(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    outcome = apply_resolution(run, preview_resolution(run, _flagged(run)[:1]))
    snapshot = load_snapshot(outcome.snapshot_path)

    summary = summarise_snapshot(snapshot, now=datetime.now(UTC) + timedelta(days=16))

    assert summary.undoable
    assert summary.note.startswith("Older than 15 days, so the recycle bin has purged the 1 deleted Tasks")
