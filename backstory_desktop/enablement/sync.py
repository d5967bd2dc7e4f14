"""The local sync step: plan a source into the sync journal, apply it, resume it, retry its queue.

The GUI and the CLI use only the functions of this module. Every plan is a run
in the sync journal, so a run stopped by a crash, a kill or a Cancel is resumed
from the journal, and ``sync_history`` lists every run of the connected org.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.plan import Plan
from backstory_desktop.enablement.run import (
    EnablementRun,
    count_phrase,
    failed_result,
    record_change,
    record_result,
    require_field,
    usable_flag_field,
)
from backstory_desktop.sources.csv_export import CsvMapping, guess_mapping, read_csv_header
from backstory_desktop.sources.registry import SourceKind, detect_source, read_source
from backstory_desktop.store.journal import Journal, JournalError, RunInProgress, RunState, RunSummary
from backstory_desktop.sync.engine import apply_run, result_row, retry_queued
from backstory_desktop.sync.planner import build_plan
from backstory_desktop.sync.result_files import result_folder, write_result_files
from backstory_desktop.sync.settings import SyncResult, SyncSettings

log = logging.getLogger(__name__)

_ApplyFunction = Callable[..., SyncResult]


def sync_journal(run: EnablementRun) -> Journal:
    """Return the run's sync journal, opening the app's journal file the first time."""
    if run.journal is None:
        run.journal = Journal.open()
    return run.journal


def plan_sync(
    run: EnablementRun,
    path: Path,
    *,
    mapping: CsvMapping | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> Plan:
    """Build the dry-run plan of a source (mbox, Maildir, .eml folder or CSV export) into the journal.

    Nothing is written to the org. Raises SourceError when the path cannot be
    read as a source, before anything is looked up.
    """
    connection = run.require_connection()
    kind = detect_source(path)
    if kind is SourceKind.CSV and mapping is None:
        # The guess looks for the org's own key field among the columns, not the default name.
        mapping = guess_mapping(read_csv_header(path), key_field=require_field(run).api_name)
    source = read_source(path, mapping=mapping, progress=progress, cancel=cancel)
    run.sync_source = path
    run.plan = build_plan(
        connection,
        source,
        journal=sync_journal(run),
        source_label=str(path),
        source_kind=kind.value,
        field=require_field(run),
        flag_field=usable_flag_field(run),
        cancel=cancel,
    )
    return run.plan


def apply_sync(
    run: EnablementRun,
    *,
    settings: SyncSettings | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> StepResult:
    """Apply the plan built last; ``settings`` are kept for the rest of the session."""
    if settings is not None:
        run.sync_settings = settings
    if run.plan is None or run.plan.run_id is None:
        raise RuntimeError("no plan to apply: build the dry-run plan first")
    return _apply_step(run, run.plan.run_id, apply_run, None, progress, cancel, None)


def resume_sync(
    run: EnablementRun,
    run_id: str,
    *,
    settings: SyncSettings | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    confirmed_lines: list[str] | None = None,
) -> StepResult:
    """Continue a run that stopped or was killed: settle rows left in doubt, then send the rest.

    ``settings`` apply to this call only; None uses ``run.sync_settings``. ``confirmed_lines``
    are the lines the admin confirmed, kept in the change log; None keeps the plan's counts there.
    """
    return _apply_step(run, run_id, apply_run, settings, progress, cancel, confirmed_lines)


def retry_backfill(
    run: EnablementRun,
    run_id: str,
    *,
    settings: SyncSettings | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    confirmed_lines: list[str] | None = None,
) -> StepResult:
    """Send a run's backfill queue again now; ``settings`` and ``confirmed_lines`` as for ``resume_sync``."""
    return _apply_step(run, run_id, retry_queued, settings, progress, cancel, confirmed_lines)


def sync_history(run: EnablementRun) -> list[RunSummary]:
    """Return the connected org's sync runs, newest first, each finished one with its result files."""
    journal = sync_journal(run)
    return with_result_files(journal, journal.runs(run.require_connection().org_id))


def with_result_files(journal: Journal, summaries: list[RunSummary]) -> list[RunSummary]:
    """Write the missing result files of the finished runs among ``summaries`` and return them updated.

    A run stopped (Ctrl+C, a kill) after its last write and before its result files has none,
    so they are written from the journal when the run is next read. A run whose files cannot be
    written keeps no result folder, and ``sync history`` prints that they were not written.
    """
    return [_with_result_files(journal, summary) for summary in summaries]


def _with_result_files(journal: Journal, summary: RunSummary) -> RunSummary:
    if summary.state is not RunState.FINISHED or summary.result_folder is not None:
        return summary
    # Beside the journal, as the apply writes them.
    folder = result_folder(summary.run_id, journal.path.parent)
    try:
        rows = (result_row(line) for line in journal.result_lines(summary.run_id))
        files = write_result_files(folder, rows)
    except OSError as error:
        log.warning("Writing the missing result files of run %s failed: %s", summary.run_id, error)
        return summary
    journal.set_result_folder(summary.run_id, files.folder)
    log.info("Wrote the missing result files of run %s to %s", summary.run_id, files.folder)
    return dataclasses.replace(summary, result_folder=files.folder)


def unfinished_sync(run: EnablementRun) -> RunSummary | None:
    """Return the connected org's newest run that still has rows to send or settle, if any."""
    return sync_journal(run).unfinished_run(run.require_connection().org_id)


