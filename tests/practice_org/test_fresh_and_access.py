"""The fresh scenario, and what a user's permission sets allow per request."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login


@pytest.fixture(scope="module")
def admin(fresh_org: PracticeOrg) -> Login:
    return login(fresh_org, fresh_org.admin_username)


def test_fresh__has_no_message_id_field(admin: Login) -> None:
    names = [f["name"] for f in admin.sf.Task.describe()["fields"]]
    tooling = admin.sf.toolingexecute(
        "query/?q=SELECT+Id+FROM+CustomField+WHERE+DeveloperName='Message_ID'")

    assert "Message_ID__c" not in names
    assert tooling["totalSize"] == 0


def test_fresh__keeps_users_and_unkeyed_tasks(admin: Login) -> None:
    users = admin.sf.query("SELECT Username FROM User")["records"]
    tasks = admin.sf.query("SELECT COUNT() FROM Task")

    assert "integration@practice.backstory.example" in [user["Username"] for user in users]
    assert tasks["totalSize"] > 0


def test_upsert__unknown_key_field_is_not_found(admin: Login) -> None:
    payload = {"records": [{"attributes": {"type": "Task"}, "Message_ID__c": "<a@b>"}]}

    response = admin.http.patch(admin.url("composite/sobjects/Task/Message_ID__c"),
                                headers=admin.headers(), json=payload)

    assert response.status_code == 404
    assert response.json()[0]["errorCode"] == "NOT_FOUND"


def test_task_create__inactive_owner_is_rejected(admin: Login) -> None:
    inactive = admin.sf.query("SELECT Id FROM User WHERE IsActive = false")["records"][0]["Id"]

    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.Task.create({"Subject": "Email: x", "OwnerId": inactive})

    assert raised.value.content[0]["errorCode"] == "INACTIVE_OWNER_OR_USER"


def test_removed_assignment__takes_edit_task_away(admin: Login, fresh_org: PracticeOrg) -> None:
    integration = login(fresh_org, fresh_org.integration_username)
    assignment = admin.sf.query(
        "SELECT Id FROM PermissionSetAssignment WHERE PermissionSet.Name = "
        "'Backstory_Integration'")["records"][0]["Id"]
    allowed = integration.http.get(integration.url("sobjects"), headers=integration.headers())

    admin.sf.PermissionSetAssignment.delete(assignment)
    rejected = integration.http.post(integration.url("sobjects/Task"),
                                    headers=integration.headers(), json={"Subject": "Email: x"})

    assert allowed.status_code == 200
    assert rejected.status_code == 400
    assert rejected.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_api__user_without_api_enabled_is_rejected(admin: Login, fresh_org: PracticeOrg) -> None:
    rep = admin.sf.query(
        "SELECT Username FROM User WHERE IsActive = true AND Profile.Name = 'Standard User' "
        "AND Username LIKE '%.practice' LIMIT 1")["records"][0]["Username"]
    client = login(fresh_org, rep)
    profile_set = admin.sf.query(
        "SELECT Id FROM PermissionSet WHERE Profile.Name = 'Standard User'")["records"][0]["Id"]

    admin.sf.PermissionSet.update(profile_set, {"PermissionsApiEnabled": False})
    response = client.http.get(client.url("limits"), headers=client.headers())

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "API_DISABLED_FOR_ORG"
