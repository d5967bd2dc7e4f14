"""Effective permissions of a user, and the permission sets that grant what is missing.

A user's permissions are the union of every live permission set assignment:
the profile's own permission set, permission sets, and permission set groups.
A group grants what its component permission sets grant, minus what its muting
permission set mutes. Muting acts inside its group only, so the same permission
granted by another source still applies (object reference, MutingPermissionSet
and PermissionSetGroupComponent,
https://developer.salesforce.com/docs/platform/object-reference/references/standard-objects/object-mutingpermissionset.html).
An assignment that has expired or is inactive grants nothing; the report lists
it apart. Each line of the report names what grants it and what mutes it, so the
admin knows where to change it. Field-level security on an Activity field is
stored as FieldPermissions rows on ``Task.<field>`` and ``Event.<field>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from simple_salesforce.exceptions import SalesforceError
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
_OTHER_PERMISSION_LABELS = {
    "PermissionsViewSetup": "View Setup and Configuration",
    "PermissionsModifyAllData": "Modify All Data",
    "PermissionsEditEvent": "Edit Events",
}
# Sets that carry system permissions, apart from the field set, so that a permission
# ticked for one kind of user never reaches the others assigned the field set.
INTEGRATION_SET = ("Backstory_Integration_User_Access", "Backstory Integration User Access")
CADENCE_SET = ("Backstory_Cadence_User_Access", "Backstory Cadence User Access")
MUTING_PREFIX = "0QM"  # the key prefix of MutingPermissionSet ids


def permission_label(flag: str) -> str:
    """Return the name Setup shows for a PermissionSet field such as ``PermissionsViewAllData``."""
    return SYSTEM_PERMISSION_LABELS.get(flag) or _OTHER_PERMISSION_LABELS.get(flag) or flag


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


def _load_user(conn: OrgConnection, user_id: str) -> dict[str, Any]:
    soql = format_soql(
        "SELECT Id, Name, Username, IsActive, ProfileId, Profile.Name FROM User WHERE Id = {}",
        user_id,
    )
    rows = list(conn.query_all(soql))
    if not rows:
        raise LookupError(f"no user with id {user_id} in the org")
    return rows[0]


def _ignored_because(assignment: dict[str, Any], now: datetime) -> str:
    """Return why an assignment grants nothing ("inactive", "expired on ..."), or ""."""
    if assignment.get("IsActive") is False:
        return "inactive"
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


def _load_field_permissions(
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
    rows = _load_field_permissions(conn, parent_ids, field_api_name)

    sources = []
    for row in assignments:
        group = groups.get(str(row.get("PermissionSetGroupId")))
        if group is not None and group.members:
            source = _group_source(group, rows)
        elif group is not None:
            # No component could be read: the group's aggregate permission set still
            # tells what it grants, without naming the component or the muting set.
            source = _set_source(row, profile_name, rows)
            source.label = f"permission set group {group.label}"
        else:
            source = _set_source(row, profile_name, rows)
        source.ignored_because = _ignored_because(row, now)
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
    user = _load_user(conn, user_id)
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


# -- granting what is missing ----------------------------------------------------------


@dataclass
class SystemSetPlan:
    """The permission set that carries the ticked system permissions, and its changes."""

    name: str
    label: str
    exists: bool
    assign: bool
    permission_set_id: str | None = None


@dataclass
class GrantPlan:
    """The changes that granting a user what it lacks would make; never a profile.

    Read and Edit on the field go into the field set "Backstory Message ID Access",
    which contains field permissions only. System permissions go into a separate
    set for the kind of user (integration user or cadence tool user), so a
    permission ticked for one never reaches users who only need the field.
    """

    permission_set_label: str
    exists: bool
    field_permissions_to_add: list[str]
    assign: bool
    field_permissions_to_update: list[str] = field(default_factory=list)
    permission_set_name: str = PERMISSION_SET_NAME
    permission_set_id: str | None = None
    user_id: str = ""
    username: str = ""
    # PermissionSet fields to switch on in ``system_set``, dependencies included.
    permissions_to_enable: list[str] = field(default_factory=list)
    # A permission added because another one needs it -> the one that needs it.
    required_by: dict[str, str] = field(default_factory=dict)
    system_set: SystemSetPlan | None = None
    field_access: bool = True  # False when the user has the field already: the field set is left alone
    field_api_name: str = ""
    requested_permissions: list[str] = field(default_factory=list)  # as asked, before dependencies

    @property
    def has_changes(self) -> bool:
        field_changes = self.field_access and (
            not self.exists
            or bool(self.field_permissions_to_add)
            or bool(self.field_permissions_to_update)
            or self.assign
        )
        system = self.system_set
        system_changes = system is not None and (
            not system.exists or system.assign or bool(self.permissions_to_enable))
        return bool(field_changes or system_changes)

    def describe(self) -> list[str]:
        """Return the changes as lines to show the admin before applying them."""
        quoted = f'"{self.permission_set_label}"'
        if not self.has_changes and self.field_access:
            return [
                f"No change: permission set {quoted} already grants Read and Edit and is "
                f"assigned to {self.username}."
            ]
        if not self.has_changes:
            return [f"No change: {self.username} already has what this grant would give."]
        lines = self._field_lines(quoted) if self.field_access else []
        return lines + self._system_lines()

    def with_permissions(self, chosen: Collection[str]) -> GrantPlan:
        """Return this plan narrowed to the ``chosen`` system permissions and what they depend on.

        The plan must have been made with every permission the admin may choose,
        so that narrowing it needs no new look-up in the org.
        """
        still_requested = [flag for flag in self.requested_permissions if flag in chosen]
        enable = [flag for flag in self.permissions_to_enable if flag in still_requested]
        required_by = {}
        pending = list(still_requested)
        while pending:
            needer = pending.pop(0)
            for flag, needed_by in self.required_by.items():
                if needed_by == needer and flag not in required_by:
                    required_by[flag] = needer
                    pending.append(flag)
        enable += [flag for flag in self.permissions_to_enable if flag in required_by and flag not in enable]
        return replace(self, requested_permissions=still_requested, permissions_to_enable=enable,
                       required_by=required_by,
                       system_set=self.system_set if still_requested else None)

    def diff_lines(self) -> list[str]:
        """Return describe()'s lines marked as a diff: "+ " adds, "~ " changes, "  " no change."""
        if not self.has_changes:
            return ["  " + line for line in self.describe()]
        return [("~ " if line.startswith("Change") else "+ ") + line for line in self.describe()]

    def _field_lines(self, quoted: str) -> list[str]:
        lines = []
        if not self.exists:
            lines.append(f"Create permission set {quoted} (API name {self.permission_set_name}).")
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

    def _system_lines(self) -> list[str]:
        system = self.system_set
        if system is None:
            return []
        quoted = f'"{system.label}"'
        lines = []
        if not system.exists:
            lines.append(f"Create permission set {quoted} (API name {system.name}).")
        for flag in self.permissions_to_enable:
            needed_by = self.required_by.get(flag)
            why = f" ({permission_label(needed_by)} requires it)" if needed_by else ""
            lines.append(f"Enable system permission {permission_label(flag)} in {quoted}{why}.")
        if system.assign:
            lines.append(f"Assign {quoted} to {self.username}.")
        return lines


