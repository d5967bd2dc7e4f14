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
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain
from backstory_desktop.salesforce.tasks import KEYS_PER_QUERY, UpsertOutcome, find_tasks_by_keys
from backstory_desktop.store.journal import UNRESOLVED_STATES, ItemState, ItemUpdate, Journal, JournalItem
from backstory_desktop.sync.bulk_apply import upsert_outcome
from backstory_desktop.sync.settings import SyncResult, SyncSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# REQUEST_LIMIT_EXCEEDED names the limit: "TotalRequests Limit exceeded." is the
# daily allocation, which no retry within minutes gets past.
DAILY_LIMIT_MARK = "TotalRequests"
_FAILURES = (SalesforceError, SalesforceProblem, requests.RequestException, BulkJobError)


class Stop(Exception):
    """Ends an apply early with a reason for the admin."""

    def __init__(self, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_code = error_code


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
        """Look up the keys of rows left SENDING or IN_DOUBT, and settle each: written, or send again."""
        if self._lookup_failures >= self.settings.max_attempts:
            return
        if not self.journal.items(self.run_id, UNRESOLVED_STATES, limit=1):
            return
        self._settle_bulk_jobs()
        after = -1
        while True:
            self._check_cancel()
            items = self.journal.items(self.run_id, UNRESOLVED_STATES, limit=KEYS_PER_QUERY, after_seq=after)
            if not items:
                break
            try:
                self._resolve(items)
            except LookupFailed:
                self._lookup_failures += 1
                return
            after = items[-1].seq
        self.journal.close_calls(self.run_id, "outcome settled by looking the keys up")

    def _settle_bulk_jobs(self) -> None:
        """Wait for the Bulk API jobs of rows in doubt to end, then settle those rows from the jobs' results.

        A job left running by a Cancel or a killed process may still write after
        the apply that started it returned, so its rows are never sent again
        before it ends. Rows whose job cannot be read are left to the lookup.
        """
        for call_id, job_ids in self.journal.open_bulk_jobs(self.run_id):
            outcomes: dict[str, UpsertOutcome] = {}
            for job_id in job_ids:
                if not self._wait_for_bulk_job(job_id):
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

    def _wait_for_bulk_job(self, job_id: str) -> bool:
        """Wait until a job has ended; returns False when it cannot be read.

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
                log.info("Bulk API job %s could not be read: %s", job_id, explain(error).sentence
                         if not isinstance(error, BulkJobError) else error.problem.sentence)
                return False
            finally:
                self.result.api_calls += counted.requests
            if state in TERMINAL_STATES:
                return True
            self._wait_until(self._now() + interval)
            interval = min(interval * 2, MAX_POLL_SECONDS)

    def _resolve(self, items: Sequence[JournalItem]) -> None:
        tasks = self._look_up([item.row for item in items])
        if tasks is None:
            self.journal.record_outcomes(self.run_id, [
                ItemUpdate(item.seq, ItemState.IN_DOUBT, item.record_id, item.error_code, item.message)
                for item in items
            ])
            raise LookupFailed
        updates = [self._settle(item, tasks) for item in items]
        self.journal.record_outcomes(self.run_id, updates)

    def _settle(self, item: JournalItem, tasks: Sequence[TaskRecord]) -> ItemUpdate:
        """Decide what a row whose call got no response needs, from the Tasks that have its key now."""
        row = item.row
        if row.action is Action.UPDATE:
            # An update sent twice sets the same values twice, so it is simply sent again.
            return self._again(item, "sent again: its earlier call got no response")
        live = live_tasks(row, tasks, self.rules)
        if self.rules.flag_field:
            mine = [task for task in live if task.created_by_backstory]
        else:
            # Without a flag field, only the sync user's own Task can be the one this row wrote.
            mine = [task for task in live if task.created_by_id == self.connection.user_id]
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
            if problem.error_code == "REQUEST_LIMIT_EXCEEDED" and DAILY_LIMIT_MARK in problem.details:
                raise Stop(problem.sentence, problem.error_code) from error
            return None
        finally:
            # An estimate: each query carries up to 2 * KEYS_PER_QUERY spellings.
            self.result.api_calls += math.ceil(len(keys) / (2 * KEYS_PER_QUERY)) or 1
        return list({task.id: task for tasks in found.values() for task in tasks}.values())


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
