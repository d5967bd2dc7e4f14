"""Plan and apply the permission sets that grant a user what the access check found missing.

Field access goes into the field set "Backstory Message ID Access", which every
user who needs the field is assigned. The system permissions the admin ticks go
into a set of that user's own ("Backstory Access for <username>"): a permission
ticked for one user then reaches that user only, and assigning the set gives the
user nothing that was ticked for someone else. Were another user assigned that
set by hand, the plan names them before anything is written. No profile is changed.

A set with one of these API names is reused only when it grants nothing beyond
what the plan would put there, and never when it belongs to a managed package.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.salesforce.access import (
    INACTIVE,
    MAX_PERMISSION_SET_LABEL,
    OTHER_PERMISSION_LABELS,
    PERMISSION_SET_DESCRIPTION,
    PERMISSION_SET_LABEL,
    PERMISSION_SET_NAME,
    SYSTEM_PERMISSION_LABELS,
    SYSTEM_PERMISSIONS,
    USER_SET_LABEL_PREFIX,
    USER_SET_NAME_PREFIX,
    assignment_lapse,
    field_permission_names,
    load_field_permissions,
    load_user,
    permission_label,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem

logger = logging.getLogger(__name__)

# Attribute of an error raised by apply_access_grant: the diff lines written before it.
_APPLIED_LINES = "backstory_applied_lines"


@dataclass
class SystemSetPlan:
    """The user's own permission set that carries the ticked system permissions, and its changes."""

    name: str
    label: str
    exists: bool
    assign: bool
    permission_set_id: str | None = None
    renew: str = ""  # why the user's assignment grants nothing now, such as "expired on 2026-11-05"
    blocked: str = ""  # why the existing set with this name is not reused
    other_assignees: list[str] = field(default_factory=list)  # usernames of other live assignees


@dataclass
class GrantPlan:
    """The changes that granting a user what it lacks would make; never a profile.

    Read and Edit on the field go into the field set "Backstory Message ID Access",
    which contains field permissions only. System permissions go into a set of the
    user's own, so a permission ticked for one user never reaches another.
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
    renew: str = ""  # why the user's assignment of the field set grants nothing now
    field_set_blocked: str = ""  # why the existing field set is not reused
    # PermissionDependency table the plan was made with: permission -> the permissions it requires.
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    # Permissions the user's own set has switched on already, so no narrowed plan enables them again.
    already_enabled: set[str] = field(default_factory=set)
    # Diff lines of the writes apply_access_grant made, set on the plan it returns.
    applied_lines: list[str] = field(default_factory=list)

    @property
    def has_field_changes(self) -> bool:
        """Tell whether the plan changes the field set or the user's assignment of it."""
        return self.field_access and (
            not self.exists
            or bool(self.field_permissions_to_add)
            or bool(self.field_permissions_to_update)
            or self.assign
            or bool(self.renew)
        )

    @property
    def has_changes(self) -> bool:
        system = self.system_set
        system_changes = system is not None and (
            not system.exists or system.assign or bool(system.renew) or bool(self.permissions_to_enable))
        return self.has_field_changes or system_changes

    @property
    def blocked(self) -> list[str]:
        """Sentences naming each existing set that is not reused, and what to do about it."""
        reasons = [self.field_set_blocked] if self.field_access else []
        if self.system_set is not None:
            reasons.append(self.system_set.blocked)
        return [reason for reason in reasons if reason]

    @property
    def can_apply(self) -> bool:
        """Tell whether applying the plan would change the org: it has changes and nothing blocks them."""
        return self.has_changes and not self.blocked

    def describe(self) -> list[str]:
        """Return the changes as lines to show the admin before applying them, warnings included."""
        return [text for _mark, text in self._marked_lines()]

    def diff_lines(self) -> list[str]:
        """Return describe()'s lines marked as a diff.

        "! " marks a set that is not reused or a user who gains a permission too,
        "+ " an addition, "- " a removal, "~ " a change, and "  " a plan without changes.
        """
        return [f"{mark} {text}" for mark, text in self._marked_lines()]

    def with_permissions(self, chosen: Collection[str]) -> GrantPlan:
        """Return this plan narrowed to the ``chosen`` system permissions and what they depend on.

        The plan must have been made with every permission the admin may choose,
        so that narrowing it needs no new look-up in the org. Dependencies are
        resolved again from what is still requested: a permission the admin
        unticked is still enabled when a ticked one requires it.
        """
        still_requested = [flag for flag in self.requested_permissions if flag in chosen]
        flags, required_by = resolve_dependencies(still_requested, self.dependencies)
        enable = [flag for flag in flags if flag not in self.already_enabled]
        return replace(self, requested_permissions=still_requested, permissions_to_enable=enable,
                       required_by=required_by,
                       system_set=self.system_set if still_requested else None)

    def _marked_lines(self) -> list[tuple[str, str]]:
        blocked = [("!", reason) for reason in self.blocked]
        if not self.has_changes and self.field_access:
            return [*blocked, (" ", f'No change: permission set "{self.permission_set_label}" already '
                                    f"grants Read and Edit and is assigned to {self.username}.")]
        if not self.has_changes:
            return [*blocked, (" ", f"No change: {self.username} already has what this grant would give.")]
        lines = self._field_lines() if self.field_access else []
        return blocked + lines + self._system_lines()

    def _field_lines(self) -> list[tuple[str, str]]:
        quoted = f'"{self.permission_set_label}"'
        lines = []
        if not self.exists:
            lines.append(_create_line(quoted, self.permission_set_name))
        lines.extend(_field_permission_line(quoted, name, added=True)
                     for name in self.field_permissions_to_add)
        lines.extend(_field_permission_line(quoted, name, added=False)
                     for name in self.field_permissions_to_update)
        if self.assign:
            lines.append(_assign_line(quoted, self.username))
        if self.renew:
            lines.extend(_renew_lines(quoted, self.username, self.renew))
        return lines

    def _system_lines(self) -> list[tuple[str, str]]:
        system = self.system_set
        if system is None:
            return []
        quoted = f'"{system.label}"'
        lines = []
        if not system.exists:
            lines.append(_create_line(quoted, system.name))
        for flag in self.permissions_to_enable:
            lines.extend(_enable_lines(self, system, flag))
        if system.assign:
            lines.append(_assign_line(quoted, self.username))
        if system.renew:
            lines.extend(_renew_lines(quoted, self.username, system.renew))
        return lines


