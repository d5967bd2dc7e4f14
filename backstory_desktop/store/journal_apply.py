"""The sync journal's apply states: rows marked before and after every call, and the backfill queue."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from backstory_desktop.store.journal_file import JournalFile, chunks, now_text, refresh_counts
from backstory_desktop.store.journal_records import (
    QUEUED_COLUMNS,
    SETTLED_STATES,
    UNRESOLVED_STATES,
    ItemState,
    ItemUpdate,
    JournalItem,
    QueuedItem,
    RunState,
    queued_item,
    without_bodies,
)


class JournalApply(JournalFile):
    """The part of the journal an apply writes: run and row states, calls, and the backfill queue."""

    def next_due(self, run_id: str) -> float | None:
        """Return when the next queued row that may still be tried this apply is due, or None."""
        rows = self._rows(
            "SELECT MIN(COALESCE(next_attempt_at, 0)) FROM items "
            "WHERE run_id = ? AND state = ? AND attempts < attempt_limit",
            (run_id, ItemState.QUEUED.value),
        )
        value = rows[0][0]
        return None if value is None else float(value)

    def next_queued(self, run_id: str) -> QueuedItem | None:
        """Return the queued row that may still be tried this apply and is due first, or None."""
        rows = self._rows(
            f"SELECT {QUEUED_COLUMNS} FROM items WHERE run_id = ? AND state = ? AND attempts < attempt_limit "
            "ORDER BY COALESCE(next_attempt_at, 0), seq LIMIT 1",
            (run_id, ItemState.QUEUED.value),
        )
        return queued_item(rows[0]) if rows else None

    def set_run_state(self, run_id: str, state: RunState, stop_reason: str = "") -> None:
        """Record where the run is and, when it stopped, why."""
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET state = ?, stop_reason = ? WHERE run_id = ?",
                (state.value, stop_reason, run_id),
            )

    def allow_attempts(
        self, run_id: str, attempts: int, *, states: Iterable[ItemState], due_now: bool = False
    ) -> None:
        """Let rows in these states be sent up to ``attempts`` more times; ``due_now`` ends their back-off."""
        wanted = [state.value for state in states]
        marks = ", ".join("?" * len(wanted))
        due = ", next_attempt_at = NULL" if due_now else ""
        with self._transaction() as db:
            db.execute(
                f"UPDATE items SET attempt_limit = attempts + ?{due} WHERE run_id = ? AND state IN ({marks})",
                (attempts, run_id, *wanted),
            )

    def cap_attempts(self, run_id: str, attempts: int) -> None:
        """Let every row be sent at most ``attempts`` times in all (rows not yet limited)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE items SET attempt_limit = ? WHERE run_id = ? AND attempt_limit = 0",
                (attempts, run_id),
            )

    def mark_sending(self, run_id: str, seqs: Sequence[int], api: str) -> int:
        """Mark rows SENDING and record the call about to carry them; committed before it returns.

        Returns the call's id for ``record_outcomes``.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO calls (run_id, api, started_at, items) VALUES (?, ?, ?, ?)",
                (run_id, api, now_text(), len(seqs)),
            )
            call_id = int(cursor.lastrowid or 0)
            for chunk in chunks(seqs):
                marks = ", ".join("?" * len(chunk))
                db.execute(
                    f"INSERT INTO call_items (call_id, seq, state_before) SELECT ?, seq, state FROM items "
                    f"WHERE run_id = ? AND seq IN ({marks})",
                    (call_id, run_id, *chunk),
                )
                db.execute(
                    f"UPDATE items SET state = ?, attempts = attempts + 1 "
                    f"WHERE run_id = ? AND seq IN ({marks})",
                    (ItemState.SENDING.value, run_id, *chunk),
                )
            refresh_counts(db, run_id)
        return call_id

    def set_call_job(self, call_id: int, job_id: str) -> None:
        """Record the Bulk API job a call created, so a later process can look at it."""
        with self._transaction() as db:
            jobs = db.execute("SELECT job_id FROM calls WHERE call_id = ?", (call_id,)).fetchone()[0]
            joined = f"{jobs} {job_id}" if jobs else job_id
            db.execute("UPDATE calls SET job_id = ? WHERE call_id = ?", (joined, call_id))

    def open_bulk_jobs(self, run_id: str) -> list[tuple[int, list[str]]]:
        """Return the calls that started Bulk API jobs and still have rows SENDING or IN_DOUBT.

        A call closed by a Cancel still counts: its job may go on writing after the apply returned.
        """
        marks = ", ".join("?" * len(UNRESOLVED_STATES))
        rows = self._rows(
            "SELECT c.call_id, c.job_id FROM calls c WHERE c.run_id = ? AND c.api = 'bulk' "
            "AND c.job_id IS NOT NULL AND EXISTS (SELECT 1 FROM call_items ci JOIN items i "
            "ON i.run_id = c.run_id AND i.seq = ci.seq WHERE ci.call_id = c.call_id "
            f"AND i.state IN ({marks})) ORDER BY c.call_id",
            (run_id, *[state.value for state in UNRESOLVED_STATES]),
        )
        return [(int(call_id), str(jobs).split()) for call_id, jobs in rows]

    def unresolved_items_of_call(self, run_id: str, call_id: int) -> list[JournalItem]:
        """Return the rows of one call that are still SENDING or IN_DOUBT, by sequence number."""
        marks = ", ".join("?" * len(UNRESOLVED_STATES))
        return self._items_where(
            f"state IN ({marks}) AND seq IN (SELECT seq FROM call_items WHERE call_id = ?)",
            (*[state.value for state in UNRESOLVED_STATES], call_id),
            run_id,
        )

    def record_outcomes(
        self, run_id: str, updates: Sequence[ItemUpdate], *, call_id: int | None = None, outcome: str = ""
    ) -> None:
        """Store rows' new states; with ``call_id``, also the states after that call, and close it."""
        with self._transaction() as db:
            for update in updates:
                _apply_update(db, run_id, update)
                if call_id is not None:
                    db.execute(
                        "UPDATE call_items SET state_after = ? WHERE call_id = ? AND seq = ?",
                        (update.state.value, call_id, update.seq),
                    )
            if call_id is not None:
                db.execute(
                    "UPDATE calls SET finished_at = ?, outcome = ? WHERE call_id = ?",
                    (now_text(), outcome, call_id),
                )
            refresh_counts(db, run_id)

    def record_call_states(self, call_id: int, updates: Sequence[ItemUpdate]) -> None:
        """Store the states rows reached after a call, for a call whose other rows are settled apart."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE call_items SET state_after = ? WHERE call_id = ? AND seq = ?",
                [(update.state.value, call_id, update.seq) for update in updates],
            )

    def close_calls(self, run_id: str, outcome: str) -> None:
        """Close every call of the run still open (their rows were resolved another way)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE calls SET finished_at = ?, outcome = ? WHERE run_id = ? AND finished_at IS NULL",
                (now_text(), outcome, run_id),
            )

    def revert_call(
        self, run_id: str, call_id: int, outcome: str, seqs: Sequence[int] | None = None
    ) -> None:
        """Put a call's rows (or only ``seqs`` of them) back in their states before it.

        For a call that wrote nothing, such as one refused because the sign-in ended.
        """
        chosen = list(seqs) if seqs is not None else [
            int(seq) for (seq,) in self._rows("SELECT seq FROM call_items WHERE call_id = ?", (call_id,))
        ]
        with self._transaction() as db:
            for chunk in chunks(chosen):
                marks = ", ".join("?" * len(chunk))
                db.execute(
                    "UPDATE items SET state = (SELECT state_before FROM call_items c "
                    "WHERE c.call_id = ? AND c.seq = items.seq), attempts = MAX(attempts - 1, 0) "
                    f"WHERE run_id = ? AND seq IN ({marks})",
                    (call_id, run_id, *chunk),
                )
                db.execute(
                    "UPDATE call_items SET state_after = state_before "
                    f"WHERE call_id = ? AND seq IN ({marks})",
                    (call_id, *chunk),
                )
            db.execute(
                "UPDATE calls SET finished_at = ?, outcome = ? WHERE call_id = ?",
                (now_text(), outcome, call_id),
            )
            refresh_counts(db, run_id)

    def queue_open_rows(self, run_id: str, error_code: str, message: str, next_attempt_at: float) -> int:
        """Move every PLANNED row to the backfill queue with one reason; returns how many moved."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE items SET state = ?, error_code = ?, message = ?, next_attempt_at = ? "
                "WHERE run_id = ? AND state = ?",
                (ItemState.QUEUED.value, error_code, message, next_attempt_at, run_id,
                 ItemState.PLANNED.value),
            )
            refresh_counts(db, run_id)
            return int(cursor.rowcount)

    def call_history(self, run_id: str) -> list[dict[str, Any]]:
        """Return the run's calls, oldest first, with each row's state before and after."""
        calls = self._rows(
            "SELECT call_id, api, started_at, finished_at, items, job_id, outcome FROM calls "
            "WHERE run_id = ? ORDER BY call_id",
            (run_id,),
        )
        history = []
        for call_id, api, started, finished, count, job_id, outcome in calls:
            states = self._rows(
                "SELECT seq, state_before, state_after FROM call_items WHERE call_id = ? ORDER BY seq",
                (call_id,),
            )
            history.append({
                "call_id": call_id, "api": api, "started_at": started, "finished_at": finished,
                "items": count, "job_id": job_id, "outcome": outcome,
                "states": [(seq, before, after) for seq, before, after in states],
            })
        return history

    def failures_by_code(self, run_id: str) -> dict[str, tuple[int, str]]:
        """Count FAILED rows per error code, with one message as an example."""
        rows = self._rows(
            "SELECT COALESCE(error_code, 'UNKNOWN'), COUNT(*), MIN(message) FROM items "
            "WHERE run_id = ? AND state = ? GROUP BY 1",
            (run_id, ItemState.FAILED.value),
        )
        return {str(code): (int(count), str(example or "")) for code, count, example in rows}

    def keys_in_states(
        self, run_id: str, states: Iterable[ItemState], *, limit: int | None = None
    ) -> list[str]:
        """Return the upsert keys of the rows in these states, in order; at most ``limit`` of them."""
        wanted = [state.value for state in states]
        marks = ", ".join("?" * len(wanted))
        rows = self._rows(
            f"SELECT COALESCE(upsert_key, key) FROM items WHERE run_id = ? AND state IN ({marks}) "
            "ORDER BY seq LIMIT ?",
            (run_id, *wanted, -1 if limit is None else limit),
        )
        return [str(key) for (key,) in rows if key is not None]

    def set_result_folder(self, run_id: str, folder: Path) -> None:
        """Record where the run's result files are."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET result_folder = ? WHERE run_id = ?", (str(folder), run_id))


