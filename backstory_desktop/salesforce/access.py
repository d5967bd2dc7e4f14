"""Effective permissions of a user for upserts by Message-ID, with what grants and mutes each.

A user's permissions are the union of every live permission set assignment:
the profile's own permission set, permission sets, and permission set groups.
A group grants what its component permission sets grant, minus what its muting
permission set mutes. Muting acts inside its group only, so the same permission
granted by another source still applies (object reference, MutingPermissionSet
and PermissionSetGroupComponent,
https://developer.salesforce.com/docs/platform/object-reference/references/standard-objects/object-mutingpermissionset.html).
An assignment that has expired or is inactive grants nothing; the report lists
it apart. Each line of the report names what grants it and what mutes it, so the
admin can see where to change it. Field-level security on an Activity field is
stored as FieldPermissions rows on ``Task.<field>`` and ``Event.<field>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
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

# System permissions a permission set can grant, as (PermissionSet field, the name Setup shows).
SYSTEM_PERMISSIONS = (
    ("PermissionsApiEnabled", "API Enabled"),
    ("PermissionsEditTask", "Edit Tasks"),
    ("PermissionsViewAllData", "View All Data"),
    ("PermissionsViewAllUsers", "View All Users"),
)
SYSTEM_PERMISSION_LABELS = dict(SYSTEM_PERMISSIONS)
# Permissions another permission may depend on, so a plan can name them.
OTHER_PERMISSION_LABELS = {
    "PermissionsViewSetup": "View Setup and Configuration",
    "PermissionsModifyAllData": "Modify All Data",
    "PermissionsEditEvent": "Edit Events",
}
# The set that carries the system permissions ticked for one user is that user's own:
# its API name ends with the user's 15-character id, its label names the username.
USER_SET_NAME_PREFIX = "Backstory_User_Access_"
USER_SET_LABEL_PREFIX = "Backstory Access for "
MAX_PERMISSION_SET_LABEL = 80
MUTING_PREFIX = "0QM"  # the key prefix of MutingPermissionSet ids
INACTIVE = "inactive"  # the lapse of an assignment whose IsActive is false


def permission_label(flag: str) -> str:
    """Return the name Setup shows for a PermissionSet field such as ``PermissionsViewAllData``."""
    return SYSTEM_PERMISSION_LABELS.get(flag) or OTHER_PERMISSION_LABELS.get(flag) or flag


@dataclass
class AccessLine:
    """One permission a user needs, whether it is granted, and what grants or mutes it.

    ``sources`` lists what grants the permission, then what mutes it ("muted by
    group ..."); ``muted_by`` repeats the muting entries alone.
    """

    name: str
    granted: bool
    required: bool
    sources: list[str] = field(default_factory=list)
    note: str = ""
    flag: str = ""  # the PermissionSet field a permission set can switch on, if any
    muted_by: list[str] = field(default_factory=list)


@dataclass
class AccessReport:
    """A user's effective access for upserts by Message-ID; ``ok`` when every required line is granted."""

    user_id: str
    username: str
    name: str
    profile: str
    lines: list[AccessLine]
    ok: bool = False
    # Assignments that grant nothing, each with its reason, such as
    # "permission set Quarter End Cleanup: expired on 2026-11-05".
    ignored_assignments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ok = all(line.granted for line in self.lines if line.required)

    def line(self, name: str) -> AccessLine:
        """Return the line called ``name``; raises KeyError when there is none."""
        for line in self.lines:
            if line.name == name:
                return line
        raise KeyError(name)

    @property
    def missing(self) -> list[AccessLine]:
        """The required lines that are not granted."""
        return [line for line in self.lines if line.required and not line.granted]

    def missing_system_permissions(self) -> list[str]:
        """Return the PermissionSet fields of lines not granted that a permission set can grant."""
        return [line.flag for line in self.lines if line.flag and not line.granted]

    @property
    def field_access_missing(self) -> bool:
        """Tell whether Read or Edit on the field is not granted."""
        return any(line.name.startswith(("Read on ", "Edit on ")) and not line.granted
                   for line in self.lines)


@dataclass
class _Grants:
    """Permissions and field access that one permission set or muting permission set switches on."""

    flags: set[str]
    readable: set[str]  # FieldPermissions Field values with Read
    editable: set[str]  # FieldPermissions Field values with Edit


@dataclass
class _Source:
    """One assignment of the user, as the report names it, and what it grants."""

    label: str
    grants: _Grants
    # For a group: what each component grants, and what each muting set mutes.
    components: list[tuple[str, _Grants]] = field(default_factory=list)
    muting: list[tuple[str, _Grants]] = field(default_factory=list)
    group_label: str = ""
    ignored_because: str = ""  # set when the assignment has expired or is inactive


def field_permission_names(field_api_name: str) -> list[str]:
    """Return the FieldPermissions ``Field`` values of an Activity field: Task and Event."""
    return [f"{sobject}.{field_api_name}" for sobject in ACTIVITY_OBJECTS]


def list_users(conn: OrgConnection) -> list[UserRef]:
    """Return the org's users, active ones first, by name."""
    users = [user_ref(row) for row in conn.query_all(USER_QUERY + " ORDER BY Name")]
    return sorted(users, key=lambda user: (not user.is_active, user.name.lower()))


def load_user(conn: OrgConnection, user_id: str) -> dict[str, Any]:
    soql = format_soql(
        "SELECT Id, Name, Username, IsActive, ProfileId, Profile.Name FROM User WHERE Id = {}",
        user_id,
    )
    rows = list(conn.query_all(soql))
    if not rows:
        raise LookupError(f"no user with id {user_id} in the org")
    return rows[0]


def assignment_lapse(assignment: dict[str, Any], now: datetime) -> str:
    """Return why a PermissionSetAssignment grants nothing ("inactive", "expired on ..."), or ""."""
    if assignment.get("IsActive") is False:
        return INACTIVE
    expires = assignment.get("ExpirationDate")
    if not expires:
        return ""
    moment = _parse_datetime(str(expires))
    return f"expired on {moment.date().isoformat()}" if moment <= now else ""


def _parse_datetime(value: str) -> datetime:
    # Salesforce writes offsets as +0000; fromisoformat wants +00:00 on Python 3.11.
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _flag_fields() -> str:
    return ", ".join(flag for flag, _label in SYSTEM_PERMISSIONS)


def _flags_of(row: dict[str, Any]) -> set[str]:
    return {flag for flag, _label in SYSTEM_PERMISSIONS if row.get(flag)}


def _field_grants(rows: Iterable[dict[str, Any]], parent_id: str) -> tuple[set[str], set[str]]:
    readable: set[str] = set()
    editable: set[str] = set()
    for row in rows:
        if row.get("ParentId") != parent_id:
            continue
        name = str(row.get("Field"))
        if row.get("PermissionsRead"):
            readable.add(name)
        if row.get("PermissionsEdit"):
            editable.add(name)
    return readable, editable


def load_field_permissions(
    conn: OrgConnection, parent_ids: Collection[str], field_api_name: str
) -> list[dict[str, Any]]:
    if not parent_ids:
        return []
    soql = format_soql(
        "SELECT Id, ParentId, SobjectType, Field, PermissionsRead, PermissionsEdit "
        "FROM FieldPermissions WHERE ParentId IN {} AND Field IN {}",
        sorted(parent_ids),
        field_permission_names(field_api_name),
    )
    return list(conn.query_all(soql))


def _load_assignments(conn: OrgConnection, user_id: str) -> list[dict[str, Any]]:
    flags = ", ".join(f"PermissionSet.{flag}" for flag, _label in SYSTEM_PERMISSIONS)
    soql = format_soql(
        "SELECT Id, PermissionSetId, PermissionSetGroupId, ExpirationDate, IsActive, "
        "PermissionSet.Name, PermissionSet.Label, PermissionSet.IsOwnedByProfile, "
        "{:literal} FROM PermissionSetAssignment WHERE AssigneeId = {}",
        flags,
        user_id,
    )
    return list(conn.query_all(soql))


@dataclass
class _GroupParts:
    """A permission set group's label, component permission sets and muting permission sets."""

    label: str
    members: list[tuple[str, str, set[str]]]  # (id, label, flags)
    muting: list[tuple[str, str, set[str]]]


def _load_groups(conn: OrgConnection, group_ids: Collection[str]) -> dict[str, _GroupParts]:
    """Read each group's components (PermissionSetGroupComponent) and their flags."""
    if not group_ids:
        return {}
    ids = sorted(group_ids)
    labels = {
        str(row["Id"]): str(row.get("MasterLabel") or row.get("DeveloperName") or row["Id"])
        for row in conn.query_all(format_soql(
            "SELECT Id, DeveloperName, MasterLabel FROM PermissionSetGroup WHERE Id IN {}", ids))
    }
    components = list(conn.query_all(format_soql(
        "SELECT PermissionSetGroupId, PermissionSetId FROM PermissionSetGroupComponent "
        "WHERE PermissionSetGroupId IN {}", ids)))
    member_ids = sorted({str(row["PermissionSetId"]) for row in components})
    muting_ids = [member for member in member_ids if member.startswith(MUTING_PREFIX)]
    set_ids = [member for member in member_ids if not member.startswith(MUTING_PREFIX)]
    sets = _rows_by_id(conn, "SELECT Id, Name, Label, {:literal} FROM PermissionSet "
                       "WHERE Id IN {}", set_ids)
    mutes = _rows_by_id(conn, "SELECT Id, DeveloperName, MasterLabel, {:literal} "
                        "FROM MutingPermissionSet WHERE Id IN {}", muting_ids)

    groups = {group_id: _GroupParts(labels.get(group_id, group_id), [], []) for group_id in ids}
    for row in components:
        group = groups[str(row["PermissionSetGroupId"])]
        member = str(row["PermissionSetId"])
        if member in sets:
            found = sets[member]
            group.members.append((member, str(found.get("Label") or found.get("Name")),
                                  _flags_of(found)))
        elif member in mutes:
            found = mutes[member]
            group.muting.append((member, str(found.get("MasterLabel") or found.get("DeveloperName")),
                                 _flags_of(found)))
    return groups


def _rows_by_id(conn: OrgConnection, template: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    soql = format_soql(template, _flag_fields(), ids)
    return {str(row["Id"]): row for row in conn.query_all(soql)}


def _load_sources(
    conn: OrgConnection, user_id: str, profile_name: str, field_api_name: str
) -> list[_Source]:
    """Read every assignment of the user and what each grants, groups through their components."""
    now = datetime.now(UTC)
    assignments = _load_assignments(conn, user_id)
    groups = _load_groups(conn, {str(row["PermissionSetGroupId"]) for row in assignments
                                 if row.get("PermissionSetGroupId")})
    parent_ids = {str(row["PermissionSetId"]) for row in assignments}
    for parts in groups.values():
        parent_ids |= {member for member, _label, _flags in parts.members + parts.muting}
    rows = load_field_permissions(conn, parent_ids, field_api_name)

    sources = []
    for row in assignments:
        group = groups.get(str(row.get("PermissionSetGroupId")))
        if group is not None and group.members:
            source = _group_source(group, rows)
        elif group is not None:
            # No component could be read: the group's aggregate permission set still
            # shows what it grants, without naming the component or the muting set.
            source = _set_source(row, profile_name, rows)
            source.label = f"permission set group {group.label}"
        else:
            source = _set_source(row, profile_name, rows)
        source.ignored_because = assignment_lapse(row, now)
        sources.append(source)
    return sources


def _set_source(row: dict[str, Any], profile_name: str, rows: list[dict[str, Any]]) -> _Source:
    permission_set = row.get("PermissionSet") or {}
    readable, editable = _field_grants(rows, str(row["PermissionSetId"]))
    grants = _Grants(_flags_of(permission_set), readable, editable)
    if permission_set.get("IsOwnedByProfile"):
        return _Source(f"profile {profile_name}", grants)
    label = permission_set.get("Label") or permission_set.get("Name") or row["PermissionSetId"]
    return _Source(f"permission set {label}", grants)


def _group_source(group: _GroupParts, rows: list[dict[str, Any]]) -> _Source:
    """Evaluate a group as Salesforce does: the union of its permission sets minus its muting set."""
    source = _Source(f"permission set group {group.label}", _Grants(set(), set(), set()),
                     group_label=group.label)
    for member, label, flags in group.members:
        readable, editable = _field_grants(rows, member)
        grants = _Grants(flags, readable, editable)
        source.components.append((label, grants))
        source.grants.flags |= flags
        source.grants.readable |= readable
        source.grants.editable |= editable
    for member, label, flags in group.muting:
        # A muting row with Read set mutes Read and so Edit; one with Edit set mutes Edit only.
        read_muted, edit_muted = _field_grants(rows, member)
        muted = _Grants(flags, read_muted, edit_muted | read_muted)
        source.muting.append((label, muted))
        source.grants.flags -= muted.flags
        source.grants.readable -= muted.readable
        source.grants.editable -= muted.editable
    return source


def effective_access(
    conn: OrgConnection,
    user_id: str,
    field_api_name: str,
    *,
    field_unique: bool,
    cadence_tool: bool = False,
) -> AccessReport:
    """Report what ``user_id`` may do for upserts by ``field_api_name``, line by line.

    View All Data is required only when the field is not Unique (Salesforce's
    rule for upserts on a non-unique External ID); otherwise it is recommended.
    A cadence tool's user is checked for what its upserts need: the lines
    View All Data and View All Users are left out.
    """
    field_api_name = validate_field_api_name(field_api_name)
    user = load_user(conn, user_id)
    profile_name = str((user.get("Profile") or {}).get("Name") or "")
    sources = _load_sources(conn, user_id, profile_name, field_api_name)

    active = bool(user.get("IsActive"))
    lines = [AccessLine("Active", active, True, ["user record"],
                        "" if active else "Activate the user in Setup > Users.")]
    for flag, label in SYSTEM_PERMISSIONS:
        if cadence_tool and flag in ("PermissionsViewAllData", "PermissionsViewAllUsers"):
            continue
        line = _flag_line(sources, flag, label, field_unique=field_unique)
        lines.append(line)
    lines[3:3] = _field_lines(sources, field_api_name)

    report = AccessReport(
        user_id=user_id,
        username=str(user.get("Username") or ""),
        name=str(user.get("Name") or ""),
        profile=profile_name,
        lines=lines,
        ignored_assignments=[f"{source.label}: {source.ignored_because}"
                             for source in sources if source.ignored_because],
    )
    logger.info(
        "Access of %s for %s: %s", report.username, field_api_name, "ok" if report.ok else "missing"
    )
    return report


@dataclass
class _Found:
    """The sources that grant one permission, those that mute it, and ignored ones that would grant it."""

    granting: list[str] = field(default_factory=list)
    muted: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def add(self, other: _Found) -> None:
        for mine, theirs in ((self.granting, other.granting), (self.muted, other.muted),
                             (self.ignored, other.ignored)):
            mine.extend(item for item in theirs if item not in mine)


def _find(sources: list[_Source], test: Callable[[_Grants], bool]) -> _Found:
    """Collect the sources whose grants pass ``test``, naming groups through their components."""
    found = _Found()
    for source in sources:
        if source.ignored_because:
            if test(source.grants):
                found.ignored.append(f"{source.label} ({source.ignored_because})")
            continue
        if not source.group_label:
            if test(source.grants):
                found.granting.append(source.label)
            continue
        through = [label for label, grants in source.components if test(grants)]
        if test(source.grants):
            found.granting.extend(f"{source.label} (through permission set {label})"
                                  for label in through)
        elif through:
            found.muted.extend(
                f"muted by group {source.group_label} (muting permission set {label})"
                for label, muted in source.muting if test(muted)
            )
    return found


def _flag_line(sources: list[_Source], flag: str, label: str, *, field_unique: bool) -> AccessLine:
    found = _find(sources, lambda grants: flag in grants.flags)
    granted = bool(found.granting)
    required = True
    notes = []
    if flag == "PermissionsViewAllData":
        required = not field_unique
        notes.append(
            "Required because the field is not Unique: Salesforce upserts on such a field "
            "need View All Data."
            if required
            else "Recommended: Backstory's integration user is expected to see all activities."
        )
    elif flag == "PermissionsViewAllUsers":
        required = False
        notes.append("Recommended: Backstory matches activities to users by email.")
    notes.extend(_missing_notes(found, granted, f"{label} in a permission set assigned to the user"))
    return AccessLine(label, granted, required, found.granting + found.muted, " ".join(notes),
                      flag=flag, muted_by=found.muted)


def _missing_notes(found: _Found, granted: bool, what: str) -> list[str]:
    if granted:
        return []
    notes = []
    if found.muted:
        notes.append("A group's muting permission set removes it; grant it outside the group.")
    else:
        notes.append(f"Grant {what}.")
    if found.ignored:
        notes.append("Not counted: " + "; ".join(found.ignored) + ".")
    return notes


def _field_lines(sources: list[_Source], field_api_name: str) -> list[AccessLine]:
    lines = []
    names = field_permission_names(field_api_name)
    for action in ("Read", "Edit"):
        found = _Found()
        missing = []
        for name in names:
            def grants_field(grants: _Grants, name: str = name, action: str = action) -> bool:
                return name in (grants.readable if action == "Read" else grants.editable)

            per_object = _find(sources, grants_field)
            if not per_object.granting:
                missing.append(name)
            found.add(per_object)
        notes = []
        if missing:
            notes.append(f"No {action} on {' and '.join(missing)}.")
            notes.extend(_missing_notes(
                found, False, "it through field-level security in a permission set assigned to the user"))
        lines.append(AccessLine(f"{action} on {field_api_name}", not missing, True,
                                found.granting + found.muted, " ".join(notes), muted_by=found.muted))
    return lines
