"""Record writes with the platform rules the product depends on.

Create, update, delete and upsert check what Salesforce checks:

- the field exists and is visible (FLS);
- it is createable or updateable (Task.TaskSubtype is create-only);
- the user has Edit on custom fields;
- text fits its length and restricted picklists contain the value;
- references point at records of the right type, and owners are active users;
- unique fields stay unique, recycle bin included, as Salesforce's unique index does;
- permission set groups stay consistent: an assignment of a group points at the
  group's aggregate permission set, and every change to a permission set, a muting
  permission set, a component or a FieldPermissions row recalculates the groups.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from typing import Any

from backstory_desktop.practice_org.errors import ApiError, no_such_column, not_writable
from backstory_desktop.practice_org.ids import sobject_for_id, to_id18
from backstory_desktop.practice_org.permissions import (
    GROUP_TYPE,
    aggregate_permission_set,
    group_components,
    recalculate_groups,
)
from backstory_desktop.practice_org.schema import (
    ACTIVITY_OBJECTS,
    STANDARD_OBJECTS,
    FieldSpec,
    SObjectSpec,
    custom_field_spec,
)
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.store import Record, Store, now_utc, parse_datetime

logger = logging.getLogger(__name__)

_PERMISSION_OBJECTS = ("PermissionSet", "PermissionSetAssignment", "FieldPermissions",
                       "PermissionSetGroup", "PermissionSetGroupComponent",
                       "MutingPermissionSet")
_SETUP_OBJECTS = ("User", "Profile", *_PERMISSION_OBJECTS)
_RECYCLED_OBJECTS = ("Task", "Event", "Contact", "Lead", "Account")
_HARD_DELETED_OBJECTS = _PERMISSION_OBJECTS
# Writes to these objects change what a permission set group aggregates.
_GROUP_INPUTS = ("PermissionSet", "FieldPermissions", "PermissionSetGroup",
                 "PermissionSetGroupComponent", "MutingPermissionSet")


def create_record(session: ApiSession, sobject: str, body: dict[str, Any]) -> Record:
    """Validate and insert a new record; raise ApiError where Salesforce would reject it."""
    spec = session.sobject(sobject)
    _require_object_write(session, spec)
    values = _checked_values(session, spec, body, creating=True)
    values = _with_defaults(session, spec, values)
    if spec.name == "PermissionSetAssignment":
        _resolve_group_assignment(session, values)
    _check_required(spec, values)
    _check_object_rules(session, spec, values, None)
    _check_unique(session, spec, values, None)
    record = session.store.insert_record(spec.name, _derived(spec, values),
                                         created_by_id=session.user_id)
    logger.debug("Created %s %s", spec.name, record.id)
    _recalculate_if_needed(session, spec.name)
    return record


def update_record(session: ApiSession, record: Record, body: dict[str, Any]) -> None:
    """Validate changed fields and apply them to an existing record."""
    spec = session.sobject(record.sobject)
    _require_object_write(session, spec)
    _require_record_edit(session, record)
    values = _checked_values(session, spec, body, creating=False)
    _check_object_rules(session, spec, values, record)
    _check_unique(session, spec, values, record)
    merged = {**record.fields, **values}
    session.store.update_record(record.id, _derived(spec, merged), modified_by_id=session.user_id)
    if spec.name == "FieldPermissions" and not _grants_or_mutes(merged):
        # Salesforce removes a FieldPermissions row once it grants nothing.
        session.store.delete_permanently(record.id)
    _recalculate_if_needed(session, spec.name)


def delete_record(session: ApiSession, record: Record) -> None:
    """Move Tasks, Contacts and Leads to the recycle bin; remove permission rows for good."""
    spec = session.sobject(record.sobject)
    _require_object_write(session, spec)
    _require_record_edit(session, record)
    if spec.name == "PermissionSet" and record.fields.get("IsOwnedByProfile"):
        raise ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                       "You can't delete a permission set owned by a profile.")
    _check_not_aggregate(session, record)
    if spec.name in _RECYCLED_OBJECTS:
        session.store.set_deleted(record.id, True)
    elif spec.name == "PermissionSetGroup":
        _delete_group(session, record)
    elif spec.name in _HARD_DELETED_OBJECTS:
        _delete_components_of(session, record.id)
        session.store.delete_permanently(record.id)
    else:
        raise ApiError(405, "METHOD_NOT_ALLOWED",
                       "HTTP Method 'DELETE' not allowed. Allowed are GET,HEAD,PATCH")
    _recalculate_if_needed(session, spec.name)


def live_record(session: ApiSession, sobject: str, record_id: str) -> Record:
    """Return a record that is not in the recycle bin, or raise NOT_FOUND."""
    record = session.store.get_record(to_id18(record_id))
    if record is None or record.is_deleted or record.sobject != sobject:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return record


def readable_record(session: ApiSession, sobject: str, record_id: str) -> Record:
    """Return a live record the user may read; raise NOT_FOUND for one they may not."""
    record = live_record(session, sobject, record_id)
    if not session.activities.can_read(record):
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return record


# -- permission checks -------------------------------------------------------


def _require_object_write(session: ApiSession, spec: SObjectSpec) -> None:
    if spec.name == "Task":
        # Salesforce's "Edit Tasks" user permission (PermissionSet.PermissionsEditTask).
        session.require("PermissionsEditTask", "insufficient access rights on object id")
    elif spec.name == "Event":
        session.require("PermissionsEditEvent", "insufficient access rights on object id")
    elif spec.name in _SETUP_OBJECTS:
        # NOTE: Salesforce splits this across Manage Users, Assign Permission Sets and
        # Manage Profiles and Permission Sets. The practice org requires Modify All Data.
        session.require("PermissionsModifyAllData", "insufficient access rights on object id")


def _require_record_edit(session: ApiSession, record: Record) -> None:
    """Raise INSUFFICIENT_ACCESS_OR_READONLY for an activity ``ActivityAccess.can_edit`` rejects."""
    if not session.activities.can_edit(record):
        raise ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                       "insufficient access rights on object id")


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
    # Since API 15.0 a value longer than the field fails instead of being cut (SOAP API
    # Developer Guide, "upsert()"); STRING_TOO_LONG is listed under StatusCode.
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
    # INACTIVE_OWNER_OR_USER: the owner or another referenced user is inactive (SOAP API
    # Developer Guide, "Core Data Types Used in API Calls", StatusCode).
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
    if spec.name == "PermissionSet":
        result.setdefault("Type", "Regular")
        result.setdefault("PermissionSetGroupId", None)
    if spec.name == "PermissionSetGroup":
        result.setdefault("Status", "Updated")
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
        # The message names the record that already has the value, as Salesforce's does (REST API
        # Developer Guide, "Status Codes and Error Responses"; DUPLICATE_VALUE under StatusCode).
        if others:
            raise ApiError(400, "DUPLICATE_VALUE",
                           f"duplicate value found: {field.name} duplicates value on record "
                           f"with id: {others[0].id}", [])


def _check_object_rules(
    session: ApiSession, spec: SObjectSpec, values: dict[str, Any], current: Record | None
) -> None:
    if current is not None:
        _check_not_aggregate(session, current)
    if spec.name in _API_NAME_FIELDS:
        _check_api_name_unused(session, spec.name, values, current)
    if spec.name == "FieldPermissions":
        _check_field_permissions(session, values, current)
    elif spec.name == "PermissionSetAssignment" and current is None:
        _check_assignment(session, values)
    elif spec.name == "PermissionSetGroupComponent" and current is None:
        _check_group_component(session, values)
    elif spec.name == "PermissionSet" and current is None:
        values.setdefault("IsOwnedByProfile", False)


# The API name of each permission object, which no two records of the object may share.
_API_NAME_FIELDS = {"PermissionSet": "Name", "PermissionSetGroup": "DeveloperName",
                    "MutingPermissionSet": "DeveloperName"}


def _check_api_name_unused(
    session: ApiSession, sobject: str, values: dict[str, Any], current: Record | None
) -> None:
    """Reject a second record with the same API name, which Salesforce compares ignoring case."""
    field_name = _API_NAME_FIELDS[sobject]
    name = values.get(field_name)
    if not name:
        return
    for other in session.store.find_by_field(sobject, field_name, str(name),
                                             case_sensitive=False):
        if not other.is_deleted and (current is None or other.id != current.id):
            # NOTE: which code Salesforce returns here is not confirmed. DUPLICATE_DEVELOPER_NAME
            # is one of its StatusCodes (restforce 8.0 ErrorCode::DuplicateDeveloperName).
            raise ApiError(400, "DUPLICATE_DEVELOPER_NAME",
                           f"The API name {name} is already used by {sobject} {other.id}; "
                           "choose another name", [field_name])


def _check_field_permissions(
    session: ApiSession, values: dict[str, Any], current: Record | None
) -> None:
    merged = {**(current.fields if current else {}), **values}
    parent_id = str(merged.get("ParentId") or "")
    muting = sobject_for_id(parent_id) == "MutingPermissionSet"
    # On a muting permission set a row may mute Edit alone, so Edit without Read is allowed.
    # NOTE: this follows from what muting does; no Salesforce page states the rule for
    # muting rows.
    if not muting and merged.get("PermissionsEdit") and not merged.get("PermissionsRead"):
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       "Permission Edit depends on permission(s): Read", ["PermissionsEdit"])
    if current is not None:
        return
    parent = session.store.get_record(parent_id)
    if parent is not None and parent.fields.get("Type") == GROUP_TYPE:
        raise _aggregate_read_only()

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


def _resolve_group_assignment(session: ApiSession, values: dict[str, Any]) -> None:
    """Point an assignment of a permission set group at the group's aggregate permission set.

    Salesforce assigns a group through PermissionSetAssignment.PermissionSetGroupId;
    the row's PermissionSetId is then the group's aggregate permission set.
    """
    group_id = values.get("PermissionSetGroupId")
    if not group_id:
        permission_set = session.store.get_record(str(values.get("PermissionSetId")))
        if permission_set is not None and permission_set.fields.get("Type") == GROUP_TYPE:
            # NOTE: whether Salesforce accepts an aggregate set's id without the group id
            # is not confirmed; the practice org fills the group id in.
            values["PermissionSetGroupId"] = permission_set.fields.get("PermissionSetGroupId")
        return
    aggregate = aggregate_permission_set(session.store, str(group_id))
    if aggregate is None:
        recalculate_groups(session.store, session.user_id, [str(group_id)])
        aggregate = aggregate_permission_set(session.store, str(group_id))
    assert aggregate is not None
    named_set = values.get("PermissionSetId")
    if named_set and named_set != aggregate.id:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       "Specify either a permission set or a permission set group, not both.",
                       ["PermissionSetId", "PermissionSetGroupId"])
    values["PermissionSetId"] = aggregate.id


def _check_group_component(session: ApiSession, values: dict[str, Any]) -> None:
    """Allow regular permission sets and one muting permission set per group."""
    group_id = str(values.get("PermissionSetGroupId"))
    member = session.store.get_record(str(values.get("PermissionSetId")))
    if member is None:
        return
    if member.fields.get("IsOwnedByProfile") or member.fields.get("Type") == GROUP_TYPE:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       "A permission set group can contain only permission sets that are "
                       "not owned by a profile or a group.", ["PermissionSetId"])
    components = group_components(session.store, group_id)
    if any(component.fields.get("PermissionSetId") == member.id for component in components):
        raise ApiError(400, "DUPLICATE_VALUE",
                       "duplicate value found: <unknown> duplicates value on record with "
                       "id: <unknown>", [])
    if member.sobject == "MutingPermissionSet":
        for component in components:
            other = str(component.fields.get("PermissionSetId"))
            if sobject_for_id(other) == "MutingPermissionSet":
                # NOTE: Salesforce allows one muting permission set per group; the exact
                # error code it returns for a second one is not confirmed.
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                               "A permission set group can contain only one muting "
                               "permission set.", ["PermissionSetId"])


def _grants_or_mutes(fields: dict[str, Any]) -> bool:
    return bool(fields.get("PermissionsRead") or fields.get("PermissionsEdit"))


def _aggregate_read_only() -> ApiError:
    # NOTE: the exact error Salesforce returns for a write to a group's aggregate
    # permission set is not confirmed.
    return ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                    "The permission set of a permission set group is calculated from the "
                    "group's components and can't be changed directly.")


def _check_not_aggregate(session: ApiSession, record: Record) -> None:
    """Reject writes to a group's aggregate permission set and to its FieldPermissions rows."""
    if record.sobject == "PermissionSet" and record.fields.get("Type") == GROUP_TYPE:
        raise _aggregate_read_only()
    if record.sobject == "FieldPermissions":
        parent = session.store.get_record(str(record.fields.get("ParentId")))
        if parent is not None and parent.fields.get("Type") == GROUP_TYPE:
            raise _aggregate_read_only()


