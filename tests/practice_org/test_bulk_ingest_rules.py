"""Bulk API 2.0 ingest rules: CSV format, whole-job failures, repeated keys and job ownership.

Each test drives the practice org the way a client does, through simple-salesforce's
``sf.bulk2`` where it can express the request and through plain HTTPS where it cannot
(a header with a byte order mark, mismatched line endings, a second upload).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding
from simple_salesforce.exceptions import SalesforceOperationError

from tests.practice_org.practice_login import Login

FIELD = "Message_ID__c"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def header_of(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


def create_job(login: Login, **settings: str) -> str:
    body = {"object": "Task", "operation": "upsert", "externalIdFieldName": FIELD,
            "contentType": "CSV", **settings}
    response = login.http.post(login.url("jobs/ingest"), headers=login.headers(), json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def upload(login: Login, job_id: str, data: bytes) -> Any:
    return login.http.put(login.url(f"jobs/ingest/{job_id}/batches"), data=data,
                          headers={**login.headers(), "Content-Type": "text/csv"})


def set_state(login: Login, job_id: str, state: str) -> Any:
    return login.http.patch(login.url(f"jobs/ingest/{job_id}"), headers=login.headers(),
                            json={"state": state})


def job_info(login: Login, job_id: str) -> dict[str, Any]:
    response = login.http.get(login.url(f"jobs/ingest/{job_id}"), headers=login.headers())
    assert response.status_code == 200, response.text
    return dict(response.json())


def run_job(login: Login, data: bytes, **settings: str) -> tuple[str, dict[str, Any]]:
    """Create, upload to and close an upsert job, then return its id and polled state."""
    job_id = create_job(login, **settings)
    assert upload(login, job_id, data).status_code == 201
    assert set_state(login, job_id, "UploadComplete").status_code == 200
    return job_id, job_info(login, job_id)


def count_tasks(login: Login, key: str) -> int:
    return int(login.sf.query(f"SELECT COUNT() FROM Task WHERE {FIELD} = '{key}'")["totalSize"])


# -- header and job-level failures ----------------------------------------------------


def test_ingest_header__byte_order_mark_fails_the_job(admin: Login) -> None:
    key = "<bom@practice.example>"
    data = f"\ufeff{FIELD},Subject\n{key},Email: bom\n".encode()

    job_id, info = run_job(admin, data)
    unprocessed = rows_of(admin.sf.bulk2.Task.get_unprocessed_records(job_id))

    assert info["state"] == "Failed"
    assert info["errorMessage"] == f"InvalidBatch : Field name not found : \ufeff{FIELD}"
    assert info["numberRecordsProcessed"] == 0
    assert len(unprocessed) == 1
    assert count_tasks(admin, key) == 0


def test_ingest_header__unknown_column_fails_the_job(admin: Login) -> None:
    key = "<unknown-column@practice.example>"
    records = [{FIELD: key, "Subject": "Email: unknown column", "Nope__c": "x"}]

    with pytest.raises(SalesforceOperationError, match="Field name not found : Nope__c"):
        admin.sf.bulk2.Task.upsert(records=records, external_id_field=FIELD, wait=0)

    assert count_tasks(admin, key) == 0


@pytest.mark.parametrize("field_name", ["Nope__c", "Subject"])
def test_ingest_job__invalid_key_field_is_rejected(admin: Login, field_name: str) -> None:
    response = admin.http.post(admin.url("jobs/ingest"), headers=admin.headers(), json={
        "object": "Task", "operation": "upsert", "externalIdFieldName": field_name,
        "contentType": "CSV"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALIDJOB"
    assert field_name in response.json()[0]["message"]


# -- rows -----------------------------------------------------------------------------


def test_ingest_upsert__repeated_key_fails_every_copy(admin: Login) -> None:
    repeated = "<repeated@practice.example>"
    single = "<single@practice.example>"
    records = [
        {FIELD: repeated, "Subject": "Email: first copy"},
        {FIELD: single, "Subject": "Email: single"},
        {FIELD: repeated, "Subject": "Email: second copy"},
    ]

    summary = admin.sf.bulk2.Task.upsert(records=records, external_id_field=FIELD, wait=0)[0]
    failed = rows_of(admin.sf.bulk2.Task.get_failed_records(summary["job_id"]))

    assert summary["numberRecordsProcessed"] == 3
    assert summary["numberRecordsFailed"] == 2
    assert {row["Subject"] for row in failed} == {"Email: first copy", "Email: second copy"}
    for row in failed:
        assert row["sf__Error"].startswith(
            f"DUPLICATE_VALUE:Duplicate external id specified: {repeated}")
        assert row["sf__Id"] == ""
    assert count_tasks(admin, repeated) == 0
    assert count_tasks(admin, single) == 1


def test_ingest_csv__space_outside_quotes_fails_the_row(admin: Login) -> None:
    quoted = "<space-quoted@practice.example>"
    plain = "<space-plain@practice.example>"
    data = (f'{FIELD},Subject\n"{quoted}", "Email: quoted"\n{plain}, Email: plain\n').encode()

    job_id, info = run_job(admin, data)
    failed = rows_of(admin.sf.bulk2.Task.get_failed_records(job_id))
    subject = admin.sf.query(f"SELECT Subject FROM Task WHERE {FIELD} = '{plain}'")

    assert info["state"] == "JobComplete"
    assert info["numberRecordsFailed"] == 1
    assert failed[0]["sf__Error"].startswith("INVALID_FIELD:A double quote")
    assert count_tasks(admin, quoted) == 0
    # Values are not trimmed: the space after the comma belongs to the value.
    assert subject["records"][0]["Subject"] == " Email: plain"


@pytest.mark.parametrize("delimiter", [ColumnDelimiter.PIPE, ColumnDelimiter.TAB,
                                       ColumnDelimiter.SEMICOLON])
def test_ingest_csv__other_column_delimiters(admin: Login, delimiter: ColumnDelimiter) -> None:
    key = f"<delimiter-{delimiter.value.lower()}@practice.example>"
    records = [{FIELD: key, "Subject": "Email: one, two"}]

    summary = admin.sf.bulk2.Task.upsert(records=records, external_id_field=FIELD,
                                         column_delimiter=delimiter, wait=0)[0]
    subject = admin.sf.query(f"SELECT Subject FROM Task WHERE {FIELD} = '{key}'")

    assert summary["numberRecordsFailed"] == 0
    assert subject["records"][0]["Subject"] == "Email: one, two"


# -- line endings ---------------------------------------------------------------------


def test_ingest_line_ending__crlf_job_reads_crlf_data(admin: Login) -> None:
    key = "<crlf@practice.example>"
    records = [{FIELD: key, "Subject": "Email: crlf"}]

    summary = admin.sf.bulk2.Task.upsert(records=records, external_id_field=FIELD,
                                         line_ending=LineEnding.CRLF, wait=0)[0]
    subject = admin.sf.query(f"SELECT Subject FROM Task WHERE {FIELD} = '{key}'")

    assert summary["numberRecordsFailed"] == 0
    assert subject["records"][0]["Subject"] == "Email: crlf"


@pytest.mark.parametrize(("line_ending", "data"), [
    ("LF", f"{FIELD},Subject\r\n<mixed-lf@practice.example>,Email: mixed\r\n"),
    ("CRLF", f"{FIELD},Subject\n<mixed-crlf@practice.example>,Email: mixed\n"),
])
def test_ingest_line_ending__mismatch_fails_the_job(
    admin: Login, line_ending: str, data: str
) -> None:
    job_id, info = run_job(admin, data.encode(), lineEnding=line_ending)
    unprocessed = admin.sf.bulk2.Task.get_unprocessed_records(job_id)

    assert info["state"] == "Failed"
    assert info["errorMessage"].startswith("InvalidBatch : Field name not found : ")
    assert info["numberRecordsProcessed"] == 0
    assert "Email: mixed" in unprocessed
    assert count_tasks(admin, "<mixed-lf@practice.example>") == 0
    assert count_tasks(admin, "<mixed-crlf@practice.example>") == 0


# -- job states -----------------------------------------------------------------------


def test_ingest_job__second_upload_is_rejected(admin: Login) -> None:
    job_id = create_job(admin)
    first = upload(admin, job_id, f"{FIELD},Subject\n<upload-1@practice.example>,A\n".encode())

    second = upload(admin, job_id, f"{FIELD},Subject\n<upload-2@practice.example>,B\n".encode())

    assert first.status_code == 201
    assert second.status_code == 400
    assert second.json()[0]["errorCode"] == "BULK_API_ERROR"


def test_ingest_job__upload_after_upload_complete_is_rejected(admin: Login) -> None:
    job_id = create_job(admin)
    assert set_state(admin, job_id, "UploadComplete").status_code == 200

    response = upload(admin, job_id, f"{FIELD},Subject\n<late@practice.example>,A\n".encode())

    assert response.status_code == 409
    assert response.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_ingest_results__columns_as_documented(admin: Login) -> None:
    records = [
        {FIELD: "<columns-ok@practice.example>", "Subject": "Email: ok"},
        {FIELD: "<columns-bad@practice.example>", "Subject": "x" * 256},
    ]

    summary = admin.sf.bulk2.Task.upsert(records=records, external_id_field=FIELD, wait=0)[0]
    succeeded = admin.sf.bulk2.Task.get_successful_records(summary["job_id"])
    failed = admin.sf.bulk2.Task.get_failed_records(summary["job_id"])

    # simple-salesforce chooses the order of the uploaded columns; the sf__ columns lead.
    assert header_of(succeeded)[:2] == ["sf__Id", "sf__Created"]
    assert sorted(header_of(succeeded)[2:]) == sorted([FIELD, "Subject"])
    assert header_of(failed)[:2] == ["sf__Id", "sf__Error"]
    assert sorted(header_of(failed)[2:]) == sorted([FIELD, "Subject"])
    assert rows_of(succeeded)[0]["sf__Created"] == "true"


def test_ingest_results__unprocessed_after_abort_has_upload_columns(admin: Login) -> None:
    job_id = create_job(admin)
    key = "<abort-columns@practice.example>"
    assert upload(admin, job_id, f"{FIELD},Subject\n{key},Email: abort\n".encode()).status_code == 201
    assert set_state(admin, job_id, "Aborted").status_code == 200

    unprocessed = admin.sf.bulk2.Task.get_unprocessed_records(job_id)

    assert header_of(unprocessed) == [FIELD, "Subject"]
    assert rows_of(unprocessed) == [{FIELD: key, "Subject": "Email: abort"}]
    assert job_info(admin, job_id)["state"] == "Aborted"


# -- ownership ------------------------------------------------------------------------


def test_ingest_job__other_user_cannot_abort_or_upload(admin: Login, integration: Login) -> None:
    job_id = create_job(admin)

    aborted = set_state(integration, job_id, "Aborted")
    uploaded = upload(integration, job_id, f"{FIELD},Subject\n<other@practice.example>,A\n".encode())
    read = job_info(integration, job_id)

    assert aborted.status_code == 403
    assert aborted.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert uploaded.status_code == 403
    assert read["state"] == "Open"
    assert set_state(admin, job_id, "Aborted").status_code == 200


def test_ingest_job__admin_may_abort_another_users_job(admin: Login, integration: Login) -> None:
    # The integration user cannot see Message_ID__c, so its job inserts instead.
    job_id = create_job(integration, operation="insert", externalIdFieldName="")

    response = set_state(admin, job_id, "Aborted")

    assert response.status_code == 200
    assert response.json()["state"] == "Aborted"
