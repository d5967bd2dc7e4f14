"""The sync engine applies a journalled run once, whatever stopped it before, and watches the org's limits."""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.plan import Action, FieldRules, PlanRow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.practice_org.store import format_datetime
from backstory_desktop.salesforce.bulk import bulk_upsert, job_csv, job_results
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.tasks import upsert_batch
from backstory_desktop.store.journal import ItemState, ItemUpdate, Journal, RunState
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.engine import apply_run, retry_queued
from backstory_desktop.sync.settings import SyncResult, SyncSettings
from tests.sync.mailboxes import write_mbox

FIELD = "Message_ID__c"
QUICK = SyncSettings(first_retry_seconds=0.01, max_retry_seconds=0.05)




def planned_run(admin: OrgConnection, mailbox: Path) -> tuple[enablement.EnablementRun, str]:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    plan = enablement.plan_sync(run, mailbox)
    assert plan.run_id is not None
    return run, plan.run_id


def journal_of(run: enablement.EnablementRun) -> Journal:
    assert run.journal is not None
    return run.journal


def live_tasks(admin: OrgConnection, prefix: str) -> dict[str, list[str]]:
    """Return the live Task ids per key for the keys of ``write_mbox(prefix)``."""
    rows = admin.query_all(f"SELECT Id, {FIELD} FROM Task WHERE {FIELD} LIKE '<{prefix}-%'")
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row[FIELD], []).append(row["Id"])
    return found


class Sleeps:
    """An injected sleep that only records how long the engine asked to wait."""

    def __init__(self) -> None:
        self.total = 0.0

    def __call__(self, seconds: float) -> None:
        self.total += seconds


def test_apply__every_row_sent_once(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 450, "once"))
    journal = journal_of(run)

    result = apply_run(admin, journal, run_id)

    assert (result.created, result.updated, result.failed, result.queued) == (450, 0, 0, 0)
    assert result.api_calls == 1 + math.ceil(450 / 200)
    assert journal.run(run_id).state is RunState.FINISHED
    assert journal.state_counts(run_id) == {ItemState.CREATED: 450}
    tasks = live_tasks(admin, "once")
    assert len(tasks) == 450
    assert all(len(ids) == 1 for ids in tasks.values())
    assert [call["items"] for call in journal.call_history(run_id)] == [200, 200, 50]
    assert result.result_files is not None
    assert result.result_files.success.read_text(encoding="utf-8-sig").count("Item Created") == 450


def test_resume__unwritten_sending_rows_sent(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 5, "unsent"))
    journal = journal_of(run)
    journal.set_run_state(run_id, RunState.APPLYING)
    # What a process killed right after committing SENDING leaves behind.
    journal.mark_sending(run_id, [0, 1, 2], "collections")
    assert journal.unfinished_run(admin.org_id) is not None

    result = apply_run(admin, journal, run_id)

    assert result.created == 5
    assert all(len(ids) == 1 for ids in live_tasks(admin, "unsent").values())
    assert len(live_tasks(admin, "unsent")) == 5
    assert journal.unfinished_run(admin.org_id) is None


def test_resume__written_rows_found_not_doubled(
    admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 5, "written"))
    journal = journal_of(run)
    journal.set_run_state(run_id, RunState.APPLYING)
    items = journal.items(run_id, [ItemState.PLANNED], limit=3)
    journal.mark_sending(run_id, [item.seq for item in items], "collections")
    # The call reached Salesforce and committed; the process died before recording the response.
    records = [{**item.row.record, FIELD: item.row.upsert_key} for item in items]
    written = upsert_batch(admin, FIELD, records)

    result = apply_run(admin, journal, run_id)

    tasks = live_tasks(admin, "written")
    assert len(tasks) == 5
    assert all(len(ids) == 1 for ids in tasks.values())
    assert result.created == 5
    assert result.failed == 0
    resolved = {item.seq: item for item in journal.items(run_id, [ItemState.CREATED])}
    assert [resolved[item.seq].record_id for item in items] == [outcome.record_id for outcome in written]


