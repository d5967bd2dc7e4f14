"""Fix an existing Activity custom field so it can serve as the Message-ID key.

The fix is planned first, shown as diff lines, then sent as one Tooling API
PATCH of the CustomField with its whole Metadata, and confirmed in describe.
Before Unique is switched on, every Task and Event (recycle bin and archive
included) is scanned for values that would block it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.salesforce.access_grants import (
    GrantPlan,
    apply_access_grant,
    lines_applied_before,
    plan_field_access_grant,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain
from backstory_desktop.salesforce.schema import (
    ACCESS_NOT_GRANTED,
    FIELD_NOT_CONFIRMED,
    KEY_LENGTH,
    ChangedThenFailed,
    FieldState,
    case_rule,
    describe_field,
    describe_mismatches,
    grant_blocked_problem,
    grant_change_lines,
    inspect_message_id_field,
)
from backstory_desktop.salesforce.unique_blockers import (
    KeyedActivity,
    UniqueBlocker,
    long_values_among,
    read_keyed_activities,
    unique_blockers_among,
)

logger = logging.getLogger(__name__)


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
    """Return "1 value blocks" or "3,000 values block"."""
    return f"{count:,} value {verb}" if count == 1 else f"{count:,} values {verb_plural}"


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
    old_rule = case_rule(bool(metadata.get("caseSensitive")))
    new_rule = case_rule(case_sensitive)
    if make_unique and not metadata.get("unique"):
        lines.append(f"~ Unique: no -> yes ({new_rule})")
        metadata["unique"] = True
        metadata["caseSensitive"] = case_sensitive
    elif make_unique and bool(metadata.get("caseSensitive")) != case_sensitive:
        lines.append(f"~ Case sensitivity: {old_rule} -> {new_rule}")
        metadata["caseSensitive"] = case_sensitive
    return metadata, lines, warnings


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
        # The Conflicts page resolves Tasks only, so Events that share a value are named apart.
        events = any(record.sobject != "Task" for blocker in plan.blockers for record in blocker.records)
        them = "it" if len(plan.blockers) == 1 else "them"
        where = f"resolve the Tasks that share {them} on the Conflicts page"
        if events:
            where += " and clear or delete the Events"
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"{_values_phrase(len(plan.blockers), 'still blocks', 'still block')} Unique on "
            f"{plan.api_name}; {where}, then run the scan again.",
            error_code="UNIQUE_BLOCKED",
        )
    if plan.grant is not None and plan.grant.blocked:
        raise grant_blocked_problem(plan.api_name, plan.grant)


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
    described = describe_field(conn, plan.api_name) if after.visible_in_describe else None
    expected: dict[str, object] = {"type": "string", "length": KEY_LENGTH, "externalId": True}
    if plan.access_only:
        expected = {"createable": True, "updateable": True}
    elif plan.metadata.get("unique"):
        expected["unique"] = True
        expected["caseSensitive"] = bool(plan.metadata.get("caseSensitive"))
    if described is None:
        unexpected = [f"describe does not show {plan.api_name} to {conn.username}."]
    else:
        unexpected = describe_mismatches(described, expected)
    if unexpected:
        raise SalesforceProblem(
            ProblemKind.REFUSED,
            f"Activity.{plan.api_name} was changed, but describe for {conn.username} does not "
            f"show it as expected: {' '.join(unexpected)}",
            f"field state after the change: {after}",
            error_code=FIELD_NOT_CONFIRMED,
        )
