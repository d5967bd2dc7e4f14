"""Duplicate Task groups written out for review: a CSV file of their records and a self-contained HTML page.

The CSV file has one row per Task, so an admin can sort and filter it in a
spreadsheet. The HTML page adds the counts by kind, by the tool that wrote the
records and by month, and the rules that formed the groups and chose each
survivor. Both are written owner-only and replace the target file only once
complete. Free of Qt, so the Conflicts page and the ``conflicts scan`` command
write the same files.
"""

from __future__ import annotations

import csv
import html
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from backstory_desktop.core.duplicates import DuplicateGroup, Thresholds
from backstory_desktop.core.group_view import counts_by_kind, counts_by_month, counts_by_tool
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import SURVIVOR_RULE, readable_time
from backstory_desktop.report import BASE_STYLE
from backstory_desktop.store.settings import CADENCE_TOOLS
from backstory_desktop.sync.result_files import OWNER_ONLY_FILE_MODE, safe_cell

CSV_COLUMNS = (
    "Group", "Kind", "Reason", "Survivor", "Task ID", "{key_field}", "Subject", "Written by",
    "Owner", "Created", "Activity date", "In recycle bin", "Archived",
)
NO_MERGE = (
    "Salesforce cannot merge Tasks (merge() does not take Task) and duplicate rules do not cover "
    "activities, so a group is resolved by keeping one Task, filling its empty fields from the "
    "others and deleting the others."
)

# Wider than the summary report, and keys without spaces may break anywhere.
_STYLE = BASE_STYLE + """
body { max-width: 80em; }
th, td { overflow-wrap: anywhere; }
table.records { width: 100%; }
td.number { text-align: right; }
tr.survivor td { background: #e6f4ea; }
"""


def write_csv(path: Path, groups: Sequence[DuplicateGroup], *, key_field: str) -> int:
    """Write one row per Task of ``groups`` to ``path`` and return how many Task rows were written.

    Cells that a spreadsheet would run as a formula are written as text.
    """
    header = [column.format(key_field=key_field) for column in CSV_COLUMNS]
    count = 0
    with _replacing(path, encoding="utf-8-sig") as stream:
        writer = csv.writer(stream, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        for group in groups:
            for record in group.records:
                writer.writerow([safe_cell(value) for value in (
                    group.group_id, group.kind.value, group.reason, _yes_no(record.id == group.survivor_id),
                    record.id, record.key, record.subject, record.writer,
                    record.owner_name or record.owner_id, _created(record),
                    record.activity_date,
                    _yes_no(record.is_deleted), _yes_no(record.is_archived),
                )])
                count += 1
    return count


def write_html(path: Path, groups: Sequence[DuplicateGroup], *, thresholds: Thresholds, title: str,
               key_field: str) -> None:
    """Write ``groups`` to ``path`` as one HTML page: counts, the grouping and survivor rules, every group."""
    with _replacing(path, encoding="utf-8") as stream:
        stream.write(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                     f"<title>{_text(title)}</title><style>{_STYLE}</style></head><body>\n")
        stream.write(_header_html(groups, title=title, key_field=key_field))
        stream.write(_rules_html(thresholds))
        stream.write(_counts_html(groups))
        stream.write("<h2>Groups</h2>\n")
        if not groups:
            stream.write('<p class="muted">No duplicate groups.</p>\n')
        for group in groups:
            stream.write(_group_html(group, key_field))
        stream.write("</body></html>\n")


def _header_html(groups: Sequence[DuplicateGroup], *, title: str, key_field: str) -> str:
    tasks = sum(len(group.records) for group in groups)
    flagged = sum(1 for group in groups if group.flagged)
    generated = readable_time(datetime.now(UTC).isoformat())
    return (
        f"<h1>{_text(title)}</h1>\n"
        f"<p>{len(groups):,} groups of Tasks ({tasks:,} Tasks) on the field {_text(key_field)}; "
        f"{flagged:,} of them are duplicates to resolve and {len(groups) - flagged:,} are clones "
        f"logged on purpose. Generated {_text(generated)}.</p>\n"
    )


def _rules_html(thresholds: Thresholds) -> str:
    items = "".join(f"<li>{_text(line)}</li>" for line in thresholds.lines())
    return (
        "<h2>Rules</h2>\n"
        f"<p>Probable duplicates (a member without a key) are grouped when:</p><ul>{items}</ul>\n"
        f"<p>Survivor: {_text(SURVIVOR_RULE)}</p>\n"
        f"<p>{_text(NO_MERGE)}</p>\n"
    )


def _counts_html(groups: Sequence[DuplicateGroup]) -> str:
    return (
        "<h2>Counts</h2>\n"
        + _count_table("By kind", "Kind", counts_by_kind(groups))
        + _count_table("Written by", "Written by", counts_by_tool(groups, CADENCE_TOOLS))
        + _count_table("By month of the newest Task", "Month", counts_by_month(groups))
    )


def _count_table(title: str, label: str, counts: Mapping[str, int]) -> str:
    rows = "".join(f'<tr><td>{_text(name)}</td><td class="number">{count:,}</td></tr>'
                   for name, count in counts.items())
    if not rows:
        rows = '<tr><td colspan="2" class="muted">none</td></tr>'
    return (f"<h3>{_text(title)}</h3>\n"
            f"<table><tr><th>{_text(label)}</th><th>Groups</th></tr>{rows}</table>\n")


def _created(record: TaskRecord) -> str:
    return readable_time(record.created_date) if record.created_date else ""


def _group_html(group: DuplicateGroup, key_field: str) -> str:
    heading = f"{group.kind.value.capitalize()}: {group.key or group.subject or 'no key'}"
    survivor = f"<p>Survivor: {_text(group.survivor_reason)}</p>" if group.survivor_reason else ""
    columns = ("Survivor", "Task ID", key_field, "Subject", "Written by", "Owner", "Created", "Activity date",
               "State")
    header = "".join(f"<th>{_text(name)}</th>" for name in columns)
    rows = []
    for record in group.records:
        is_survivor = record.id == group.survivor_id
        state = ", ".join(name for name, on in (("in recycle bin", record.is_deleted),
                                                 ("archived", record.is_archived)) if on)
        cells = (_yes_no(is_survivor), record.id, record.key or "", record.subject, record.writer,
                 record.owner_name or record.owner_id or "", _created(record),
                 record.activity_date or "",
                 state)
        row_class = ' class="survivor"' if is_survivor else ""
        rows.append(f"<tr{row_class}>" + "".join(f"<td>{_text(cell)}</td>" for cell in cells) + "</tr>")
    return (
        f'<h3 id="group-{_text(group.group_id)}">{_text(heading)}</h3>\n'
        f"<p>{_text(group.reason)}</p>{survivor}\n"
        f'<table class="records"><tr>{header}</tr>{"".join(rows)}</table>\n'
    )


@contextmanager
def _replacing(path: Path, *, encoding: str) -> Iterator[TextIO]:
    """Yield a stream to a temporary owner-only file that replaces ``path`` only when the block succeeds."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, OWNER_ONLY_FILE_MODE)
        with os.fdopen(handle, "w", encoding=encoding, newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)