def _create_line(quoted: str, name: str) -> tuple[str, str]:
    return "+", f"Create permission set {quoted} (API name {name})."


def _field_permission_line(quoted: str, name: str, *, added: bool) -> tuple[str, str]:
    if added:
        return "+", f"Add field permission Read and Edit on {name} to {quoted}."
    return "~", f"Change field permission on {name} in {quoted} to Read and Edit."


def _enable_lines(plan: GrantPlan, system: SystemSetPlan, flag: str) -> list[tuple[str, str]]:
    """Return the line that enables ``flag`` in the user's set, and who else gains it."""
    needed_by = plan.required_by.get(flag)
    why = f" ({permission_label(needed_by)} requires it)" if needed_by else ""
    lines = [("+", f'Enable system permission {permission_label(flag)} in "{system.label}"{why}.')]
    if system.other_assignees:
        lines.append(("!", f"Also grants {permission_label(flag)} to "
                           f"{', '.join(system.other_assignees)}, assigned this set."))
    return lines


def _assign_line(quoted: str, username: str) -> tuple[str, str]:
    return "+", f"Assign {quoted} to {username}."


def _renew_lines(quoted: str, username: str, lapse: str) -> list[tuple[str, str]]:
    if lapse == INACTIVE:
        # _ensure_assigned deletes the inactive assignment and creates a new one.
        return [("-", f"Remove the inactive assignment of {quoted} to {username}."),
                _assign_line(quoted, username)]
    return [("~", f"Renew the assignment of {quoted} to {username} ({lapse}): clear its expiration date.")]


def _marked(line: tuple[str, str]) -> str:
    mark, text = line
    return f"{mark} {text}"


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
    for flag, label in (*SYSTEM_PERMISSIONS, *OTHER_PERMISSION_LABELS.items()):
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
    """Return the permission set called ``name``, the org's own before a managed package's, or None."""
    columns = ", ".join(["Id", "Name", "Label", "NamespacePrefix", *flags])
    soql = format_soql("SELECT {:literal} FROM PermissionSet WHERE Name = {}", columns, name)
    rows = sorted(conn.query_all(soql), key=lambda row: bool(row.get("NamespacePrefix")))
    return rows[0] if rows else None


def _blocked_because(conn: OrgConnection, permission_set: dict[str, Any], *,
                     allowed_flags: Collection[str], allowed_fields: Collection[str]) -> str:
    """Return why an existing set with one of our API names is not reused, or "" when it may be.

    A managed package's set is the package's own, whatever it grants. NOTE: the
    practice org rejects a second set with the same API name in another namespace.
    Whether Salesforce does is unconfirmed, so the plan does not create one beside it.
    """
    name = str(permission_set.get("Name"))
    namespace = permission_set.get("NamespacePrefix")
    if namespace:
        return (f"The permission set {name} belongs to the managed package {namespace}, so it is not "
                "reused: grant the access in Setup with a permission set of the org's own.")
    extras = _extra_grants(conn, str(permission_set["Id"]), allowed_flags=allowed_flags,
                           allowed_fields=allowed_fields)
    if not extras:
        return ""
    those = "that" if len(extras) == 1 else "those"
    return (f"The existing permission set {name} also grants {', '.join(extras)}, so it is not reused: "
            f"remove {those} from it in Setup, or change its API name, then plan again.")


