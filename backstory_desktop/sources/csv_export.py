"""Read a CSV export of activities (Data Loader, a cadence tool) as a stream of mail activities.

The file is read with a ``CsvMapping`` of its columns to ours (see
``csv_mapping``, whose names this module also exports). Each row becomes a
``MailActivity`` keyed by ``canonical_message_id``, or a ``SourceProblem`` that names its row. A row is a
problem when it has no usable Message-ID, a date that cannot be read, a
record Id that is not one, or another number of cells than the header.

Row numbers count the header as row 1, as a spreadsheet shows the file. The
file is read as UTF-8 (a byte order mark is allowed), else as Windows-1252,
the encoding Excel uses when it saves "CSV" on Western-language Windows. Each
line is decoded on its own, so a stray invalid byte in a UTF-8 file makes
only its row a problem. A quote that is never closed is reported on its row,
and the lines it ran into are read again as rows.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import logging
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from backstory_desktop.core.activity import MailActivity, Participant, ProblemKind, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.core.message_id import canonical_message_id
from backstory_desktop.sources.base import ProgressReporter, SourceError, looks_binary
from backstory_desktop.sources.csv_mapping import (
    CADENCE_LABEL,
    COLUMN_LABELS,
    CUSTOM_LABEL,
    DATA_LOADER_LABEL,
    CsvColumn,
    CsvMapping,
    MappingFault,
    MappingFaultKind,
    check_mapping,
    guess_mapping,
    mapping_faults,
)
from backstory_desktop.sources.message import (
    MAX_BODY_CHARACTERS,
    PARSER_ERRORS,
    cleaned_text,
    html_to_text,
    parse_mail_date,
    participants,
    with_warnings,
)
from backstory_desktop.sources.record_ids import CONTACT_PREFIX, LEAD_PREFIX, USER_PREFIX, record_id_18

logger = logging.getLogger(__name__)

__all__ = [
    "CADENCE_LABEL",
    "COLUMN_LABELS",
    "CUSTOM_LABEL",
    "DATA_LOADER_LABEL",
    "MAX_CELL_CHARACTERS",
    "CsvColumn",
    "CsvMapping",
    "MappingFault",
    "MappingFaultKind",
    "check_mapping",
    "csv_encoding",
    "guess_mapping",
    "mapping_faults",
    "read_csv_export",
    "read_csv_header",
]

# Cells longer than the csv module's default limit (131,072 characters) hold HTML bodies in some exports.
MAX_CELL_CHARACTERS = 16 * 1024 * 1024

_ENCODING_CHECK_BYTES = 1024 * 1024
_DELIMITERS = (",", ";", "\t")
_HTML = re.compile(r"<(?:html|body|p|div|br|table|span)\b", re.IGNORECASE)
_SLASHED_DATE = re.compile(
    r"^(\d{1,2})([/.])(\d{1,2})\2(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)
_ZONE_WORD = re.compile(r"\s*(?:UTC|GMT|Z)$")
_INVALID_UTF8 = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")


def read_csv_header(path: Path) -> list[str]:
    """Return the header row of a CSV file, or raise SourceError saying what the file is instead."""
    encoding = _checked_encoding(path)
    with path.open("rb") as binary:
        rows = _RowReader(_lines(binary, encoding))
        try:
            header = rows.next_record() or []
        except csv.Error as error:
            raise SourceError(f"{path} cannot be read as CSV: its header row is invalid ({error})") from error
    bad = next((line for line in rows.consumed if line.bad_byte is not None), None)
    if bad is not None and bad.bad_byte is not None:
        raise SourceError(
            f"{path} has a header row that is not valid UTF-8 (byte {bad.bad_byte[1]:#04x} at byte offset "
            f"{bad.bad_byte[0]}): save the file as \"CSV UTF-8\" and choose it again"
        )
    names = [name.strip() for name in header]
    if not any(names):
        raise SourceError(f"{path} has no header row: its first line is empty")
    return names


def csv_encoding(path: Path) -> str:
    """Return the encoding the file is read with: "utf-8-sig", "utf-16" or "cp1252" (Windows-1252)."""
    return _checked_encoding(path)


def read_csv_export(
    path: Path,
    mapping: CsvMapping,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[MailActivity | SourceProblem]:
    """Check the file and the mapping, then return an iterator over the rows.

    Raises SourceError at once when the file is not a CSV file with a header
    row, or the mapping does not fit its header (the sentences of
    ``check_mapping``). The iterator reports ``progress(bytes_done,
    total_bytes, "Reading <name>")`` and raises Cancelled when ``cancel`` is set.
    """
    headers = read_csv_header(path)
    problems = check_mapping(mapping, headers)
    if problems:
        raise SourceError(f"{path} cannot be read with this column mapping. " + " ".join(problems))
    return _iterate_rows(path, headers, mapping, progress, cancel)


def _iterate_rows(
    path: Path,
    headers: list[str],
    mapping: CsvMapping,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Iterator[MailActivity | SourceProblem]:
    encoding = _checked_encoding(path)
    total = path.stat().st_size
    windows = encoding == "cp1252"
    name = f"{path.name} as Windows-1252 (it is not UTF-8)" if windows else path.name
    reporter = ProgressReporter(progress, total, name)
    reporter.update(0)
    indexes = {column: headers.index(header) for column, header in mapping.columns.items()}
    key_index = indexes[CsvColumn.MESSAGE_ID]
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_CHARACTERS))
    if windows:
        logger.info("%s is not valid UTF-8: it is read as Windows-1252", path.name)

    count = 0
    with path.open("rb") as binary:
        rows = _RowReader(_lines(binary, encoding))
        row_number = 0
        while True:
            check_cancel(cancel)
            row_number += 1
            source_ref = f"{path.name}, row {row_number}" + (" (read as Windows-1252)" if windows else "")
            try:
                cells = rows.next_record()
            except csv.Error as error:
                yield SourceProblem(source_ref, f"the row is not valid CSV ({error})", None)
                continue
            if cells is None:
                break
            reporter.update(rows.offset)
            if row_number == 1 or not any(cell.strip() for cell in cells):
                continue
            count += 1
            swallowed = _swallowed_lines(rows, len(headers), key_index)
            if swallowed is not None:
                opened_on = rows.consumed[0].number
                yield _unclosed_quote_problem(source_ref, opened_on, len(swallowed), cells, key_index)
                rows.push_back(swallowed)
                continue
            problem = _encoding_problem(rows.consumed, encoding, source_ref, cells, key_index)
            yield problem or _row_activity(cells, headers, indexes, source_ref)
    reporter.update(total, final=True)
    logger.info("Read %d rows from %s", count, path.name)


@dataclass(frozen=True)
class _Line:
    """One physical line of the file, decoded, with where it ends and its first byte that is not text."""

    text: str
    number: int
    end: int
    # The file offset and value of the first byte that is invalid in the file's encoding.
    bad_byte: tuple[int, int] | None = None


def _lines(binary: BinaryIO, encoding: str) -> Iterator[_Line]:
    """Split the file into lines ("\n", "\r\n" or "\r") and decode each line on its own.

    Decoding line by line keeps one invalid byte from changing how the rest of
    the file reads: that line keeps the byte's offset, and its row is reported.
    """
    if encoding == "utf-16":
        text = io.TextIOWrapper(binary, encoding="utf-16", newline="")
        for number, line in enumerate(text, start=1):
            yield _Line(line, number, binary.tell())
        return

    # Latin-1 maps each byte to one character, so this splits lines without decoding them.
    raw_lines = io.TextIOWrapper(binary, encoding="latin-1", newline="")
    codec = "cp1252" if encoding == "cp1252" else "utf-8"
    end = 0
    for number, raw_line in enumerate(raw_lines, start=1):
        raw = raw_line.encode("latin-1")
        start = end
        end += len(raw)
        if start == 0 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
            start = len(codecs.BOM_UTF8)
        try:
            yield _Line(raw.decode(codec), number, end)
        except UnicodeDecodeError as error:
            bad_byte = (start + error.start, raw[error.start])
            yield _Line(raw.decode(codec, errors="replace"), number, end, bad_byte)


class _RowReader:
    """Read CSV records from lines, keeping the lines of each record so that they can be read again.

    ``consumed`` contains the lines of the last record. ``push_back`` returns
    lines to be read before the rest of the file, to read again the rows that
    an unclosed quote put into one cell.
    """

    def __init__(self, lines: Iterator[_Line]) -> None:
        self._lines = lines
        self._pushed: deque[_Line] = deque()
        self.consumed: list[_Line] = []
        self.offset = 0
        # Set when the last record asked for a line after the end of the file, which means it ended in quotes.
        self.ended_in_quotes = False
        self._reader: Iterator[list[str]] | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._pushed:
            line = self._pushed.popleft()
        else:
            read = next(self._lines, None)
            if read is None:
                if self.consumed:
                    self.ended_in_quotes = True
                raise StopIteration
            line = read
            self.offset = line.end
        self.consumed.append(line)
        return line.text

    def next_record(self) -> list[str] | None:
        """Return the cells of the next record, or None at the end of the file; raise csv.Error."""
        self.consumed = []
        self.ended_in_quotes = False
        if self._reader is None:
            first = next(self._lines, None)
            if first is None:
                return None
            self._pushed.append(first)
            self.offset = first.end
            self._reader = csv.reader(self, delimiter=_delimiter(first.text))
        return next(self._reader, None)

    def push_back(self, lines: Sequence[_Line]) -> None:
        self._pushed.extendleft(reversed(lines))


def _swallowed_lines(rows: _RowReader, cell_count: int, key_index: int) -> list[_Line] | None:
    """Return the lines after the first of a record that an unclosed quote made one cell, or None.

    A quote is unclosed when the record ran into the end of the file inside
    quotes. It is also unclosed when one of the record's later lines reads on
    its own as a whole row, with as many cells as the header and a usable
    Message-ID in the key column.
    """
    lines = rows.consumed
    if rows.ended_in_quotes:
        return lines[1:]
    if len(lines) < 2:
        return None
    delimiter = _delimiter(lines[0].text)
    for line in lines[1:]:
        cells = next(csv.reader([line.text], delimiter=delimiter), [])
        if len(cells) >= cell_count and canonical_message_id(cells[key_index]).key is not None:
            return lines[1:]
    return None


def _unclosed_quote_problem(
    source_ref: str, line_number: int, swallowed: int, cells: list[str], key_index: int
) -> SourceProblem:
    lines = "line" if swallowed == 1 else "lines"
    return SourceProblem(
        source_ref,
        f"a quote that opens in this row (line {line_number} of the file) is never closed, so the "
        f"{swallowed} {lines} after it ran into one cell: they are read again as rows, and this row "
        "is skipped until its quote is closed",
        _key_cell(cells, key_index),
    )


def _encoding_problem(
    lines: list[_Line], encoding: str, source_ref: str, cells: list[str], key_index: int
) -> SourceProblem | None:
    bad = next((line.bad_byte for line in lines if line.bad_byte is not None), None)
    if bad is None:
        return None
    offset, value = bad
    name = "Windows-1252" if encoding == "cp1252" else "UTF-8"
    return SourceProblem(
        source_ref,
        f"the row is not valid {name}: byte {value:#04x} at byte offset {offset} is not a character, "
        "so the row is skipped rather than read with wrong letters; fix that character or save the "
        "file again as \"CSV UTF-8\"",
        _key_cell(cells, key_index),
    )


def _key_cell(cells: list[str], key_index: int) -> str | None:
    if key_index < len(cells) and cells[key_index].strip():
        return cells[key_index]
    return None


def _row_activity(
    cells: list[str], headers: list[str], indexes: Mapping[CsvColumn, int], source_ref: str
) -> MailActivity | SourceProblem:
    """Turn one row into an activity, or into the problem that keeps it from being one."""
    key_cell = _cell(cells, indexes, CsvColumn.MESSAGE_ID)
    raw_header = key_cell if key_cell and key_cell.strip() else None
    for cell, header in zip(cells, headers, strict=False):
        if "\x00" in cell:
            return SourceProblem(
                source_ref,
                f"the cell in column {header!r} contains a NUL byte, which a CSV file does not "
                "contain: remove it from the file and read it again",
                raw_header if "\x00" not in (raw_header or "") else None,
            )
    # Trailing empty cells beyond the header (written by some spreadsheets) are ignored.
    if len(cells) > len(headers) and not any(cell.strip() for cell in cells[len(headers) :]):
        cells = cells[: len(headers)]
    if len(cells) != len(headers):
        return SourceProblem(
            source_ref,
            f"the row has {len(cells)} cells but the header has {len(headers)}: a quote or a "
            "delimiter in the row is probably missing or extra",
            raw_header,
        )

    message_id = canonical_message_id(raw_header)
    if message_id.key is None:
        reason = "the Message-ID cell is empty" if raw_header is None else message_id.problem
        return SourceProblem(source_ref, f"no usable Message-ID: {reason}", raw_header, ProblemKind.NO_KEY)

    try:
        who_id = _record_id(cells, indexes, CsvColumn.WHO_ID, (CONTACT_PREFIX, LEAD_PREFIX), "WhoId")
        owner_id = _record_id(cells, indexes, CsvColumn.OWNER_ID, (USER_PREFIX,), "OwnerId")
    except ValueError as error:
        return SourceProblem(source_ref, str(error), raw_header, ProblemKind.BAD_REFERENCE)
    try:
        sent_at = _parse_sent_at(_cell(cells, indexes, CsvColumn.SENT_AT) or "")
        senders = _people(_cell(cells, indexes, CsvColumn.SENDER))
        recipients = _people(_cell(cells, indexes, CsvColumn.RECIPIENTS))
    except ValueError as error:
        return SourceProblem(source_ref, str(error), raw_header)

    warnings: list[str] = []
    subject = cleaned_text((_cell(cells, indexes, CsvColumn.SUBJECT) or "").strip(), "subject", warnings)
    body = cleaned_text(_body(_cell(cells, indexes, CsvColumn.BODY) or ""), "body", warnings)
    return MailActivity(
        source_ref=source_ref,
        message_id=with_warnings(message_id, warnings),
        subject=subject,
        sender=senders[0] if senders else None,
        recipients=tuple(recipients),
        sent_at=sent_at,
        body_text=body,
        who_id=who_id,
        owner_id=owner_id,
    )


def _cell(cells: list[str], indexes: Mapping[CsvColumn, int], column: CsvColumn) -> str | None:
    index = indexes.get(column)
    if index is None or index >= len(cells):
        return None
    return cells[index]


def _record_id(
    cells: list[str],
    indexes: Mapping[CsvColumn, int],
    column: CsvColumn,
    prefixes: tuple[str, ...],
    label: str,
) -> str | None:
    value = (_cell(cells, indexes, column) or "").strip()
    if not value:
        return None
    record_id, problem = record_id_18(value, prefixes, label)
    if problem is not None:
        raise ValueError(problem)
    return record_id


def _people(value: str | None) -> list[Participant]:
    """Read the addresses of a cell, which cadence tools separate with commas or semicolons."""
    if not value or not value.strip():
        return []
    try:
        return participants([value.replace(";", ",")])
    except PARSER_ERRORS as error:
        raise ValueError(f"the addresses {value[:80]!r} cannot be read: separate them with commas and quote "
                         "display names that contain commas") from error


def _body(value: str) -> str:
    text = html_to_text(value) if _HTML.search(value) else value
    return text.strip()[:MAX_BODY_CHARACTERS]


def _parse_sent_at(value: str) -> datetime | None:
    """Read a date as exports write it. A time without a zone is read as UTC.

    Accepted: ISO 8601 ("2024-01-15", "2024-01-15T10:22:33.000Z",
    "2024-01-15 10:22:33 UTC"), RFC 5322 ("Mon, 15 Jan 2024 10:22:33 +0100")
    and day/month/year or month/day/year when the numbers tell which is the
    month. Raises ValueError with the sentence shown for the row otherwise.
    """
    text = value.strip()
    if not text:
        return None
    parsed = _parse_iso(text) or parse_mail_date(text) or _parse_slashed(text)
    if parsed is None:
        raise ValueError(
            f"the date {text!r} cannot be read: write dates as 2024-01-15 or 2024-01-15T10:22:00Z"
        )
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _parse_iso(text: str) -> datetime | None:
    zoned = _ZONE_WORD.sub("+00:00", text) if _ZONE_WORD.search(text) else text
    try:
        return datetime.fromisoformat(zoned.replace(" +", "+"))
    except ValueError:
        return None


def _parse_slashed(text: str) -> datetime | None:
    match = _SLASHED_DATE.match(text)
    if match is None:
        return None
    first, separator, second, year = int(match[1]), match[2], int(match[3]), int(match[4])
    if separator == "." or first > 12:
        day, month = first, second
    elif second > 12 or first == second:
        month, day = first, second
    else:
        raise ValueError(
            f"the date {text!r} could be read day first or month first: write dates as 2024-01-15"
        )
    hour = int(match[5] or 0)
    meridiem = (match[8] or "").lower()
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    try:
        return datetime(year, month, day, hour, int(match[6] or 0), int(match[7] or 0))
    except ValueError:
        return None


def _checked_encoding(path: Path) -> str:
    """Return the encoding to read a CSV file with, or raise SourceError when it is not a text table."""
    try:
        return _encoding(path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SourceError(f"{path} cannot be read: {reason}") from error


def _encoding(path: Path) -> str:
    if not path.exists():
        raise SourceError(f"{path} not found")
    if not path.is_file():
        raise SourceError(f"{path} is a folder: choose a CSV file")
    status = path.stat()
    return _file_encoding(str(path), status.st_size, status.st_mtime_ns)


# The file is decoded up to its first invalid byte to choose the encoding, so the result is kept while
# the file is unchanged: a mapping dialog reads the header and a preview of the same file several times.
@functools.lru_cache(maxsize=16)
def _file_encoding(name: str, size: int, modified_ns: int) -> str:
    """Choose the encoding of the whole file: UTF-16 by its byte order mark, else UTF-8 or Windows-1252.

    The file is Windows-1252 only when it is not UTF-8 as a whole: it has
    bytes that are invalid in UTF-8, no UTF-8 byte order mark, and fewer
    valid non-ASCII UTF-8 characters than invalid bytes. A UTF-8 file with a
    stray invalid byte stays UTF-8, and the row with that byte is reported.
    """
    path = Path(name)
    with path.open("rb") as stream:
        start = stream.read(_ENCODING_CHECK_BYTES)
        if not start.strip():
            raise SourceError(f"{path} is empty: it has no header row and no rows")
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        _reject_binary(path, start)
        if start.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"

        # Invalid bytes decode to lone surrogates U+DC80..U+DCFF, so both kinds can be counted.
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        valid = invalid = 0
        chunk = start
        while True:
            text = decoder.decode(chunk, final=not chunk)
            if not text.isascii():
                bad = len(_INVALID_UTF8.findall(text))
                invalid += bad
                valid += len(_NON_ASCII.findall(text)) - bad
            if not chunk:
                break
            chunk = stream.read(_ENCODING_CHECK_BYTES)
    return "utf-8-sig" if invalid == 0 or valid >= invalid else "cp1252"


def _reject_binary(path: Path, start: bytes) -> None:
    if start.startswith(b"PK\x03\x04"):
        raise SourceError(
            f"{path} is a ZIP archive, perhaps an Excel workbook (.xlsx): save it from Excel as "
            "\"CSV UTF-8\" and choose that file"
        )
    if start.startswith(b"\xd0\xcf\x11\xe0"):
        raise SourceError(f"{path} is an Office document (.xls or .msg): save it as a CSV file")
    if looks_binary(start):
        raise SourceError(f"{path} is binary data, not a CSV file: choose the CSV export")


def _delimiter(first_line: str) -> str:
    """Pick the delimiter that splits the header row into the most cells, or a comma when none does."""
    counts = {delimiter: first_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","
