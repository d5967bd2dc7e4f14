"""The `sync` command on the built-in practice profile, started from a practice org database file.

It covers plan (nothing written), apply (plan, then write once confirmed), resume, retry and history.
The exit statuses are those of `check`: 0 done, 1 failed, 2 usage, profile or source error.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop import org_sessions
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cli import main
from backstory_desktop.core.plan import stored_spelling_advice
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.store.settings import save_profile
from backstory_desktop.sync_cli import ProgressPrinter
from tests.consent_browser import ConsentBrowser, served_profile

# The practice org's tables that hold org data; sign-ins and API usage counts live in others.
ORG_DATA_TABLES = ("records", "custom_fields", "sequences")


@pytest.fixture(autouse=True)
def _own_ctrl_c() -> Iterator[None]:
    """Give the test run its Ctrl+C handler back, which the sync command keeps for the rest of its process."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def _sync(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, Any]]:
    status = main(["sync", *options, "--json"])
    return status, json.loads(capsys.readouterr().out)


def _org_data(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as database:
        return {table: database.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ORG_DATA_TABLES}


def _practice_db(tmp_path: Path, scenario: str = "default") -> Path:
    path = tmp_path / f"{scenario}.sqlite3"
    PracticeOrg(path, scenario=scenario).stop()
    return path


# -- usage errors, before the org is opened ---------------------------------------------------


def test_sync_plan__no_source_is_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(tmp_path / "org.sqlite3"))

    assert status == 2
    assert report["passed"] is False
    assert "--source" in report["error"]
    assert not (tmp_path / "org.sqlite3").exists()


def test_sync_plan__missing_source_is_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _sync(capsys, "plan", "--org", "practice", "--source", str(tmp_path / "none.mbox"))

    assert status == 2
    assert f"{tmp_path / 'none.mbox'} does not exist" in report["error"]


def test_sync_history__source_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _sync(capsys, "history", "--org", "practice", "--source", str(sample_mailbox_path()))

    assert status == 2
    assert report["error"] == "sync history reads no source, so leave --source out."


def test_sync_apply__no_yes_without_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _sync(capsys, "apply", "--org", "practice", "--source", str(sample_mailbox_path()))

    assert status == 2
    assert "add --yes" in report["error"]


def test_sync__unknown_profile_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _sync(capsys, "history", "--org", "nowhere")

    assert status == 2
    assert report["error"].startswith("No org profile is saved as 'nowhere'")


@pytest.mark.parametrize(("value", "message"), [
    ("0", "--bulk-threshold 0 is below 1: give 1 or more."),
    ("many", "--bulk-threshold 'many' is not a whole number: give a record count such as 2000."),
])
def test_sync__bad_bulk_threshold_rejected(capsys: pytest.CaptureFixture[str], value: str,
                                           message: str) -> None:
    status, report = _sync(capsys, "plan", "--org", "practice", "--bulk-threshold", value)

    assert status == 2
    assert report["error"] == message


def test_sync_plan__plan_csv_folder_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _sync(capsys, "plan", "--org", "practice", "--source", str(sample_mailbox_path()),
                           "--plan-csv", str(tmp_path / "none" / "plan.csv"))

    assert status == 2
    assert "its folder does not exist" in report["error"]


def test_sync_plan__no_key_field_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path, "fresh")
    before = _org_data(db_path)

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path),
                           "--source", str(sample_mailbox_path()))

    assert status == 1
    assert report["error"].startswith("The sync cannot run because the Message-ID field is not usable")
    assert _org_data(db_path) == before


def test_progress_printer__new_message_or_each_second(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    printer = ProgressPrinter(clock=lambda: now[0])

    printer(1, 10, "Reading sample.mbox")
    printer(2, 10, "Reading sample.mbox")
    now[0] = 1.5
    printer(3, 10, "Reading sample.mbox")
    printer(0, 4, "Sent 0 of 4 Tasks")
    printer(10, 10, "Reading sample.mbox")
    printer(10, 10, "Reading sample.mbox")

    assert capsys.readouterr().err.splitlines() == [
        "Reading sample.mbox (10%)", "Reading sample.mbox (30%)", "Sent 0 of 4 Tasks",
        "Reading sample.mbox (100%)"]


def test_sync_history__reader_closing_pipe_is_quiet(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "backstory_desktop", "sync", "history", "--org", "practice",
               "--db", str(tmp_path / "none.sqlite3")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    # The reader closes the pipe before the command prints, as `head` does once it has its lines.
    process.stdout.close()

    stderr = process.stderr.read().decode()
    status = process.wait(timeout=60)

    assert "Traceback" not in stderr, stderr
    assert "BrokenPipeError" not in stderr, stderr
    assert status == 0


# -- plan, apply, resume, retry and history on the practice org --------------------------------


def test_sync_plan__writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    before = _org_data(db_path)
    plan_csv = tmp_path / "plan.csv"

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path),
                           "--source", str(sample_mailbox_path()), "--plan-csv", str(plan_csv))

    assert status == 0
    assert report["counts"]["create"] > 0
    assert report["counts"]["conflict"] > 0
    assert report["run"]["run_id"]
    assert "nothing was written" in report["reason"]
    assert report["plan_csv"] == str(plan_csv)
    assert len(plan_csv.read_text(encoding="utf-8-sig").splitlines()) > sum(report["counts"].values())
    assert _org_data(db_path) == before


