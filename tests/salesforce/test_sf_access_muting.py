"""Effective access through a permission set group, its muting permission set, and expired assignments.

The default scenario assigns salesops@practice.backstory.example the group
"Sales Operations": its permission set "Activity Reporting" grants Read and
Edit on Message_ID__c and View All Data, and its muting permission set "Sales
Operations Muted" mutes Edit on Message_ID__c. The same user's assignment of
"Quarter End Cleanup" (View All Data, Modify All Data) has expired.
"""

from __future__ import annotations

from typing import Any

from simple_salesforce import format_soql

from backstory_desktop.salesforce.access import AccessReport, effective_access
from backstory_desktop.salesforce.connection import OrgConnection

FIELD = "Message_ID__c"
SALES_OPS = "salesops@practice.backstory.example"
THROUGH_GROUP = "permission set group Sales Operations (through permission set Activity Reporting)"
MUTED = "muted by group Sales Operations (muting permission set Sales Operations Muted)"


def only(conn: OrgConnection, soql: str) -> dict[str, Any]:
    rows = list(conn.query_all(soql))
    assert len(rows) == 1, rows
    return rows[0]


def sales_ops_id(conn: OrgConnection) -> str:
    return str(only(conn, format_soql("SELECT Id FROM User WHERE Username = {}", SALES_OPS))["Id"])


def sales_ops_access(conn: OrgConnection, *, field_unique: bool = True) -> AccessReport:
    return effective_access(conn, sales_ops_id(conn), FIELD, field_unique=field_unique)


def cleanup_assignment(conn: OrgConnection) -> dict[str, Any]:
    return only(conn, format_soql(
        "SELECT Id, ExpirationDate FROM PermissionSetAssignment WHERE Assignee.Username = {} "
        "AND PermissionSet.Name = 'Quarter_End_Cleanup'", SALES_OPS))


def test_muting__edit_line_names_muting_set(admin: OrgConnection) -> None:
    line = sales_ops_access(admin).line(f"Edit on {FIELD}")

    assert not line.granted
    assert line.sources == [MUTED]
    assert line.muted_by == [MUTED]
    assert "muting permission set removes it" in line.note


def test_group__grant_names_component(admin: OrgConnection) -> None:
    report = sales_ops_access(admin)

    assert report.line(f"Read on {FIELD}").sources == [THROUGH_GROUP]
    assert report.line("View All Data").sources == [THROUGH_GROUP]
    assert report.line("API Enabled").sources == ["profile Standard User", THROUGH_GROUP]


def test_expired__assignment_listed_not_counted(admin: OrgConnection) -> None:
    expires = str(cleanup_assignment(admin)["ExpirationDate"])[:10]

    report = sales_ops_access(admin)

    assert report.ignored_assignments == [f"permission set Quarter End Cleanup: expired on {expires}"]
    assert all("Quarter End Cleanup" not in source
               for line in report.lines for source in line.sources)


def test_expired__renewed_assignment_counts(admin: OrgConnection) -> None:
    admin.request("PATCH", f"sobjects/PermissionSetAssignment/{cleanup_assignment(admin)['Id']}",
                  json={"ExpirationDate": "2099-01-01T00:00:00.000+0000"})

    report = sales_ops_access(admin)

    assert report.ignored_assignments == []
    assert "permission set Quarter End Cleanup" in report.line("View All Data").sources


def test_muted_flag__note_names_expired_grant(admin: OrgConnection) -> None:
    muting = only(admin, "SELECT Id FROM MutingPermissionSet WHERE DeveloperName = 'Sales_Operations_Muted'")
    admin.request("PATCH", f"sobjects/MutingPermissionSet/{muting['Id']}",
                  json={"PermissionsViewAllData": True})

    line = sales_ops_access(admin, field_unique=False).line("View All Data")

    assert not line.granted
    assert line.required
    assert line.muted_by == [MUTED]
    assert "Not counted: permission set Quarter End Cleanup (expired on " in line.note


def test_muting_removed__edit_granted_by_group(admin: OrgConnection) -> None:
    component = only(admin, "SELECT Id FROM PermissionSetGroupComponent "
                            "WHERE PermissionSetGroup.DeveloperName = 'Sales_Operations' "
                            "AND PermissionSetId IN (SELECT Id FROM MutingPermissionSet)")
    admin.request("DELETE", f"sobjects/PermissionSetGroupComponent/{component['Id']}")

    line = sales_ops_access(admin).line(f"Edit on {FIELD}")

    assert line.granted
    assert line.sources == [THROUGH_GROUP]
    assert line.muted_by == []
