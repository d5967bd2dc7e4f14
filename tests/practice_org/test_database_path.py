"""A practice org database path is checked, and locked, before anything is written beside it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from backstory_desktop.practice_org import DESKTOP_WINDOW_HOLDER, PracticeOrg, PracticeOrgDatabaseError
from backstory_desktop.practice_org.database import DatabaseState, check_database_path
from backstory_desktop.practice_org.store import APPLICATION_ID
from tests.practice_org.practice_login import login
from tests.practice_org.read_only import read_only


def table_names(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(str(row[0]) for row in rows)


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def make_foreign_database(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
        connection.commit()


def make_practice_database(path: Path) -> None:
    PracticeOrg(path).stop()


def assert_rejected(db: Path | str, *words: str) -> PracticeOrgDatabaseError:
    with pytest.raises(PracticeOrgDatabaseError) as raised:
        PracticeOrg(db)
    message = str(raised.value)
    assert str(db) in message
    for word in words:
        assert word in message
    return raised.value


def test_database__folder_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "orgs"
    folder.mkdir()

    assert_rejected(folder, "is a folder", str(folder / "practice-org.sqlite3"))

    assert files_in(tmp_path) == ["orgs"]
    assert files_in(folder) == []


def test_database__text_file_is_rejected_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("not a database")

    assert_rejected(db, "is not a SQLite database")

    assert db.read_text() == "not a database"
    assert files_in(tmp_path) == ["notes.db"]


def test_database__foreign_sqlite_file_is_left_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "notes.sqlite"
    make_foreign_database(db)
    before = db.read_bytes()

    assert_rejected(db, "another program's SQLite database", "notes", "left unchanged")

    assert db.read_bytes() == before
    assert table_names(db) == ["notes"]
    assert files_in(tmp_path) == ["notes.sqlite"]


def test_database__foreign_application_id_rejected(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("PRAGMA application_id = 7")
        connection.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        connection.execute("CREATE TABLE records (id TEXT)")

    assert_rejected(db, "another program's SQLite database")

    assert table_names(db) == ["meta", "records"]


@pytest.mark.parametrize("kept_fraction", [0.3, 0.05])
def test_database__truncated_practice_org_is_rejected(tmp_path: Path, kept_fraction: float) -> None:
    whole = tmp_path / "whole.db"
    make_practice_database(whole)
    data = whole.read_bytes()
    db = tmp_path / "cut" / "org.db"
    db.parent.mkdir()
    db.write_bytes(data[: int(len(data) * kept_fraction)])

    assert_rejected(db, "damaged SQLite database")

    assert files_in(db.parent) == ["org.db"]


def test_database__corrupt_practice_org_is_rejected(tmp_path: Path) -> None:
    whole = tmp_path / "whole.db"
    make_practice_database(whole)
    data = bytearray(whole.read_bytes())
    data[4096 * 3 : 4096 * 5] = b"\xff" * 8192
    db = tmp_path / "bad" / "org.db"
    db.parent.mkdir()
    db.write_bytes(bytes(data))

    assert_rejected(db, "damaged SQLite database")

    assert files_in(db.parent) == ["org.db"]


def test_database__empty_string_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(PracticeOrgDatabaseError, match="the path is empty"):
        PracticeOrg("")


def test_database__missing_folder_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "org.db"

    assert_rejected(db, f"the folder {db.parent} does not exist", "create that folder")

    assert files_in(tmp_path) == []


def test_database__file_as_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")

    assert_rejected(tmp_path / "plain" / "org.db", "is not a folder")


def test_database__read_only_file_is_rejected(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    make_practice_database(db)
    before = db.read_bytes()

    with read_only(db):
        assert_rejected(db, "read-only")

    assert db.read_bytes() == before


def test_database__read_only_folder_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()

    with read_only(folder):
        assert_rejected(folder / "org.db", "cannot be written")

    assert files_in(folder) == []


def test_database__read_only_folder_of_existing_org(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    make_practice_database(folder / "org.db")

    with read_only(folder):
        assert_rejected(folder / "org.db", "cannot be written", "journal")


def test_database__empty_file_is_seeded(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    db.touch()

    with PracticeOrg(db) as org:
        assert org.store.count_records("User") > 0


def test_database__marked_with_application_id(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    make_practice_database(db)

    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert check_database_path(db) is DatabaseState.PRACTICE_ORG


def test_database__unmarked_practice_org_is_still_accepted(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    make_practice_database(db)
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("PRAGMA application_id = 0")

    with PracticeOrg(db) as org:
        assert org.store.get_meta("scenario") == "default"


def test_lock__second_org_is_rejected(tmp_path: Path) -> None:
    db = tmp_path / "org.db"

    with PracticeOrg(db):
        error = assert_rejected(db, "another practice org", f"process {os.getpid()}")

    assert "stop that one" in str(error)


# Holds the practice org at argv[1] as the desktop window does, until its stdin closes.
_HOLD_AS_DESKTOP_WINDOW = """
import sys
from backstory_desktop.practice_org import DESKTOP_WINDOW_HOLDER, PracticeOrg
with PracticeOrg(sys.argv[1], holder=DESKTOP_WINDOW_HOLDER):
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_lock__desktop_window_named(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_AS_DESKTOP_WINDOW, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        error = assert_rejected(db, f"the Backstory Desktop window (process {holder.pid}) is using it")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)

    assert str(error).endswith("so close it or choose another database file (--db).")


