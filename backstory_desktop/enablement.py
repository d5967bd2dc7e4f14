"""The enablement steps as plain functions, shared by the wizard and the headless rehearsal.

Each step does its real work on the org through the Salesforce layer and
returns a StepResult that reports what it found or changed. Nothing here imports
Qt; the wizard runs these functions on its worker thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.checklist import STEP_TITLES, Checklist, Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, group_duplicates
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, no_progress
from backstory_desktop.core.plan import Plan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.access import (
    PERMISSION_SET_LABEL,
    AccessReport,
    GrantPlan,
    apply_field_access_grant,
    effective_access,
    plan_field_access_grant,
)
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.errors import SalesforceProblem, explain
from backstory_desktop.salesforce.schema import (
    KEY_LENGTH,
    FieldState,
    create_message_id_field,
    inspect_flag_field,
    inspect_message_id_field,
)
from backstory_desktop.salesforce.tasks import find_user_by_username, scan_tasks
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.store.settings import OrgProfile, ProfilesFileError, save_profile
from backstory_desktop.sync.apply import SyncResult, apply_plan
from backstory_desktop.sync.planner import build_plan

log = logging.getLogger(__name__)

# The Backstory setting that names the key field, and its place in Backstory's menus.
BACKSTORY_SETTING_NAME = "Upsert Message Id field name"
BACKSTORY_SETTING_PATH = (
    "Backstory > Settings > Integrations > CRMs > Sync Settings > Email Sync Extra Settings"
)


@dataclass
class MailboxReading:
    """Activities and problems read from one mailbox file."""

    path: Path
    activities: list[MailActivity] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def keyed_count(self) -> int:
        """Count the messages that yielded a usable Message-ID key."""
        return sum(1 for activity in self.activities if activity.message_id.key)


@dataclass
class EnablementRun:
    """Everything one enablement has found so far, step by step."""

    profile: OrgProfile
    checklist: Checklist = field(default_factory=Checklist)
    connection: OrgConnection | None = None
    field_state: FieldState | None = None
    flag_state: FieldState | None = None
    access: AccessReport | None = None
    reading: MailboxReading | None = None
    plan: Plan | None = None
    sync_result: SyncResult | None = None
    groups: list[DuplicateGroup] = field(default_factory=list)

    def require_connection(self) -> OrgConnection:
        """Return the org connection, or raise when the Connect step has not passed."""
        if self.connection is None:
            raise RuntimeError("not connected to an org: run the Connect step first")
        return self.connection


def _failed(step: Step, error: BaseException) -> StepResult:
    if isinstance(error, Cancelled):
        raise error
    problem = error if isinstance(error, SalesforceProblem) else explain(error)
    log.info("step %s failed: %s", step.value, problem.sentence)
    return StepResult(step, StepStatus.FAILED, problem.sentence,
                      {"details": problem.details, "error_code": problem.error_code})


def connect(run: EnablementRun, practice_org: PracticeOrg) -> StepResult:
    """Sign in to the practice org as its admin through the OAuth web-server flow with PKCE."""
    try:
        run.connection = connect_practice_org(
            practice_org.base_url,
            practice_org.ca_bundle,
            practice_org.admin_username,
            practice_org.client_id,
        )
    except Exception as error:
        return _record(run, _failed(Step.CONNECT, error))
    return use_connection(run, run.connection)


def use_connection(run: EnablementRun, connection: OrgConnection) -> StepResult:
    """Record the Connect step for a connection already opened, by any sign-in of any org."""
    run.connection = connection
    run.profile.instance_url = connection.instance_url
    run.profile.username = connection.username
    sentence = (
        f"Connected to {connection.instance_url} as {connection.username} "
        f"(API {connection.api_version})."
    )
    details: dict[str, object] = {
        "instance_url": connection.instance_url,
        "username": connection.username,
        "api_version": connection.api_version,
        "daily_api_requests_left": None,
    }
    try:
        requests_left = connection.daily_api_requests()
    except SalesforceProblem as error:
        return _record(run, _failed(Step.CONNECT, error))
    if requests_left is not None:
        details["daily_api_requests_left"] = requests_left.remaining
        sentence += (
            f" {requests_left.remaining:,} of {requests_left.max:,} daily API requests are left."
        )
    return _record(run, StepResult(Step.CONNECT, StepStatus.PASSED, sentence, details))


def _record(run: EnablementRun, result: StepResult) -> StepResult:
    run.checklist.record(result)
    return result


def check_field(run: EnablementRun) -> StepResult:
    """Inspect the Message-ID field and the Backstory flag field."""
    connection = run.require_connection()
    try:
        run.field_state = inspect_message_id_field(connection, run.profile.field_api_name)
        run.flag_state = inspect_flag_field(connection, run.profile.flag_field_api_name)
    except Exception as error:
        return _record(run, _failed(Step.MESSAGE_ID_FIELD, error))
    return _record(run, _with_flag_note(_field_result(run.field_state), run.flag_state))


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
        return _record(run, _failed(Step.MESSAGE_ID_FIELD, error))
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
    return _record(run, result)


def check_integration_user(run: EnablementRun, username: str) -> StepResult:
    """Work out the integration user's effective access to the field and the Tasks it writes."""
    connection = run.require_connection()
    field_state = _require_field(run)
    try:
        user_id = find_user_by_username(connection, username).id
        run.access = effective_access(
            connection, user_id, field_state.api_name, field_unique=bool(field_state.unique)
        )
    except Exception as error:
        return _record(run, _failed(Step.INTEGRATION_USER, error))
    run.profile.integration_username = username
    return _record(run, _access_result(run.access))


