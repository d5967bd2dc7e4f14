"""Inspecting and creating the Message-ID field in the practice org."""

from __future__ import annotations

import pytest

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.errors import SalesforceProblem
from backstory_desktop.salesforce.schema import (
    create_message_id_field,
    inspect_flag_field,
    inspect_message_id_field,
)


def connect_practice(org: PracticeOrg, username: str) -> OrgConnection:
    """Sign in to ``org`` as ``username`` through the PKCE flow."""
    return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)


def describe_entry(conn: OrgConnection, name: str) -> dict[str, object] | None:
    for entry in conn.describe("Task")["fields"]:
        if entry["name"] == name:
            return dict(entry)
    return None


def test_inspect__fresh_org_says_missing(fresh_org: PracticeOrg) -> None:
    conn = connect_practice(fresh_org, fresh_org.admin_username)
    state = inspect_message_id_field(conn)
    assert not state.exists
    assert not state.visible_in_describe
    assert state.problems == [
        "Activity.Message_ID__c does not exist; create it as Text(255), Unique, External ID."
    ]


@pytest.mark.parametrize("case_sensitive", [True, False])
def test_create__field_visible_as_asked(fresh_org: PracticeOrg, case_sensitive: bool) -> None:
    conn = connect_practice(fresh_org, fresh_org.admin_username)

    creation = create_message_id_field(conn, "Message_ID", case_sensitive=case_sensitive)
    state = creation.state

    assert creation.created
    assert state.api_name == "Message_ID__c"
    assert state.problems == []
    assert state.visible_in_describe
    assert state.tooling_id is not None
    assert state.tooling_id.startswith("00N")
    entry = describe_entry(conn, "Message_ID__c")
    assert entry is not None
    assert entry["type"] == "string"
    assert entry["length"] == 255
    assert entry["unique"] is True
    assert entry["externalId"] is True
    assert entry["caseSensitive"] is case_sensitive
    assert entry["createable"] is True
    assert entry["updateable"] is True


def test_create__grants_access_through_the_backstory_permission_set(fresh_org: PracticeOrg) -> None:
    conn = connect_practice(fresh_org, fresh_org.admin_username)
    create_message_id_field(conn, case_sensitive=True)
    rows = list(
        conn.query_all(
            "SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
            "WHERE Parent.Name = 'Backstory_Message_ID_Access'"
        )
    )
    granted = {row["Field"]: (row["PermissionsRead"], row["PermissionsEdit"]) for row in rows}
    assert granted == {
        "Task.Message_ID__c": (True, True),
        "Event.Message_ID__c": (True, True),
    }


def test_create__repeated_run_keeps_the_field(fresh_org: PracticeOrg) -> None:
    conn = connect_practice(fresh_org, fresh_org.admin_username)
    first = create_message_id_field(conn, case_sensitive=True)
    second = create_message_id_field(conn, case_sensitive=True)
    assert second.state.tooling_id == first.state.tooling_id
    assert second.state.problems == []
    assert not second.created
    assert second.lines == []


def test_create__existing_field_with_other_case_rule_refused(default_org: PracticeOrg) -> None:
    conn = connect_practice(default_org, default_org.admin_username)
    with pytest.raises(SalesforceProblem) as raised:
        create_message_id_field(conn, case_sensitive=False)
    assert raised.value.error_code == "FIELD_EXISTS"
    assert "case_sensitive is True" in raised.value.sentence


def test_inspect__default_org_ready_for_the_admin(admin: OrgConnection) -> None:
    state = inspect_message_id_field(admin)
    assert state.problems == []
    assert state.exists
    assert state.visible_in_describe
    assert state.type == "Text"
    assert state.length == 255
    assert state.unique is True
    assert state.external_id is True
    assert state.case_sensitive is True


def test_inspect__hidden_from_user_who_reads_setup(
    admin: OrgConnection, default_org: PracticeOrg
) -> None:
    reader = admin.sf.PermissionSet.create(
        {"Name": "Setup_Reader", "Label": "Setup Reader", "PermissionsViewSetup": True})
    integration_id = admin.sf.query(
        f"SELECT Id FROM User WHERE Username = '{default_org.integration_username}'"
    )["records"][0]["Id"]
    admin.sf.PermissionSetAssignment.create(
        {"AssigneeId": integration_id, "PermissionSetId": reader["id"]})

    conn = connect_practice(default_org, default_org.integration_username)
    state = inspect_message_id_field(conn)

    assert not state.visible_in_describe
    assert len(state.problems) == 1
    problem = state.problems[0]
    assert "Message_ID__c" in problem
    assert default_org.integration_username in problem
    assert "field-level security hides it" in problem


def test_inspect__hidden_and_setup_unreadable(default_org: PracticeOrg) -> None:
    # Without View Setup and Configuration, Tooling queries of CustomField fail, so a
    # field hidden by field-level security looks the same as a missing one.
    conn = connect_practice(default_org, default_org.integration_username)

    state = inspect_message_id_field(conn)

    assert not state.visible_in_describe
    assert not state.exists
    assert len(state.problems) == 1
    assert "could not be checked" in state.problems[0]
    assert "sign in as an admin" in state.problems[0]


def test_inspect__non_unique_field_named(start_org: object) -> None:
    org = start_org("non-unique")  # type: ignore[operator]
    conn = connect_practice(org, org.admin_username)
    state = inspect_message_id_field(conn)
    assert state.unique is False
    assert state.external_id is True
    assert any("is not Unique" in problem for problem in state.problems)


def test_inspect__flag_field_visible_to_admin(admin: OrgConnection) -> None:
    state = inspect_flag_field(admin)
    assert state.api_name == "peopleai__Created_by_PeopleAI__c"
    assert state.exists
    assert state.visible_in_describe
    assert state.problems == []
