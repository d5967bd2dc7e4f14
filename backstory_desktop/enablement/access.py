"""The integration user step: effective access to the key field and Tasks, and the permission set fix."""

from __future__ import annotations

import logging

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, failed_result, record_result, require_field
from backstory_desktop.salesforce.access import (
    AccessReport,
    GrantPlan,
    apply_field_access_grant,
    effective_access,
    plan_field_access_grant,
)
from backstory_desktop.salesforce.tasks import find_user_by_username

log = logging.getLogger(__name__)


def check_integration_user(run: EnablementRun, username: str) -> StepResult:
    """Work out the integration user's effective access to the field and the Tasks it writes."""
    connection = run.require_connection()
    field_state = require_field(run)
    try:
        user_id = find_user_by_username(connection, username).id
        run.access = effective_access(
            connection, user_id, field_state.api_name, field_unique=bool(field_state.unique)
        )
    except Exception as error:
        return record_result(run, failed_result(Step.INTEGRATION_USER, error))
    run.profile.integration_username = username
    return record_result(run, _access_result(run.access))


def _access_result(report: AccessReport) -> StepResult:
    lines = [
        {
            "name": line.name,
            "granted": line.granted,
            "required": line.required,
            "sources": list(line.sources),
            "note": line.note,
        }
        for line in report.lines
    ]
    details = {"user": report.username, "profile": report.profile, "lines": lines}
    missing = [line.name for line in report.lines if line.required and not line.granted]
    if missing:
        reason = f"{report.username} lacks: " + ", ".join(missing) + "."
        return StepResult(Step.INTEGRATION_USER, StepStatus.FAILED, reason, details)
    reason = f"{report.username} has every permission the integration needs."
    return StepResult(Step.INTEGRATION_USER, StepStatus.PASSED, reason, details)


def plan_access_fix(run: EnablementRun) -> GrantPlan:
    """Work out the permission set change that gives the integration user the field."""
    connection = run.require_connection()
    if run.access is None:
        raise RuntimeError("the integration user has not been checked: run that step first")
    return plan_field_access_grant(connection, run.access.user_id, require_field(run).api_name)


def apply_access_fix(run: EnablementRun) -> StepResult:
    """Apply the permission set change, then check the integration user again."""
    connection = run.require_connection()
    if run.access is None:
        raise RuntimeError("the integration user has not been checked: run that step first")
    try:
        grant = apply_field_access_grant(connection, run.access.user_id, require_field(run).api_name)
    except Exception as error:
        return record_result(run, failed_result(Step.INTEGRATION_USER, error))
    result = check_integration_user(run, run.access.username)
    changes = grant.describe()
    details = {**result.details, "granted": changes}
    reason = result.reason
    if grant.has_changes:
        reason += " Changes made: " + " ".join(changes)
    return record_result(run, StepResult(result.step, result.status, reason, details))