def test_sync_apply__second_apply_creates_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    options = ("--org", "practice", "--db", str(db_path), "--source", str(sample_mailbox_path()), "--yes")

    status, first = _sync(capsys, "apply", *options)
    again_status, again = _sync(capsys, "apply", *options)

    assert status == 0, first
    assert first["run"]["states"].get("created", 0) == first["counts"]["create"] > 0
    assert again_status == 0, again
    assert again["counts"]["create"] == 0
    assert again["run"]["states"].get("created", 0) == 0


def test_sync_history__lists_runs_newest_first(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = ("--source", str(sample_mailbox_path()))
    _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), *source)
    _, applied = _sync(capsys, "apply", "--org", "practice", "--db", str(db_path), *source, "--yes")

    status, report = _sync(capsys, "history", "--org", "practice", "--db", str(db_path))

    assert status == 0
    assert report["runs"][0]["run_id"] == applied["run"]["run_id"]
    assert len(report["runs"]) == 2
    assert report["runs"][0]["state"] == "finished"


def test_sync_resume__nothing_unfinished(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status, report = _sync(capsys, "resume", "--org", "practice", "--db", str(db_path), "--yes")

    assert status == 0
    assert report["passed"] is True
    assert report["reason"] == "Nothing to resume: no run of this org stopped before its end."


def test_sync_retry__nothing_queued(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status, report = _sync(capsys, "retry", "--org", "practice", "--db", str(db_path), "--yes")

    assert status == 0
    assert report["passed"] is True
    assert report["reason"] == "Nothing to retry: no run of this org has queued records."


@pytest.mark.parametrize(("action", "reason"), [
    ("resume", "Nothing to resume: no run of this org stopped before its end."),
    ("retry", "Nothing to retry: no run of this org has queued records."),
])
def test_sync_resume__nothing_to_do_without_terminal(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     action: str, reason: str) -> None:
    db_path = _practice_db(tmp_path)

    # Without --yes and without a terminal: nothing to confirm, so no confirmation is needed.
    status, report = _sync(capsys, action, "--org", "practice", "--db", str(db_path))

    assert status == 0, report
    assert report["reason"] == reason


def test_sync_history__practice_db_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _sync(capsys, "history", "--org", "practice", "--db", str(tmp_path))

    assert status == 2, report
    suggested = tmp_path / "practice-org.sqlite3"
    assert report["error"] == (f"Cannot use {tmp_path} as the practice org database because it is a folder, "
                               f"not a file, so give a file inside it such as {suggested} (--db).")


def test_sync_history__writes_missing_result_files(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    options = ("--org", "practice", "--db", str(db_path))
    status, applied = _sync(capsys, "apply", *options, "--source", str(sample_mailbox_path()), "--yes")
    folder = Path(applied["run"]["result_folder"])
    # As after a stop between the last write and the result files: the journal names no files.
    shutil.rmtree(folder)
    journal = sqlite3.connect(folder.parent.parent / "journal.sqlite3")
    with closing(journal), journal:
        journal.execute("UPDATE runs SET result_folder = NULL")

    history_status, history = _sync(capsys, "history", *options)

    assert status == 0, applied
    assert history_status == 0, history
    assert history["runs"][0]["result_folder"] == str(folder)
    written = (folder / "success.csv").read_text(encoding="utf-8-sig")
    assert written.count('"Item Created"') == applied["run"]["states"]["created"]


def test_sync_plan__cadence_csv_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "activities.csv"
    source.write_text("Message ID,Subject,Body,From,To,Sent At\n"
                      "<csv.1@drill.backstory.example>,Intro,Hello,x1z@ddd.com,x1z@zzz.org,2026-11-02 10:00\n"
                      ",No key,Hello,x1z@ddd.com,x1z@zzz.org,2026-11-02 10:00\n", encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source))

    assert status == 0, report
    assert report["counts"]["create"] == 1
    assert report["counts"]["invalid"] == 1
    assert report["run"]["source_kind"] == "csv"


def test_sync_plan__csv_without_key_column(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "people.csv"
    source.write_text("Name,Email\nAda,ada@example.com\n", encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source))

    assert status == 2
    assert report["error"] == (f"No column of {source} is chosen for the Message-ID, so name the column that "
                               "contains each e-mail's Message-ID with --csv-column message_id=HEADER (the "
                               "file's columns are 'Name', 'Email').")


def test_sync_apply__declined_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    before = _org_data(db_path)

    status = main(["sync", "apply", "--org", "practice", "--db", str(db_path), "--source",
                   str(sample_mailbox_path())])

    captured = capsys.readouterr()
    assert status == 1
    assert "+ create " in captured.out
    assert "Nothing was written because the changes were not confirmed." in captured.err
    assert _org_data(db_path)["records"] == before["records"]


class _CtrlCAt(io.StringIO):
    """Standard error that raises KeyboardInterrupt, as Ctrl+C does, at its first line starting with prefix.

    The progress lines go to standard error, so the key press lands at a chosen step of the sync.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix
        self.pressed = False

    def write(self, text: str) -> int:
        if not self.pressed and text.startswith(self._prefix):
            self.pressed = True
            raise KeyboardInterrupt
        return super().write(text)


def test_sync_apply__ctrl_c_while_planning(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    before = _org_data(db_path)
    stderr = _CtrlCAt("Reading ")
    monkeypatch.setattr("sys.stderr", stderr)

    status, report = _sync(capsys, "apply", "--org", "practice", "--db", str(db_path), "--source",
                           str(sample_mailbox_path()), "--yes")
    resume_status, resume = _sync(capsys, "resume", "--org", "practice", "--db", str(db_path), "--yes")

    assert stderr.pressed
    assert status == 1
    assert report["error"] == ("The sync was stopped with Ctrl+C before it wrote anything to the org, so "
                               "run the same command again to start over.")
    assert report["error"] in stderr.getvalue()
    assert report["run"] is None
    assert report["next_step"] == ("The journal contains no run of this command, because its plan was not "
                                   "finished.")
    assert _org_data(db_path) == before
    assert resume_status == 0
    assert resume["reason"] == "Nothing to resume: no run of this org stopped before its end."


def test_sync_apply__ctrl_c_while_writing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    options = ("--org", "practice", "--db", str(db_path))
    # Through Bulk API 2.0 the job is recorded in the journal before its records are uploaded.
    stderr = _CtrlCAt("Uploading ")
    monkeypatch.setattr("sys.stderr", stderr)

    status, report = _sync(capsys, "apply", *options, "--source", str(sample_mailbox_path()),
                           "--bulk-threshold", "1", "--yes")
    resume_status, resume = _sync(capsys, "resume", *options, "--yes")

    assert stderr.pressed
    assert status == 1
    assert report["error"] == (f"The sync was stopped with Ctrl+C while it was writing run "
                               f"{report['run']['run_id']} to the org, so continue it with sync resume.")
    assert report["run"]["state"] == "stopped"
    assert report["next_step"] == ("Continue it with: backstory-desktop sync resume --org practice --db "
                                   f"{db_path}")
    assert resume_status == 0, resume
    assert resume["run"]["run_id"] == report["run"]["run_id"]
    assert resume["run"]["state"] == "finished"
    assert resume["run"]["states"].get("created", 0) == resume["counts"]["create"] > 0


def test_sync_apply__ctrl_c_after_last_write(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    options = ("--org", "practice", "--db", str(db_path))
    # The sample's rows fit in one call, whose "Sent" line comes once its outcomes are recorded.
    stderr = _CtrlCAt("Sent ")
    monkeypatch.setattr("sys.stderr", stderr)

    status, report = _sync(capsys, "apply", *options, "--source", str(sample_mailbox_path()), "--yes")
    resume_status, _ = _sync(capsys, "resume", *options, "--yes")

    assert stderr.pressed
    assert status == 0, report
    assert report["reason"].startswith(f"Ctrl+C came after the sync's last write to the org, and run "
                                       f"{report['run']['run_id']} is finished: created ")
    assert report["run"]["state"] == "finished"
    # The key press came before the apply wrote its result files, so they are written from the journal.
    assert (Path(report["run"]["result_folder"]) / "success.csv").is_file()
    assert resume_status == 0


def test_sync_apply__sigint_after_last_write(tmp_path: Path) -> None:
    source = _new_messages(tmp_path / "mail.mbox", 300)
    command = [sys.executable, "-m", "backstory_desktop", "sync", "apply", "--org", "practice", "--db",
               str(tmp_path / "org.sqlite3"), "--source", str(source), "--yes"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(iter(process.stderr.readline, "")))
    reader.start()
    # Ctrl+C from the moment every Task is sent, again and again until the command ends, so one
    # of the presses lands while the command closes the journal and stops the practice org.
    while process.poll() is None and not any(line.startswith("Sent 300 of 300") for line in stderr):
        time.sleep(0.005)
    while process.poll() is None:
        os.kill(process.pid, signal.SIGINT)
        time.sleep(0.005)
    out = process.stdout.read()
    reader.join(timeout=60)

    assert process.returncode == 0, "".join(stderr)
    assert "Ctrl+C before it wrote anything" not in "".join(stderr)
    lines = out.splitlines()
    assert lines[0].startswith(("This command: Created 300,", "Ctrl+C came after the sync's last write")), out
    assert "  finished  " in lines[1]
    assert lines[2].startswith("  result files: ")
    assert (Path(lines[2].removeprefix("  result files: ")) / "success.csv").is_file()


class _Terminal(io.StringIO):
    """Standard input that reads as a terminal, with the admin's reply in it."""

    def isatty(self) -> bool:
        return True


def test_sync_plan__text_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status = main(["sync", "plan", "--org", "practice", "--db", str(db_path), "--source",
                   str(sample_mailbox_path())])

    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[0].startswith("Planned create ")
    assert out[1].startswith("run ")


# -- the plan file never replaces a source or a file of another kind ---------------------------


def _plan_options(db_path: Path, source: Path, plan_csv: Path) -> tuple[str, ...]:
    return ("plan", "--org", "practice", "--db", str(db_path), "--source", str(source),
            "--plan-csv", str(plan_csv))


@pytest.mark.parametrize("name", ["victim.mbox", "victim.csv"])
def test_sync_plan__plan_csv_is_source(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    if name.endswith(".mbox"):
        source.write_bytes(sample_mailbox_path().read_bytes())
    else:
        source.write_text(CADENCE_CSV, encoding="utf-8")
    before = source.read_bytes()

    status, report = _sync(capsys, *_plan_options(tmp_path / "org.sqlite3", source, source))

    assert status == 2
    assert report["error"] == (f"The plan file {source} is the source {source}, so choose another "
                               "--plan-csv file.")
    assert source.read_bytes() == before


def test_sync_plan__plan_csv_is_source_by_link(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "victim.csv"
    source.write_text(CADENCE_CSV, encoding="utf-8")
    link = tmp_path / "plan.csv"
    link.symlink_to(source)

    status, report = _sync(capsys, *_plan_options(tmp_path / "org.sqlite3", source, link))

    assert status == 2
    assert f"The plan file {link} is the source {source}" in report["error"]
    assert source.read_text(encoding="utf-8") == CADENCE_CSV


@pytest.mark.parametrize("layout", ["maildir", "eml"])
def test_sync_plan__plan_csv_inside_source_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  layout: str) -> None:
    folder = tmp_path / layout
    message = b"From: a@example.com\nMessage-ID: <m.1@example.com>\nSubject: Hi\n\nHello\n"
    if layout == "maildir":
        for name in ("cur", "new", "tmp"):
            (folder / name).mkdir(parents=True)
        (folder / "cur" / "1.host:2,S").write_bytes(message)
        plan_csv = folder / "cur" / "plan.csv"
    else:
        folder.mkdir()
        (folder / "1.eml").write_bytes(message)
        plan_csv = folder / "plan.csv"

    status, report = _sync(capsys, *_plan_options(tmp_path / "org.sqlite3", folder, plan_csv))

    assert status == 2
    assert report["error"] == (f"The plan file {plan_csv} is inside the source folder {folder}, so choose a "
                               "--plan-csv file outside it.")
    assert not plan_csv.exists()


def test_sync_plan__plan_csv_of_another_kind_kept(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "contacts.csv"
    other.write_text("Name,Email\nAda,ada@example.com\n", encoding="utf-8")

    status, report = _sync(capsys, *_plan_options(tmp_path / "org.sqlite3", sample_mailbox_path(), other))

    assert status == 2
    assert report["error"] == (f"The plan file {other} exists and is not a plan CSV that this app wrote, so "
                               "choose another --plan-csv file or move that one away.")
    assert other.read_text(encoding="utf-8") == "Name,Email\nAda,ada@example.com\n"
    assert not (tmp_path / "org.sqlite3").exists()


def test_sync_plan__plan_csv_replaces_old_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    plan_csv = tmp_path / "plan.csv"
    source = tmp_path / "activities.csv"
    source.write_text(CADENCE_CSV, encoding="utf-8")
    first_status, _ = _sync(capsys, *_plan_options(db_path, sample_mailbox_path(), plan_csv))

    status, report = _sync(capsys, *_plan_options(db_path, source, plan_csv))

    assert first_status == 0
    assert status == 0, report
    assert len(plan_csv.read_text(encoding="utf-8-sig").splitlines()) == 3


# -- resume and retry take the sync settings ---------------------------------------------------


def test_sync_resume__bulk_threshold_used(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    options = ("--org", "practice", "--db", str(db_path))
    monkeypatch.setattr("sys.stderr", _CtrlCAt("Uploading "))
    _sync(capsys, "apply", *options, "--source", str(sample_mailbox_path()), "--bulk-threshold", "1", "--yes")
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)

    status, report = _sync(capsys, "resume", *options, "--bulk-threshold", "1", "--yes")

    assert status == 0, report
    assert report["run"]["state"] == "finished"
    # Sent through Bulk API 2.0, which the default threshold of 2,000 records leaves out for this sample.
    assert "Uploading " in stderr.getvalue()


def test_sync_resume__text_tells_command_from_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    options = ("--org", "practice", "--db", str(db_path))
    monkeypatch.setattr("sys.stderr", _CtrlCAt("Uploading "))
    _sync(capsys, "apply", *options, "--source", str(sample_mailbox_path()), "--bulk-threshold", "1", "--yes")
    monkeypatch.setattr("sys.stderr", io.StringIO())

    status = main(["sync", "resume", *options, "--yes"])

    out = capsys.readouterr().out.splitlines()
    assert status == 0, out
    assert out[0].startswith("This command: Created "), out
    assert out[1].startswith("run ")
    assert "(rows of the whole run: created " in out[1]


# -- the CSV mapping on the command line -------------------------------------------------------

CADENCE_CSV = ("Message ID,Subject,Body,From,To,Sent At\n"
               "<csv.1@drill.backstory.example>,Intro,Hello,x1z@ddd.com,x1z@zzz.org,2026-11-02 10:00\n"
               ",No key,Hello,x1z@ddd.com,x1z@zzz.org,2026-11-02 10:00\n")


def test_sync_plan__csv_column_chooses_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "activities.csv"
    source.write_text("Ident,Subject,From,Sent At\n"
                      "<csv.2@drill.backstory.example>,Intro,x1z@ddd.com,2026-11-02 10:00\n",
                      encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source),
                           "--csv-column", "message_id=Ident", "--csv-column", "subject=From")

    assert status == 0, report
    assert report["counts"]["create"] == 1
    assert report["counts"]["invalid"] == 0


def test_sync_plan__csv_column_not_in_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "activities.csv"
    source.write_text(CADENCE_CSV, encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source),
                           "--csv-column", "message_id=Ident")

    assert status == 2
    assert report["error"].startswith("The column 'Ident' chosen for Message-ID is not in the file")


def test_sync_plan__csv_key_column_chosen_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "activities.csv"
    source.write_text(CADENCE_CSV, encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source),
                           "--csv-column", "subject=Message ID")

    assert status == 2
    assert report["error"] == ("The column 'Message ID' is chosen for both Message-ID and Subject, so choose "
                               "another column for Subject with --csv-column subject=HEADER.")


def test_sync_plan__csv_column_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _sync(capsys, "plan", "--org", "practice", "--source", str(sample_mailbox_path()),
                           "--csv-column", "body=A", "--csv-column", "body=B")

    assert status == 2
    assert report["error"] == "--csv-column names body 2 times, so give each column once."


def test_sync_plan__csv_column_on_mbox(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source",
                           str(sample_mailbox_path()), "--csv-column", "body=Body")

    assert status == 2
    assert report["error"] == (f"--csv-column applies to a CSV source only, and {sample_mailbox_path()} is "
                               "not one (mbox file), so leave --csv-column out.")


@pytest.mark.parametrize(("value", "expected"), [
    ("message_id", "'message_id' is not NAME=HEADER"),
    ("subject=", "'subject=' is not NAME=HEADER"),
    ("key=Message ID", "'key' is not a column name, so use one of message_id, subject, body, sender, "
                       "recipients, sent_at, who_id, owner_id"),
])
def test_sync__bad_csv_column_rejected(capsys: pytest.CaptureFixture[str], value: str, expected: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["sync", "plan", "--org", "practice", "--csv-column", value])

    assert stop.value.code == 2
    assert expected in capsys.readouterr().err


# -- what the plan does not send ----------------------------------------------------------------


def test_sync_plan__text_groups_by_reason_code(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    options = ("plan", "--org", "practice", "--db", str(db_path), "--source", str(sample_mailbox_path()))
    _, report = _sync(capsys, *options)

    status = main(["sync", *options])

    out = capsys.readouterr().out.splitlines()
    counts = report["counts"]
    assert status == 0
    conflict = out.index(f"conflict {counts['conflict']}: several Tasks hold this key, so keep one in "
                         "Salesforce (the app's Conflicts step shows them side by side), then sync again")
    assert out[conflict + 1] == "  sample.mbox, message 1 (byte 0)"
    invalid = out.index(f"invalid {counts['invalid']}: no usable Message-ID, so the message cannot be "
                        "matched to a Task")
    # Rows whose reason code leaves each its own cause are listed with their reason.
    assert out[invalid + 1:invalid + 5] == [
        "  sample.mbox, message 8 (byte 5299): no Message-ID header",
        "  sample.mbox, message 9 (byte 10580): no Message-ID header",
        "  sample.mbox, message 12 (byte 14245): no Message-ID header",
        f"  and {counts['invalid'] - 3} more",
    ]
    # Repeated keys name different earlier messages, yet share one line.
    excluded = [line for line in out if line.startswith("excluded ")]
    assert excluded == [f"excluded {counts['excluded']}: same Message-ID as an earlier message of the "
                        "source, so it is left out and only the earlier message is considered"]
    assert out[-1] == "The Conflicts step of the app shows the Tasks of each conflict side by side."


def test_sync_plan__stored_spelling_advice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    options = ("plan", "--org", "practice", "--db", str(db_path), "--source", str(sample_mailbox_path()))
    _, report = _sync(capsys, *options)

    status = main(["sync", *options])

    out = capsys.readouterr().out.splitlines()
    stored = report["reason_counts"]["update_stored_spelling"]
    assert status == 0
    # The default scenario's cadence Tasks store some keys without angle brackets.
    assert stored > 0
    assert stored == sum(1 for row in _plan_rows(report) if row == "update_stored_spelling")
    assert stored_spelling_advice(report["reason_counts"]) in out
    assert report["advice"] == [stored_spelling_advice(report["reason_counts"])]


def _plan_rows(report: dict[str, Any]) -> list[str]:
    """Return the reason code of every row of the report's run, read from the journal."""
    from backstory_desktop.store.journal import Journal

    journal = Journal.open()
    try:
        return [row.reason_code.value for row in journal.plan(report["run"]["run_id"]).rows]
    finally:
        journal.close()


def test_sync_plan__reason_counts_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source",
                           str(sample_mailbox_path()))

    assert status == 0
    assert set(report["reason_counts"]) >= {"new_key", "update", "update_stored_spelling", "several_tasks",
                                            "no_key", "repeated_key"}
    assert sum(report["reason_counts"].values()) == sum(report["counts"].values())
    assert report["reason_counts"]["new_key"] == report["counts"]["create"]
    assert {row["reason_code"] for row in report["rows"]} == {"several_tasks", "no_key", "repeated_key"}


def test_sync_plan__json_lists_rows_not_sent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source",
                           str(sample_mailbox_path()))

    counts = report["counts"]
    assert status == 0
    assert len(report["rows"]) == counts["conflict"] + counts["invalid"] + counts["excluded"]
    assert report["rows_truncated"] is False
    assert report["rows"][0]["action"] == "conflict"
    assert report["rows"][0]["source_ref"] == "sample.mbox, message 1 (byte 0)"
    assert report["rows"][0]["key"]
    assert report["rows"][0]["reason"].startswith("2 Tasks hold this key (")
    assert report["inactive_owners"] == []


