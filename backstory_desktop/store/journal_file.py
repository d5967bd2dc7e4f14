"""The sync journal's file: its schema, opening, migrations of older files, and reads and writes.

The file is one SQLite database in WAL mode with ``synchronous=FULL``, so a
committed state survives a power cut. A damaged file is moved aside, never reset.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from backstory_desktop.store import paths
from backstory_desktop.store.journal_records import ITEM_COLUMNS, JournalItem, journal_item
from backstory_desktop.store.org_lock import OrgLock

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite3"
# SQLite allows 32,766 host parameters per statement since 3.32; lists stay far below.
_PARAMETERS_PER_QUERY = 500
PAGE_SIZE = 500
# A run whose planning never finished is deleted when the journal is opened this long after it started.
ABANDONED_PLAN_AGE = timedelta(hours=1)


class JournalError(Exception):
    """A journal file that cannot be read or written: ``str()`` names it, what is wrong and what to do."""

    def __init__(self, sentence: str, path: Path, moved_to: Path | None = None) -> None:
        super().__init__(sentence)
        self.path = path
        self.moved_to = moved_to


# SQLite's primary result codes, grouped by what the admin can do about them.
_READ_ONLY_CODES = frozenset({"SQLITE_READONLY"})
_DAMAGED_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_UNREACHABLE_CODES = frozenset({
    "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL",
})


def _primary_code(error: sqlite3.Error) -> str:
    """Return the primary result code name of an SQLite error, such as SQLITE_IOERR for SQLITE_IOERR_READ.

    Errors raised by the sqlite3 module itself (a closed connection) have no code and return "".
    """
    name = getattr(error, "sqlite_errorname", None) or ""
    return "_".join(name.split("_")[:2])


def _is_damaged(error: sqlite3.Error) -> bool:
    """Tell whether SQLite found the file damaged or not a database at all."""
    return _primary_code(error) in _DAMAGED_CODES


def _journal_error(path: Path, error: sqlite3.Error) -> JournalError:
    """Explain a failed read or write of the journal file at ``path``."""
    text = str(error)
    code = _primary_code(error)
    if code in _READ_ONLY_CODES:
        return JournalError(
            f"The sync journal {path} is read-only, so this run cannot be recorded: make the file and its "
            "folder writable by your user, then start again.", path)
    if code in _DAMAGED_CODES:
        return JournalError(
            f"The sync journal {path} is damaged ({text}): close the app, move the file away, then start "
            "again; the run history in it is lost.", path)
    if code in _UNREACHABLE_CODES:
        return JournalError(
            f"The sync journal {path} cannot be opened or written ({text}): check that the file and its "
            "folder belong to your user and the disk has room, then start again.", path)
    return JournalError(
        f"The sync journal {path} cannot be read or written ({text}): check the file and its folder, "
        "then start again.", path)


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
    casefolded_key TEXT,
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


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def chunks(values: Sequence[Any], size: int = _PARAMETERS_PER_QUERY) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class JournalFile:
    """The journal file and its reads and writes, safe to share between the GUI thread and one worker."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | None = None) -> Self:
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
            journal._add_casefolded_key_column()
            journal._delete_abandoned_plans()
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            if _is_damaged(error):
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
                refresh_counts(db, run_id, actions=True)

    def _add_reason_code_column(self) -> None:
        """Add the reason code column to an items table written before it existed; old rows keep ''."""
        columns = {str(row[1]) for row in self._rows("PRAGMA table_info(items)")}
        if "reason_code" not in columns:
            with self._transaction() as db:
                db.execute("ALTER TABLE items ADD COLUMN reason_code TEXT NOT NULL DEFAULT ''")

    def _add_casefolded_key_column(self) -> None:
        """Add the casefolded key column and its index; rows written before it keep NULL.

        SQLite's lower() folds ASCII only, so the column cannot be filled here; ``first_rows``
        with ``any_case`` does not match those older rows.
        """
        columns = {str(row[1]) for row in self._rows("PRAGMA table_info(items)")}
        with self._transaction() as db:
            if "casefolded_key" not in columns:
                db.execute("ALTER TABLE items ADD COLUMN casefolded_key TEXT")
            db.execute(
                "CREATE INDEX IF NOT EXISTS items_by_casefolded_key ON items (run_id, casefolded_key)"
            )

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

    def lock_org(self, org_id: str, *, holder: str = "") -> OrgLock:
        """Hold the org's sync lock for the block; raises RunInProgress when another sync holds it.

        ``holder`` names who takes it (a username), for the sentence another process shows.
        """
        return OrgLock(self.path.parent / "locks", org_id, holder)


    def _items_where(
        self, where: str, parameters: Sequence[Any], run_id: str, *, limit: int | None = None
    ) -> list[JournalItem]:
        sql = f"SELECT {ITEM_COLUMNS} FROM items WHERE run_id = ? AND {where} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [journal_item(row) for row in self._rows(sql, (run_id, *parameters))]


    def _run_row(self, run_id: str) -> sqlite3.Row:
        rows = self._named_rows("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise LookupError(f"no sync run {run_id} in the journal {self.path}")
        return rows[0]

    def _named_rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Select rows whose columns can be read by name."""
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                rows: list[sqlite3.Row] = self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                raise _journal_error(self.path, error) from error
            finally:
                self._db.row_factory = None
        return rows


def refresh_counts(db: sqlite3.Connection, run_id: str, *, actions: bool = False) -> None:
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