def _permission_labels(conn: OrgConnection) -> dict[str, str]:
    """Return every system permission field of PermissionSet, with the label describe gives it."""
    fields = conn.describe("PermissionSet").get("fields") or []
    return {str(item["name"]): str(item.get("label") or item["name"]) for item in fields
            if str(item.get("name", "")).startswith("Permissions") and item.get("type") == "boolean"}


def _extra_grants(conn: OrgConnection, permission_set_id: str, *, allowed_flags: Collection[str],
                  allowed_fields: Collection[str]) -> list[str]:
    """Return what the set grants beyond ``allowed_flags`` and ``allowed_fields``, as Setup names it.

    NOTE: object permissions and access to Apex classes or pages are not read,
    because the practice org has no ObjectPermissions or SetupEntityAccess. That a
    set created through the API starts with every system permission off is unconfirmed.
    """
    labels = _permission_labels(conn)
    # The record's own URL returns every field. A SOQL query naming the hundreds of Permissions*
    # fields of a real org comes close to the URI limit, 16,384 bytes, above which Salesforce returns 414
    # (REST API Developer Guide, "Status Codes and Error Responses").
    row = conn.request("GET", f"sobjects/PermissionSet/{permission_set_id}") or {}
    extras = [label for flag, label in sorted(labels.items(), key=lambda item: item[1])
              if row.get(flag) and flag not in allowed_flags]
    rows = conn.query_all(format_soql(
        "SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions WHERE ParentId = {}",
        permission_set_id))
    for field_row in rows:
        name = str(field_row.get("Field"))
        if name in allowed_fields:
            continue
        if field_row.get("PermissionsEdit"):
            extras.append(f"Edit on {name}")
        elif field_row.get("PermissionsRead"):
            extras.append(f"Read on {name}")
    return extras


def _assignment(conn: OrgConnection, user_id: str, permission_set_id: str) -> dict[str, Any] | None:
    """Return the user's assignment of the set, live or not, or None."""
    soql = format_soql(
        "SELECT Id, ExpirationDate, IsActive FROM PermissionSetAssignment "
        "WHERE AssigneeId = {} AND PermissionSetId = {}",
        user_id,
        permission_set_id,
    )
    return next(iter(conn.query_all(soql)), None)


def _assignment_state(conn: OrgConnection, user_id: str, permission_set_id: str) -> tuple[bool, str]:
    """Return whether the set must be assigned, and why the user's assignment grants nothing, if so."""
    found = _assignment(conn, user_id, permission_set_id)
    if found is None:
        return True, ""
    return False, assignment_lapse(found, datetime.now(UTC))


def _other_assignees(conn: OrgConnection, permission_set_id: str, user_id: str) -> list[str]:
    """Return the usernames of the other users whose assignment of the set is live."""
    soql = format_soql(
        "SELECT AssigneeId, Assignee.Username, ExpirationDate, IsActive FROM PermissionSetAssignment "
        "WHERE PermissionSetId = {}", permission_set_id)
    now = datetime.now(UTC)
    return sorted(str((row.get("Assignee") or {}).get("Username") or row["AssigneeId"])
                  for row in conn.query_all(soql)
                  if row.get("AssigneeId") != user_id and not assignment_lapse(row, now))


def user_set_name(user_id: str, username: str) -> tuple[str, str]:
    """Return the API name and label of the permission set that carries one user's system permissions."""
    label = f"{USER_SET_LABEL_PREFIX}{username}"[:MAX_PERMISSION_SET_LABEL]
    return f"{USER_SET_NAME_PREFIX}{user_id[:15]}", label


