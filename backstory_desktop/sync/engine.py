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
fails with DUPLICATE_VALUE, or with INVALID_FIELD_FOR_INSERT_UPDATE because it
carries the create-only TaskSubtype. It is looked up again and sent as an
update that only fills what the Task left empty.

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
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.plan import Action, FieldRules, PlanRow, retry_create_as_update
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.salesforce.bulk import job_state
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain
from backstory_desktop.salesforce.tasks import (
    KEYS_PER_QUERY,
    UPSERT_BATCH_SIZE,
    UpsertCancelled,
    UpsertInterrupted,
    UpsertOutcome,
    find_tasks_by_keys,
    upsert_batch,
)
from backstory_desktop.store.journal import (
    UNRESOLVED_STATES,
    ItemState,
    ItemUpdate,
    Journal,
    JournalItem,
    RunState,
    RunSummary,
)
from backstory_desktop.sync.bulk_apply import NOT_PROCESSED, upsert_with_bulk
from backstory_desktop.sync.result_files import ResultFiles, ResultRow, result_folder, write_result_files

log = logging.getLogger(__name__)

T = TypeVar("T")

# Error codes of a create whose key another writer took after the plan was built.
KEY_TAKEN_ERRORS = ("DUPLICATE_VALUE", "INVALID_FIELD_FOR_INSERT_UPDATE")
# Error codes a later attempt may not get: the row goes to the backfill queue.
TRANSIENT_ERRORS = frozenset({
    "REQUEST_LIMIT_EXCEEDED",
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "UNKNOWN_EXCEPTION",
    "INVALID_SESSION_ID",
    NOT_PROCESSED,
})
# REQUEST_LIMIT_EXCEEDED names the limit: "TotalRequests Limit exceeded." is the
# daily allocation, which no retry within minutes gets past.
DAILY_LIMIT_MARK = "TotalRequests"
CANCELLED = "cancelled by the user"
# An estimate of the calls of one Bulk API 2.0 job: create, upload, close, a few polls,
# three result reads.
CALLS_PER_BULK_JOB = 12
BULK_JOB_RECORDS = 10_000
# Rows handed to one upsert_with_bulk call, so that memory stays bounded on long runs.
BULK_SLICE_ROWS = 50_000
# Outcomes kept in SyncResult.outcomes; the journal keeps every one.
MAX_KEPT_OUTCOMES = 10_000
_WAIT_STEP_SECONDS = 0.25

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
    "INVALID_FIELD_FOR_INSERT_UPDATE": _KEY_HELD,
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": (
        "a trigger or flow on Task refused it, so fix that automation and retry"
    ),
}
_DEFAULT_FIX = "correct what Salesforce names, then plan and apply again"


@dataclass(frozen=True)
class SyncSettings:
    """Settings of an apply: when to use Bulk API 2.0, retries, the API reserve and Cancel."""

    bulk_threshold: int = 2000  # rows to send at or above which Bulk API 2.0 is used
    max_attempts: int = 6  # sends of one row in one apply before it waits for a retry
    first_retry_seconds: float = 2.0  # back-off after the first failure, doubled after each
    max_retry_seconds: float = 120.0
    api_reserve_fraction: float = 0.1  # keep this share of the daily API requests unspent
    cancel_grace_seconds: float = 1.5  # Cancel returns within this, leaving the call IN_DOUBT

    def __post_init__(self) -> None:
        if self.bulk_threshold < 1 or self.max_attempts < 1:
            raise ValueError(
                f"bulk_threshold ({self.bulk_threshold}) and max_attempts ({self.max_attempts}) "
                "must be 1 or more"
            )
        if not 0.0 <= self.api_reserve_fraction < 1.0:
            raise ValueError(f"api_reserve_fraction must be from 0 up to 1, not {self.api_reserve_fraction}")
        if min(self.first_retry_seconds, self.max_retry_seconds, self.cancel_grace_seconds) < 0:
            raise ValueError("retry and grace seconds must not be negative")


