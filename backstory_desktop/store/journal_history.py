"""The sync journal's run history: runs as the history lists them, and each run's backfill queue."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from backstory_desktop.store.journal_file import JournalFile
from backstory_desktop.store.journal_records import (
    QUEUED_COLUMNS,
    ItemState,
    QueuedItem,
    RunState,
    RunSummary,
    queued_item,
    run_summary,
)

log = logging.getLogger(__name__)

# The stop reason of a run whose process ended while it applied, without recording why.
STOPPED_WHILE_APPLYING = (
    "the app was closed or stopped while this run was applied: resume it to settle and send the rest"
)


class JournalHistory(JournalFile):
    """The run history part of the journal."""

    def runs(self, org_id: str | None = None, limit: int = 50) -> list[RunSummary]:
        """Return runs with a finished plan, newest first; of one org when ``org_id`` is given."""
        where, parameters = "plan_complete = 1", []
        if org_id is not None:
            where += " AND org_id = ?"
            parameters.append(org_id)
        order = "ORDER BY created_at DESC, rowid DESC LIMIT ?"
        rows = self._summary_rows(f"{where} {order}", (*parameters, limit))
        return [self._as_seen_now(run_summary(row)) for row in rows]

    def run(self, run_id: str) -> RunSummary:
        """Return one run; raises LookupError for an unknown id."""
        rows = self._summary_rows("run_id = ?", (run_id,))
        if not rows:
            raise LookupError(f"no sync run {run_id} in the journal {self.path}")
        return self._as_seen_now(run_summary(rows[0]))

    def _summary_rows(self, where: str, parameters: Sequence[Any]) -> list[sqlite3.Row]:
        """Select runs rows with the count of their queued rows that still have attempts left."""
        sql = (
            "SELECT runs.*, (SELECT COUNT(*) FROM items WHERE items.run_id = runs.run_id AND items.state = ? "
            f"AND items.attempts < items.attempt_limit) AS queued_to_retry FROM runs WHERE {where}"
        )
        return self._named_rows(sql, (ItemState.QUEUED.value, *parameters))

    def _as_seen_now(self, summary: RunSummary) -> RunSummary:
        """Report an APPLYING run whose process is gone (Ctrl+C, a kill) as stopped, or finished.

        No process holds the org's sync lock then. A run with work left (see
        ``RunSummary.work_left``) is STOPPED, to be resumed; any other is FINISHED.
        """
        if summary.state is not RunState.APPLYING or self.org_lock_held(summary.org_id):
            return summary
        if summary.work_left:
            reason = summary.stop_reason or STOPPED_WHILE_APPLYING
            return dataclasses.replace(summary, state=RunState.STOPPED, stop_reason=reason)
        return dataclasses.replace(summary, state=RunState.FINISHED)

    def org_lock_held(self, org_id: str) -> bool:
        """Tell whether a sync (of this process or another) holds the org's lock now.

        The probe takes the lock for a moment without a note, and a sync starting
        meanwhile waits for it (see ``org_lock``), so the probe never refuses it.
        """
        try:
            return self.lock_org(org_id).is_held()
        except OSError as error:
            log.info("the sync lock of org %s could not be checked: %s", org_id, error)
            return True

    def unfinished_run(self, org_id: str) -> RunSummary | None:
        """Return the org's newest applied run that still has work left, or None.

        The history uses the same rule (``RunSummary.work_left``), so a run listed as
        stopped is the one offered for resume. Queued rows count only while they have
        attempts left.
        """
        rows = self._rows(
            "SELECT run_id FROM runs WHERE org_id = ? AND state IN (?, ?) "
            "ORDER BY created_at DESC, rowid DESC",
            (org_id, RunState.APPLYING.value, RunState.STOPPED.value),
        )
        for (run_id,) in rows:
            summary = self.run(run_id)
            if summary.work_left:
                return summary
        return None

    def queued_items(self, run_id: str, *, limit: int | None = None, offset: int = 0) -> list[QueuedItem]:
        """Return the run's backfill queue by sequence number, from ``offset`` and at most ``limit`` rows."""
        rows = self._rows(
            f"SELECT {QUEUED_COLUMNS} FROM items WHERE run_id = ? AND state = ? "
            "ORDER BY seq LIMIT ? OFFSET ?",
            (run_id, ItemState.QUEUED.value, -1 if limit is None else limit, offset),
        )
        return [queued_item(row) for row in rows]

    def queued_count(self, run_id: str) -> int:
        """Count the run's backfill queue with one indexed query."""
        rows = self._rows(
            "SELECT COUNT(*) FROM items WHERE run_id = ? AND state = ?", (run_id, ItemState.QUEUED.value)
        )
        return int(rows[0][0])
