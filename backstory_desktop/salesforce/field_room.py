"""The room left on Activity for custom fields and External ID fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import explain
from backstory_desktop.salesforce.schema import row_api_name

# Salesforce Help KB 000385134: an object has at most 25 External ID fields by default;
# Salesforce Support can raise it.
EXTERNAL_ID_LIMIT = 25
# Salesforce Help "Custom Fields Allowed Per Object" gives 500 per object in Enterprise
# Edition and states that additional restrictions apply for activities. Fields of AppExchange
# certified managed packages are installed beyond the edition's figure, so they are not counted.
# NOTE: 100 is the figure commonly given for Activity; no Salesforce page read here confirms it.
ACTIVITY_CUSTOM_FIELD_LIMIT = 100
# Room at or below this many fields is reported as nearly full.
FEW_LEFT = 2


@dataclass
class FieldRoom:
    """The room left for Activity custom fields and External ID fields in the org.

    A count is None when it could not be read, and ``notes`` explain why.
    """

    custom_fields: int | None = None  # the org's own Activity custom fields
    packaged_fields: int | None = None  # fields of managed packages, outside the limit
    external_ids: int | None = None  # custom External ID fields on Task, as describe shows them
    hidden_fields: int = 0  # Activity fields describe hides from the user, not checked for External ID
    custom_field_limit: int = ACTIVITY_CUSTOM_FIELD_LIMIT
    external_id_limit: int = EXTERNAL_ID_LIMIT
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def custom_fields_left(self) -> int | None:
        """The number of Activity custom fields the org can still create, if known."""
        if self.custom_fields is None:
            return None
        return max(self.custom_field_limit - self.custom_fields, 0)

    @property
    def external_ids_left(self) -> int | None:
        """The number of External ID fields Activity can still take, if known."""
        if self.external_ids is None:
            return None
        return max(self.external_id_limit - self.external_ids, 0)

    @property
    def external_ids_left_at_least(self) -> int | None:
        """The External ID fields left if every hidden Activity field were one, if known."""
        left = self.external_ids_left
        return None if left is None else max(left - self.hidden_fields, 0)


def custom_field_room(conn: OrgConnection) -> FieldRoom:
    """Count the Activity custom fields and External ID fields, and warn when room runs out.

    Custom fields are counted through the Tooling API, which lists fields hidden
    by field-level security too. External ID fields are counted in the Task
    describe, which leaves hidden fields out, so those are reported as not checked.
    """
    room = FieldRoom()
    described = [entry for entry in conn.describe("Task").get("fields", [])
                 if str(entry.get("name", "")).endswith("__c")]
    room.external_ids = sum(1 for entry in described if entry.get("externalId"))
    try:
        rows = conn.tooling_query(
            "SELECT Id, DeveloperName, NamespacePrefix FROM CustomField WHERE TableEnumOrId = 'Activity'")
    except SalesforceError as error:
        room.notes.append(
            f"{conn.username} may not read field definitions (Tooling API), so the Activity custom "
            f"fields were not counted: {explain(error).sentence}")
    else:
        room.custom_fields = sum(1 for row in rows if not row.get("NamespacePrefix"))
        room.packaged_fields = len(rows) - room.custom_fields
        visible = {str(entry.get("name", "")).lower() for entry in described}
        room.hidden_fields = sum(1 for row in rows if row_api_name(row).lower() not in visible)
    if room.hidden_fields == 1:
        room.notes.append(
            f"1 Activity field is hidden from {conn.username} by field-level security, so it was "
            "not checked for External ID.")
    elif room.hidden_fields:
        room.notes.append(
            f"{room.hidden_fields} Activity fields are hidden from {conn.username} by field-level "
            "security, so they were not checked for External ID.")
    room.warnings = _room_warnings(room)
    return room


def _room_warnings(room: FieldRoom) -> list[str]:
    warnings = []
    left = room.custom_fields_left
    if left is not None and left <= FEW_LEFT:
        warnings.append(
            f"Activity has room for {left} more custom fields of {room.custom_field_limit} "
            "(a default; check Setup > Object Manager > Activity); delete unused ones before "
            "creating the key field.")
    left = room.external_ids_left
    at_least = room.external_ids_left_at_least
    if left is not None and left <= FEW_LEFT:
        warnings.append(
            f"Activity has room for {left} more External ID fields of {room.external_id_limit} "
            "(the default); ask Salesforce Support to raise the limit or clear External ID on an "
            "unused field.")
    elif at_least is not None and at_least <= FEW_LEFT:
        warnings.append(
            f"Activity may have no room for another External ID field: {room.hidden_fields} fields "
            "hidden from you were not checked; sign in as a user who sees every Activity field to "
            "count them.")
    return warnings
