"""Effective permissions of a user, and the permission set that grants field access.

A user's permissions are the union of every active permission set assignment:
the profile's own permission set, permission sets and permission set groups.
Each line of the report names the sources that grant it, so the admin knows
where to change it. Field-level security on an Activity field is stored as
FieldPermissions rows on ``Task.<field>`` and ``Event.<field>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simple_salesforce.format import format_soql

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.records import UserRef
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import USER_QUERY, user_ref

logger = logging.getLogger(__name__)

PERMISSION_SET_NAME = "Backstory_Message_ID_Access"
PERMISSION_SET_LABEL = "Backstory Message ID Access"
PERMISSION_SET_DESCRIPTION = (
    "Read and Edit on the Message-ID field of Tasks and Events, for upserts by Message-ID."
)
ACTIVITY_OBJECTS = ("Task", "Event")

# PermissionSet booleans shown in the report, with the names Setup uses.
_USER_PERMISSIONS = (
    ("PermissionsApiEnabled", "API Enabled"),
    ("PermissionsEditTask", "Edit Tasks"),
    ("PermissionsViewAllData", "View All Data"),
    ("PermissionsViewAllUsers", "View All Users"),
)


@dataclass
class AccessLine:
    """One permission the integration user needs, whether it is granted, and by what."""

    name: str
    granted: bool
    required: bool
    sources: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class AccessReport:
    """A user's effective access for upserts by Message-ID; ``ok`` when every required line is granted."""

    user_id: str
    username: str
    name: str
    profile: str
    lines: list[AccessLine]
    ok: bool = False

    def __post_init__(self) -> None:
        self.ok = all(line.granted for line in self.lines if line.required)

    def line(self, name: str) -> AccessLine:
        """Return the line called ``name``; raises KeyError when there is none."""
        for line in self.lines:
            if line.name == name:
                return line
        raise KeyError(name)


@dataclass
class _Source:
    """One active permission set assignment of the user, as the report names it."""

    permission_set_id: str
    label: str
    permissions: dict[str, bool]


def field_permission_names(field_api_name: str) -> list[str]:
    """Return the FieldPermissions ``Field`` values of an Activity field: Task and Event."""
    return [f"{sobject}.{field_api_name}" for sobject in ACTIVITY_OBJECTS]


def list_users(conn: OrgConnection) -> list[UserRef]:
    """Return the org's users, active ones first, by name."""
    users = [user_ref(row) for row in conn.query_all(USER_QUERY + " ORDER BY Name")]
    return sorted(users, key=lambda user: (not user.is_active, user.name.lower()))


def _load_user(conn: OrgConnection, user_id: str) -> dict[str, Any]:
    soql = format_soql(
        "SELECT Id, Name, Username, IsActive, ProfileId, Profile.Name FROM User WHERE Id = {}",
        user_id,
    )
    rows = list(conn.query_all(soql))
    if not rows:
        raise LookupError(f"no user with id {user_id} in the org")
    return rows[0]


def _is_expired(assignment: dict[str, Any], now: datetime) -> bool:
    if assignment.get("IsActive") is False:
        return True
    expires = assignment.get("ExpirationDate")
    if not expires:
        return False
    return _parse_datetime(str(expires)) <= now


def _parse_datetime(value: str) -> datetime:
    # Salesforce writes offsets as +0000; fromisoformat wants +00:00 on Python 3.11.
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _load_sources(conn: OrgConnection, user_id: str, profile_name: str) -> list[_Source]:
    flags = ", ".join(f"PermissionSet.{name}" for name, _ in _USER_PERMISSIONS)
    soql = format_soql(
        "SELECT Id, PermissionSetId, PermissionSetGroupId, ExpirationDate, IsActive, "
        "PermissionSet.Name, PermissionSet.Label, PermissionSet.IsOwnedByProfile, "
        "{:literal} FROM PermissionSetAssignment WHERE AssigneeId = {}",
        flags,
        user_id,
    )
    now = datetime.now(UTC)
    sources: list[_Source] = []
    for row in conn.query_all(soql):
        if _is_expired(row, now):
            continue
        permission_set = row.get("PermissionSet") or {}
        sources.append(
            _Source(
                permission_set_id=str(row["PermissionSetId"]),
                label=_source_label(row, permission_set, profile_name),
                permissions={
                    name: bool(permission_set.get(name)) for name, _ in _USER_PERMISSIONS
                },
            )
        )
    return sources


def _source_label(row: dict[str, Any], permission_set: dict[str, Any], profile_name: str) -> str:
    if permission_set.get("IsOwnedByProfile"):
        return f"profile {profile_name}"
    label = permission_set.get("Label") or permission_set.get("Name") or row["PermissionSetId"]
    if row.get("PermissionSetGroupId"):
        # NOTE: the group's aggregate permission set already reflects its muting
        # permission sets in Salesforce; which muted permission removed a grant is not shown.
        return f"permission set group {label}"
    return f"permission set {label}"