def test_lock__holder_name_cleared_on_stop(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    PracticeOrg(db, holder=DESKTOP_WINDOW_HOLDER).stop()

    with PracticeOrg(db):
        error = assert_rejected(db, f"another practice org (process {os.getpid()}) is using it")

    assert "Backstory Desktop" not in str(error)


def test_lock__long_holder_name_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holder name"):
        PracticeOrg(tmp_path / "org.db", holder="x" * 41)

    with PracticeOrg(tmp_path / "org.db", holder="x" * 40):
        assert_rejected(tmp_path / "org.db", f"{'x' * 40} (process {os.getpid()}) is using it")


def test_lock__released_by_stop(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    PracticeOrg(db).stop()

    with PracticeOrg(db) as org:
        assert org.store.get_meta("scenario") == "default"


def test_lock__released_when_the_database_is_rejected_late(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    with pytest.raises(ValueError, match="unknown practice org scenario"):
        PracticeOrg(db, scenario="blank")

    with PracticeOrg(db) as org:
        assert org.scenario == "default"


def test_busy_timeout__write_waits_for_another_connection(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    with PracticeOrg(db) as org:
        admin = login(org, org.admin_username)
        outside = sqlite3.connect(db, isolation_level=None)
        outside.execute("BEGIN IMMEDIATE")
        outcome: dict[str, object] = {}

        def create_task() -> None:
            try:
                outcome["result"] = admin.sf.Task.create({"Subject": "Email: while locked"})
            except Exception as error:  # the assertion below shows whatever was raised
                outcome["error"] = error

        writer = threading.Thread(target=create_task)
        writer.start()
        # Hold the write lock while the request reaches the database, then let it through.
        time.sleep(0.5)
        outside.execute("COMMIT")
        outside.close()
        writer.join(timeout=30)

    assert "error" not in outcome
    assert outcome["result"]["success"] is True  # type: ignore[index]


def test_database__write_cut_short_by_a_crash_is_rolled_back_not_called_damaged(tmp_path: Path) -> None:
    database = tmp_path / "crashed.sqlite3"
    with PracticeOrg(database):
        pass
    crash = (
        "import os, sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "connection.execute('PRAGMA cache_size=1')\n"
        "connection.execute('BEGIN IMMEDIATE')\n"
        "connection.execute(\"UPDATE records SET fields = fields || ''\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(database)], check=True, timeout=60)
    assert database.with_name(database.name + "-journal").exists()

    with PracticeOrg(database) as org:
        count = org.store._execute("SELECT count(*) FROM records").fetchone()[0]

    assert count > 0


def test_database__seed_cut_short_is_seeded_on_the_next_start(tmp_path: Path) -> None:
    database = tmp_path / "half.sqlite3"
    with pytest.raises(ValueError):
        PracticeOrg(database, mailbox=tmp_path / "missing.mbox")

    with PracticeOrg(database) as org:
        scenario = org.store.get_meta("scenario")
        users = org.store._execute("SELECT count(*) FROM records WHERE sobject = 'User'").fetchone()[0]

    assert scenario == "default"
    assert users > 0
