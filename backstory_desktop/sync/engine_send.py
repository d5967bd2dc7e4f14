"""Sending an apply's rows, and recording what Salesforce did with each.

Rows go out as sObject Collections upserts, or through Bulk API 2.0 jobs when
the rows to send reach ``SyncSettings.bulk_threshold``. Each call's rows are
marked SENDING before it leaves and settled after it: written, turned into an
update, queued after a passing failure, FAILED with a fix, or IN_DOUBT when
the call got no response.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.plan import CREATE_ONLY_FIELD, Action, FieldRules, PlanRow
from backstory_desktop.salesforce.bulk import NULL_VALUE, CountingRequester
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain, is_daily_limit
from backstory_desktop.salesforce.tasks import (
    KEYS_PER_QUERY,
    UPSERT_BATCH_SIZE,
    UpsertInterrupted,
    UpsertOutcome,
    upsert_batch,
)
from backstory_desktop.store.journal import ItemState, ItemUpdate, JournalItem
from backstory_desktop.sync.bulk_apply import (
    NOT_PROCESSED,
    BulkUpsertCancelled,
    BulkUpsertInterrupted,
    upsert_with_bulk,
)
from backstory_desktop.sync.engine_budget import BULK_JOB_RECORDS, ApiBudget
from backstory_desktop.sync.engine_calls import CANCELLED, CallAbandoned, Stop
from backstory_desktop.sync.resolve import InDoubtSettlement, live_tasks, row_key

log = logging.getLogger(__name__)

# Error codes that a later attempt may pass: the row goes to the backfill queue.
TRANSIENT_ERRORS = frozenset({
    "REQUEST_LIMIT_EXCEEDED",
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "UNKNOWN_EXCEPTION",
    "INVALID_SESSION_ID",
    NOT_PROCESSED,
})
# Rows handed to one upsert_with_bulk call: one job's worth, so that memory stays bounded and a
# kill loses at most one job's results to read again.
BULK_SLICE_ROWS = BULK_JOB_RECORDS
# Outcomes kept in SyncResult.outcomes; the journal keeps every one.
MAX_KEPT_OUTCOMES = 10_000
# A plan older than this may miss Tasks that another writer (the cadence tool, say) created since under
# another spelling of a key ("<k>" or "k"), and an upsert by the planned spelling does not match those.
# So its creates are looked up again just before they are sent, at one query per KEYS_PER_QUERY creates.
# A fresher plan skips that lookup, so 10,000 rows still take about 51 calls through sObject Collections
# (Bulk threshold above 10,000).
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


class RowSender(ApiBudget, InDoubtSettlement):
    """The part of an apply that sends open rows and records their outcomes."""

    rules: FieldRules
    progress: ProgressCallback
    cancel: threading.Event | None
    _done: int
    _total: int
    _plan_is_stale: bool
    _created_rows: list[PlanRow]

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
        except CallAbandoned:
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
        except CallAbandoned:
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
        if is_daily_limit(problem):
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

    DUPLICATE_VALUE does; INVALID_FIELD_FOR_INSERT_UPDATE only when its fields name the
    create-only TaskSubtype, because it also means field-level security refused a field.
    """
    if outcome.error_code == "DUPLICATE_VALUE":
        return True
    return outcome.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and CREATE_ONLY_FIELD in outcome.fields
