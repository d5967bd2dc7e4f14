"""Permission set groups, muting permission sets and expiring assignments, per request.

The default scenario assigns the group "Sales Operations" to the user
salesops@practice.backstory.example. The group's permission set grants Modify All
Data and Read and Edit on Message_ID__c. Its muting permission set mutes Modify
All Data and Edit on Message_ID__c. The same user's assignment of "Quarter End
Cleanup" (Modify All Data) has expired. The SalesLoft integration user
salesloft@practice.backstory.example has no field-level security on Message_ID__c.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"
SALES_OPS = "salesops@practice.backstory.example"
SALESLOFT = "salesloft@practice.backstory.example"
GROUP = "Sales_Operations"


@pytest.fixture(scope="module")
def sales_ops(default_org: PracticeOrg) -> Login:
    return login(default_org, SALES_OPS)


def described(client: Login, sobject: str = "Task") -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in getattr(client.sf, sobject).describe()["fields"]}


def only(client: Login, soql: str) -> dict[str, Any]:
    records = client.sf.query(soql)["records"]
    assert len(records) == 1, records
    return dict(records[0])


def group_id(client: Login) -> str:
    return str(only(client, f"SELECT Id FROM PermissionSetGroup WHERE DeveloperName = '{GROUP}'")["Id"])


def muting_component_id(client: Login, group: str) -> str:
    rows = client.sf.query(format_soql(
        "SELECT Id, PermissionSetId FROM PermissionSetGroupComponent "
        "WHERE PermissionSetGroupId = {}", group))["records"]
    (row,) = [row for row in rows if row["PermissionSetId"].startswith("0QM")]
    return str(row["Id"])


def test_group__aggregate_permission_set_is_type_group(admin: Login) -> None:
    aggregate = only(admin, (
        "SELECT Type, PermissionSetGroup.DeveloperName, PermissionsApiEnabled, "
        "PermissionsViewAllData, PermissionsModifyAllData FROM PermissionSet "
        "WHERE PermissionSetGroupId != null"))

    assert aggregate["Type"] == "Group"
    assert aggregate["PermissionSetGroup"]["DeveloperName"] == GROUP
    assert aggregate["PermissionsApiEnabled"] is True
    assert aggregate["PermissionsViewAllData"] is True
    assert aggregate["PermissionsModifyAllData"] is False, "muted by the muting permission set"


def test_group__assignment_points_at_aggregate_set(admin: Login) -> None:
    rows = admin.sf.query(format_soql(
        "SELECT PermissionSetId, PermissionSetGroupId, PermissionSet.Type, ExpirationDate "
        "FROM PermissionSetAssignment WHERE Assignee.Username = {} "
        "AND PermissionSet.IsOwnedByProfile = false", SALES_OPS))["records"]
    by_type = {row["PermissionSet"]["Type"]: row for row in rows}

    assert sorted(by_type) == ["Group", "Regular"]
    assert by_type["Group"]["PermissionSetGroupId"] == group_id(admin)
    assert by_type["Group"]["ExpirationDate"] is None
    assert by_type["Regular"]["PermissionSetGroupId"] is None
    assert by_type["Regular"]["ExpirationDate"] is not None


def test_group__components_are_queryable(admin: Login) -> None:
    rows = admin.sf.query(format_soql(
        "SELECT PermissionSetId FROM PermissionSetGroupComponent "
        "WHERE PermissionSetGroup.DeveloperName = {}", GROUP))["records"]
    prefixes = sorted(row["PermissionSetId"][:3] for row in rows)

    assert prefixes == ["0PS", "0QM"]


def test_aggregate_field_permissions__reflect_muting(admin: Login) -> None:
    rows = admin.sf.query(
        "SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
        "WHERE Parent.Type = 'Group' ORDER BY Field")["records"]
    access = {row["Field"]: (row["PermissionsRead"], row["PermissionsEdit"]) for row in rows}

    assert access["Task.Message_ID__c"] == (True, False)
    assert access["Event.Message_ID__c"] == (True, False)
    assert access["Task.peopleai__Created_by_PeopleAI__c"] == (True, True)


def test_muting__field_stays_readable_not_editable(sales_ops: Login) -> None:
    fields = described(sales_ops)

    assert fields[FIELD]["createable"] is False
    assert fields[FIELD]["updateable"] is False
    assert fields["peopleai__Created_by_PeopleAI__c"]["createable"] is True
    assert sales_ops.sf.query(f"SELECT Id, {FIELD} FROM Task LIMIT 1")["totalSize"] == 1


def test_muting__write_to_muted_field_is_rejected(sales_ops: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sales_ops.sf.Task.create({"Subject": "Email: muted", FIELD: "<muted@practice.example>"})

    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert raised.value.content[0]["fields"] == [FIELD]


def test_muting__removes_modify_all_data(sales_ops: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sales_ops.sf.PermissionSet.create({"Name": "Not_Allowed", "Label": "Not Allowed"})

    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_group__grants_component_permissions(sales_ops: Login) -> None:
    created = sales_ops.sf.Task.create({"Subject": "Email: by the group's Edit Tasks",
                                        "peopleai__Created_by_PeopleAI__c": True})

    assert created["success"] is True


def test_describe__permission_objects(admin: Login) -> None:
    group = described(admin, "PermissionSetGroup")
    component = described(admin, "PermissionSetGroupComponent")
    muting = described(admin, "MutingPermissionSet")
    assignment = described(admin, "PermissionSetAssignment")
    permission_set = described(admin, "PermissionSet")

    assert {"DeveloperName", "MasterLabel", "Status"} <= set(group)
    assert group["Status"]["updateable"] is False
    assert component["PermissionSetId"]["referenceTo"] == ["PermissionSet", "MutingPermissionSet"]
    assert muting["PermissionsModifyAllData"]["type"] == "boolean"
    assert assignment["PermissionSetGroupId"]["createable"] is True
    assert assignment["ExpirationDate"]["updateable"] is True
    assert "Group" in [value["value"] for value in permission_set["Type"]["picklistValues"]]


def test_expired_assignment__renewed_grants_again(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        assignment = only(admin, format_soql(
            "SELECT Id FROM PermissionSetAssignment WHERE Assignee.Username = {} "
            "AND PermissionSet.Name = 'Quarter_End_Cleanup'", SALES_OPS))
        before = login(org, SALES_OPS)
        refused = before.http.post(before.url("sobjects/PermissionSet"), headers=before.headers(),
                                   json={"Name": "Cleanup_Run", "Label": "Cleanup Run"})

        admin.sf.PermissionSetAssignment.update(
            assignment["Id"], {"ExpirationDate": "2099-01-01T00:00:00.000+0000"})
        allowed = before.http.post(before.url("sobjects/PermissionSet"), headers=before.headers(),
                                   json={"Name": "Cleanup_Run", "Label": "Cleanup Run"})

    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert allowed.status_code == 201, "muting acts inside its group only"


def test_muting_component_removed__restores_edit(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        client = login(org, SALES_OPS)
        component = muting_component_id(admin, group_id(admin))

        admin.sf.PermissionSetGroupComponent.delete(component)
        field = described(client)[FIELD]
        aggregate = only(admin, "SELECT PermissionsModifyAllData FROM PermissionSet "
                                "WHERE Type = 'Group'")
        row = only(admin, "SELECT PermissionsEdit FROM FieldPermissions "
                          "WHERE Parent.Type = 'Group' AND Field = 'Task.Message_ID__c'")

    assert field["createable"] is True
    assert aggregate["PermissionsModifyAllData"] is True
    assert row["PermissionsEdit"] is True


def test_muting_field_row_added__removes_read(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        muting = only(admin, "SELECT Id FROM MutingPermissionSet")["Id"]

        admin.sf.FieldPermissions.create({
            "ParentId": muting, "SobjectType": "Task", "Field": "Task.peopleai__Created_by_PeopleAI__c",
            "PermissionsRead": True, "PermissionsEdit": True,
        })
        admin.sf.FieldPermissions.create({
            "ParentId": muting, "SobjectType": "Event",
            "Field": "Event.peopleai__Created_by_PeopleAI__c",
            "PermissionsRead": True, "PermissionsEdit": True,
        })
        fields = described(login(org, SALES_OPS))

    assert "peopleai__Created_by_PeopleAI__c" not in fields
    assert FIELD in fields


def test_group_assignment__through_api_grants_field(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        integration_id = only(admin, format_soql(
            "SELECT Id FROM User WHERE Username = {}", org.integration_username))["Id"]
        reporting = only(admin, "SELECT Id FROM PermissionSet WHERE Name = 'Activity_Reporting'")
        group = admin.sf.PermissionSetGroup.create(
            {"DeveloperName": "Backstory_Access", "MasterLabel": "Backstory Access"})["id"]
        admin.sf.PermissionSetGroupComponent.create(
            {"PermissionSetGroupId": group, "PermissionSetId": reporting["Id"]})
        before = set(described(login(org, org.integration_username)))

        assignment = admin.sf.PermissionSetAssignment.create(
            {"AssigneeId": integration_id, "PermissionSetGroupId": group})
        after = described(login(org, org.integration_username))
        stored = admin.sf.PermissionSetAssignment.get(assignment["id"])
        status = only(admin, format_soql(
            "SELECT Status FROM PermissionSetGroup WHERE Id = {}", group))["Status"]

    assert FIELD not in before
    assert after[FIELD]["createable"] is True
    assert stored["PermissionSetId"].startswith("0PS")
    assert stored["PermissionSetGroupId"] == group
    assert status == "Updated"


def test_group__second_muting_set_is_rejected(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        second = admin.sf.MutingPermissionSet.create(
            {"DeveloperName": "Second_Mute", "MasterLabel": "Second Mute"})["id"]

        with pytest.raises(SalesforceMalformedRequest) as raised:
            admin.sf.PermissionSetGroupComponent.create(
                {"PermissionSetGroupId": group_id(admin), "PermissionSetId": second})

    assert raised.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_aggregate_permission_set__cannot_be_changed(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)
        aggregate = only(admin, "SELECT Id FROM PermissionSet WHERE Type = 'Group'")["Id"]

        with pytest.raises(SalesforceMalformedRequest) as raised:
            admin.sf.PermissionSet.update(aggregate, {"PermissionsModifyAllData": True})

    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_group__assigned_group_cannot_be_deleted(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        admin = login(org, org.admin_username)

        response = admin.http.delete(admin.url(f"sobjects/PermissionSetGroup/{group_id(admin)}"),
                                     headers=admin.headers())

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "DELETE_FAILED"


def test_permission_queries__sources_of_a_group_member(admin: Login) -> None:
    user_id = only(admin, format_soql("SELECT Id FROM User WHERE Username = {}", SALES_OPS))["Id"]
    assignments = admin.sf.query(format_soql(
        "SELECT PermissionSetId, PermissionSetGroupId, ExpirationDate, IsActive, "
        "PermissionSet.Name, PermissionSet.IsOwnedByProfile, PermissionSet.PermissionsApiEnabled, "
        "PermissionSet.PermissionsViewAllData, PermissionSet.PermissionsModifyAllData, "
        "PermissionSet.PermissionsEditTask, PermissionSet.PermissionsEditEvent "
        "FROM PermissionSetAssignment WHERE AssigneeId = {}", user_id))["records"]
    field_rows = admin.sf.query(format_soql(
        "SELECT ParentId, Parent.Name, Parent.IsOwnedByProfile, SobjectType, Field, "
        "PermissionsRead, PermissionsEdit FROM FieldPermissions "
        "WHERE Field IN ('Task.Message_ID__c', 'Event.Message_ID__c') "
        "AND ParentId IN (SELECT PermissionSetId FROM PermissionSetAssignment "
        "WHERE AssigneeId = {})", user_id))["records"]
    group_row = next(row for row in assignments if row["PermissionSetGroupId"])

    assert len(assignments) == 3, "profile, group and the expired permission set"
    assert group_row["PermissionSet"]["PermissionsModifyAllData"] is False
    assert group_row["PermissionSet"]["PermissionsViewAllData"] is True
    assert {row["ParentId"] for row in field_rows} == {group_row["PermissionSetId"]}
    assert all(row["PermissionsRead"] and not row["PermissionsEdit"] for row in field_rows)


def test_salesloft_user__lacks_field_permission(default_org: PracticeOrg, admin: Login) -> None:
    client = login(default_org, SALESLOFT)
    rows = admin.sf.query(
        "SELECT Field FROM FieldPermissions WHERE Parent.Name = 'SalesLoft_Integration'")["records"]
    user = only(admin, format_soql("SELECT IsActive, Id FROM User WHERE Username = {}", SALESLOFT))
    newest = only(admin, "SELECT Id FROM User ORDER BY Id DESC LIMIT 1")

    assert rows == []
    assert FIELD not in described(client)
    assert user["IsActive"] is True
    assert newest["Id"] == user["Id"], "made after every other user, so their ids stay the same"