def plan_field_access_grant(conn: OrgConnection, user_id: str, field_api_name: str) -> GrantPlan:
    """Plan Read and Edit on Task and Event ``field_api_name`` for ``user_id``.

    The grant goes through the permission set "Backstory Message ID Access",
    created when missing, and assigned to the user when not assigned yet, or
    renewed when the user's assignment has expired or is inactive. An existing set
    that grants anything else is not reused: the plan gives the reason in ``blocked``.
    """
    field_api_name = validate_field_api_name(field_api_name)
    user = load_user(conn, user_id)
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
    plan.field_set_blocked = _blocked_because(conn, permission_set, allowed_flags=(), allowed_fields=names)
    rows = load_field_permissions(conn, [plan.permission_set_id], field_api_name)
    by_field = {str(row["Field"]): row for row in rows}
    plan.field_permissions_to_add = [name for name in names if name not in by_field]
    plan.field_permissions_to_update = [
        name
        for name in names
        if name in by_field
        and not (by_field[name].get("PermissionsRead") and by_field[name].get("PermissionsEdit"))
    ]
    plan.assign, plan.renew = _assignment_state(conn, user_id, plan.permission_set_id)
    return plan


def plan_access_grant(
    conn: OrgConnection,
    user_id: str,
    field_api_name: str,
    *,
    system_permissions: Collection[str] = (),
    include_field: bool = True,
) -> GrantPlan:
    """Plan the least-privilege grant: the field, and only the system permissions asked for.

    ``system_permissions`` are PermissionSet fields from SYSTEM_PERMISSIONS; any
    permission they depend on is added, and the plan names the one that needs it.
    They go into the user's own set (see user_set_name). Nothing is written.
    """
    unknown = [flag for flag in system_permissions if flag not in SYSTEM_PERMISSION_LABELS]
    if unknown:
        raise ValueError(f"invalid system permission {', '.join(unknown)}: use one of "
                         f"{', '.join(SYSTEM_PERMISSION_LABELS)}")
    field_api_name = validate_field_api_name(field_api_name)
    if include_field:
        plan = plan_field_access_grant(conn, user_id, field_api_name)
    else:
        user = load_user(conn, user_id)
        plan = GrantPlan(PERMISSION_SET_LABEL, True, [], False, user_id=user_id,
                         username=str(user.get("Username") or user_id), field_access=False,
                         field_api_name=field_api_name)
    if not system_permissions:
        return plan

    plan.requested_permissions = [flag for flag, _label in SYSTEM_PERMISSIONS if flag in system_permissions]
    dependencies = permission_dependencies(conn)
    flags, plan.required_by = resolve_dependencies(plan.requested_permissions, dependencies)
    plan.dependencies = dependencies
    name, label = user_set_name(user_id, plan.username)
    readable = [flag for flag in flags if flag in SYSTEM_PERMISSION_LABELS]
    existing = _find_permission_set(conn, name, readable)
    if existing is None:
        plan.system_set = SystemSetPlan(name, label, exists=False, assign=True)
        plan.permissions_to_enable = flags
        return plan

    set_id = str(existing["Id"])
    assign, renew = _assignment_state(conn, user_id, set_id)
    allowed, _required_by = resolve_dependencies(SYSTEM_PERMISSION_LABELS, dependencies)
    plan.system_set = SystemSetPlan(
        name, str(existing.get("Label") or label), exists=True, assign=assign, permission_set_id=set_id,
        renew=renew, other_assignees=_other_assignees(conn, set_id, user_id),
        blocked=_blocked_because(conn, existing, allowed_flags=allowed, allowed_fields=()),
    )
    plan.already_enabled = {flag for flag in flags if existing.get(flag)}
    plan.permissions_to_enable = [flag for flag in flags if flag not in plan.already_enabled]
    return plan


def apply_access_grant(conn: OrgConnection, plan: GrantPlan) -> GrantPlan:
    """Make the changes of a confirmed plan; nothing beyond what it lists.

    Returns the plan with ``applied_lines``: the diff lines of the writes made.
    Raises SalesforceProblem, writing nothing, when the plan reuses a set that
    grants more than it would. When a write fails, the error raised carries the
    lines written before it (see lines_applied_before). Each write checks the org
    first, so applying a plan twice changes nothing the second time. Run
    effective_access again to confirm the result.
    """
    if plan.blocked:
        raise SalesforceProblem(ProblemKind.FIXABLE, plan.blocked[0], " ".join(plan.blocked))
    if not plan.has_changes:
        return plan
    applied: list[str] = []
    try:
        if plan.field_access:
            _apply_field_part(conn, plan, applied)
        if plan.system_set is not None:
            _apply_system_part(conn, plan, plan.system_set, applied)
    except Exception as error:
        setattr(error, _APPLIED_LINES, applied)
        logger.info("Granting access to %s failed after %d changes (%s)", plan.username,
                    _change_count(applied), type(error).__name__)
        raise
    logger.info("Granted access to %s: %d changes", plan.username, _change_count(applied))
    return replace(plan, applied_lines=applied)