def test_sync_plan__json_rows_capped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "activities.csv"
    source.write_text("Message ID,Subject\n" + ",No key\n" * 1_001, encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source))

    assert status == 0, report
    assert report["counts"]["invalid"] == 1_001
    assert len(report["rows"]) == 1_000
    assert report["rows_truncated"] is True


def test_sync_plan__inactive_owner_listed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "activities.csv"
    # The default scenario's sales rep lcnm5@digicool.com has left the company: the User is inactive.
    source.write_text("Message ID,Subject,From,Sent At\n"
                      "<csv.3@drill.backstory.example>,Intro,lcnm5@digicool.com,2026-11-02 10:00\n",
                      encoding="utf-8")
    options = ("--org", "practice", "--db", str(db_path), "--source", str(source))

    status, report = _sync(capsys, "plan", *options)
    text_status = main(["sync", "plan", *options])

    out = capsys.readouterr().out.splitlines()
    assert status == 0, report
    assert report["inactive_owners"] == [{"user_id": "005000000000006AAA",
                                          "username": "lcnm5@digicool.com.practice",
                                          "replaced_by": "admin@practice.backstory.example", "rows": 1}]
    assert text_status == 0
    assert ("inactive owner lcnm5@digicool.com.practice (005000000000006AAA) replaced by "
            "admin@practice.backstory.example on 1 Task") in out
    assert "The Conflicts step of the app" not in "\n".join(out)


