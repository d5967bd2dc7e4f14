"""The files a sync run leaves for the admin: the plan, and success and error files like Data Loader's.

Data Loader writes a success file (the record's ``ID`` first, then the row's
columns, then ``STATUS`` such as "Item Created") and an error file (the row's
columns, then ``ERROR``), every value in double quotes. These files follow the
same layout, with upper-case column names.

Every file is UTF-8 with a byte order mark, so that Excel reads accents and
other scripts correctly. Each is written to a temporary file readable by its
owner only and then moved into place, so that a reader never sees half a file.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some
also one that starts with a tab or a carriage return) as a formula. Subjects and
keys come from e-mail senders, so such a cell is written with a single quote in
front (``'=1+1``), which spreadsheets show as text. The quote is not part of the value.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from backstory_desktop.core.plan import PlanRow
from backstory_desktop.store import paths

SUCCESS_FILE = "success.csv"
ERROR_FILE = "error.csv"
PLAN_FILE = "plan.csv"
OWNER_ONLY_FILE_MODE = 0o600
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

PLAN_COLUMNS = ("SOURCE", "MESSAGE_ID", "UPSERT_KEY", "ACTION", "SUBJECT", "REASON", "EXISTING_TASK_IDS",
                "OWNER_ID", "WHO_ID")
SUCCESS_COLUMNS = ("ID", "SOURCE", "MESSAGE_ID", "ACTION", "SUBJECT", "STATUS")
ERROR_COLUMNS = ("ID", "SOURCE", "MESSAGE_ID", "ACTION", "SUBJECT", "STATE", "ERROR_CODE", "ERROR")
# Data Loader's STATUS values for written rows.
_STATUS_TEXT = {"created": "Item Created", "updated": "Item Updated"}
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ResultFiles:
    """The folder of a run's result files and the files in it (``plan`` when one was written)."""

    folder: Path
    success: Path
    error: Path
    plan: Path | None


@dataclass(frozen=True)
class ResultRow:
    """One record's outcome: status "created" or "updated" goes to the success file, others to errors."""

    source_ref: str
    key: str | None
    action: str
    subject: str
    record_id: str | None
    status: str
    error_code: str | None
    message: str


def result_folder(run_id: str, sync_folder: Path | None = None) -> Path:
    """Return the folder of a run's result files (not created here).

    ``sync_folder`` is the folder of the run's journal, by default the app's
    ``paths.data_dir()/sync``; the files go in its ``results/<run id>``.
    """
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ValueError(f"the run id {run_id!r} cannot name a folder; use letters, digits, '.', '_' or '-'")
    return (sync_folder or paths.data_dir() / "sync") / "results" / run_id


def safe_cell(value: Any) -> str:
    """Return a value as CSV cell text that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_plan_csv(path: Path, rows: Iterable[PlanRow]) -> int:
    """Write the plan's rows to ``path`` (owner-only, replaced at once) and return how many were written."""
    with _csv_files([path]) as (writer,):
        writer.writerow(PLAN_COLUMNS)
        count = 0
        for row in rows:
            record = row.record
            writer.writerow(_safe([
                row.source_ref, row.key, row.upsert_key, row.action.value, row.subject, row.reason,
                " ".join(task.id for task in row.existing), record.get("OwnerId"), record.get("WhoId"),
            ]))
            count += 1
    return count


def write_result_files(folder: Path, rows: Iterable[ResultRow]) -> ResultFiles:
    """Write ``success.csv`` and ``error.csv`` of a run into ``folder`` (owner-only, replaced at once).

    Rows stream through once, so a long run needs little memory. The folder's
    ``plan.csv`` is named in the result when it exists.
    """
    paths.ensure_private_dir(folder)
    success, error = folder / SUCCESS_FILE, folder / ERROR_FILE
    with _csv_files([success, error]) as (written, failed):
        written.writerow(SUCCESS_COLUMNS)
        failed.writerow(ERROR_COLUMNS)
        for row in rows:
            status = row.status.lower()
            if status in _STATUS_TEXT:
                written.writerow(_safe([row.record_id, row.source_ref, row.key, row.action, row.subject,
                                        _STATUS_TEXT[status]]))
            else:
                failed.writerow(_safe([row.record_id, row.source_ref, row.key, row.action, row.subject,
                                       row.status, row.error_code, row.message]))
    plan = folder / PLAN_FILE
    return ResultFiles(folder, success, error, plan if plan.exists() else None)


def _safe(values: Sequence[Any]) -> list[str]:
    return [safe_cell(value) for value in values]


@contextmanager
def _csv_files(targets: Sequence[Path]) -> Iterator[tuple[Any, ...]]:
    """Yield a CSV writer per target, writing to temporary files moved into place only on success."""
    temporaries: list[str] = []
    try:
        with ExitStack() as stack:
            writers = []
            for target in targets:
                handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                                     dir=target.parent)
                temporaries.append(temporary)
                os.chmod(temporary, OWNER_ONLY_FILE_MODE)
                stream: TextIO = stack.enter_context(
                    os.fdopen(handle, "w", encoding="utf-8-sig", newline=""))
                writers.append((stream, csv.writer(stream, quoting=csv.QUOTE_ALL, lineterminator="\n")))
            yield tuple(writer for _stream, writer in writers)
            for stream, _writer in writers:
                stream.flush()
                os.fsync(stream.fileno())
        for temporary, target in zip(temporaries, targets, strict=True):
            os.replace(temporary, target)
    finally:
        for temporary in temporaries:
            Path(temporary).unlink(missing_ok=True)