def test_resume__abandoned_apply_continues(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 30, "killed"))
    journal = journal_of(run)
    default_org.faults = FaultPlan(latency_seconds=2.0)
    cancel = threading.Event()
    # A worker thread plays the killed process: it is abandoned mid-call.
    worker = threading.Thread(target=apply_run, args=(admin, journal, run_id), kwargs={"cancel": cancel})
    worker.start()
    _wait_for(lambda: journal.state_counts(run_id).get(ItemState.SENDING, 0) > 0)
    cancel.set()
    worker.join(timeout=5)
    default_org.faults = FaultPlan()
    time.sleep(2.5)  # the abandoned call commits meanwhile

    result = apply_run(admin, journal, run_id)

    tasks = live_tasks(admin, "killed")
    assert len(tasks) == 30
    assert all(len(ids) == 1 for ids in tasks.values())
    assert journal.state_counts(run_id) == {ItemState.CREATED: 30}
    assert result.created == 30
    assert journal.run(run_id).state is RunState.FINISHED


def test_cancel__within_grace_leaves_in_doubt(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 10, "cancel"))
    journal = journal_of(run)
    default_org.faults = FaultPlan(latency_seconds=5.0)
    cancel = threading.Event()
    outcome: list[SyncResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(apply_run(admin, journal, run_id, cancel=cancel)), daemon=True
    )
    worker.start()
    _wait_for(lambda: journal.state_counts(run_id).get(ItemState.SENDING, 0) > 0)

    cancelled_at = time.monotonic()
    cancel.set()
    worker.join(timeout=10)
    took = time.monotonic() - cancelled_at

    assert took <= SyncSettings().cancel_grace_seconds
    (result,) = outcome
    assert isinstance(result, SyncResult)
    assert result.stopped_because == "cancelled by the user"
    states = journal.state_counts(run_id)
    assert states == {ItemState.IN_DOUBT: 10}
    assert journal.run(run_id).state is RunState.STOPPED
    assert journal.unfinished_run(admin.org_id) is not None


def test_budget__low_daily_limit_refused(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 5, "budget"))
    default_org.daily_api_limit = default_org.request_count + 3

    result = apply_run(admin, journal_of(run), run_id)

    assert result.stop_error_code == "API_BUDGET"
    numbers = re.fullmatch(
        r"The sync needs about (\d+) API requests, but the org has (\d+) of its (\d+) daily API "
        r"requests left and this app always leaves (\d+) requests for the integration and other tools: "
        r"apply it once (\d+) or more are left in the org's rolling 24-hour allowance\.",
        result.stopped_because,
    )
    assert numbers is not None, result.stopped_because
    needed, left, _daily, reserve, wanted = (int(number) for number in numbers.groups())
    assert needed > left - reserve
    assert wanted == needed + reserve
    assert result.not_sent == 5
    assert live_tasks(admin, "budget") == {}
    assert journal_of(run).run(run_id).state is RunState.STOPPED


def test_budget__reserve_reached_queues_rest(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 600, "reserve"))
    journal = journal_of(run)

    def other_integration_spends_the_allowance(done: int, total: int, message: str) -> None:
        # After the first upsert, the org has two requests left: the next call reaches the reserve.
        if done == 200:
            default_org.daily_api_limit = default_org.request_count + 2

    result = apply_run(admin, journal, run_id, progress=other_integration_spends_the_allowance)

    assert result.stop_error_code == "API_RESERVE"
    assert "reaches the reserve" in result.stopped_because
    assert result.created == 400
    assert result.queued == 200
    assert {item.error_code for item in journal.queued_items(run_id)} == {"API_RESERVE"}
    assert len(live_tasks(admin, "reserve")) == 400


def test_queue__row_locks_retried_with_back_off(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 40, "locks"))
    default_org.faults = FaultPlan(unable_to_lock_row_rate=0.5, seed=3)
    sleeps = Sleeps()

    result = apply_run(admin, journal_of(run), run_id, settings=SyncSettings(max_attempts=12), sleep=sleeps)

    assert result.created == 40
    assert result.queued == 0
    assert sleeps.total >= SyncSettings().first_retry_seconds
    assert all(len(ids) == 1 for ids in live_tasks(admin, "locks").values())


def test_queue__max_attempts_then_retry(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 8, "queue"))
    journal = journal_of(run)
    default_org.faults = FaultPlan(unable_to_lock_row_rate=1.0)
    sleeps = Sleeps()
    settings = SyncSettings(max_attempts=3)

    first = apply_run(admin, journal, run_id, settings=settings, sleep=sleeps)

    queued = journal.queued_items(run_id)
    assert first.queued == 8
    assert first.created == 0
    assert {item.attempts for item in queued} == {3}
    assert {item.error_code for item in queued} == {"UNABLE_TO_LOCK_ROW"}
    # Back-off of 2 s, then 4 s, between the three attempts.
    assert sleeps.total == pytest.approx(2.0 + 4.0, abs=0.2)
    assert journal.run(run_id).state is RunState.FINISHED
    assert journal.unfinished_run(admin.org_id) is None

    default_org.faults = FaultPlan()
    again = retry_queued(admin, journal, run_id, settings=settings, sleep=sleeps)

    assert again.created == 8
    assert journal.queued_items(run_id) == []
    assert len(live_tasks(admin, "queue")) == 8


