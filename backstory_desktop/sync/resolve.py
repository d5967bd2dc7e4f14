"""Settle the rows of a sync run whose call got no response, before anything is sent again.

A row left SENDING (its process died) or IN_DOUBT (its call got no response,
or the admin cancelled while it was in flight) may or may not have been
written. A Bulk API job that carried it may even still be writing. So a resume
first waits for such jobs and settles their rows from the jobs' own results,
then looks the remaining keys up: a Task found written is done, the others are
sent again.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial
from typing import TypeVar

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.plan import Action, FieldRules, PlanRow, retry_create_as_update
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.salesforce.bulk import (
    FIRST_POLL_SECONDS,
    MAX_POLL_SECONDS,
    TERMINAL_STATES,
    BulkJobError,
    CountingRequester,
    abort_job,
    job_results,
    job_state,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain, is_daily_limit
from backstory_desktop.salesforce.tasks import KEYS_PER_QUERY, UpsertOutcome, find_tasks_by_keys
from backstory_desktop.store.journal import UNRESOLVED_STATES, ItemState, ItemUpdate, Journal, JournalItem
from backstory_desktop.sync.bulk_apply import upsert_outcome
from backstory_desktop.sync.engine_calls import Stop
from backstory_desktop.sync.settings import SyncResult, SyncSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# An estimate of how far this computer's clock and Salesforce's may disagree: a Task created up to this
# long before a call started, by this computer's clock, may still be the call's own.
CLOCK_SKEW = timedelta(minutes=5)
_FAILURES = (SalesforceError, SalesforceProblem, requests.RequestException, BulkJobError)


class _JobState(Enum):
    """The outcome of waiting for a Bulk API job of rows in doubt."""

    ENDED = "ended"
    GONE = "gone"
    UNREADABLE = "unreadable"


class LookupFailed(Exception):
    """Looking keys up failed in a way a later attempt may not."""


class InDoubtSettlement(ABC):
    """The part of an apply that settles rows left SENDING or IN_DOUBT; the apply supplies the rest."""

    connection: OrgConnection
    journal: Journal
    run_id: str
    rules: FieldRules
    settings: SyncSettings
    result: SyncResult
    _lookup_failures: int

    @abstractmethod
    def _call(self, function: Callable[[], T]) -> T: ...

    @abstractmethod
    def _check_cancel(self) -> None: ...

    @abstractmethod
    def _count(self, row: PlanRow, outcome: UpsertOutcome) -> None: ...

    @abstractmethod
    def _now(self) -> float: ...

    @abstractmethod
    def _wait_until(self, wake: float) -> None: ...

    @abstractmethod
    def _record(
        self,
        call_id: int,
        batch: Sequence[JournalItem],
        outcomes: Sequence[UpsertOutcome],
        *,
        close: bool = True,
    ) -> None: ...

    def _resolve_unresolved(self) -> None:
        """Look up the keys of rows left SENDING or IN_DOUBT, and settle each: written, or send again.

        While a Bulk API job of such rows cannot be read, nothing is looked up: the
        round counts as a failed lookup and is tried again after the back-off.
        """
        if self._lookup_failures >= self.settings.max_attempts:
            return
        if not self.journal.items(self.run_id, UNRESOLVED_STATES, limit=1):
            return
        if not self._settle_bulk_jobs():
            self._lookup_failures += 1
            return
        # Without a flag field, a Task's creator and creation time tell whether a row's call wrote it.
        call_starts = {} if self.rules.flag_field else self._call_starts()
        after = -1
        while True:
            self._check_cancel()
            items = self.journal.items(self.run_id, UNRESOLVED_STATES, limit=KEYS_PER_QUERY, after_seq=after)
            if not items:
                break
            try:
                self._resolve(items, call_starts)
            except LookupFailed:
                self._lookup_failures += 1
                return
            after = items[-1].seq
        self.journal.close_calls(self.run_id, "outcome settled by looking the keys up")

    def _settle_bulk_jobs(self) -> bool:
        """Wait for the Bulk API jobs of rows in doubt to end, then settle those rows from the jobs' results.

        A job left running by a Cancel or a killed process may still write after
        the apply that started it returned, so its rows must not be looked up and
        sent again before it ends. Returns False when a job's state cannot be read
        (its rows stay IN_DOUBT). A job that Salesforce no longer has counts as
        ended, because Bulk API 2.0 deletes jobs some days after they end, and so
        does a job whose results cannot be read: their rows are left to the lookup.
        """
        all_read = True
        for call_id, job_ids in self.journal.open_bulk_jobs(self.run_id):
            outcomes: dict[str, UpsertOutcome] = {}
            for job_id in job_ids:
                state = self._wait_for_bulk_job(job_id)
                if state is _JobState.UNREADABLE:
                    all_read = False
                if state is not _JobState.ENDED:
                    continue
                counted = CountingRequester(self.connection)
                try:
                    results = self._call(partial(job_results, counted, job_id, self.rules.api_name))
                except _FAILURES as error:
                    log.info("the results of Bulk API job %s could not be read: %s", job_id, error)
                    continue
                finally:
                    self.result.api_calls += counted.requests
                outcomes.update((result.key, upsert_outcome(result)) for result in results)
            items = [item for item in self.journal.unresolved_items_of_call(self.run_id, call_id)
                     if row_key(item.row) in outcomes]
            if items:
                log.info("run %s: %d rows settled from the results of Bulk API jobs %s", self.run_id,
                         len(items), " ".join(job_ids))
                self._record(call_id, items, [outcomes[row_key(item.row)] for item in items], close=False)
        return all_read

    def _wait_for_bulk_job(self, job_id: str) -> _JobState:
        """Wait until a job has ended, or until its state cannot be read.

        An Open job never runs, so it is aborted: its rows stay unprocessed.
        """
        interval = FIRST_POLL_SECONDS
        while True:
            self._check_cancel()
            counted = CountingRequester(self.connection)
            try:
                state = self._call(partial(job_state, counted, job_id))
                if state == "Open":
                    state = self._call(partial(abort_job, counted, job_id))
            except _FAILURES as error:
                problem = error.problem if isinstance(error, BulkJobError) else explain(error)
                if problem.status == 404 or problem.error_code == "NOT_FOUND":
                    log.info("run %s: Bulk API job %s is gone from the org, so its rows are looked up",
                             self.run_id, job_id)
                    return _JobState.GONE
                log.info("run %s: Bulk API job %s could not be read, so its rows stay in doubt: %s",
                         self.run_id, job_id, problem.sentence)
                return _JobState.UNREADABLE
            finally:
                self.result.api_calls += counted.requests
            if state in TERMINAL_STATES:
                return _JobState.ENDED
            self._wait_until(self._now() + interval)
            interval = min(interval * 2, MAX_POLL_SECONDS)

    def _call_starts(self) -> dict[int, datetime]:
        """Return when the first call that carried each row started, by row sequence number.

        Any of a row's calls may have written its Task, so the first one bounds its CreatedDate.
        """
        starts: dict[int, datetime] = {}
        for call in self.journal.call_history(self.run_id):
            started = datetime.fromisoformat(str(call["started_at"]))
            for seq, _before, _after in call["states"]:
                starts.setdefault(int(seq), started)
        return starts

    def _resolve(self, items: Sequence[JournalItem], call_starts: dict[int, datetime]) -> None:
        tasks = self._look_up([item.row for item in items])
        if tasks is None:
            self.journal.record_outcomes(self.run_id, [
                ItemUpdate(item.seq, ItemState.IN_DOUBT, item.record_id, item.error_code, item.message)
                for item in items
            ])
            raise LookupFailed
        updates = [self._settle(item, tasks, call_starts.get(item.seq)) for item in items]
        self.journal.record_outcomes(self.run_id, updates)

    def _settle(
        self, item: JournalItem, tasks: Sequence[TaskRecord], call_start: datetime | None
    ) -> ItemUpdate:
        """Decide what a row whose call got no response needs, from the Tasks that have its key now.

        ``call_start`` is when the row's first call started; it is used only without a flag field.
        """
        row = item.row
        if row.action is Action.UPDATE:
            # An update sent twice sets the same values twice, so it is simply sent again.
            return self._again(item, "sent again: its earlier call got no response")
        live = live_tasks(row, tasks, self.rules)
        if self.rules.flag_field:
            mine = [task for task in live if task.created_by_backstory]
        else:
            # Without a flag field, only a Task that the sync user created after the row's first
            # call started can be the one this row wrote.
            mine = [task for task in live if task.created_by_id == self.connection.user_id
                    and _created_since(task, call_start)]
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
        if update is not None:
            return ItemUpdate(item.seq, ItemState.PLANNED, row=update)
        live = live_tasks(item.row, tasks, self.rules)
        if len(live) > 1:
            message = f"{len(live)} Tasks hold this key now: keep one in the Conflicts step, then plan again"
        elif deleted_tasks(item.row, tasks, self.rules):
            message = "a deleted Task has this key: restore it or empty the recycle bin, then plan again"
        else:
            message = (
                "Salesforce reported this key as taken, but no Task with it was found: check the sync "
                "user's access to Tasks, then plan again"
            )
        key = item.row.upsert_key or ""
        self._count(item.row, UpsertOutcome(key, False, False, None, "DUPLICATE_VALUE", message))
        return ItemUpdate(item.seq, ItemState.FAILED, error_code="DUPLICATE_VALUE", message=message)

    def _look_up(self, rows: Sequence[PlanRow]) -> list[TaskRecord] | None:
        """Return every Task holding one of the rows' keys, or None when the lookup failed for now."""
        keys = sorted({spelling for row in rows for spelling in key_spellings(row_key(row))})
        try:
            found = self._call(lambda: find_tasks_by_keys(
                self.connection, self.rules.api_name, keys, flag_field=self.rules.flag_field
            ))
        except SignInRequired as ended:
            raise Stop(ended.sentence, ended.error_code) from ended
        except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
            problem = explain(error)
            log.info("looking up %d keys of run %s failed: %s", len(keys), self.run_id, problem.sentence)
            if is_daily_limit(problem):
                raise Stop(problem.sentence, problem.error_code) from error
            return None
        finally:
            # An estimate: each query carries up to 2 * KEYS_PER_QUERY spellings.
            self.result.api_calls += math.ceil(len(keys) / (2 * KEYS_PER_QUERY)) or 1
        return list({task.id: task for tasks in found.values() for task in tasks}.values())


