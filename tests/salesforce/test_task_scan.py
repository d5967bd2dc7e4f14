"""Reading every Task for the duplicate scan: REST queryAll, Bulk API 2.0 queryAll, cancel, renewal."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import description_digest
from backstory_desktop.practice_org.seed import FLAG_FIELD, OUTREACH_USERNAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce import task_scan
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.task_scan import count_tasks, scan_all_tasks

FIELD = "Message_ID__c"


class ProgressLog:
    """Recorder of progress reports that can set a cancel event at the n-th report."""

    def __init__(self, cancel: threading.Event | None = None, cancel_at: int = 0) -> None:
        self.reports: list[tuple[int, int, str]] = []
        self.cancel = cancel
        self.cancel_at = cancel_at

    def __call__(self, done: int, total: int, message: str) -> None:
        self.reports.append((done, total, message))
        if self.cancel is not None and len(self.reports) == self.cancel_at:
            self.cancel.set()

    @property
    def messages(self) -> list[str]:
        return [message for _done, _total, message in self.reports]


def all_task_rows(conn: OrgConnection) -> dict[str, dict[str, Any]]:
    soql = f"SELECT Id, Description, IsDeleted, IsArchived, {FIELD} FROM Task"
    return {row["Id"]: row for row in conn.query_all(soql, include_deleted=True)}


def user_id(org: PracticeOrg, username: str) -> str:
    (user,) = org.store.find_by_field("User", "Username", username, case_sensitive=False)
    return user.id


def scan(conn: OrgConnection, **options: Any) -> list[TaskRecord]:
    return list(scan_all_tasks(conn, FIELD, flag_field=FLAG_FIELD, **options))


def test_count_tasks__includes_recycle_bin_and_archive(admin: OrgConnection) -> None:
    rows = all_task_rows(admin)

    assert count_tasks(admin) == len(rows)
    assert any(row["IsDeleted"] for row in rows.values())
    assert any(row["IsArchived"] for row in rows.values())


def test_scan__rest_reads_every_task(admin: OrgConnection) -> None:
    rows = all_task_rows(admin)

    records = scan(admin, use_bulk=False)

    assert sorted(record.id for record in records) == sorted(rows)
    assert any(record.key is None for record in records)
    assert any(record.is_deleted for record in records)
    assert any(record.is_archived for record in records)
    for record in records:
        assert record.key == rows[record.id][FIELD]


def test_scan__bulk_matches_rest(admin: OrgConnection) -> None:
    by_rest = scan(admin, use_bulk=False)
    by_bulk = scan(admin, use_bulk=True)

    assert sorted(by_bulk, key=lambda record: record.id) == sorted(by_rest, key=lambda record: record.id)


def test_scan__body_kept_only_as_digest(admin: OrgConnection) -> None:
    rows = all_task_rows(admin)

    for use_bulk in (False, True):
        records = scan(admin, use_bulk=use_bulk)
        assert any(record.description_digest for record in records)
        for record in records:
            assert record.description == ""
            assert record.description_digest == description_digest(rows[record.id]["Description"])


def test_scan__writer_names_tool_user_and_flag(admin: OrgConnection, default_org: PracticeOrg) -> None:
    outreach = user_id(default_org, OUTREACH_USERNAME)
    label = f"Outreach ({OUTREACH_USERNAME})"
    enriched = default_org.store.insert_record(
        "Task", {"Subject": "Enriched", FLAG_FIELD: True}, created_by_id=outreach)

    for use_bulk in (False, True):
        records = {record.id: record for record in scan(admin, use_bulk=use_bulk,
                                                         tools_by_user_id={outreach: label})}
        by_tool = [record for record in records.values() if record.created_by_id == outreach]
        assert len(by_tool) > 1
        assert records[enriched.id].writer == f"{label}, enriched by Backstory"
        assert records[enriched.id].created_by_backstory
        assert all(record.writer == label for record in by_tool if record.id != enriched.id)
        others = [record for record in records.values() if record.created_by_id != outreach]
        assert all(record.writer == record.created_by_name for record in others)


def test_scan__no_flag_field_flags_nothing(admin: OrgConnection) -> None:
    records = list(scan_all_tasks(admin, FIELD, flag_field=None, use_bulk=False))

    assert records
    assert not any(record.created_by_backstory for record in records)


def test_scan__bulk_reads_result_sets_by_locator(
    admin: OrgConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = sorted(all_task_rows(admin))
    monkeypatch.setattr(task_scan, "BULK_PAGE_SIZE", 7)
    progress = ProgressLog()

    records = scan(admin, use_bulk=True, progress=progress)

    assert sorted(record.id for record in records) == expected
    read = [done for done, _total, message in progress.reports if message.startswith("Read ")]
    assert read == [min(done, len(expected)) for done in range(7, len(expected) + 7, 7)]


def test_scan__large_org_read_through_bulk(admin: OrgConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = ProgressLog(), ProgressLog()

    scan(admin, progress=small)
    monkeypatch.setattr(task_scan, "BULK_SCAN_THRESHOLD", 1)
    scan(admin, progress=large)

    assert not any("Bulk API job" in message for message in small.messages)
    assert any("Bulk API job" in message for message in large.messages)


def test_scan__cancel_stops_at_next_page(admin: OrgConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    total = count_tasks(admin)
    monkeypatch.setattr(task_scan, "BULK_PAGE_SIZE", 5)
    cancel = threading.Event()
    progress = ProgressLog(cancel, cancel_at=2)  # the job's state, then the first result set
    records: list[TaskRecord] = []

    with pytest.raises(Cancelled):
        for record in scan_all_tasks(admin, FIELD, flag_field=FLAG_FIELD, use_bulk=True,
                                     progress=progress, cancel=cancel):
            records.append(record)

    assert len(records) == 5
    assert len(records) < total


def test_scan__cancel_before_start_reads_nothing(admin: OrgConnection) -> None:
    cancel = threading.Event()
    cancel.set()

    for use_bulk in (False, True):
        with pytest.raises(Cancelled):
            scan(admin, use_bulk=use_bulk, cancel=cancel)


def test_scan__bulk_renews_expired_session(
    admin: OrgConnection, default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = sorted(all_task_rows(admin))
    monkeypatch.setattr(task_scan, "BULK_PAGE_SIZE", 10)
    token_before = admin.tokens.access_token

    def expire_once(done: int, total: int, message: str) -> None:
        if done == 10:
            default_org.expire_sessions()

    records = scan(admin, use_bulk=True, progress=expire_once)

    assert sorted(record.id for record in records) == expected
    assert admin.tokens.access_token != token_before


def test_scan__invalid_field_name_rejected(admin: OrgConnection) -> None:
    with pytest.raises(ValueError):
        list(scan_all_tasks(admin, "Message_ID__c FROM User --", flag_field=None))


def test_scan__rest_pages_renew_and_cancel(admin: OrgConnection, default_org: PracticeOrg) -> None:
    with default_org.store.transaction():
        for number in range(2100):
            default_org.store.insert_record("Task", {"Subject": f"Call {number}"}, created_by_id=None)
    expected = sorted(all_task_rows(admin))
    token_before = admin.tokens.access_token

    def expire_after_first_page(done: int, total: int, message: str) -> None:
        if done == 2000:
            default_org.expire_sessions()

    records = scan(admin, use_bulk=False, progress=expire_after_first_page)
    cancel = threading.Event()
    progress = ProgressLog(cancel, cancel_at=1)
    read: list[TaskRecord] = []
    with pytest.raises(Cancelled):
        for record in scan_all_tasks(admin, FIELD, flag_field=FLAG_FIELD, use_bulk=False,
                                     progress=progress, cancel=cancel):
            read.append(record)

    assert sorted(record.id for record in records) == expected
    assert admin.tokens.access_token != token_before
    assert len(read) == 2000
