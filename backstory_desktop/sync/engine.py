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
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.plan import Action, FieldRules, PlanRow
from backstory_desktop.salesforce.bulk import (
    NULL_VALUE,
    BulkJobError,
    CountingRequester,
    abort_job,
    job_state,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain
from backstory_desktop.salesforce.tasks import (
    KEYS_PER_QUERY,
    UPSERT_BATCH_SIZE,
    UpsertInterrupted,
    UpsertOutcome,
    upsert_batch,
)
from backstory_desktop.store.journal import (
    UNRESOLVED_STATES,
    ItemState,
    ItemUpdate,
    Journal,
    JournalItem,
    ResultLine,
    RunState,
    RunSummary,
)
from backstory_desktop.sync.bulk_apply import (
    NOT_PROCESSED,
    BulkUpsertCancelled,
    BulkUpsertInterrupted,
    upsert_with_bulk,
)
from backstory_desktop.sync.resolve import DAILY_LIMIT_MARK, InDoubtSettlement, Stop, live_tasks, row_key
from backstory_desktop.sync.result_files import ResultFiles, ResultRow, result_folder, write_result_files
from backstory_desktop.sync.settings import SyncResult, SyncSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# The create-only field whose refusal, on a create, means another writer took the key after planning.
CREATE_ONLY_FIELD = "TaskSubtype"
# Error codes a later attempt may not get: the row goes to the backfill queue.
TRANSIENT_ERRORS = frozenset({
    "REQUEST_LIMIT_EXCEEDED",
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "UNKNOWN_EXCEPTION",
    "INVALID_SESSION_ID",
    NOT_PROCESSED,
})
CANCELLED = "cancelled by the user"
# An estimate of the calls of one Bulk API 2.0 job: create, upload, close, a few polls,
# three result reads.
CALLS_PER_BULK_JOB = 12
BULK_JOB_RECORDS = 10_000
# Rows handed to one upsert_with_bulk call: one job's worth, so that memory stays bounded and a
# kill loses at most one job's results to read again.
BULK_SLICE_ROWS = BULK_JOB_RECORDS
# Outcomes kept in SyncResult.outcomes; the journal keeps every one.
MAX_KEPT_OUTCOMES = 10_000
# Keys of rows in doubt kept in SyncResult.in_doubt; ``in_doubt_count`` counts all of them.
MAX_KEPT_IN_DOUBT_KEYS = 100
_WAIT_STEP_SECONDS = 0.25
# A plan older than this may miss Tasks that another writer (the cadence tool, say) created since under
# another spelling of a key ("<k>" or "k"), and an upsert by the planned spelling does not match those.
# So its creates are looked up again just before they are sent, at one query per KEYS_PER_QUERY creates.
# A fresher plan skips that lookup, so 10,000 rows still take about 51 calls.
STALE_PLAN_SECONDS = 300.0

_KEY_HELD = "another Task holds this key, so keep one of them in the Conflicts step and plan again"
# The fix shown with a final failure, by Salesforce error code.
_FIXES = {
    "STRING_TOO_LONG": "shorten the value in the source or lengthen the field, then plan again",
    "INVALID_CROSS_REFERENCE_KEY": (
        "the WhoId or OwnerId does not name a record this user can see, so correct it in the source "
        "and plan again"
    ),
    "INSUFFICIENT_ACCESS_OR_READONLY": "give the sync user edit access to this Task, then retry",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": (
        "give the sync user access to the Task's owner and contact, then retry"
    ),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "change the validation rule or the value it names, then plan again",
    "REQUIRED_FIELD_MISSING": "fill the field Salesforce names in the source, then plan again",
    "INACTIVE_OWNER_OR_USER": "activate the owner or plan again so that an active user owns the Task",
    "DUPLICATE_VALUE": _KEY_HELD,
    "INVALID_FIELD_FOR_INSERT_UPDATE": (
        "give the sync user edit access to the field Salesforce names (field-level security), then retry"
    ),
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": (
        "a trigger or flow on Task refused it, so fix that automation and retry"
    ),
}
_DEFAULT_FIX = "correct what Salesforce names, then plan and apply again"

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
    """Send a run's backfill queue now, each row up to ``max_attempts`` more times, as apply_run does."""
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
    if connection.org_id and summary.org_id != connection.org_id:
        raise ValueError(
            f"run {run_id} belongs to org {summary.org_id}, not to the connected org {connection.org_id}; "
            "connect to that org to apply it"
        )
    with journal.lock_org(summary.org_id, holder=connection.username):
        return _Apply(connection, journal, summary, settings, progress, cancel, sleep).run(retry=retry)


