"""Record writes with the platform rules the product depends on.

Create, update, delete and upsert check what Salesforce checks:

- the field exists and is visible (FLS);
- it is createable or updateable (Task.TaskSubtype is create-only);
- the user has Edit on custom fields;
- text fits its length and restricted picklists contain the value;
- references point at records of the right type, and owners are active users;
- unique fields stay unique, recycle bin included, as Salesforce's unique index does.
"""

from __future__ import annotations

import logging
from typing import Any

from backstory_desktop.practice_org.errors import ApiError, no_such_column, not_writable
from backstory_desktop.practice_org.ids import sobject_for_id, to_id18
from backstory_desktop.practice_org.schema import ACTIVITY_OBJECTS, FieldSpec, SObjectSpec
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.store import Record

logger = logging.getLogger(__name__)

_SETUP_OBJECTS = ("User", "Profile", "PermissionSet", "PermissionSetAssignment",
                  "FieldPermissions")
_RECYCLED_OBJECTS = ("Task", "Event", "Contact", "Lead", "Account")
_HARD_DELETED_OBJECTS = ("PermissionSet", "PermissionSetAssignment", "FieldPermissions")


def create_record(session: ApiSession, sobject: str, body: dict[str, Any]) -> Record:
    """Validate and insert a new record; raise ApiError where Salesforce would reject it."""
    spec = session.sobject(sobject)
    _require_object_write(session, spec)
    values = _checked_values(session, spec, body, creating=True)
    values = _with_defaults(session, spec, values)
    _check_required(spec, values)
    _check_object_rules(session, spec, values, None)
    _check_unique(session, spec, values, None)
    record = session.store.insert_record(spec.name, _derived(spec, values),
                                         created_by_id=session.user_id)
    logger.debug("Created %s %s", spec.name, record.id)
    return record


def update_record(session: ApiSession, record: Record, body: dict[str, Any]) -> None:
    """Validate changed fields and apply them to an existing record."""
    spec = session.sobject(record.sobject)
    _require_object_write(session, spec)
    values = _checked_values(session, spec, body, creating=False)
    _check_object_rules(session, spec, values, record)
    _check_unique(session, spec, values, record)
    merged = {**record.fields, **values}
    session.store.update_record(record.id, _derived(spec, merged), modified_by_id=session.user_id)
    if spec.name == "FieldPermissions" and not merged.get("PermissionsRead"):
        # Salesforce removes a FieldPermissions row once it grants nothing.
        session.store.delete_permanently(record.id)


def delete_record(session: ApiSession, record: Record) -> None:
    """Move Tasks, Contacts and Leads to the recycle bin; remove permission rows for good."""
    spec = session.sobject(record.sobject)
    _require_object_write(session, spec)
    if spec.name == "PermissionSet" and record.fields.get("IsOwnedByProfile"):
        raise ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                       "You can't delete a permission set owned by a profile.")
    if spec.name in _RECYCLED_OBJECTS:
        session.store.set_deleted(record.id, True)
    elif spec.name in _HARD_DELETED_OBJECTS:
        session.store.delete_permanently(record.id)
    else:
        raise ApiError(405, "METHOD_NOT_ALLOWED",
                       "HTTP Method 'DELETE' not allowed. Allowed are GET,HEAD,PATCH")


def live_record(session: ApiSession, sobject: str, record_id: str) -> Record:
    """Return a record that is not in the recycle bin, or raise NOT_FOUND."""
    record = session.store.get_record(to_id18(record_id))
    if record is None or record.is_deleted or record.sobject != sobject:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return record


# -- permission checks -------------------------------------------------------


def _require_object_write(session: ApiSession, spec: SObjectSpec) -> None:
    if spec.name == "Task":
        session.require("PermissionsEditTask", "insufficient access rights on object id")
    elif spec.name == "Event":
        session.require("PermissionsEditEvent", "insufficient access rights on object id")
    elif spec.name in _SETUP_OBJECTS:
        # NOTE: Salesforce splits this across Manage Users, Assign Permission Sets and
        # Manage Profiles and Permission Sets. The practice org requires Modify All Data.
        session.require("PermissionsModifyAllData", "insufficient access rights on object id")


