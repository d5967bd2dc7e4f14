"""Set up a Message-ID field hidden from the admin by field-level security, for the field tests."""

from __future__ import annotations

from simple_salesforce.format import format_soql

from backstory_desktop.salesforce.connection import OrgConnection

FIELD = "Message_ID__c"


def hide_field_from_admin(admin: OrgConnection, field: str = FIELD) -> None:
    """Delete the System Administrator profile's field permissions on ``field`` through the API."""
    rows = admin.query_all("SELECT Id FROM PermissionSet WHERE Profile.Name = 'System Administrator'")
    profile_set_id = str(next(iter(rows))["Id"])
    soql = format_soql("SELECT Id FROM FieldPermissions WHERE ParentId = {} AND Field IN {}",
                       profile_set_id, [f"Task.{field}", f"Event.{field}"])
    for row in list(admin.query_all(soql)):
        admin.request("DELETE", f"sobjects/FieldPermissions/{row['Id']}")
