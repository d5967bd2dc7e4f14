"""Read an mbox file as a stream of mail activities.

Handles mboxo and mboxrd quoting, LF and CRLF line ends, Netscape's
``From - `` separators and ``From `` lines inside bodies. The file is read
line by line in binary, so memory stays bounded by the largest message (and
by ``MAX_MESSAGE_BYTES`` for any one message).

A line counts as a message separator only when it has the shape
``From <sender> <date>`` (or ``From -`` with an optional date) and the next
line starts like a header field. Otherwise it is body text, as in a
paragraph that begins "From here on, we agree.".
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.sources.message import is_header_line, parse_message, read_headers

logger = logging.getLogger(__name__)

# Bytes kept of one message. The rest of a larger message is skipped, so its
# body text may be cut, but its headers are kept.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

# Lines are read in chunks of at most this size, so one enormous line cannot fill memory.
_MAX_CHUNK_BYTES = 1024 * 1024
_SENDER_LINE = re.compile(rb"^From (\S+)[ \t]+(.*)$")
_BARE_SENDER_LINE = re.compile(rb"^From \S+$")
_NETSCAPE_LINE = re.compile(rb"^From -(?:[ \t]+(.*))?$")
_TIME = re.compile(rb"\b\d{1,2}:\d{2}\b")
_YEAR_OR_MONTH = re.compile(rb"\b(?:\d{4}|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")
_QUOTED_FROM = re.compile(rb"^>+From ")
_UTF8_BOM = b"\xef\xbb\xbf"


class MailboxError(ValueError):
    """The file cannot be read as an mbox at all: missing, empty or another format."""


def read_mbox(
    path: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[MailActivity | SourceProblem]:
    """Check that ``path`` is an mbox file, then return an iterator over its messages.

    Raises MailboxError at once when the file is missing, empty or not an
    mbox. The iterator reports ``progress(bytes_done, total_bytes, "Reading
    <name>")`` about every 1% and raises Cancelled when ``cancel`` is set.
    """
    total = check_mbox_file(path)
    return _iterate_messages(path, total, progress, cancel)


def check_mbox_file(path: Path) -> int:
    """Return the size of an mbox file, or raise MailboxError saying what the file is instead."""
    try:
        return _check_mbox_file(path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise MailboxError(f"{path} cannot be read: {reason}") from error


def _check_mbox_file(path: Path) -> int:
    if not path.exists():
        raise MailboxError(f"{path} not found")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise MailboxError(f"{path} is {kind}: choose an mbox file")
    total = path.stat().st_size
    if total == 0:
        raise MailboxError(f"{path} is empty: it holds no messages")

    first_line = _first_non_empty_line(path)
    if first_line is None:
        raise MailboxError(f"{path} is empty: it contains only blank lines, no messages")
    if not first_line.startswith(b"From "):
        raise MailboxError(
            f"{path} is not an mbox file: an mbox starts with a 'From ' line, "
            f"but the first line {_describe_first_line(first_line)}"
        )
    return total


@dataclass
class _PendingMessage:
    number: int
    offset: int
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def add(self, line: bytes) -> None:
        if self.size + len(line) > MAX_MESSAGE_BYTES:
            self.truncated = True
            return
        self.lines.append(line)
        self.size += len(line)


class _Progress:
    """Report bytes read about every 1% of the file."""

    def __init__(self, callback: ProgressCallback | None, total: int, name: str) -> None:
        self._callback = callback
        self._total = total
        self._message = f"Reading {name}"
        self._step = max(1, total // 100)
        self._last = -1

    def update(self, done: int, *, final: bool = False) -> None:
        if self._callback is None:
            return
        if final or self._last < 0 or done - self._last >= self._step:
            self._last = done
            self._callback(done, self._total, self._message)


def _iterate_messages(
    path: Path,
    total: int,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Iterator[MailActivity | SourceProblem]:
    reporter = _Progress(progress, total, path.name)
    reporter.update(0)
    count = 0
    with path.open("rb") as stream:
        for pending in _split_messages(stream, reporter):
            check_cancel(cancel)
            count += 1
            yield _finish_message(path.name, pending)
    reporter.update(total, final=True)
    logger.info("Read %d messages from %s", count, path.name)


def _split_messages(stream: BinaryIO, reporter: _Progress) -> Iterator[_PendingMessage]:
    """Yield the messages of an mbox stream, the separator lines removed and quoting undone."""
    offset = 0
    current: _PendingMessage | None = None
    # A "From " line waiting for the next line to tell whether it is a separator.
    candidate: tuple[bytes, int] | None = None
    number = 0
    after_blank_line = False

    for raw_line, starts_line in _read_lines(stream):
        line_offset = offset
        offset += len(raw_line)
        reporter.update(offset)
        line = _normalise_line_end(raw_line)
        if line_offset == 0:
            line = line.removeprefix(_UTF8_BOM)

        if not starts_line:
            # The rest of a line longer than one chunk: body text, never a separator.
            if current is not None:
                current.add(line)
            after_blank_line = False
            continue

        if current is None:
            # Blank lines before the first separator; check_mbox_file has seen a "From " line.
            if line.strip():
                number += 1
                current = _PendingMessage(number=number, offset=line_offset)
            continue

        if candidate is not None:
            candidate_line, candidate_offset = candidate
            candidate = None
            if is_header_line(line):
                yield current
                number += 1
                current = _PendingMessage(number=number, offset=candidate_offset)
            else:
                current.add(_unquote(candidate_line))

        if _looks_like_separator(line, after_blank_line=after_blank_line):
            candidate = (line, line_offset)
        else:
            current.add(_unquote(line))
        after_blank_line = not line.strip()

    if current is not None:
        if candidate is not None:
            current.add(_unquote(candidate[0]))
        yield current


def _read_lines(stream: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Yield (chunk, starts_line) pairs: whole lines, with over-long lines cut into chunks."""
    starts_line = True
    while chunk := stream.readline(_MAX_CHUNK_BYTES):
        yield chunk, starts_line
        starts_line = chunk.endswith(b"\n")


def _finish_message(name: str, pending: _PendingMessage) -> MailActivity | SourceProblem:
    source_ref = f"{name}, message {pending.number} (byte {pending.offset})"
    data = b"".join(pending.lines)
    if pending.truncated:
        logger.warning(
            "%s is larger than %d bytes: only the first part is read", source_ref, MAX_MESSAGE_BYTES
        )
    if not read_headers(data):
        return SourceProblem(
            source_ref=source_ref,
            reason="the text after this 'From ' line has no header lines: it is not a message",
            raw_header=None,
        )
    return parse_message(data, source_ref)


def _looks_like_separator(line: bytes, *, after_blank_line: bool) -> bool:
    """Tell whether a line has the shape of an mbox separator.

    Accepted: "From sender date", "From -" with or without a date, and a bare
    "From sender" (as in some Gmail exports) right after a blank line.
    """
    if not line.startswith(b"From "):
        return False
    stripped = line.rstrip()
    netscape = _NETSCAPE_LINE.match(stripped)
    if netscape is not None:
        tail = netscape.group(1) or b""
        return not tail.strip() or _is_date_like(tail)
    sender = _SENDER_LINE.match(stripped)
    if sender is not None:
        return _is_date_like(sender.group(2))
    return after_blank_line and _BARE_SENDER_LINE.match(stripped) is not None


def _is_date_like(tail: bytes) -> bool:
    return _TIME.search(tail) is not None and _YEAR_OR_MONTH.search(tail) is not None


def _normalise_line_end(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2] + b"\n"
    return line


def _unquote(line: bytes) -> bytes:
    """Undo one level of ">From " quoting: exact for mboxrd, the usual reading of mboxo."""
    if _QUOTED_FROM.match(line):
        return line[1:]
    return line


def _first_non_empty_line(path: Path) -> bytes | None:
    with path.open("rb") as stream:
        for _ in range(10_000):
            line = stream.readline(4096)
            if not line:
                return None
            if line.strip():
                return line.removeprefix(_UTF8_BOM).rstrip(b"\r\n")
    return None


def _describe_first_line(line: bytes) -> str:
    """Say in a few words what the first line of a non-mbox file looks like."""
    shown = line[:60].decode("utf-8", errors="replace")
    if line.startswith(b"%PDF"):
        return "starts with '%PDF' (a PDF document)"
    if line.startswith(b"PK\x03\x04"):
        return "is the start of a ZIP archive (perhaps a .docx, .xlsx or .zip file)"
    if b"\x00" in line or line.startswith((b"\xd0\xcf\x11\xe0", b"\x89PNG")):
        return "is binary data"
    if is_header_line(line):
        return (
            f"is a header field ({shown!r}), so the file looks like a single message "
            "(.eml): export the mailbox from your mail client as an mbox file and open that"
        )
    if line.lstrip().startswith(b"<"):
        return f"is markup ({shown!r}), perhaps an HTML or XML file"
    if b"," in line or b";" in line or b"\t" in line:
        return f"looks like a table row ({shown!r}), perhaps a CSV file"
    return f"is {shown!r}"
