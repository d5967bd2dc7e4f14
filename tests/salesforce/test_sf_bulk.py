"""Task upserts through Bulk API 2.0 against the practice org: CSV, results, cancel, faults, K14, K15."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.bulk import (
    NOT_PROCESSED,
    BulkCancelled,
    BulkJobError,
    CountingRequester,
    bulk_upsert,
    check_counts,
    job_results,
    job_state,
    split_error,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import UpsertCancelled, UpsertInterrupted
from backstory_desktop.sync.bulk_apply import (
    BulkUpsertCancelled,
    BulkUpsertInterrupted,
    split_jobs,
    upsert_outcome,
    upsert_with_bulk,
)

FIELD = "Message_ID__c"
TRICKY_DESCRIPTION = 'Hi, "Ann" said ""twice"".\nSecond line, with a comma\r\nand a CRLF line, then ,"'


def tasks_by_key(admin: OrgConnection, keys: list[str]) -> dict[str, dict[str, Any]]:
    quoted = ", ".join(f"'{key}'" for key in keys)
    soql = (f"SELECT Id, {FIELD}, Subject, Description, TaskSubtype FROM Task "
            f"WHERE {FIELD} IN ({quoted})")
    found: dict[str, dict[str, Any]] = {}
    for row in admin.query_all(soql, include_deleted=True):
        assert row[FIELD] not in found, f"two Tasks hold {row[FIELD]}"
        found[row[FIELD]] = row
    return found


def new_task(key: str, subject: str, **fields: Any) -> dict[str, Any]:
    return {FIELD: key, "Subject": subject, "Status": "Completed", "TaskSubtype": "Email", **fields}


@pytest.fixture
def batches_of_two(default_org: PracticeOrg) -> Iterator[None]:
    default_org.bulk_batch_size = 2
    yield
    default_org.bulk_batch_size = 10_000


def cancel_after_first_batch() -> tuple[threading.Event, Any]:
    cancel = threading.Event()

    def progress(done: int, total: int, message: str) -> None:
        if done > 0:
            cancel.set()

    return cancel, progress


# -- bulk_upsert ------------------------------------------------------------------------


def test_bulk_upsert__results_in_order(admin: OrgConnection) -> None:
    keys = [f"<order-{n}@bulk.example>" for n in range(4)]
    bulk_upsert(admin, FIELD, [new_task(keys[1], "Email: first")], poll_seconds=0.01)
    records = [new_task(keys[0], "Email: a"), {FIELD: keys[1], "Subject": "Email: b"},
               new_task(keys[2], "x" * 300), new_task(keys[3], "Email: d")]

    results = bulk_upsert(admin, FIELD, records, poll_seconds=0.01)

    assert [result.key for result in results] == keys
    assert [(r.success, r.created) for r in results] == [
        (True, True), (True, False), (False, False), (True, True)]
    assert results[2].error_code == "STRING_TOO_LONG"
    assert results[2].message and ":" not in results[2].message[-3:]
    assert all(result.processed for result in results)
    stored = tasks_by_key(admin, keys)
    assert sorted(stored) == sorted([keys[0], keys[1], keys[3]])
    assert stored[keys[1]]["Subject"] == "Email: b"
    assert results[0].record_id == stored[keys[0]]["Id"]


def test_bulk_upsert__tricky_description_round_trips(
    admin: OrgConnection,
) -> None:
    key = "<k15,\"quoted\"@bulk.example>"

    [result] = bulk_upsert(admin, FIELD, [new_task(key, "Re: a, \"b\"", Description=TRICKY_DESCRIPTION)],
                           poll_seconds=0.01)

    assert result.success, result.message
    stored = tasks_by_key(admin, [key])[key]
    assert stored["Description"] == TRICKY_DESCRIPTION
    assert stored["Subject"] == 'Re: a, "b"'


def test_bulk_upsert__none_clears_missing_keeps(admin: OrgConnection) -> None:
    unchanged, cleared = "<stays@bulk.example>", "<clears@bulk.example>"
    bulk_upsert(admin, FIELD, [new_task(unchanged, "Email: kept", Description="keep me"),
                               new_task(cleared, "Email: cleared", Description="clear me")],
                poll_seconds=0.01)
    second = [{FIELD: unchanged, "Subject": "Email: kept 2"},
              {FIELD: cleared, "Subject": "Email: cleared 2", "Description": None}]

    results = bulk_upsert(admin, FIELD, second, poll_seconds=0.01)

    assert all(result.success for result in results)
    stored = tasks_by_key(admin, [unchanged, cleared])
    assert stored[unchanged]["Description"] == "keep me"
    assert stored[cleared]["Description"] is None


def test_bulk_upsert__subtype_update_fails(admin: OrgConnection) -> None:
    key = "<k14@bulk.example>"
    bulk_upsert(admin, FIELD, [new_task(key, "Email: first")], poll_seconds=0.01)

    [result] = bulk_upsert(admin, FIELD, [new_task(key, "Email: again")], poll_seconds=0.01)

    assert not result.success
    assert result.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert result.fields == ("TaskSubtype",)
    assert upsert_outcome(result).fields == ("TaskSubtype",)
    assert tasks_by_key(admin, [key])[key]["Subject"] == "Email: first"


def test_bulk_upsert__job_id_before_upload(
    admin: OrgConnection,
) -> None:
    seen: list[tuple[str, str]] = []
    keys = ["<later-1@bulk.example>", "<later-2@bulk.example>"]

    def on_job_created(job_id: str) -> None:
        seen.append((job_id, job_state(admin, job_id)))

    results = bulk_upsert(admin, FIELD, [new_task(key, "Email: later") for key in keys],
                          on_job_created=on_job_created, poll_seconds=0.01)

    [(job_id, state_then)] = seen
    assert state_then == "Open"
    assert job_state(admin, job_id) == "JobComplete"
    assert sorted(job_results(admin, job_id, FIELD), key=lambda r: r.key) == sorted(
        results, key=lambda r: r.key)


@pytest.mark.usefixtures("batches_of_two")
def test_bulk_upsert__cancel_aborts_job(admin: OrgConnection) -> None:
    keys = [f"<cancel-{n}@bulk.example>" for n in range(6)]
    cancel, progress = cancel_after_first_batch()
    jobs: list[str] = []

    with pytest.raises(BulkCancelled) as stopped:
        bulk_upsert(admin, FIELD, [new_task(key, "Email: cancel") for key in keys],
                    on_job_created=jobs.append, progress=progress, cancel=cancel, poll_seconds=0.01)

    processed = [result.key for result in stopped.value.results if result.processed]
    assert job_state(admin, jobs[0]) == "Aborted"
    assert processed == keys[:2]
    assert all(r.error_code == NOT_PROCESSED for r in stopped.value.results[2:])
    assert sorted(tasks_by_key(admin, keys)) == sorted(keys[:2])


def test_bulk_upsert__expired_session_renewed(default_org: PracticeOrg, admin: OrgConnection) -> None:
    default_org.faults = FaultPlan(session_expires_after_calls=1)
    keys = ["<renew-1@bulk.example>", "<renew-2@bulk.example>"]
    try:
        results = bulk_upsert(admin, FIELD, [new_task(key, "Email: renew") for key in keys],
                              poll_seconds=0.01)
    finally:
        default_org.faults = FaultPlan()

    assert all(result.success for result in results)
    assert sorted(tasks_by_key(admin, keys)) == sorted(keys)


@pytest.mark.usefixtures("batches_of_two")
def test_bulk_upsert__poll_errors_retried(
    default_org: PracticeOrg, admin: OrgConnection,
) -> None:
    calm = [new_task(f"<calm-{n}@bulk.example>", "Email: calm") for n in range(7)]
    keys = [f"<poll-{n}@bulk.example>" for n in range(7)]
    faults = FaultPlan(seed=4, server_unavailable_rate=0.3)

    def progress(done: int, total: int, message: str) -> None:
        if message.startswith("Salesforce processed") and default_org.faults != faults:
            default_org.faults = faults

    start = default_org.request_count
    bulk_upsert(admin, FIELD, calm, poll_seconds=0.01)
    calls_without_faults = default_org.request_count - start
    start = default_org.request_count
    try:
        results = bulk_upsert(admin, FIELD, [new_task(key, "Email: poll") for key in keys],
                              progress=progress, poll_seconds=0.01)
    finally:
        default_org.faults = FaultPlan()

    assert default_org.request_count - start > calls_without_faults
    assert all(result.success for result in results)
    assert sorted(tasks_by_key(admin, keys)) == sorted(keys)


def test_bulk_upsert__repeated_key_rejected(admin: OrgConnection) -> None:
    before = admin.api_usage

    with pytest.raises(ValueError, match="share a key"):
        bulk_upsert(admin, FIELD, [new_task("<twice@bulk.example>", "a"),
                                   new_task("<twice@bulk.example>", "b")])

    assert admin.api_usage == before


def test_job_results__open_job_rejected(admin: OrgConnection) -> None:
    job = admin.request("POST", "jobs/ingest", json={
        "object": "Task", "operation": "upsert", "externalIdFieldName": FIELD, "lineEnding": "LF"})

    with pytest.raises(BulkJobError, match="has not ended yet") as refused:
        job_results(admin, job["id"], FIELD)

    assert not refused.value.maybe_written


def test_check_counts__missing_rows() -> None:
    info = {"state": "JobComplete", "numberRecordsProcessed": 3, "numberRecordsFailed": 1}

    check_counts("750x", info, 3, written=2, failed=1, unprocessed=0)
    with pytest.raises(BulkJobError, match="do not account for every record") as caught:
        check_counts("750x", info, 4, written=2, failed=1, unprocessed=0)

    assert caught.value.maybe_written
    assert "4 rows were uploaded" in caught.value.problem.details
    with pytest.raises(BulkJobError, match="do not account for every record"):
        check_counts("750x", info, 3, written=3, failed=0, unprocessed=0)
    check_counts("750x", {**info, "state": "Failed"}, 3, written=0, failed=0, unprocessed=3)


@pytest.mark.parametrize(("text", "code", "message", "fields"), [
    ("STRING_TOO_LONG:Subject: data value too large:Subject", "STRING_TOO_LONG",
     "Subject: data value too large", ("Subject",)),
    ("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
     "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",)),
    ("INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: A, B:A, B",
     "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: A, B", ("A", "B")),
    ("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--", "UNABLE_TO_LOCK_ROW",
     "unable to obtain exclusive access to this record", ()),
    ("something odd happened", None, "something odd happened", ()),
])
def test_split_error__code_message_fields(
    text: str, code: str | None, message: str, fields: tuple[str, ...]
) -> None:
    assert split_error(text) == (code, message, fields)


# -- upsert_with_bulk ------------------------------------------------------------------------


def test_upsert_with_bulk__separate_create_update_jobs(admin: OrgConnection) -> None:
    existing, new = "<k14-existing@bulk.example>", "<k14-new@bulk.example>"
    upsert_with_bulk(admin, FIELD, [new_task(existing, "Email: existing")])
    jobs: list[str] = []
    records = [{FIELD: existing, "Subject": "Email: existing, updated", "Description": "more"},
               new_task(new, "Email: new")]

    outcomes = upsert_with_bulk(admin, FIELD, records, on_job_created=jobs.append)

    assert len(jobs) == 2
    assert [(o.key, o.success, o.created) for o in outcomes] == [(existing, True, False), (new, True, True)]
    stored = tasks_by_key(admin, [existing, new])
    assert stored[existing]["Subject"] == "Email: existing, updated"
    assert stored[new]["TaskSubtype"] == "Email"


def test_upsert_with_bulk__repeated_key_later_job(admin: OrgConnection) -> None:
    key = "<again@bulk.example>"
    jobs: list[str] = []

    outcomes = upsert_with_bulk(admin, FIELD, [{FIELD: key, "Subject": "Email: one"},
                                               {FIELD: key, "Subject": "Email: two"}],
                                on_job_created=jobs.append)

    assert len(jobs) == 2
    assert [(o.success, o.created) for o in outcomes] == [(True, True), (True, False)]
    assert tasks_by_key(admin, [key])[key]["Subject"] == "Email: two"


def test_upsert_with_bulk__failed_job_not_processed(admin: OrgConnection) -> None:
    key = "<unknown-column@bulk.example>"

    [outcome] = upsert_with_bulk(admin, FIELD, [{FIELD: key, "Subject": "s", "No_Such__c": "x"}])

    assert (outcome.success, outcome.error_code) == (False, NOT_PROCESSED)
    assert "No_Such__c" in outcome.message
    assert tasks_by_key(admin, [key]) == {}


@pytest.mark.usefixtures("batches_of_two")
def test_upsert_with_bulk__cancel_keeps_prefix(admin: OrgConnection) -> None:
    keys = [f"<stop-{n}@bulk.example>" for n in range(5)]
    cancel, progress = cancel_after_first_batch()

    with pytest.raises(UpsertCancelled) as stopped:
        upsert_with_bulk(admin, FIELD, [new_task(key, "Email: stop") for key in keys],
                         progress=progress, cancel=cancel)

    assert [outcome.key for outcome in stopped.value.outcomes] == keys[:2]
    assert all(outcome.success for outcome in stopped.value.outcomes)
    assert sorted(tasks_by_key(admin, keys)) == sorted(keys[:2])


def test_upsert_with_bulk__lost_create_writes_nothing(
    default_org: PracticeOrg, admin: OrgConnection,
) -> None:
    keys = ["<lost-1@bulk.example>", "<lost-2@bulk.example>"]
    default_org.faults = FaultPlan(dropped_connection_rate=1.0)
    try:
        with pytest.raises(UpsertInterrupted) as stopped:
            upsert_with_bulk(admin, FIELD, [new_task(key, "Email: lost") for key in keys])
    finally:
        default_org.faults = FaultPlan()

    assert stopped.value.outcomes == []
    assert stopped.value.in_doubt == []
    assert tasks_by_key(admin, keys) == {}


def test_upsert_with_bulk__row_locks_fail_alone(
    default_org: PracticeOrg, admin: OrgConnection,
) -> None:
    keys = [f"<locked-{n}@bulk.example>" for n in range(10)]
    default_org.faults = FaultPlan(seed=5, unable_to_lock_row_rate=0.4)
    try:
        outcomes = upsert_with_bulk(admin, FIELD, [new_task(key, "Email: locked") for key in keys])
    finally:
        default_org.faults = FaultPlan()

    failed = [outcome for outcome in outcomes if not outcome.success]
    assert 0 < len(failed) < len(keys)
    assert {outcome.error_code for outcome in failed} == {"UNABLE_TO_LOCK_ROW"}
    assert sorted(tasks_by_key(admin, keys)) == sorted(o.key for o in outcomes if o.success)


def test_split_jobs__creates_first_no_repeated_key() -> None:
    records = [new_task("<a@x>", "a"), {FIELD: "<b@x>", "Subject": "b"}, new_task("<c@x>", "c"),
               {FIELD: "<b@x>", "Subject": "b again"}, {FIELD: "<d@x>", "Subject": "d"}]

    assert split_jobs(records, FIELD) == [[0, 2], [1], [3, 4]]


def test_split_jobs__large_bodies_start_a_new_job() -> None:
    body = "x" * 11_000_000
    records = [{FIELD: f"<big-{n}@x>", "Description": body} for n in range(3)]

    assert split_jobs(records, FIELD) == [[0], [1], [2]]


def test_bulk_upsert__cancel_during_upload_aborts_open_job(
    default_org: PracticeOrg, admin: OrgConnection,
) -> None:
    keys = [f"<upload-{n}@bulk.example>" for n in range(3)]
    cancel = threading.Event()
    jobs: list[str] = []

    def cancel_while_uploading(done: int, total: int, message: str) -> None:
        if message.startswith("Uploading"):
            default_org.faults = FaultPlan(latency_seconds=0.5)
            threading.Timer(0.2, cancel.set).start()

    try:
        with pytest.raises(BulkCancelled) as stopped:
            bulk_upsert(admin, FIELD, [new_task(key, "Email: upload") for key in keys],
                        on_job_created=jobs.append, progress=cancel_while_uploading, cancel=cancel,
                        poll_seconds=0.01)
    finally:
        default_org.faults = FaultPlan()

    messages = [result.message for result in stopped.value.results]
    assert messages == ["Cancelled before the job was closed."] * 3
    assert not any(result.processed for result in stopped.value.results)
    assert job_state(admin, jobs[0]) == "Aborted"
    assert tasks_by_key(admin, keys) == {}


def test_upsert_with_bulk__failed_update_job_keeps_creates(
    default_org: PracticeOrg, admin: OrgConnection,
) -> None:
    keys = [f"<answers-{n}@bulk.example>" for n in range(4)]
    records = [new_task(key, "Email: answers") for key in keys]
    for index in (1, 3):
        del records[index]["TaskSubtype"]

    def fail_the_second_job(done: int, total: int, message: str) -> None:
        if message.startswith("Uploading") and done > 0:
            default_org.faults = FaultPlan(server_error_rate=1.0)

    try:
        with pytest.raises(BulkUpsertInterrupted) as stopped:
            upsert_with_bulk(admin, FIELD, records, progress=fail_the_second_job)
    finally:
        default_org.faults = FaultPlan()

    assert sorted(stopped.value.outcomes_by_index) == [0, 2]
    assert all(stopped.value.outcomes_by_index[index].created for index in (0, 2))
    assert [outcome.key for outcome in stopped.value.outcomes] == keys[:1]
    assert stopped.value.in_doubt == []


@pytest.mark.usefixtures("batches_of_two")
def test_upsert_with_bulk__cancel_outcomes_by_index(admin: OrgConnection) -> None:
    keys = [f"<byindex-{n}@bulk.example>" for n in range(5)]
    cancel, progress = cancel_after_first_batch()

    with pytest.raises(BulkUpsertCancelled) as stopped:
        upsert_with_bulk(admin, FIELD, [new_task(key, "Email: stop") for key in keys],
                         progress=progress, cancel=cancel)

    assert sorted(stopped.value.outcomes_by_index) == [0, 1]


def test_counting__requests_match_server(default_org: PracticeOrg, admin: OrgConnection) -> None:
    counted = CountingRequester(admin)
    before = default_org.request_count

    results = bulk_upsert(counted, FIELD, [new_task(f"<count-{n}@bulk.example>", "Email: count")
                                           for n in range(5)])

    assert all(result.success for result in results)
    assert counted.requests == default_org.request_count - before
    assert counted.requests <= 10
