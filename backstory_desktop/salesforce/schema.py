"""Inspect and create the Activity custom fields: the Message-ID key and the Backstory flag.

A custom field for Tasks and Events is defined once on Activity
(``Activity.Message_ID__c``) and read as ``Task.Message_ID__c``. The Tooling API
shows how the field is defined. The Task describe shows whether the signed-in
user can see and write it, because describe leaves out fields hidden by
field-level security.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from backstory_desktop.core.fields import parse_field_api_name, validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.salesforce.access_grants import (
    GrantPlan,
    apply_access_grant,
    lines_applied_before,
    plan_field_access_grant,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain
from backstory_desktop.salesforce.unique_blockers import (
    KeyedActivity,
    UniqueBlocker,
    long_values_among,
    read_keyed_activities,
    unique_blockers_among,
)

logger = logging.getLogger(__name__)

KEY_LENGTH = 255
# Error code of a change Salesforce accepted but describe does not show as expected.
FIELD_NOT_CONFIRMED = "FIELD_NOT_CONFIRMED"
# Error code of a fix whose definition change was made but whose grant of access failed.
ACCESS_NOT_GRANTED = "ACCESS_NOT_GRANTED"
# Error code of a created field whose grant of access or check in describe then failed.
FIELD_CREATED_UNFINISHED = "FIELD_CREATED_UNFINISHED"
# Error code of a grant refused before anything changed: the existing permission set is not reused.
ACCESS_BLOCKED = "ACCESS_BLOCKED"
DEFAULT_LABEL = "Message ID"
DEFAULT_DESCRIPTION = (
    "RFC 5322 Message-ID of the email this activity logs. Backstory and cadence tools "
    "upsert Tasks by this key so that one email becomes one Task."
)


class ChangedThenFailed(SalesforceProblem):
    """A failure after the org was already changed; the caller records ``summary`` and ``lines``."""

    def __init__(self, problem: SalesforceProblem, sentence: str, *, summary: str, lines: list[str],
                 error_code: str | None) -> None:
        super().__init__(problem.kind, sentence, problem.details, error_code=error_code,
                         status=problem.status)
        self.summary = summary
        self.lines = list(lines)


@dataclass
class FieldCreation:
    """The key field after create_message_id_field, and what it changed in the org.

    ``definition_lines`` are the diff lines of the field created, and
    ``grant_lines`` those of the grant of access. Both are empty when the field
    existed with these settings and the user had access already.
    """

    state: FieldState
    created: bool
    definition_lines: list[str]
    grant_lines: list[str]

    @property
    def lines(self) -> list[str]:
        """Return every change made, as diff lines."""
        return self.definition_lines + self.grant_lines

    @property
    def summary(self) -> str:
        """Return the line that names the change in the run's change log."""
        verb = "Created" if self.created else "Granted access to"
        return f"{verb} Activity.{self.state.api_name}"


@dataclass
class FieldState:
    """The definition of an Activity custom field and its visibility to the signed-in user.

    ``problems`` lists what is wrong in sentences; empty means ready for upserts.
    Definition values come from the Tooling API when the user may read it, else
    from describe.
    """

    api_name: str
    exists: bool = False
    tooling_id: str | None = None
    type: str | None = None
    length: int | None = None
    unique: bool | None = None
    external_id: bool | None = None
    case_sensitive: bool | None = None
    label: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    """The Tooling API Metadata as read, the base of a fix; empty when it could not be read."""
    definition_readable: bool = True
    """False when the user may not read field definitions (Tooling API), so a field
    absent from describe may still exist."""
    visible_in_describe: bool = False
    createable: bool = False
    updateable: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


def _definition(conn: OrgConnection, api_name: str, *, allow_namespace: bool) -> dict[str, Any] | None:
    """Return the Tooling CustomField row with its Metadata, or None when it does not exist.

    Raises SalesforceError when the user may not query the Tooling API.
    """
    name = parse_field_api_name(api_name, allow_namespace=allow_namespace)
    soql = format_soql(
        "SELECT Id, DeveloperName, NamespacePrefix, TableEnumOrId FROM CustomField "
        "WHERE TableEnumOrId = 'Activity' AND DeveloperName = {}",
        name.developer_name,
    )
    rows = [
        row
        for row in conn.tooling_query(soql)
        if (row.get("NamespacePrefix") or None) == name.namespace
    ]
    if not rows:
        return None
    # Salesforce returns Metadata only when the query selects a single row.
    detail = conn.tooling_query(
        format_soql("SELECT Id, FullName, Metadata FROM CustomField WHERE Id = {}", rows[0]["Id"])
    )
    return detail[0] if detail else rows[0]