def resolve_dependencies(
    requested: Iterable[str], dependencies: dict[str, set[str]]
) -> tuple[list[str], dict[str, str]]:
    """Add every permission the requested ones depend on, transitively.

    Returns the permissions in order (the requested ones first, then what they
    need) and, for each added one, the permission that needs it.
    """
    ordered: list[str] = []
    required_by: dict[str, str] = {}
    pending = [(flag, "") for flag in requested]
    while pending:
        flag, needed_by = pending.pop(0)
        if flag in ordered:
            continue
        ordered.append(flag)
        if needed_by:
            required_by[flag] = needed_by
        pending.extend((required, flag) for required in sorted(dependencies.get(flag, ())))
    return ordered, required_by


def _normalised_permission(name: str) -> str:
    """Return ``PermissionsViewAllData`` for "ViewAllData", "View All Data" or the field name."""
    for flag, label in (*SYSTEM_PERMISSIONS, *_OTHER_PERMISSION_LABELS.items()):
        if name.casefold() in (flag.casefold(), flag[len("Permissions"):].casefold(), label.casefold()):
            return flag
    compact = name.replace(" ", "")
    return compact if compact.startswith("Permissions") else f"Permissions{compact}"


def permission_dependencies(conn: OrgConnection) -> dict[str, set[str]]:
    """Read which user permissions require others from the Tooling API's PermissionDependency.

    Salesforce rejects a permission set with a permission whose required
    permissions are off; PermissionDependency (Tooling API v46.0+,
    https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_permissiondependency.htm)
    lists them. Returns an empty table when the org rejects the query.
    """
    soql = ("SELECT Permission, RequiredPermission FROM PermissionDependency "
            "WHERE PermissionType = 'User Permission' AND RequiredPermissionType = 'User Permission'")
    try:
        rows = conn.tooling_query(soql)
    except SalesforceError as error:
        # NOTE: without this table Salesforce rejects a ticked permission that needs another
        # when the plan is applied, and the admin gets its error message, not the added permission.
        logger.info("Reading permission dependencies failed (%s); planning without them",
                    type(error).__name__)
        return {}
    table: dict[str, set[str]] = {}
    for row in rows:
        permission = _normalised_permission(str(row.get("Permission") or ""))
        required = _normalised_permission(str(row.get("RequiredPermission") or ""))
        table.setdefault(permission, set()).add(required)
    return table


def _find_permission_set(conn: OrgConnection, name: str = PERMISSION_SET_NAME,
                         flags: Collection[str] = ()) -> dict[str, Any] | None:
    columns = ", ".join(["Id", "Name", "Label", *flags])
    soql = format_soql("SELECT {:literal} FROM PermissionSet WHERE Name = {}", columns, name)
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
        field_api_name=field_api_name,
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


