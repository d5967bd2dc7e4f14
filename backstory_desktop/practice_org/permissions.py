"""The session user's effective permissions, evaluated per request from the org's records.

A user's permissions are the union over the permission set their profile owns
(``IsOwnedByProfile`` true), every permission set assigned to them, and every
permission set group assigned to them. An assignment whose ``ExpirationDate``
has passed grants nothing.

A permission set group grants the union of its component permission sets minus
what its muting permission set mutes: a permission flag set on the muting set,
or a FieldPermissions row whose ParentId is the muting set. Muting acts inside
its group only, so the same permission granted by the profile or by another
permission set still applies. Salesforce exposes a group's result as an
aggregate PermissionSet row (``Type`` "Group", ``PermissionSetGroupId`` set),
with the aggregated FieldPermissions rows under it; ``recalculate_groups``
keeps those rows current so that SOQL returns them (object reference:
PermissionSetGroup, PermissionSetGroupComponent, MutingPermissionSet,
FieldPermissions).

Field-level security comes from FieldPermissions rows. Modify All Data does not
bypass it, because a custom field created through the API has no FLS for
anyone until granted.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from backstory_desktop.practice_org.schema import ACTIVITY_OBJECTS, PERMISSION_FLAGS
from backstory_desktop.practice_org.store import Record, Store, now_utc, parse_datetime

GROUP_TYPE = "Group"
_FLAG_NAMES = tuple(name for name, _label in PERMISSION_FLAGS)


@dataclass(frozen=True)
class SessionAccess:
    """A user's effective permission flags and field access."""

    user: Record
    permission_set_ids: frozenset[str]
    flags: frozenset[str]
    readable_fields: frozenset[str]
    editable_fields: frozenset[str]

    @property
    def user_id(self) -> str:
        return self.user.id

    def has(self, flag: str) -> bool:
        """Return True if a permission such as ``PermissionsApiEnabled`` is granted."""
        return flag in self.flags

    def can_read_field(self, sobject: str, field_name: str) -> bool:
        return self._field_allowed(sobject, field_name, self.readable_fields)

    def can_edit_field(self, sobject: str, field_name: str) -> bool:
        return self._field_allowed(sobject, field_name, self.editable_fields)

    def _field_allowed(self, sobject: str, field_name: str, granted: frozenset[str]) -> bool:
        if not field_name.lower().endswith("__c"):
            return True
        names = [sobject]
        # NOTE: Salesforce keeps the Task and Event rows of an Activity field in step. Whether
        # a lone Task row also grants the Event field is not documented, so either row counts.
        if sobject in ACTIVITY_OBJECTS:
            names = list(ACTIVITY_OBJECTS)
        return any(f"{name}.{field_name}".lower() in granted for name in names)


@dataclass(frozen=True)
class Grants:
    """The grants of one permission set or group: flags, and fields by lower-cased name."""

    flags: frozenset[str]
    readable: frozenset[str]
    editable: frozenset[str]


class _FieldRows:
    """Live FieldPermissions rows by parent id, loaded once per evaluation."""

    def __init__(self, store: Store) -> None:
        self.by_parent: dict[str, list[Record]] = defaultdict(list)
        for row in store.records_of("FieldPermissions"):
            if not row.is_deleted:
                self.by_parent[str(row.fields.get("ParentId"))].append(row)


def effective_permission_set_ids(store: Store, user: Record) -> frozenset[str]:
    """Return the ids of the profile's own permission set and every live assignment's.

    A group assignment contributes the id of the group's aggregate permission set.
    """
    ids: set[str] = set()
    profile_id = user.fields.get("ProfileId")
    for permission_set in store.records_of("PermissionSet"):
        owned = permission_set.fields.get("IsOwnedByProfile")
        if owned and permission_set.fields.get("ProfileId") == profile_id:
            ids.add(permission_set.id)

    now = now_utc()
    for assignment in store.records_of("PermissionSetAssignment"):
        if assignment.is_deleted or assignment.fields.get("AssigneeId") != user.id:
            continue
        if assignment.fields.get("IsActive") is False:
            continue
        if not assignment_expired(assignment.fields.get("ExpirationDate"), now):
            ids.add(str(assignment.fields["PermissionSetId"]))
    return frozenset(ids)


def assignment_expired(expiration: object, now: datetime.datetime) -> bool:
    """Return True if an assignment's ExpirationDate is set and not in the future."""
    # NOTE: Salesforce removes an expired assignment in a background job, and the delay is
    # not documented. The practice org keeps the row, which then grants nothing.
    return bool(expiration) and parse_datetime(str(expiration)) <= now


def access_for_user(store: Store, user_id: str) -> SessionAccess | None:
    """Evaluate a user's effective access, or return None if the user does not exist."""
    user = store.get_record(user_id)
    if user is None or user.sobject != "User":
        return None

    set_ids = effective_permission_set_ids(store, user)
    rows = _FieldRows(store)
    flags: set[str] = set()
    readable: set[str] = set()
    editable: set[str] = set()
    for set_id in set_ids:
        permission_set = store.get_record(set_id)
        if permission_set is None or permission_set.is_deleted:
            continue
        grants = _permission_set_grants(store, permission_set, rows)
        flags |= grants.flags
        readable |= grants.readable
        editable |= grants.editable
    return SessionAccess(user, set_ids, frozenset(flags), frozenset(readable),
                         frozenset(editable))