def _describe_field(conn: OrgConnection, api_name: str) -> dict[str, Any] | None:
    describe = conn.describe("Task")
    for entry in describe.get("fields", []):
        if str(entry.get("name", "")).lower() == api_name.lower():
            return dict(entry)
    return None


def _org_spelling(definition: dict[str, Any], typed: str) -> str:
    """Return the field's API name as the org spells it; SOQL matched the typed name without case."""
    full_name = str(definition.get("FullName") or "")
    if "." in full_name:
        return full_name.partition(".")[2]
    if definition.get("DeveloperName"):
        return _row_api_name(definition)
    return typed


def _inspect(conn: OrgConnection, api_name: str, *, allow_namespace: bool) -> FieldState:
    state = FieldState(api_name=api_name)
    tooling_readable = True
    try:
        definition = _definition(conn, api_name, allow_namespace=allow_namespace)
    except SalesforceError as exc:
        tooling_readable = False
        definition = None
        logger.info("Tooling query for %s failed: %s", api_name, explain(exc).sentence)

    if definition is not None:
        metadata = definition.get("Metadata") or {}
        state.exists = True
        state.tooling_id = str(definition["Id"])
        state.type = metadata.get("type")
        state.length = metadata.get("length")
        state.unique = metadata.get("unique")
        state.external_id = metadata.get("externalId")
        state.case_sensitive = metadata.get("caseSensitive")
        state.label = metadata.get("label")
        state.description = metadata.get("description")
        state.metadata = dict(metadata)
        state.api_name = _org_spelling(definition, api_name)

    described = _describe_field(conn, api_name)
    if described is not None:
        state.visible_in_describe = True
        state.exists = True
        state.api_name = str(described.get("name") or state.api_name)
        state.createable = bool(described.get("createable"))
        state.updateable = bool(described.get("updateable"))
        if definition is None or not definition.get("Metadata"):
            state.type = "Text" if described.get("type") == "string" else described.get("type")
            state.length = described.get("length")
            state.unique = described.get("unique")
            state.external_id = described.get("externalId")
            state.case_sensitive = described.get("caseSensitive")
            state.label = described.get("label")
    state.definition_readable = tooling_readable
    if not state.exists and not tooling_readable:
        state.problems.append(
            f"{api_name} could not be checked: it is not visible to {conn.username} and this "
            "user may not read field definitions (Tooling API); sign in as an admin."
        )
    return state


def _key_problems(state: FieldState, username: str) -> list[str]:
    name = state.api_name
    if not state.exists and not state.definition_readable:
        return []  # _inspect has already reported that the field could not be checked.
    if not state.exists:
        return [
            f"Activity.{name} does not exist; create it as Text({KEY_LENGTH}), Unique, External ID."
        ]
    problems = []
    if not state.visible_in_describe:
        problems.append(
            f"{name} exists but field-level security hides it from {username}; grant Read and "
            f"Edit on Task.{name} and Event.{name} in a permission set."
        )
    elif not (state.createable and state.updateable):
        problems.append(
            f"{name} is read-only for {username}; grant Edit on Task.{name} and Event.{name}."
        )
    if state.type is not None and state.type != "Text":
        problems.append(f"{name} is a {state.type} field, not Text; Message-IDs need Text({KEY_LENGTH}).")
    elif state.length is not None and int(state.length) < KEY_LENGTH:
        problems.append(
            f"{name} holds {state.length} characters, fewer than {KEY_LENGTH}; "
            f"longer Message-IDs would be rejected."
        )
    if state.external_id is False:
        problems.append(f"{name} is not an External ID, so Salesforce cannot upsert by it.")
    if state.unique is False:
        problems.append(
            f"{name} is not Unique, so two Tasks may share a key and upserts need View All Data."
        )
    return problems


