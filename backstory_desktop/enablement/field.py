"""The Message-ID field step: inspect the key field, the Backstory flag and the room left on Activity.

The step also creates the key field when it is missing, or fixes an existing one.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.enablement.run import (
    EnablementRun,
    failed_result,
    record_change,
    record_result,
    require_field,
)
from backstory_desktop.salesforce.errors import SalesforceProblem, explain
from backstory_desktop.salesforce.field_fix import FieldFixPlan
from backstory_desktop.salesforce.field_fix import apply_field_fix as apply_schema_fix
from backstory_desktop.salesforce.field_fix import plan_field_fix as plan_schema_fix
from backstory_desktop.salesforce.field_room import FieldRoom, custom_field_room
from backstory_desktop.salesforce.schema import (
    KEY_LENGTH,
    ChangedThenFailed,
    FieldState,
    create_message_id_field,
    inspect_flag_field,
    inspect_message_id_field,
)
from backstory_desktop.store.settings import save_profile

log = logging.getLogger(__name__)

# HTTP statuses from here up are failures of the server or a gateway in front of it, not of the request.
HTTP_SERVER_ERROR = 500

# Consequences of a key field that is not Unique, for the step's details and the summary.
NOT_UNIQUE_CONSEQUENCES = (
    "The integration user needs View All Data, because Salesforce allows upserts on an External ID "
    "field that is not Unique only to users with that permission.",
    "Tasks that already share a key cannot be updated through upsert by anyone: Salesforce answers "
    "300 Multiple Choices and writes nothing.",
    "Cadence tools' upserts on a shared key fail the same way, so their e-mails are not logged on "
    "the existing Task.",
    "Nothing stops new duplicates: two tools that log the same e-mail at the same moment both "
    "create a Task.",
)


def check_field(run: EnablementRun) -> StepResult:
    """Inspect the Message-ID field, the Backstory flag field and the room left on Activity."""
    connection = run.require_connection()
    try:
        run.field_state = inspect_message_id_field(connection, run.profile.field_api_name)
        run.flag_state = inspect_flag_field(connection, run.profile.flag_field_api_name)
    except Exception as error:
        return record_result(run, _unchecked_result(run, error))
    room = _read_room(run)
    result = _with_room(_field_result(run.field_state), run.field_state, room)
    result = _with_org_spelling(run, result)
    return record_result(run, _with_flag_note(result, run.flag_state))


def _unchecked_result(run: EnablementRun, error: Exception) -> StepResult:
    """Return the step's failed result when the fields could not be read, saying whether to try again.

    A gateway error (502, 504), an outage (5xx) or a lost connection shows nothing about the
    field, so the reason states that Salesforce did not answer rather than that the field is unusable.
    """
    result = failed_result(Step.MESSAGE_ID_FIELD, error)
    problem = error if isinstance(error, SalesforceProblem) else explain(error)
    lost = isinstance(error, requests.RequestException) and not isinstance(
        error, requests.exceptions.SSLError)
    transient = lost or (problem.status is not None and problem.status >= HTTP_SERVER_ERROR)
    if not transient:
        return result
    answer = f" (HTTP {problem.status})" if problem.status is not None else ""
    reason = (f"Salesforce did not answer{answer} when the app read the field {run.profile.field_api_name}, "
              "so nothing is known about it yet: try again in a few minutes.")
    return StepResult(result.step, result.status, reason, {**result.details, "transient": True})


def _with_org_spelling(run: EnablementRun, result: StepResult) -> StepResult:
    """Use the org's spelling of a field name typed in another letter case, and report it.

    Salesforce finds fields by name without letter case, but field permissions name
    the field exactly, so every later step uses the org's spelling.
    """
    state = require_field(run)
    typed = run.profile.field_api_name
    if state.api_name == typed:
        return result
    run.profile.field_api_name = state.api_name
    reason = f"The org spells it {state.api_name}, not {typed}, so the checks use {state.api_name}. "
    return StepResult(result.step, result.status, reason + result.reason,
                      {**result.details, "typed_name": typed})


def _read_room(run: EnablementRun) -> FieldRoom:
    connection = run.require_connection()
    try:
        return custom_field_room(connection)
    except SalesforceError as error:
        reason = explain(error).sentence
        log.info("Room on Activity could not be read: %s", reason)
        return FieldRoom(notes=[f"The room left on Activity could not be read: {reason}"])


def _with_room(result: StepResult, state: FieldState, room: FieldRoom) -> StepResult:
    details = {**result.details, "room": room_details(room)}
    reason = result.reason
    # Room matters while the field is still to be created or made External ID.
    if room.warnings and not (state.exists and state.external_id):
        reason += " " + " ".join(room.warnings)
    return StepResult(result.step, result.status, reason, details)


def room_details(room: FieldRoom) -> dict[str, Any]:
    """Return the room left on Activity as the step's details and the reports show it."""
    return {
        "custom_fields": room.custom_fields,
        "custom_fields_left": room.custom_fields_left,
        "custom_field_limit": room.custom_field_limit,
        "packaged_fields": room.packaged_fields,
        "external_ids": room.external_ids,
        "external_ids_left": room.external_ids_left,
        "hidden_fields": room.hidden_fields,
        "external_id_limit": room.external_id_limit,
        "notes": list(room.notes),
        "warnings": list(room.warnings),
    }