def _permission_set_grants(store: Store, permission_set: Record, rows: _FieldRows) -> Grants:
    """Return what a permission set grants; an aggregate set is evaluated from its group."""
    group_id = permission_set.fields.get("PermissionSetGroupId")
    if permission_set.fields.get("Type") == GROUP_TYPE and group_id:
        return group_grants(store, str(group_id), rows)
    return _own_grants(permission_set, rows)


def _own_grants(permission_set: Record, rows: _FieldRows) -> Grants:
    flags = {name for name in _FLAG_NAMES if permission_set.fields.get(name) is True}
    readable: set[str] = set()
    editable: set[str] = set()
    for row in rows.by_parent.get(permission_set.id, []):
        name = str(row.fields.get("Field", "")).lower()
        if row.fields.get("PermissionsRead") or row.fields.get("PermissionsEdit"):
            readable.add(name)
        if row.fields.get("PermissionsEdit"):
            editable.add(name)
    return Grants(frozenset(flags), frozenset(readable), frozenset(editable))


def group_components(store: Store, group_id: str) -> list[Record]:
    """Return the live PermissionSetGroupComponent rows of a group."""
    return [
        component for component in store.records_of("PermissionSetGroupComponent")
        if not component.is_deleted and component.fields.get("PermissionSetGroupId") == group_id
    ]


def group_grants(store: Store, group_id: str, rows: _FieldRows | None = None) -> Grants:
    """Return a group's aggregate: the union of its permission sets minus its muting set."""
    rows = rows or _FieldRows(store)
    flags: set[str] = set()
    readable: set[str] = set()
    editable: set[str] = set()
    muting_sets: list[Record] = []
    for component in group_components(store, group_id):
        member = store.get_record(str(component.fields.get("PermissionSetId")))
        if member is None or member.is_deleted:
            continue
        if member.sobject == "MutingPermissionSet":
            muting_sets.append(member)
            continue
        grants = _own_grants(member, rows)
        flags |= grants.flags
        readable |= grants.readable
        editable |= grants.editable

    for muting in muting_sets:
        flags -= {name for name in _FLAG_NAMES if muting.fields.get(name) is True}
        for row in rows.by_parent.get(muting.id, []):
            name = str(row.fields.get("Field", "")).lower()
            # Edit depends on Read, so muting Read also takes Edit away.
            if row.fields.get("PermissionsRead"):
                readable.discard(name)
                editable.discard(name)
            if row.fields.get("PermissionsEdit"):
                editable.discard(name)
    return Grants(frozenset(flags), frozenset(readable), frozenset(editable))


# -- aggregate permission sets of groups -----------------------------------------


def aggregate_permission_set(store: Store, group_id: str) -> Record | None:
    """Return the aggregate PermissionSet row (Type "Group") of a permission set group."""
    for permission_set in store.records_of("PermissionSet"):
        fields = permission_set.fields
        if fields.get("Type") == GROUP_TYPE and fields.get("PermissionSetGroupId") == group_id:
            return permission_set
    return None


def recalculate_groups(store: Store, modified_by_id: str | None,
                       group_ids: Iterable[str] | None = None, *,
                       created_date: str | None = None) -> None:
    """Bring each group's aggregate PermissionSet and FieldPermissions rows up to date.

    Salesforce recalculates a group in the background after a change and shows
    ``Status`` "Updating" meanwhile; the practice org recalculates at once, so
    ``Status`` stays "Updated". Rows it creates get ``created_date`` (now if None).
    """
    groups = [group for group in store.records_of("PermissionSetGroup") if not group.is_deleted]
    if group_ids is not None:
        wanted = set(group_ids)
        groups = [group for group in groups if group.id in wanted]
    for group in groups:
        _recalculate_group(store, group, modified_by_id, created_date)


def _recalculate_group(store: Store, group: Record, modified_by_id: str | None,
                       created_date: str | None) -> None:
    grants = group_grants(store, group.id)
    flags = {name: name in grants.flags for name in _FLAG_NAMES}
    aggregate = aggregate_permission_set(store, group.id)
    if aggregate is None:
        aggregate = store.insert_record("PermissionSet", {
            "Name": group.fields.get("DeveloperName"), "Label": group.fields.get("MasterLabel"),
            "Description": None, "IsOwnedByProfile": False, "ProfileId": None,
            "Type": GROUP_TYPE, "PermissionSetGroupId": group.id, "NamespacePrefix": None,
            **flags,
        }, created_by_id=modified_by_id, created_date=created_date)
    else:
        changes = {"Label": group.fields.get("MasterLabel"), **flags}
        if any(aggregate.fields.get(key) != value for key, value in changes.items()):
            store.update_record(aggregate.id, changes, modified_by_id=modified_by_id or "")
    _sync_aggregate_field_rows(store, group.id, aggregate.id, grants, modified_by_id,
                               created_date)
    if group.fields.get("Status") != "Updated":
        store.update_record(group.id, {"Status": "Updated"}, modified_by_id=modified_by_id or "")