def _require_field(run: EnablementRun) -> FieldState:
    if run.field_state is None:
        raise RuntimeError("the Message-ID field has not been checked: run that step first")
    return run.field_state


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
    return plan_field_access_grant(connection, run.access.user_id, _require_field(run).api_name)


def apply_access_fix(run: EnablementRun) -> StepResult:
    """Apply the permission set change, then check the integration user again."""
    connection = run.require_connection()
    if run.access is None:
        raise RuntimeError("the integration user has not been checked: run that step first")
    try:
        grant = apply_field_access_grant(connection, run.access.user_id, _require_field(run).api_name)
    except Exception as error:
        return _record(run, _failed(Step.INTEGRATION_USER, error))
    result = check_integration_user(run, run.access.username)
    changes = grant.describe()
    details = {**result.details, "granted": changes}
    reason = result.reason
    if grant.has_changes:
        reason += " Changes made: " + " ".join(changes)
    return _record(run, StepResult(result.step, result.status, reason, details))


def record_backstory_setting(
    run: EnablementRun,
    *,
    confirmed: bool,
    confirmed_by: str = "the admin",
    profiles_file: Path | None = None,
) -> StepResult:
    """Record the value the admin enters in Backstory, and save it in the org profile.

    ``profiles_file`` defaults to the profiles file in the config folder.
    """
    field_state = _require_field(run)
    profile = run.profile
    confirmed_before = (
        profile.backstory_setting_confirmed and profile.backstory_setting_value == field_state.api_name
    )
    if not confirmed:
        profile.backstory_setting_confirmed_on = ""
    elif not (confirmed_before and profile.backstory_setting_confirmed_on):
        # A confirmation seen again on a later visit keeps the day it was first given.
        profile.backstory_setting_confirmed_on = datetime.now(UTC).date().isoformat()
    profile.backstory_setting_value = field_state.api_name
    profile.backstory_setting_confirmed = confirmed
    try:
        save_profile(run.profile, profiles_file)
    except (OSError, ProfilesFileError) as error:
        reason = f"The setting could not be saved in the org profile: {error}"
        return _record(run, StepResult(Step.BACKSTORY_SETTING, StepStatus.FAILED, reason))
    details = {
        "setting": BACKSTORY_SETTING_NAME,
        "value": field_state.api_name,
        "where": BACKSTORY_SETTING_PATH,
        "confirmed": confirmed,
        "confirmed_by": confirmed_by if confirmed else "",
        "confirmed_on": profile.backstory_setting_confirmed_on,
        "profile": run.profile.alias,
    }
    if not confirmed:
        reason = f"Enter {field_state.api_name} as '{BACKSTORY_SETTING_NAME}' in Backstory, then confirm."
        return _record(run, StepResult(Step.BACKSTORY_SETTING, StepStatus.FAILED, reason, details))
    reason = (
        f"'{BACKSTORY_SETTING_NAME}' is {field_state.api_name}, confirmed by {confirmed_by} "
        f"on {profile.backstory_setting_confirmed_on} and saved in the org profile '{run.profile.alias}'."
    )
    return _record(run, StepResult(Step.BACKSTORY_SETTING, StepStatus.PASSED, reason, details))


def read_mailbox(
    path: Path, *, progress: ProgressCallback = no_progress, cancel: threading.Event | None = None
) -> MailboxReading:
    """Read every message of an mbox file; raises MailboxError for a file that is not one."""
    reading = MailboxReading(path)
    for item in read_mbox(path, progress=progress, cancel=cancel):
        if isinstance(item, SourceProblem):
            reading.problems.append(item)
        else:
            reading.activities.append(item)
    return reading