def inspect_message_id_field(conn: OrgConnection, api_name: str = "Message_ID__c") -> FieldState:
    """Inspect the Message-ID field and list what keeps it from serving upserts."""
    api_name = validate_field_api_name(api_name)
    state = _inspect(conn, api_name, allow_namespace=False)
    state.problems.extend(_key_problems(state, conn.username))
    return state


def inspect_flag_field(
    conn: OrgConnection, api_name: str = "peopleai__Created_by_PeopleAI__c"
) -> FieldState:
    """Inspect the "Created by Backstory" checkbox, a managed package field."""
    api_name = validate_field_api_name(api_name, allow_namespace=True)
    state = _inspect(conn, api_name, allow_namespace=True)
    if not state.exists and not state.definition_readable:
        pass  # _inspect has already reported that the field could not be checked.
    elif not state.exists:
        state.problems.append(
            f"{api_name} does not exist; install or update Backstory's managed package."
        )
    elif not state.visible_in_describe:
        state.problems.append(
            f"{api_name} exists but field-level security hides it from {conn.username}; grant "
            f"Read on Task.{api_name} in a permission set."
        )
    elif state.type not in (None, "Checkbox", "boolean"):
        state.problems.append(f"{api_name} is a {state.type} field, not a Checkbox.")
    return state


def create_message_id_field(
    conn: OrgConnection,
    api_name: str = "Message_ID__c",
    *,
    case_sensitive: bool,
    label: str = DEFAULT_LABEL,
    description: str = DEFAULT_DESCRIPTION,
) -> FieldCreation:
    """Create the field on Activity, grant the signed-in user access, and confirm in describe.

    The field is Text(255), Unique and External ID, with ``case_sensitive``
    sent explicitly because Salesforce otherwise makes uniqueness case-insensitive.
    A field that already exists with these settings is not created again, so a
    run that stopped after the create can be repeated. Access goes through the
    "Backstory Message ID Access" permission set, because a field created
    through the API has no field-level security for anyone. The grant is planned
    first, so a set that may not be reused stops the create before anything changes.
    Raises SalesforceProblem when the field exists with other settings or the grant
    is blocked. Raises ChangedThenFailed, with FIELD_CREATED_UNFINISHED once the
    field was created, when the grant or the check in describe fails after a change.
    """
    api_name = validate_field_api_name(api_name)
    before = _inspect(conn, api_name, allow_namespace=False)
    if before.exists:
        # Field permissions name the field exactly, so the org's spelling is the one to use.
        api_name = before.api_name
        _check_existing_definition(before, case_sensitive=case_sensitive)
    grant = plan_field_access_grant(conn, conn.user_id, api_name)
    if grant.blocked:
        raise _grant_blocked(api_name, grant)
    lines: list[str] = []
    if not before.exists:
        _post_custom_field(conn, api_name, case_sensitive, label, description)
        lines = _creation_lines(api_name, case_sensitive, label)
    definition_lines = list(lines)

    try:
        if grant.has_changes:
            try:
                lines += apply_access_grant(conn, grant).applied_lines
            except (SalesforceError, SalesforceProblem) as error:
                lines += lines_applied_before(error)
                raise
        after = inspect_message_id_field(conn, api_name)
        _confirm_in_describe(conn, after, case_sensitive=case_sensitive)
    except (SalesforceError, SalesforceProblem) as error:
        if not lines:
            raise
        raise _create_unfinished(api_name, error, created=not before.exists, lines=lines) from error
    return FieldCreation(after, not before.exists, definition_lines, lines[len(definition_lines):])


def _create_unfinished(
    api_name: str, error: SalesforceError | SalesforceProblem, *, created: bool, lines: list[str]
) -> ChangedThenFailed:
    """Explain a grant or check that failed after the create changed the org, with the lines to record."""
    problem = error if isinstance(error, SalesforceProblem) else explain(error)
    summary = f"{'Created' if created else 'Granted access to'} Activity.{api_name}"
    code = FIELD_CREATED_UNFINISHED if created else problem.error_code
    sentence = problem.sentence
    # A check in describe names the field already; any other failure is put after what changed.
    if problem.error_code != FIELD_NOT_CONFIRMED:
        done = "was created" if created else "exists"
        sentence = (f"Activity.{api_name} {done}, but granting Read and Edit on it or checking it "
                    f"failed: {sentence}")
    return ChangedThenFailed(problem, sentence, summary=summary, lines=lines, error_code=code)