def _sync_aggregate_field_rows(store: Store, group_id: str, aggregate_id: str, grants: Grants,
                               modified_by_id: str | None, created_date: str | None) -> None:
    """Make the aggregate set's FieldPermissions rows match the group's readable fields."""
    spelled = _field_spellings(store, group_id)
    existing = {
        str(row.fields.get("Field", "")).lower(): row
        for row in store.records_of("FieldPermissions")
        if row.fields.get("ParentId") == aggregate_id
    }
    for name, row in existing.items():
        if name not in grants.readable:
            store.delete_permanently(row.id)
        elif bool(row.fields.get("PermissionsEdit")) != (name in grants.editable):
            store.update_record(row.id, {"PermissionsEdit": name in grants.editable},
                                modified_by_id=modified_by_id or "")
    for name in sorted(grants.readable - existing.keys()):
        field = spelled.get(name, name)
        store.insert_record("FieldPermissions", {
            "ParentId": aggregate_id, "SobjectType": field.partition(".")[0], "Field": field,
            "PermissionsRead": True, "PermissionsEdit": name in grants.editable,
        }, created_by_id=modified_by_id, created_date=created_date)


def _field_spellings(store: Store, group_id: str) -> dict[str, str]:
    """Return the Field values of the group's component rows, keyed by lower-cased name."""
    members = {str(component.fields.get("PermissionSetId"))
               for component in group_components(store, group_id)}
    return {
        str(row.fields.get("Field", "")).lower(): str(row.fields.get("Field", ""))
        for row in store.records_of("FieldPermissions")
        if row.fields.get("ParentId") in members
    }


# -- record access to Tasks and Events -----------------------------------------

ACTIVITY_PARENT_FIELDS = ("WhoId", "WhatId")
"""The fields that name an activity's parent records (Name and Related To)."""


class ActivityAccess:
    """The record access of one user to Tasks and Events.

    The model is Salesforce's activity sharing "Controlled by Parent" (Help,
    "Organization-Wide Default Access Settings",
    https://help.salesforce.com/s/articleView?id=platform.sharing_model_fields.htm):
    a user may view, edit or delete an activity when they may do the same to every
    record it is related to through WhoId and WhatId. The owner of a record has
    full access to it (Apex Developer Guide, "Understanding Sharing",
    https://developer.salesforce.com/docs/platform/apex-dev/references/apex-dev/apex-bulk-sharing-understanding.html),
    so an activity's owner always reaches it. View All Data lets a user read
    every record, and Modify All Data also lets them edit and delete every record
    while ignoring sharing (Help article 000321298,
    https://help.salesforce.com/s/articleView?id=000321298&type=1). An activity
    with neither WhoId nor WhatId has no parent, so only its owner and those two
    permissions reach it.
    """

    def __init__(self, store: Store, access: SessionAccess) -> None:
        self._store = store
        self._access = access
        self._parent_owners: dict[str, object] = {}

    @property
    def sees_everything(self) -> bool:
        """Return True when View All Data or Modify All Data lets the user read every record."""
        return self._access.has("PermissionsViewAllData") or self._modifies_everything

    @property
    def _modifies_everything(self) -> bool:
        return self._access.has("PermissionsModifyAllData")

    def can_read(self, record: Record) -> bool:
        """Return True if the user may read ``record``; records other than activities always."""
        if record.sobject not in ACTIVITY_OBJECTS or self.sees_everything:
            return True
        return self._owns_or_owns_parents(record)

    def can_edit(self, record: Record) -> bool:
        """Return True if the user may edit or delete ``record``; non-activities always."""
        if record.sobject not in ACTIVITY_OBJECTS or self._modifies_everything:
            return True
        return self._owns_or_owns_parents(record)

    def _owns_or_owns_parents(self, record: Record) -> bool:
        if record.fields.get("OwnerId") == self._access.user_id:
            return True
        parent_ids = [str(record.fields[name]) for name in ACTIVITY_PARENT_FIELDS
                      if record.fields.get(name)]
        # NOTE: the practice org models no organization-wide defaults, role hierarchy or
        # sharing rules. For this rule a user reaches a parent Contact, Lead or Account only
        # as its owner, the stricter reading, although queries return those parents to every
        # user. In an org with public defaults more users reach these activities.
        return bool(parent_ids) and all(
            self._parent_owner(parent_id) == self._access.user_id for parent_id in parent_ids
        )

    def _parent_owner(self, record_id: str) -> object:
        if record_id not in self._parent_owners:
            parent = self._store.get_record(record_id)
            self._parent_owners[record_id] = None if parent is None else parent.fields.get(
                "OwnerId")
        return self._parent_owners[record_id]
