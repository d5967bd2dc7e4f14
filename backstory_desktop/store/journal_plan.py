"""The sync journal's plan rows: a run being planned, and its rows read back a page at a time."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from backstory_desktop.core.plan import Action, FieldRules, FirstRow, InactiveOwner, Plan, PlanRow, ReasonCode
from backstory_desktop.store.journal_file import PAGE_SIZE, JournalFile, chunks, now_text, refresh_counts
from backstory_desktop.store.journal_records import (
    ITEM_COLUMNS,
    ItemOutcome,
    ItemState,
    JournalItem,
    ResultLine,
    RunState,
    item_values,
    journal_item,
    stored_reason_code,
)

# The actions of the rows a plan never sends, in the order the not-sent report lists them.
NOT_SENT_ACTIONS = (Action.CONFLICT, Action.INVALID, Action.EXCLUDED)


class JournalPlans(JournalFile):
    """The planning and row-reading part of the journal."""

    def start_run(
        self,
        *,
        org_id: str,
        instance_url: str,
        username: str,
        source: str,
        source_kind: str,
        rules: FieldRules,
    ) -> str:
        """Record a new run being planned and return its id."""
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, org_id, instance_url, username, source, source_kind, "
                "field_api_name, case_sensitive, flag_field, created_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, org_id, instance_url, username, source, source_kind, rules.api_name,
                 int(rules.case_sensitive), rules.flag_field, now_text(), RunState.PLANNED.value),
            )
        return run_id

    def add_rows(self, run_id: str, rows: Sequence[PlanRow]) -> None:
        """Append plan rows to a run, in order, each as PLANNED (sent) or SKIPPED (not sent)."""
        rules = self.rules(run_id)
        with self._transaction() as db:
            last = db.execute("SELECT MAX(seq) FROM items WHERE run_id = ?", (run_id,)).fetchone()[0]
            start = 0 if last is None else int(last) + 1
            db.executemany(
                "INSERT INTO items (run_id, seq, action, source_ref, key, folded_key, casefolded_key, "
                "subject, reason, reason_code, upsert_key, existing, record, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [item_values(run_id, start + offset, row, rules) for offset, row in enumerate(rows)],
            )

    def first_rows(
        self, run_id: str, folded_keys: Iterable[str], *, any_case: bool = False
    ) -> dict[str, FirstRow]:
        """Return the first row of each of these folded keys already in the run; excluded rows never count.

        With ``any_case`` the keys are ``str.casefold()``ed, and each maps to the first
        row whose key casefolds to it, whatever the field's case rule. Rows written by
        a journal older than the casefolded key column are not matched then.
        """
        column = "casefolded_key" if any_case else "folded_key"
        found: dict[str, FirstRow] = {}
        for chunk in chunks(sorted(set(folded_keys))):
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT {column}, source_ref, action FROM items WHERE run_id = ? AND action != ? "
                f"AND {column} IN ({marks}) ORDER BY seq",
                (run_id, Action.EXCLUDED.value, *chunk),
            )
            for folded, source_ref, action in rows:
                found.setdefault(folded, FirstRow(source_ref, Action(action)))
        return found

    def finish_plan(self, run_id: str, inactive_owners: Sequence[InactiveOwner]) -> None:
        """Mark the run's plan complete, with the inactive owners it replaced."""
        owners = json.dumps([dataclasses.asdict(owner) for owner in inactive_owners])
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET plan_complete = 1, inactive_owners = ? WHERE run_id = ?", (owners, run_id)
            )
            refresh_counts(db, run_id, actions=True)

    def discard_run(self, run_id: str) -> None:
        """Delete a run whose planning stopped before the end, with its rows; an unknown id is ignored."""
        with contextlib.suppress(LookupError):
            self.delete_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Delete a run from the history, with its rows and calls; its result files stay on disk.

        Raises LookupError for an unknown run id.
        """
        with self._transaction() as db:
            if db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount == 0:
                raise LookupError(f"no sync run {run_id} in the journal {self.path}")

    def plan(self, run_id: str) -> Plan:
        """Return the run's plan, its rows read from the journal as they are needed."""
        row = self._run_row(run_id)
        if not row["plan_complete"]:
            raise LookupError(f"the plan of run {run_id} was not finished; build the plan again")
        owners = [InactiveOwner(**owner) for owner in json.loads(row["inactive_owners"])]
        return Plan(JournalRows(self, run_id), self.rules(run_id), run_id=run_id, inactive_owners=owners)

    def rules(self, run_id: str) -> FieldRules:
        """Return the field rules a run was planned with."""
        row = self._run_row(run_id)
        return FieldRules(row["field_api_name"], bool(row["case_sensitive"]), row["flag_field"])

    def row_count(self, run_id: str) -> int:
        """Count a run's plan rows."""
        return int(self._rows("SELECT COUNT(*) FROM items WHERE run_id = ?", (run_id,))[0][0])

    def plan_rows(self, run_id: str, start: int, stop: int) -> list[PlanRow]:
        """Return the plan rows from ``start`` up to ``stop`` (sequence numbers), in order."""
        return [item.row for item in self._items_where("seq >= ? AND seq < ?", (start, stop), run_id)]

    def rows_not_sent(
        self, run_id: str, limit: int, *, actions: Iterable[Action] = NOT_SENT_ACTIONS, offset: int = 0
    ) -> list[PlanRow]:
        """Return up to ``limit`` rows the plan does not send, ordered by action and then by sequence number.

        Reads only conflict, invalid and excluded rows (or the ``actions`` given, in that order),
        which are stored without e-mail bodies. ``offset`` skips that many rows, for the next page.
        """
        action_values = [Action(action).value for action in actions]
        if not action_values:
            return []
        marks = ", ".join("?" * len(action_values))
        order = " ".join(f"WHEN ? THEN {position}" for position in range(len(action_values)))
        sql = (
            f"SELECT {ITEM_COLUMNS} FROM items WHERE run_id = ? AND action IN ({marks}) "
            f"ORDER BY CASE action {order} END, seq LIMIT ? OFFSET ?"
        )
        rows = self._rows(sql, (run_id, *action_values, *action_values, limit, offset))
        return [journal_item(row).row for row in rows]

    def action_counts(self, run_id: str) -> dict[str, int]:
        """Count a run's rows per planned action."""
        rows = self._rows("SELECT action, COUNT(*) FROM items WHERE run_id = ? GROUP BY action", (run_id,))
        return {str(action): int(count) for action, count in rows}

    def reason_counts(self, run_id: str) -> dict[str, int]:
        """Count a run's rows per reason code with one query, every code listed even when zero.

        Rows written before reason codes existed count under the code their action
        implies, as they are read back.
        """
        rows = self._rows(
            "SELECT reason_code, action, upsert_key IS NOT key, COUNT(*) FROM items WHERE run_id = ? "
            "GROUP BY reason_code, action, upsert_key IS NOT key",
            (run_id,),
        )
        counts = {code.value: 0 for code in ReasonCode}
        for stored, action, other_spelling, count in rows:
            code = stored_reason_code(action, stored, other_spelling=bool(other_spelling))
            counts[code.value] += int(count)
        return counts

    def state_counts(self, run_id: str) -> dict[ItemState, int]:
        """Count a run's rows per state."""
        rows = self._rows("SELECT state, COUNT(*) FROM items WHERE run_id = ? GROUP BY state", (run_id,))
        return {ItemState(state): int(count) for state, count in rows}

    def item_outcomes(self, run_id: str, start: int, stop: int) -> list[ItemOutcome]:
        """Return where the rows from ``start`` up to ``stop`` (sequence numbers) are now, in order.

        One indexed query without the rows' records, cheap enough for the GUI thread.
        """
        rows = self._rows(
            "SELECT seq, state, record_id, error_code, message FROM items "
            "WHERE run_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (run_id, start, stop),
        )
        return [
            ItemOutcome(int(seq), ItemState(state), record_id, error_code, message or "")
            for seq, state, record_id, error_code, message in rows
        ]

    def result_lines(self, run_id: str) -> Iterator[ResultLine]:
        """Yield every row of a run with only the columns the result files need, a page at a time."""
        after = -1
        while True:
            page = self._rows(
                "SELECT seq, source_ref, key, action, subject, reason, state, record_id, error_code, message "
                f"FROM items WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT {PAGE_SIZE}",
                (run_id, after),
            )
            for _seq, source_ref, key, action, subject, reason, state, record_id, code, message in page:
                yield ResultLine(source_ref, key, action, subject, reason, ItemState(state), record_id, code,
                                 message or "")
            if len(page) < PAGE_SIZE:
                return
            after = int(page[-1][0])

    def items(
        self,
        run_id: str,
        states: Iterable[ItemState],
        *,
        limit: int = PAGE_SIZE,
        due_by: float | None = None,
        after_seq: int = -1,
    ) -> list[JournalItem]:
        """Return up to ``limit`` rows in these states, by sequence number.

        ``due_by`` keeps only rows whose next attempt is due by then and whose
        attempts are below the limit this apply allows.
        """
        wanted = [state.value for state in states]
        marks = ", ".join("?" * len(wanted))
        where = f"state IN ({marks}) AND seq > ?"
        parameters: list[Any] = [*wanted, after_seq]
        if due_by is not None:
            where += " AND COALESCE(next_attempt_at, 0) <= ? AND attempts < attempt_limit"
            parameters.append(due_by)
        return self._items_where(where, parameters, run_id, limit=limit)

    def iter_items(self, run_id: str) -> Iterator[JournalItem]:
        """Yield every row of a run in order, a page at a time."""
        after = -1
        while True:
            page = self._items_where("seq > ?", (after,), run_id, limit=PAGE_SIZE)
            yield from page
            if len(page) < PAGE_SIZE:
                return
            after = page[-1].seq