@dataclass
class SyncResult:
    """Counts and per-message outcomes of one apply of a run.

    ``created``, ``updated`` and ``failed`` count the rows this apply settled.
    ``not_sent`` counts rows still PLANNED when it ended, ``queued`` the backfill
    queue, and ``in_doubt`` lists the keys whose call got no response and could not
    be looked up yet. ``stopped_because`` gives the reason an apply ended early,
    ``stop_error_code`` the error code behind it (such as SIGN_IN_AGAIN).
    ``api_calls`` counts the API requests this apply sent. ``outcomes`` keeps the
    first 10,000 outcomes; the journal has all of them.
    """

    created: int = 0
    updated: int = 0
    failed: int = 0
    not_sent: int = 0
    stopped_because: str = ""
    stop_error_code: str | None = None
    in_doubt: list[str] = field(default_factory=list)
    outcomes: list[tuple[PlanRow, UpsertOutcome]] = field(default_factory=list)
    run_id: str | None = None
    queued: int = 0
    result_files: ResultFiles | None = None
    api_calls: int = 0
    failure_counts: dict[str, tuple[int, str]] = field(default_factory=dict)

    def failures_by_code(self) -> dict[str, tuple[int, str]]:
        """Count failed records per Salesforce error code, with one message as an example."""
        if self.failure_counts:
            return dict(self.failure_counts)
        summary: dict[str, tuple[int, str]] = {}
        for _, outcome in self.outcomes:
            if not outcome.success:
                code = outcome.error_code or "UNKNOWN"
                count, example = summary.get(code, (0, outcome.message or ""))
                summary[code] = (count + 1, example)
        return summary