def _created_since(task: TaskRecord, call_start: datetime | None) -> bool:
    """Tell whether a Task was created no earlier than ``call_start``, less the allowed clock skew."""
    if call_start is None:
        return False
    try:
        created = datetime.fromisoformat(task.created_date)
    except ValueError:
        log.info("Task %s has a CreatedDate that cannot be read: %r", task.id, task.created_date)
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created >= call_start - CLOCK_SKEW


def row_key(row: PlanRow) -> str:
    """Return the key a row is sent with."""
    return row.upsert_key or row.key or ""


def live_tasks(row: PlanRow, tasks: Sequence[TaskRecord], rules: FieldRules) -> list[TaskRecord]:
    """Return the Tasks not deleted that hold one of the row's key spellings."""
    return [task for task in _holding(row, tasks, rules) if not task.is_deleted]


def deleted_tasks(row: PlanRow, tasks: Sequence[TaskRecord], rules: FieldRules) -> list[TaskRecord]:
    """Return the deleted Tasks that hold one of the row's key spellings."""
    return [task for task in _holding(row, tasks, rules) if task.is_deleted]


def _holding(row: PlanRow, tasks: Sequence[TaskRecord], rules: FieldRules) -> list[TaskRecord]:
    wanted = {rules.fold(spelling) for spelling in key_spellings(row_key(row))}
    return [task for task in tasks if task.key and rules.fold(task.key) in wanted]
