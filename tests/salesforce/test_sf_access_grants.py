"""Reusing the permission sets a grant writes to, and renewing lapsed assignments, on the practice org."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from simple_salesforce import format_soql

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.access import PERMISSION_SET_NAME, effective_access, list_users
from backstory_desktop.salesforce.access_grants import (
    apply_access_grant,
    apply_field_access_grant,
    plan_access_grant,
    plan_field_access_grant,
    user_set_name,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem
from backstory_desktop.store.settings import OrgProfile

FIELD = "Message_ID__c"
SALESLOFT = "salesloft@practice.backstory.example"
OUTREACH = "outreach@practice.backstory.example"
VIEW_ALL_DATA = "PermissionsViewAllData"
VIEW_ALL_USERS = "PermissionsViewAllUsers"


def user_id(conn: OrgConnection, username: str) -> str:
    (user,) = [user for user in list_users(conn) if user.username == username]
    return user.id


def create_set(conn: OrgConnection, name: str, **flags: bool) -> str:
    result = conn.request("POST", "sobjects/PermissionSet",
                          json={"Name": name, "Label": name.replace("_", " "), **flags})
    return str(result["id"])


def assignments(conn: OrgConnection, uid: str, set_id: str) -> list[dict[str, Any]]:
    soql = format_soql("SELECT Id, ExpirationDate FROM PermissionSetAssignment "
                       "WHERE AssigneeId = {} AND PermissionSetId = {}", uid, set_id)
    return list(conn.query_all(soql))


def field_set_id(conn: OrgConnection) -> str:
    soql = format_soql("SELECT Id FROM PermissionSet WHERE Name = {}", PERMISSION_SET_NAME)
    (row,) = list(conn.query_all(soql))
    return str(row["Id"])


# -- an existing set with our name ------------------------------------------------------------

def test_field_set__extra_permission_refused(admin: OrgConnection, default_org: PracticeOrg) -> None:
    set_id = create_set(admin, PERMISSION_SET_NAME, PermissionsModifyAllData=True)
    uid = user_id(admin, default_org.integration_username)

    plan = plan_field_access_grant(admin, uid, FIELD)

    assert plan.blocked == [
        f"The existing permission set {PERMISSION_SET_NAME} also grants Modify All Data, so it is not "
        "reused: remove that from it in Setup, or change its API name, then plan again."]
    assert not plan.can_apply
    assert plan.diff_lines()[0] == "! " + plan.blocked[0]
    with pytest.raises(SalesforceProblem, match="also grants Modify All Data"):
        apply_access_grant(admin, plan)
    assert assignments(admin, uid, set_id) == []


def test_field_set__other_field_refused(admin: OrgConnection, default_org: PracticeOrg) -> None:
    set_id = create_set(admin, PERMISSION_SET_NAME)
    admin.request("POST", "sobjects/FieldPermissions", json={
        "ParentId": set_id, "SobjectType": "Task", "Field": "Task.peopleai__Created_by_PeopleAI__c",
        "PermissionsRead": True, "PermissionsEdit": True})

    plan = plan_field_access_grant(admin, user_id(admin, default_org.integration_username), FIELD)

    assert len(plan.blocked) == 1
    assert "also grants Edit on Task.peopleai__Created_by_PeopleAI__c" in plan.blocked[0]


def test_field_set__exact_set_reused(admin: OrgConnection, default_org: PracticeOrg) -> None:
    apply_field_access_grant(admin, admin.user_id, FIELD)

    plan = plan_field_access_grant(admin, user_id(admin, default_org.integration_username), FIELD)

    assert plan.blocked == []
    assert plan.can_apply
    assert plan.exists


def test_user_set__extra_permission_refused(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)
    name, _label = user_set_name(uid, SALESLOFT)
    create_set(admin, name, PermissionsModifyAllData=True)

    plan = plan_access_grant(admin, uid, FIELD, system_permissions=[VIEW_ALL_DATA])
    field_only = plan.with_permissions([])

    assert len(plan.blocked) == 1
    assert f"permission set {name} also grants Modify All Data" in plan.blocked[0]
    assert not plan.can_apply
    assert field_only.blocked == []
    assert field_only.can_apply


def test_managed_set__not_reused(admin: OrgConnection, default_org: PracticeOrg) -> None:
    managed_id = create_set(admin, PERMISSION_SET_NAME)
    # A managed package installs its set with a namespace; the API cannot set one.
    with default_org.store.transaction():
        default_org.store.update_record(managed_id, {"NamespacePrefix": "acme"}, modified_by_id=admin.user_id)
    uid = user_id(admin, default_org.integration_username)

    plan = plan_field_access_grant(admin, uid, FIELD)

    assert plan.blocked == [
        f"The permission set {PERMISSION_SET_NAME} belongs to the managed package acme, so it is not "
        "reused: grant the access in Setup with a permission set of the org's own."]
    with pytest.raises(SalesforceProblem, match="managed package acme"):
        apply_field_access_grant(admin, uid, FIELD)
    assert assignments(admin, uid, managed_id) == []


# -- system permissions reach the user they were ticked for ------------------------------------

def test_user_set__other_user_gains_nothing(admin: OrgConnection) -> None:
    salesloft, outreach = user_id(admin, SALESLOFT), user_id(admin, OUTREACH)
    apply_access_grant(admin, plan_access_grant(admin, salesloft, FIELD, system_permissions=[VIEW_ALL_USERS]))

    plan = plan_access_grant(admin, outreach, FIELD, system_permissions=[VIEW_ALL_DATA],
                             include_field=False)
    apply_access_grant(admin, plan)

    assert plan.system_set is not None
    assert plan.system_set.name == user_set_name(outreach, OUTREACH)[0]
    assert not any(line.startswith("!") for line in plan.diff_lines())
    assert not effective_access(admin, salesloft, FIELD, field_unique=True).line("View All Data").granted
    assert not effective_access(admin, outreach, FIELD, field_unique=True).line("View All Users").granted


def test_user_set__other_assignee_named(admin: OrgConnection) -> None:
    salesloft, outreach = user_id(admin, SALESLOFT), user_id(admin, OUTREACH)
    apply_access_grant(admin, plan_access_grant(admin, salesloft, FIELD, system_permissions=[VIEW_ALL_USERS]))
    salesloft_set = plan_access_grant(admin, salesloft, FIELD, system_permissions=[VIEW_ALL_USERS]).system_set
    assert salesloft_set is not None and salesloft_set.permission_set_id is not None
    admin.request("POST", "sobjects/PermissionSetAssignment",
                  json={"AssigneeId": outreach, "PermissionSetId": salesloft_set.permission_set_id})

    plan = plan_access_grant(admin, salesloft, FIELD, system_permissions=[VIEW_ALL_DATA])

    assert plan.system_set is not None
    assert plan.system_set.other_assignees == [OUTREACH]
    assert f"! Also grants View All Data to {OUTREACH}, assigned this set." in plan.diff_lines()


# -- lapsed assignments ------------------------------------------------------------------------

def test_expired_assignment__plan_renews(admin: OrgConnection, default_org: PracticeOrg) -> None:
    uid = user_id(admin, default_org.integration_username)
    apply_field_access_grant(admin, uid, FIELD)
    (assignment,) = assignments(admin, uid, field_set_id(admin))
    admin.request("PATCH", f"sobjects/PermissionSetAssignment/{assignment['Id']}",
                  json={"ExpirationDate": "2020-01-31T00:00:00.000+0000"})
    assert not effective_access(admin, uid, FIELD, field_unique=True).ok

    plan = plan_field_access_grant(admin, uid, FIELD)
    apply_access_grant(admin, plan)

    assert plan.has_changes
    assert plan.diff_lines() == [
        f'~ Renew the assignment of "Backstory Message ID Access" to {default_org.integration_username} '
        "(expired on 2020-01-31): clear its expiration date."]
    assert effective_access(admin, uid, FIELD, field_unique=True).ok
    assert [row["ExpirationDate"] for row in assignments(admin, uid, field_set_id(admin))] == [None]


def test_inactive_assignment__assigned_again(admin: OrgConnection, default_org: PracticeOrg) -> None:
    uid = user_id(admin, default_org.integration_username)
    apply_field_access_grant(admin, uid, FIELD)
    (assignment,) = assignments(admin, uid, field_set_id(admin))
    # IsActive is read-only in the API, so the org's data is changed directly.
    with default_org.store.transaction():
        default_org.store.update_record(assignment["Id"], {"IsActive": False}, modified_by_id=admin.user_id)

    plan = plan_field_access_grant(admin, uid, FIELD)
    applied = apply_access_grant(admin, plan).applied_lines

    expected = [
        f'- Remove the inactive assignment of "Backstory Message ID Access" to '
        f"{default_org.integration_username}.",
        f'+ Assign "Backstory Message ID Access" to {default_org.integration_username}.']
    assert plan.diff_lines() == expected
    assert applied == expected
    assert effective_access(admin, uid, FIELD, field_unique=True).ok
    (renewed,) = assignments(admin, uid, field_set_id(admin))
    assert renewed["Id"] != assignment["Id"]


def test_step__expired_assignment_renewed(admin: OrgConnection, default_org: PracticeOrg) -> None:
    uid = user_id(admin, default_org.integration_username)
    apply_field_access_grant(admin, uid, FIELD)
    (assignment,) = assignments(admin, uid, field_set_id(admin))
    admin.request("PATCH", f"sobjects/PermissionSetAssignment/{assignment['Id']}",
                  json={"ExpirationDate": "2020-01-31T00:00:00.000+0000"})
    run = enablement.EnablementRun(OrgProfile(alias="practice"))
    enablement.use_connection(run, admin)
    enablement.check_field(run)
    enablement.check_integration_user(run, default_org.integration_username)

    result = enablement.apply_access_fix(run)

    assert result.status is StepStatus.PASSED
    (change,) = run.changes
    assert change.summary == (f"Granted Read and Edit on {FIELD} to {default_org.integration_username} "
                              'through permission set "Backstory Message ID Access"')


# -- what apply reports ------------------------------------------------------------------------

def test_apply__returns_lines_written(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)
    plan = plan_access_grant(admin, uid, FIELD, system_permissions=[VIEW_ALL_USERS])

    applied = apply_access_grant(admin, plan).applied_lines

    assert applied == plan.diff_lines()
    assert apply_access_grant(admin, plan_access_grant(admin, uid, FIELD)).applied_lines == []


def test_apply__failed_assignment_recorded(admin: OrgConnection, default_org: PracticeOrg) -> None:
    run = enablement.EnablementRun(OrgProfile(alias="practice", cadence_users={"SalesLoft": [SALESLOFT]}))
    enablement.use_connection(run, admin)
    enablement.check_field(run)
    enablement.check_integration_user(run, default_org.integration_username)
    plan = enablement.plan_access_fix(run, username=SALESLOFT)
    # No user has this id: the set and its field permissions are written, the assignment fails.
    unknown_user = dataclasses.replace(plan, user_id="005000000009999")

    result = enablement.apply_access_fix(run, unknown_user)

    assert result.status is StepStatus.FAILED
    assert result.reason.endswith("The changes made before the failure are in the change log.")
    (change,) = run.changes
    assert change.summary == f"Granted part of the access of {SALESLOFT} before the grant failed"
    assert change.lines == (
        '+ Create permission set "Backstory Message ID Access" (API name Backstory_Message_ID_Access).',
        f'+ Add field permission Read and Edit on Task.{FIELD} to "Backstory Message ID Access".',
        f'+ Add field permission Read and Edit on Event.{FIELD} to "Backstory Message ID Access".',
    )
    assert field_set_id(admin)


def test_extra_grants__read_from_record(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)
    name, _label = user_set_name(uid, SALESLOFT)
    create_set(admin, name, PermissionsViewAllUsers=True, PermissionsViewSetup=True)

    plan = plan_access_grant(admin, uid, FIELD, system_permissions=[VIEW_ALL_DATA])

    assert len(plan.blocked) == 1
    assert "also grants View Setup and Configuration, so it is not reused" in plan.blocked[0]
    assert "View All Users" not in plan.blocked[0]


# -- problems the admin can fix ----------------------------------------------------------------

def test_step__unknown_username_fixable(admin: OrgConnection) -> None:
    run = enablement.EnablementRun(OrgProfile(alias="practice"))
    enablement.use_connection(run, admin)
    enablement.check_field(run)

    result = enablement.check_integration_user(run, "nobody@practice.backstory.example")

    assert result.status is StepStatus.FAILED
    assert result.reason == (
        "No user has the username nobody@practice.backstory.example in this org; pick the integration "
        "user from the org's users, or correct the username in the org profile.")


def test_step__invalid_field_name_fixable(admin: OrgConnection, default_org: PracticeOrg) -> None:
    run = enablement.EnablementRun(OrgProfile(alias="practice"))
    enablement.use_connection(run, admin)
    enablement.check_field(run)
    assert run.field_state is not None
    run.field_state = dataclasses.replace(run.field_state, api_name="Msg__c__c")

    result = enablement.check_integration_user(run, default_org.integration_username)

    assert result.status is StepStatus.FAILED
    assert result.reason == ("'Msg__c__c' has two underscores in a row at position 4; a field name may "
                             "use single underscores only.")
    assert result.details["error_code"] == "INVALID_FIELD_NAME"
