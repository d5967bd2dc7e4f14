"""Bulk API 2.0 through simple-salesforce's bulk2 client: upsert by Message-ID and queryAll."""

from __future__ import annotations

import csv
import io

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