# -- rows in doubt ------------------------------------------------------------------------------


class _SignInEndsAt(io.StringIO):
    """Standard error that ends the org's sign-in at its first line starting with prefix.

    From then on the org commits the next call and drops its response, so its rows are in doubt,
    and revokes the access token of the call after it, which no refresh token can renew.
    """

    def __init__(self, org: PracticeOrg, alias: str, prefix: str) -> None:
        super().__init__()
        self._org = org
        self._alias = alias
        self._prefix = prefix
        self.ended = False

    def write(self, text: str) -> int:
        if not self.ended and text.startswith(self._prefix):
            self.ended = True
            refresh_token = org_sessions.secret_store().load(self._alias)
            assert refresh_token is not None
            self._org.store.revoke_token(refresh_token)
            # With seed 15 the first call draws the dropped response and the second the expired session.
            self._org.faults = FaultPlan(seed=15, expired_session_rate=0.5, dropped_after_commit_rate=0.5)
        return super().write(text)


class _AllowanceEndsAt(io.StringIO):
    """Standard error that lowers the daily API allowance to the use so far at its first line with prefix."""

    def __init__(self, org: PracticeOrg, prefix: str) -> None:
        super().__init__()
        self._org = org
        self._prefix = prefix
        self.lowered = False

    def write(self, text: str) -> int:
        if not self.lowered and text.startswith(self._prefix):
            self.lowered = True
            self._org.daily_api_limit = self._org.request_count + 1
        return super().write(text)