def grant_change_lines(grant: GrantPlan) -> list[str]:
    """Return the grant's additions, removals and changes as diff lines, without its notes."""
    return [line for line in grant.diff_lines() if line.startswith(("+ ", "- ", "~ "))]


def _grant_blocked(api_name: str, grant: GrantPlan) -> SalesforceProblem:
    return SalesforceProblem(
        ProblemKind.FIXABLE,
        " ".join(grant.blocked),
        f"grant of Read and Edit on {api_name}, not applied: {grant}",
        error_code=ACCESS_BLOCKED,
    )


def _creation_lines(api_name: str, case_sensitive: bool, label: str) -> list[str]:
    return [
        f"+ Custom field Activity.{api_name}",
        f"+     Label: {label}",
        f"+     Type: Text({KEY_LENGTH})",
        f"+     Unique: yes, {_case_rule(case_sensitive)}",
        "+     External ID: yes",
    ]


def _post_custom_field(
    conn: OrgConnection, api_name: str, case_sensitive: bool, label: str, description: str
) -> None:
    metadata = {
        "label": label,
        "type": "Text",
        "length": KEY_LENGTH,
        "unique": True,
        "externalId": True,
        "caseSensitive": case_sensitive,
        "required": False,
        "description": description,
    }
    conn.request(
        "POST",
        "tooling/sobjects/CustomField",
        json={"FullName": f"Activity.{api_name}", "Metadata": metadata},
    )
    logger.info(
        "Created Activity.%s (Text(%d), Unique, External ID, case-%s)",
        api_name,
        KEY_LENGTH,
        "sensitive" if case_sensitive else "insensitive",
    )


def _check_existing_definition(state: FieldState, *, case_sensitive: bool) -> None:
    expected = {
        "type": "Text",
        "length": KEY_LENGTH,
        "unique": True,
        "external_id": True,
        "case_sensitive": case_sensitive,
    }
    different = [
        f"{name} is {getattr(state, name)!r}"
        for name, value in expected.items()
        if getattr(state, name) is not None and getattr(state, name) != value
    ]
    if different:
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"Activity.{state.api_name} already exists with other settings "
            f"({'; '.join(different)}); change it in Setup or choose another field name.",
            f"existing definition: {state}",
            error_code="FIELD_EXISTS",
        )


def _describe_mismatches(described: dict[str, Any], expected: dict[str, object]) -> list[str]:
    return [
        f"describe shows {name} = {described.get(name)!r}, expected {value!r}."
        for name, value in expected.items()
        if described.get(name) != value
    ]


def _confirm_in_describe(
    conn: OrgConnection, state: FieldState, *, case_sensitive: bool
) -> None:
    unexpected = list(state.problems)
    described = _describe_field(conn, state.api_name) if state.visible_in_describe else None
    if described is not None:
        expected = {
            "type": "string",
            "length": KEY_LENGTH,
            "unique": True,
            "externalId": True,
            "caseSensitive": case_sensitive,
        }
        unexpected.extend(_describe_mismatches(described, expected))
    if unexpected:
        raise SalesforceProblem(
            ProblemKind.REFUSED,
            f"Activity.{state.api_name} was created, but describe for {conn.username} does not "
            f"show it as expected: {' '.join(unexpected)}",
            f"field state after creation: {state}",
            error_code=FIELD_NOT_CONFIRMED,
        )


# -- fixing an existing field ---------------------------------------------------------

# Types whose values are text already, so a change to Text is expected to keep them.
# A change from any other type may lose values, and the plan warns before it is applied.
_TEXT_LIKE_TYPES = ("Text", "TextArea", "LongTextArea", "Html", "Email", "Url", "Phone", "Picklist")
# Attributes of other field types that a Text field does not take.
_NON_TEXT_ATTRIBUTES = ("precision", "scale", "visibleLines", "defaultValue", "displayFormat",
                        "formula", "formulaTreatBlanksAs", "picklist", "valueSet", "maskChar",
                        "maskType")
# Types that may hold values longer than a Text field takes; SOQL cannot filter on them either.
_LONG_TEXT_TYPES = ("LongTextArea", "Html")