def plan_access_grant(
    conn: OrgConnection,
    user_id: str,
    field_api_name: str,
    *,
    system_permissions: Collection[str] = (),
    include_field: bool = True,
    cadence_tool: bool = False,
) -> GrantPlan:
    """Plan the least-privilege grant: the field, and only the system permissions asked for.

    ``system_permissions`` are PermissionSet fields from SYSTEM_PERMISSIONS; any
    permission they depend on is added, and the plan names the one that needs it. They
    go into "Backstory Integration User Access", or "Backstory Cadence User
    Access" with ``cadence_tool``. Nothing is written.
    """
    unknown = [flag for flag in system_permissions if flag not in SYSTEM_PERMISSION_LABELS]
    if unknown:
        raise ValueError(f"invalid system permission {', '.join(unknown)}: use one of "
                         f"{', '.join(SYSTEM_PERMISSION_LABELS)}")
    field_api_name = validate_field_api_name(field_api_name)
    if include_field:
        plan = plan_field_access_grant(conn, user_id, field_api_name)
    else:
        user = _load_user(conn, user_id)
        plan = GrantPlan(PERMISSION_SET_LABEL, True, [], False, user_id=user_id,
                         username=str(user.get("Username") or user_id), field_access=False,
                         field_api_name=field_api_name)
    if not system_permissions:
        return plan

    plan.requested_permissions = [flag for flag, _label in SYSTEM_PERMISSIONS if flag in system_permissions]
    flags, plan.required_by = resolve_dependencies(plan.requested_permissions,
                                                   permission_dependencies(conn))
    name, label = CADENCE_SET if cadence_tool else INTEGRATION_SET
    readable = [flag for flag in flags if flag in SYSTEM_PERMISSION_LABELS]
    existing = _find_permission_set(conn, name, readable)
    if existing is None:
        plan.system_set = SystemSetPlan(name, label, exists=False, assign=True)
        plan.permissions_to_enable = flags
        return plan
    set_id = str(existing["Id"])
    plan.system_set = SystemSetPlan(name, str(existing.get("Label") or label), exists=True,
                                    assign=not _is_assigned(conn, user_id, set_id),
                                    permission_set_id=set_id)
    plan.permissions_to_enable = [flag for flag in flags if not existing.get(flag)]
    return plan


def apply_access_grant(conn: OrgConnection, plan: GrantPlan) -> GrantPlan:
    """Make the changes of a confirmed plan and return it; nothing beyond what it lists.

    Each write checks the org first, so applying a plan twice changes nothing
    the second time. Run effective_access again to confirm the result.
    """
    if not plan.has_changes:
        return plan
    if plan.field_access:
        _apply_field_part(conn, plan)
    if plan.system_set is not None:
        _apply_system_part(conn, plan, plan.system_set)
    logger.info("Granted access to %s: %d changes", plan.username, len(plan.describe()))
    return plan


def _apply_field_part(conn: OrgConnection, plan: GrantPlan) -> None:
    existing = _find_permission_set(conn)
    permission_set_id = str(existing["Id"]) if existing else _create_permission_set(conn)
    for name in plan.field_permissions_to_add + plan.field_permissions_to_update:
        _ensure_field_permission(conn, permission_set_id, name)
    _ensure_assigned(conn, plan.user_id, permission_set_id)


def _apply_system_part(conn: OrgConnection, plan: GrantPlan, system: SystemSetPlan) -> None:
    enable = {flag: True for flag in plan.permissions_to_enable}
    existing = _find_permission_set(conn, system.name)
    if existing is None:
        result = conn.request("POST", "sobjects/PermissionSet", json={
            "Name": system.name, "Label": system.label,
            "Description": "System permissions Backstory's upserts by Message-ID need, "
                           "each chosen by an admin.",
            **enable,
        })
        permission_set_id = str(result["id"])
    else:
        permission_set_id = str(existing["Id"])
        if enable:
            conn.request("PATCH", f"sobjects/PermissionSet/{permission_set_id}", json=enable)
    _ensure_assigned(conn, plan.user_id, permission_set_id)


def _ensure_assigned(conn: OrgConnection, user_id: str, permission_set_id: str) -> None:
    if not _is_assigned(conn, user_id, permission_set_id):
        conn.request("POST", "sobjects/PermissionSetAssignment",
                     json={"AssigneeId": user_id, "PermissionSetId": permission_set_id})


def apply_field_access_grant(
    conn: OrgConnection, user_id: str, field_api_name: str
) -> GrantPlan:
    """Grant Read and Edit on the field as plan_field_access_grant plans it, and return the plan.

    The plan is made afresh from the org's current state. Nothing is checked
    afterwards: run effective_access again to confirm.
    """
    plan = plan_field_access_grant(conn, user_id, field_api_name)
    return apply_access_grant(conn, plan)


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
