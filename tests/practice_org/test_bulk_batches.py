"""Bulk API 2.0 ingest processing: batches, abort part way, create-only fields, #N/A and row locks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.faults import FaultPlan
from tests.practice_org.practice_login import Login
from tests.practice_org.test_bulk_ingest_rules import create_job, job_info, set_state, upload

FIELD = "Message_ID__c"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def csv_of(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def results(login: Login, job_id: str, kind: str) -> list[dict[str, str]]:
    response = login.http.get(login.url(f"jobs/ingest/{job_id}/{kind}"), headers=login.headers())
    assert response.status_code == 200, response.text
    return rows_of(response.text)


def closed_job(login: Login, rows: list[dict[str, str]]) -> str:
    return closed_job_from(login, csv_of(rows))


def closed_job_from(login: Login, data: bytes) -> str:
    job_id = create_job(login, lineEnding="LF")
    assert upload(login, job_id, data).status_code == 201
    assert set_state(login, job_id, "UploadComplete").status_code == 200
    return job_id


def task(login: Login, key: str) -> dict[str, object]:
    soql = f"SELECT Id, Subject, Description, TaskSubtype FROM Task WHERE {FIELD} = '{key}'"
    records = login.sf.query(soql)["records"]
    assert len(records) == 1, records
    return dict(records[0])


@pytest.fixture
def batches_of_two(default_org: PracticeOrg) -> Iterator[None]:
    default_org.bulk_batch_size = 2
    yield
    default_org.bulk_batch_size = 10_000


@pytest.mark.usefixtures("batches_of_two")
def test_ingest_batches__in_progress_until_done(admin: Login) -> None:
    rows = [{FIELD: f"<batch-{n}@bulk.example>", "Subject": f"Email: batch {n}"} for n in range(5)]
    job_id = closed_job(admin, rows)

    seen = [(info["state"], info["numberRecordsProcessed"])
            for info in (job_info(admin, job_id) for _ in range(3))]

    assert seen == [("InProgress", 2), ("InProgress", 4), ("JobComplete", 5)]
    assert len(results(admin, job_id, "successfulResults")) == 5


@pytest.mark.usefixtures("batches_of_two")
def test_ingest_abort__rest_unprocessed(admin: Login) -> None:
    rows = [{FIELD: f"<part-{n}@bulk.example>", "Subject": f"Email: part {n}"} for n in range(5)]
    job_id = closed_job(admin, rows)
    assert job_info(admin, job_id)["state"] == "InProgress"

    aborted = set_state(admin, job_id, "Aborted").json()
    written = results(admin, job_id, "successfulResults")
    unprocessed = results(admin, job_id, "unprocessedrecords")

    assert aborted["state"] == "Aborted"
    assert aborted["numberRecordsProcessed"] == 2
    assert [row[FIELD] for row in written] == [rows[0][FIELD], rows[1][FIELD]]
    assert unprocessed == rows[2:]
    assert admin.sf.query(f"SELECT Id FROM Task WHERE {FIELD} = '{rows[4][FIELD]}'")["totalSize"] == 0


def test_ingest_upsert__subtype_update_fails(admin: Login) -> None:
    key = "<subtype@bulk.example>"
    first = closed_job(admin, [{FIELD: key, "Subject": "Email: subtype", "TaskSubtype": "Email"}])
    assert job_info(admin, first)["numberRecordsFailed"] == 0

    again = closed_job(admin, [{FIELD: key, "Subject": "Email: subtype again", "TaskSubtype": "Email"}])
    info = job_info(admin, again)
    failed = results(admin, again, "failedResults")

    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (1, 1)
    assert failed[0]["sf__Error"].startswith("INVALID_FIELD_FOR_INSERT_UPDATE:")
    assert "TaskSubtype" in failed[0]["sf__Error"]
    assert task(admin, key)["Subject"] == "Email: subtype"


def test_ingest_csv__empty_keeps_na_clears(admin: Login) -> None:
    unchanged, cleared = "<kept@bulk.example>", "<cleared@bulk.example>"
    first = closed_job(admin, [{FIELD: unchanged, "Subject": "Email: kept", "Description": "body"},
                               {FIELD: cleared, "Subject": "Email: cleared", "Description": "body"}])
    assert job_info(admin, first)["state"] == "JobComplete"
    job_id = closed_job(admin, [{FIELD: unchanged, "Subject": "Email: kept 2", "Description": ""},
                                {FIELD: cleared, "Subject": "Email: cleared 2", "Description": "#N/A"}])

    assert job_info(admin, job_id)["numberRecordsFailed"] == 0
    assert task(admin, unchanged)["Description"] == "body"
    assert task(admin, cleared)["Description"] is None


def test_ingest_rows__row_lock_fault(
    default_org: PracticeOrg, admin: Login
) -> None:
    rows = [{FIELD: f"<lock-{n}@bulk.example>", "Subject": f"Email: lock {n}"} for n in range(12)]
    job_id = closed_job(admin, rows)
    default_org.faults = FaultPlan(seed=3, unable_to_lock_row_rate=0.5)
    try:
        info = job_info(admin, job_id)
        failed = results(admin, job_id, "failedResults")
        written = results(admin, job_id, "successfulResults")
    finally:
        default_org.faults = FaultPlan()

    assert 0 < len(failed) < len(rows)
    assert all(row["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:") for row in failed)
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (12, len(failed))
    assert len(written) + len(failed) == len(rows)


def test_ingest_csv__quoted_values_kept(admin: Login) -> None:
    key = '<quoted,"key"@bulk.example>'
    description = 'She said ""no"", then "yes",\nand left.\r\nEnd,"'
    data = csv_of([{FIELD: key, "Subject": 'Re: "plan", v2', "Description": description}])

    job_id = closed_job_from(admin, data)

    assert job_info(admin, job_id)["numberRecordsFailed"] == 0
    stored = task(admin, key.replace("'", "\\'"))
    assert (stored["Subject"], stored["Description"]) == ('Re: "plan", v2', description)

