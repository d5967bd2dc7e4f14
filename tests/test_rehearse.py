"""The scripted rehearsal runs every step on a practice org and reports it as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backstory_desktop.cli import main


def _rehearse(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    status = main(["rehearse", "--json", *args])
    return status, json.loads(capsys.readouterr().out)


def test_rehearse__every_step_passes_on_the_default_practice_org(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report = _rehearse(capsys, "--db", str(tmp_path / "org.sqlite3"))

    assert status == 0
    assert {step["name"]: step["status"] for step in report["steps"]} == {
        "connect": "passed",
        "message_id_field": "passed",
        "integration_user": "passed",
        "backstory_setting": "passed",
        "local_sync": "passed",
        "conflicts": "passed",
        "summary": "passed",
    }
    assert report["sync"]["created"] > 0
    assert report["sync"]["updated"] > 0
    assert report["sync"]["invalid"] > 0
    assert report["sync"]["conflicts"] > 0
    assert report["duplicate_groups"]


def test_rehearse__second_run_on_the_same_org_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "org.sqlite3")
    _, first = _rehearse(capsys, "--db", db)

    status, second = _rehearse(capsys, "--db", db)

    assert status == 0
    assert second["sync"]["created"] == 0
    assert second["sync"]["updated"] == first["sync"]["created"] + first["sync"]["updated"]


def test_rehearse__fresh_org_gets_the_field_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report = _rehearse(capsys, "--db", str(tmp_path / "org.sqlite3"), "--scenario", "fresh")

    field_step = next(step for step in report["steps"] if step["name"] == "message_id_field")
    assert status == 0
    assert field_step["details"]["created"] is True
    assert field_step["details"]["unique"] is True
    assert field_step["details"]["external_id"] is True


def test_rehearse__mailbox_that_is_not_an_mbox_fails_the_sync_step_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_mbox = tmp_path / "notes.txt"
    not_mbox.write_text("Meeting notes, not mail\n", encoding="utf-8")

    status, report = _rehearse(capsys, "--db", str(tmp_path / "org.sqlite3"), "--mailbox", str(not_mbox))

    sync_step = next(step for step in report["steps"] if step["name"] == "local_sync")
    assert status == 1
    assert sync_step["status"] == "failed"
    assert str(not_mbox) in sync_step["reason"]
    assert report["sync"]["created"] == 0


def test_cli__help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--help"])

    out = capsys.readouterr().out
    assert raised.value.code == 0
    for command in ("gui", "practice-org", "rehearse"):
        assert command in out