def _served(org: PracticeOrg, alias: str) -> None:
    """Save a served profile for ``org``, signed in as its admin."""
    profile = served_profile(org, alias)
    org_sessions.sign_in_with_browser(
        profile, org_sessions.secret_store(),
        open_browser=ConsentBrowser(org.ca_bundle, org.admin_username), timeout=30)
    save_profile(profile)


def test_sync_retry__bulk_threshold_used(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    _served(default_org, "served-practice")
    source = _new_messages(tmp_path / "new.mbox", 550)
    allowance = default_org.daily_api_limit
    monkeypatch.setattr("sys.stderr", _AllowanceEndsAt(default_org, "Sent 200 of 550 Tasks"))
    applied_status, applied = _sync(capsys, "apply", "--org", "served-practice", "--source", str(source),
                                    "--yes")
    default_org.daily_api_limit = allowance
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)

    status, report = _sync(capsys, "retry", "--org", "served-practice", "--bulk-threshold", "1", "--yes")

    assert applied_status == 1, applied
    assert applied["run"]["states"].get("queued", 0) > 0
    assert status == 0, report
    assert report["run"]["states"].get("queued", 0) == 0
    # Sent through Bulk API 2.0, which the default threshold of 2,000 records leaves out here.
    assert "Uploading " in stderr.getvalue()


