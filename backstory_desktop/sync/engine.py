"""Apply a journalled sync run to the org, so that a kill at any moment loses and doubles nothing.

Rows go out as sObject Collections upserts (200 records a call, keys in the
JSON body, ``allOrNone`` false), or through Bulk API 2.0 jobs when the rows
to send reach ``SyncSettings.bulk_threshold``. Before each call its rows are
marked SENDING and committed; after it, each row's outcome is recorded. A row
left SENDING (the process died) or IN_DOUBT (the call got no response) is looked
up by its key before anything else is sent: a Task found written is done, the
others are sent again. An upsert by external ID matches the Task it wrote, so
sending again never adds a second Task.

A create whose key another writer took after planning (the cadence tool, say)
fails with DUPLICATE_VALUE, or with INVALID_FIELD_FOR_INSERT_UPDATE naming the
create-only TaskSubtype. It is looked up again and sent as an update that only
fills what the Task left empty. The settling of rows in doubt is in sync.resolve.
A plan older than STALE_PLAN_SECONDS has its creates looked up again under
every key spelling just before they are sent, because an upsert by one spelling
does not match a Task another writer created under the other.

Failures that pass (row locks, limits, an unavailable server, a dropped
connection) put rows in the backfill queue, sent again with back-off in the
same apply up to ``max_attempts``, then left for ``retry_queued``. Other
failures are final: the row is FAILED with Salesforce's message and what to do.

The parts of an apply live beside this module: sending and recording rows
(engine_send), the API budget (engine_budget) and running each call so that
Cancel returns in time (engine_calls).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.plan import FieldRules, PlanRow
from backstory_desktop.salesforce.bulk import BulkJobError, CountingRequester, abort_job, job_state
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem
from backstory_desktop.salesforce.tasks import KEYS_PER_QUERY
from backstory_desktop.store.journal import (
    UNRESOLVED_STATES,
    ItemState,
    Journal,
    ResultLine,
    RunState,
    RunSummary,
)
from backstory_desktop.sync.engine_calls import CANCELLED, CallAbandoned, Stop
from backstory_desktop.sync.engine_send import STALE_PLAN_SECONDS, RowSender
from backstory_desktop.sync.resolve import live_tasks
from backstory_desktop.sync.result_files import ResultFiles, ResultRow, result_folder, write_result_files
from backstory_desktop.sync.settings import SyncResult, SyncSettings

log = logging.getLogger(__name__)

# Keys of rows in doubt kept in SyncResult.in_doubt; ``in_doubt_count`` counts all of them.
MAX_KEPT_IN_DOUBT_KEYS = 100

# SyncSettings is frozen, so one default instance serves every call.
DEFAULT_SETTINGS = SyncSettings()


def apply_run(
    connection: OrgConnection,
    journal: Journal,
    run_id: str,
    *,
    settings: SyncSettings = DEFAULT_SETTINGS,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Send a run's planned rows (and its queued rows that are due), after settling rows left in doubt.

    Holds the org's sync lock throughout (RunInProgress when another sync has
    it). Refuses to start, with a sentence in ``stopped_because``, when the
    org's daily API requests left, minus the reserve, are fewer than the run needs.
    """
    return _apply(connection, journal, run_id, settings, progress, cancel, sleep, retry=False)