# -- field values ------------------------------------------------------------


def _checked_values(
    session: ApiSession, spec: SObjectSpec, body: dict[str, Any], *, creating: bool
) -> dict[str, Any]:
    """Return the body's field values under their API names, each checked."""
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name == "attributes":
            continue
        field = _writable_field(session, spec, name, creating=creating)
        values[field.name] = _checked_value(session, spec, field, value)
    return values


def _writable_field(
    session: ApiSession, spec: SObjectSpec, name: str, *, creating: bool
) -> FieldSpec:
    field = spec.field(name)
    if field is None:
        if spec.custom_fields_allowed and session.custom_field(name) is not None:
            raise not_writable(name, spec.name)
        raise no_such_column(name, spec.name)
    allowed = field.createable if creating else field.updateable
    if not allowed:
        raise not_writable(field.name, spec.name)
    if field.custom and not session.access.can_edit_field(spec.name, field.name):
        raise not_writable(field.name, spec.name)
    return field


def _checked_value(session: ApiSession, spec: SObjectSpec, field: FieldSpec, value: Any) -> Any:
    if value is None or value == "":
        return None
    if field.type == "boolean":
        return _boolean_value(field, value)
    if field.type == "reference":
        return _reference_value(session, spec, field, str(value))
    if field.type in ("int", "double"):
        return _number_value(field, value)
    text = str(value)
    if field.length and len(text) > field.length:
        raise ApiError(400, "STRING_TOO_LONG",
                       f"{field.label}: data value too large: {text[:40]} (max length="
                       f"{field.length})", [field.name])
    if field.type == "picklist":
        _check_picklist(spec, field, text)
    return text


def _boolean_value(field: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(400, "JSON_PARSER_ERROR",
                   f"Cannot deserialize instance of boolean from VALUE_STRING value {value}",
                   [field.name])


def _number_value(field: FieldSpec, value: Any) -> int | float:
    try:
        return int(value) if field.type == "int" else float(value)
    except (TypeError, ValueError):
        raise ApiError(400, "INVALID_TYPE_ON_FIELD_IN_RECORD",
                       f"{field.label}: value not of required type: {value}",
                       [field.name]) from None


def _check_picklist(spec: SObjectSpec, field: FieldSpec, text: str) -> None:
    if spec.name == "Task" and field.name == "TaskSubtype" and text == "Cadence":
        raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       "Task Subtype: Cadence is reserved for Sales Engagement", [field.name])
    if field.restricted_picklist and text not in field.picklist:
        raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"{field.label}: bad value for restricted picklist field: {text}",
                       [field.name])


def _reference_value(
    session: ApiSession, spec: SObjectSpec, field: FieldSpec, value: str
) -> str:
    record_id = to_id18(value)
    target_type = sobject_for_id(record_id)
    if len(record_id) != 18 or target_type is None:
        raise ApiError(400, "MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}",
                       [field.name])
    if target_type not in field.reference_to:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       f"{field.label}: id value of incorrect type: {value}", [field.name])
    target = session.store.get_record(record_id)
    if target is None or target.is_deleted:
        raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY",
                       "invalid cross reference id", [field.name])
    if field.name == "OwnerId" and target.fields.get("IsActive") is False:
        raise ApiError(400, "INACTIVE_OWNER_OR_USER",
                       f"operation performed with inactive user [{record_id}] as owner of "
                       f"{spec.name.lower()}", [field.name])
    return record_id


def _with_defaults(
    session: ApiSession, spec: SObjectSpec, values: dict[str, Any]
) -> dict[str, Any]:
    complete = dict(values)
    for field in spec.fields:
        if field.name in complete or not field.createable:
            continue
        if field.name == "OwnerId":
            complete["OwnerId"] = session.user_id
        elif field.default_value is not None:
            complete[field.name] = field.default_value
    return complete