def _apply_update(db: sqlite3.Connection, run_id: str, update: ItemUpdate) -> None:
    db.execute(
        "UPDATE items SET state = ?, record_id = COALESCE(?, record_id), error_code = ?, message = ?, "
        "next_attempt_at = ? WHERE run_id = ? AND seq = ?",
        (update.state.value, update.record_id, update.error_code, update.message, update.next_attempt_at,
         run_id, update.seq),
    )
    row = update.row
    if row is None and update.state in SETTLED_STATES:
        # The same as without_bodies, in SQLite's JSON functions so that no row is decoded here.
        db.execute(
            "UPDATE items SET record = json_remove(record, '$.Description'), existing = "
            "(SELECT COALESCE(json_group_array(json(json_remove(value, '$.description'))), '[]') "
            "FROM json_each(items.existing)) WHERE run_id = ? AND seq = ?",
            (run_id, update.seq),
        )
    elif row is not None and update.state in SETTLED_STATES:
        row = without_bodies(row)
    if row is not None:
        db.execute(
            "UPDATE items SET action = ?, reason = ?, reason_code = ?, upsert_key = ?, existing = ?, "
            "record = ? WHERE run_id = ? AND seq = ?",
            (row.action.value, row.reason, row.reason_code.value, row.upsert_key,
             json.dumps([dataclasses.asdict(task) for task in row.existing]), json.dumps(dict(row.record)),
             run_id, update.seq),
        )