def plan_sync(
    run: EnablementRun,
    reading: MailboxReading,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> Plan:
    """Build the dry-run plan for a mailbox: nothing is written."""
    connection = run.require_connection()
    run.reading = reading
    run.plan = build_plan(
        connection,
        reading.activities,
        reading.problems,
        field=_require_field(run),
        flag_field=_usable_flag_field(run),
        progress=progress,
        cancel=cancel,
    )
    return run.plan


def _usable_flag_field(run: EnablementRun) -> str | None:
    state = run.flag_state
    return state.api_name if state is not None and not state.problems else None


def apply_sync(
    run: EnablementRun,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> StepResult:
    """Apply the plan built last, through sObject Collections upserts."""
    connection = run.require_connection()
    if run.plan is None:
        raise RuntimeError("no plan to apply: build the dry-run plan first")
    try:
        run.sync_result = apply_plan(connection, run.plan, progress=progress, cancel=cancel)
    except Exception as error:
        return _record(run, _failed(Step.LOCAL_SYNC, error))
    return _record(run, _sync_result(run.plan, run.sync_result))


def _sync_result(plan: Plan, outcome: SyncResult) -> StepResult:
    counts = plan.counts()
    details = {
        "planned": counts,
        "created": outcome.created,
        "updated": outcome.updated,
        "failed": outcome.failed,
        "not_sent": outcome.not_sent,
        "in_doubt": outcome.in_doubt,
        "conflicts": counts.get("conflict", 0),
        "invalid": counts.get("invalid", 0),
        "error_code": outcome.stop_error_code,
    }
    not_planned = (
        _count_phrase(counts.get("conflict", 0), "conflict")
        + " and "
        + _count_phrase(counts.get("invalid", 0), "invalid message")
    )
    reason = (
        f"Created {outcome.created}, updated {outcome.updated}, failed {outcome.failed}; "
        f"{not_planned} were not sent."
    )
    failures = outcome.failures_by_code()
    details["failures"] = [
        {"error_code": code, "count": count, "example": example}
        for code, (count, example) in failures.items()
    ]
    if failures:
        code, (count, example) = max(failures.items(), key=lambda item: item[1][0])
        reason += f" Most failures ({count}) are {code}: {example}"
    if outcome.stopped_because:
        reason = f"Stopped ({outcome.stopped_because}) with {outcome.not_sent} not sent. " + reason
    if outcome.in_doubt:
        reason += f" {len(outcome.in_doubt)} may or may not have been written: build the plan again."
    failed = bool(outcome.failed or outcome.stopped_because)
    return StepResult(Step.LOCAL_SYNC, StepStatus.FAILED if failed else StepStatus.PASSED, reason, details)


def scan_conflicts(
    run: EnablementRun,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> StepResult:
    """Read every keyed Task, deleted and archived included, and group those sharing a key."""
    connection = run.require_connection()
    field_state = _require_field(run)
    try:
        records = scan_tasks(
            connection,
            field_state.api_name,
            flag_field=_usable_flag_field(run),
            progress=progress,
            cancel=cancel,
        )
        run.groups = group_duplicates(records, case_sensitive=bool(field_state.case_sensitive))
    except Exception as error:
        return _record(run, _failed(Step.CONFLICTS, error))
    by_kind: dict[str, int] = {}
    for group in run.groups:
        by_kind[group.kind.value] = by_kind.get(group.kind.value, 0) + 1
    reason = f"Found {_count_phrase(len(run.groups), 'group')} of Tasks that share a Message-ID key."
    details = {"groups": len(run.groups), "by_kind": by_kind}
    return _record(run, StepResult(Step.CONFLICTS, StepStatus.PASSED, reason, details))


def _count_phrase(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def summarise(run: EnablementRun) -> StepResult:
    """Close the checklist: passed only when every earlier step passed.

    Work the steps found but cannot do (duplicate groups to resolve,
    messages held back as conflicts) is listed as open items either way,
    so a passed summary never reads as "nothing left to do".
    """
    failed = [
        STEP_TITLES[step]
        for step in Step
        if step is not Step.SUMMARY and run.checklist.status(step) is not StepStatus.PASSED
    ]
    open_items = open_work(run)
    details = {"open_items": open_items}
    reason = ("Steps not passed: " + ", ".join(failed) + ".") if failed else "Every step passed."
    if open_items:
        reason += " Still open: " + "; ".join(open_items) + "."
    status = StepStatus.FAILED if failed else StepStatus.PASSED
    return _record(run, StepResult(Step.SUMMARY, status, reason, details))


def open_work(run: EnablementRun) -> list[str]:
    """List what the admin still has to do in Salesforce after these steps."""
    items = []
    if run.groups:
        items.append(
            _count_phrase(len(run.groups), "group") + " of Tasks sharing a Message-ID key to resolve "
            "in Salesforce (Tasks cannot be merged)"
        )
    conflicts = run.plan.counts().get("conflict", 0) if run.plan else 0
    if conflicts:
        items.append(_count_phrase(conflicts, "message") + " not synced because of conflicting Tasks")
    return items
