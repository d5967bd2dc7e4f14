"""The `conflicts` command on the built-in practice profile: scan, resolve, history and undo.

The practice org starts from a database file seeded with a scenario whose Message-ID field
is not Unique. Exit statuses are those of `sync`: 0 done, 1 failed, 2 usage or profile error.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop.cli import main
from backstory_desktop.practice_org.server import PracticeOrg

TaskRows = dict[str, tuple[dict[str, Any], int, int]]


def _conflicts(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, Any]]:
    status = main(["conflicts", *options, "--json"])
    return status, json.loads(capsys.readouterr().out)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "non-unique.sqlite3"
    PracticeOrg(path, scenario="non-unique").stop()
    return path


def _tasks(db_path: Path) -> TaskRows:
    """Return each Task's fields, recycle bin flag and archive flag as the practice org stores them."""
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as database:
        rows = database.execute(
            "SELECT id, fields, is_deleted, is_archived FROM records WHERE sobject = 'Task'").fetchall()
    return {row[0]: (json.loads(row[1]), row[2], row[3]) for row in rows}


def test_conflicts_scan__lists_groups_writes_nothing(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    before = _tasks(db)

    status, report = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db))

    assert status == 0
    assert report["passed"] is True
    assert len(report["groups"]) == 6
    assert all(group["survivor_id"] in [record["id"] for record in group["records"]]
               for group in report["groups"])
    assert _tasks(db) == before


def test_conflicts_scan__writes_owner_only_files(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    csv_path, html_path = tmp_path / "groups.csv", tmp_path / "groups.html"

    status, report = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db), "--csv", str(csv_path),
                                "--html", str(html_path))

    assert status == 0
    assert report["files"] == {"csv": str(csv_path), "html": str(html_path)}
    # One header row and one row per Task of every group.
    tasks = sum(len(group["records"]) for group in report["groups"])
    assert len(csv_path.read_text(encoding="utf-8-sig").splitlines()) == tasks + 1
    assert "<html" in html_path.read_text(encoding="utf-8")
    if os.name == "posix":
        assert stat.S_IMODE(csv_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(html_path.stat().st_mode) == 0o600


def test_conflicts_resolve_then_undo__tasks_as_before(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    before = _tasks(db)

    resolved_status, resolved = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--all",
                                           "--yes")
    after_resolve = _tasks(db)
    history_status, history = _conflicts(capsys, "history", "--org", "practice", "--db", str(db))
    undo_status, undo = _conflicts(capsys, "undo", "--org", "practice", "--db", str(db), "--yes")
    _, history_after = _conflicts(capsys, "history", "--org", "practice", "--db", str(db))

    assert resolved_status == 0, resolved
    assert len(resolved["resolved"]) == 6
    assert resolved["failed"] == {}
    assert after_resolve != before
    assert history_status == 0
    assert [row["snapshot_id"] for row in history["resolutions"]] == [resolved["snapshot_id"]]
    assert history["resolutions"][0]["status"] == "applied"
    assert undo_status == 0, undo
    assert undo["snapshot_id"] == resolved["snapshot_id"]
    assert undo["not_in_bin"] == {}
    assert history_after["resolutions"][0]["status"] == "undone"
    assert _tasks(db) == before


def test_conflicts_resolve__chosen_groups_only(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _, scan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db))
    first, second, third = (group["group_id"] for group in scan["groups"][:3])

    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--group", first,
                                second, "--group", third, "--yes")
    _, rescan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db))

    assert status == 0
    assert report["resolved"] == [first, second, third]
    assert report["counts"]["groups"] == 3
    assert len(rescan["groups"]) == len(scan["groups"]) - 3


def test_conflicts_resolve__text_shows_diff_lines(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status = main(["conflicts", "resolve", "--org", "practice", "--db", str(db), "--all", "--yes"])
    output = capsys.readouterr().out

    assert status == 0
    assert "The resolution of 6 groups deletes 6 Tasks" in output
    assert "  + restore " in output
    assert "-> (empty)" in output
    assert "conflicts undo restores it." in output


def test_conflicts_resolve__no_yes_without_terminal(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    before = _tasks(db)

    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--all")

    assert status == 2
    assert "--yes" in report["error"]
    assert _tasks(db) == before


def test_conflicts_resolve__unknown_group(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--group",
                                "00T000000000zzzAAA", "--yes")

    assert status == 2
    assert report["error"].startswith("No duplicate group has the Id 00T000000000zzzAAA")


def test_conflicts_undo__nothing_to_undo(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, report = _conflicts(capsys, "undo", "--org", "practice", "--db", str(db), "--yes")

    assert status == 2
    assert report["error"].startswith("No resolution of this org is left to undo")


def test_conflicts_undo__unknown_snapshot(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, report = _conflicts(capsys, "undo", "20000101T000000000000Z-000000", "--org", "practice",
                                "--db", str(db), "--yes")

    assert status == 2
    assert "no snapshot 20000101T000000000000Z-000000" in report["error"]


def test_conflicts__unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _conflicts(capsys, "history", "--org", "nowhere")

    assert status == 2
    assert "nowhere" in report["error"]
