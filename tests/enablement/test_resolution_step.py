"""Resolving duplicate groups on the practice org, with a snapshot first, and undoing it from the snapshot."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.core.resolution import FILLABLE_FIELDS, KEY_FIELD_CHOICE, ResolutionChoice
from backstory_desktop.enablement.resolution import (
    apply_resolution,
    groups_for_bulk,
    list_resolutions,
    preview_resolution,
    ran_group_ids,
    summarise_snapshot,
    task_fields,
    undo_lines,
    undo_resolution,
    undo_warnings,
)
from backstory_desktop.enablement.run import usable_flag_field
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed import SCENARIOS
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.task_writes import delete_tasks, read_tasks, update_tasks
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
# The seeded scenarios whose Message-ID field is not Unique, so they contain duplicate groups.
DUPLICATE_SCENARIOS = [name for name in ("non-unique", "duplicates") if name in SCENARIOS]


def _scanned_run(org: PracticeOrg) -> enablement.EnablementRun:
    connection = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=connection)
    # The step fails on a field that is not Unique, but the field is inspected and usable.
    enablement.check_field(run)
    assert run.field_state is not None
    assert run.field_state.exists
    # The step fails while flagged groups remain, so only a missing group count means the scan failed.
    scan = enablement.scan_conflicts(run)
    assert "groups" in scan.details, scan.reason
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

    # The only groups without a key here are keyless clones, which block nothing, so no key is cleared.
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
    for record_id, reason in undo.failed.items():
        assert reason.startswith(f"{KEY} is Unique now, so Task {record_id} was restored without its key")
        assert reason.endswith("keeps.")
        assert "another Task" not in reason
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


def test_resolve__snapshot_contains_touched_tasks(start_org: StartOrg) -> None:
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
    assert f"its values are in the snapshot {outcome.snapshot_path}" in undo.not_in_bin[purged]
    assert undo.failed == {}
    assert load_snapshot(outcome.snapshot_path).status == PARTLY_UNDONE


def test_list_resolutions__purged_tasks_named(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    run = _scanned_run(org)
    preview = preview_resolution(run, _flagged(run))
    outcome = apply_resolution(run, preview)
    deleted = [record_id for plan in preview.plans for record_id in plan.delete_ids]
    org.empty_recycle_bin(deleted)

    summary = list_resolutions(run)[0]

    # The resolution only cleared keys on the Tasks it deleted, so nothing is left to put back.
    assert not summary.undoable
    assert summary.note == (f"The recycle bin no longer contains {len(deleted)} Tasks of this resolution, so "
                            "they cannot come back and undo can only put back the other values; their "
                            f"values are in the snapshot {outcome.snapshot_path}.")


def test_undo_warnings__unique_field_names_keyless_tasks(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    outcome = apply_resolution(run, preview_resolution(run, _flagged(run)))
    snapshot = load_snapshot(outcome.snapshot_path)
    assert undo_warnings(run, snapshot) == []
    fix = enablement.apply_field_fix(run, enablement.plan_field_fix(run, case_sensitive=False))
    assert fix.status is StepStatus.PASSED, fix.reason

    warnings = undo_warnings(run, snapshot)
    undo = undo_resolution(run, outcome.snapshot_id)

    assert warnings == [f"{KEY} is Unique now, so {len(undo.failed)} Tasks will be restored without their "
                        "key, because another Task has the same key."]


def test_ran_group_ids__only_groups_written(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    groups = _flagged(run)
    cancel = threading.Event()
    cancel.set()
    stopped = apply_resolution(run, preview_resolution(run, groups[:1]), cancel=cancel)
    outcome = apply_resolution(run, preview_resolution(run, groups))

    assert ran_group_ids(load_snapshot(stopped.snapshot_path)) == []
    assert ran_group_ids(load_snapshot(outcome.snapshot_path)) == outcome.resolved_group_ids


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


def test_summarise_snapshot__old_snapshot_bin_purged(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("non-unique"))
    outcome = apply_resolution(run, preview_resolution(run, _flagged(run)[:1]))
    snapshot = load_snapshot(outcome.snapshot_path)

    summary = summarise_snapshot(snapshot, now=datetime.now(UTC) + timedelta(days=16))

    assert summary.undoable
    assert summary.note.startswith("Older than 15 days, so the recycle bin has purged the 1 deleted Task:")


def _keyed_and_keyless(run: enablement.EnablementRun) -> tuple[DuplicateGroup, str, str]:
    """Return a flagged group with a keyed and a keyless Task, and those two Ids."""
    for group in _flagged(run):
        keyed = [record.id for record in group.records if record.key and not record.is_deleted]
        keyless = [record.id for record in group.records if not record.key and not record.is_deleted]
        if keyed and keyless:
            return group, keyed[0], keyless[0]
    raise AssertionError("the scenario has no group with a keyed and a keyless Task")


def _key_moved(run: enablement.EnablementRun, survivor_id: str | None = None) -> Any:
    """Resolve every flagged group, the one with a keyless Task keeping that Task and taking the key."""
    group, keyed_id, keyless_id = _keyed_and_keyless(run)
    choice = ResolutionChoice(group.group_id, survivor_id or keyless_id, (*FILLABLE_FIELDS, KEY_FIELD_CHOICE))
    preview = preview_resolution(run, groups_for_bulk(run.groups), {group.group_id: choice})
    return preview, apply_resolution(run, preview), keyed_id, keyless_id


def test_apply__task_changed_since_preview_left_out(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    conn = run.require_connection()
    group, _, keyless_id = _keyed_and_keyless(run)
    choice = ResolutionChoice(group.group_id, keyless_id, (*FILLABLE_FIELDS, KEY_FIELD_CHOICE))
    preview = preview_resolution(run, [group], {group.group_id: choice})
    assert update_tasks(conn, [{"Id": keyless_id, KEY: "<typed-by-hand@example.com>"}]) == {keyless_id: None}
    before = _every_task(conn)

    outcome = apply_resolution(run, preview)
    undo_resolution(run, outcome.snapshot_id)

    assert outcome.resolved_group_ids == []
    assert outcome.failed[group.group_id].startswith(f"Task {keyless_id} changed since the preview")
    assert _every_task(conn) == before


def test_undo__value_changed_since_resolution_left_as_is(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    conn = run.require_connection()
    _, outcome, keyed_id, keyless_id = _key_moved(run)
    assert update_tasks(conn, [{"Id": keyless_id, KEY: "<typed-by-hand@example.com>"}]) == {keyless_id: None}

    undo = undo_resolution(run, outcome.snapshot_id)

    now = read_tasks(conn, [keyed_id, keyless_id], [KEY])
    assert now[keyless_id][KEY] == "<typed-by-hand@example.com>"
    assert undo.left_as_is[keyless_id] == (f"Task {keyless_id}: {KEY} changed since the resolution, so it "
                                           "was left as is.")
    assert now[keyed_id][KEY]
    assert now[keyed_id]["IsDeleted"] is False


def test_undo__survivor_deleted_since_stays_deleted(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    conn = run.require_connection()
    _, outcome, _, keyless_id = _key_moved(run)
    assert delete_tasks(conn, [keyless_id]) == {keyless_id: None}
    snapshot = load_snapshot(outcome.snapshot_path)

    lines = undo_lines(snapshot, read_tasks(conn, list(snapshot.records), [KEY]))
    undo = undo_resolution(run, outcome.snapshot_id)

    assert read_tasks(conn, [keyless_id], [KEY])[keyless_id]["IsDeleted"] is True
    assert keyless_id not in undo.restored
    assert f"+ restore {keyless_id} from the recycle bin" not in lines
    assert f"! Task {keyless_id} was deleted after the resolution, so its {KEY} was left as is." in lines


def test_undo__key_put_back_once_field_unique(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    conn = run.require_connection()
    _, outcome, keyed_id, keyless_id = _key_moved(run)
    assert outcome.failed == {}
    fix = enablement.apply_field_fix(run, enablement.plan_field_fix(run, case_sensitive=False))
    assert fix.status is StepStatus.PASSED, fix.reason
    key = load_snapshot(outcome.snapshot_path).records[keyed_id][KEY]
    # The Task that gets its key back comes first in the file, so undo must not write in file order.
    stored = json.loads(outcome.snapshot_path.read_text(encoding="utf-8"))
    stored["records"] = {keyed_id: stored["records"].pop(keyed_id), **stored["records"]}
    outcome.snapshot_path.write_text(json.dumps(stored), encoding="utf-8")

    undo = undo_resolution(run, outcome.snapshot_id)

    now = read_tasks(conn, [keyed_id, keyless_id], [KEY])
    assert now[keyed_id][KEY] == key
    assert now[keyless_id][KEY] is None
    assert keyed_id not in undo.failed
    assert keyless_id not in undo.failed


def test_undo_lines__only_tasks_the_resolution_wrote(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    _, outcome, keyed_id, keyless_id = _key_moved(run)
    snapshot = load_snapshot(outcome.snapshot_path)

    lines = undo_lines(snapshot)

    plans = snapshot.resolution_plans
    restored = {line.removeprefix("+ restore ").removesuffix(" from the recycle bin")
                for line in lines if line.startswith("+ restore ")}
    # Deleted by the resolution, or in the bin before and restored to put its key back.
    assert restored == {record_id for plan in plans
                        for record_id in (*plan.delete_ids, *plan.undelete_first_ids)
                        if not snapshot.records[record_id]["IsDeleted"] or record_id in plan.clear_key_ids}
    assert restored
    assert f"~ {keyless_id}: {KEY}: '{snapshot.records[keyed_id][KEY]}' -> (empty)" in lines


def test_apply__failed_group_restored_tasks_deleted_again(start_org: StartOrg) -> None:
    org = start_org("duplicates")
    run = _scanned_run(org)
    conn = run.require_connection()
    group = next(group for group in _flagged(run)
                 if any(record.is_deleted and record.key for record in group.records))
    preview = preview_resolution(run, [group])
    restored = [record_id for record_id in preview.plans[0].undelete_first_ids]
    assert restored
    # With this seed the restore goes through, then clearing the key and deleting again meet locked rows.
    org.faults = FaultPlan(unable_to_lock_row_rate=0.5, seed=12)

    outcome = apply_resolution(run, preview)

    org.faults = FaultPlan()
    assert list(outcome.failed) == [group.group_id]
    change = run.changes[-1]
    assert not any(line.startswith(("- delete", "~ ")) for line in change.lines)
    assert [line for line in change.lines if line.startswith("! group")] == [
        f"! group {group.group_id} failed ({outcome.failed[group.group_id]}); it wrote: "
        + ", ".join(f"restored {record_id}" for record_id in restored) + "; Undo reverts these writes"]
    assert "stays restored from the recycle bin" in outcome.failed[group.group_id]
    undo_resolution(run, outcome.snapshot_id)
    now = read_tasks(conn, restored, [KEY])
    assert all(now[record_id]["IsDeleted"] for record_id in restored)


def test_undo__cancel_records_partly_undone(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    outcome = apply_resolution(run, preview_resolution(run, _flagged(run)))
    changes = len(run.changes)
    cancel = threading.Event()

    def cancel_after_restoring(done: int, total: int, text: str) -> None:
        if done == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        undo_resolution(run, outcome.snapshot_id, progress=cancel_after_restoring, cancel=cancel)

    assert load_snapshot(outcome.snapshot_path).status == PARTLY_UNDONE
    assert len(run.changes) == changes + 1
    assert run.changes[-1].summary.startswith(f"Undo of snapshot {outcome.snapshot_id} was cancelled")
    undo = undo_resolution(run, outcome.snapshot_id)
    assert undo.failed == {}
    assert load_snapshot(outcome.snapshot_path).status == UNDONE


def test_apply__snapshot_update_failure_reported(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    preview = preview_resolution(run, _flagged(run)[:1])
    paths: list[Path] = []

    def block_snapshot(done: int, total: int, text: str) -> None:
        if done == total:
            # A folder where the snapshot file was makes replacing the file fail.
            paths[0].unlink()
            (paths[0] / "blocker").mkdir(parents=True)

    def remember(done: int, total: int, text: str) -> None:
        if not paths:
            snapshot_files = sorted((list_resolutions(run)[0].path or Path()).parent.glob("*.json"))
            paths.append(snapshot_files[-1])
        block_snapshot(done, total, text)

    outcome = apply_resolution(run, preview, progress=remember)

    assert outcome.resolved_group_ids == [preview.plans[0].group_id]
    assert outcome.stopped.startswith("The groups were written and the change recorded, but the snapshot "
                                      "could not be updated afterwards")
    assert run.changes[-1].summary.startswith("Resolved 1 duplicate group")


@pytest.mark.parametrize("fault", ["dropped_after_commit_rate", "gateway_error_rate"])
def test_apply__lost_response_partly_written(start_org: StartOrg, fault: str) -> None:
    org = start_org("duplicates")
    run = _scanned_run(org)
    conn = run.require_connection()
    before = _every_task(conn)
    preview = preview_resolution(run, run.groups)
    # With this seed the page is read again and its first writes go through before a call loses its response.
    org.faults = FaultPlan(**{fault: 0.3, "seed": 1})

    outcome = apply_resolution(run, preview)

    org.faults = FaultPlan()
    assert outcome.partly_written
    assert outcome.resolved_group_ids == []
    for group_id, ids in outcome.partly_written.items():
        assert outcome.failed[group_id].startswith("The group may be partly written, because a call failed")
        assert outcome.failed[group_id].endswith(
            f"Undo of snapshot {outcome.snapshot_id} puts back what was written.")
        assert f"? group {group_id} may be partly written; writes were sent for Task {', '.join(ids)}" in (
            run.changes[-1].lines)
    assert "may be partly written" in run.changes[-1].summary
    undo = undo_resolution(run, outcome.snapshot_id)
    assert undo.failed == {}
    after = _every_task(conn)
    assert {record_id: after[record_id][KEY] for record_id in before} == {
        record_id: fields[KEY] for record_id, fields in before.items()}
    assert {record_id: after[record_id]["IsDeleted"] for record_id in before} == {
        record_id: fields["IsDeleted"] for record_id, fields in before.items()}


@pytest.mark.parametrize("faults", [
    FaultPlan(server_unavailable_rate=1.0),
    FaultPlan(dropped_connection_rate=1.0),
    FaultPlan(dropped_after_commit_rate=1.0),
    FaultPlan(gateway_error_rate=1.0, seed=4),  # 504 after the restore was done
], ids=["unavailable", "dropped", "dropped-after-commit", "gateway-timeout"])
def test_undo__restore_fault_then_retry_as_before(start_org: StartOrg, faults: FaultPlan) -> None:
    org = start_org("duplicates")
    run = _scanned_run(org)
    conn = run.require_connection()
    before = _every_task(conn)
    outcome = apply_resolution(run, preview_resolution(run, run.groups))

    def fault_on_restore(done: int, total: int, text: str) -> None:
        # Only the SOAP undelete() call, between these two steps, meets the fault.
        org.faults = faults if text == "Restoring Tasks from the recycle bin" else FaultPlan()

    try:
        with pytest.raises(Exception):  # noqa: B017 - each fault kind raises its own problem
            undo_resolution(run, outcome.snapshot_id, progress=fault_on_restore)
    finally:
        org.faults = FaultPlan()
    assert run.changes[-1].summary.startswith(f"Undo of snapshot {outcome.snapshot_id} stopped because a "
                                              "call failed")
    assert load_snapshot(outcome.snapshot_path).status == PARTLY_UNDONE

    undo = undo_resolution(run, outcome.snapshot_id)

    assert undo.failed == {}
    after = _every_task(conn)
    assert sorted(after) == sorted(before)
    for record_id, fields in before.items():
        for name, value in fields.items():
            assert after[record_id][name] == value, f"{record_id}.{name}"


def test_resolve__survivor_takes_backstory_flag(start_org: StartOrg) -> None:
    run = _scanned_run(start_org("duplicates"))
    conn = run.require_connection()
    flag = usable_flag_field(run)
    assert flag
    group = next(group for group in _flagged(run)
                 if len([record for record in group.records if not record.is_deleted]) == 2)
    survivor_id, other_id = sorted(record.id for record in group.records)
    assert update_tasks(conn, [{"Id": survivor_id, flag: False}, {"Id": other_id, flag: True}]) == {
        survivor_id: None, other_id: None}

    choice = ResolutionChoice(group.group_id, survivor_id)
    preview = preview_resolution(run, [group], {group.group_id: choice})
    outcome = apply_resolution(run, preview)
    resolved = read_tasks(conn, [survivor_id], [flag])[survivor_id][flag]
    undo_resolution(run, outcome.snapshot_id)

    assert f"~ {survivor_id}: {flag}: false -> true (from {other_id})" in preview.lines()
    assert resolved is True
    assert read_tasks(conn, [survivor_id], [flag])[survivor_id][flag] is False


def test_undo__locked_rows_then_retry_as_before(start_org: StartOrg) -> None:
    org = start_org("duplicates")
    run = _scanned_run(org)
    conn = run.require_connection()
    before = _every_task(conn)
    outcome = apply_resolution(run, preview_resolution(run, run.groups))

    def lock_on_restore(done: int, total: int, text: str) -> None:
        # Only the SOAP undelete() call, between these two steps, meets the locked rows.
        org.faults = (FaultPlan(unable_to_lock_row_rate=1.0) if text == "Restoring Tasks from the recycle bin"
                      else FaultPlan())

    try:
        locked = undo_resolution(run, outcome.snapshot_id, progress=lock_on_restore)
    finally:
        org.faults = FaultPlan()
    undo = undo_resolution(run, outcome.snapshot_id)

    assert locked.restored == []
    assert locked.failed
    assert all("UNABLE_TO_LOCK_ROW" in reason for reason in locked.failed.values())
    assert undo.failed == {}
    after = _every_task(conn)
    for record_id, fields in before.items():
        for name, value in fields.items():
            assert after[record_id][name] == value, f"{record_id}.{name}"
