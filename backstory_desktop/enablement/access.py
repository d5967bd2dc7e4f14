"""The integration user step: effective access of the integration user and the cadence tools' users.

Backstory's integration user and every user a cadence tool logs as need Read
and Edit on the key field, API Enabled and Edit Tasks. The integration user
also needs View All Data while the field is not Unique. The fix is a
least-privilege permission set grant, never a profile change.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.enablement.run import (
    EnablementRun,
    failed_result,
    record_change,
    record_result,
    require_field,
)
from backstory_desktop.salesforce.access import AccessLine, AccessReport, effective_access, permission_label
from backstory_desktop.salesforce.access_grants import (
    GrantPlan,
    apply_access_grant,
    lines_applied_before,
    plan_access_grant,
)
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem
from backstory_desktop.salesforce.tasks import find_user_by_username

log = logging.getLogger(__name__)


@dataclass
class CadenceUserCheck:
    """One user a cadence tool logs as: its access, or why it could not be checked."""

    tool: str
    username: str
    report: AccessReport | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok


def check_integration_user(run: EnablementRun, username: str) -> StepResult:
    """Work out the access of the integration user and of every cadence tool's user."""
    connection = run.require_connection()
    field_state = require_field(run)
    try:
        user_id = _integration_user_id(run, username)
        run.access = effective_access(
            connection, user_id, field_state.api_name, field_unique=bool(field_state.unique)
        )
        cadence = _check_cadence(run)
    except Exception as error:
        return record_result(run, failed_result(Step.INTEGRATION_USER, error))
    run.profile.integration_username = username
    return record_result(run, _access_result(run.access, cadence))


def _integration_user_id(run: EnablementRun, username: str) -> str:
    try:
        return find_user_by_username(run.require_connection(), username).id
    except LookupError as error:
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"No user has the username {username} in this org; pick the integration user from the "
            "org's users, or correct the username in the org profile.",
            str(error),
        ) from error


def check_cadence_users(run: EnablementRun) -> list[AccessReport]:
    """Check every user the profile's cadence tools log as, and keep each in ``run.cadence_access``.

    Users that are not in the org are left out of the list; check_integration_user
    names them in its result.
    """
    return [check.report for check in _check_cadence(run) if check.report is not None]


def _check_cadence(run: EnablementRun) -> list[CadenceUserCheck]:
    connection = run.require_connection()
    field_name = require_field(run).api_name
    run.cadence_access = {}
    checks = []
    for tool, usernames in run.profile.cadence_users.items():
        for username in usernames:
            report = run.cadence_access.get(username)
            if report is None:
                try:
                    user_id = find_user_by_username(connection, username).id
                except LookupError:
                    checks.append(CadenceUserCheck(tool, username, None, f"{username} is not in this org"))
                    continue
                report = effective_access(connection, user_id, field_name, field_unique=True,
                                          cadence_tool=True)
                run.cadence_access[username] = report
            checks.append(CadenceUserCheck(tool, username, report))
    return checks


def _line_json(line: AccessLine) -> dict[str, Any]:
    return {
        "name": line.name,
        "granted": line.granted,
        "required": line.required,
        "sources": list(line.sources),
        "muted_by": list(line.muted_by),
        "note": line.note,
    }


def _cadence_json(check: CadenceUserCheck) -> dict[str, Any]:
    report = check.report
    return {
        "tool": check.tool,
        "username": check.username,
        "ok": check.ok,
        "profile": report.profile if report else "",
        "lines": [_line_json(line) for line in report.lines] if report else [],
        "ignored_assignments": list(report.ignored_assignments) if report else [],
        "error": check.error,
    }


