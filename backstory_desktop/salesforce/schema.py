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
from backstory_desktop.salesforce.access import apply_field_access_grant
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain

logger = logging.getLogger(__name__)

KEY_LENGTH = 255
DEFAULT_LABEL = "Message ID"
DEFAULT_DESCRIPTION = (
    "RFC 5322 Message-ID of the email this activity logs. Backstory and cadence tools "
    "upsert Tasks by this key so that one email becomes one Task."
)


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
    description: str | None = None
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
        state.description = metadata.get("description")

    described = _describe_field(conn, api_name)
    if described is not None:
        state.visible_in_describe = True
        state.exists = True
        state.createable = bool(described.get("createable"))
        state.updateable = bool(described.get("updateable"))
        if definition is None or not definition.get("Metadata"):
            state.type = "Text" if described.get("type") == "string" else described.get("type")
            state.length = described.get("length")
            state.unique = described.get("unique")
            state.external_id = described.get("externalId")
            state.case_sensitive = described.get("caseSensitive")
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
) -> FieldState:
    """Create the field on Activity, grant the signed-in user access, and confirm in describe.

    The field is Text(255), Unique and External ID, with ``case_sensitive``
    sent explicitly because Salesforce otherwise makes uniqueness case-insensitive.
    A field that already exists with these settings is not created again, so a
    run that stopped after the create can be repeated. Access goes through the
    "Backstory Message ID Access" permission set, because a field created
    through the API has no field-level security for anyone. Raises
    SalesforceProblem when the field exists with other settings or when describe
    does not show the expected field afterwards.
    """
    api_name = validate_field_api_name(api_name)
    before = _inspect(conn, api_name, allow_namespace=False)
    if before.exists:
        _check_existing_definition(before, case_sensitive=case_sensitive)
    else:
        _post_custom_field(conn, api_name, case_sensitive, label, description)

    apply_field_access_grant(conn, conn.user_id, api_name)
    after = inspect_message_id_field(conn, api_name)
    _confirm_in_describe(conn, after, case_sensitive=case_sensitive)
    return after


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
        unexpected.extend(
            f"describe shows {name} = {described.get(name)!r}, expected {value!r}."
            for name, value in expected.items()
            if described.get(name) != value
        )
    if unexpected:
        raise SalesforceProblem(
            ProblemKind.REFUSED,
            f"Activity.{state.api_name} was created, but describe for {conn.username} does not "
            f"show it as expected: {' '.join(unexpected)}",
            f"field state after creation: {state}",
            error_code="FIELD_NOT_CONFIRMED",
        )
