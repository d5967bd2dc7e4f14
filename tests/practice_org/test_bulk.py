"""Bulk API 2.0 through simple-salesforce's bulk2 client: upsert by Message-ID and queryAll."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"


@pytest.fixture(scope="module")
def admin(default_org: PracticeOrg) -> Login:
    return login(default_org, default_org.admin_username)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bulk_upsert__creates_updates_and_reports_failures(admin: Login) -> None:
    existing = admin.sf.query(
        f"SELECT {FIELD} FROM Task WHERE {FIELD} != null ORDER BY Id LIMIT 1")["records"][0][FIELD]
    records = [
        {FIELD: "<bulk-new@practice.example>", "Subject": "Email: bulk new"},
        {FIELD: existing, "Subject": "Email: bulk update"},
        {FIELD: "<bulk-bad@practice.example>", "Subject": "x" * 256},
    ]

    summary = admin.sf.bulk2.Task.upsert(records=records, external_id_field=FIELD, wait=0)[0]
    succeeded = rows_of(admin.sf.bulk2.Task.get_successful_records(summary["job_id"]))
    failed = rows_of(admin.sf.bulk2.Task.get_failed_records(summary["job_id"]))

    assert summary["numberRecordsProcessed"] == 3
    assert summary["numberRecordsFailed"] == 1
    assert {row[FIELD]: row["sf__Created"] for row in succeeded} == {
        "<bulk-new@practice.example>": "true", existing: "false"}
    assert failed[0]["sf__Error"].startswith("STRING_TOO_LONG:")


def test_bulk_query_all__includes_archived_tasks(admin: Login) -> None:
    soql = "SELECT Id, IsArchived, Owner.Name FROM Task"

    pages = list(admin.sf.bulk2.Task.query_all(soql, max_records=10, wait=0))
    rows = [row for page in pages for row in rows_of(page)]

    assert len(pages) > 1
    assert any(row["IsArchived"] == "true" for row in rows)
    assert all(row["Owner.Name"] for row in rows)


def create_ingest_job(admin: Login) -> str:
    response = admin.http.post(admin.url("jobs/ingest"), headers=admin.headers(), json={
        "object": "Task", "operation": "upsert", "externalIdFieldName": FIELD,
        "contentType": "CSV", "lineEnding": "LF"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "Open"
    return str(response.json()["id"])


def upload(admin: Login, job_id: str, text: str) -> None:
    response = admin.http.put(admin.url(f"jobs/ingest/{job_id}/batches"), data=text.encode(),
                              headers={**admin.headers(), "Content-Type": "text/csv"})
    assert response.status_code == 201, response.text


def set_state(admin: Login, kind: str, job_id: str, state: str) -> dict[str, object]:
    response = admin.http.patch(admin.url(f"jobs/{kind}/{job_id}"), headers=admin.headers(),
                                json={"state": state})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_bulk_ingest__states_from_open_to_job_complete(admin: Login) -> None:
    job_id = create_ingest_job(admin)
    upload(admin, job_id, f"{FIELD},Subject\n<bulk-states@practice.example>,Email: states\n")

    closed = set_state(admin, "ingest", job_id, "UploadComplete")
    polled = admin.http.get(admin.url(f"jobs/ingest/{job_id}"), headers=admin.headers()).json()

    assert closed["state"] == "UploadComplete"
    assert polled["state"] == "JobComplete"
    assert polled["numberRecordsProcessed"] == 1
    assert polled["numberRecordsFailed"] == 0


def test_bulk_ingest__aborted_job_leaves_rows_unprocessed(admin: Login) -> None:
    key = "<bulk-aborted@practice.example>"
    job_id = create_ingest_job(admin)
    upload(admin, job_id, f"{FIELD},Subject\n{key},Email: aborted\n")
    set_state(admin, "ingest", job_id, "UploadComplete")

    aborted = set_state(admin, "ingest", job_id, "Aborted")
    unprocessed = rows_of(admin.sf.bulk2.Task.get_unprocessed_records(job_id))
    succeeded = rows_of(admin.sf.bulk2.Task.get_successful_records(job_id))

    assert aborted["state"] == "Aborted"
    assert unprocessed == [{FIELD: key, "Subject": "Email: aborted"}]
    assert succeeded == []
    assert admin.sf.query(f"SELECT COUNT() FROM Task WHERE {FIELD} = '{key}'")["totalSize"] == 0


def test_bulk_ingest__completed_job_cannot_be_aborted(admin: Login) -> None:
    job_id = create_ingest_job(admin)
    upload(admin, job_id, f"{FIELD},Subject\n<bulk-done@practice.example>,Email: done\n")
    set_state(admin, "ingest", job_id, "UploadComplete")
    admin.http.get(admin.url(f"jobs/ingest/{job_id}"), headers=admin.headers())

    response = admin.http.patch(admin.url(f"jobs/ingest/{job_id}"), headers=admin.headers(),
                                json={"state": "Aborted"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def create_query_job(admin: Login, soql: str, operation: str = "query") -> dict[str, object]:
    response = admin.http.post(admin.url("jobs/query"), headers=admin.headers(),
                               json={"operation": operation, "query": soql})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_bulk_query__job_starts_upload_complete_and_can_be_aborted(admin: Login) -> None:
    job = create_query_job(admin, "SELECT Id FROM Task")

    aborted = set_state(admin, "query", str(job["id"]), "Aborted")
    results = admin.http.get(admin.url(f"jobs/query/{job['id']}/results"),
                             headers=admin.headers())

    assert job["state"] == "UploadComplete"
    assert aborted["state"] == "Aborted"
    assert results.status_code == 400


def test_bulk_query__locator_pages_and_record_counts(admin: Login) -> None:
    total = admin.sf.query("SELECT COUNT() FROM Task")["totalSize"]
    job = create_query_job(admin, "SELECT Id, Subject FROM Task")
    url = admin.url(f"jobs/query/{job['id']}/results")

    first = admin.http.get(url, headers=admin.headers(), params={"maxRecords": 7})
    rest = admin.http.get(url, headers=admin.headers(),
                          params={"maxRecords": total,
                                  "locator": first.headers["Sforce-Locator"]})

    assert first.headers["Sforce-NumberOfRecords"] == "7"
    assert first.headers["Sforce-Locator"] != "null"
    assert rest.headers["Sforce-Locator"] == "null"
    assert int(rest.headers["Sforce-NumberOfRecords"]) == total - 7
    assert len(rows_of(first.text)) + len(rows_of(rest.text)) == total


def test_bulk_query__query_hides_what_query_all_returns(admin: Login) -> None:
    live = [row for page in admin.sf.bulk2.Task.query("SELECT Id FROM Task", wait=0)
            for row in rows_of(page)]
    everything = [row for page in admin.sf.bulk2.Task.query_all("SELECT Id FROM Task", wait=0)
                  for row in rows_of(page)]

    assert len(live) == admin.sf.query("SELECT COUNT() FROM Task")["totalSize"]
    assert len(everything) > len(live)


@pytest.mark.parametrize("soql", [
    f"SELECT {FIELD}, COUNT(Id) FROM Task GROUP BY {FIELD}",
    "SELECT COUNT() FROM Task",
    "SELECT Id FROM Task LIMIT 5 OFFSET 2",
])
def test_bulk_query__aggregates_and_offset_are_rejected(admin: Login, soql: str) -> None:
    response = admin.http.post(admin.url("jobs/query"), headers=admin.headers(),
                               json={"operation": "query", "query": soql})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALIDJOB"


def test_bulk_query__unknown_field_is_rejected_at_creation(admin: Login) -> None:
    response = admin.http.post(admin.url("jobs/query"), headers=admin.headers(),
                               json={"operation": "query", "query": "SELECT Nope__c FROM Task"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"


def test_job_ids__unique_across_restarts(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as first_start:
        first_admin = login(first_start, first_start.admin_username)
        old_job = create_ingest_job(first_admin)
        query_job = first_admin.http.post(first_admin.url("jobs/query"), headers=first_admin.headers(), json={
            "operation": "query", "query": "SELECT Id FROM Task"}).json()["id"]

    with PracticeOrg(tmp_path / "practice.db") as second_start:
        second_admin = login(second_start, second_start.admin_username)
        new_job = create_ingest_job(second_admin)
        old_read = second_admin.http.get(second_admin.url(f"jobs/ingest/{old_job}"),
                                         headers=second_admin.headers())

    assert new_job not in (old_job, query_job)
    assert old_read.status_code == 404
    assert old_read.json()[0]["errorCode"] == "NOT_FOUND"