@dataclass
class FieldFixPlan:
    """The changes a fix makes to an existing field's definition, shown to the admin before they are sent.

    ``metadata`` is the whole Metadata value sent in the Tooling PATCH; ``lines``
    are its differences from the field as inspected, in the form of the
    confirmation dialog ("~ Length: 80 -> 255"), followed by those of ``grant``.
    ``blockers`` are the activities whose values keep the field from being made
    Unique. ``long_values`` are the activities whose values are too long for
    Text(255), which blocks the change of type. ``grant`` is the grant of Read and
    Edit to the signed-in user, planned when the user lacks either; applying the
    fix applies exactly that plan.
    """

    api_name: str
    tooling_id: str
    metadata: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blockers: list[UniqueBlocker] = field(default_factory=list)
    long_values: list[KeyedActivity] = field(default_factory=list)
    unique_requested: bool = False
    changes_definition: bool = False
    """True when ``metadata`` differs from the field's, so the fix sends it."""
    grant: GrantPlan | None = None
    unique_before: bool = False
    case_sensitive_before: bool = False
    access_only: bool = False
    """True when the field is hidden from the signed-in user: the plan only grants access,
    because the values cannot be scanned until the user sees the field."""

    @property
    def definition_lines(self) -> list[str]:
        """Return the lines that change the field's definition, without those of the grant."""
        grant_lines = grant_change_lines(self.grant) if self.grant is not None else []
        return [line for line in self.lines if line not in grant_lines]

    @property
    def grant_access(self) -> bool:
        """Tell whether the fix grants the signed-in user Read and Edit on the field."""
        return self.grant is not None and self.grant.has_changes

    @property
    def grant_blocked(self) -> list[str]:
        """Sentences saying why the grant may not reuse the existing permission set."""
        return self.grant.blocked if self.grant is not None else []

    @property
    def summary(self) -> str:
        """Return the line that names the fix in the run's change log."""
        verb = "Changed" if self.changes_definition else "Granted access to"
        return f"{verb} Activity.{self.api_name}"

    @property
    def can_apply(self) -> bool:
        """Tell whether the plan changes something and neither long values, blockers of Unique nor
        a blocked grant stop it."""
        has_changes = bool(self.lines)
        return (has_changes and not (self.unique_requested and self.blockers) and not self.long_values
                and not self.grant_blocked)

    def without_unique(self) -> FieldFixPlan:
        """Return the same fix with Unique and the case rule left as they are, for when values block it."""
        metadata = {**self.metadata, "unique": self.unique_before,
                    "caseSensitive": self.case_sensitive_before}
        lines = [line for line in self.lines if not line.startswith(_UNIQUE_LINE_PREFIXES)]
        changes_definition = any(line.startswith("~") for line in lines)
        return FieldFixPlan(self.api_name, self.tooling_id, metadata, lines, list(self.warnings),
                            [], list(self.long_values), unique_requested=False,
                            changes_definition=changes_definition,
                            grant=self.grant, unique_before=self.unique_before,
                            case_sensitive_before=self.case_sensitive_before)


_UNIQUE_LINE_PREFIXES = ("~ Unique:", "~ Case sensitivity:")


