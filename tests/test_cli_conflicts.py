"""The `conflicts` command on the built-in practice profile: scan, resolve, history and undo.

The practice org starts from a database file seeded with a scenario whose Message-ID field
is not Unique. Exit statuses are those of `sync`: 0 done, 1 failed, 2 usage or profile error.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import stat
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop import enablement
from backstory_desktop.cli import main
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import connect_practice_org
from backstory_desktop.store.settings import OrgProfile

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


class _Terminal(io.StringIO):
    """A standard input that reports a terminal and returns the given text as typed input."""

    def isatty(self) -> bool:
        return True


def test_conflicts_resolve__question_and_diff_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    before = _tasks(db)
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))

    status = main(["conflicts", "resolve", "--org", "practice", "--db", str(db), "--all", "--json"])
    captured = capsys.readouterr()

    assert status == 1
    assert json.loads(captured.out)["error"] == "Nothing was written because the changes were not confirmed."
    assert "  - delete " in captured.err
    assert "Resolve these groups? [y/N] Nothing was written" in captured.err
    assert _tasks(db) == before


def test_conflicts_undo__question_after_undo_diff(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--all", "--yes")
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))

    status = main(["conflicts", "undo", "--org", "practice", "--db", str(db), "--json"])
    captured = capsys.readouterr()

    assert status == 0, captured.out
    assert json.loads(captured.out)["action"] == "undo"
    shown = captured.err.split("Undo this resolution?")[0]
    assert "  + restore " in shown
    assert ": (empty) -> '<" in shown


def test_conflicts_undo__failed_read_said(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _, resolved = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--all", "--yes")
    path = Path(resolved["snapshot_path"])
    snapshot = json.loads(path.read_text(encoding="utf-8"))
    # A key field the org does not have makes reading the Tasks again fail.
    snapshot["key_field"] = "Gone__c"
    for values in snapshot["records"].values():
        values["Gone__c"] = None
    path.write_text(json.dumps(snapshot), encoding="utf-8")

    status, report = _conflicts(capsys, "undo", "--org", "practice", "--db", str(db), "--yes")

    assert status == 1
    assert report["error"].startswith("conflicts undo stopped because a call to the org failed: ")


def test_conflicts_resolve__all_clears_keyed_clones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db_path = tmp_path / "duplicates.sqlite3"
    PracticeOrg(db_path, scenario="duplicates").stop()
    _, scan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db_path))
    assert any(group["kind"] == "clones" and sum(1 for record in group["records"] if record["key"]) > 1
               for group in scan["groups"])

    status = main(["conflicts", "resolve", "--org", "practice", "--db", str(db_path), "--all", "--yes"])
    output = capsys.readouterr().out
    _, rescan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db_path))

    assert status == 0, output
    assert "1 of the groups holds clones that share a key: every Task stays, and all but one lose the key" \
        in output
    # A key on two Tasks, even one in the recycle bin, would block making the field Unique.
    assert not [group for group in rescan["groups"]
                if sum(1 for record in group["records"] if record["key"]) > 1]


@pytest.fixture
def duplicates_db(tmp_path: Path) -> Path:
    path = tmp_path / "duplicates.sqlite3"
    PracticeOrg(path, scenario="duplicates").stop()
    return path


def test_conflicts_resolve__keep_and_fill_chosen(
    capsys: pytest.CaptureFixture[str], duplicates_db: Path
) -> None:
    _, scan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(duplicates_db))
    group = next(group for group in scan["groups"] if group["flagged"]
                 and len([record for record in group["records"] if not record["is_deleted"]]) == 2)
    kept = next(record["id"] for record in group["records"]
                if record["id"] != group["survivor_id"] and not record["is_deleted"])

    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(duplicates_db),
                                "--group", group["group_id"], "--keep", kept, "--fill", "--yes")
    tasks = _tasks(duplicates_db)

    assert status == 0, report
    assert report["resolved"] == [group["group_id"]]
    assert report["counts"]["fields_filled"] == 0
    assert tasks[kept][1] == 0
    assert tasks[group["survivor_id"]][1] == 1


def test_conflicts_resolve__keep_outside_group(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _, scan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db))
    first, second = scan["groups"][:2]

    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--group",
                                first["group_id"], "--keep", second["records"][0]["id"], "--yes")

    assert status == 2
    stranger = second["records"][0]["id"]
    assert report["error"].startswith(f"Task {stranger} is not in group {first['group_id']}")


def test_conflicts_resolve__keep_needs_one_group(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--all", "--keep",
                                "00T000000000001AAA", "--yes")

    assert status == 2
    assert report["error"] == "--keep and --fill choose for one group, so give exactly one --group with them."


def test_conflicts_resolve__fill_unknown_field(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, report = _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--group",
                                "00T000000000001AAA", "--fill", "OwnerId", "--yes")

    assert status == 2
    assert report["error"].startswith("--fill cannot fill OwnerId")


def test_conflicts_scan__scenario_seeds_new_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, report = _conflicts(capsys, "scan", "--org", "practice", "--db", str(tmp_path / "new.sqlite3"),
                                "--scenario", "duplicates")

    assert status == 0
    assert "clones" in {group["kind"] for group in report["groups"]}


def test_conflicts_scan__scenario_unknown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, report = _conflicts(capsys, "scan", "--org", "practice", "--db", str(tmp_path / "new.sqlite3"),
                                "--scenario", "nowhere")

    assert status == 2
    assert report["error"].startswith("There is no practice org scenario 'nowhere'")
    assert not (tmp_path / "new.sqlite3").exists()


def test_conflicts_history__readable_time_and_counts(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _, scan = _conflicts(capsys, "scan", "--org", "practice", "--db", str(db))
    group_id = scan["groups"][0]["group_id"]
    _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--group", group_id, "--yes")

    status = main(["conflicts", "history", "--org", "practice", "--db", str(db)])
    lines = capsys.readouterr().out.splitlines()

    assert status == 0
    assert lines[0] == "1 resolution of this org."
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.fullmatch(rf"  \S+  {when}  applied +1 group, 1 Task deleted", lines[1])


def test_conflicts_undo__warns_unique_field(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _conflicts(capsys, "resolve", "--org", "practice", "--db", str(db), "--all", "--yes")
    with PracticeOrg(db, scenario="non-unique") as org:
        connection = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
        run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=connection)
        enablement.check_field(run)
        fix = enablement.apply_field_fix(run, enablement.plan_field_fix(run, case_sensitive=False))
        assert fix.status is StepStatus.PASSED, fix.reason

    status, report = _conflicts(capsys, "undo", "--org", "practice", "--db", str(db), "--yes")

    assert status == 1
    assert report["warnings"][0].startswith("Message_ID__c is Unique now, so ")
    assert report["warnings"][0].endswith(" will be restored without their key, because another Task has "
                                          "the same key.")


class _CtrlCOnSnapshot(io.StringIO):
    """A standard error that presses Ctrl+C once the resolution reports its snapshot written."""

    def write(self, text: str) -> int:
        if "Wrote the snapshot" in text:
            os.kill(os.getpid(), signal.SIGINT)
        return super().write(text)


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to itself")
def test_conflicts_resolve__stop_said_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    monkeypatch.setattr(sys, "stderr", _CtrlCOnSnapshot())

    status = main(["conflicts", "resolve", "--org", "practice", "--db", str(db), "--all", "--yes"])
    output = capsys.readouterr().out

    assert status == 1
    assert "failed" not in output
    assert output.count("The resolution was cancelled before every group was resolved.") == 1
    assert "6 groups were not reached; run conflicts resolve again for them." in output