def _new_messages(path: Path, count: int) -> Path:
    lines = []
    for number in range(count):
        lines += ["From x1z@ddd.com Mon Nov  2 10:00:00 2026", "From: x1z@ddd.com", "To: x1z@zzz.org",
                  f"Message-ID: <doubt.{number}@drill.backstory.example>", f"Subject: Note {number}",
                  "Date: Mon, 2 Nov 2026 10:00:00 +0000", "", "Hello", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_sync_apply__in_doubt_keys_capped(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    alias = "served-practice"
    _served(default_org, alias)
    source = _new_messages(tmp_path / "new.mbox", 350)
    # sObject Collections take 200 records a call, so the second call carries the other 150.
    stderr = _SignInEndsAt(default_org, alias, "Sent 200 of 350 Tasks")
    monkeypatch.setattr("sys.stderr", stderr)

    status, report = _sync(capsys, "apply", "--org", alias, "--source", str(source), "--yes")

    assert stderr.ended
    assert status == 3, report
    assert report["details"]["in_doubt_count"] == 150
    assert len(report["details"]["in_doubt"]) == 100
    assert report["details"]["in_doubt"][0].startswith("<doubt.")
    # Every row was sent, so the stop names no rows left unsent.
    assert report["reason"].startswith("This command: The sync stopped before the end: "), report["reason"]
    assert "Rows not sent" not in report["reason"]


@pytest.mark.parametrize(("seed", "error"), [
    # The fault plan's draws fail the describe of the key field with a 504 Gateway Timeout.
    (23, "The sync cannot run now: Salesforce did not answer (HTTP 504) when the app read the field "
         "Message_ID__c, so nothing is known about it yet: try again in a few minutes."),
    # The fault plan's draws fail a lookup of the plan with a 502 Bad Gateway.
    (2, "The plan was not finished, because a lookup in the org failed: Salesforce failed to answer "
        "(HTTP 502); try again later, and check status.salesforce.com if it persists."),
])
def test_sync_plan__gateway_error(capsys: pytest.CaptureFixture[str], default_org: PracticeOrg, seed: int,
                                  error: str) -> None:
    alias = "served-practice"
    _served(default_org, alias)
    default_org.faults = FaultPlan(seed=seed, gateway_error_rate=0.5)
    try:
        status, report = _sync(capsys, "plan", "--org", alias, "--source", str(sample_mailbox_path()))
    finally:
        default_org.faults = FaultPlan()

    assert status == 1, report
    assert report["error"] == error


# -- small mends: the order of usage errors, advice on a folder, history beside the app ----------


def test_sync_plan__unknown_org_before_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _sync(capsys, "plan", "--org", "nosuch", "--source", str(tmp_path / "none.mbox"))

    assert status == 2
    assert report["error"].startswith("No org profile is saved as 'nosuch'")


def test_sync_plan__folder_of_csv_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ("b.csv", "a.csv"):
        (folder / name).write_text(CADENCE_CSV, encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(folder))

    assert status == 2
    assert report["error"] == (f"{folder} is a folder of CSV files, and a CSV export is read one file at a "
                               f"time: choose one of them, such as {folder / 'a.csv'}")


def test_sync_plan__csv_key_and_other_column_faults(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    source = tmp_path / "people.csv"
    source.write_text("Name,Email\nAda,ada@example.com\n", encoding="utf-8")

    status, report = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source", str(source),
                           "--csv-column", "subject=Title")

    assert status == 2
    assert report["error"] == (f"No column of {source} is chosen for the Message-ID, so name the column that "
                               "contains each e-mail's Message-ID with --csv-column message_id=HEADER (the "
                               "file's columns are 'Name', 'Email'). The column 'Title' chosen for Subject "
                               "is not in the file: choose one of 'Name', 'Email'.")


def test_sync_history__practice_db_held_elsewhere(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)
    _, planned = _sync(capsys, "plan", "--org", "practice", "--db", str(db_path), "--source",
                       str(sample_mailbox_path()))

    # The app's practice org keeps the database locked while it runs.
    with PracticeOrg(db_path):
        status, report = _sync(capsys, "history", "--org", "practice", "--db", str(db_path))

    assert status == 0, report
    assert [run["run_id"] for run in report["runs"]] == [planned["run"]["run_id"]]


def test_sync_history__practice_db_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = tmp_path / "none.sqlite3"

    status, report = _sync(capsys, "history", "--org", "practice", "--db", str(db_path))

    assert status == 0, report
    assert report["runs"] == []
    assert not db_path.exists()


def test_sync_apply__ctrl_c_text_names_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    monkeypatch.setattr("sys.stderr", _CtrlCAt("Uploading "))

    status = main(["sync", "apply", "--org", "practice", "--db", str(db_path), "--source",
                   str(sample_mailbox_path()), "--bulk-threshold", "1", "--yes"])

    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert out[0].startswith("run ")
    assert "  stopped  " in out[0]
    assert out[-1] == f"Continue it with: backstory-desktop sync resume --org practice --db {db_path}"


class _CtrlCAtPrompt(io.StringIO):
    """Standard input of a terminal where the admin presses Ctrl+C at the confirmation prompt."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_sync_apply__ctrl_c_at_prompt_names_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = _practice_db(tmp_path)
    before = _org_data(db_path)
    monkeypatch.setattr("sys.stdin", _CtrlCAtPrompt())

    status = main(["sync", "apply", "--org", "practice", "--db", str(db_path), "--source",
                   str(sample_mailbox_path())])

    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert status == 1
    assert "before it wrote anything to the org" in captured.err
    assert any(line.startswith("run ") and "  planned  " in line for line in out)
    assert out[-1] == ("The journal keeps this run as planned only, so plan and apply again with: "
                       f"backstory-desktop sync apply --org practice --db {db_path} --source "
                       f"{sample_mailbox_path()}")
    assert _org_data(db_path)["records"] == before["records"]