def plan_field_fix(
    conn: OrgConnection,
    state: FieldState,
    *,
    case_sensitive: bool,
    make_unique: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> FieldFixPlan:
    """Plan the changes that make an existing field Text(255), External ID and, if asked, Unique.

    When the plan switches Unique on, or makes a unique field's case rule
    stricter (case-sensitive to case-insensitive), every Task and Event is
    scanned for values that would collide in the unique index, recycle bin and
    archive included. A case-insensitive field made case-sensitive needs no scan,
    because values unique without case stay unique with it. Raises
    SalesforceProblem when the field's definition could not be read, and
    Cancelled when ``cancel`` is set during the scan.
    """
    if not state.exists or state.tooling_id is None or not state.metadata:
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"Activity.{state.api_name} cannot be fixed because its definition could not be read "
            "through the Tooling API; sign in as an admin with View Setup and Configuration.",
            f"field state: {state}",
            error_code="FIELD_NOT_READABLE",
        )
    grant = _plan_grant(conn, state)
    if not state.visible_in_describe:
        # queryAll cannot read a field hidden by field-level security, so the scan and the rest
        # of the plan wait until the grant is applied and the field is inspected again.
        logger.info("Planned access to the hidden field Activity.%s first", state.api_name)
        plan = FieldFixPlan(state.api_name, state.tooling_id, dict(state.metadata), [],
                            access_only=True, unique_before=bool(state.metadata.get("unique")),
                            case_sensitive_before=bool(state.metadata.get("caseSensitive")))
        _add_grant(plan, grant)
        return plan
    metadata, lines, warnings = _fixed_metadata(state, case_sensitive=case_sensitive,
                                                make_unique=make_unique)
    plan = FieldFixPlan(state.api_name, state.tooling_id, metadata, lines, warnings,
                        unique_requested=make_unique, changes_definition=bool(lines),
                        unique_before=bool(state.metadata.get("unique")),
                        case_sensitive_before=bool(state.metadata.get("caseSensitive")))
    _add_grant(plan, grant)
    _scan_values(conn, state, plan, case_sensitive=case_sensitive, progress=progress, cancel=cancel)
    logger.info("Planned %d changes to Activity.%s; %d values block Unique, %d are too long",
                len(plan.lines), state.api_name, len(plan.blockers), len(plan.long_values))
    return plan


def _plan_grant(conn: OrgConnection, state: FieldState) -> GrantPlan | None:
    """Plan Read and Edit for the signed-in user when describe hides the field or it is read-only."""
    if state.visible_in_describe and state.createable and state.updateable:
        return None
    return plan_field_access_grant(conn, conn.user_id, state.api_name)


def _add_grant(plan: FieldFixPlan, grant: GrantPlan | None) -> None:
    """Add the grant's diff lines to the plan, and the sentences of a grant that may not be applied."""
    plan.grant = grant
    if grant is None:
        return
    plan.warnings.extend(grant.blocked)
    if grant.has_changes:
        plan.lines.extend(grant_change_lines(grant))
    elif plan.access_only:
        plan.warnings.append(
            f"{grant.username} is granted Read and Edit on {plan.api_name} through the permission set "
            f"{grant.permission_set_label} already, yet describe hides the field; check its muting "
            "permission sets and profile in Setup.")


def _scan_values(
    conn: OrgConnection, state: FieldState, plan: FieldFixPlan, *, case_sensitive: bool,
    progress: ProgressCallback, cancel: threading.Event | None,
) -> None:
    """Find the values too long for Text(255) and those that block Unique, reading the rows once."""
    long_text = state.type in _LONG_TEXT_TYPES
    scan_unique = plan.unique_requested and _needs_blocker_scan(state, case_sensitive=case_sensitive)
    if not (long_text or scan_unique):
        return
    # SOQL cannot filter a long text area, so its rows are read whole, once for both checks.
    activities = read_keyed_activities(conn, state.api_name, filterable=not long_text,
                                       progress=progress, cancel=cancel)
    if long_text:
        plan.long_values = long_values_among(activities, state.api_name, KEY_LENGTH)
    if scan_unique:
        # Values are compared as Text(255) stores them, so long values that start alike collide.
        plan.blockers = unique_blockers_among(activities, state.api_name, case_sensitive=case_sensitive,
                                              cut_to=KEY_LENGTH)


def _values_phrase(count: int, verb: str, verb_plural: str) -> str:
    """Return "1 value blocks" or "3 values block"."""
    return f"{count} value {verb}" if count == 1 else f"{count} values {verb_plural}"


def _needs_blocker_scan(state: FieldState, *, case_sensitive: bool) -> bool:
    if not state.unique:
        return True
    return bool(state.case_sensitive) and not case_sensitive


