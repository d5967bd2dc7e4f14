"""The Message-ID field step: inspect the key field and the Backstory flag, create or fix the key field."""

from __future__ import annotations

import logging

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, failed_result, record_result
from backstory_desktop.salesforce.access import PERMISSION_SET_LABEL
from backstory_desktop.salesforce.schema import (
    KEY_LENGTH,
    FieldState,
    create_message_id_field,
    inspect_flag_field,
    inspect_message_id_field,
)

log = logging.getLogger(__name__)


def check_field(run: EnablementRun) -> StepResult:
    """Inspect the Message-ID field and the Backstory flag field."""
    connection = run.require_connection()
    try:
        run.field_state = inspect_message_id_field(connection, run.profile.field_api_name)
        run.flag_state = inspect_flag_field(connection, run.profile.flag_field_api_name)
    except Exception as error:
        return record_result(run, failed_result(Step.MESSAGE_ID_FIELD, error))
    return record_result(run, _with_flag_note(_field_result(run.field_state), run.flag_state))


def _with_flag_note(result: StepResult, flag_state: FieldState) -> StepResult:
    """Say whether the sync can set the "Created by Backstory" flag; its absence fails nothing."""
    details = {
        **result.details,
        "flag_field": flag_state.api_name,
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
    details = {
        "field": state.api_name,
        "exists": state.exists,
        "type": state.type,
        "length": state.length,
        "unique": state.unique,
        "external_id": state.external_id,
        "case_sensitive": state.case_sensitive,
        "visible_in_describe": state.visible_in_describe,
        "problems": list(state.problems),
    }
    if state.problems:
        reason = " ".join(state.problems)
        details["usable"] = _usable_without_unique(state)
        if details["usable"]:
            reason += (
                " You can go on: the Conflicts step lists the Tasks that share a key, which must be "
                "resolved before the field can be made Unique in Setup."
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
    """Create the Message-ID field on Activity, then confirm it in describe."""
    connection = run.require_connection()
    existed = run.field_state is not None and run.field_state.exists
    try:
        run.field_state = create_message_id_field(
            connection, run.profile.field_api_name, case_sensitive=case_sensitive
        )
    except Exception as error:
        return record_result(run, failed_result(Step.MESSAGE_ID_FIELD, error))
    result = _field_result(run.field_state)
    if result.status is StepStatus.PASSED:
        api_name = run.field_state.api_name
        granted = (
            f"Read and Edit on Task.{api_name} and Event.{api_name} for {connection.username} "
            f"through the permission set {PERMISSION_SET_LABEL}"
        )
        done = "Finished the setup of the existing field." if existed else "Created the field."
        reason = f"{done} {result.reason} Granted {granted}, so describe shows it."
        details = {**result.details, "created": not existed, "granted": granted}
        result = StepResult(result.step, result.status, reason, details)
    return record_result(run, result)
