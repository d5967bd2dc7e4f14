"""Platform rules of writes, each driven through simple-salesforce as the product drives them."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import format_external_id, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"


def upsert(client: Login, records: list[dict[str, Any]], field: str = FIELD,
           all_or_none: bool = False) -> Any:
    payload = {"allOrNone": all_or_none,
               "records": [{"attributes": {"type": "Task"}, **record} for record in records]}
    return client.sf.restful(f"composite/sobjects/Task/{field}", method="PATCH", json=payload)


def count_with_key(client: Login, key: str, field: str = FIELD) -> int:
    soql = format_soql(f"SELECT Id FROM Task WHERE {field} = {{}}", key)
    return int(client.sf.query_all(soql, include_deleted=True)["totalSize"])


def inactive_user_id(client: Login) -> str:
    rows = client.sf.query("SELECT Id FROM User WHERE IsActive = false")["records"]
    return str(rows[0]["Id"])


def test_collections_upsert__repeated_key_fails_every_copy(admin: Login) -> None:
    key = "<twice@practice.example>"

    results = upsert(admin, [{FIELD: key, "Subject": "Email: one"},
                             {FIELD: key, "Subject": "Email: two"},
                             {FIELD: "<once@practice.example>", "Subject": "Email: three"}])

    for result in results[:2]:
        assert result["success"] is False
        assert result["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
        assert key in result["errors"][0]["message"]
    assert results[2]["success"] is True
    assert count_with_key(admin, key) == 0


def test_collections_upsert__long_key_is_string_too_long(admin: Login) -> None:
    key = "<" + "x" * 250 + "@practice.example>"

    results = upsert(admin, [{FIELD: key, "Subject": "Email: long"}])

    assert results[0]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert results[0]["errors"][0]["fields"] == [FIELD]


def test_collections_upsert__inactive_owner_is_rejected(admin: Login) -> None:
    results = upsert(admin, [{FIELD: "<inactive-owner@practice.example>", "Subject": "Email: x",
                              "OwnerId": inactive_user_id(admin)}])

    assert results[0]["errors"][0]["statusCode"] == "INACTIVE_OWNER_OR_USER"


def test_update__task_subtype_is_create_only(admin: Login) -> None:
    task_id = admin.sf.Task.create({"Subject": "Email: subtype", "TaskSubtype": "Email"})["id"]

    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.Task.update(task_id, {"TaskSubtype": "Call"})

    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert raised.value.content[0]["fields"] == ["TaskSubtype"]


def test_create__cadence_subtype_is_reserved(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.Task.create({"Subject": "Email: cadence", "TaskSubtype": "Cadence"})

    assert raised.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_query__archived_task_only_in_query_all(admin: Login) -> None:
    soql = "SELECT Id, IsClosed, ActivityDate FROM Task WHERE IsArchived = true"

    archived = admin.sf.query_all(soql, include_deleted=True)["records"]

    assert admin.sf.query(soql)["totalSize"] == 0
    assert archived, "the default scenario has an archived Task"
    assert all(row["IsClosed"] for row in archived)


def test_collections_delete__all_or_none_keeps_every_record(admin: Login) -> None:
    kept = admin.sf.Task.create({"Subject": "Email: kept"})["id"]
    gone = admin.sf.Task.create({"Subject": "Email: gone"})["id"]
    admin.sf.Task.delete(gone)

    results = admin.sf.restful("composite/sobjects", method="DELETE",
                               params={"ids": f"{kept},{gone}", "allOrNone": "true"})

    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert admin.sf.query(f"SELECT Id FROM Task WHERE Id = '{kept}'")["totalSize"] == 1


def test_collections_delete__partial_success_without_all_or_none(admin: Login) -> None:
    kept = admin.sf.Task.create({"Subject": "Email: deleted now"})["id"]
    gone = admin.sf.Task.create({"Subject": "Email: deleted before"})["id"]
    admin.sf.Task.delete(gone)

    results = admin.sf.restful("composite/sobjects", method="DELETE",
                               params={"ids": f"{kept},{gone}", "allOrNone": "false"})

    assert results[0] == {"id": kept, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert admin.sf.query(f"SELECT Id FROM Task WHERE Id = '{kept}'")["totalSize"] == 0


def test_undelete__restores_recycled_task(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)
        task_id = admin.sf.Task.create({"Subject": "Email: restore me"})["id"]
        admin.sf.Task.delete(task_id)

        outcome = org.undelete([task_id])
        row = admin.sf.query(f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task_id}'")

    assert outcome == {task_id: None}
    assert row["records"][0]["IsDeleted"] is False


def test_undelete__live_record_is_not_in_recycle_bin(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)
        task_id = admin.sf.Task.create({"Subject": "Email: live"})["id"]

        outcome = org.undelete([task_id])

    assert str(outcome[task_id]).startswith("UNDELETE_FAILED")


def test_rest__has_no_undelete_resource(admin: Login) -> None:
    response = admin.http.post(admin.url("sobjects/Task/undelete"), headers=admin.headers(),
                               json={"ids": []})

    assert response.status_code in (404, 405)


def test_unique__recycled_duplicate_blocks_unique_index(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="non-unique") as org:
        admin = login(org, org.admin_username)
        rows = admin.sf.query(f"SELECT Id, {FIELD} FROM Task WHERE {FIELD} != null")["records"]
        holders: dict[str, list[str]] = {}
        for row in rows:
            holders.setdefault(row[FIELD], []).append(row["Id"])
        (ids,) = [ids for ids in holders.values() if len(ids) == 2]
        admin.sf.Task.delete(ids[0])
        field_id = admin.sf.toolingexecute(
            "query/?q=SELECT+Id+FROM+CustomField+WHERE+DeveloperName='Message_ID'"
        )["records"][0]["Id"]

        response = admin.http.patch(admin.url(f"tooling/sobjects/CustomField/{field_id}"),
                                    headers=admin.headers(),
                                    json={"Metadata": {"unique": True, "caseSensitive": True}})

    assert response.status_code == 400
    assert "Duplicate value found when building unique index" in response.json()[0]["message"]


def test_unique__case_insensitive_field_folds_case(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)
        admin.sf.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Activity.Folded_Key__c",
            "Metadata": {"label": "Folded Key", "type": "Text", "length": 80, "unique": True,
                         "externalId": True, "caseSensitive": False},
        })
        profile_set = admin.sf.query(
            "SELECT Id FROM PermissionSet WHERE Profile.Name = 'System Administrator'"
        )["records"][0]["Id"]
        for sobject in ("Task", "Event"):
            admin.sf.FieldPermissions.create({
                "ParentId": profile_set, "SobjectType": sobject,
                "Field": f"{sobject}.Folded_Key__c", "PermissionsRead": True,
                "PermissionsEdit": True,
            })
        first = admin.sf.Task.create({"Subject": "Email: upper", "Folded_Key__c": "ABC-1"})["id"]

        with pytest.raises(SalesforceMalformedRequest) as raised:
            admin.sf.Task.create({"Subject": "Email: lower", "Folded_Key__c": "abc-1"})
        matched = admin.sf.Task.upsert(format_external_id("Folded_Key__c", "abc-1"),
                                       {"Subject": "Email: matched"}, raw_response=True)

    assert raised.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert first in raised.value.content[0]["message"]
    assert matched.status_code == 200
    assert matched.json()["id"] == first


def test_non_unique__upsert_needs_view_all_data(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="non-unique") as org:
        admin = login(org, org.admin_username)
        outreach = login(org, "outreach@practice.backstory.example")
        outreach_set = admin.sf.query(
            "SELECT Id FROM PermissionSet WHERE Name = 'Outreach_Integration'"
        )["records"][0]["Id"]
        refused = upsert(outreach, [{FIELD: "<vad@practice.example>", "Subject": "Email: x"}])

        admin.sf.PermissionSet.update(outreach_set, {"PermissionsViewAllData": True})
        allowed = upsert(outreach, [{FIELD: "<vad@practice.example>", "Subject": "Email: x"}])

    assert refused[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert allowed[0]["success"] is True


def test_archival__old_closed_task_leaves_query(tmp_path: Path) -> None:
    old_date = (datetime.date.today() - datetime.timedelta(days=400)).isoformat()
    recent_date = (datetime.date.today() - datetime.timedelta(days=30)).isoformat()
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)
        old = admin.sf.Task.create({"Subject": "Email: old", "Status": "Completed",
                                    "ActivityDate": old_date})["id"]
        still_open = admin.sf.Task.create({"Subject": "Email: open", "Status": "Not Started",
                                           "ActivityDate": old_date})["id"]
        recent = admin.sf.Task.create({"Subject": "Email: recent", "Status": "Completed",
                                       "ActivityDate": recent_date})["id"]
        soql = f"SELECT Id, IsArchived FROM Task WHERE Id IN ('{old}', '{still_open}', '{recent}')"
        before = {row["Id"] for row in admin.sf.query(soql)["records"]}

        archived = org.archive_activities()
        visible = {row["Id"] for row in admin.sf.query(soql)["records"]}
        everything = {row["Id"]: row["IsArchived"]
                      for row in admin.sf.query_all(soql, include_deleted=True)["records"]}
        admin.sf.Task.update(old, {"Subject": "Email: old, edited after archiving"})

    assert before == {old, still_open, recent}, "the API does not archive at once"
    assert old in archived
    assert visible == {still_open, recent}
    assert everything == {old: True, still_open: False, recent: False}


def test_collections_upsert__needs_edit_tasks(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        outreach = login(org, "outreach@practice.backstory.example")
        granting = admin.sf.query(
            "SELECT Id FROM PermissionSet WHERE Name = 'Outreach_Integration' "
            "OR Profile.Name = 'Standard User'")["records"]
        for row in granting:
            admin.sf.PermissionSet.update(row["Id"], {"PermissionsEditTask": False})

        results = upsert(outreach, [{FIELD: "<no-edit-tasks@practice.example>",
                                     "Subject": "Email: x"}])

    assert len(granting) == 2
    assert results[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_tooling_create__needs_modify_all_data(default_org: PracticeOrg) -> None:
    client = login(default_org, "salesops@practice.backstory.example")

    response = client.http.post(client.url("tooling/sobjects/CustomField"),
                                headers=client.headers(),
                                json={"FullName": "Activity.Not_Allowed__c",
                                      "Metadata": {"label": "Not Allowed", "type": "Text",
                                                   "length": 10}})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
