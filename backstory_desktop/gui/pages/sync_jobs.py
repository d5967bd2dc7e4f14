"""The Local sync page's jobs: plain functions the worker runs with ``progress`` and ``cancel``.

Each calls the enablement layer, the journal or the result files, never Qt,
so the page only starts them and shows what they return.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepResult
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.plan import Plan
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.enablement.sync import sync_journal
from backstory_desktop.sources.csv_export import CsvMapping
from backstory_desktop.store.journal import (
    ItemState,
    QueuedItem,
    RunSummary,
)
from backstory_desktop.sync.result_files import write_plan_csv
from backstory_desktop.sync.settings import SyncSettings


@dataclass
class SyncOverview:
    """The org's sync runs, the run with work left, and the backfill queue shown.

    ``queued_count`` counts the queue of ``queue_run``; ``read_queue(offset, limit)``
    reads a page of it, so a long queue is never read whole.
    """

    runs: list[RunSummary] = field(default_factory=list)
    unfinished: RunSummary | None = None
    queue_run: RunSummary | None = None
    queued_count: int = 0
    read_queue: Callable[[int, int], list[QueuedItem]] | None = None


def plan_job(run: EnablementRun, path: Path, mapping: CsvMapping | None, *,
             progress: ProgressCallback, cancel: threading.Event) -> Plan:
    """Read the source and build the dry-run plan; nothing is written to the org."""
    return enablement.plan_sync(run, path, mapping=mapping, progress=progress, cancel=cancel)


def apply_job(run: EnablementRun, settings: SyncSettings, *,
              progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Apply the plan's creates and updates, through Collections or Bulk API 2.0."""
    return enablement.apply_sync(run, settings=settings, progress=progress, cancel=cancel)


def resume_job(run: EnablementRun, run_id: str, settings: SyncSettings, confirmed_lines: list[str], *,
               progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Continue an unfinished run where it stopped, with the page's Bulk threshold.

    ``confirmed_lines`` are the diff the admin confirmed, for the change log.
    """
    return enablement.resume_sync(run, run_id, settings=settings, confirmed_lines=confirmed_lines,
                                  progress=progress, cancel=cancel)


def retry_job(run: EnablementRun, run_id: str, settings: SyncSettings, confirmed_lines: list[str], *,
              progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Send a run's queued items again now, with the page's Bulk threshold.

    ``confirmed_lines`` are the diff the admin confirmed, for the change log.
    """
    return enablement.retry_backfill(run, run_id, settings=settings, confirmed_lines=confirmed_lines,
                                     progress=progress, cancel=cancel)


def read_overview(run: EnablementRun, queue_run_id: str | None) -> SyncOverview:
    """Read the org's run history, its unfinished run and one run's backfill queue from the journal.

    The queue shown is that of ``queue_run_id`` when given, else of the newest
    run that has queued items; only its count is read here. The journal reports
    a run whose applying process ended (a Ctrl+C or a kill) as stopped. Only the
    local journal file is read, in a few indexed queries, so the page reads it
    on the GUI thread.
    """
    journal = sync_journal(run)
    overview = SyncOverview(runs=enablement.sync_history(run), unfinished=enablement.unfinished_sync(run))
    candidates = [summary for summary in overview.runs if summary.run_id == queue_run_id]
    candidates += [summary for summary in overview.runs if summary.states.get(ItemState.QUEUED, 0)]
    if candidates:
        queue_run = candidates[0]
        overview.queue_run = queue_run
        overview.queued_count = journal.queued_count(queue_run.run_id)

        def read_queue(offset: int, limit: int) -> list[QueuedItem]:
            return journal.queued_items(queue_run.run_id, limit=limit, offset=offset)

        overview.read_queue = read_queue
    return overview


def delete_run(run: EnablementRun, run_id: str) -> None:
    """Delete a run from the journal's history; its result files stay on disk."""
    sync_journal(run).delete_run(run_id)


def export_job(path: Path, plan: Plan, *, progress: ProgressCallback, cancel: threading.Event) -> int:
    """Write the plan's rows to a CSV file; returns the number of rows written."""
    progress(0, 0, f"Writing {path.name}")
    return write_plan_csv(path, plan.rows)