class JournalRows(Sequence[PlanRow]):
    """A run's plan rows, read from the journal a page at a time."""

    def __init__(self, journal: JournalPlans, run_id: str) -> None:
        self._journal = journal
        self._run_id = run_id
        self._length = journal.row_count(run_id)
        self._page_start = -1
        self._page: list[PlanRow] = []

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> PlanRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[PlanRow]: ...

    def __getitem__(self, index: int | slice) -> PlanRow | Sequence[PlanRow]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step == 1:
                return self._journal.plan_rows(self._run_id, start, stop)
            return [self[position] for position in range(start, stop, step)]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"plan row {index} out of range")
        page_start = index - index % PAGE_SIZE
        if page_start != self._page_start:
            self._page = self._journal.plan_rows(self._run_id, page_start, page_start + PAGE_SIZE)
            self._page_start = page_start
        return self._page[index - page_start]

    def __iter__(self) -> Iterator[PlanRow]:
        for start in range(0, self._length, PAGE_SIZE):
            yield from self._journal.plan_rows(self._run_id, start, start + PAGE_SIZE)

    def action_counts(self) -> dict[str, int]:
        """Count the rows per action with one query."""
        return self._journal.action_counts(self._run_id)

    def reason_counts(self) -> dict[str, int]:
        """Count the rows per reason code with one query, every code listed even when zero."""
        return self._journal.reason_counts(self._run_id)

