"""The CSV and HTML files of duplicate groups: one row per Task, every value escaped, owner-only."""

from __future__ import annotations

import csv
import html
import stat
from pathlib import Path

import pytest

from backstory_desktop.conflict_report import write_csv, write_html
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind, Thresholds, group_duplicates
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import SURVIVOR_RULE

KEY_FIELD = "Message_ID__c"
OUTREACH_USER = "005000000000001AAA"


def _task(record_id: str, key: str | None, **values: object) -> TaskRecord:
    defaults: dict[str, object] = {
        "subject": "Re: pricing",
        "owner_id": "005000000000009AAA",
        "owner_name": "Dana Owner",
        "who_id": "003000000000001AAA",
        "created_date": "2026-11-03T10:00:01.000+0000",
    }
    defaults.update(values)
    return TaskRecord(id=record_id, key=key, **defaults)  # type: ignore[arg-type]


def _groups() -> list[DuplicateGroup]:
    records = [
        _task("00T000000000001AAA", "<a@x.example>", created_by_id=OUTREACH_USER, writer="Outreach (o@x)"),
        _task("00T000000000002AAA", "<a@x.example>", is_archived=True, writer="Backstory",
              created_date="2026-11-03T10:05:00.000+0000"),
        _task("00T000000000003AAA", "b@x.example", subject="=HYPERLINK(\"http://evil\")",
              created_date="2026-10-01T09:00:00.000+0000", who_id="003000000000002AAA"),
        _task("00T000000000004AAA", "<B@x.example>", subject="<script>alert(1)</script>", is_deleted=True,
              created_date="2026-10-01T09:01:00.000+0000", who_id="003000000000002AAA"),
    ]
    return group_duplicates(records, case_sensitive=False, tool_user_ids=[OUTREACH_USER])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.DictReader(stream))


def test_csv__one_row_per_task(tmp_path: Path) -> None:
    groups = _groups()
    path = tmp_path / "groups.csv"

    written = write_csv(path, groups, key_field=KEY_FIELD)

    rows = _rows(path)
    assert written == 4
    assert len(rows) == 4
    assert [row["Task ID"] for row in rows] == [record.id for group in groups for record in group.records]
    assert {row[KEY_FIELD] for row in rows} == {"<a@x.example>", "b@x.example", "<B@x.example>"}


def test_csv__survivor_and_states(tmp_path: Path) -> None:
    groups = _groups()
    path = tmp_path / "groups.csv"

    write_csv(path, groups, key_field=KEY_FIELD)

    rows = {row["Task ID"]: row for row in _rows(path)}
    exact = next(group for group in groups if group.kind is GroupKind.EXACT)
    assert rows[exact.survivor_id]["Survivor"] == "yes"
    assert sum(row["Survivor"] == "yes" for row in rows.values()) == len(groups)
    assert rows["00T000000000002AAA"]["Archived"] == "yes"
    assert rows["00T000000000004AAA"]["In recycle bin"] == "yes"
    assert rows["00T000000000001AAA"]["Written by"] == "Outreach (o@x)"
    assert rows["00T000000000001AAA"]["Owner"] == "Dana Owner"
    assert rows["00T000000000001AAA"]["Group"] == exact.group_id
    assert rows["00T000000000001AAA"]["Kind"] == "exact"


def test_csv__created_date_readable(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"

    write_csv(path, _groups(), key_field=KEY_FIELD)

    rows = {row["Task ID"]: row for row in _rows(path)}
    assert rows["00T000000000002AAA"]["Created"] == "2026-11-03 10:05:00 UTC"


def test_csv__formula_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"

    write_csv(path, _groups(), key_field=KEY_FIELD)

    rows = {row["Task ID"]: row for row in _rows(path)}
    assert rows["00T000000000003AAA"]["Subject"] == "'=HYPERLINK(\"http://evil\")"


def test_csv__owner_only(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"

    write_csv(path, _groups(), key_field=KEY_FIELD)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_csv__failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"
    path.write_text("old", encoding="utf-8")
    broken = [DuplicateGroup(GroupKind.EXACT, "k", (object(),), "reason")]  # type: ignore[arg-type]

    with pytest.raises(AttributeError):
        write_csv(path, broken, key_field=KEY_FIELD)

    assert path.read_text(encoding="utf-8") == "old"
    assert [item.name for item in tmp_path.iterdir()] == ["groups.csv"]


def test_html__values_escaped(tmp_path: Path) -> None:
    path = tmp_path / "groups.html"

    write_html(path, _groups(), thresholds=Thresholds(), title="Duplicates <org>", key_field=KEY_FIELD)

    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<title>Duplicates &lt;org&gt;</title>" in text
    assert "&lt;a@x.example&gt;" in text


def test_html__rules_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "groups.html"
    thresholds = Thresholds(window_minutes=7, subject_similarity=80)

    write_html(path, _groups(), thresholds=thresholds, title="Duplicates", key_field=KEY_FIELD)

    text = path.read_text(encoding="utf-8")
    assert "created within 7 minutes" in text
    assert "at least 80% alike" in text
    assert html.escape(SURVIVOR_RULE) in text
    assert "cannot merge Tasks" in text
    assert '<tr><td>exact</td><td class="number">1</td></tr>' in text
    assert '<tr><td>normalised</td><td class="number">1</td></tr>' in text
    assert '<tr><td>Outreach</td><td class="number">1</td></tr>' in text
    assert '<tr><td>2026-11</td><td class="number">1</td></tr>' in text
    assert '<tr><td>2026-10</td><td class="number">1</td></tr>' in text


def test_html__survivor_row_marked(tmp_path: Path) -> None:
    groups = _groups()
    path = tmp_path / "groups.html"

    write_html(path, groups, thresholds=Thresholds(), title="Duplicates", key_field=KEY_FIELD)

    text = path.read_text(encoding="utf-8")
    assert text.count('<tr class="survivor">') == len(groups)
    assert f'<tr class="survivor"><td>yes</td><td>{groups[0].survivor_id}</td>' in text


def test_html__created_date_readable(tmp_path: Path) -> None:
    path = tmp_path / "groups.html"

    write_html(path, _groups(), thresholds=Thresholds(), title="Duplicates", key_field=KEY_FIELD)

    text = path.read_text(encoding="utf-8")
    assert "<td>2026-11-03 10:05:00 UTC</td>" in text
    assert "2026-11-03T10:05:00" not in text


def test_html__no_groups(tmp_path: Path) -> None:
    path = tmp_path / "groups.html"

    write_html(path, [], thresholds=Thresholds(), title="Duplicates", key_field=KEY_FIELD)

    text = path.read_text(encoding="utf-8")
    assert "No duplicate groups." in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_html__written_by_counts(tmp_path: Path) -> None:
    path = tmp_path / "groups.html"

    write_html(path, _groups(), thresholds=Thresholds(), title="Duplicates", key_field=KEY_FIELD)

    text = path.read_text(encoding="utf-8")
    assert "<h3>Written by</h3>" in text
    assert "<th>Written by</th><th>Groups</th>" in text
    assert "source" not in text.casefold()