def _load_field_permissions(
    conn: OrgConnection, parent_ids: list[str], field_api_name: str
) -> list[dict[str, Any]]:
    if not parent_ids:
        return []
    soql = format_soql(
        "SELECT Id, ParentId, SobjectType, Field, PermissionsRead, PermissionsEdit "
        "FROM FieldPermissions WHERE ParentId IN {} AND Field IN {}",
        parent_ids,
        field_permission_names(field_api_name),
    )
    return list(conn.query_all(soql))


def effective_access(
    conn: OrgConnection, user_id: str, field_api_name: str, *, field_unique: bool
) -> AccessReport:
    """Report what ``user_id`` may do for upserts by ``field_api_name``, line by line.

    View All Data is required only when the field is not Unique (Salesforce's
    rule for upserts on a non-unique External ID); otherwise it is recommended.
    """
    field_api_name = validate_field_api_name(field_api_name)
    user = _load_user(conn, user_id)
    profile_name = str((user.get("Profile") or {}).get("Name") or "")
    sources = _load_sources(conn, user_id, profile_name)
    rows = _load_field_permissions(
        conn, [source.permission_set_id for source in sources], field_api_name
    )

    lines = [
        AccessLine(
            "Active",
            bool(user.get("IsActive")),
            True,
            ["user record"],
            "" if user.get("IsActive") else "Activate the user in Setup > Users.",
        )
    ]
    for flag, label in _USER_PERMISSIONS:
        granting = [source.label for source in sources if source.permissions.get(flag)]
        lines.append(_permission_line(flag, label, granting, field_unique=field_unique))
    lines[3:3] = _field_lines(sources, rows, field_api_name)

    report = AccessReport(
        user_id=user_id,
        username=str(user.get("Username") or ""),
        name=str(user.get("Name") or ""),
        profile=profile_name,
        lines=lines,
    )
    logger.info(
        "Access of %s for %s: %s", report.username, field_api_name, "ok" if report.ok else "missing"
    )
    return report


def _permission_line(
    flag: str, label: str, granting: list[str], *, field_unique: bool
) -> AccessLine:
    granted = bool(granting)
    if flag == "PermissionsViewAllData":
        required = not field_unique
        note = (
            "Required because the field is not Unique: Salesforce upserts on such a field "
            "need View All Data."
            if required
            else "Recommended: Backstory's integration user is expected to see all activities."
        )
        return AccessLine(label, granted, required, granting, note)
    if flag == "PermissionsViewAllUsers":
        note = "Recommended: Backstory matches activities to users by email."
        return AccessLine(label, granted, False, granting, note)
    note = "" if granted else f"Grant {label} in a permission set assigned to the user."
    return AccessLine(label, granted, True, granting, note)


def _field_lines(
    sources: list[_Source], rows: list[dict[str, Any]], field_api_name: str
) -> list[AccessLine]:
    labels = {source.permission_set_id: source.label for source in sources}
    lines = []
    for action, column in (("Read", "PermissionsRead"), ("Edit", "PermissionsEdit")):
        granting: dict[str, list[str]] = {name: [] for name in field_permission_names(field_api_name)}
        for row in rows:
            name = str(row.get("Field"))
            if name in granting and row.get(column) and row.get("ParentId") in labels:
                granting[name].append(labels[str(row["ParentId"])])
        missing = [name for name, found in granting.items() if not found]
        sources_found = sorted({label for found in granting.values() for label in found})
        note = (
            f"No {action} on {' and '.join(missing)}; grant it through field-level security "
            f"in a permission set assigned to the user."
            if missing
            else ""
        )
        lines.append(
            AccessLine(f"{action} on {field_api_name}", not missing, True, sources_found, note)
        )
    return lines


# -- granting field access ------------------------------------------------------------


@dataclass
class GrantPlan:
    """The changes that granting Read and Edit on the field to a user would make."""

    permission_set_label: str
    exists: bool
    field_permissions_to_add: list[str]
    assign: bool
    field_permissions_to_update: list[str] = field(default_factory=list)
    permission_set_name: str = PERMISSION_SET_NAME
    permission_set_id: str | None = None
    user_id: str = ""
    username: str = ""

    @property
    def has_changes(self) -> bool:
        return (
            not self.exists
            or bool(self.field_permissions_to_add)
            or bool(self.field_permissions_to_update)
            or self.assign
        )

    def describe(self) -> list[str]:
        """Return the changes as lines to show the admin before applying them."""
        quoted = f'"{self.permission_set_label}"'
        if not self.has_changes:
            return [
                f"No change: permission set {quoted} already grants Read and Edit and is "
                f"assigned to {self.username}."
            ]
        lines = []
        if not self.exists:
            lines.append(
                f"Create permission set {quoted} (API name {self.permission_set_name})."
            )
        lines.extend(
            f"Add field permission Read and Edit on {name} to {quoted}."
            for name in self.field_permissions_to_add
        )
        lines.extend(
            f"Change field permission on {name} in {quoted} to Read and Edit."
            for name in self.field_permissions_to_update
        )
        if self.assign:
            lines.append(f"Assign {quoted} to {self.username}.")
        return lines