def _fixed_metadata(
    state: FieldState, *, case_sensitive: bool, make_unique: bool
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Return the whole Metadata of the fixed field, the diff lines and the warnings."""
    metadata = dict(state.metadata)
    lines: list[str] = []
    warnings: list[str] = []
    old_type = str(metadata.get("type") or "")
    if old_type != "Text":
        for name in _NON_TEXT_ATTRIBUTES:
            metadata.pop(name, None)
        metadata["type"] = "Text"
        lines.append(f"~ Type: {old_type or 'unknown'} -> Text({KEY_LENGTH})")
        warnings.append(_type_change_warning(state.api_name, old_type))
    old_length = metadata.get("length") if old_type == "Text" else None
    if old_length != KEY_LENGTH:
        metadata["length"] = KEY_LENGTH
        if old_type == "Text":
            lines.append(f"~ Length: {old_length} -> {KEY_LENGTH}")
    if not metadata.get("externalId"):
        metadata["externalId"] = True
        lines.append("~ External ID: no -> yes")
    old_rule = _case_rule(bool(metadata.get("caseSensitive")))
    new_rule = _case_rule(case_sensitive)
    if make_unique and not metadata.get("unique"):
        lines.append(f"~ Unique: no -> yes ({new_rule})")
        metadata["unique"] = True
        metadata["caseSensitive"] = case_sensitive
    elif make_unique and bool(metadata.get("caseSensitive")) != case_sensitive:
        lines.append(f"~ Case sensitivity: {old_rule} -> {new_rule}")
        metadata["caseSensitive"] = case_sensitive
    return metadata, lines, warnings


def _case_rule(case_sensitive: bool) -> str:
    return "case-sensitive" if case_sensitive else "case-insensitive"


def _type_change_warning(api_name: str, old_type: str) -> str:
    if old_type == "Number":
        return (f"{api_name} is a Number field: Salesforce converts its numbers to text, and "
                "no number is a Message-ID, so find out which tool wrote them.")
    if old_type in ("TextArea", "LongTextArea", "Html"):
        return (f"{api_name} is a {old_type} field: a value longer than {KEY_LENGTH} characters "
                "does not fit a Text field, so Salesforce may refuse the change or cut the value.")
    if old_type in _TEXT_LIKE_TYPES:
        return f"{api_name} is a {old_type} field: its values stay as they are, now as plain text."
    return (f"{api_name} is a {old_type or 'field of unknown type'}: Salesforce clears or refuses "
            "values it cannot turn into text, so consider creating a new field instead.")


def apply_field_fix(conn: OrgConnection, plan: FieldFixPlan) -> FieldState:
    """Send the planned Metadata, apply the planned grant, and confirm the result in describe.

    The Tooling API's CustomField takes PATCH, and its Metadata is one updateable
    value (Tooling API Reference, "CustomField"), so the whole Metadata read at
    inspection goes back with the changes: label, description and the other
    attributes stay as they were. The grant applied is exactly ``plan.grant``, as
    shown. Raises SalesforceProblem with Salesforce's reason when the change is
    refused or the grant may not be applied, both before anything changes, and
    ChangedThenFailed when the grant or the check in describe fails after a change.
    """
    _raise_if_blocked(plan)
    if plan.changes_definition:
        _patch_definition(conn, plan)
    if plan.grant is not None and plan.grant_access:
        try:
            apply_access_grant(conn, plan.grant)
        except (SalesforceError, SalesforceProblem) as error:
            if not (plan.changes_definition or lines_applied_before(error)):
                raise
            raise _grant_failed(plan, error) from error
    try:
        after = inspect_message_id_field(conn, plan.api_name)
        _confirm_fix(conn, plan, after)
    except (SalesforceError, SalesforceProblem) as error:
        raise _not_confirmed(plan, error) from error
    return after


def _raise_if_blocked(plan: FieldFixPlan) -> None:
    """Raise SalesforceProblem when values or the grant's permission set stop the fix."""
    if plan.long_values:
        count = len(plan.long_values)
        too_long = (f"1 value of {plan.api_name} is" if count == 1
                    else f"{count} values of {plan.api_name} are")
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"{too_long} longer than {KEY_LENGTH} characters and would not fit Text({KEY_LENGTH}); "
            "shorten or clear them, then run the scan again.",
            error_code="VALUES_TOO_LONG",
        )
    if plan.unique_requested and plan.blockers:
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"{_values_phrase(len(plan.blockers), 'still blocks', 'still block')} Unique on "
            f"{plan.api_name}; clear or delete the copies, then run the scan again.",
            error_code="UNIQUE_BLOCKED",
        )
    if plan.grant is not None and plan.grant.blocked:
        raise _grant_blocked(plan.api_name, plan.grant)


