"""The `sync` command on the built-in practice profile, started from a practice org database file.

It covers plan (nothing written), apply (plan, then write once confirmed), resume, retry and history.
The exit statuses are those of `check`: 0 done, 1 failed, 2 usage, profile or source error.
"""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cli import main
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.sync_cli import ProgressPrinter

# The practice org's tables that hold org data; sign-ins and API usage counts live in others.
ORG_DATA_TABLES = ("records", "custom_fields", "sequences")


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


@pytest.mark.parametrize("value", ["0", "many"])
def test_sync__bad_bulk_threshold_rejected(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["sync", "plan", "--org", "practice", "--bulk-threshold", value])

    assert stop.value.code == 2
    assert "--bulk-threshold" in capsys.readouterr().err


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
        "Reading sample.mbox (1 of 10)", "Reading sample.mbox (3 of 10)", "Sent 0 of 4 Tasks (0 of 4)",
        "Reading sample.mbox (10 of 10)"]


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

    assert status == 2
    assert report["error"] == ("This org has no run that stopped before its end, so start one with "
                               "sync apply.")


def test_sync_retry__nothing_queued(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = _practice_db(tmp_path)

    status, report = _sync(capsys, "retry", "--org", "practice", "--db", str(db_path), "--yes")

    assert status == 0
    assert report["reason"] == "No run of this org has queued records to send."


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
    assert "No column is chosen for the Message-ID" in report["error"]


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
