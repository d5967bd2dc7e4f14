"""Apply a sync plan: sObject Collections upserts keyed on the Message-ID field.

Keys travel in the JSON body, never in a URL, 200 records a call. A create
refused with DUPLICATE_VALUE means another writer (the cadence tool, or a
second click) created the same key a moment earlier; it is sent once more,
now as an update without the create-only TaskSubtype.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.plan import Action, Plan, PlanRow
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import (
    UpsertCancelled,
    UpsertInterrupted,
    UpsertOutcome,
    upsert_tasks,
)

log = logging.getLogger(__name__)

# Fields an update may not carry: TaskSubtype is createable but not updateable.
CREATE_ONLY_FIELDS = ("TaskSubtype",)


@dataclass
class SyncResult:
    """Counts and per-message outcomes of one apply.

    ``not_sent`` counts the rows never sent because the run was cancelled or
    stopped; ``stopped_because`` says why, and ``in_doubt`` lists the keys of
    a call that got no answer, which may or may not have been written.
    """

    created: int = 0
    updated: int = 0
    failed: int = 0
    not_sent: int = 0
    stopped_because: str = ""
    in_doubt: list[str] = field(default_factory=list)
    outcomes: list[tuple[PlanRow, UpsertOutcome]] = field(default_factory=list)


def apply_plan(
    connection: OrgConnection,
    plan: Plan,
    *,
    field: str,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> SyncResult:
    """Upsert the plan's creates and updates and count what Salesforce reports."""
    started = time.monotonic()
    rows = plan.rows_to_send()
    records = [_record_for(row, field) for row in rows]
    result = SyncResult()
    try:
        outcomes = upsert_tasks(connection, field, records, progress=progress, cancel=cancel)
    except UpsertCancelled as cancelled:
        outcomes = cancelled.outcomes
        result.stopped_because = "cancelled by the user"
    except UpsertInterrupted as interrupted:
        outcomes = interrupted.outcomes
        result.stopped_because = interrupted.problem.sentence
        result.in_doubt = list(interrupted.in_doubt)
    outcomes = _retry_duplicate_creates(connection, field, rows, outcomes)

    result.not_sent = len(rows) - len(outcomes)
    for row, outcome in zip(rows, outcomes, strict=False):
        result.outcomes.append((row, outcome))
        if not outcome.success:
            result.failed += 1
        elif outcome.created:
            result.created += 1
        else:
            result.updated += 1
    log.info(
        "sync applied in %.1f s: %d created, %d updated, %d failed",
        time.monotonic() - started,
        result.created,
        result.updated,
        result.failed,
    )
    return result


def _record_for(row: PlanRow, field: str, *, as_update: bool = False) -> dict[str, Any]:
    record = dict(row.record)
    if as_update or row.action is Action.UPDATE:
        for name in CREATE_ONLY_FIELDS:
            record.pop(name, None)
    record[field] = row.upsert_key
    return record


def _retry_duplicate_creates(
    connection: OrgConnection, field: str, rows: list[PlanRow], outcomes: list[UpsertOutcome]
) -> list[UpsertOutcome]:
    retry_positions = [
        position
        for position, (row, outcome) in enumerate(zip(rows, outcomes, strict=False))
        if row.action is Action.CREATE and not outcome.success and outcome.error_code == "DUPLICATE_VALUE"
    ]
    if not retry_positions:
        return outcomes
    log.info("sending %d creates again as updates after DUPLICATE_VALUE", len(retry_positions))
    records = [_record_for(rows[position], field, as_update=True) for position in retry_positions]
    retried = upsert_tasks(connection, field, records)
    merged = list(outcomes)
    for position, outcome in zip(retry_positions, retried, strict=False):
        merged[position] = outcome
    return merged
