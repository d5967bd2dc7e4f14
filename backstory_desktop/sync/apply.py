"""Apply a sync plan: sObject Collections upserts keyed on the Message-ID field.

Keys travel in the JSON body, never in a URL, 200 records a call. A create
that finds its key taken means another writer (the cadence tool, another run)
created that Task after the plan was built. Salesforce then refuses it with
DUPLICATE_VALUE, or with INVALID_FIELD_FOR_INSERT_UPDATE because the body
carries the create-only TaskSubtype. Such a create is looked up again and sent
once more as an update that only fills what the Task left empty.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.plan import Action, Plan, PlanRow, retry_create_as_update
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import (
    UpsertCancelled,
    UpsertInterrupted,
    UpsertOutcome,
    find_tasks_by_keys,
    upsert_tasks,
)

log = logging.getLogger(__name__)

# Error codes of a create whose key another writer took after the plan was built.
KEY_TAKEN_ERRORS = ("DUPLICATE_VALUE", "INVALID_FIELD_FOR_INSERT_UPDATE")


@dataclass
class SyncResult:
    """Counts and per-message outcomes of one apply.

    ``not_sent`` counts the rows never sent because the run was cancelled or
    stopped; ``stopped_because`` gives the reason, ``stop_error_code`` the error code
    of the problem that stopped it (such as SIGN_IN_AGAIN), and ``in_doubt`` lists the
    keys of a call that got no response, which may or may not have been written.
    """

    created: int = 0
    updated: int = 0
    failed: int = 0
    not_sent: int = 0
    stopped_because: str = ""
    stop_error_code: str | None = None
    in_doubt: list[str] = field(default_factory=list)
    outcomes: list[tuple[PlanRow, UpsertOutcome]] = field(default_factory=list)

    def failures_by_code(self) -> dict[str, tuple[int, str]]:
        """Count failed records per Salesforce error code, with one message as an example."""
        summary: dict[str, tuple[int, str]] = {}
        for _, outcome in self.outcomes:
            if not outcome.success:
                code = outcome.error_code or "UNKNOWN"
                count, example = summary.get(code, (0, outcome.message or ""))
                summary[code] = (count + 1, example)
        return summary


def apply_plan(
    connection: OrgConnection,
    plan: Plan,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> SyncResult:
    """Upsert the plan's creates and updates and count what Salesforce reports."""
    started = time.monotonic()
    field = plan.rules.api_name
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
        result.stop_error_code = interrupted.problem.error_code
        result.in_doubt = list(interrupted.in_doubt)
    rows, outcomes = _retry_taken_keys(connection, plan, rows, outcomes)

    # Records of a call that got no response were sent, so they count as in doubt, not as not sent.
    result.not_sent = len(rows) - len(outcomes) - len(result.in_doubt)
    for row, outcome in zip(rows, outcomes, strict=False):
        result.outcomes.append((row, outcome))
        if not outcome.success:
            result.failed += 1
        elif outcome.created:
            result.created += 1
        else:
            result.updated += 1
    elapsed = time.monotonic() - started
    if result.stopped_because:
        log.info(
            "sync stopped after %.1f s (%s): %d created, %d updated, %d failed, %d not sent, %d in doubt",
            elapsed,
            result.stopped_because,
            result.created,
            result.updated,
            result.failed,
            result.not_sent,
            len(result.in_doubt),
        )
    else:
        log.info(
            "sync applied in %.1f s: %d created, %d updated, %d failed",
            elapsed,
            result.created,
            result.updated,
            result.failed,
        )
    return result


def _record_for(row: PlanRow, field: str) -> dict[str, Any]:
    record = dict(row.record)
    record[field] = row.upsert_key
    return record


def _retry_taken_keys(
    connection: OrgConnection, plan: Plan, rows: list[PlanRow], outcomes: list[UpsertOutcome]
) -> tuple[list[PlanRow], list[UpsertOutcome]]:
    """Send creates whose key was taken once more, as updates of the Task that now has that key."""
    positions = [
        position
        for position, (row, outcome) in enumerate(zip(rows, outcomes, strict=False))
        if row.action is Action.CREATE and not outcome.success and outcome.error_code in KEY_TAKEN_ERRORS
    ]
    if not positions:
        return rows, outcomes

    field = plan.rules.api_name
    spellings = sorted({s for position in positions for s in key_spellings(rows[position].key or "")})
    found = find_tasks_by_keys(connection, field, spellings, flag_field=plan.rules.flag_field)
    tasks = list({task.id: task for matches in found.values() for task in matches}.values())
    retries: list[tuple[int, PlanRow]] = []
    for position in positions:
        update = retry_create_as_update(rows[position], tasks, plan.rules)
        if update is not None:
            retries.append((position, update))
    if not retries:
        return rows, outcomes

    log.info("sending %d creates again as updates: their keys were taken after planning", len(retries))
    retried = upsert_tasks(connection, field, [_record_for(update, field) for _, update in retries])
    rows, outcomes = list(rows), list(outcomes)
    for (position, update), outcome in zip(retries, retried, strict=False):
        rows[position], outcomes[position] = update, outcome
    return rows, outcomes