def _with_flag_note(result: StepResult, flag_state: FieldState) -> StepResult:
    """Say whether the sync can set the "Created by Backstory" flag; its absence fails nothing."""
    details = {
        **result.details,
        "flag_field": flag_state.api_name,
        "flag_exists": flag_state.exists,
        "flag_type": flag_state.type,
        "flag_visible_in_describe": flag_state.visible_in_describe,
        "flag_problems": list(flag_state.problems),
    }
    reason = result.reason
    if flag_state.problems:
        reason += (
            f" The 'Created by Backstory' flag {flag_state.api_name} cannot be set, so the sync "
            f"leaves it out: {' '.join(flag_state.problems)}"
        )
    return StepResult(result.step, result.status, reason, details)


def _field_result(state: FieldState) -> StepResult:
    details: dict[str, Any] = {
        "field": state.api_name,
        "exists": state.exists,
        "label": state.label,
        "description": state.description,
        "type": state.type,
        "length": state.length,
        "unique": state.unique,
        "external_id": state.external_id,
        "case_sensitive": state.case_sensitive,
        "visible_in_describe": state.visible_in_describe,
        "createable": state.createable,
        "updateable": state.updateable,
        "problems": list(state.problems),
    }
    if state.exists and state.unique is False:
        details["not_unique_consequences"] = list(NOT_UNIQUE_CONSEQUENCES)
    if state.problems:
        reason = " ".join(state.problems)
        details["usable"] = _usable_without_unique(state)
        if details["usable"]:
            reason += (
                " You can go on: the Conflicts step lists the Tasks that share a key, which must be "
                "cleared before the field can be made Unique."
            )
        return StepResult(Step.MESSAGE_ID_FIELD, StepStatus.FAILED, reason, details)
    case_rule = "case-sensitive" if state.case_sensitive else "case-insensitive"
    reason = f"Activity.{state.api_name} is Text({state.length}), Unique ({case_rule}) and External ID."
    return StepResult(Step.MESSAGE_ID_FIELD, StepStatus.PASSED, reason, details)


def _usable_without_unique(state: FieldState) -> bool:
    """Tell whether upserts work on the field, whose only fault is not being Unique."""
    return bool(
        state.exists
        and state.visible_in_describe
        and state.createable
        and state.updateable
        and state.external_id
        and state.type == "Text"
        and (state.length or 0) >= KEY_LENGTH
    )