def _apply_step(
    run: EnablementRun,
    run_id: str,
    apply: _ApplyFunction,
    settings: SyncSettings | None,
    progress: ProgressCallback,
    cancel: threading.Event | None,
    confirmed_lines: list[str] | None,
) -> StepResult:
    """Run ``apply`` on a run of the journal with ``settings``, else the run's own, and record the outcome.

    The change log keeps ``confirmed_lines``, or the plan's counts when they are None.
    """
    connection = run.require_connection()
    if settings is None:
        settings = run.sync_settings
    try:
        journal = sync_journal(run)
        result = apply(
            connection, journal, run_id, settings=settings, progress=progress, cancel=cancel
        )
    except RunInProgress as busy:
        log.info("sync of run %s not started because the org is busy: %s", run_id, busy)
        return record_result(
            run, StepResult(Step.LOCAL_SYNC, StepStatus.FAILED, str(busy), {"error_code": "RUN_IN_PROGRESS"})
        )
    except JournalError as error:
        log.warning("sync of run %s stopped because the journal failed: %s", run_id, error)
        return record_result(
            run, StepResult(Step.LOCAL_SYNC, StepStatus.FAILED, str(error), {"error_code": "JOURNAL_ERROR"})
        )
    except Exception as error:
        return record_result(run, failed_result(Step.LOCAL_SYNC, error))
    run.sync_result = result
    run.plan = journal.plan(run_id)
    _record_sync_change(run, run.plan, result, journal.run(run_id).source, confirmed_lines)
    return record_result(run, _sync_result(run.plan, result))


def _record_sync_change(
    run: EnablementRun, plan: Plan, outcome: SyncResult, source: str, confirmed_lines: list[str] | None
) -> None:
    """Record the Tasks the apply wrote, or may have written, in the run's change log."""
    if not (outcome.created or outcome.updated or outcome.in_doubt_count):
        return
    counts = plan.counts()
    summary = (
        f"Upserted Tasks from {Path(source).name} by {plan.rules.api_name}: created {outcome.created}, "
        f"updated {outcome.updated}, failed {outcome.failed}."
    )
    if outcome.stopped_because:
        summary += f" The sync stopped before the end: {_sentence(outcome.stopped_because)}"
    if outcome.in_doubt_count:
        summary += f" {count_phrase(outcome.in_doubt_count, 'Task')} may also have been written."
    # The lines the admin confirmed. A caller that passes none confirmed the plan's counts, as apply does.
    lines = confirmed_lines
    if lines is None:
        lines = [
            f"+ create {count_phrase(counts.get('create', 0), 'Task')}",
            f"~ update {count_phrase(counts.get('update', 0), 'Task')}",
        ]
    record_change(run, Step.LOCAL_SYNC, summary, lines)


def _sync_result(plan: Plan, outcome: SyncResult) -> StepResult:
    counts = plan.counts()
    details: dict[str, object] = {
        "run_id": outcome.run_id,
        "planned": counts,
        "created": outcome.created,
        "updated": outcome.updated,
        "failed": outcome.failed,
        "queued": outcome.queued,
        "not_sent": outcome.not_sent,
        "in_doubt": outcome.in_doubt,
        "in_doubt_count": outcome.in_doubt_count,
        "conflicts": counts.get("conflict", 0),
        "invalid": counts.get("invalid", 0),
        "error_code": outcome.stop_error_code,
        "api_calls": outcome.api_calls,
        "result_folder": str(outcome.result_files.folder) if outcome.result_files else None,
    }
    not_planned = [
        count_phrase(counts.get(action, 0), noun)
        for action, noun in (("conflict", "conflict"), ("invalid", "invalid message"))
        if counts.get(action, 0)
    ]
    reason = f"Created {outcome.created}, updated {outcome.updated}, failed {outcome.failed}"
    if not_planned:
        verb = "was" if counts.get("conflict", 0) + counts.get("invalid", 0) == 1 else "were"
        reason += f"; {' and '.join(not_planned)} {verb} not sent."
    else:
        reason += "."
    failures = outcome.failures_by_code()
    details["failures"] = [
        {"error_code": code, "count": count, "example": example}
        for code, (count, example) in failures.items()
    ]
    if failures:
        code, (count, example) = max(failures.items(), key=lambda item: item[1][0])
        reason += f" Most failures ({count}) are {code}: {example}"
    if outcome.queued:
        reason += f" {count_phrase(outcome.queued, 'Task')} wait in the backfill queue: retry them later."
    if outcome.stopped_because:
        reason = (
            f"The sync stopped before the end: {_sentence(outcome.stopped_because)} "
            + (f"Rows not sent: {outcome.not_sent}. " if outcome.not_sent else "")
            + reason
        )
    if outcome.other_spellings:
        details["other_spellings"] = outcome.other_spellings
        reason += (
            f" {count_phrase(outcome.other_spellings, 'created Task')} share their key with a Task written "
            "in another spelling meanwhile: keep one of each in the Conflicts step."
        )
    if outcome.result_files_error:
        reason += f" {outcome.result_files_error}"
        details["result_files_error"] = outcome.result_files_error
    failed = bool(outcome.failed or outcome.stopped_because or outcome.queued or outcome.result_files_error)
    return StepResult(Step.LOCAL_SYNC, StepStatus.FAILED if failed else StepStatus.PASSED, reason, details)


def _sentence(text: str) -> str:
    """Return a stop reason as a sentence: capitalised and ending in a full stop."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
