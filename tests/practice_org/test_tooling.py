"""Tooling API CustomField: where Activity fields are created and what they start with."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.practice_org.practice_login import Login


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