def create_field(run: EnablementRun, *, case_sensitive: bool) -> StepResult:
    """Create the Message-ID field on Activity, then confirm it in describe.

    Every change made is recorded in the run's change log, also when a later part fails.
    """
    connection = run.require_connection()
    try:
        creation = create_message_id_field(
            connection, run.profile.field_api_name, case_sensitive=case_sensitive
        )
    except ChangedThenFailed as error:
        record_change(run, Step.MESSAGE_ID_FIELD, error.summary, error.lines)
        return record_result(run, failed_result(Step.MESSAGE_ID_FIELD, error))
    except Exception as error:
        return record_result(run, failed_result(Step.MESSAGE_ID_FIELD, error))
    run.field_state = creation.state
    if creation.lines:
        record_change(run, Step.MESSAGE_ID_FIELD, creation.summary, creation.lines)
    # The new field takes room on Activity, so the room is read again.
    result = _with_room(_field_result(run.field_state), run.field_state, _read_room(run))
    if result.status is StepStatus.PASSED:
        done = "Created the field." if creation.created else "Finished the setup of the existing field."
        reason = f"{done} {result.reason}"
        if creation.grant_lines:
            reason += f" For describe to show it: {' '.join(line[2:] for line in creation.grant_lines)}"
        details = {**result.details, "created": creation.created, "changed": list(creation.lines)}
        result = StepResult(result.step, result.status, reason, details)
    return record_result(run, _with_org_spelling(run, result))


def plan_field_fix(
    run: EnablementRun,
    *,
    case_sensitive: bool,
    make_unique: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> FieldFixPlan:
    """Plan the fix of the inspected field, scanning for values that block Unique when needed.

    A plan that makes the field External ID also warns when Activity has no
    External ID field left. Raises SalesforceProblem when the field cannot be
    fixed, and Cancelled when ``cancel`` is set.
    """
    connection = run.require_connection()
    state = require_field(run)
    plan = plan_schema_fix(connection, state, case_sensitive=case_sensitive,
                           make_unique=make_unique, progress=progress, cancel=cancel)
    if not state.external_id:
        room = _read_room(run)
        if room.external_ids_left == 0:
            plan.warnings.append(
                f"Activity has no External ID field left of {room.external_id_limit}; Salesforce "
                "will refuse the change until one is freed or Support raises the limit.")
    return plan


def apply_field_fix(run: EnablementRun, plan: FieldFixPlan) -> StepResult:
    """Apply a confirmed fix, record it in the run's change log, and check the field again."""
    connection = run.require_connection()
    try:
        run.field_state = apply_schema_fix(connection, plan)
    except ChangedThenFailed as error:
        # Part of the fix reached the org before the failure: record what changed.
        if error.lines:
            record_change(run, Step.MESSAGE_ID_FIELD, error.summary, error.lines)
        return record_result(run, failed_result(Step.MESSAGE_ID_FIELD, error))
    except Exception as error:
        return record_result(run, failed_result(Step.MESSAGE_ID_FIELD, error))
    record_change(run, Step.MESSAGE_ID_FIELD, plan.summary, plan.lines)
    result = check_field(run)
    changes = "; ".join(line[2:].rstrip(".") for line in plan.lines)
    reason = f"{plan.summary}: {changes}. {result.reason}"
    return record_result(run, StepResult(result.step, result.status, reason,
                                         {**result.details, "changed": list(plan.lines)}))


def set_flag_field(run: EnablementRun, api_name: str, *, profiles_file: Path | None = None) -> str:
    """Save the name of the "Created by Backstory" flag field in the org profile; return it.

    Raises InvalidFieldName for a name that breaks Salesforce's rules, and
    OSError or ProfilesFileError when the profile cannot be saved.
    """
    name = validate_field_api_name(api_name, allow_namespace=True)
    if name == run.profile.flag_field_api_name:
        return name
    run.profile.flag_field_api_name = name
    run.flag_state = None
    save_profile(run.profile, profiles_file)
    log.info("Flag field of %s set to %s", run.profile.alias, name)
    return name