def test_retry__in_doubt_rows_out_of_attempts_sent(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 4, "doubt"))
    journal = journal_of(run)
    settings = SyncSettings(max_attempts=2, first_retry_seconds=0.0, max_retry_seconds=0.0)
    # Two calls that got no response, so each row has used its two attempts and is in doubt.
    for _ in range(2):
        call_id = journal.mark_sending(run_id, [0, 1, 2, 3], "collections")
        journal.record_outcomes(run_id, [ItemUpdate(seq, ItemState.IN_DOUBT, error_code="NO_RESPONSE")
                                         for seq in range(4)], call_id=call_id)

    result = retry_queued(admin, journal, run_id, settings=settings, sleep=Sleeps())

    assert result.created == 4
    assert result.queued == 0
    assert journal.queued_items(run_id) == []
    assert len(live_tasks(admin, "doubt")) == 4


def test_queue__unavailable_server_queues_call(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 4, "unavailable"))
    journal = journal_of(run)
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)

    result = apply_run(admin, journal, run_id, settings=QUICK)

    assert result.queued == 4
    assert {item.error_code for item in journal.queued_items(run_id)} == {"SERVER_UNAVAILABLE"}
    default_org.faults = FaultPlan()
    assert live_tasks(admin, "unavailable") == {}

    step = enablement.retry_backfill(run, run_id)

    assert step.status is StepStatus.PASSED
    assert len(live_tasks(admin, "unavailable")) == 4


def test_bulk__threshold_reached_uses_bulk(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 30, "bulk"))
    journal = journal_of(run)

    result = apply_run(admin, journal, run_id, settings=SyncSettings(bulk_threshold=30))

    assert result.created == 30
    (call,) = journal.call_history(run_id)
    assert call["api"] == "bulk"
    assert call["job_id"]
    assert journal.state_counts(run_id) == {ItemState.CREATED: 30}
    assert all(len(ids) == 1 for ids in live_tasks(admin, "bulk").values())


def test_lock__second_start_names_holder(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 3, "locked"))

    with journal_of(run).lock_org(admin.org_id, holder="rita@org.example"):
        step = enablement.resume_sync(run, run_id)

    assert step.status is StepStatus.FAILED
    assert step.details["error_code"] == "RUN_IN_PROGRESS"
    assert "rita@org.example" in step.reason
    assert live_tasks(admin, "locked") == {}


def test_history__runs_and_unfinished_one(admin: OrgConnection, tmp_path: Path) -> None:
    run, first = planned_run(admin, write_mbox(tmp_path / "a.mbox", 3, "history"))
    enablement.apply_sync(run)
    second = enablement.plan_sync(run, write_mbox(tmp_path / "b.mbox", 3, "history2")).run_id
    assert second is not None
    journal_of(run).set_run_state(second, RunState.APPLYING)

    history = enablement.sync_history(run)
    unfinished = enablement.unfinished_sync(run)

    assert [summary.run_id for summary in history] == [second, first]
    assert history[1].state is RunState.FINISHED
    assert history[1].counts[Action.CREATE.value] == 3
    assert history[1].result_folder is not None
    assert unfinished is not None and unfinished.run_id == second


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


@pytest.fixture
def journal() -> Iterator[Journal]:
    opened = Journal.open()
    yield opened
    opened.close()


def journal_run(journal: Journal, admin: OrgConnection, rows: list[PlanRow]) -> str:
    """Record a planned run of these rows, on a key field without a flag field."""
    rules = FieldRules(FIELD, case_sensitive=True)
    run_id = journal.start_run(org_id=admin.org_id, instance_url=admin.instance_url, username=admin.username,
                               source="export.csv", source_kind="csv", rules=rules)
    journal.add_rows(run_id, rows)
    journal.finish_plan(run_id, [])
    return run_id