def _find_permission_set(conn: OrgConnection) -> dict[str, Any] | None:
    soql = format_soql(
        "SELECT Id, Name, Label FROM PermissionSet WHERE Name = {}", PERMISSION_SET_NAME
    )
    rows = list(conn.query_all(soql))
    return rows[0] if rows else None


def _is_assigned(conn: OrgConnection, user_id: str, permission_set_id: str) -> bool:
    soql = format_soql(
        "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = {} AND PermissionSetId = {}",
        user_id,
        permission_set_id,
    )
    return any(True for _ in conn.query_all(soql))


def plan_field_access_grant(conn: OrgConnection, user_id: str, field_api_name: str) -> GrantPlan:
    """Plan Read and Edit on Task and Event ``field_api_name`` for ``user_id``.

    The grant goes through the permission set "Backstory Message ID Access",
    created when missing and assigned to the user when not assigned yet.
    """
    field_api_name = validate_field_api_name(field_api_name)
    user = _load_user(conn, user_id)
    permission_set = _find_permission_set(conn)
    names = field_permission_names(field_api_name)
    plan = GrantPlan(
        permission_set_label=PERMISSION_SET_LABEL,
        exists=permission_set is not None,
        field_permissions_to_add=list(names),
        assign=True,
        user_id=user_id,
        username=str(user.get("Username") or user_id),
    )
    if permission_set is None:
        return plan

    plan.permission_set_id = str(permission_set["Id"])
    plan.permission_set_label = str(permission_set.get("Label") or PERMISSION_SET_LABEL)
    rows = _load_field_permissions(conn, [plan.permission_set_id], field_api_name)
    by_field = {str(row["Field"]): row for row in rows}
    plan.field_permissions_to_add = [name for name in names if name not in by_field]
    plan.field_permissions_to_update = [
        name
        for name in names
        if name in by_field
        and not (by_field[name].get("PermissionsRead") and by_field[name].get("PermissionsEdit"))
    ]
    plan.assign = not _is_assigned(conn, user_id, plan.permission_set_id)
    return plan


def apply_field_access_grant(
    conn: OrgConnection, user_id: str, field_api_name: str
) -> GrantPlan:
    """Apply the grant planned by plan_field_access_grant and return that plan.

    The plan is made afresh from the org's current state. Nothing is checked
    afterwards: run effective_access again to confirm.
    """
    field_api_name = validate_field_api_name(field_api_name)
    plan = plan_field_access_grant(conn, user_id, field_api_name)
    if not plan.has_changes:
        return plan

    permission_set_id = plan.permission_set_id or _create_permission_set(conn)
    for name in field_permission_names(field_api_name):
        _ensure_field_permission(conn, permission_set_id, name)
    if plan.assign:
        conn.request(
            "POST",
            "sobjects/PermissionSetAssignment",
            json={"AssigneeId": user_id, "PermissionSetId": permission_set_id},
        )
    logger.info(
        "Granted Read and Edit on %s to %s through permission set %s",
        field_api_name,
        plan.username,
        PERMISSION_SET_NAME,
    )
    return plan


def _create_permission_set(conn: OrgConnection) -> str:
    result = conn.request(
        "POST",
        "sobjects/PermissionSet",
        json={
            "Name": PERMISSION_SET_NAME,
            "Label": PERMISSION_SET_LABEL,
            "Description": PERMISSION_SET_DESCRIPTION,
        },
    )
    return str(result["id"])


def _ensure_field_permission(conn: OrgConnection, permission_set_id: str, name: str) -> None:
    # Read the rows again before each write: Salesforce may mirror a Task row
    # onto Event for Activity fields, which would make a blind create fail.
    sobject, field_api_name = name.split(".", 1)
    rows = [
        row
        for row in _load_field_permissions(conn, [permission_set_id], field_api_name)
        if row.get("Field") == name
    ]
    if not rows:
        conn.request(
            "POST",
            "sobjects/FieldPermissions",
            json={
                "ParentId": permission_set_id,
                "SobjectType": sobject,
                "Field": name,
                "PermissionsRead": True,
                "PermissionsEdit": True,
            },
        )
        return
    row = rows[0]
    if not (row.get("PermissionsRead") and row.get("PermissionsEdit")):
        conn.request(
            "PATCH",
            f"sobjects/FieldPermissions/{row['Id']}",
            json={"PermissionsRead": True, "PermissionsEdit": True},
        )
