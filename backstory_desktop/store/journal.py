"""The sync journal: one SQLite file with every local sync run of every org.

A run's plan rows are written here while it is planned, and the apply marks
each row before and after every API call. SENDING is committed before a call
leaves, so after a kill at any moment the rows record exactly what may have
reached the org. The next apply of the run looks those keys up
instead of guessing. The same file is the run history.

The file lives in ``paths.data_dir()/sync/`` (a folder readable by its owner
only), in WAL mode with ``synchronous=FULL``, so a committed state survives a
power cut. One run per org at a time is enforced with an OS file lock
(filelock), which the OS releases when the holding process dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, overload

from backstory_desktop.core.plan import Action, FieldRules, FirstRow, InactiveOwner, Plan, PlanRow, ReasonCode
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.store import paths
from backstory_desktop.store.org_lock import OrgLock, RunInProgress

__all__ = [
    "JOURNAL_FILE", "OPEN_STATES", "UNRESOLVED_STATES", "ItemOutcome", "ItemState", "ItemUpdate", "Journal",
    "JournalError",
    "JournalItem", "JournalRows", "QueuedItem", "ResultLine", "RunInProgress", "RunState", "RunSummary",
    "default_journal_path",
]

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite3"
# SQLite allows 32,766 host parameters per statement since 3.32; lists stay far below.
_PARAMETERS_PER_QUERY = 500
_PAGE_SIZE = 500
# The stop reason of a run whose process ended while it applied, without recording why.
STOPPED_WHILE_APPLYING = (
    "the app was closed or stopped while this run was applied: resume it to settle and send the rest"
)
# A run whose planning never finished is deleted when the journal is opened this long after it started.
ABANDONED_PLAN_AGE = timedelta(hours=1)


class JournalError(Exception):
    """A journal file that cannot be read or written: ``str()`` names it, what is wrong and what to do."""

    def __init__(self, sentence: str, path: Path, moved_to: Path | None = None) -> None:
        super().__init__(sentence)
        self.path = path
        self.moved_to = moved_to


# Parts of sqlite3 messages about a damaged file. Such a file is moved aside, never reset.
_DAMAGED_MARKS = ("file is not a database", "malformed", "database corruption", "disk image")


def _journal_error(path: Path, error: sqlite3.Error) -> JournalError:
    """Explain a failed read or write of the journal file at ``path``."""
    text = str(error)
    if "readonly" in text or "read-only" in text:
        return JournalError(
            f"The sync journal {path} is read-only, so this run cannot be recorded: make the file and its "
            "folder writable by your user, then start again.", path)
    if any(mark in text for mark in _DAMAGED_MARKS):
        return JournalError(
            f"The sync journal {path} is damaged ({text}): close the app, move the file away, then start "
            "again; the run history in it is lost.", path)
    if "unable to open" in text or "disk I/O" in text or "locked" in text:
        return JournalError(
            f"The sync journal {path} cannot be opened or written ({text}): check that the file and its "
            "folder belong to your user and the disk has room, then start again.", path)
    return JournalError(
        f"The sync journal {path} cannot be read or written ({text}): check the file and its folder, "
        "then start again.", path)


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

    @property
    def work_left(self) -> int:
        """Rows still to send or to resolve (the backfill queue not included)."""
        return sum(self.states.get(state, 0) for state in OPEN_STATES)


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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    instance_url TEXT NOT NULL,
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    field_api_name TEXT NOT NULL,
    case_sensitive INTEGER NOT NULL,
    flag_field TEXT,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    stop_reason TEXT NOT NULL DEFAULT '',
    plan_complete INTEGER NOT NULL DEFAULT 0,
    inactive_owners TEXT NOT NULL DEFAULT '[]',
    result_folder TEXT,
    action_counts TEXT NOT NULL DEFAULT '{}',
    state_counts TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_org ON runs (org_id, created_at);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    key TEXT,
    folded_key TEXT,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    upsert_key TEXT,
    existing TEXT NOT NULL,
    record TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempt_limit INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    record_id TEXT,
    error_code TEXT,
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS items_by_key ON items (run_id, folded_key);
CREATE INDEX IF NOT EXISTS items_by_state ON items (run_id, state, seq);
CREATE INDEX IF NOT EXISTS items_by_action ON items (run_id, action);
CREATE TABLE IF NOT EXISTS calls (
    call_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    api TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    items INTEGER NOT NULL,
    job_id TEXT,
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS call_items (
    call_id INTEGER NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    state_before TEXT NOT NULL,
    state_after TEXT,
    PRIMARY KEY (call_id, seq)
);
"""