class _Abandoned(Exception):
    """The admin cancelled and the call got no response within the grace period."""


class _Apply(InDoubtSettlement):
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
            self.journal.allow_attempts(
                self.run_id, self.settings.max_attempts, states=(ItemState.QUEUED,), due_now=True
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
        except _Abandoned:
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
            rows = (_result_row(line) for line in self.journal.result_lines(self.run_id))
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

    # -- API budget ------------------------------------------------------------------

    def _check_budget(self) -> None:
        """Refuse to start when the org's daily API requests left, less the reserve, cannot cover the run."""
        states = self.journal.state_counts(self.run_id)
        to_send = states.get(ItemState.PLANNED, 0) + states.get(ItemState.QUEUED, 0)
        unresolved = sum(states.get(state, 0) for state in UNRESOLVED_STATES)
        if not to_send and not unresolved:
            return
        needed = _estimated_calls(to_send, self.settings.bulk_threshold)
        needed += math.ceil(unresolved / KEYS_PER_QUERY)
        try:
            requests_today = self._call(self.connection.daily_api_requests)
        except SalesforceProblem as problem:
            raise Stop(problem.sentence, problem.error_code) from problem
        finally:
            self.result.api_calls += 1
        if requests_today is None:
            log.info("the org's daily API requests could not be read, so run %s starts unchecked",
                     self.run_id)
            return
        reserve = math.ceil(requests_today.max * self.settings.api_reserve_fraction)
        available = requests_today.remaining - reserve
        if needed > available:
            raise Stop(
                f"The org has {max(requests_today.remaining, 0)} of its {requests_today.max} daily API "
                f"requests left and this app keeps {reserve} of them in reserve, but the sync needs about "
                f"{needed}: apply it once the org's 24-hour allowance has room again.",
                "API_BUDGET",
            )

    def _watch_budget(self) -> None:
        """Stop and queue what is left once the last call's Sforce-Limit-Info reaches the reserve."""
        usage = self.connection.api_usage
        if usage is None:
            return
        used, maximum = usage
        reserve = math.ceil(maximum * self.settings.api_reserve_fraction)
        if maximum - used > reserve:
            return
        message = (
            f"The org has used {used} of its {maximum} daily API requests, which reaches the reserve of "
            f"{reserve} this app keeps: retry the queue once the org's 24-hour allowance has room again."
        )
        self._queue_open_rows("API_RESERVE", message)
        raise Stop(message, "API_RESERVE")

    # -- sending ---------------------------------------------------------------------------

    def _send_open_rows(self) -> None:
        """Send PLANNED rows and due QUEUED rows, through Bulk API 2.0 when they reach the threshold."""
        states = self.journal.state_counts(self.run_id)
        open_rows = states.get(ItemState.PLANNED, 0) + states.get(ItemState.QUEUED, 0)
        use_bulk = open_rows >= self.settings.bulk_threshold
        while True:
            self._check_cancel()
            batch = self._next_batch(BULK_SLICE_ROWS if use_bulk else UPSERT_BATCH_SIZE)
            if not batch:
                return
            if self._plan_is_stale:
                batch = self._recheck_creates(batch)
                if not batch:
                    continue
            if use_bulk:
                self._send_bulk(batch)
            else:
                self._send_collections(_distinct_keys(batch))

    def _recheck_creates(self, batch: list[JournalItem]) -> list[JournalItem]:
        """Look a stale plan's creates up again; those whose key another writer took become updates.

        Returns the rows to send now; the turned ones are PLANNED again as updates.
        """
        creates = [item for item in batch if item.row.action is Action.CREATE]
        if not creates:
            return batch
        turned: list[ItemUpdate] = []
        for start in range(0, len(creates), KEYS_PER_QUERY):
            self._check_cancel()
            chunk = creates[start:start + KEYS_PER_QUERY]
            tasks = self._look_up([item.row for item in chunk])
            if tasks is None:
                continue  # Sent as planned: a create whose key was taken fails and is turned then.
            turned += [self._as_update(item, tasks) for item in chunk
                       if live_tasks(item.row, tasks, self.rules)]
        if not turned:
            return batch
        log.info("run %s: %d creates of a plan older than %d s found written by another writer since",
                 self.run_id, len(turned), STALE_PLAN_SECONDS)
        self.journal.record_outcomes(self.run_id, turned)
        done = {update.seq for update in turned}
        return [item for item in batch if item.seq not in done]

    def _next_batch(self, limit: int) -> list[JournalItem]:
        batch = self.journal.items(self.run_id, (ItemState.PLANNED,), limit=limit)
        if len(batch) < limit:
            batch += self.journal.items(
                self.run_id, (ItemState.QUEUED,), limit=limit - len(batch), due_by=self._now()
            )
        return batch

    def _send_collections(self, batch: Sequence[JournalItem]) -> None:
        records = [_record_for(item.row, self.rules.api_name) for item in batch]
        call_id = self.journal.mark_sending(self.run_id, [item.seq for item in batch], "collections")
        self.result.api_calls += 1
        try:
            outcomes = self._call(lambda: upsert_batch(self.connection, self.rules.api_name, records))
        except _Abandoned:
            self._in_doubt(call_id, batch, CANCELLED)
            raise Stop(CANCELLED) from None
        except UpsertInterrupted as interrupted:
            self._in_doubt(call_id, batch, interrupted.problem.sentence)
            return
        except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
            self._call_failed(call_id, batch, error)
            return
        self._record(call_id, batch, outcomes)
        self._watch_budget()

    def _send_bulk(self, items: Sequence[JournalItem]) -> None:
        nulled = [item for item in items if _nulled_by_bulk(item.row)]
        if nulled:
            # Bulk API 2.0 reads a CSV value of #N/A as null ("Valid CSV Record Rows", Bulk API 2.0
            # Developer Guide: "To set a field value to null, use a field value of #N/A"), so a
            # Subject or Description that is exactly "#N/A" goes through sObject Collections.
            log.info("run %s: %d rows with a value of #N/A sent through sObject Collections", self.run_id,
                     len(nulled))
            for start in range(0, len(nulled), UPSERT_BATCH_SIZE):
                self._check_cancel()
                self._send_collections(_distinct_keys(nulled[start:start + UPSERT_BATCH_SIZE]))
            skipped = {item.seq for item in nulled}
            items = [item for item in items if item.seq not in skipped]
            if not items:
                return
        records = [_record_for(item.row, self.rules.api_name) for item in items]
        call_id = self.journal.mark_sending(self.run_id, [item.seq for item in items], "bulk")
        counted = CountingRequester(self.connection)

        def send() -> list[UpsertOutcome]:
            return upsert_with_bulk(
                counted, self.rules.api_name, records,
                on_job_created=lambda job_id: self.journal.set_call_job(call_id, job_id),
                progress=lambda done, _total, message: self.progress(self._done + done, self._total, message),
                cancel=self.cancel,
            )

        try:
            outcomes = self._call(send)
        except _Abandoned:
            self._in_doubt(call_id, items, CANCELLED)
            raise Stop(CANCELLED) from None
        except BulkUpsertCancelled as cancelled:
            rest = self._record_known(call_id, items, cancelled.outcomes_by_index)
            self._in_doubt(call_id, rest, CANCELLED)
            raise Stop(CANCELLED) from cancelled
        except BulkUpsertInterrupted as interrupted:
            rest = self._record_known(call_id, items, interrupted.outcomes_by_index)
            doubtful = set(interrupted.in_doubt)
            self._in_doubt(call_id, [item for item in rest if _key(item) in doubtful],
                           interrupted.problem.sentence, close=False)
            self._call_failed(call_id, [item for item in rest if _key(item) not in doubtful],
                              interrupted.problem)
            return
        finally:
            # The requests sent so far; a job left running on its own sends a few more.
            self.result.api_calls += counted.requests
        self._record(call_id, items, outcomes)
        self._watch_budget()

    def _record_known(
        self, call_id: int, items: Sequence[JournalItem], outcomes: dict[int, UpsertOutcome]
    ) -> list[JournalItem]:
        """Record every known outcome of a Bulk API call's rows, by index; return the rows without one."""
        known = sorted(outcomes)
        if known:
            self._record(call_id, [items[index] for index in known], [outcomes[index] for index in known],
                         close=False)
        return [item for index, item in enumerate(items) if index not in outcomes]

    def _call_failed(self, call_id: int, batch: Sequence[JournalItem], error: BaseException) -> None:
        """Settle the rows of a call that failed as a whole.

        After a passing error they are queued. After an ended sign-in, or a 4xx
        response with a Salesforce error code (the request was refused, so it
        wrote nothing), they are put back and the apply stops. After anything
        else (a network error, a gateway's 502 or 504 without an error code)
        the call may have reached Salesforce, so they are in doubt.
        """
        problem = error if isinstance(error, SalesforceProblem) else explain(error)
        code = problem.error_code or ""
        if isinstance(error, requests.RequestException):
            self._in_doubt(call_id, batch, problem.sentence)
            return
        if code in TRANSIENT_ERRORS and not isinstance(problem, SignInRequired):
            self._queue(call_id, batch, code, problem.sentence)
        elif isinstance(problem, SignInRequired) or (code and 400 <= (problem.status or 0) < 500):
            self.journal.revert_call(self.run_id, call_id, problem.sentence, [item.seq for item in batch])
            raise Stop(problem.sentence, problem.error_code)
        else:
            log.info("run %s: call %d failed without a Salesforce error code (%s), so its %d rows are in "
                     "doubt", self.run_id, call_id, problem.status, len(batch))
            self._in_doubt(call_id, batch, problem.sentence)
            return
        if code == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT_MARK in f"{problem.sentence} {problem.details}":
            message = (
                "The org's daily API requests are used up: retry the queue once its 24-hour allowance "
                "has room again."
            )
            self._queue_open_rows(code, message)
            raise Stop(message, code)

    def _queue_open_rows(self, code: str, message: str) -> None:
        due = self._now() + self.settings.max_retry_seconds
        moved = self.journal.queue_open_rows(self.run_id, code, message, due)
        log.info("run %s: %d rows not sent yet moved to the backfill queue (%s)", self.run_id, moved, code)

    def _in_doubt(
        self, call_id: int, batch: Sequence[JournalItem], message: str, *, close: bool = True
    ) -> None:
        updates = [ItemUpdate(item.seq, ItemState.IN_DOUBT, error_code="NO_RESPONSE", message=message)
                   for item in batch]
        closed = call_id if close else None
        self.journal.record_outcomes(self.run_id, updates, call_id=closed, outcome=message)
        if not close:
            self.journal.record_call_states(call_id, updates)

    def _queue(self, call_id: int, batch: Sequence[JournalItem], code: str, message: str) -> None:
        updates = [self._queued(item, code, message) for item in batch]
        self.journal.record_outcomes(self.run_id, updates, call_id=call_id, outcome=message)

    def _queued(self, item: JournalItem, code: str | None, message: str) -> ItemUpdate:
        attempts = item.attempts + 1
        return ItemUpdate(item.seq, ItemState.QUEUED, error_code=code, message=message,
                          next_attempt_at=self._now() + self._backoff(attempts - 1))

    def _record(
        self,
        call_id: int,
        batch: Sequence[JournalItem],
        outcomes: Sequence[UpsertOutcome],
        *,
        close: bool = True,
    ) -> None:
        """Store each row's outcome; creates whose key was taken meanwhile are turned into updates."""
        updates: list[ItemUpdate] = []
        taken: list[JournalItem] = []
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome.success:
                state = ItemState.CREATED if outcome.created else ItemState.UPDATED
                updates.append(ItemUpdate(item.seq, state, record_id=outcome.record_id))
                self._count(item.row, outcome)
            elif item.row.action is Action.CREATE and _key_taken(outcome):
                taken.append(item)
                updates.append(ItemUpdate(item.seq, ItemState.IN_DOUBT, error_code=outcome.error_code,
                                          message=outcome.message))
            elif (outcome.error_code or "") in TRANSIENT_ERRORS:
                updates.append(self._queued(item, outcome.error_code, outcome.message))
            else:
                updates.append(self._failed(item, outcome))
        self.journal.record_outcomes(self.run_id, updates, call_id=call_id if close else None)
        if not close:
            self.journal.record_call_states(call_id, updates)
        self._done += len(batch)
        self.progress(min(self._done, self._total), self._total, f"Sent {self._done} of {self._total} Tasks")
        if taken:
            self._turn_into_updates(taken)

    def _turn_into_updates(self, taken: Sequence[JournalItem]) -> None:
        log.info("looking up %d creates again: their keys were taken after planning", len(taken))
        tasks = self._look_up([item.row for item in taken])
        if tasks is None:
            return  # They stay IN_DOUBT and are looked up again.
        self.journal.record_outcomes(self.run_id, [self._as_update(item, tasks) for item in taken])

    def _failed(self, item: JournalItem, outcome: UpsertOutcome) -> ItemUpdate:
        fix = _FIXES.get(outcome.error_code or "", _DEFAULT_FIX)
        message = f"{(outcome.message or 'Salesforce rejected the Task').rstrip('. ')}: {fix}."
        self._count(item.row, UpsertOutcome(outcome.key, False, False, outcome.record_id,
                                            outcome.error_code, message))
        return ItemUpdate(item.seq, ItemState.FAILED, error_code=outcome.error_code, message=message)

    def _count(self, row: PlanRow, outcome: UpsertOutcome) -> None:
        result = self.result
        if not outcome.success:
            result.failed += 1
        elif outcome.created:
            result.created += 1
            if self._plan_is_stale:
                self._created_rows.append(row)
        else:
            result.updated += 1
        if len(result.outcomes) < MAX_KEPT_OUTCOMES:
            result.outcomes.append((row, outcome))

    # -- waiting and cancelling ------------------------------------------------------------

    def _call(self, function: Callable[[], T]) -> T:
        """Run one API call on its own thread, so that Cancel returns within the grace period.

        A call still running when the grace period ends is left to finish on
        its own (raising _Abandoned here); its rows are recorded IN_DOUBT.

        NOTE: the org's sync lock is released when the apply returns, even while
        such a call is still in flight. A resume meanwhile looks its keys up and
        may send them again. That ends with one Task per key only when a late
        create fails: the key field must be Unique (a second create then fails
        with DUPLICATE_VALUE), or the create must carry TaskSubtype, which fails
        on an existing Task. Either failure is sent again as an update. On a key
        field that is not Unique, two creates racing each other can write two Tasks.
        """
        box: dict[str, Any] = {}
        finished = threading.Event()

        def target() -> None:
            try:
                box["value"] = function()
            except BaseException as error:
                box["error"] = error
            finally:
                finished.set()

        threading.Thread(target=target, name=f"sync-call-{self.run_id}", daemon=True).start()
        while not finished.wait(0.05):
            if self.cancel is not None and self.cancel.is_set():
                # Leave a third of the grace period for recording the rows and returning.
                if not finished.wait(self.settings.cancel_grace_seconds * 2 / 3):
                    raise _Abandoned
                break
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Stop(CANCELLED)

    def _now(self) -> float:
        # The clock never runs behind the end of the last wait, so an injected
        # ``sleep`` that does not really sleep still makes queued rows due.
        return max(time.time(), self._clock_floor)

    def _wait_until(self, wake: float) -> None:
        remaining = wake - self._now()
        while remaining > 0:
            self._check_cancel()
            step = min(remaining, _WAIT_STEP_SECONDS)
            self.sleep(step)
            remaining -= step
        self._clock_floor = max(self._clock_floor, wake)

    def _backoff(self, failures: int) -> float:
        delay: float = self.settings.first_retry_seconds * 2 ** max(failures, 0)
        return min(delay, self.settings.max_retry_seconds)


def _estimated_calls(rows: int, bulk_threshold: int) -> int:
    if rows >= bulk_threshold:
        return CALLS_PER_BULK_JOB * (2 + rows // BULK_JOB_RECORDS)
    return math.ceil(rows / UPSERT_BATCH_SIZE)


def _key(item: JournalItem) -> str:
    return row_key(item.row)


def _distinct_keys(items: Sequence[JournalItem]) -> list[JournalItem]:
    """Keep the rows up to the first repeated key: Salesforce fails every copy of a key in one call."""
    seen: set[str] = set()
    kept: list[JournalItem] = []
    for item in items:
        if _key(item) in seen:
            break
        seen.add(_key(item))
        kept.append(item)
    return kept


def _nulled_by_bulk(row: PlanRow) -> bool:
    """Tell whether a row has a text value that Bulk API 2.0 would read as null."""
    return any(value == NULL_VALUE for value in row.record.values())


def _record_for(row: PlanRow, field_name: str) -> dict[str, Any]:
    record = dict(row.record)
    record[field_name] = row.upsert_key
    return record


def _key_taken(outcome: UpsertOutcome) -> bool:
    """Tell whether a failed create means another writer took its key after planning.

    DUPLICATE_VALUE does; INVALID_FIELD_FOR_INSERT_UPDATE only when it names the
    create-only TaskSubtype, because it also means field-level security refused a field.
    """
    if outcome.error_code == "DUPLICATE_VALUE":
        return True
    return outcome.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and CREATE_ONLY_FIELD in outcome.message


def _result_row(line: ResultLine) -> ResultRow:
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