def create_row(number: int, key: str, **fields: str) -> PlanRow:
    record = {"Subject": f"Message {number}", "Status": "Completed", "TaskSubtype": "Email", **fields}
    return PlanRow(Action.CREATE, f"export.csv, row {number}", key, f"Message {number}", "new",
                   upsert_key=key, record=record)


def test_failure__permanent_error_names_fix(admin: OrgConnection, journal: Journal) -> None:
    rules = FieldRules(FIELD, case_sensitive=True)
    run_id = journal.start_run(org_id=admin.org_id, instance_url=admin.instance_url, username=admin.username,
                               source="export.csv", source_kind="csv", rules=rules)
    record = {"Subject": "Call notes", "Status": "Completed", "TaskSubtype": "Email",
              "WhoId": "003000000000404AAA"}
    journal.add_rows(run_id, [
        PlanRow(Action.CREATE, "export.csv, row 2", "<bad-who@x.example>", "Call notes", "new",
                upsert_key="<bad-who@x.example>", record=record),
        PlanRow(Action.CREATE, "export.csv, row 3", "<good@x.example>", "Call notes", "new",
                upsert_key="<good@x.example>", record={**record, "WhoId": None}),
    ])
    journal.finish_plan(run_id, [])

    result = apply_run(admin, journal, run_id)

    assert (result.created, result.failed, result.queued) == (1, 1, 0)
    (failed,) = journal.items(run_id, [ItemState.FAILED])
    assert failed.error_code == "INVALID_CROSS_REFERENCE_KEY"
    assert failed.message == (
        "invalid cross reference id: the WhoId or OwnerId does not name a record this user can see, "
        "so correct it in the source and plan again."
    )
    assert result.failures_by_code() == {"INVALID_CROSS_REFERENCE_KEY": (1, failed.message)}
    assert journal.run(run_id).state is RunState.FINISHED
    assert result.result_files is not None
    assert "INVALID_CROSS_REFERENCE_KEY" in result.result_files.error.read_text(encoding="utf-8-sig")


def test_in_doubt__dropped_responses_looked_up(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 450, "dropped"))
    journal = journal_of(run)
    default_org.faults = FaultPlan(dropped_after_commit_rate=0.4, seed=3)

    result = apply_run(admin, journal, run_id, settings=SyncSettings(max_attempts=20), sleep=Sleeps())

    default_org.faults = FaultPlan()
    tasks = live_tasks(admin, "dropped")
    assert len(tasks) == 450
    assert all(len(ids) == 1 for ids in tasks.values())
    assert journal.state_counts(run_id) == {ItemState.CREATED: 450}
    assert result.created == 450
    assert result.in_doubt == []
    after_calls = {after for call in journal.call_history(run_id) for _seq, _before, after in call["states"]}
    assert ItemState.IN_DOUBT.value in after_calls


def test_resume__killed_bulk_job_settled(
    admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 12, "bulkkill"))
    journal = journal_of(run)
    journal.set_run_state(run_id, RunState.APPLYING)
    items = journal.items(run_id, [ItemState.PLANNED], limit=8)
    call_id = journal.mark_sending(run_id, [item.seq for item in items], "bulk")
    # The job ran to the end; the process died before it read the results.
    bulk_upsert(admin, FIELD, [{**item.row.record, FIELD: item.row.upsert_key} for item in items],
                on_job_created=lambda job_id: journal.set_call_job(call_id, job_id), poll_seconds=0.05)
    assert journal.open_bulk_jobs(run_id)

    result = apply_run(admin, journal, run_id)

    tasks = live_tasks(admin, "bulkkill")
    assert len(tasks) == 12
    assert all(len(ids) == 1 for ids in tasks.values())
    assert result.created == 12
    assert journal.state_counts(run_id) == {ItemState.CREATED: 12}
    assert journal.open_bulk_jobs(run_id) == []


def test_cancel__slow_lookup_sends_nothing(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 4, "slowlookup"))
    journal = journal_of(run)
    default_org.faults = FaultPlan(latency_seconds=4.0)
    cancel = threading.Event()
    outcome: list[SyncResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(apply_run(admin, journal, run_id, cancel=cancel)), daemon=True
    )
    worker.start()
    # The limits call leaves first; Cancel comes while it waits for its response.
    time.sleep(0.5)

    cancelled_at = time.monotonic()
    cancel.set()
    worker.join(timeout=10)
    took = time.monotonic() - cancelled_at
    default_org.faults = FaultPlan()

    assert took <= SyncSettings().cancel_grace_seconds
    (result,) = outcome
    assert result.stopped_because == "cancelled by the user"
    assert journal.state_counts(run_id) == {ItemState.PLANNED: 4}
    assert journal.call_history(run_id) == []
    assert live_tasks(admin, "slowlookup") == {}


