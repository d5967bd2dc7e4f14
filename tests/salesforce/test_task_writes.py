"""Reading, updating, deleting and restoring Tasks by Id against the practice org, 200 a call."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.task_writes import (
    checked_ids,
    delete_tasks,
    read_tasks,
    undelete_envelope,
    undelete_tasks,
    update_tasks,
)

KEY = "Message_ID__c"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    with PracticeOrg(tmp_path_factory.mktemp("writes") / "practice.db", scenario="non-unique") as org:
        yield org


@pytest.fixture(scope="module")
def conn(org: PracticeOrg) -> OrgConnection:
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


def _create(conn: OrgConnection, count: int, label: str) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [{"attributes": {"type": "Task"}, "Subject": f"{label} {index}",
                    KEY: f"<{label}-{index}@x>"} for index in range(start, min(start + 200, count))]
        results = conn.request("POST", "composite/sobjects", json={"allOrNone": True, "records": records})
        ids += [str(result["id"]) for result in results]
    return ids


def _row(conn: OrgConnection, record_id: str) -> dict[str, Any]:
    rows = list(conn.query_all(f"SELECT Id, {KEY}, IsDeleted FROM Task WHERE Id = '{record_id}'",
                               include_deleted=True))
    return rows[0] if rows else {}


def test_read_tasks__finds_recycle_bin_and_archive(conn: OrgConnection) -> None:
    hidden = list(conn.query_all("SELECT Id, IsDeleted, IsArchived FROM Task WHERE IsDeleted = true "
                                 "OR IsArchived = true", include_deleted=True))
    ids = [str(row["Id"]) for row in hidden]

    found = read_tasks(conn, ids, ["Subject", KEY])

    assert sorted(found) == sorted(ids)
    assert any(values["IsDeleted"] for values in found.values())
    assert any(values["IsArchived"] for values in found.values())
    assert all(KEY in values and "Subject" in values for values in found.values())


def test_read_tasks__purged_task_left_out(conn: OrgConnection, org: PracticeOrg) -> None:
    record_id = _create(conn, 1, "purged-read")[0]
    delete_tasks(conn, [record_id])
    org.empty_recycle_bin([record_id])

    assert read_tasks(conn, [record_id], ["Subject"]) == {}


def test_update_tasks__none_clears_field(conn: OrgConnection) -> None:
    record_id = _create(conn, 1, "clear")[0]

    outcomes = update_tasks(conn, [{"Id": record_id, KEY: None}])

    assert outcomes == {record_id: None}
    assert _row(conn, record_id)[KEY] is None


def test_update_tasks__deleted_task_has_reason(conn: OrgConnection) -> None:
    live, deleted = _create(conn, 2, "update-reason")
    delete_tasks(conn, [deleted])

    outcomes = update_tasks(conn, [{"Id": live, "Subject": "changed"}, {"Id": deleted, "Subject": "changed"}])

    assert outcomes[live] is None
    assert str(outcomes[deleted]).split(":")[0].isupper()


def test_delete_tasks__outcome_per_id(conn: OrgConnection) -> None:
    first, second = _create(conn, 2, "delete")
    delete_tasks(conn, [second])

    outcomes = delete_tasks(conn, [first, second])

    assert outcomes[first] is None
    assert str(outcomes[second]).startswith("ENTITY_IS_DELETED")
    assert _row(conn, first)["IsDeleted"] is True


def test_undelete_tasks__restores_from_bin(conn: OrgConnection) -> None:
    record_id = _create(conn, 1, "restore")[0]
    delete_tasks(conn, [record_id])

    outcomes = undelete_tasks(conn, [record_id])

    assert outcomes == {record_id: None}
    assert _row(conn, record_id)["IsDeleted"] is False


def test_undelete_tasks__token_never_logged(conn: OrgConnection, caplog: pytest.LogCaptureFixture) -> None:
    record_id = _create(conn, 1, "logged")[0]
    delete_tasks(conn, [record_id])
    caplog.set_level(logging.DEBUG)

    undelete_tasks(conn, [record_id, "00T00000000zzzzAAA"])

    assert "Restored" in caplog.text
    assert conn.tokens.access_token not in caplog.text


def test_undelete_tasks__live_task_fails(conn: OrgConnection) -> None:
    record_id = _create(conn, 1, "live")[0]

    outcomes = undelete_tasks(conn, [record_id])

    assert str(outcomes[record_id]).startswith("UNDELETE_FAILED")


def test_undelete_tasks__purged_task_fails(conn: OrgConnection, org: PracticeOrg) -> None:
    record_id = _create(conn, 1, "purged")[0]
    delete_tasks(conn, [record_id])
    org.empty_recycle_bin([record_id])

    outcomes = undelete_tasks(conn, [record_id])

    assert outcomes[record_id] is not None
    assert _row(conn, record_id) == {}


def test_undelete_tasks__expired_session_renewed(conn: OrgConnection, org: PracticeOrg) -> None:
    record_id = _create(conn, 1, "expired")[0]
    delete_tasks(conn, [record_id])
    org.expire_sessions()

    outcomes = undelete_tasks(conn, [record_id])

    assert outcomes == {record_id: None}


def test_undelete_tasks__over_200_in_batches(conn: OrgConnection) -> None:
    ids = _create(conn, 205, "batch")
    assert set(delete_tasks(conn, ids).values()) == {None}

    outcomes = undelete_tasks(conn, ids)

    assert list(outcomes) == ids
    assert set(outcomes.values()) == {None}


def test_checked_ids__rejects_soql_text() -> None:
    with pytest.raises(ValueError, match="is not a Salesforce record Id"):
        checked_ids(["00T000000000001AAA", "x' OR Id != '"])


def test_undelete_envelope__escapes_values() -> None:
    envelope = undelete_envelope("00D!a<b", ["00T000000000001AAA"])

    assert "<urn:sessionId>00D!a&lt;b</urn:sessionId>" in envelope
    assert "<urn:undelete><urn:ids>00T000000000001AAA</urn:ids></urn:undelete>" in envelope