def _grant_failed(plan: FieldFixPlan, error: SalesforceError | SalesforceProblem) -> ChangedThenFailed:
    """Explain a grant that failed after the definition was changed, with the change to record."""
    problem = error if isinstance(error, SalesforceProblem) else explain(error)
    sentence = (f"Activity.{plan.api_name} was changed, but Read and Edit on it was not granted: "
                if plan.changes_definition else f"Read and Edit on Activity.{plan.api_name} was granted "
                "only in part: ")
    return ChangedThenFailed(
        problem,
        sentence + problem.sentence,
        summary=plan.summary,
        lines=[*plan.definition_lines, *lines_applied_before(error)],
        error_code=ACCESS_NOT_GRANTED,
    )


def _not_confirmed(plan: FieldFixPlan, error: SalesforceError | SalesforceProblem) -> ChangedThenFailed:
    """Explain a check that failed after every change of the plan was made, with the changes to record."""
    problem = error if isinstance(error, SalesforceProblem) else explain(error)
    sentence = problem.sentence
    if problem.error_code != FIELD_NOT_CONFIRMED:
        sentence = f"Activity.{plan.api_name} was changed, but checking it afterwards failed: {sentence}"
    return ChangedThenFailed(problem, sentence, summary=plan.summary, lines=plan.lines,
                             error_code=FIELD_NOT_CONFIRMED)


def _patch_definition(conn: OrgConnection, plan: FieldFixPlan) -> None:
    try:
        conn.request("PATCH", f"tooling/sobjects/CustomField/{plan.tooling_id}",
                     json={"FullName": f"Activity.{plan.api_name}", "Metadata": plan.metadata})
    except SalesforceError as error:
        raise _fix_refused(plan, error) from error
    logger.info("Changed Activity.%s: %s", plan.api_name, "; ".join(plan.lines))


def _fix_refused(plan: FieldFixPlan, error: SalesforceError) -> SalesforceProblem:
    problem = explain(error)
    codes = {str(item.get("errorCode")) for item in _error_items(error)}
    if "DUPLICATE_VALUE" in codes:
        return SalesforceProblem(
            ProblemKind.FIXABLE,
            f"Salesforce did not make {plan.api_name} Unique because values still block Unique "
            "(some were written after the scan): run the scan again.",
            problem.details,
            error_code="DUPLICATE_VALUE",
            status=problem.status,
        )
    return SalesforceProblem(
        problem.kind,
        f"Salesforce refused the change to Activity.{plan.api_name}: {problem.sentence}",
        problem.details,
        error_code=problem.error_code,
        status=problem.status,
    )


def _error_items(error: SalesforceError) -> list[dict[str, Any]]:
    content = error.content
    if isinstance(content, list):
        return [item for item in content if isinstance(item, dict)]
    return [content] if isinstance(content, dict) else []


def _confirm_fix(conn: OrgConnection, plan: FieldFixPlan, after: FieldState) -> None:
    described = _describe_field(conn, plan.api_name) if after.visible_in_describe else None
    expected: dict[str, object] = {"type": "string", "length": KEY_LENGTH, "externalId": True}
    if plan.access_only:
        expected = {"createable": True, "updateable": True}
    elif plan.metadata.get("unique"):
        expected["unique"] = True
        expected["caseSensitive"] = bool(plan.metadata.get("caseSensitive"))
    if described is None:
        unexpected = [f"describe does not show {plan.api_name} to {conn.username}."]
    else:
        unexpected = _describe_mismatches(described, expected)
    if unexpected:
        raise SalesforceProblem(
            ProblemKind.REFUSED,
            f"Activity.{plan.api_name} was changed, but describe for {conn.username} does not "
            f"show it as expected: {' '.join(unexpected)}",
            f"field state after the change: {after}",
            error_code=FIELD_NOT_CONFIRMED,
        )


# -- room left on Activity ------------------------------------------------------------

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
        room.hidden_fields = sum(1 for row in rows if _row_api_name(row).lower() not in visible)
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


def _row_api_name(row: dict[str, Any]) -> str:
    prefix = f"{row['NamespacePrefix']}__" if row.get("NamespacePrefix") else ""
    return f"{prefix}{row.get('DeveloperName')}__c"


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
