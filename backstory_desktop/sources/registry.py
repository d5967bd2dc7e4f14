"""Choose the reader for a path: an mbox file, a Maildir folder, a folder of .eml files or a CSV export.

``read_source`` is the one entry point the sync uses: it detects the kind,
checks the source at once (raising SourceError with a sentence for the
admin before anything is read), then streams activities and problems.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.csv_export import (
    CsvColumn,
    CsvMapping,
    MappingFaultKind,
    guess_mapping,
    mapping_faults,
    read_csv_export,
    read_csv_header,
)
from backstory_desktop.sources.eml_folder import check_eml_folder, has_message_files, read_eml_folder
from backstory_desktop.sources.maildir import check_maildir, is_maildir, read_maildir
from backstory_desktop.sources.mbox import check_mbox_file, read_mbox
from backstory_desktop.sources.message import is_header_line
from backstory_desktop.sources.message_files import OLE_SIGNATURE, sorted_entries

CSV_SUFFIXES = (".csv", ".tsv")
MESSAGE_SUFFIXES = (".eml", ".msg")
# Apple Mail exports a mailbox as a folder "Name.mbox" with the messages in a file named "mbox".
APPLE_MAIL_MBOX = "mbox"

_UTF8_BOM = b"\xef\xbb\xbf"


class SourceKind(StrEnum):
    """The kinds of mail source the sync reads."""

    MBOX = "mbox"
    MAILDIR = "maildir"
    EML_FOLDER = "eml"
    CSV = "csv"


_DESCRIPTIONS = {
    SourceKind.MBOX: "mbox file",
    SourceKind.MAILDIR: "Maildir folder",
    SourceKind.EML_FOLDER: "folder of .eml files",
    SourceKind.CSV: "CSV export",
}


def describe_source(kind: SourceKind) -> str:
    """Return the name shown to the admin for a kind of source, for example "Maildir folder"."""
    return _DESCRIPTIONS[kind]


def detect_source(path: Path) -> SourceKind:
    """Tell which kind of source ``path`` is, or raise SourceError saying what it is instead."""
    try:
        if path.is_dir():
            return _detect_folder(path)
        if not path.exists():
            raise SourceError(f"{path} not found")
        return _detect_file(path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SourceError(f"{path} cannot be read: {reason}") from error


def read_source(
    path: Path,
    *,
    mapping: CsvMapping | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[MailActivity | SourceProblem]:
    """Detect and check the source at ``path``, then return an iterator over its activities.

    Raises SourceError before anything is read when the path cannot be read
    as any source. A CSV export is read with ``mapping``, or with the mapping
    ``guess_mapping`` proposes. SourceError is raised when no column is
    recognised as the Message-ID.
    """
    kind = detect_source(path)
    if kind is SourceKind.MBOX:
        mbox_file = path / APPLE_MAIL_MBOX if path.is_dir() else path
        return read_mbox(mbox_file, progress=progress, cancel=cancel)
    if kind is SourceKind.MAILDIR:
        return read_maildir(path, progress=progress, cancel=cancel)
    if kind is SourceKind.EML_FOLDER:
        return read_eml_folder(path, progress=progress, cancel=cancel)

    if mapping is None:
        headers = read_csv_header(path)
        mapping = guess_mapping(headers)
        no_key = [fault for fault in mapping_faults(mapping, headers)
                  if fault.kind is MappingFaultKind.NO_KEY_COLUMN]
        if no_key:
            raise SourceError(f"{path} cannot be read with the guessed column mapping. {no_key[0].message}")
    return read_csv_export(path, mapping, progress=progress, cancel=cancel)


def _detect_folder(path: Path) -> SourceKind:
    if is_maildir(path):
        return SourceKind.MAILDIR
    if (path / APPLE_MAIL_MBOX).is_file():
        return SourceKind.MBOX
    if has_message_files(path):
        return SourceKind.EML_FOLDER
    # These checks raise the sentence for a parent of Maildirs, a folder of .msg files or one with no mail.
    entries = sorted_entries(path)
    if any(entry.is_dir() and is_maildir(Path(entry.path)) for entry in entries):
        check_maildir(path)
    csv_files = [
        entry.name for entry in entries if entry.is_file() and Path(entry.name).suffix.lower() in CSV_SUFFIXES
    ]
    if csv_files:
        raise SourceError(
            f"{path} is a folder of CSV files, and a CSV export is read one file at a time: "
            f"choose one of them, such as {path / csv_files[0]}"
        )
    check_eml_folder(path)
    raise SourceError(f"{path} contains no mail")


def _detect_file(path: Path) -> SourceKind:
    first_line = _first_line(path)
    # A header row such as "From Address,Message ID" also starts with "From ".
    if path.suffix.lower() in CSV_SUFFIXES or _looks_like_csv_header(first_line):
        return SourceKind.CSV
    if first_line.startswith(b"From "):
        return SourceKind.MBOX
    if first_line.startswith(OLE_SIGNATURE[:4]) and path.suffix.lower() == ".msg":
        raise SourceError(
            f"{path} is an Outlook .msg message, which is not read: save the messages as .eml files "
            "in a folder and choose the folder, or export the mailbox as an mbox file"
        )
    if path.suffix.lower() in MESSAGE_SUFFIXES or is_header_line(first_line):
        raise SourceError(
            f"{path} is a single message: choose the folder that contains it to read every .eml "
            "file there, or export the mailbox as an mbox file"
        )
    # The mbox check describes what the file looks like instead (a PDF, a ZIP archive, an empty file).
    check_mbox_file(path)
    raise SourceError(f"{path} is not an mbox file, a Maildir folder, a folder of .eml files or a CSV export")


def _first_line(path: Path) -> bytes:
    """Return the first non-blank line of a file, without a byte order mark; b"" when there is none."""
    with path.open("rb") as stream:
        for _ in range(10_000):
            line = stream.readline(4096)
            if not line:
                break
            if line.strip():
                return line.removeprefix(_UTF8_BOM).rstrip(b"\r\n")
    return b""


def _looks_like_csv_header(line: bytes) -> bool:
    """Tell whether a line looks like the header row of an activity export: a Message-ID column."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    headers = [cell.strip().strip('"') for cell in text.replace(";", ",").replace("\t", ",").split(",")]
    return len(headers) > 1 and CsvColumn.MESSAGE_ID in guess_mapping(headers).columns
