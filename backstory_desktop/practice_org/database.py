"""Checks on a practice org database path, made before anything is written beside it.

``check_database_path`` reads the path and never writes to it. It raises
``PracticeOrgDatabaseError`` for a folder, a file that is not SQLite, a damaged
SQLite file, another program's SQLite file, a missing folder and a file or
folder that cannot be written. The message is one sentence that names the path,
what is wrong and what to do. A missing parent folder is reported, not created,
because a mistyped folder name should not silently become a new practice org.
"""

from __future__ import annotations

import enum
import logging
import os
import sqlite3
import stat
from pathlib import Path

from backstory_desktop.practice_org.store import (
    APPLICATION_ID,
    BUSY_TIMEOUT_SECONDS,
    PRACTICE_ORG_TABLES,
)
from backstory_desktop.practice_org.tls import tls_folder

logger = logging.getLogger(__name__)

# The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"

DEFAULT_FILE_NAME = "practice-org.sqlite3"

_CHOOSE_ANOTHER = "choose another database file (--db)"


class PracticeOrgDatabaseError(ValueError):
    """A practice org database path that cannot be used, with the sentence to show the user."""

    def __init__(self, path: Path | str, reason: str, action: str) -> None:
        self.path = str(path)
        self.reason = reason
        self.action = action
        super().__init__(
            f"Cannot use {self.path} as the practice org database because {reason}, so {action}."
        )


class DatabaseState(enum.Enum):
    """The contents of a usable database path."""

    NEW = "new"              # nothing yet, or an empty file: the practice org is seeded there
    PRACTICE_ORG = "practice_org"


def check_database_path(db_path: Path | str) -> DatabaseState:
    """Check that a path can hold a practice org, reading it but creating nothing.

    Raises PracticeOrgDatabaseError for a path that cannot be used. A file of
    zero bytes counts as new, because SQLite itself treats it as an empty database.
    """
    if not str(db_path).strip():
        raise PracticeOrgDatabaseError(
            "''", "the path is empty", f"give a file name such as {DEFAULT_FILE_NAME} (--db)"
        )
    path = Path(db_path)
    try:
        return _check_path(path)
    except OSError as error:
        raise PracticeOrgDatabaseError(
            path, f"it cannot be inspected ({error.strerror or error})",
            f"check the permissions of its folders or {_CHOOSE_ANOTHER}",
        ) from error


def _check_path(path: Path) -> DatabaseState:
    _check_tls_folder(path)
    if not path.exists():
        _check_new_file_folder(path)
        return DatabaseState.NEW
    _check_existing_file(path)
    if path.stat().st_size == 0:
        return DatabaseState.NEW
    _check_practice_org_contents(path)
    return DatabaseState.PRACTICE_ORG


def _check_new_file_folder(path: Path) -> None:
    folder = path.absolute().parent
    if not folder.exists():
        raise PracticeOrgDatabaseError(
            path, f"the folder {folder} does not exist",
            f"create that folder first or {_CHOOSE_ANOTHER}",
        )
    if not folder.is_dir():
        raise PracticeOrgDatabaseError(path, f"{folder} is not a folder", _CHOOSE_ANOTHER)
    _check_folder_writable(path, folder)


def _check_existing_file(path: Path) -> None:
    if path.is_dir():
        raise PracticeOrgDatabaseError(
            path, "it is a folder, not a file",
            f"give a file inside it such as {path / DEFAULT_FILE_NAME} (--db)",
        )
    if not stat.S_ISREG(path.stat().st_mode):
        raise PracticeOrgDatabaseError(path, "it is not a regular file", _CHOOSE_ANOTHER)
    if not os.access(path, os.R_OK):
        raise PracticeOrgDatabaseError(
            path, "the file cannot be read (permission denied)",
            f"give yourself read and write permission on it or {_CHOOSE_ANOTHER}",
        )
    if not os.access(path, os.W_OK):
        raise PracticeOrgDatabaseError(
            path, "the file is read-only",
            f"make it writable (for example chmod u+w) or {_CHOOSE_ANOTHER}",
        )
    # SQLite writes a rollback journal beside the database on every change.
    _check_folder_writable(path, path.absolute().parent)


def _check_folder_writable(path: Path, folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PracticeOrgDatabaseError(
            path,
            f"the folder {folder} cannot be written, and SQLite writes a journal file beside "
            f"the database",
            f"make the folder writable or {_CHOOSE_ANOTHER} in another folder",
        )


def _check_tls_folder(path: Path) -> None:
    folder = tls_folder(path)
    if folder.exists() and not folder.is_dir():
        raise PracticeOrgDatabaseError(
            path,
            f"{folder} is a file, but the practice org keeps its certificates in a folder "
            f"of that name",
            f"move that file away or {_CHOOSE_ANOTHER}",
        )


def _check_practice_org_contents(path: Path) -> None:
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise PracticeOrgDatabaseError(
            path, "it is not a SQLite database",
            f"{_CHOOSE_ANOTHER}, or a name that does not exist yet to make a new practice org",
        )
    try:
        application_id, tables, problems = _read_database(path)
    except sqlite3.DatabaseError as error:
        if not _journal_path(path).exists():
            raise _damaged(path, str(error)) from error
        # A process killed in a write leaves a hot journal, which a read-only
        # connection cannot roll back; a normal connection rolls it back on open.
        _roll_back_hot_journal(path)
        try:
            application_id, tables, problems = _read_database(path)
        except sqlite3.DatabaseError as again:
            raise _damaged(path, str(again)) from again

    if not _is_practice_org(application_id, tables):
        listed = f"tables: {', '.join(sorted(tables)[:3])}" if tables else "no tables"
        raise PracticeOrgDatabaseError(
            path,
            f"it is another program's SQLite database ({listed}), not a practice org, "
            f"and it was left unchanged",
            _CHOOSE_ANOTHER,
        )
    if problems:
        raise _damaged(path, problems[0])


def _journal_path(path: Path) -> Path:
    return path.with_name(path.name + "-journal")


def _roll_back_hot_journal(path: Path) -> None:
    logger.info("rolling back the journal an interrupted write left beside %s", path)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        connection.close()


def _read_database(path: Path) -> tuple[int, set[str], list[str]]:
    """Return the application_id, the table names and quick_check's problems, read-only."""
    uri = f"{path.absolute().as_uri()}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        application_id = int(connection.execute("PRAGMA application_id").fetchone()[0])
        tables = {
            str(row[0])
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        results = [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
    finally:
        connection.close()
    problems = [] if results == ["ok"] else results
    return application_id, tables, problems


def _is_practice_org(application_id: int, tables: set[str]) -> bool:
    if application_id == APPLICATION_ID:
        return True
    # A practice org made before the application_id was written has the id 0.
    return application_id == 0 and tables >= PRACTICE_ORG_TABLES


def _damaged(path: Path, detail: str) -> PracticeOrgDatabaseError:
    return PracticeOrgDatabaseError(
        path, f"it is a damaged SQLite database ({detail})",
        f"{_CHOOSE_ANOTHER}, or delete this one if it is an old practice org",
    )
