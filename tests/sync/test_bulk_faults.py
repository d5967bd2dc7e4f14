"""Bulk API 2.0 applies survive dropped connections, poll sparingly and keep "#N/A" text."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.bulk import TERMINAL_STATES, job_state
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.journal import ItemState, Journal
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.engine import apply_run
from backstory_desktop.sync.settings import SyncSettings
from tests.sync.mailboxes import write_mbox

FIELD = "Message_ID__c"




def planned(admin: OrgConnection, mailbox: Path) -> tuple[Journal, str]:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    plan = enablement.plan_sync(run, mailbox)
    assert plan.run_id is not None and run.journal is not None
    return run.journal, plan.run_id


def live_tasks(admin: OrgConnection, prefix: str) -> dict[str, list[dict[str, object]]]:
    rows = admin.query_all(f"SELECT Id, Subject, {FIELD} FROM Task WHERE {FIELD} LIKE '<{prefix}-%'")
    found: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        found.setdefault(str(row[FIELD]), []).append(row)
    return found


def no_sleep(_seconds: float) -> None:
    return None


@pytest.mark.parametrize("seed", [3])
def test_bulk__dropped_connections_settled(
    seed: int, default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    journal, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 40, "bdrop"))
    default_org.faults = FaultPlan(dropped_connection_rate=0.3, dropped_after_commit_rate=0.2, seed=seed)

    result = apply_run(admin, journal, run_id, settings=SyncSettings(bulk_threshold=1, max_attempts=30,
                       first_retry_seconds=0.01, max_retry_seconds=0.05), sleep=no_sleep)

    default_org.faults = FaultPlan()
    tasks = live_tasks(admin, "bdrop")
    assert result.stopped_because == ""
    states = journal.state_counts(run_id)
    assert set(states) <= {ItemState.CREATED, ItemState.UPDATED}
    assert sum(states.values()) == 40
    assert len(tasks) == 40
    assert all(len(found) == 1 for found in tasks.values())
    job_ids = [call["job_id"] for call in journal.call_history(run_id) if call["job_id"]]
    assert job_ids
    assert all(job_state(admin, job_id) in TERMINAL_STATES for job_id in job_ids)


def test_bulk__five_records_few_requests(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    journal, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 5, "bpoll"))
    before = default_org.request_count

    result = apply_run(admin, journal, run_id, settings=SyncSettings(bulk_threshold=1))

    used = default_org.request_count - before
    assert result.created == 5
    assert used <= 15
    assert abs(result.api_calls - used) <= 2


def test_bulk__na_text_kept_through_collections(admin: OrgConnection, tmp_path: Path) -> None:
    journal, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 3, "bna", subject="#N/A"))

    result = apply_run(admin, journal, run_id, settings=SyncSettings(bulk_threshold=1))

    assert result.created == 3
    assert {str(row["Subject"]) for found in live_tasks(admin, "bna").values() for row in found} == {"#N/A"}
