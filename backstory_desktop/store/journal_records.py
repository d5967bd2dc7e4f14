"""The records of the sync journal: row and run states, and the rows and runs it returns.

Also how a plan row is written to the items table and read back from it.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from backstory_desktop.core.plan import Action, FieldRules, PlanRow, ReasonCode
from backstory_desktop.core.records import TaskRecord


class ItemState(StrEnum):
    """The state of one plan row: not sent yet, on its way, written, or why not."""

    PLANNED = "planned"  # a create or update not sent yet
    SKIPPED = "skipped"  # a conflict, invalid or excluded row: never sent
    SENDING = "sending"  # committed just before its call left; the outcome is not recorded yet
    CREATED = "created"
    UPDATED = "updated"
    FAILED = "failed"  # Salesforce refused it for a reason a retry does not fix
    QUEUED = "queued"  # a passing failure: sent again after ``next_attempt_at``
    IN_DOUBT = "in_doubt"  # its call got no response, so its key is looked up before it is sent again


# States after which a row is never sent again, so its e-mail body is dropped from the journal.
SETTLED_STATES = (ItemState.CREATED, ItemState.UPDATED, ItemState.FAILED, ItemState.SKIPPED)
# States of rows whose outcome is not known yet, or that still have to be sent.
OPEN_STATES = (ItemState.PLANNED, ItemState.SENDING, ItemState.IN_DOUBT)
UNRESOLVED_STATES = (ItemState.SENDING, ItemState.IN_DOUBT)


class RunState(StrEnum):
    """The state of a run: planned only, being applied (or killed while it was), stopped, or finished."""

    PLANNED = "planned"
    APPLYING = "applying"
    STOPPED = "stopped"
    FINISHED = "finished"


@dataclass(frozen=True)
class RunSummary:
    """One run as the history lists it."""

    run_id: str
    org_id: str
    instance_url: str
    username: str
    source: str
    source_kind: str
    field_api_name: str
    created_at: datetime
    state: RunState
    stop_reason: str
    counts: Mapping[str, int]  # planned actions: create, update, conflict, invalid, excluded
    states: Mapping[ItemState, int]  # where each row is now
    result_folder: Path | None  # the folder of success.csv and error.csv, once written
    queued_to_retry: int = 0  # QUEUED rows below their attempt limit, which the next apply sends again

    @property
    def work_left(self) -> int:
        """Rows still to send or to resolve: the open rows and the queued rows with attempts left.

        A run with none is over. Its queued rows that used up their attempts wait for a retry
        of the backfill queue, which raises their attempt limit.
        """
        return sum(self.states.get(state, 0) for state in OPEN_STATES) + self.queued_to_retry


@dataclass(frozen=True)
class QueuedItem:
    """A row in the backfill queue: sent again after ``next_attempt_at``."""

    seq: int
    key: str | None
    source_ref: str
    subject: str
    attempts: int
    next_attempt_at: datetime | None
    error_code: str | None
    message: str


@dataclass(frozen=True)
class ItemOutcome:
    """The state and outcome of one plan row, as the plan table shows it."""

    seq: int
    state: ItemState
    record_id: str | None
    error_code: str | None
    message: str


@dataclass(frozen=True)
class ResultLine:
    """The columns of one row that the result files need, read without the row's record."""

    source_ref: str
    key: str | None
    action: str
    subject: str
    reason: str
    state: ItemState
    record_id: str | None
    error_code: str | None
    message: str


@dataclass(frozen=True)
class JournalItem:
    """One plan row of a run and where it is."""

    seq: int
    row: PlanRow
    state: ItemState
    attempts: int
    record_id: str | None
    error_code: str | None
    message: str


@dataclass(frozen=True)
class ItemUpdate:
    """A new state for one row; ``row`` replaces the plan row (a create turned into an update)."""

    seq: int
    state: ItemState
    record_id: str | None = None
    error_code: str | None = None
    message: str = ""
    next_attempt_at: float | None = None  # seconds since the epoch
    row: PlanRow | None = None


# The items columns that ``queued_item`` reads, in its order.
QUEUED_COLUMNS = (
    "seq, COALESCE(upsert_key, key), source_ref, subject, attempts, next_attempt_at, error_code, message"
)
# The items columns that ``journal_item`` reads, in its order.
ITEM_COLUMNS = (
    "seq, action, source_ref, key, subject, reason, reason_code, upsert_key, existing, record, state, "
    "attempts, record_id, error_code, message"
)


