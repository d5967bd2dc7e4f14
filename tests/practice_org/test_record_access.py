"""Record access through simple-salesforce: who reads and writes which Tasks, permission objects
behind View Setup and Configuration, and query locators that the org did not issue.

In the default scenario the sales reps own the seeded Tasks and the admin owns every Contact
and Lead, so the outreach user (Standard User, no View All Data) reaches only the Tasks it owns.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"
OUTREACH = "outreach@practice.backstory.example"
PERMISSION_OBJECTS = ("Profile", "PermissionSet", "PermissionSetAssignment",
                      "PermissionSetGroup", "PermissionSetGroupComponent",
                      "MutingPermissionSet", "FieldPermissions")


@pytest.fixture(scope="module")
def outreach(default_org: PracticeOrg) -> Login:
    return login(default_org, OUTREACH)


def user_id(admin: Login, username: str) -> str:
    soql = format_soql("SELECT Id FROM User WHERE Username = {}", username)
    return str(admin.sf.query(soql)["records"][0]["Id"])


def task_of_someone_else(admin: Login, outreach_id: str) -> dict[str, Any]:
    """Return a live seeded Task that another user owns."""
    soql = format_soql("SELECT Id, OwnerId, Subject FROM Task WHERE OwnerId != {} "
                       "ORDER BY Id LIMIT 1", outreach_id)
    return dict(admin.sf.query(soql)["records"][0])


def upsert(client: Login, records: list[dict[str, Any]]) -> Any:
    payload = {"allOrNone": False,
               "records": [{"attributes": {"type": "Task"}, **record} for record in records]}
    return client.sf.restful(f"composite/sobjects/Task/{FIELD}", method="PATCH", json=payload)


# -- reading Tasks -------------------------------------------------------------------


def test_query__standard_user_sees_only_own_tasks(admin: Login, outreach: Login) -> None:
    outreach_id = user_id(admin, OUTREACH)
    own = outreach.sf.Task.create({"Subject": "Email: own task"})["id"]

    seen = outreach.sf.query_all("SELECT Id, OwnerId FROM Task")["records"]
    every = admin.sf.query_all("SELECT Id FROM Task")["records"]

    assert own in {row["Id"] for row in seen}
    assert {row["OwnerId"] for row in seen} == {outreach_id}
    assert len(every) > len(seen)


def test_query_all__hides_tasks_of_others(admin: Login, outreach: Login) -> None:
    outreach_id = user_id(admin, OUTREACH)

    seen = outreach.sf.query_all("SELECT Id, OwnerId, IsDeleted, IsArchived FROM Task",
                                 include_deleted=True)["records"]
    every = admin.sf.query_all("SELECT Id, IsDeleted, IsArchived FROM Task",
                               include_deleted=True)["records"]

    assert any(row["IsDeleted"] or row["IsArchived"] for row in every)
    assert all(row["OwnerId"] == outreach_id for row in seen)


def test_count__leaves_out_hidden_tasks(admin: Login, outreach: Login) -> None:
    outreach_id = user_id(admin, OUTREACH)
    owned = admin.sf.query(format_soql("SELECT COUNT() FROM Task WHERE OwnerId = {}",
                                       outreach_id))["totalSize"]

    counted = outreach.sf.query("SELECT COUNT() FROM Task")["totalSize"]

    assert counted == owned


def test_key_lookup__hidden_task_is_not_returned(admin: Login, outreach: Login) -> None:
    keyed = admin.sf.query(format_soql(f"SELECT {FIELD}, OwnerId FROM Task WHERE {FIELD} != null "
                                       "AND OwnerId != {} LIMIT 1",
                                       user_id(admin, OUTREACH)))["records"][0]

    found = outreach.sf.query(format_soql(f"SELECT Id FROM Task WHERE {FIELD} = {{}}",
                                          keyed[FIELD]))

    assert found["totalSize"] == 0


def test_get__hidden_task_is_not_found(admin: Login, outreach: Login) -> None:
    hidden = task_of_someone_else(admin, user_id(admin, OUTREACH))

    with pytest.raises(SalesforceResourceNotFound) as raised:
        outreach.sf.Task.get(hidden["Id"])

    assert raised.value.content[0]["errorCode"] == "NOT_FOUND"


def test_composite__hidden_task_subrequest_is_not_found(admin: Login, outreach: Login) -> None:
    hidden = task_of_someone_else(admin, user_id(admin, OUTREACH))
    request = {"allOrNone": False, "compositeRequest": [{
        "method": "GET", "referenceId": "hidden",
        "url": f"/services/data/v64.0/sobjects/Task/{hidden['Id']}",
    }]}

    result = outreach.sf.restful("composite", method="POST", json=request)

    entry = result["compositeResponse"][0]
    assert entry["httpStatusCode"] == 404
    assert entry["body"][0]["errorCode"] == "NOT_FOUND"


def test_semi_join__hidden_tasks_select_nothing(admin: Login, outreach: Login) -> None:
    soql = "SELECT Id FROM Contact WHERE Id IN (SELECT WhoId FROM Task)"
    assert admin.sf.query(soql)["totalSize"] > 0

    found = outreach.sf.query(soql)

    assert found["totalSize"] == 0


def test_bulk_query__leaves_out_hidden_tasks(admin: Login, outreach: Login) -> None:
    outreach_id = user_id(admin, OUTREACH)

    pages = list(outreach.sf.bulk2.Task.query_all("SELECT Id, OwnerId FROM Task", wait=0))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]

    assert rows
    assert {row["OwnerId"] for row in rows} == {outreach_id}


def test_view_all_data__sees_every_task(admin: Login, integration: Login) -> None:
    every = admin.sf.query("SELECT COUNT() FROM Task")["totalSize"]

    seen = integration.sf.query("SELECT COUNT() FROM Task")["totalSize"]

    assert seen == every


def test_event__hidden_from_standard_user(admin: Login, outreach: Login) -> None:
    event = admin.sf.Event.create({"Subject": "Meeting: admin only",
                                   "ActivityDateTime": "2026-03-02T10:00:00.000+0000",
                                   "DurationInMinutes": 30})["id"]

    found = outreach.sf.query(f"SELECT Id FROM Event WHERE Id = '{event}'")

    assert found["totalSize"] == 0
    with pytest.raises(SalesforceMalformedRequest) as raised:
        outreach.sf.Event.delete(event)
    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


# -- writing Tasks -------------------------------------------------------------------


def test_update__hidden_task_is_insufficient_access(admin: Login, outreach: Login) -> None:
    hidden = task_of_someone_else(admin, user_id(admin, OUTREACH))

    with pytest.raises(SalesforceMalformedRequest) as raised:
        outreach.sf.Task.update(hidden["Id"], {"Subject": "Email: changed by outreach"})

    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert admin.sf.Task.get(hidden["Id"])["Subject"] == hidden["Subject"]


def test_delete__hidden_task_is_insufficient_access(admin: Login, outreach: Login) -> None:
    hidden = task_of_someone_else(admin, user_id(admin, OUTREACH))

    with pytest.raises(SalesforceMalformedRequest) as raised:
        outreach.sf.Task.delete(hidden["Id"])

    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert admin.sf.Task.get(hidden["Id"])["IsDeleted"] is False


def test_collections__hidden_task_update_and_delete_fail(admin: Login, outreach: Login) -> None:
    hidden = task_of_someone_else(admin, user_id(admin, OUTREACH))

    updated = outreach.sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Task"}, "Id": hidden["Id"], "Subject": "x"}]})
    deleted = outreach.sf.restful("composite/sobjects", method="DELETE",
                                  params={"ids": hidden["Id"], "allOrNone": "false"})

    assert updated[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert deleted[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert admin.sf.Task.get(hidden["Id"])["IsDeleted"] is False


def test_view_all_data__does_not_grant_edit(admin: Login, integration: Login) -> None:
    hidden = task_of_someone_else(admin, user_id(admin, integration.org.integration_username))

    with pytest.raises(SalesforceMalformedRequest) as raised:
        integration.sf.Task.update(hidden["Id"], {"Subject": "Email: changed by integration"})

    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_modify_all_data__edits_task_of_another_owner(admin: Login, outreach: Login) -> None:
    own = outreach.sf.Task.create({"Subject": "Email: to be edited by the admin"})["id"]

    admin.sf.Task.update(own, {"Subject": "Email: edited by the admin"})

    assert outreach.sf.Task.get(own)["Subject"] == "Email: edited by the admin"


def test_upsert__standard_user_updates_own_task(outreach: Login) -> None:
    key = "<own-upsert@practice.example>"

    created = upsert(outreach, [{FIELD: key, "Subject": "Email: first"}])
    updated = upsert(outreach, [{FIELD: key, "Subject": "Email: second"}])

    assert created[0]["created"] is True
    assert updated[0]["success"] is True
    assert updated[0]["created"] is False
    assert outreach.sf.Task.get(updated[0]["id"])["Subject"] == "Email: second"


def test_upsert__key_of_hidden_task_changes_nothing(admin: Login, outreach: Login) -> None:
    keyed = admin.sf.query(format_soql(f"SELECT Id, Subject, {FIELD} FROM Task "
                                       f"WHERE {FIELD} != null AND OwnerId != {{}} LIMIT 1",
                                       user_id(admin, OUTREACH)))["records"][0]

    results = upsert(outreach, [{FIELD: keyed[FIELD], "Subject": "Email: taken over"}])

    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert admin.sf.Task.get(keyed["Id"])["Subject"] == keyed["Subject"]


def test_task_given_away__leaves_its_creator(admin: Login, outreach: Login) -> None:
    rep = task_of_someone_else(admin, user_id(admin, OUTREACH))["OwnerId"]
    created = outreach.sf.Task.create({"Subject": "Email: for a rep", "OwnerId": rep})["id"]

    with pytest.raises(SalesforceResourceNotFound):
        outreach.sf.Task.get(created)

    assert admin.sf.Task.get(created)["OwnerId"] == rep


# -- Controlled by Parent ----------------------------------------------------------------


def test_parent__owner_of_parents_edits_task(admin: Login, outreach: Login) -> None:
    outreach_id = user_id(admin, OUTREACH)
    rep = task_of_someone_else(admin, outreach_id)["OwnerId"]
    contact = admin.sf.Contact.create({"LastName": "Parent Owned", "OwnerId": outreach_id})["id"]
    task = admin.sf.Task.create({"Subject": "Email: child", "OwnerId": rep,
                                 "WhoId": contact})["id"]

    outreach.sf.Task.update(task, {"Subject": "Email: child, edited through the parent"})

    assert outreach.sf.Task.get(task)["Subject"] == "Email: child, edited through the parent"


def test_parent__unreachable_parent_hides_task(admin: Login, outreach: Login) -> None:
    outreach_id = user_id(admin, OUTREACH)
    rep = task_of_someone_else(admin, outreach_id)["OwnerId"]
    contact = admin.sf.Contact.create({"LastName": "Half Owned", "OwnerId": outreach_id})["id"]
    account = admin.sf.Account.create({"Name": "Owned by the admin"})["id"]
    task = admin.sf.Task.create({"Subject": "Email: two parents", "OwnerId": rep,
                                 "WhoId": contact, "WhatId": account})["id"]

    found = outreach.sf.query(f"SELECT Id FROM Task WHERE Id = '{task}'")

    assert found["totalSize"] == 0


def test_parent__parentless_task_reaches_owner_only(admin: Login, outreach: Login) -> None:
    rep = task_of_someone_else(admin, user_id(admin, OUTREACH))["OwnerId"]
    task = admin.sf.Task.create({"Subject": "Email: no parent", "OwnerId": rep})["id"]

    with pytest.raises(SalesforceResourceNotFound):
        outreach.sf.Task.get(task)


# -- View Setup and Configuration -----------------------------------------------------


@pytest.mark.parametrize("sobject", PERMISSION_OBJECTS)
def test_view_setup__needed_to_query_permission_objects(outreach: Login, sobject: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        outreach.sf.query(f"SELECT Id FROM {sobject} LIMIT 1")

    assert raised.value.content[0]["errorCode"] == "INVALID_TYPE"
    assert f"sObject type '{sobject}' is not supported" in raised.value.content[0]["message"]


@pytest.mark.parametrize("sobject", PERMISSION_OBJECTS)
def test_view_setup__admin_queries_permission_objects(admin: Login, sobject: str) -> None:
    result = admin.sf.query(f"SELECT Id FROM {sobject}")

    assert result["totalSize"] > 0


def test_view_setup__view_all_data_is_not_enough(integration: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        integration.sf.query("SELECT Id FROM PermissionSetAssignment LIMIT 1")

    assert raised.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_view_setup__needed_to_get_permission_set(admin: Login, outreach: Login) -> None:
    permission_set = admin.sf.query("SELECT Id FROM PermissionSet LIMIT 1")["records"][0]["Id"]

    with pytest.raises(SalesforceResourceNotFound) as raised:
        outreach.sf.PermissionSet.get(permission_set)

    assert raised.value.content[0]["errorCode"] == "NOT_FOUND"


def test_view_setup__needed_in_semi_join(admin: Login, outreach: Login) -> None:
    soql = "SELECT Id FROM User WHERE Id IN (SELECT AssigneeId FROM PermissionSetAssignment)"
    assert admin.sf.query(soql)["totalSize"] > 0

    with pytest.raises(SalesforceMalformedRequest) as raised:
        outreach.sf.query(soql)

    assert raised.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_view_setup__granted_by_profiles(admin: Login) -> None:
    rows = admin.sf.query("SELECT Label, PermissionsViewSetup FROM PermissionSet "
                          "WHERE IsOwnedByProfile = true")["records"]
    granted = {row["Label"]: row["PermissionsViewSetup"] for row in rows}

    assert granted["System Administrator"] is True
    assert granted["Standard User"] is False


def test_view_setup__permission_set_grant_allows_query(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="default") as org:
        admin = login(org, org.admin_username)
        outreach = login(org, OUTREACH)
        outreach_set = admin.sf.query(
            "SELECT Id FROM PermissionSet WHERE Name = 'Outreach_Integration'"
        )["records"][0]["Id"]

        admin.sf.PermissionSet.update(outreach_set, {"PermissionsViewSetup": True})
        result = outreach.sf.query("SELECT Id FROM PermissionSetAssignment")

    assert result["totalSize"] > 0


# -- query locators ------------------------------------------------------------------


@pytest.fixture(scope="module")
def paged_contacts(admin: Login) -> str:
    """Create 4,100 Contacts, which a query returns in three pages; return that query."""
    for batch in range(21):
        records = [{"attributes": {"type": "Contact"}, "LastName": f"Locator {batch}-{n}"}
                   for n in range(200 if batch < 20 else 100)]
        results = admin.sf.restful("composite/sobjects", method="POST",
                                   json={"allOrNone": True, "records": records})
        assert all(result["success"] for result in results)
    return "SELECT Id FROM Contact WHERE LastName LIKE 'Locator %'"


def locator_error(client: Login, next_records_url: str) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        client.sf.query_more(next_records_url, identifier_is_url=True)
    assert raised.value.status == 400
    return dict(raised.value.content[0])


def test_locator__issued_locator_pages_on(admin: Login, paged_contacts: str) -> None:
    first = admin.sf.query(paged_contacts)

    second = admin.sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    third = admin.sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)

    assert len(second["records"]) == 2000
    assert third["done"] is True
    assert len(third["records"]) == 100


def test_locator__changed_offset_is_invalid(admin: Login, paged_contacts: str) -> None:
    first = admin.sf.query(paged_contacts)
    url = first["nextRecordsUrl"]
    assert url.endswith("-2000")

    for offset in ("4000", "1999", "2001", "0", "99999"):
        error = locator_error(admin, url[:-len("2000")] + offset)

        assert error["errorCode"] == "INVALID_QUERY_LOCATOR", offset
        assert error["message"] == "invalid query locator"


def test_locator__made_up_locator_is_invalid(admin: Login) -> None:
    for locator in ("01g0000000000000000-2000", "01g0000000000000000", "nonsense"):
        error = locator_error(admin, f"/services/data/v64.0/query/{locator}")

        assert error["errorCode"] == "INVALID_QUERY_LOCATOR", locator


def test_locator__other_users_locator_is_invalid(admin: Login, integration: Login,
                                                 paged_contacts: str) -> None:
    first = admin.sf.query(paged_contacts)

    error = locator_error(integration, first["nextRecordsUrl"])

    assert error["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert admin.sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)["records"]


def test_locator__other_orgs_locator_is_invalid(admin: Login, paged_contacts: str,
                                                tmp_path: Path) -> None:
    first = admin.sf.query(paged_contacts)

    with PracticeOrg(tmp_path / "other.db", scenario="empty") as other_org:
        other_admin = login(other_org, other_org.admin_username)
        error = locator_error(other_admin, first["nextRecordsUrl"])
        other_admin_id = other_admin.sf.query(
            "SELECT Id FROM User WHERE Username = 'admin@practice.backstory.example'")["records"][0]["Id"]

    # Both orgs are seeded alike, so only the org distinguishes the two locators' users.
    assert other_admin_id == admin.sf.query(
        "SELECT Id FROM User WHERE Username = 'admin@practice.backstory.example'")["records"][0]["Id"]
    assert error["errorCode"] == "INVALID_QUERY_LOCATOR"
