"""Tooling API CustomField: where Activity fields are created and what they start with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login


def field_body(full_name: str) -> dict[str, Any]:
    return {"FullName": full_name,
            "Metadata": {"label": "Test Key", "type": "Text", "length": 255, "unique": True,
                         "externalId": True, "caseSensitive": True, "description": "test"}}


def create_field(client: Login, full_name: str) -> Any:
    return client.sf.toolingexecute("sobjects/CustomField", method="POST",
                                    data=field_body(full_name))


def test_create__task_full_name_is_rejected(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        create_field(admin, "Task.Test_Key__c")

    assert raised.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_create__new_activity_field_has_no_fls(admin: Login) -> None:
    result = create_field(admin, "Activity.Test_Key__c")

    names = [f["name"] for f in admin.sf.Task.describe()["fields"]]
    assert result["success"] is True
    assert result["id"].startswith("00N")
    assert "Test_Key__c" not in names


def test_field_permissions__grant_makes_field_visible(admin: Login) -> None:
    create_field(admin, "Activity.Granted_Key__c")
    profile_set = admin.sf.query(
        "SELECT Id FROM PermissionSet WHERE IsOwnedByProfile = true "
        "AND Profile.Name = 'System Administrator'")["records"][0]["Id"]

    admin.sf.FieldPermissions.create({"ParentId": profile_set, "SobjectType": "Task",
                                      "Field": "Task.Granted_Key__c", "PermissionsRead": True,
                                      "PermissionsEdit": True})

    fields = {f["name"]: f for f in admin.sf.Task.describe()["fields"]}
    assert fields["Granted_Key__c"]["unique"] is True


def test_create__existing_name_is_duplicate_developer_name(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        create_field(admin, "Activity.Message_ID__c")

    assert raised.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"


def test_query__metadata_for_one_field(admin: Login) -> None:
    result = admin.sf.toolingexecute(
        "query/?q=SELECT+Id,DeveloperName,TableEnumOrId,Metadata,FullName+FROM+CustomField"
        "+WHERE+DeveloperName='Message_ID'+AND+TableEnumOrId='Activity'")

    record = result["records"][0]
    assert result["totalSize"] == 1
    assert record["FullName"] == "Activity.Message_ID__c"
    assert record["Metadata"]["unique"] is True
    assert record["Metadata"]["caseSensitive"] is True


def test_query__metadata_for_several_fields_is_rejected(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.toolingexecute("query/?q=SELECT+Id,Metadata+FROM+CustomField")

    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_create__new_field_is_hidden_from_every_user(admin: Login, integration: Login) -> None:
    create_field(admin, "Activity.Hidden_Key__c")

    for client in (admin, integration):
        names = [f["name"] for f in client.sf.Task.describe()["fields"]]
        with pytest.raises(SalesforceMalformedRequest) as raised:
            client.sf.query("SELECT Hidden_Key__c FROM Task LIMIT 1")
        assert "Hidden_Key__c" not in names
        assert raised.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_update__metadata_changes_are_kept(admin: Login) -> None:
    field_id = create_field(admin, "Activity.Updated_Key__c")["id"]
    metadata = {"label": "Updated Key", "type": "Text", "length": 100, "unique": False,
                "externalId": True, "caseSensitive": False, "description": "changed"}

    admin.sf.toolingexecute(f"sobjects/CustomField/{field_id}", method="PATCH",
                            data={"Metadata": metadata})
    result = admin.sf.toolingexecute(
        "query/?q=SELECT+Id,Metadata,FullName+FROM+CustomField"
        "+WHERE+DeveloperName='Updated_Key'+AND+TableEnumOrId='Activity'")

    stored = result["records"][0]["Metadata"]
    assert stored["length"] == 100
    assert stored["unique"] is False
    assert stored["caseSensitive"] is False
    assert stored["description"] == "changed"


def test_query__activity_fields_without_metadata(admin: Login) -> None:
    result = admin.sf.toolingexecute(
        "query/?q=SELECT+Id,DeveloperName,NamespacePrefix,TableEnumOrId+FROM+CustomField"
        "+WHERE+TableEnumOrId='Activity'")

    names = {(r["NamespacePrefix"], r["DeveloperName"]) for r in result["records"]}
    assert ("peopleai", "Created_by_PeopleAI") in names
    assert (None, "Message_ID") in names


def field_definitions(client: Login, where: str) -> list[dict[str, Any]]:
    soql = ("SELECT QualifiedApiName, DataType, Length, IsIndexed, IsApiGroupable, "
            f"IsFlsEnabled, EntityDefinition.QualifiedApiName FROM FieldDefinition WHERE {where}")
    result = client.sf.toolingexecute("query/", params={"q": soql})
    return list(result["records"])


def test_field_definition__message_id_field(admin: Login) -> None:
    rows = field_definitions(admin, "EntityDefinition.QualifiedApiName = 'Task' "
                                    "AND QualifiedApiName = 'Message_ID__c'")

    assert len(rows) == 1
    assert rows[0]["DataType"] == "Text(255)"
    assert rows[0]["IsIndexed"] is True
    assert rows[0]["IsApiGroupable"] is True
    assert rows[0]["IsFlsEnabled"] is True
    assert rows[0]["EntityDefinition"]["QualifiedApiName"] == "Task"
    assert rows[0]["attributes"]["type"] == "FieldDefinition"


def grant_view_setup(admin: Login, username: str) -> None:
    """Give a user View Setup and Configuration through a new permission set."""
    permission_set = admin.sf.PermissionSet.create(
        {"Name": "Setup_Reader", "Label": "Setup Reader", "PermissionsViewSetup": True})
    user = admin.sf.query(f"SELECT Id FROM User WHERE Username = '{username}'")["records"][0]
    admin.sf.PermissionSetAssignment.create(
        {"AssigneeId": user["Id"], "PermissionSetId": permission_set["id"]})


def test_field_definition__lists_field_without_fls(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db") as org:
        grant_view_setup(login(org, org.admin_username), org.integration_username)
        integration = login(org, org.integration_username)

        rows = field_definitions(integration, "EntityDefinitionId = 'Task' "
                                              "AND QualifiedApiName = 'Message_ID__c'")
        described = [f["name"] for f in integration.sf.Task.describe()["fields"]]

    assert "Message_ID__c" not in described
    assert [row["QualifiedApiName"] for row in rows] == ["Message_ID__c"]


@pytest.mark.parametrize("sobject", ["CustomField", "FieldDefinition"])
def test_tooling_query__needs_view_setup(integration: Login, sobject: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        integration.sf.toolingexecute("query/", params={"q": f"SELECT Id FROM {sobject}"})

    assert raised.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_field_definition__long_text_is_not_groupable(admin: Login) -> None:
    rows = field_definitions(admin, "EntityDefinitionId = 'Task' AND QualifiedApiName = "
                                    "'Description'")

    assert rows[0]["DataType"].startswith("Long Text Area(")
    assert rows[0]["IsApiGroupable"] is False


def test_field_definition__unknown_column_is_invalid_field(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.toolingexecute("query/", params={
            "q": "SELECT Nope FROM FieldDefinition WHERE EntityDefinitionId = 'Task'"})

    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD"