def run_summary(row: sqlite3.Row) -> RunSummary:
    """Read one runs row as the history lists it, selected with a ``queued_to_retry`` count column."""
    actions = json.loads(row["action_counts"])
    states = json.loads(row["state_counts"])
    return RunSummary(
        run_id=row["run_id"],
        org_id=row["org_id"],
        instance_url=row["instance_url"],
        username=row["username"],
        source=row["source"],
        source_kind=row["source_kind"],
        field_api_name=row["field_api_name"],
        created_at=datetime.fromisoformat(row["created_at"]),
        state=RunState(row["state"]),
        stop_reason=row["stop_reason"],
        counts={action.value: 0 for action in Action} | actions,
        states={ItemState(state): int(count) for state, count in states.items() if count},
        result_folder=Path(row["result_folder"]) if row["result_folder"] else None,
        queued_to_retry=int(row["queued_to_retry"]),
    )


def queued_item(values: tuple[Any, ...]) -> QueuedItem:
    """Read one items row of the backfill queue, selected as QUEUED_COLUMNS."""
    seq, key, source_ref, subject, attempts, due, code, message = values
    return QueuedItem(
        seq=int(seq), key=key, source_ref=source_ref, subject=subject, attempts=int(attempts),
        next_attempt_at=None if due is None else datetime.fromtimestamp(due, UTC),
        error_code=code, message=message,
    )



def item_values(run_id: str, seq: int, row: PlanRow, rules: FieldRules) -> tuple[Any, ...]:
    """Return the values of a new items row for a plan row; a row never sent is stored without bodies."""
    sent = row.action in (Action.CREATE, Action.UPDATE)
    if not sent:
        row = without_bodies(row)
    return (
        run_id,
        seq,
        row.action.value,
        row.source_ref,
        row.key,
        rules.fold(row.key) if row.key else None,
        row.key.casefold() if row.key else None,
        row.subject,
        row.reason,
        row.reason_code.value,
        row.upsert_key,
        json.dumps([dataclasses.asdict(task) for task in row.existing]),
        json.dumps(dict(row.record)),
        (ItemState.PLANNED if sent else ItemState.SKIPPED).value,
    )


def journal_item(values: tuple[Any, ...]) -> JournalItem:
    """Read one items row, selected as ITEM_COLUMNS."""
    (seq, action, source_ref, key, subject, reason, reason_code, upsert_key, existing, record, state,
     attempts, record_id, error_code, message) = values
    row = PlanRow(
        action=Action(action),
        source_ref=source_ref,
        key=key,
        subject=subject,
        reason=reason,
        upsert_key=upsert_key,
        existing=tuple(TaskRecord(**task) for task in json.loads(existing)),
        record=json.loads(record),
        reason_code=stored_reason_code(action, reason_code, other_spelling=upsert_key != key),
    )
    return JournalItem(int(seq), row, ItemState(state), int(attempts), record_id, error_code, message or "")


# The code a row written before reason codes existed is read back with, by its action.
_CODE_OF_OLD_ROWS = {
    Action.CREATE: ReasonCode.NEW_KEY,
    Action.UPDATE: ReasonCode.UPDATE,
    Action.CONFLICT: ReasonCode.SEVERAL_TASKS,
    Action.EXCLUDED: ReasonCode.REPEATED_KEY,
    Action.INVALID: ReasonCode.NO_KEY,
}


def stored_reason_code(action: str, stored: str, *, other_spelling: bool = False) -> ReasonCode:
    """Return a stored reason code, or for a row stored before codes existed, the one its action implies.

    ``other_spelling`` is true when the row's ``upsert_key`` differs from its key: an old
    update that sends the spelling its Task already has reads back as such.
    """
    if stored:
        return ReasonCode(stored)
    if other_spelling and Action(action) is Action.UPDATE:
        return ReasonCode.UPDATE_STORED_SPELLING
    return _CODE_OF_OLD_ROWS[Action(action)]



def without_bodies(row: PlanRow) -> PlanRow:
    """Return the row without the e-mail body and the existing Tasks' descriptions.

    A row that is never sent again keeps only what the plan table, the plan CSV
    and the result files show, so the journal does not keep every e-mail's text.
    """
    record = {name: value for name, value in row.record.items() if name != "Description"}
    existing = tuple(dataclasses.replace(task, description="") for task in row.existing)
    return dataclasses.replace(row, record=record, existing=existing)