_ITEM_COLUMNS = (
    "seq, action, source_ref, key, subject, reason, reason_code, upsert_key, existing, record, state, "
    "attempts, record_id, error_code, message"
)


def _move_aside(path: Path, error: sqlite3.Error) -> JournalError:
    """Move a damaged journal file (and its WAL files) aside with a timestamp suffix; explain it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        path.replace(moved)
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.replace(moved.with_name(moved.name + suffix))
    except OSError as move_error:
        return JournalError(
            f"The sync journal {path} is damaged ({error}) and could not be moved aside "
            f"({move_error.strerror}): move it away yourself, then start again.", path)
    log.warning("the sync journal %s was damaged (%s) and was moved to %s", path, error, moved)
    return JournalError(
        f"The sync journal {path} was damaged ({error}), so it was moved to {moved} and its run history "
        "is no longer listed: start again to begin a new journal.", path, moved)


def default_journal_path() -> Path:
    """Return the journal file in the app's data folder."""
    return paths.data_dir() / "sync" / JOURNAL_FILE


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _chunks(values: Sequence[Any], size: int = _PARAMETERS_PER_QUERY) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class Journal:
    """The sync journal file, safe to share between the GUI thread and one worker thread."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | None = None) -> Journal:
        """Open (and create) the journal at ``path``, by default the app's own.

        Raises JournalError when the file cannot be opened. A damaged file (not a
        database, or malformed) is moved aside with a timestamp suffix and never reset.
        The JournalError then names where it went, and the next open starts a new journal.
        """
        path = path or default_journal_path()
        try:
            paths.ensure_private_dir(path.parent)
        except OSError as error:
            raise JournalError(
                f"The folder of the sync journal {path.parent} cannot be created or used ({error.strerror}): "
                "check that it belongs to your user, then start again.", path) from error
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(_SCHEMA)
            journal = cls(path, connection)
            journal._add_count_columns()
            journal._add_reason_code_column()
            journal._delete_abandoned_plans()
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            if any(mark in str(error) for mark in _DAMAGED_MARKS):
                raise _move_aside(path, error) from error
            raise _journal_error(path, error) from error
        return journal

    def _add_count_columns(self) -> None:
        """Add the count columns to a runs table written before they existed, and fill them."""
        columns = {str(row[1]) for row in self._rows("PRAGMA table_info(runs)")}
        missing = [name for name in ("action_counts", "state_counts") if name not in columns]
        if not missing:
            return
        with self._transaction() as db:
            for name in missing:
                db.execute(f"ALTER TABLE runs ADD COLUMN {name} TEXT NOT NULL DEFAULT '{{}}'")
            for (run_id,) in db.execute("SELECT run_id FROM runs").fetchall():
                _refresh_counts(db, run_id, actions=True)

    def _add_reason_code_column(self) -> None:
        """Add the reason code column to an items table written before it existed; old rows keep ''."""
        columns = {str(row[1]) for row in self._rows("PRAGMA table_info(items)")}
        if "reason_code" not in columns:
            with self._transaction() as db:
                db.execute("ALTER TABLE items ADD COLUMN reason_code TEXT NOT NULL DEFAULT ''")

    def _delete_abandoned_plans(self) -> None:
        """Delete runs whose planning stopped (a kill or a crash) over an hour ago, with their rows.

        NOTE: a plan still being built by another process after an hour is deleted too;
        its planner then fails when it writes its next rows.
        """
        cutoff = (datetime.now(UTC) - ABANDONED_PLAN_AGE).isoformat(timespec="seconds")
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM runs WHERE plan_complete = 0 AND created_at < ?", (cutoff,)
            ).rowcount
        if deleted:
            log.info("deleted %d sync runs whose planning never finished from %s", deleted, self.path)

    def close(self) -> None:
        """Close the file; the journal cannot be used afterwards."""
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction; a failed write raises JournalError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise _journal_error(self.path, error) from error
            try:
                yield self._db
            except sqlite3.Error as error:
                self._rollback()
                raise _journal_error(self.path, error) from error
            except BaseException:
                self._rollback()
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._rollback()
                raise _journal_error(self.path, error) from error

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                raise _journal_error(self.path, error) from error

    # -- one run per org ---------------------------------------------------------------

    def lock_org(self, org_id: str, *, holder: str = "") -> AbstractContextManager[None]:
        """Hold the org's sync lock for the block; raises RunInProgress when another sync holds it.

        ``holder`` names who takes it (a username), for the sentence another process shows.
        """
        return OrgLock(self.path.parent / "locks", org_id, holder)

    # -- planning ----------------------------------------------------------------------

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
                 int(rules.case_sensitive), rules.flag_field, _now_text(), RunState.PLANNED.value),
            )
        return run_id

    def add_rows(self, run_id: str, rows: Sequence[PlanRow]) -> None:
        """Append plan rows to a run, in order, each as PLANNED (sent) or SKIPPED (not sent)."""
        rules = self.rules(run_id)
        with self._transaction() as db:
            last = db.execute("SELECT MAX(seq) FROM items WHERE run_id = ?", (run_id,)).fetchone()[0]
            start = 0 if last is None else int(last) + 1
            db.executemany(
                "INSERT INTO items (run_id, seq, action, source_ref, key, folded_key, subject, reason, "
                "reason_code, upsert_key, existing, record, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_item_values(run_id, start + offset, row, rules) for offset, row in enumerate(rows)],
            )

    def first_rows(self, run_id: str, folded_keys: Iterable[str]) -> dict[str, FirstRow]:
        """Return the first row of each of these folded keys already in the run."""
        found: dict[str, FirstRow] = {}
        for chunk in _chunks(sorted(set(folded_keys))):
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT folded_key, source_ref, action FROM items WHERE run_id = ? AND action != ? "
                f"AND folded_key IN ({marks}) ORDER BY seq",
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
            _refresh_counts(db, run_id, actions=True)

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

    # -- reading rows ------------------------------------------------------------------

    def row_count(self, run_id: str) -> int:
        """Count a run's plan rows."""
        return int(self._rows("SELECT COUNT(*) FROM items WHERE run_id = ?", (run_id,))[0][0])

    def plan_rows(self, run_id: str, start: int, stop: int) -> list[PlanRow]:
        """Return the plan rows from ``start`` up to ``stop`` (sequence numbers), in order."""
        return [item.row for item in self._items_where("seq >= ? AND seq < ?", (start, stop), run_id)]

    def action_counts(self, run_id: str) -> dict[str, int]:
        """Count a run's rows per planned action."""
        rows = self._rows("SELECT action, COUNT(*) FROM items WHERE run_id = ? GROUP BY action", (run_id,))
        return {str(action): int(count) for action, count in rows}

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
                f"FROM items WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT {_PAGE_SIZE}",
                (run_id, after),
            )
            for _seq, source_ref, key, action, subject, reason, state, record_id, code, message in page:
                yield ResultLine(source_ref, key, action, subject, reason, ItemState(state), record_id, code,
                                 message or "")
            if len(page) < _PAGE_SIZE:
                return
            after = int(page[-1][0])

    def items(
        self,
        run_id: str,
        states: Iterable[ItemState],
        *,
        limit: int = _PAGE_SIZE,
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
            page = self._items_where("seq > ?", (after,), run_id, limit=_PAGE_SIZE)
            yield from page
            if len(page) < _PAGE_SIZE:
                return
            after = page[-1].seq

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
            "SELECT seq, COALESCE(upsert_key, key), source_ref, subject, attempts, next_attempt_at, "
            "error_code, message FROM items WHERE run_id = ? AND state = ? AND attempts < attempt_limit "
            "ORDER BY COALESCE(next_attempt_at, 0), seq LIMIT 1",
            (run_id, ItemState.QUEUED.value),
        )
        if not rows:
            return None
        seq, key, source_ref, subject, attempts, due, code, message = rows[0]
        return QueuedItem(
            seq=int(seq), key=key, source_ref=source_ref, subject=subject, attempts=int(attempts),
            next_attempt_at=None if due is None else datetime.fromtimestamp(due, UTC),
            error_code=code, message=message,
        )

    def _items_where(
        self, where: str, parameters: Sequence[Any], run_id: str, *, limit: int | None = None
    ) -> list[JournalItem]:
        sql = f"SELECT {_ITEM_COLUMNS} FROM items WHERE run_id = ? AND {where} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_journal_item(row) for row in self._rows(sql, (run_id, *parameters))]

    # -- applying ----------------------------------------------------------------------

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
                (run_id, api, _now_text(), len(seqs)),
            )
            call_id = int(cursor.lastrowid or 0)
            for chunk in _chunks(seqs):
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
            _refresh_counts(db, run_id)
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
                    (_now_text(), outcome, call_id),
                )
            _refresh_counts(db, run_id)

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
                (_now_text(), outcome, run_id),
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
            for chunk in _chunks(chosen):
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
                (_now_text(), outcome, call_id),
            )
            _refresh_counts(db, run_id)

    def queue_open_rows(self, run_id: str, error_code: str, message: str, next_attempt_at: float) -> int:
        """Move every PLANNED row to the backfill queue with one reason; returns how many moved."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE items SET state = ?, error_code = ?, message = ?, next_attempt_at = ? "
                "WHERE run_id = ? AND state = ?",
                (ItemState.QUEUED.value, error_code, message, next_attempt_at, run_id,
                 ItemState.PLANNED.value),
            )
            _refresh_counts(db, run_id)
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

    # -- history -----------------------------------------------------------------------

    def runs(self, org_id: str | None = None, limit: int = 50) -> list[RunSummary]:
        """Return runs with a finished plan, newest first; of one org when ``org_id`` is given."""
        where, parameters = "plan_complete = 1", []
        if org_id is not None:
            where += " AND org_id = ?"
            parameters.append(org_id)
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                rows: list[sqlite3.Row] = self._db.execute(
                    f"SELECT * FROM runs WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                    (*parameters, limit),
                ).fetchall()
            finally:
                self._db.row_factory = None
        return [self._as_seen_now(_run_summary(row)) for row in rows]

    def run(self, run_id: str) -> RunSummary:
        """Return one run; raises LookupError for an unknown id."""
        return self._as_seen_now(_run_summary(self._run_row(run_id)))

    def _as_seen_now(self, summary: RunSummary) -> RunSummary:
        """Report an APPLYING run whose process is gone (Ctrl+C, a kill) as stopped, or finished.

        No process holds the org's sync lock then. A run with every row settled
        and nothing queued is FINISHED; any other is STOPPED, to be resumed.
        """
        if summary.state is not RunState.APPLYING or self.org_lock_held(summary.org_id):
            return summary
        if summary.work_left or summary.states.get(ItemState.QUEUED, 0):
            reason = summary.stop_reason or STOPPED_WHILE_APPLYING
            return dataclasses.replace(summary, state=RunState.STOPPED, stop_reason=reason)
        return dataclasses.replace(summary, state=RunState.FINISHED)

    def org_lock_held(self, org_id: str) -> bool:
        """Tell whether a sync (of this process or another) holds the org's lock now."""
        try:
            with self.lock_org(org_id):
                return False
        except RunInProgress:
            return True
        except OSError as error:
            log.info("the sync lock of org %s could not be checked: %s", org_id, error)
            return True

    def unfinished_run(self, org_id: str) -> RunSummary | None:
        """Return the org's newest run that was applied and still has rows to send or resolve."""
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
            "SELECT seq, COALESCE(upsert_key, key), source_ref, subject, attempts, next_attempt_at, "
            "error_code, message FROM items WHERE run_id = ? AND state = ? ORDER BY seq LIMIT ? OFFSET ?",
            (run_id, ItemState.QUEUED.value, -1 if limit is None else limit, offset),
        )
        return [
            QueuedItem(
                seq=int(seq), key=key, source_ref=source_ref, subject=subject, attempts=int(attempts),
                next_attempt_at=None if due is None else datetime.fromtimestamp(due, UTC),
                error_code=code, message=message,
            )
            for seq, key, source_ref, subject, attempts, due, code, message in rows
        ]

    def queued_count(self, run_id: str) -> int:
        """Count the run's backfill queue with one indexed query."""
        rows = self._rows(
            "SELECT COUNT(*) FROM items WHERE run_id = ? AND state = ?", (run_id, ItemState.QUEUED.value)
        )
        return int(rows[0][0])

    def _run_row(self, run_id: str) -> sqlite3.Row:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                row: sqlite3.Row | None = self._db.execute(
                    "SELECT * FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
            finally:
                self._db.row_factory = None
        if row is None:
            raise LookupError(f"no sync run {run_id} in the journal {self.path}")
        return row


class JournalRows(Sequence[PlanRow]):
    """A run's plan rows, read from the journal a page at a time."""

    def __init__(self, journal: Journal, run_id: str) -> None:
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
        page_start = index - index % _PAGE_SIZE
        if page_start != self._page_start:
            self._page = self._journal.plan_rows(self._run_id, page_start, page_start + _PAGE_SIZE)
            self._page_start = page_start
        return self._page[index - page_start]

    def __iter__(self) -> Iterator[PlanRow]:
        for start in range(0, self._length, _PAGE_SIZE):
            yield from self._journal.plan_rows(self._run_id, start, start + _PAGE_SIZE)

    def action_counts(self) -> dict[str, int]:
        """Count the rows per action with one query."""
        return self._journal.action_counts(self._run_id)


def _run_summary(row: sqlite3.Row) -> RunSummary:
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
    )