def test_bulk__failed_update_job_keeps_creates(
    default_org: PracticeOrg, admin: OrgConnection, journal: Journal
) -> None:
    rows = []
    for number in range(6):
        key = f"<mixed-{number}@x.example>"
        row = create_row(number, key)
        if number % 2:
            record = {name: value for name, value in row.record.items() if name != "TaskSubtype"}
            row = PlanRow(Action.UPDATE, row.source_ref, key, row.subject, "update", upsert_key=key,
                          record=record)
        rows.append(row)
    run_id = journal_run(journal, admin, rows)

    def fail_the_updates_job(done: int, total: int, message: str) -> None:
        # The creates' job runs first; the updates' job fails from its upload on.
        if message.startswith("Uploading") and done > 0:
            default_org.faults = FaultPlan(server_error_rate=1.0)

    result = apply_run(admin, journal, run_id, settings=SyncSettings(bulk_threshold=1, max_attempts=1),
                       progress=fail_the_updates_job, sleep=Sleeps())

    default_org.faults = FaultPlan()
    states = {item.seq: item.state for item in journal.iter_items(run_id)}
    assert [states[seq] for seq in (0, 2, 4)] == [ItemState.CREATED] * 3
    assert [states[seq] for seq in (1, 3, 5)] == [ItemState.QUEUED] * 3
    assert result.created == 3
    assert len(live_tasks(admin, "mixed")) == 3


def test_cancel__large_run_returns_in_grace(
    default_org: PracticeOrg, admin: OrgConnection, journal: Journal
) -> None:
    body = "A long e-mail body line.\n" * 100
    rows = [create_row(number, f"<large-{number}@x.example>", Description=body) for number in range(20_000)]
    run_id = journal_run(journal, admin, rows)
    default_org.faults = FaultPlan(latency_seconds=5.0)
    cancel = threading.Event()
    outcome: list[SyncResult] = []
    worker = threading.Thread(
        target=lambda: outcome.append(apply_run(admin, journal, run_id, cancel=cancel,
                                                settings=SyncSettings(bulk_threshold=100_000))),
        daemon=True,
    )
    worker.start()
    _wait_for(lambda: journal.state_counts(run_id).get(ItemState.SENDING, 0) > 0, timeout=60)

    cancelled_at = time.monotonic()
    cancel.set()
    worker.join(timeout=30)
    took = time.monotonic() - cancelled_at
    default_org.faults = FaultPlan()

    assert took <= SyncSettings().cancel_grace_seconds + 0.5
    (result,) = outcome
    assert result.stopped_because == "cancelled by the user"
    assert result.in_doubt_count == 200
    assert len(result.in_doubt) == 100
    assert result.result_files is None


