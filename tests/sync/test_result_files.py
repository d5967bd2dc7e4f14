"""Result and plan files: Data Loader's layout, Excel-readable, formula-safe, owner-only, atomic."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop.core.plan import Action, PlanRow
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.store import paths
from backstory_desktop.sync.result_files import (
    ResultRow,
    result_folder,
    write_plan_csv,
    write_result_files,
)

TRICKY = 'Re: "pricing", v2\nsecond line, with ""quotes""'


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


BASE_ROW = ResultRow(source_ref="archive.mbox, message 1 (byte 0)", key="<a@x.example>", action="create",
                     subject="Hello", record_id=None, status="created", error_code=None, message="")


def outcome(status: str, **fields: Any) -> ResultRow:
    return replace(BASE_ROW, status=status, **fields)


def test_write_result_files__data_loader_layout(tmp_path: Path) -> None:
    rows = [
        outcome("created", record_id="00T000000000001AAA"),
        outcome("updated", key="<b@x.example>", action="update", record_id="00T000000000002AAA"),
        outcome("failed", key="<c@x.example>", error_code="STRING_TOO_LONG", message="Subject: too long"),
        outcome("queued", key="<d@x.example>", error_code="UNABLE_TO_LOCK_ROW", message="locked"),
    ]

    files = write_result_files(tmp_path / "run-1", rows)

    success, error = read_rows(files.success), read_rows(files.error)
    assert success[0] == ["ID", "SOURCE", "MESSAGE_ID", "ACTION", "SUBJECT", "STATUS"]
    assert [(row[0], row[-1]) for row in success[1:]] == [
        ("00T000000000001AAA", "Item Created"), ("00T000000000002AAA", "Item Updated")]
    assert error[0][-2:] == ["ERROR_CODE", "ERROR"]
    assert [(row[2], row[5], row[-2], row[-1]) for row in error[1:]] == [
        ("<c@x.example>", "failed", "STRING_TOO_LONG", "Subject: too long"),
        ("<d@x.example>", "queued", "UNABLE_TO_LOCK_ROW", "locked")]
    assert files.plan is None


def test_write_result_files__bom_and_quotes(tmp_path: Path) -> None:
    files = write_result_files(tmp_path, [outcome("created", subject="Grüße, 日本", record_id="00T1")])

    raw = files.success.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf\"ID\",")
    assert '"Grüße, 日本"'.encode() in raw


def test_write_result_files__tricky_text_round_trips(tmp_path: Path) -> None:
    files = write_result_files(tmp_path, [outcome("failed", subject=TRICKY, message=TRICKY)])

    [row] = read_rows(files.error)[1:]
    assert (row[4], row[-1]) == (TRICKY, TRICKY)


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x.example\")", "+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_write_result_files__formulas_become_text(tmp_path: Path, text: str) -> None:
    files = write_result_files(tmp_path, [outcome("failed", subject=text, key=text, message=text)])

    [row] = read_rows(files.error)[1:]
    assert (row[2], row[4], row[-1]) == ("'" + text, "'" + text, "'" + text)


def test_write_result_files__owner_only(tmp_path: Path) -> None:
    files = write_result_files(tmp_path / "results" / "run-2", [outcome("created", record_id="00T1")])

    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    for path in (files.success, files.error):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_result_files__failure_keeps_old_files(tmp_path: Path) -> None:
    first = write_result_files(tmp_path, [outcome("created", record_id="00T1")])
    before = first.success.read_bytes()

    def rows() -> Iterator[ResultRow]:
        yield outcome("created", record_id="00T2")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_result_files(tmp_path, rows())

    assert first.success.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["error.csv", "success.csv"]


def test_write_result_files__names_plan_file(tmp_path: Path) -> None:
    write_plan_csv(tmp_path / "plan.csv", [])

    files = write_result_files(tmp_path, [])

    assert files.plan == tmp_path / "plan.csv"


def test_write_plan_csv__rows_and_count(tmp_path: Path) -> None:
    existing = TaskRecord(id="00T000000000009AAA", key="<u@x.example>", subject="Old")
    rows = [
        PlanRow(Action.CREATE, "a.mbox, message 1", "<c@x.example>", TRICKY, "no Task holds this key yet",
                upsert_key="<c@x.example>", record={"OwnerId": "005A", "WhoId": "003B"}),
        PlanRow(Action.UPDATE, "a.mbox, message 2", "<u@x.example>", "=cmd", "adds the flag",
                upsert_key="<u@x.example>", existing=(existing,)),
    ]

    count = write_plan_csv(tmp_path / "plan.csv", rows)

    table = read_rows(tmp_path / "plan.csv")
    assert count == 2
    assert table[0][:4] == ["SOURCE", "MESSAGE_ID", "UPSERT_KEY", "ACTION"]
    assert table[1][3:5] == ["create", TRICKY]
    assert table[1][-2:] == ["005A", "003B"]
    assert table[2][3:5] == ["update", "'=cmd"]
    assert table[2][6] == "00T000000000009AAA"
    assert stat.S_IMODE((tmp_path / "plan.csv").stat().st_mode) == 0o600


def test_result_folder__under_data_folder() -> None:
    assert result_folder("20261205-0530-ab12") == paths.data_dir() / "sync" / "results" / "20261205-0530-ab12"


@pytest.mark.parametrize("run_id", ["../x", "a/b", "", "..", ".hidden"])
def test_result_folder__rejects_path_ids(run_id: str) -> None:
    with pytest.raises(ValueError, match="cannot name a folder"):
        result_folder(run_id)


def test_result_folder__beside_given_journal(tmp_path: Path) -> None:
    assert result_folder("20261205-0530-ab12", tmp_path) == tmp_path / "results" / "20261205-0530-ab12"