def _refresh_counts(db: sqlite3.Connection, run_id: str, *, actions: bool = False) -> None:
    """Store the run's counts per state (and per action) in its runs row, so the history is one query."""
    states = dict(db.execute(
        "SELECT state, COUNT(*) FROM items WHERE run_id = ? GROUP BY state", (run_id,)
    ).fetchall())
    db.execute("UPDATE runs SET state_counts = ? WHERE run_id = ?", (json.dumps(states), run_id))
    if actions:
        counts = dict(db.execute(
            "SELECT action, COUNT(*) FROM items WHERE run_id = ? GROUP BY action", (run_id,)
        ).fetchall())
        db.execute("UPDATE runs SET action_counts = ? WHERE run_id = ?", (json.dumps(counts), run_id))


def _item_values(run_id: str, seq: int, row: PlanRow, rules: FieldRules) -> tuple[Any, ...]:
    sent = row.action in (Action.CREATE, Action.UPDATE)
    if not sent:
        row = _without_bodies(row)
    return (
        run_id,
        seq,
        row.action.value,
        row.source_ref,
        row.key,
        rules.fold(row.key) if row.key else None,
        row.subject,
        row.reason,
        row.reason_code.value,
        row.upsert_key,
        json.dumps([dataclasses.asdict(task) for task in row.existing]),
        json.dumps(dict(row.record)),
        (ItemState.PLANNED if sent else ItemState.SKIPPED).value,
    )