def apply_run(
    connection: OrgConnection,
    journal: Journal,
    run_id: str,
    *,
    settings: SyncSettings = SyncSettings(),
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
    settings: SyncSettings = SyncSettings(),
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


class _Stop(Exception):
    """Ends an apply early with a reason for the admin."""

    def __init__(self, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_code = error_code


class _Abandoned(Exception):
    """The admin cancelled and the call got no response within the grace period."""


class _LookupFailed(Exception):
    """Looking keys up failed in a way a later attempt may not."""


class _Apply:
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
        stop: _Stop | None = None
        try:
            self._check_cancel()
            self.journal.set_run_state(self.run_id, RunState.APPLYING)
            self._check_budget()
            self._apply_until_done()
        except _Stop as stopped:
            stop = stopped
        except _Abandoned:
            # A lookup left to finish on its own changed nothing in the journal.
            stop = _Stop(CANCELLED)
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
            self._wait_until(wake)

    def _next_wake(self) -> float | None:
        due = self.journal.next_due(self.run_id)
        unresolved = self.journal.items(self.run_id, UNRESOLVED_STATES, limit=1)
        if unresolved and self._lookup_failures < self.settings.max_attempts:
            retry_at = self._now() + self._backoff(self._lookup_failures)
            due = retry_at if due is None else min(due, retry_at)
        return due

    def _finish(self, stop: _Stop | None) -> None:
        states = self.journal.state_counts(self.run_id)
        result = self.result
        result.not_sent = states.get(ItemState.PLANNED, 0)
        result.queued = states.get(ItemState.QUEUED, 0)
        result.in_doubt = self.journal.keys_in_states(self.run_id, UNRESOLVED_STATES)
        result.failure_counts = self.journal.failures_by_code(self.run_id)
        if stop is not None:
            result.stopped_because, result.stop_error_code = stop.reason, stop.error_code
        elif result.in_doubt:
            result.stopped_because = (
                f"{len(result.in_doubt)} Tasks got no response from Salesforce and could not be looked up; "
                "resume the run to look them up again"
            )
            result.stop_error_code = "IN_DOUBT"
        finished = not (result.stopped_because or result.not_sent or result.in_doubt)
        state = RunState.FINISHED if finished else RunState.STOPPED
        self.journal.set_run_state(self.run_id, state, result.stopped_because)
        result.result_files = self._write_result_files()

    def _write_result_files(self) -> ResultFiles | None:
        try:
            folder = result_folder(self.run_id)
            rows = (_result_row(item) for item in self.journal.iter_items(self.run_id))
            files = write_result_files(folder, rows)
        except OSError as error:
            log.warning("Writing the result files of run %s failed: %s", self.run_id, error)
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
                result.queued, result.not_sent, len(result.in_doubt), result.api_calls,
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
            raise _Stop(problem.sentence, problem.error_code) from problem
        finally:
            self.result.api_calls += 1
        if requests_today is None:
            log.info("the org's daily API requests could not be read, so run %s starts unchecked",
                     self.run_id)
            return
        reserve = math.ceil(requests_today.max * self.settings.api_reserve_fraction)
        available = requests_today.remaining - reserve
        if needed > available:
            raise _Stop(
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
        raise _Stop(message, "API_RESERVE")

    # -- rows left in doubt ----------------------------------------------------------------

    def _resolve_unresolved(self) -> None:
        """Look up the keys of rows left SENDING or IN_DOUBT, and settle each: written, or send again."""
        if self._lookup_failures >= self.settings.max_attempts:
            return
        if not self.journal.items(self.run_id, UNRESOLVED_STATES, limit=1):
            return
        self._wait_for_bulk_jobs()
        after = -1
        while True:
            self._check_cancel()
            items = self.journal.items(self.run_id, UNRESOLVED_STATES, limit=KEYS_PER_QUERY, after_seq=after)
            if not items:
                break
            try:
                self._resolve(items)
            except _LookupFailed:
                self._lookup_failures += 1
                return
            after = items[-1].seq
        self.journal.close_calls(self.run_id, "outcome settled by looking the keys up")

    def _wait_for_bulk_jobs(self) -> None:
        """Wait until Bulk API jobs an earlier process started have stopped writing."""
        for _call_id, job_ids in self.journal.open_bulk_jobs(self.run_id):
            for job_id in job_ids:
                while True:
                    self._check_cancel()
                    try:
                        state = self._call(partial(job_state, self.connection, job_id))
                    except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
                        log.info("Bulk API job %s could not be read: %s", job_id, explain(error).sentence)
                        break
                    finally:
                        self.result.api_calls += 1
                    if state not in ("UploadComplete", "InProgress"):
                        break
                    self._wait_until(self._now() + 1.0)

    def _resolve(self, items: Sequence[JournalItem]) -> None:
        tasks = self._look_up([item.row for item in items])
        if tasks is None:
            self.journal.record_outcomes(self.run_id, [
                ItemUpdate(item.seq, ItemState.IN_DOUBT, message=item.message) for item in items
            ])
            raise _LookupFailed
        updates = [self._settle(item, tasks) for item in items]
        self.journal.record_outcomes(self.run_id, updates)

    def _settle(self, item: JournalItem, tasks: Sequence[TaskRecord]) -> ItemUpdate:
        """Decide what a row whose call got no response needs, from the Tasks that have its key now."""
        row = item.row
        if row.action is Action.UPDATE:
            # An update sent twice sets the same values twice, so it is simply sent again.
            return self._again(item, "sent again: its earlier call got no response")
        live = _live_tasks(row, tasks, self.rules)
        mine = [task for task in live if task.created_by_backstory or not self.rules.flag_field]
        if len(live) == 1 and mine:
            outcome = UpsertOutcome(row.upsert_key or "", True, True, live[0].id, None, "")
            self._count(row, outcome)
            return ItemUpdate(item.seq, ItemState.CREATED, record_id=live[0].id)
        if live:
            return self._as_update(item, tasks)
        return self._again(item, "sent again: its earlier call got no response and wrote nothing")

    def _again(self, item: JournalItem, message: str) -> ItemUpdate:
        if item.attempts >= self.settings.max_attempts:
            return ItemUpdate(item.seq, ItemState.QUEUED, error_code="NO_RESPONSE", message=message,
                              next_attempt_at=self._now())
        return ItemUpdate(item.seq, ItemState.PLANNED, message=message)

    def _as_update(self, item: JournalItem, tasks: Sequence[TaskRecord]) -> ItemUpdate:
        update = retry_create_as_update(item.row, tasks, self.rules)
        if update is None:
            live = _live_tasks(item.row, tasks, self.rules)
            if len(live) > 1:
                message = (
                    f"{len(live)} Tasks hold this key now: keep one in the Conflicts step, then plan again"
                )
            else:
                message = (
                    "a deleted Task holds this key: restore it or empty the recycle bin, then plan again"
                )
            key = item.row.upsert_key or ""
            self._count(item.row, UpsertOutcome(key, False, False, None, "DUPLICATE_VALUE", message))
            return ItemUpdate(item.seq, ItemState.FAILED, error_code="DUPLICATE_VALUE", message=message)
        return ItemUpdate(item.seq, ItemState.PLANNED, row=update)

    def _look_up(self, rows: Sequence[PlanRow]) -> list[TaskRecord] | None:
        """Return every Task holding one of the rows' keys, or None when the lookup failed for now."""
        keys = sorted({spelling for row in rows for spelling in key_spellings(_row_key(row))})
        try:
            found = self._call(lambda: find_tasks_by_keys(
                self.connection, self.rules.api_name, keys, flag_field=self.rules.flag_field
            ))
        except SignInRequired as ended:
            raise _Stop(ended.sentence, ended.error_code) from ended
        except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
            problem = explain(error)
            log.info("looking up %d keys of run %s failed: %s", len(keys), self.run_id, problem.sentence)
            if problem.error_code == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT_MARK in problem.details:
                raise _Stop(problem.sentence, problem.error_code) from error
            return None
        finally:
            self.result.api_calls += math.ceil(len(keys) / (2 * KEYS_PER_QUERY)) or 1
        return list({task.id: task for tasks in found.values() for task in tasks}.values())

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
            if use_bulk:
                self._send_bulk(batch)
            else:
                self._send_collections(_distinct_keys(batch))

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
            raise _Stop(CANCELLED) from None
        except UpsertInterrupted as interrupted:
            self._in_doubt(call_id, batch, interrupted.problem.sentence)
            return
        except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
            self._call_failed(call_id, batch, error)
            return
        self._record(call_id, batch, outcomes)
        self._watch_budget()

    def _send_bulk(self, items: Sequence[JournalItem]) -> None:
        records = [_record_for(item.row, self.rules.api_name) for item in items]
        call_id = self.journal.mark_sending(self.run_id, [item.seq for item in items], "bulk")
        self.result.api_calls += CALLS_PER_BULK_JOB * (2 + len(items) // BULK_JOB_RECORDS)

        def send() -> list[UpsertOutcome]:
            return upsert_with_bulk(
                self.connection, self.rules.api_name, records,
                on_job_created=lambda job_id: self.journal.set_call_job(call_id, job_id),
                progress=lambda done, _total, message: self.progress(self._done + done, self._total, message),
                cancel=self.cancel,
            )

        try:
            outcomes = self._call(send)
        except _Abandoned:
            self._in_doubt(call_id, items, CANCELLED)
            raise _Stop(CANCELLED) from None
        except UpsertCancelled as cancelled:
            self._record(call_id, items[: len(cancelled.outcomes)], cancelled.outcomes, close=False)
            self._in_doubt(call_id, items[len(cancelled.outcomes) :], CANCELLED)
            raise _Stop(CANCELLED) from cancelled
        except UpsertInterrupted as interrupted:
            answered = len(interrupted.outcomes)
            self._record(call_id, items[:answered], interrupted.outcomes, close=False)
            rest = items[answered:]
            doubtful = set(interrupted.in_doubt)
            self._in_doubt(call_id, [item for item in rest if _key(item) in doubtful],
                           interrupted.problem.sentence, close=False)
            self._call_failed(call_id, [item for item in rest if _key(item) not in doubtful],
                              interrupted.problem)
            return
        self._record(call_id, items, outcomes)
        self._watch_budget()

    def _call_failed(self, call_id: int, batch: Sequence[JournalItem], error: BaseException) -> None:
        """Settle the rows of a call that failed as a whole.

        After a network error they are in doubt, after a passing error queued;
        after any other error they are put back and the apply stops.
        """
        problem = error if isinstance(error, SalesforceProblem) else explain(error)
        if isinstance(error, requests.RequestException):
            self._in_doubt(call_id, batch, problem.sentence)
            return
        code = problem.error_code or ""
        if isinstance(problem, SignInRequired) or code not in TRANSIENT_ERRORS:
            self.journal.revert_call(self.run_id, call_id, problem.sentence, [item.seq for item in batch])
            raise _Stop(problem.sentence, problem.error_code)
        self._queue(call_id, batch, code, problem.sentence)
        if code == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT_MARK in f"{problem.sentence} {problem.details}":
            message = (
                "The org's daily API requests are used up: retry the queue once its 24-hour allowance "
                "has room again."
            )
            self._queue_open_rows(code, message)
            raise _Stop(message, code)

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
            elif item.row.action is Action.CREATE and outcome.error_code in KEY_TAKEN_ERRORS:
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
        message = f"{(outcome.message or 'Salesforce refused the Task').rstrip('. ')}: {fix}."
        self._count(item.row, UpsertOutcome(outcome.key, False, False, outcome.record_id,
                                            outcome.error_code, message))
        return ItemUpdate(item.seq, ItemState.FAILED, error_code=outcome.error_code, message=message)

    def _count(self, row: PlanRow, outcome: UpsertOutcome) -> None:
        result = self.result
        if not outcome.success:
            result.failed += 1
        elif outcome.created:
            result.created += 1
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
        may send them again. That still ends with one Task per key: an upsert by
        external ID matches the Task the first call wrote, and a create that
        races it fails as a duplicate and is sent again as an update.
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
            raise _Stop(CANCELLED)

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
    return _row_key(item.row)


def _row_key(row: PlanRow) -> str:
    return row.upsert_key or row.key or ""


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


def _record_for(row: PlanRow, field_name: str) -> dict[str, Any]:
    record = dict(row.record)
    record[field_name] = row.upsert_key
    return record


def _live_tasks(row: PlanRow, tasks: Sequence[TaskRecord], rules: FieldRules) -> list[TaskRecord]:
    wanted = {rules.fold(spelling) for spelling in key_spellings(_row_key(row))}
    return [task for task in tasks if task.key and rules.fold(task.key) in wanted and not task.is_deleted]


def _result_row(item: JournalItem) -> ResultRow:
    return ResultRow(
        source_ref=item.row.source_ref,
        key=item.row.key,
        action=item.row.action.value,
        subject=item.row.subject,
        record_id=item.record_id,
        status=item.state.value,
        error_code=item.error_code,
        message=item.message or (item.row.reason if item.state is ItemState.SKIPPED else ""),
    )
