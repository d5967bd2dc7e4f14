"""The Conflicts step: find the Tasks that record one e-mail more than once.

The scan reads every Task of the org (keyless, deleted and archived ones too)
and groups them on the client: by key, by key once normalised, and by likeness
for Tasks without a key (see core.duplicates). The step passes when no group
is flagged, and fails with the count of groups left to resolve otherwise.
"""

from __future__ import annotations

import logging
import threading

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind, Thresholds, group_duplicates
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.enablement.run import (
    EnablementRun,
    failed_result,
    record_result,
    require_field,
    usable_flag_field,
)
from backstory_desktop.salesforce.task_scan import scan_all_tasks
from backstory_desktop.salesforce.tasks import find_user_by_username

log = logging.getLogger(__name__)


def tool_users(run: EnablementRun) -> dict[str, str]:
    """Return the User Id of each cadence tool's user with its label, such as "Outreach (jane@x.example)".

    The usernames come from the org profile. A username the org does not know
    is logged and left out.
    """
    connection = run.require_connection()
    labels: dict[str, str] = {}
    for tool, usernames in run.profile.cadence_users.items():
        for username in usernames:
            try:
                user = find_user_by_username(connection, username)
            except LookupError:
                log.info("The %s user %s is not in org %s, so its Tasks are labelled by name",
                         tool, username, run.profile.alias)
                continue
            labels[user.id] = f"{tool} ({user.username})"
    return labels


def scan_conflicts(
    run: EnablementRun,
    *,
    thresholds: Thresholds | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> StepResult:
    """Read every Task, deleted and archived included, and group those that record one e-mail.

    When ``thresholds`` is None, the run's matching rules apply (the defaults at
    first). Sets ``run.groups``, ``run.thresholds`` and ``run.tasks_scanned``.
    The result fails while a group is flagged, and when the scan could not
    finish, so use scan_finished to tell the two cases apart.
    """
    connection = run.require_connection()
    field_state = require_field(run)
    chosen = thresholds if thresholds is not None else run.thresholds
    try:
        tools = tool_users(run)
        records = list(scan_all_tasks(
            connection,
            field_state.api_name,
            flag_field=usable_flag_field(run),
            tools_by_user_id=tools,
            progress=progress,
            cancel=cancel,
        ))
        scanned = len(records)
        progress(scanned, scanned, f"Grouping {scanned:,} Tasks")
        groups = group_duplicates(
            records,
            case_sensitive=bool(field_state.case_sensitive),
            thresholds=chosen,
            tool_user_ids=tools.keys(),
        )
    except Exception as error:
        return record_result(run, failed_result(Step.CONFLICTS, error))
    run.groups = groups
    run.thresholds = chosen
    run.tasks_scanned = scanned
    log.info("Conflict scan of %s: %d Tasks, %d groups", run.profile.alias, scanned, len(groups))
    return record_result(run, _scan_result(groups, scanned))


def scan_finished(result: StepResult) -> bool:
    """Tell whether a Conflicts result comes from a scan that read and grouped every Task.

    The step fails both when the scan could not finish and when it finished with
    flagged groups left to resolve, and only the second has groups to show.
    """
    return result.step is Step.CONFLICTS and "groups" in result.details


def _scan_result(groups: list[DuplicateGroup], scanned: int) -> StepResult:
    """Return a passed result when no group is flagged, else a failed one with the count of groups left."""
    by_kind: dict[str, int] = {}
    for group in groups:
        by_kind[group.kind.value] = by_kind.get(group.kind.value, 0) + 1
    flagged = sum(1 for group in groups if group.flagged)
    clones = sum(1 for group in groups if group.kind is GroupKind.CLONES)
    case_only = sum(1 for group in groups if group.case_only)
    reason = (f"Read {_counted(scanned, 'Task')} and found {_counted(flagged, 'group')} "
              "that record one e-mail more than once")
    if clones:
        reason += (f", and {_counted(clones, 'set')} of clones logged once per related record "
                   "on purpose")
    if case_only:
        reason += (f", and {_counted(case_only, 'group')} of keys that differ only in case or Unicode "
                   "folding, which Salesforce may count as different keys")
    if flagged:
        flagged_phrase = "the group" if flagged == 1 else f"those {flagged:,} groups"
        reason += f"; resolve {flagged_phrase} on the Conflicts page"
    details = {"groups": len(groups), "by_kind": by_kind, "flagged": flagged, "tasks": scanned}
    status = StepStatus.FAILED if flagged else StepStatus.PASSED
    return StepResult(Step.CONFLICTS, status, reason + ".", details)


def _counted(count: int, noun: str) -> str:
    """Return "1 group" or "2,000 groups", with thousands separators."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