def _delete_group(session: ApiSession, group: Record) -> None:
    """Delete an unassigned group with its components and its aggregate permission set."""
    aggregate = aggregate_permission_set(session.store, group.id)
    assigned = [
        row for row in session.store.records_of("PermissionSetAssignment")
        if row.fields.get("PermissionSetGroupId") == group.id
    ]
    if assigned:
        # NOTE: Salesforce refuses to delete an assigned group; its exact error is not confirmed.
        raise ApiError(400, "DELETE_FAILED",
                       "This permission set group is assigned to users. Remove the "
                       "assignments before you delete it.")
    for component in group_components(session.store, group.id):
        session.store.delete_permanently(component.id)
    if aggregate is not None:
        for row in session.store.records_of("FieldPermissions"):
            if row.fields.get("ParentId") == aggregate.id:
                session.store.delete_permanently(row.id)
        session.store.delete_permanently(aggregate.id)
    session.store.delete_permanently(group.id)


def _delete_components_of(session: ApiSession, member_id: str) -> None:
    """Remove a deleted permission set or muting permission set from every group."""
    for component in session.store.records_of("PermissionSetGroupComponent"):
        if component.fields.get("PermissionSetId") == member_id:
            session.store.delete_permanently(component.id)


def _recalculate_if_needed(session: ApiSession, sobject: str) -> None:
    if sobject in _GROUP_INPUTS:
        recalculate_groups(session.store, session.user_id)