def lines_applied_before(error: BaseException) -> list[str]:
    """Return the diff lines of the writes apply_access_grant made before ``error`` stopped it."""
    lines = getattr(error, _APPLIED_LINES, [])
    return [str(line) for line in lines] if isinstance(lines, list) else []


def _change_count(lines: list[str]) -> int:
    """Count the diff lines that are changes: "+", "-" and "~", not "!" warnings."""
    return sum(1 for line in lines if line[:1] in "+-~")


def _apply_field_part(conn: OrgConnection, plan: GrantPlan, applied: list[str]) -> None:
    quoted = f'"{plan.permission_set_label}"'
    existing = _find_permission_set(conn)
    if existing is None:
        permission_set_id = _create_permission_set(conn)
        quoted = f'"{PERMISSION_SET_LABEL}"'
        applied.append(_marked(_create_line(quoted, PERMISSION_SET_NAME)))
    else:
        permission_set_id = str(existing["Id"])
    for name in plan.field_permissions_to_add + plan.field_permissions_to_update:
        added = _ensure_field_permission(conn, permission_set_id, name)
        if added is not None:
            applied.append(_marked(_field_permission_line(quoted, name, added=added)))
    _ensure_assigned(conn, plan.user_id, permission_set_id, quoted, plan.username, applied)


def _apply_system_part(conn: OrgConnection, plan: GrantPlan, system: SystemSetPlan,
                       applied: list[str]) -> None:
    enable = {flag: True for flag in plan.permissions_to_enable}
    quoted = f'"{system.label}"'
    existing = _find_permission_set(conn, system.name)
    if existing is None:
        result = conn.request("POST", "sobjects/PermissionSet", json={
            "Name": system.name, "Label": system.label,
            "Description": f"System permissions Backstory's upserts by Message-ID need, chosen by an "
                           f"admin for {plan.username} alone.",
            **enable,
        })
        permission_set_id = str(result["id"])
        applied.append(_marked(_create_line(quoted, system.name)))
    else:
        permission_set_id = str(existing["Id"])
        if enable:
            conn.request("PATCH", f"sobjects/PermissionSet/{permission_set_id}", json=enable)
    for flag in plan.permissions_to_enable:
        applied.extend(_marked(line) for line in _enable_lines(plan, system, flag))
    _ensure_assigned(conn, plan.user_id, permission_set_id, quoted, plan.username, applied)


def _ensure_assigned(conn: OrgConnection, user_id: str, permission_set_id: str, quoted: str,
                     username: str, applied: list[str]) -> None:
    """Assign the set to the user, or make a lapsed assignment live again, adding a line per write."""
    found = _assignment(conn, user_id, permission_set_id)
    lapse = assignment_lapse(found, datetime.now(UTC)) if found is not None else ""
    if found is not None and lapse == INACTIVE:
        # IsActive is read-only, so an inactive assignment is replaced: a user may hold
        # only one assignment of a set. Its ExpirationDate goes with it.
        # NOTE: what makes IsActive false on a real org is unconfirmed; the practice org
        # resets it on a new assignment.
        conn.request("DELETE", f"sobjects/PermissionSetAssignment/{found['Id']}")
        applied.append(_marked(_renew_lines(quoted, username, INACTIVE)[0]))
        found = None
    if found is None:
        conn.request("POST", "sobjects/PermissionSetAssignment",
                     json={"AssigneeId": user_id, "PermissionSetId": permission_set_id})
        applied.append(_marked(_assign_line(quoted, username)))
    elif lapse:
        # ExpirationDate is updatable (object reference, PermissionSetAssignment):
        # clearing it makes the assignment permanent.
        conn.request("PATCH", f"sobjects/PermissionSetAssignment/{found['Id']}",
                     json={"ExpirationDate": None})
        applied.extend(_marked(line) for line in _renew_lines(quoted, username, lapse))


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


def _ensure_field_permission(conn: OrgConnection, permission_set_id: str, name: str) -> bool | None:
    """Give the set Read and Edit on ``name``.

    Returns True when a row was added, False when one was changed, and None when
    the row had both already.
    """
    # Read the rows again before each write: Salesforce may mirror a Task row
    # onto Event for Activity fields, which would make a blind create fail.
    sobject, field_api_name = name.split(".", 1)
    rows = [
        row
        for row in load_field_permissions(conn, [permission_set_id], field_api_name)
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
        return True
    row = rows[0]
    if row.get("PermissionsRead") and row.get("PermissionsEdit"):
        return None
    conn.request(
        "PATCH",
        f"sobjects/FieldPermissions/{row['Id']}",
        json={"PermissionsRead": True, "PermissionsEdit": True},
    )
    return False
