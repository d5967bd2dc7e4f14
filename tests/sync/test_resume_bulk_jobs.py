"""A resume never looks up and sends again the rows of a Bulk API job that may still write them."""

from __future__ import annotations

import random
from pathlib import Path

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.bulk import job_csv, job_results
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.journal import ItemState, ItemUpdate, Journal, JournalItem, RunState
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.engine import apply_run
from backstory_desktop.sync.settings import SyncSettings
from tests.sync.mailboxes import write_mbox

FIELD = "Message_ID__c"
# Each GET that gets 503 is sent 4 times (urllib3 retries it 3 times): the limits read before the
# apply, then the job's state. The lookup after them is the 9th request.
FAILED_REQUESTS = 8
UNAVAILABLE_RATE = 0.9
# A job id of the right form that the practice org never issued.
MISSING_JOB_ID = "750000000000999AAA"


def _no_sleep(_seconds: float) -> None:
    return None


def _in_doubt_bulk_call(admin: OrgConnection, mailbox: Path) -> tuple[Journal, str, list[JournalItem]]:
    """Plan a run of the mailbox and set it APPLYING; return its journal, id and planned rows."""
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    plan = enablement.plan_sync(run, mailbox)
    assert plan.run_id is not None and run.journal is not None
    journal, run_id = run.journal, plan.run_id
    journal.set_run_state(run_id, RunState.APPLYING)
    items = journal.items(run_id, [ItemState.PLANNED])
    return journal, run_id, items


def _mark_in_doubt(journal: Journal, run_id: str, items: list[JournalItem], job_id: str | None = None) -> int:
    """Leave the rows IN_DOUBT in one Bulk API call, as a Cancel while its job ran leaves them."""
    call_id = journal.mark_sending(run_id, [item.seq for item in items], "bulk")
    if job_id is not None:
        journal.set_call_job(call_id, job_id)
    journal.record_outcomes(run_id, [
        ItemUpdate(item.seq, ItemState.IN_DOUBT, error_code="NO_RESPONSE", message="cancelled by the user")
        for item in items
    ], call_id=call_id, outcome="cancelled by the user")
    return call_id


def _running_job(admin: OrgConnection, items: list[JournalItem]) -> str:
    """Create, fill and close a Bulk API job of the rows; the practice org runs it when it is read."""
    records = [{**item.row.record, FIELD: item.row.upsert_key} for item in items]
    job = admin.request("POST", "jobs/ingest", json={
        "object": "Task", "operation": "upsert", "externalIdFieldName": FIELD, "contentType": "CSV",
        "lineEnding": "LF", "columnDelimiter": "COMMA"})
    job_id = str(job["id"])
    admin.request_raw("PUT", f"jobs/ingest/{job_id}/batches", data=job_csv(FIELD, records).encode("utf-8"),
                      headers={"Content-Type": "text/csv"})
    admin.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
    return job_id


def _seed_failing_first(count: int, rate: float) -> int:
    """Return a fault seed whose first ``count`` requests draw a fault and whose next one does not.

    The practice org draws each request's fault from random.Random(seed), once per request.
    """
    for seed in range(100_000):
        draws = random.Random(seed)
        if all(draws.random() < rate for _ in range(count)) and draws.random() >= rate:
            return seed
    raise AssertionError("no seed found")


def _live_keys(admin: OrgConnection, prefix: str) -> dict[str, int]:
    rows = admin.query_all(f"SELECT Id, {FIELD} FROM Task WHERE {FIELD} LIKE '<{prefix}-%'")
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row[FIELD])] = counts.get(str(row[FIELD]), 0) + 1
    return counts


def test_resume__unreadable_job_keeps_rows_in_doubt(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    journal, run_id, items = _in_doubt_bulk_call(admin, write_mbox(tmp_path / "a.mbox", 5, "unread"))
    job_id = _running_job(admin, items)
    _mark_in_doubt(journal, run_id, items, job_id)
    default_org.faults = FaultPlan(server_unavailable_rate=UNAVAILABLE_RATE,
                                   seed=_seed_failing_first(FAILED_REQUESTS, UNAVAILABLE_RATE))
    before = default_org.request_count

    result = apply_run(admin, journal, run_id, settings=SyncSettings(max_attempts=1), sleep=_no_sleep)

    default_org.faults = FaultPlan()
    # The job's state could not be read, so nothing was looked up or sent while it may still write.
    assert default_org.request_count - before >= FAILED_REQUESTS
    assert [call["api"] for call in journal.call_history(run_id)] == ["bulk"]
    assert journal.state_counts(run_id) == {ItemState.IN_DOUBT: 5}
    assert result.in_doubt_count == 5
    assert result.stop_error_code == "IN_DOUBT"
    assert journal.open_bulk_jobs(run_id)


def test_resume__unreadable_job_settled_later(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    journal, run_id, items = _in_doubt_bulk_call(admin, write_mbox(tmp_path / "a.mbox", 5, "later"))
    job_id = _running_job(admin, items)
    _mark_in_doubt(journal, run_id, items, job_id)
    default_org.faults = FaultPlan(server_unavailable_rate=UNAVAILABLE_RATE,
                                   seed=_seed_failing_first(FAILED_REQUESTS, UNAVAILABLE_RATE))
    apply_run(admin, journal, run_id, settings=SyncSettings(max_attempts=1), sleep=_no_sleep)
    default_org.faults = FaultPlan()

    result = apply_run(admin, journal, run_id, sleep=_no_sleep)

    job_rows = job_results(admin, job_id, FIELD)
    assert all(row.success and row.created for row in job_rows), job_rows
    assert result.created == 5
    assert journal.state_counts(run_id) == {ItemState.CREATED: 5}
    assert set(_live_keys(admin, "later").values()) == {1}
    assert journal.open_bulk_jobs(run_id) == []


def test_resume__deleted_job_rows_looked_up(admin: OrgConnection, tmp_path: Path) -> None:
    journal, run_id, items = _in_doubt_bulk_call(admin, write_mbox(tmp_path / "a.mbox", 4, "gone"))
    # Bulk API 2.0 deletes a job some days after it ended: reading it then gets 404 NOT_FOUND.
    _mark_in_doubt(journal, run_id, items, MISSING_JOB_ID)

    result = apply_run(admin, journal, run_id, sleep=_no_sleep)

    assert result.stopped_because == ""
    assert result.created == 4
    assert journal.state_counts(run_id) == {ItemState.CREATED: 4}
    assert _live_keys(admin, "gone") == {item.row.upsert_key: 1 for item in items}
    assert journal.open_bulk_jobs(run_id) == []
