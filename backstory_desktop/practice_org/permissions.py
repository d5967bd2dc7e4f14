"""The session user's effective permissions, evaluated per request from the org's records.

A user's permissions are the union over the permission set their profile owns
(``IsOwnedByProfile`` true) and every permission set assigned to them whose
assignment has not expired. Field-level security comes from FieldPermissions
rows on those permission sets; Modify All Data does not bypass it, because a
custom field created through the API has no FLS for anyone until granted.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from backstory_desktop.practice_org.schema import ACTIVITY_OBJECTS
from backstory_desktop.practice_org.store import Record, Store, now_utc


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


def effective_permission_set_ids(store: Store, user: Record) -> frozenset[str]:
    """Return the ids of the profile's own permission set and every live assignment's."""
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
        if not _expired(assignment.fields.get("ExpirationDate"), now):
            ids.add(str(assignment.fields["PermissionSetId"]))
    return frozenset(ids)


def _expired(expiration: object, now: datetime.datetime) -> bool:
    if not expiration:
        return False
    text = str(expiration).replace("+0000", "+00:00").replace("Z", "+00:00")
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment < now


def access_for_user(store: Store, user_id: str) -> SessionAccess | None:
    """Evaluate a user's effective access, or return None if the user does not exist."""
    user = store.get_record(user_id)
    if user is None or user.sobject != "User":
        return None

    set_ids = effective_permission_set_ids(store, user)
    flags: set[str] = set()
    for set_id in set_ids:
        permission_set = store.get_record(set_id)
        if permission_set is None or permission_set.is_deleted:
            continue
        flags.update(k for k, v in permission_set.fields.items()
                     if k.startswith("Permissions") and v is True)

    readable: set[str] = set()
    editable: set[str] = set()
    for row in store.records_of("FieldPermissions"):
        if row.is_deleted or row.fields.get("ParentId") not in set_ids:
            continue
        name = str(row.fields.get("Field", "")).lower()
        if row.fields.get("PermissionsRead") or row.fields.get("PermissionsEdit"):
            readable.add(name)
        if row.fields.get("PermissionsEdit"):
            editable.add(name)
    return SessionAccess(user, set_ids, frozenset(flags), frozenset(readable), frozenset(editable))
