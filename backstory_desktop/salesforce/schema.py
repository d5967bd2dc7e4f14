"""Inspect and create the Activity custom fields: the Message-ID key and the Backstory flag.

A custom field for Tasks and Events is defined once on Activity
(``Activity.Message_ID__c``) and read as ``Task.Message_ID__c``. The Tooling API
shows how the field is defined. The Task describe shows whether the signed-in
user can see and write it, because describe leaves out fields hidden by
field-level security.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from backstory_desktop.core.fields import parse_field_api_name, validate_field_api_name
from backstory_desktop.salesforce.access_grants import (
    GrantPlan,
    apply_access_grant,
    lines_applied_before,
    plan_field_access_grant,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain

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


def describe_field(conn: OrgConnection, api_name: str) -> dict[str, Any] | None:
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
        return row_api_name(definition)
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

    described = describe_field(conn, api_name)
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
        raise grant_blocked_problem(api_name, grant)
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


def grant_blocked_problem(api_name: str, grant: GrantPlan) -> SalesforceProblem:
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
        f"+     Unique: yes, {case_rule(case_sensitive)}",
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


def describe_mismatches(described: dict[str, Any], expected: dict[str, object]) -> list[str]:
    return [
        f"describe shows {name} = {described.get(name)!r}, expected {value!r}."
        for name, value in expected.items()
        if described.get(name) != value
    ]


def _confirm_in_describe(
    conn: OrgConnection, state: FieldState, *, case_sensitive: bool
) -> None:
    unexpected = list(state.problems)
    described = describe_field(conn, state.api_name) if state.visible_in_describe else None
    if described is not None:
        expected = {
            "type": "string",
            "length": KEY_LENGTH,
            "unique": True,
            "externalId": True,
            "caseSensitive": case_sensitive,
        }
        unexpected.extend(describe_mismatches(described, expected))
    if unexpected:
        raise SalesforceProblem(
            ProblemKind.REFUSED,
            f"Activity.{state.api_name} was created, but describe for {conn.username} does not "
            f"show it as expected: {' '.join(unexpected)}",
            f"field state after creation: {state}",
            error_code=FIELD_NOT_CONFIRMED,
        )


def case_rule(case_sensitive: bool) -> str:
    return "case-sensitive" if case_sensitive else "case-insensitive"


def row_api_name(row: dict[str, Any]) -> str:
    prefix = f"{row['NamespacePrefix']}__" if row.get("NamespacePrefix") else ""
    return f"{prefix}{row.get('DeveloperName')}__c"