def test_resume__abandoned_bulk_job_waited_for(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = planned_run(admin, write_mbox(tmp_path / "a.mbox", 6, "abandoned"))
    journal = journal_of(run)
    journal.set_run_state(run_id, RunState.APPLYING)
    items = journal.items(run_id, [ItemState.PLANNED])
    call_id = journal.mark_sending(run_id, [item.seq for item in items], "bulk")
    records = [{**item.row.record, FIELD: item.row.upsert_key} for item in items]
    job = admin.request("POST", "jobs/ingest", json={
        "object": "Task", "operation": "upsert", "externalIdFieldName": FIELD, "contentType": "CSV",
        "lineEnding": "LF", "columnDelimiter": "COMMA"})
    job_id = job["id"]
    journal.set_call_job(call_id, job_id)
    admin.request_raw("PUT", f"jobs/ingest/{job_id}/batches", data=job_csv(FIELD, records).encode("utf-8"),
                      headers={"Content-Type": "text/csv"})
    admin.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
    # What a Cancel while the job ran leaves: its rows IN_DOUBT, the call closed, the job still running.
    journal.record_outcomes(run_id, [
        ItemUpdate(item.seq, ItemState.IN_DOUBT, error_code="NO_RESPONSE", message="cancelled by the user")
        for item in items
    ], call_id=call_id, outcome="cancelled by the user")
    default_org.bulk_batch_size = 2

    result = apply_run(admin, journal, run_id)

    job_rows = job_results(admin, job_id, FIELD)
    assert all(row.success and row.created for row in job_rows), job_rows
    assert result.created == 6
    written = {item.record_id for item in journal.items(run_id, [ItemState.CREATED])}
    assert written == {row.record_id for row in job_rows}
    assert all(len(ids) == 1 for ids in live_tasks(admin, "abandoned").values())
    assert journal.open_bulk_jobs(run_id) == []


def test_resume__other_users_task_not_ours(
    default_org: PracticeOrg, admin: OrgConnection, journal: Journal
) -> None:
    key = "<theirs@x.example>"
    run_id = journal_run(journal, admin, [create_row(1, key)])
    journal.set_run_state(run_id, RunState.APPLYING)
    journal.mark_sending(run_id, [0], "collections")
    # The call got no response; meanwhile the cadence tool's user wrote the key.
    cadence = connect_practice_org(default_org.base_url, default_org.ca_bundle,
                                   "outreach@practice.backstory.example", default_org.client_id)
    (theirs,) = upsert_batch(cadence, FIELD, [{"Subject": "Their copy", "Status": "Completed", FIELD: key}])

    result = apply_run(admin, journal, run_id)

    assert (result.created, result.updated) == (0, 1)
    (item,) = journal.items(run_id, [ItemState.UPDATED])
    assert item.record_id == theirs.record_id
    assert item.row.action is Action.UPDATE


def test_resume__own_old_task_not_ours(
    default_org: PracticeOrg, admin: OrgConnection, journal: Journal
) -> None:
    key = "<old-own@x.example>"
    (old,) = upsert_batch(admin, FIELD, [{"Subject": "Logged by hand", "Status": "Completed", FIELD: key}])
    # The sync user wrote this Task a day before the run, as a hand-logged e-mail.
    with sqlite3.connect(default_org.db_path) as database:
        database.execute("UPDATE records SET created_date = ? WHERE id = ?",
                         (format_datetime(datetime.now(UTC) - timedelta(days=1)), old.record_id))
    run_id = journal_run(journal, admin, [create_row(1, key, Description="From the sync")])
    journal.set_run_state(run_id, RunState.APPLYING)
    journal.mark_sending(run_id, [0], "collections")

    result = apply_run(admin, journal, run_id)

    # Created long before the call started, so the call did not write it: it is filled as an update.
    assert (result.created, result.updated) == (0, 1)
    (item,) = journal.items(run_id, [ItemState.UPDATED])
    assert item.record_id == old.record_id
    assert item.row.action is Action.UPDATE


def test_apply__other_org_refused(admin: OrgConnection, journal: Journal) -> None:
    rules = FieldRules(FIELD, case_sensitive=True)
    run_id = journal.start_run(org_id="00D000000000001AAA", instance_url=admin.instance_url,
                               username=admin.username, source="export.csv", source_kind="csv", rules=rules)
    journal.add_rows(run_id, [create_row(1, "<other-org@x.example>")])
    journal.finish_plan(run_id, [])

    with pytest.raises(ValueError, match="belongs to org 00D000000000001AAA, not to the connected org"):
        apply_run(admin, journal, run_id)

    assert journal.state_counts(run_id) == {ItemState.PLANNED: 1}


def test_apply__unknown_org_refused(admin: OrgConnection, journal: Journal) -> None:
    run_id = journal_run(journal, admin, [create_row(1, "<unknown-org@x.example>")])
    admin.org_id = ""

    with pytest.raises(ValueError, match="The connection's org is unknown"):
        apply_run(admin, journal, run_id)

    assert journal.state_counts(run_id) == {ItemState.PLANNED: 1}


def test_failure__field_security_not_key_taken(admin: OrgConnection, journal: Journal) -> None:
    run_id = journal_run(journal, admin, [create_row(1, "<fls@x.example>", CreatedById=admin.user_id)])

    result = apply_run(admin, journal, run_id)

    (failed,) = journal.items(run_id, [ItemState.FAILED])
    assert failed.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert "field-level security" in failed.message
    assert "deleted Task" not in failed.message
    assert result.failed == 1


def test_result_files__beside_the_journal(admin: OrgConnection, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "rehearsal" / "journal.sqlite3")
    try:
        run_id = journal_run(journal, admin, [create_row(1, "<beside@x.example>")])

        result = apply_run(admin, journal, run_id)
    finally:
        journal.close()

    assert result.result_files is not None
    assert result.result_files.folder == tmp_path / "rehearsal" / "results" / run_id
    assert result.result_files.success.exists()