def _check_required(spec: SObjectSpec, values: dict[str, Any]) -> None:
    missing = [
        field.name
        for field in spec.fields
        if field.createable and not field.nillable and values.get(field.name) is None
    ]
    if missing:
        raise ApiError(400, "REQUIRED_FIELD_MISSING",
                       f"Required fields are missing: [{', '.join(missing)}]", missing)


def _derived(spec: SObjectSpec, values: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields Salesforce computes: Name of people, IsClosed of Tasks."""
    result = dict(values)
    if spec.name in ("User", "Contact", "Lead"):
        parts = [result.get("FirstName"), result.get("LastName")]
        result["Name"] = " ".join(str(part) for part in parts if part)
    if spec.name == "Task":
        result["IsClosed"] = result.get("Status") == "Completed"
    if spec.name == "PermissionSetAssignment":
        result.setdefault("IsActive", True)
    return result


# -- uniqueness and object rules ----------------------------------------------


def _check_unique(
    session: ApiSession, spec: SObjectSpec, values: dict[str, Any], current: Record | None
) -> None:
    for field in spec.fields:
        value = values.get(field.name)
        if not field.unique or value is None or field.name == "Id":
            continue
        matches = session.store.find_by_field(
            spec.name, field.name, str(value), case_sensitive=field.case_sensitive
        )
        others = [r for r in matches if current is None or r.id != current.id]
        if others:
            raise ApiError(400, "DUPLICATE_VALUE",
                           f"duplicate value found: {field.name} duplicates value on record "
                           f"with id: {others[0].id}", [])


def _check_object_rules(
    session: ApiSession, spec: SObjectSpec, values: dict[str, Any], current: Record | None
) -> None:
    if spec.name == "FieldPermissions":
        _check_field_permissions(session, values, current)
    elif spec.name == "PermissionSetAssignment" and current is None:
        _check_assignment(session, values)
    elif spec.name == "PermissionSet" and current is None:
        values.setdefault("IsOwnedByProfile", False)


def _check_field_permissions(
    session: ApiSession, values: dict[str, Any], current: Record | None
) -> None:
    merged = {**(current.fields if current else {}), **values}
    if merged.get("PermissionsEdit") and not merged.get("PermissionsRead"):
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       "Permission Edit depends on permission(s): Read", ["PermissionsEdit"])
    if current is not None:
        return

    field_name = str(merged.get("Field", ""))
    sobject, _, name = field_name.partition(".")
    known = sobject in ACTIVITY_OBJECTS and session.custom_field(name) is not None
    if not known or merged.get("SobjectType") != sobject:
        raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"Field Name: bad value for restricted picklist field: {field_name}",
                       ["Field"])
    for row in session.store.records_of("FieldPermissions"):
        same_field = str(row.fields.get("Field", "")).lower() == field_name.lower()
        if same_field and row.fields.get("ParentId") == merged.get("ParentId"):
            raise ApiError(400, "DUPLICATE_VALUE",
                           "duplicate value found: <unknown> duplicates value on record with "
                           "id: <unknown>", [])


def _check_assignment(session: ApiSession, values: dict[str, Any]) -> None:
    permission_set = session.store.get_record(str(values.get("PermissionSetId")))
    if permission_set is not None and permission_set.fields.get("IsOwnedByProfile"):
        raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY",
                       "You can't assign or unassign this permission set because it's "
                       "associated with a profile.", ["PermissionSetId"])
    for row in session.store.records_of("PermissionSetAssignment"):
        if (row.fields.get("AssigneeId") == values.get("AssigneeId")
                and row.fields.get("PermissionSetId") == values.get("PermissionSetId")):
            raise ApiError(400, "DUPLICATE_VALUE",
                           "duplicate value found: <unknown> duplicates value on record with "
                           "id: <unknown>", [])