def _access_result(report: AccessReport, cadence: list[CadenceUserCheck]) -> StepResult:
    details = {
        "user": report.username,
        "profile": report.profile,
        "lines": [_line_json(line) for line in report.lines],
        "ignored_assignments": list(report.ignored_assignments),
        "cadence_users": [_cadence_json(check) for check in cadence],
    }
    problems = []
    if report.missing:
        problems.append(f"{report.username} lacks: " + ", ".join(line.name for line in report.missing) + ".")
    for check in cadence:
        if check.report is None:
            problems.append(f"{check.tool} user {check.error}: choose its users again on Cadence tools.")
        elif not check.report.ok:
            missing = ", ".join(line.name for line in check.report.missing)
            problems.append(f"{check.tool} user {check.username} lacks: {missing}.")
    if problems:
        return StepResult(Step.INTEGRATION_USER, StepStatus.FAILED, " ".join(problems), details)
    reason = f"{report.username} has every permission the integration needs."
    if cadence:
        reason += " So do the cadence tools' users."
    return StepResult(Step.INTEGRATION_USER, StepStatus.PASSED, reason, details)


def _target(run: EnablementRun, username: str | None) -> AccessReport:
    """Return the report of the user to fix: the integration user's, or a cadence tool user's."""
    if run.access is None:
        raise RuntimeError("the integration user has not been checked: run that step first")
    if username is None or username == run.access.username:
        return run.access
    report = run.cadence_access.get(username)
    if report is None:
        raise LookupError(f"{username} is not a checked cadence tool user: check the users again")
    return report


def plan_access_fix(
    run: EnablementRun, *, username: str | None = None, system_permissions: Collection[str] = ()
) -> GrantPlan:
    """Work out the permission set changes that give a user what it lacks; nothing is written.

    ``username`` is a cadence tool's user, or None for the integration user.
    Read and Edit on the field are planned when missing; the system permissions
    are only those in ``system_permissions``, each chosen by the admin.
    """
    connection = run.require_connection()
    report = _target(run, username)
    return plan_access_grant(
        connection, report.user_id, require_field(run).api_name,
        system_permissions=system_permissions, include_field=report.field_access_missing,
    )


def apply_access_fix(run: EnablementRun, plan: GrantPlan | None = None) -> StepResult:
    """Apply a confirmed plan (by default the integration user's field grant), then check again."""
    if run.access is None:
        raise RuntimeError("the integration user has not been checked: run that step first")
    try:
        plan = plan if plan is not None else plan_access_fix(run)
        applied = apply_access_grant(run.require_connection(), plan).applied_lines
    except Exception as error:
        return record_result(run, _partial_failure(run, plan, error))
    summary = _change_summary(run, plan)
    if applied:
        record_change(run, Step.INTEGRATION_USER, summary, applied)

    result = check_integration_user(run, run.access.username)
    details = {**result.details, "granted": plan.describe()}
    reason = result.reason
    if applied:
        reason += f" {summary}."
    return record_result(run, StepResult(result.step, result.status, reason, details))


def _partial_failure(run: EnablementRun, plan: GrantPlan | None, error: Exception) -> StepResult:
    """Turn a failed grant into the step's result, recording the writes made before it failed."""
    failed = failed_result(Step.INTEGRATION_USER, error)
    made = lines_applied_before(error)
    if not made or plan is None:
        return failed
    record_change(run, Step.INTEGRATION_USER,
                  f"Granted part of the access of {plan.username} before the grant failed", made)
    reason = f"{failed.reason} The changes made before the failure are in the change log."
    return StepResult(failed.step, failed.status, reason, failed.details)


def _change_summary(run: EnablementRun, plan: GrantPlan) -> str:
    granted = []
    sets = []
    if plan.has_field_changes:
        granted.append(f"Read and Edit on {require_field(run).api_name}")
        sets.append(f'"{plan.permission_set_label}"')
    granted.extend(permission_label(flag) for flag in plan.permissions_to_enable)
    if plan.system_set is not None:
        sets.append(f'"{plan.system_set.label}"')
        if not plan.permissions_to_enable:
            granted.extend(permission_label(flag) for flag in plan.requested_permissions)
    noun = "permission set" if len(sets) == 1 else "permission sets"
    return f"Granted {' and '.join(granted)} to {plan.username} through {noun} {' and '.join(sets)}"