# -- recycle bin ------------------------------------------------------------------


def undelete_records(store: Store, ids: Iterable[str]) -> dict[str, ApiError | None]:
    """Restore records from the recycle bin; return each id's error, or None once restored.

    Salesforce restores records through the SOAP ``undelete()`` call (served by
    ``soap_undelete``) and Apex ``undelete``. Its REST API documents no undelete
    resource, so the practice org also offers this function for drills. A record
    whose unique value now belongs to a live record stays in the recycle bin with
    DUPLICATE_VALUE.
    """
    with store.transaction():
        return dict(undelete_each(store, ids))


def undelete_each(
    store: Store, ids: Iterable[str], *, may_undelete: Callable[[Record], bool] | None = None,
) -> list[tuple[str, ApiError | None]]:
    """Restore records from the recycle bin in order; return each id with its error or None.

    ``may_undelete`` rejects a record the caller has no right to restore with
    INSUFFICIENT_ACCESS_OR_READONLY. The caller runs this inside a store transaction.
    Records deleted more than RECYCLE_BIN_RETENTION ago are purged first.
    """
    store.purge_recycle_bin()
    return [(record_id, _undelete_one(store, to_id18(record_id), may_undelete))
            for record_id in ids]


def _undelete_one(store: Store, record_id: str,
                  may_undelete: Callable[[Record], bool] | None) -> ApiError | None:
    record = store.get_record(record_id)
    if record is None and store.is_purged(record_id):
        # Salesforce Help article 000386040 ("Unable to Restore a Deleted Salesforce Record
        # from the Recycle Bin") quotes this error for a record the recycle bin no longer holds.
        return ApiError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin")
    if record is None or record.sobject not in _RECYCLED_OBJECTS:
        return ApiError(400, "INVALID_ID_FIELD", f"invalid record id: {record_id}")
    if not record.is_deleted:
        return ApiError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin")
    if may_undelete is not None and not may_undelete(record):
        return ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                        "insufficient access rights on object id")
    spec = STANDARD_OBJECTS[record.sobject]
    unique_fields = [field for field in spec.fields if field.unique]
    if spec.custom_fields_allowed:
        unique_fields += [custom_field_spec(definition) for definition in store.custom_fields()
                          if definition.unique]
    for field in unique_fields:
        value = record.fields.get(field.name)
        if value in (None, ""):
            continue
        clashes = [other for other in store.find_by_field(
            record.sobject, field.name, str(value), case_sensitive=field.case_sensitive)
            if other.id != record.id and not other.is_deleted]
        if clashes:
            return ApiError(400, "DUPLICATE_VALUE",
                            f"duplicate value found: {field.name} duplicates value on record "
                            f"with id: {clashes[0].id}", [])
    store.set_deleted(record.id, False)
    return None