def _journal_item(values: tuple[Any, ...]) -> JournalItem:
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
        reason_code=_reason_code(action, reason_code),
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


def _reason_code(action: str, stored: str) -> ReasonCode:
    return ReasonCode(stored) if stored else _CODE_OF_OLD_ROWS[Action(action)]


def _apply_update(db: sqlite3.Connection, run_id: str, update: ItemUpdate) -> None:
    db.execute(
        "UPDATE items SET state = ?, record_id = COALESCE(?, record_id), error_code = ?, message = ?, "
        "next_attempt_at = ? WHERE run_id = ? AND seq = ?",
        (update.state.value, update.record_id, update.error_code, update.message, update.next_attempt_at,
         run_id, update.seq),
    )
    row = update.row
    if row is None and update.state in SETTLED_STATES:
        # The same as _without_bodies, in SQLite's JSON functions so that no row is decoded here.
        db.execute(
            "UPDATE items SET record = json_remove(record, '$.Description'), existing = "
            "(SELECT COALESCE(json_group_array(json(json_remove(value, '$.description'))), '[]') "
            "FROM json_each(items.existing)) WHERE run_id = ? AND seq = ?",
            (run_id, update.seq),
        )
    elif row is not None and update.state in SETTLED_STATES:
        row = _without_bodies(row)
    if row is not None:
        db.execute(
            "UPDATE items SET action = ?, reason = ?, reason_code = ?, upsert_key = ?, existing = ?, "
            "record = ? WHERE run_id = ? AND seq = ?",
            (row.action.value, row.reason, row.reason_code.value, row.upsert_key,
             json.dumps([dataclasses.asdict(task) for task in row.existing]), json.dumps(dict(row.record)),
             run_id, update.seq),
        )



def _without_bodies(row: PlanRow) -> PlanRow:
    """Return the row without the e-mail body and the existing Tasks' descriptions.

    A row that is never sent again keeps only what the plan table, the plan CSV
    and the result files show, so the journal does not keep every e-mail's text.
    """
    record = {name: value for name, value in row.record.items() if name != "Description"}
    existing = tuple(dataclasses.replace(task, description="") for task in row.existing)
    return dataclasses.replace(row, record=record, existing=existing)
