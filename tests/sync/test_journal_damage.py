"""A damaged or unusable journal gives one clear error, and a stopped apply is not left "applying"."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.journal import Journal, JournalError, RunState
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.engine import apply_run
from backstory_desktop.sync.settings import SyncSettings
from tests.sync.mailboxes import write_mbox

FIELD = "Message_ID__c"
# The uid and gid of "nobody", which owns none of the folders the tests make.
NOBODY = 65534

# Opens a journal as "nobody" and prints what the admin would read. The interpreter and its standard
# library may live where "nobody" cannot read, so everything is imported before the uid is dropped.
_OPEN_AS_NOBODY = f"""
import os, sys
from pathlib import Path
from backstory_desktop.core.plan import FieldRules
from backstory_desktop.store.journal import Journal, JournalError
os.setgid({NOBODY})
os.setuid({NOBODY})
try:
    journal = Journal.open(Path(sys.argv[1]))
    journal.start_run(org_id="00D000000000001AAA", instance_url="https://127.0.0.1", username="a@b.example",
                      source="box.mbox", source_kind="mbox", rules=FieldRules("{FIELD}", False))
except JournalError as error:
    print(error)
else:
    print("written")
"""


def planned(admin: OrgConnection, mailbox: Path, journal: Journal) -> tuple[enablement.EnablementRun, str]:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    run.journal = journal
    assert enablement.check_field(run).status is StepStatus.PASSED
    plan = enablement.plan_sync(run, mailbox)
    assert plan.run_id is not None
    return run, plan.run_id


def test_open__damaged_file_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "journal.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"this is no database, only text " * 200)

    with pytest.raises(JournalError) as raised:
        Journal.open(path)

    moved = list(path.parent.glob("journal.sqlite3.damaged-*"))
    assert len(moved) == 1
    assert not path.exists()
    assert str(path) in str(raised.value)
    assert str(moved[0]) in str(raised.value)
    Journal.open(path).close()


def test_open__unopenable_path_named(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "journal.sqlite3"
    path.mkdir(parents=True)

    with pytest.raises(JournalError) as raised:
        Journal.open(path)

    assert str(path) in str(raised.value)
    assert "then start again" in str(raised.value)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder under /tmp that "nobody" may enter but not write, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("dropping to another user needs root")
    folder = Path(tempfile.mkdtemp(prefix="journal-read-only-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def _open_as_nobody(path: Path) -> str:
    finished = subprocess.run([sys.executable, "-c", _OPEN_AS_NOBODY, str(path)], capture_output=True,
                              text=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    return finished.stdout.strip()


def test_open__folder_not_writable_explained(shared_folder: Path) -> None:
    path = shared_folder / "sync" / "journal.sqlite3"

    sentence = _open_as_nobody(path)

    assert sentence == (
        f"The folder of the sync journal {path.parent} cannot be created or used (Permission denied): "
        "check that it belongs to your user, then start again."
    )


def test_open__read_only_journal_explained(shared_folder: Path) -> None:
    folder = shared_folder / "sync"
    Journal.open(folder / "journal.sqlite3").close()
    folder.chmod(0o755)
    (folder / "journal.sqlite3").chmod(0o644)

    sentence = _open_as_nobody(folder / "journal.sqlite3")

    assert sentence == (
        f"The sync journal {folder / 'journal.sqlite3'} is read-only, so this run cannot be recorded: "
        "make the file and its folder writable by your user, then start again."
    )


def test_open__read_only_file_in_own_folder_explained(shared_folder: Path) -> None:
    folder = shared_folder / "sync"
    Journal.open(folder / "journal.sqlite3").close()
    os.chown(folder, NOBODY, NOBODY)
    (folder / "journal.sqlite3").chmod(0o444)

    sentence = _open_as_nobody(folder / "journal.sqlite3")

    assert sentence.startswith(f"The sync journal {folder / 'journal.sqlite3'} is read-only"), sentence
    assert sentence.endswith("then start again.")


def test_write__closed_file_raises(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "journal.sqlite3")
    journal.close()

    with pytest.raises(JournalError):
        journal.set_result_folder("run", tmp_path)


def test_result_files__failed_write_not_passed(admin: OrgConnection, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "sync" / "journal.sqlite3")
    run, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 3, "rfail"), journal)
    (tmp_path / "sync" / "results").write_text("a file where the folder goes", encoding="utf-8")

    step = enablement.apply_sync(run)

    assert run.sync_result is not None and run.sync_result.created == 3
    assert step.status is StepStatus.FAILED
    assert "could not be written" in step.reason
    assert str(tmp_path / "sync" / "results") in step.reason
    (tmp_path / "sync" / "results").unlink()
    again = apply_run(admin, journal, run_id)
    assert again.result_files is not None and again.result_files.success.exists()
    assert again.result_files_error == ""


def test_history__killed_apply_not_applying(admin: OrgConnection, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "journal.sqlite3")
    _run, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 3, "killed"), journal)
    journal.set_run_state(run_id, RunState.APPLYING)

    assert journal.run(run_id).state is RunState.STOPPED
    assert journal.run(run_id).stop_reason
    with journal.lock_org(journal.run(run_id).org_id):
        assert journal.run(run_id).state is RunState.APPLYING
    apply_run(admin, journal, run_id)
    journal.set_run_state(run_id, RunState.APPLYING)
    assert journal.runs()[0].state is RunState.FINISHED


def test_wait__back_off_reported(default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "journal.sqlite3")
    _run, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 20, "waits"), journal)
    default_org.faults = FaultPlan(unable_to_lock_row_rate=1.0)
    messages: list[str] = []

    apply_run(admin, journal, run_id, settings=SyncSettings(max_attempts=3, first_retry_seconds=4.0),
              progress=lambda _done, _total, message: messages.append(message), sleep=lambda _s: None)

    default_org.faults = FaultPlan()
    assert "Waiting 4 s before attempt 2 of 3 (UNABLE_TO_LOCK_ROW)" in messages
    assert "Waiting 8 s before attempt 3 of 3 (UNABLE_TO_LOCK_ROW)" in messages


def test_stale_plan__bare_key_updated(admin: OrgConnection, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "journal.sqlite3")
    _run, run_id = planned(admin, write_mbox(tmp_path / "a.mbox", 3, "stale"), journal)
    admin.request("POST", "sobjects/Task", json={"Subject": "Cadence", FIELD: "stale-1@x.example",
                                                  "Status": "Completed"})
    with sqlite3.connect(journal.path) as db:
        db.execute("UPDATE runs SET created_at = ? WHERE run_id = ?",
                   ((datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds"), run_id))

    result = apply_run(admin, journal, run_id)

    rows = admin.query_all(f"SELECT Id, {FIELD} FROM Task WHERE {FIELD} LIKE '%stale-%'")
    assert sorted(str(row[FIELD]) for row in rows) == ["<stale-0@x.example>", "<stale-2@x.example>",
                                                       "stale-1@x.example"]
    assert (result.created, result.updated) == (2, 1)
