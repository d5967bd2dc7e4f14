"""Effective access of users in the practice org, and the field-access grant."""

from __future__ import annotations

import pytest
from simple_salesforce import format_soql

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.access import (
    PERMISSION_SET_LABEL,
    PERMISSION_SET_NAME,
    SYSTEM_PERMISSIONS,
    effective_access,
    list_users,
)
from backstory_desktop.salesforce.access_grants import (
    GrantPlan,
    SystemSetPlan,
    apply_access_grant,
    apply_field_access_grant,
    permission_dependencies,
    plan_access_grant,
    plan_field_access_grant,
    resolve_dependencies,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.settings import OrgProfile

FIELD = "Message_ID__c"
GRANT_SOURCE = f"permission set {PERMISSION_SET_LABEL}"
MUTED_SOURCE = "muted by group Sales Operations (muting permission set Sales Operations Muted)"


def user_id(conn: OrgConnection, username: str) -> str:
    (user,) = [user for user in list_users(conn) if user.username == username]
    return user.id


def line_names(conn: OrgConnection, uid: str) -> list[str]:
    return [line.name for line in effective_access(conn, uid, FIELD, field_unique=True).lines]


def test_access__lines_in_checklist_order(admin: OrgConnection) -> None:
    assert line_names(admin, admin.user_id) == [
        "Active",
        "API Enabled",
        "Edit Tasks",
        "Read on Message_ID__c",
        "Edit on Message_ID__c",
        "View All Data",
        "View All Users",
    ]


def test_access__admin_granted_by_profile(admin: OrgConnection) -> None:
    report = effective_access(admin, admin.user_id, FIELD, field_unique=True)
    assert report.ok
    assert report.profile == "System Administrator"
    for name in ("API Enabled", "Edit Tasks", "Read on Message_ID__c", "Edit on Message_ID__c"):
        assert report.line(name).granted
        assert "profile System Administrator" in report.line(name).sources


def test_access__integration_user_lacks_field_access(
    admin: OrgConnection, default_org: PracticeOrg
) -> None:
    uid = user_id(admin, default_org.integration_username)
    report = effective_access(admin, uid, FIELD, field_unique=True)

    assert not report.ok
    assert report.username == default_org.integration_username
    assert report.line("Active").granted
    for name in ("API Enabled", "Edit Tasks", "View All Data", "View All Users"):
        line = report.line(name)
        assert line.granted
        assert "permission set Backstory Integration" in line.sources
    for name in ("Read on Message_ID__c", "Edit on Message_ID__c"):
        line = report.line(name)
        assert not line.granted
        assert line.required
        assert line.sources == []
        assert "Task.Message_ID__c and Event.Message_ID__c" in line.note


def test_access__view_all_data_required_if_not_unique(admin: OrgConnection) -> None:
    unique = effective_access(admin, admin.user_id, FIELD, field_unique=True)
    not_unique = effective_access(admin, admin.user_id, FIELD, field_unique=False)
    assert not unique.line("View All Data").required
    assert not_unique.line("View All Data").required
    assert not unique.line("View All Users").required


def test_access__cadence_user_granted_by_permission_set(admin: OrgConnection) -> None:
    uid = user_id(admin, "outreach@practice.backstory.example")
    report = effective_access(admin, uid, FIELD, field_unique=True)
    assert report.line("Read on Message_ID__c").granted
    assert "permission set Outreach Integration" in report.line("Read on Message_ID__c").sources


def test_grant__plan_shows_every_change(admin: OrgConnection, default_org: PracticeOrg) -> None:
    uid = user_id(admin, default_org.integration_username)
    plan = plan_field_access_grant(admin, uid, FIELD)
    assert plan.describe() == [
        'Create permission set "Backstory Message ID Access" '
        "(API name Backstory_Message_ID_Access).",
        'Add field permission Read and Edit on Task.Message_ID__c to "Backstory Message ID Access".',
        'Add field permission Read and Edit on Event.Message_ID__c to "Backstory Message ID Access".',
        f'Assign "Backstory Message ID Access" to {default_org.integration_username}.',
    ]


def test_grant__applied_then_rechecked(admin: OrgConnection, default_org: PracticeOrg) -> None:
    uid = user_id(admin, default_org.integration_username)

    apply_field_access_grant(admin, uid, FIELD)
    report = effective_access(admin, uid, FIELD, field_unique=True)

    assert report.ok
    for name in ("Read on Message_ID__c", "Edit on Message_ID__c"):
        assert report.line(name).granted
        assert report.line(name).sources == [GRANT_SOURCE]
    again = plan_field_access_grant(admin, uid, FIELD)
    assert not again.has_changes
    assert again.describe()[0].startswith("No change")


def test_grant__second_user_only_assigned(admin: OrgConnection, default_org: PracticeOrg) -> None:
    apply_field_access_grant(admin, user_id(admin, default_org.integration_username), FIELD)
    other = user_id(admin, "outreach@practice.backstory.example")
    plan = plan_field_access_grant(admin, other, FIELD)
    assert plan.exists
    assert plan.field_permissions_to_add == []
    assert plan.assign


def test_access__group_muting_removes_edit(admin: OrgConnection) -> None:
    uid = user_id(admin, "salesops@practice.backstory.example")

    report = effective_access(admin, uid, FIELD, field_unique=True)

    assert report.line("Read on Message_ID__c").granted
    assert report.line("Read on Message_ID__c").sources == [
        "permission set group Sales Operations (through permission set Activity Reporting)"]
    assert not report.line("Edit on Message_ID__c").granted
    assert report.line("View All Data").granted


def test_access__grant_outside_group_restores_edit(admin: OrgConnection) -> None:
    uid = user_id(admin, "salesops@practice.backstory.example")

    apply_field_access_grant(admin, uid, FIELD)
    report = effective_access(admin, uid, FIELD, field_unique=True)

    line = report.line("Edit on Message_ID__c")
    assert line.granted
    assert line.sources == [GRANT_SOURCE, MUTED_SOURCE], "the group still mutes its own grant"
    assert line.muted_by == [MUTED_SOURCE]


# -- least-privilege grants with system permissions --------------------------------------

SALESLOFT = "salesloft@practice.backstory.example"
OUTREACH = "outreach@practice.backstory.example"
PROFILE_FLAGS = ("PermissionsApiEnabled", "PermissionsEditTask", "PermissionsViewAllData",
                 "PermissionsViewAllUsers")


def permission_set_flags(conn: OrgConnection, name: str) -> dict[str, bool]:
    soql = format_soql(f"SELECT {', '.join(PROFILE_FLAGS)} FROM PermissionSet WHERE Name = {{}}", name)
    (row,) = list(conn.query_all(soql))
    return {flag: bool(row[flag]) for flag in PROFILE_FLAGS}


def assigned_set_names(conn: OrgConnection, uid: str) -> set[str]:
    soql = format_soql("SELECT PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = {}", uid)
    return {row["PermissionSet"]["Name"] for row in conn.query_all(soql)}


def test_access__system_permissions_listed() -> None:
    assert [label for _flag, label in SYSTEM_PERMISSIONS] == [
        "API Enabled", "Edit Tasks", "View All Data", "View All Users"]


def test_access__cadence_user_lines(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)

    report = effective_access(admin, uid, FIELD, field_unique=False, cadence_tool=True)

    assert [line.name for line in report.lines] == [
        "Active", "API Enabled", "Edit Tasks", "Read on Message_ID__c", "Edit on Message_ID__c"]
    assert not report.ok
    assert [line.name for line in report.missing] == ["Read on Message_ID__c", "Edit on Message_ID__c"]
    assert "permission set SalesLoft Integration" in report.line("API Enabled").sources


def test_plan__only_ticked_permissions(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)

    plan = plan_access_grant(admin, uid, FIELD, system_permissions=["PermissionsViewAllData"])

    assert plan.permissions_to_enable == ["PermissionsViewAllData"]
    assert plan.system_set is not None
    assert plan.system_set.label == f"Backstory Access for {SALESLOFT}"
    assert plan.describe()[-3:] == [
        f'Create permission set "Backstory Access for {SALESLOFT}" '
        f"(API name Backstory_User_Access_{uid[:15]}).",
        f'Enable system permission View All Data in "Backstory Access for {SALESLOFT}".',
        f'Assign "Backstory Access for {SALESLOFT}" to {SALESLOFT}.',
    ]


def test_plan__unknown_permission_rejected(admin: OrgConnection) -> None:
    with pytest.raises(ValueError, match="invalid system permission PermissionsModifyAllData"):
        plan_access_grant(admin, admin.user_id, FIELD, system_permissions=["PermissionsModifyAllData"])


def test_apply__set_contains_only_ticked(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)
    profile_before = permission_set_flags(admin, "X00ex00000018ozh_2")

    plan = plan_access_grant(admin, uid, FIELD,
                             system_permissions=["PermissionsViewAllData", "PermissionsViewAllUsers"])
    apply_access_grant(admin, plan.with_permissions(["PermissionsViewAllData"]))
    report = effective_access(admin, uid, FIELD, field_unique=False)

    user_set = f"Backstory_User_Access_{uid[:15]}"
    assert permission_set_flags(admin, user_set) == {
        "PermissionsApiEnabled": False, "PermissionsEditTask": False,
        "PermissionsViewAllData": True, "PermissionsViewAllUsers": False}
    assert permission_set_flags(admin, PERMISSION_SET_NAME) == dict.fromkeys(PROFILE_FLAGS, False)
    assert permission_set_flags(admin, "X00ex00000018ozh_2") == profile_before, "a profile changed"
    assert {user_set, PERMISSION_SET_NAME} <= assigned_set_names(admin, uid)
    assert report.ok
    assert report.line("View All Data").sources == [f"permission set Backstory Access for {SALESLOFT}"]
    assert not report.line("View All Users").granted


def test_apply__second_time_changes_nothing(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)
    plan = plan_access_grant(admin, uid, FIELD, system_permissions=["PermissionsViewAllUsers"])
    apply_access_grant(admin, plan)

    again = plan_access_grant(admin, uid, FIELD, system_permissions=["PermissionsViewAllUsers"])

    assert not again.has_changes
    assert again.describe()[0].startswith("No change")


def test_plan__cadence_user_set_own(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)

    plan = plan_access_grant(admin, uid, FIELD, system_permissions=["PermissionsApiEnabled"],
                             include_field=False)

    assert plan.system_set is not None
    assert plan.system_set.name == f"Backstory_User_Access_{uid[:15]}"
    assert not any("Message ID Access" in line for line in plan.describe())


def test_with_permissions__none_ticked_drops_set(admin: OrgConnection) -> None:
    uid = user_id(admin, SALESLOFT)
    plan = plan_access_grant(admin, uid, FIELD, system_permissions=["PermissionsViewAllUsers"])

    narrowed = plan.with_permissions([])

    assert narrowed.system_set is None
    assert narrowed.permissions_to_enable == []
    assert all("Backstory Message ID Access" in line for line in narrowed.describe())


def test_dependencies__added_with_reason() -> None:
    table = {"PermissionsViewAllData": {"PermissionsViewAllUsers"},
             "PermissionsViewAllUsers": {"PermissionsViewSetup"}}

    ordered, required_by = resolve_dependencies(["PermissionsViewAllData"], table)

    assert ordered == ["PermissionsViewAllData", "PermissionsViewAllUsers", "PermissionsViewSetup"]
    assert required_by == {"PermissionsViewAllUsers": "PermissionsViewAllData",
                           "PermissionsViewSetup": "PermissionsViewAllUsers"}


def test_dependencies__described_and_narrowed() -> None:
    plan = GrantPlan(PERMISSION_SET_LABEL, True, [], False, username="someone", field_access=False,
                     permissions_to_enable=["PermissionsViewAllData", "PermissionsViewSetup"],
                     requested_permissions=["PermissionsViewAllData", "PermissionsViewAllUsers"],
                     required_by={"PermissionsViewSetup": "PermissionsViewAllData"},
                     dependencies={"PermissionsViewAllData": {"PermissionsViewSetup"}},
                     already_enabled={"PermissionsViewAllUsers"},
                     system_set=SystemSetPlan("Set", "Set", exists=True, assign=False))

    lines = plan.describe()
    narrowed = plan.with_permissions(["PermissionsViewAllUsers"])

    assert lines == [
        'Enable system permission View All Data in "Set".',
        'Enable system permission View Setup and Configuration in "Set" (View All Data requires it).',
    ]
    assert narrowed.permissions_to_enable == []
    assert narrowed.required_by == {}


def test_with_permissions__unticked_dependency_kept() -> None:
    table = {"PermissionsViewAllData": {"PermissionsViewAllUsers"}}
    requested = ["PermissionsViewAllData", "PermissionsViewAllUsers"]
    flags, required_by = resolve_dependencies(requested, table)
    plan = GrantPlan(PERMISSION_SET_LABEL, True, [], False, username="someone", field_access=False,
                     permissions_to_enable=flags, requested_permissions=requested, required_by=required_by,
                     dependencies=table, system_set=SystemSetPlan("Set", "Set", exists=True, assign=False))

    narrowed = plan.with_permissions(["PermissionsViewAllData"])

    assert narrowed.requested_permissions == ["PermissionsViewAllData"]
    assert narrowed.permissions_to_enable == ["PermissionsViewAllData", "PermissionsViewAllUsers"]
    assert narrowed.required_by == {"PermissionsViewAllUsers": "PermissionsViewAllData"}
    assert narrowed.describe() == [
        'Enable system permission View All Data in "Set".',
        'Enable system permission View All Users in "Set" (View All Data requires it).',
    ]


def test_with_permissions__enabled_dependency_skipped() -> None:
    table = {"PermissionsViewAllData": {"PermissionsViewAllUsers"}}
    plan = GrantPlan(PERMISSION_SET_LABEL, True, [], False, username="someone", field_access=False,
                     permissions_to_enable=["PermissionsViewAllData"],
                     requested_permissions=["PermissionsViewAllData", "PermissionsViewAllUsers"],
                     dependencies=table, already_enabled={"PermissionsViewAllUsers"},
                     system_set=SystemSetPlan("Set", "Set", exists=True, assign=False))

    narrowed = plan.with_permissions(["PermissionsViewAllData"])

    assert narrowed.permissions_to_enable == ["PermissionsViewAllData"]


def test_dependencies__unreadable_table_is_empty(admin: OrgConnection) -> None:
    assert permission_dependencies(admin) == {}


# -- the integration user step, with the cadence tools' users -------------------------------

def checked_run(admin: OrgConnection, cadence_users: dict[str, list[str]]) -> enablement.EnablementRun:
    run = enablement.EnablementRun(OrgProfile(alias="practice", cadence_users=cadence_users))
    enablement.use_connection(run, admin)
    enablement.check_field(run)
    return run


def test_step__cadence_user_without_field_fails(admin: OrgConnection, default_org: PracticeOrg) -> None:
    run = checked_run(admin, {"Outreach": [OUTREACH], "SalesLoft": [SALESLOFT]})
    apply_field_access_grant(admin, user_id(admin, default_org.integration_username), FIELD)

    result = enablement.check_integration_user(run, default_org.integration_username)

    assert result.status is StepStatus.FAILED
    assert result.reason == (f"SalesLoft user {SALESLOFT} lacks: Read on Message_ID__c, "
                             "Edit on Message_ID__c.")
    entries = {entry["username"]: entry for entry in result.details["cadence_users"]}
    assert entries[OUTREACH]["ok"] is True
    assert entries[SALESLOFT]["ok"] is False
    assert entries[SALESLOFT]["tool"] == "SalesLoft"
    assert sorted(run.cadence_access) == [OUTREACH, SALESLOFT]


def test_step__unknown_cadence_user_named(admin: OrgConnection, default_org: PracticeOrg) -> None:
    run = checked_run(admin, {"SendBloom": ["gone@practice.backstory.example"]})

    result = enablement.check_integration_user(run, default_org.integration_username)

    assert result.status is StepStatus.FAILED
    assert "SendBloom user gone@practice.backstory.example is not in this org" in result.reason
    assert enablement.check_cadence_users(run) == []


def test_step__cadence_fix_recorded_and_rechecked(admin: OrgConnection, default_org: PracticeOrg) -> None:
    run = checked_run(admin, {"SalesLoft": [SALESLOFT]})
    enablement.check_integration_user(run, default_org.integration_username)

    plan = enablement.plan_access_fix(run, username=SALESLOFT)
    result = enablement.apply_access_fix(run, plan)

    assert plan.system_set is None
    assert "SalesLoft" not in result.reason
    assert result.details["cadence_users"][0]["ok"] is True
    assert run.cadence_access[SALESLOFT].ok
    (change,) = run.changes
    assert change.summary == (f"Granted Read and Edit on {FIELD} to {SALESLOFT} through "
                              'permission set "Backstory Message ID Access"')
    assert change.lines == tuple(plan.diff_lines())
    assert change.made_by == admin.username


def test_step__fix_without_plan_grants_field(admin: OrgConnection, default_org: PracticeOrg) -> None:
    run = checked_run(admin, {})
    enablement.check_integration_user(run, default_org.integration_username)

    result = enablement.apply_access_fix(run)

    assert result.status is StepStatus.PASSED
    assert len(run.changes) == 1