# -- activity archiving ------------------------------------------------------------

ARCHIVE_AGE_DAYS = 365


def archive_activities(store: Store, now: datetime.datetime | None = None) -> list[str]:
    """Archive what Salesforce's archival run archives; return the ids archived now.

    Salesforce archives closed Tasks whose ActivityDate is at least 365 days old,
    closed Tasks without an ActivityDate created at least 365 days ago, and Events
    whose ActivityDateTime is at least 365 days old. Records written through the
    API are archived at the next run, not at once (SOAP API Developer Guide,
    "Archived Activities"), so the practice org archives only when this is called.
    """
    moment = now or now_utc()
    cutoff = moment - datetime.timedelta(days=ARCHIVE_AGE_DAYS)
    archived: list[str] = []
    with store.transaction():
        for sobject in ACTIVITY_OBJECTS:
            for record in store.records_of(sobject):
                if record.is_archived or not _due_for_archive(record, cutoff):
                    continue
                store.set_archived(record.id, True)
                archived.append(record.id)
    logger.info("Archived %d activities older than %d days", len(archived), ARCHIVE_AGE_DAYS)
    return archived


def _due_for_archive(record: Record, cutoff: datetime.datetime) -> bool:
    if record.sobject == "Event":
        return _before(record.fields.get("ActivityDateTime"), cutoff)
    if not record.fields.get("IsClosed"):
        return False
    activity_date = record.fields.get("ActivityDate")
    if activity_date:
        return _before(activity_date, cutoff)
    return _before(record.created_date, cutoff)


def _before(value: object, cutoff: datetime.datetime) -> bool:
    """Return True if a date or dateTime value lies on or before the cutoff."""
    return bool(value) and parse_datetime(str(value)) <= cutoff