def retry_queued(
    connection: OrgConnection,
    journal: Journal,
    run_id: str,
    *,
    settings: SyncSettings = DEFAULT_SETTINGS,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Send a run's backfill queue now, each row up to ``max_attempts`` more times, as apply_run does.

    Rows in doubt get as many more attempts, for when their lookup finds them unwritten.
    """
    return _apply(connection, journal, run_id, settings, progress, cancel, sleep, retry=True)


def _apply(
    connection: OrgConnection,
    journal: Journal,
    run_id: str,
    settings: SyncSettings,
    progress: ProgressCallback,
    cancel: threading.Event | None,
    sleep: Callable[[float], None],
    *,
    retry: bool,
) -> SyncResult:
    summary = journal.run(run_id)
    if not connection.org_id:
        raise ValueError(
            f"The connection's org is unknown, so run {run_id} of org {summary.org_id} cannot be checked "
            "against it: sign in to that org again, then apply the run."
        )
    if summary.org_id != connection.org_id:
        raise ValueError(
            f"Run {run_id} belongs to org {summary.org_id}, not to the connected org {connection.org_id}: "
            "connect to that org to apply it."
        )
    with journal.lock_org(summary.org_id, holder=connection.username):
        return _Apply(connection, journal, summary, settings, progress, cancel, sleep).run(retry=retry)



class _Apply(RowSender):
    """One apply of one run: the journal is the state, this object only the counters."""

    def __init__(
        self,
        connection: OrgConnection,
        journal: Journal,
        summary: RunSummary,
        settings: SyncSettings,
        progress: ProgressCallback,
        cancel: threading.Event | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.connection = connection
        self.journal = journal
        self.run_id = summary.run_id
        self.rules: FieldRules = journal.rules(summary.run_id)
        self.settings = settings
        self.progress = progress
        self.cancel = cancel
        self.sleep = sleep
        self.result = SyncResult(run_id=summary.run_id)
        self._lookup_failures = 0
        self._clock_floor = 0.0
        self._done = 0
        self._total = 0
        self._created_rows: list[PlanRow] = []  # rows created by this apply, kept for a stale plan only
        self._plan_is_stale = (datetime.now(UTC) - summary.created_at).total_seconds() > STALE_PLAN_SECONDS

    # -- the apply as a whole ----------------------------------------------------------

    def run(self, *, retry: bool) -> SyncResult:
        started = time.monotonic()
        self.journal.cap_attempts(self.run_id, self.settings.max_attempts)
        if retry:
            # A row in doubt joins the queue when its lookup finds it unwritten. It gets the
            # queue's new attempts too, because otherwise the retry would leave it queued.
            self.journal.allow_attempts(
                self.run_id, self.settings.max_attempts, states=(ItemState.QUEUED, *UNRESOLVED_STATES),
                due_now=True,
            )
        states = self.journal.state_counts(self.run_id)
        self._total = sum(states.get(state, 0) for state in (
            ItemState.PLANNED, ItemState.QUEUED, *UNRESOLVED_STATES))
        stop: Stop | None = None
        try:
            self._check_cancel()
            self.journal.set_run_state(self.run_id, RunState.APPLYING)
            self._check_budget()
            self._apply_until_done()
        except Stop as stopped:
            stop = stopped
        except CallAbandoned:
            # A lookup left to finish on its own changed nothing in the journal.
            stop = Stop(CANCELLED)

        self._finish(stop)
        self._log(started)
        return self.result

    def _apply_until_done(self) -> None:
        """Settle rows in doubt, send what is open, then wait for the queue's back-off, until none is due."""
        while True:
            self._resolve_unresolved()
            self._send_open_rows()
            wake = self._next_wake()
            if wake is None:
                return
            self._report_wait(wake)
            self._wait_until(wake)

    def _next_wake(self) -> float | None:
        due = self.journal.next_due(self.run_id)
        unresolved = self.journal.items(self.run_id, UNRESOLVED_STATES, limit=1)
        if unresolved and self._lookup_failures < self.settings.max_attempts:
            retry_at = self._now() + self._backoff(self._lookup_failures)
            due = retry_at if due is None else min(due, retry_at)
        return due

    def _report_wait(self, wake: float) -> None:
        """Say how long the apply waits, for which attempt and why, so that the page is not silent."""
        seconds = max(math.ceil(wake - self._now()), 0)
        if seconds < 1:
            return
        queued = self.journal.next_queued(self.run_id)
        if queued is not None:
            attempt, reason = queued.attempts + 1, queued.error_code or "a passing failure"
        else:
            attempt, reason = self._lookup_failures + 1, "looking up Tasks that got no response"
        self.progress(
            min(self._done, self._total), self._total,
            f"Waiting {seconds} s before attempt {attempt} of {self.settings.max_attempts} ({reason})",
        )

    def _finish(self, stop: Stop | None) -> None:
        states = self.journal.state_counts(self.run_id)
        result = self.result
        result.not_sent = states.get(ItemState.PLANNED, 0)
        result.queued = states.get(ItemState.QUEUED, 0)
        result.in_doubt_count = sum(states.get(state, 0) for state in UNRESOLVED_STATES)
        result.in_doubt = self.journal.keys_in_states(
            self.run_id, UNRESOLVED_STATES, limit=MAX_KEPT_IN_DOUBT_KEYS
        )
        result.failure_counts = self.journal.failures_by_code(self.run_id)
        if stop is not None:
            result.stopped_because, result.stop_error_code = stop.reason, stop.error_code
        elif result.in_doubt_count:
            result.stopped_because = (
                f"{result.in_doubt_count} Tasks got no response from Salesforce and could not be looked up; "
                "resume the run to look them up again"
            )
            result.stop_error_code = "IN_DOUBT"
        finished = not (result.stopped_because or result.not_sent or result.in_doubt_count)
        state = RunState.FINISHED if finished else RunState.STOPPED
        self.journal.set_run_state(self.run_id, state, result.stopped_because)
        if stop is not None and stop.reason == CANCELLED:
            # Cancel returns within its grace period, and the files of a long run take seconds to
            # write: they are written at the end of the run's next apply instead.
            return
        if result.in_doubt_count:
            self._abort_open_jobs()
        self._count_other_spellings()
        result.result_files = self._write_result_files()

    def _abort_open_jobs(self) -> None:
        """Abort the Bulk API jobs of rows left in doubt that are still Open, so that they never run.

        An Open job writes nothing, and aborting it makes its rows unprocessed for the next
        apply to read. Jobs that cannot be read now are left to the next apply's settling.
        """
        for _call_id, job_ids in self.journal.open_bulk_jobs(self.run_id):
            for job_id in job_ids:
                counted = CountingRequester(self.connection)
                try:
                    if job_state(counted, job_id) == "Open":
                        log.info("run %s: aborting Bulk API job %s, left open", self.run_id, job_id)
                        abort_job(counted, job_id)
                except (SalesforceError, SalesforceProblem, requests.RequestException, BulkJobError) as error:
                    log.info("run %s: Bulk API job %s could not be checked or aborted: %s", self.run_id,
                             job_id, error)
                finally:
                    self.result.api_calls += counted.requests

    def _count_other_spellings(self) -> None:
        """Count the Tasks this apply created whose key another Task holds in another spelling.

        Only for a stale plan (see STALE_PLAN_SECONDS): a writer may have added the
        other spelling between the lookup before the send and the send itself.
        """
        rows, self._created_rows = self._created_rows, []
        for start in range(0, len(rows), KEYS_PER_QUERY):
            if self.cancel is not None and self.cancel.is_set():
                return
            chunk = rows[start:start + KEYS_PER_QUERY]
            try:
                tasks = self._look_up(chunk)
            except Stop:
                return
            if tasks is None:
                return
            doubled = [row for row in chunk if len(live_tasks(row, tasks, self.rules)) > 1]
            self.result.other_spellings += len(doubled)
        if self.result.other_spellings:
            log.warning("run %s: %d created Tasks share their key with a Task in another spelling",
                        self.run_id, self.result.other_spellings)

    def _write_result_files(self) -> ResultFiles | None:
        # Beside the journal, so that a rehearsal's own journal keeps its files out of the app's folder.
        folder = result_folder(self.run_id, self.journal.path.parent)
        try:
            rows = (result_row(line) for line in self.journal.result_lines(self.run_id))
            files = write_result_files(folder, rows)
        except OSError as error:
            log.warning("Writing the result files of run %s failed: %s", self.run_id, error)
            self.result.result_files_error = (
                f"The result files could not be written to {folder} ({error.strerror or error}): free disk "
                "space or make the folder writable, then retry the run to write them again."
            )
            return None
        self.journal.set_result_folder(self.run_id, files.folder)
        return files

    def _log(self, started: float) -> None:
        result = self.result
        elapsed = time.monotonic() - started
        if result.stopped_because:
            log.info(
                "sync stopped after %.1f s (%s): run %s, %d created, %d updated, %d failed, %d queued, "
                "%d not sent, %d in doubt, %d API calls",
                elapsed, result.stopped_because, self.run_id, result.created, result.updated, result.failed,
                result.queued, result.not_sent, result.in_doubt_count, result.api_calls,
            )
        else:
            log.info(
                "sync applied in %.1f s: run %s, %d created, %d updated, %d failed, %d queued, %d API calls",
                elapsed, self.run_id, result.created, result.updated, result.failed, result.queued,
                result.api_calls,
            )


def result_row(line: ResultLine) -> ResultRow:
    return ResultRow(
        source_ref=line.source_ref,
        key=line.key,
        action=line.action,
        subject=line.subject,
        record_id=line.record_id,
        status=line.state.value,
        error_code=line.error_code,
        message=line.message or (line.reason if line.state is ItemState.SKIPPED else ""),
    )
