"""Effective access of users in the practice org, and the field-access grant."""

from __future__ import annotations

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.access import (
    PERMISSION_SET_LABEL,
    apply_field_access_grant,
    effective_access,
    list_users,
    plan_field_access_grant,
)
from backstory_desktop.salesforce.connection import OrgConnection

FIELD = "Message_ID__c"
GRANT_SOURCE = f"permission set {PERMISSION_SET_LABEL}"


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
        "permission set group Sales Operations"]
    assert not report.line("Edit on Message_ID__c").granted
    assert report.line("View All Data").granted


def test_access__grant_outside_group_restores_edit(admin: OrgConnection) -> None:
    uid = user_id(admin, "salesops@practice.backstory.example")

    apply_field_access_grant(admin, uid, FIELD)
    report = effective_access(admin, uid, FIELD, field_unique=True)

    assert report.line("Edit on Message_ID__c").granted
    assert report.line("Edit on Message_ID__c").sources == [GRANT_SOURCE]
