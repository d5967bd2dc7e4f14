"""The local sync step: read a mailbox, plan the upserts, apply the plan."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from backstory_desktop.core.activity import SourceProblem
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.plan import Plan
from backstory_desktop.enablement.run import (
    EnablementRun,
    MailboxReading,
    count_phrase,
    failed_result,
    record_change,
    record_result,
    require_field,
    usable_flag_field,
)
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.sync.apply import SyncResult, apply_plan
from backstory_desktop.sync.planner import build_plan

log = logging.getLogger(__name__)


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
        field=require_field(run),
        flag_field=usable_flag_field(run),
        progress=progress,
        cancel=cancel,
    )
    return run.plan


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
        return record_result(run, failed_result(Step.LOCAL_SYNC, error))
    _record_sync_change(run, run.plan, run.sync_result)
    return record_result(run, _sync_result(run.plan, run.sync_result))


def _record_sync_change(run: EnablementRun, plan: Plan, outcome: SyncResult) -> None:
    """Record the Tasks the apply wrote, or may have written, in the run's change log."""
    if not (outcome.created or outcome.updated or outcome.in_doubt):
        return
    counts = plan.counts()
    source = run.reading.path.name if run.reading is not None else "the mailbox"
    summary = (
        f"Upserted Tasks from {source} by {require_field(run).api_name}: created {outcome.created}, "
        f"updated {outcome.updated}, failed {outcome.failed}."
    )
    if outcome.stopped_because:
        summary += f" The sync stopped before the end ({outcome.stopped_because})."
    if outcome.in_doubt:
        summary += f" {count_phrase(len(outcome.in_doubt), 'Task')} may also have been written."
    # The diff the admin confirmed: the plan's counts before the apply.
    lines = [
        f"+ create {count_phrase(counts.get('create', 0), 'Task')}",
        f"~ update {count_phrase(counts.get('update', 0), 'Task')}",
    ]
    record_change(run, Step.LOCAL_SYNC, summary, lines)


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
        count_phrase(counts.get("conflict", 0), "conflict")
        + " and "
        + count_phrase(counts.get("invalid", 0), "invalid message")
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
