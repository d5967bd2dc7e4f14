"""Read an mbox file as a stream of mail activities.

Handles mboxo and mboxrd quoting, LF and CRLF line ends, Netscape's
``From - `` separators and ``From `` lines inside bodies. The file is read
in binary blocks of a few megabytes and split by the rules of its lines: a
run of lines that no rule concerns is found with one search and added as a
whole. Memory stays bounded by the largest message (and by
``MAX_MESSAGE_BYTES`` for any one message) plus one block.

A line counts as a message separator only when it has the shape
``From <sender> <date>`` (or ``From -`` with an optional date) and the next
line starts like a header field. Otherwise it is body text, as in a
paragraph that begins "From here on, we agree.". In mboxcl and mboxcl2 files
a Content-Length header gives the size of the body, so that "From " lines in
it need no quoting. That count is used only when a separator or the end of
the file follows exactly where it ends, and the bytes it covers hold no whole
message (a separator line followed by a From or Message-ID header).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.sources.base import ProgressReporter, SourceError, looks_binary
from backstory_desktop.sources.message import (
    is_header_line,
    parse_split_message,
    read_headers,
    split_header,
    with_warnings,
)

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
_QUOTED_FROM_LINES = re.compile(rb"^>(>*From )", re.MULTILINE)
_UTF8_BOM = b"\xef\xbb\xbf"
# Bytes the reader buffers, so that one search finds the next "From " line in many body lines.
_BLOCK_BYTES = 4 * 1024 * 1024
# The lines that the splitter reads one at a time: "From " lines and quoted ones, and in a header also
# blank lines (bytes.strip() whitespace only). Each pair matches such a line at the read position, then
# searches for the line end before the next one.
_BODY_STOP = (re.compile(rb">*From "), re.compile(rb"\n>*From "))
_HEADER_STOP = (
    re.compile(rb">*From |[ \t\r\x0b\x0c]*(?:\n|\Z)"),
    re.compile(rb"\n(?:>*From |[ \t\r\x0b\x0c]*\n)"),
)
# Bytes read after a Content-Length body to check that a separator follows.
_PEEK_BYTES = 4096


class MailboxError(SourceError):
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
    warnings: list[str] = field(default_factory=list)

    def add(self, line: bytes) -> None:
        if self.size + len(line) > MAX_MESSAGE_BYTES:
            self.truncated = True
            return
        self.lines.append(line)
        self.size += len(line)

    def add_lines(self, block: bytes) -> None:
        """Add whole lines at once. Near MAX_MESSAGE_BYTES each line is added on its own, as by ``add``."""
        if self.size + len(block) <= MAX_MESSAGE_BYTES:
            self.lines.append(block)
            self.size += len(block)
            return
        for line in block.split(b"\n")[:-1]:
            self.add(line + b"\n")


def _iterate_messages(
    path: Path,
    total: int,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Iterator[MailActivity | SourceProblem]:
    reporter = ProgressReporter(progress, total, path.name)
    reporter.update(0)
    count = 0
    with path.open("rb") as stream:
        splitter = _MboxSplitter(stream, total)
        for pending in splitter.messages():
            check_cancel(cancel)
            reporter.update(splitter.offset)
            count += 1
            yield _finish_message(path.name, pending)
    reporter.update(total, final=True)
    logger.info("Read %d messages from %s", count, path.name)


class _MboxSplitter:
    """Split an mbox stream into messages, the separator lines removed and quoting undone.

    Separators are found by their shape (see ``_looks_like_separator``). A
    Content-Length header (mboxcl and mboxcl2) is used only when the bytes at
    the offset it gives are blank lines and then a "From " line, or the end of
    the file. A wrong count, as in a file converted to CRLF, falls back to the
    shape of the lines.
    """

    def __init__(self, stream: BinaryIO, total: int) -> None:
        self._stream = _BlockReader(stream)
        self._total = total
        self._offset = 0
        self._starts_line = True

    @property
    def offset(self) -> int:
        """The number of bytes read so far."""
        return self._offset

    def messages(self) -> Iterator[_PendingMessage]:
        current: _PendingMessage | None = None
        # A "From " line waiting for the next line to tell whether it is a separator.
        candidate: tuple[bytes, int] | None = None
        number = 0
        after_blank_line = False
        in_header = False
        # Set after a body whose Content-Length was trusted: the next "From " line is a separator.
        separator_expected = False

        # The hot loop of a large import: reading is inlined here rather than in a method per line.
        readline = self._stream.readline
        plain_lines = self._stream.plain_lines
        while True:
            if self._starts_line and current is not None and candidate is None and not separator_expected:
                # Lines that cannot be separators, quoted "From " lines or the header's end are added as one
                # block. Each is shorter than a chunk, so the block is what the line-by-line path below adds.
                block = plain_lines(_MAX_CHUNK_BYTES, in_header=in_header)
                if block:
                    self._offset += len(block)
                    current.add_lines(block.replace(b"\r\n", b"\n"))
                    after_blank_line = _ends_with_blank_line(block)
                    continue
            chunk = readline(_MAX_CHUNK_BYTES)
            if not chunk:
                break
            line_offset = self._offset
            starts_line = self._starts_line
            self._offset += len(chunk)
            self._starts_line = chunk.endswith(b"\n")
            line = chunk[:-2] + b"\n" if chunk.endswith(b"\r\n") else chunk
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
                    in_header = True
                continue

            if separator_expected:
                if not line.strip():
                    continue
                separator_expected = False
                if line.startswith(b"From "):
                    yield current
                    number += 1
                    current = _PendingMessage(number=number, offset=line_offset)
                    in_header = True
                    continue

            if candidate is not None:
                candidate_line, candidate_offset = candidate
                candidate = None
                if is_header_line(line):
                    yield current
                    number += 1
                    current = _PendingMessage(number=number, offset=candidate_offset)
                    in_header = True
                else:
                    current.add(_unquote(candidate_line))

            if in_header and not line.strip():
                in_header = False
                current.add(line)
                separator_expected = self._read_counted_body(current)
                after_blank_line = True
                continue

            if line.startswith(b"From ") and _looks_like_separator(line, after_blank_line=after_blank_line):
                candidate = (line, line_offset)
            else:
                current.add(_unquote(line) if line.startswith(b">") else line)
            after_blank_line = not line.strip()

        if current is not None:
            if candidate is not None:
                current.add(_unquote(candidate[0]))
            yield current

    def _read_counted_body(self, message: _PendingMessage) -> bool:
        """Read the body that a trusted Content-Length header counts; return False to read by lines."""
        length = _content_length(b"".join(message.lines))
        if length is None or not self._separator_follows(self._offset + length):
            return False

        if self._read_plain_counted_body(message, length):
            return True

        start = self._offset
        body: list[bytes] = []
        kept_bytes = message.size
        remaining = length
        swallowed = _SwallowedMessageCheck()
        while remaining > 0:
            chunk = self._stream.readline(min(_MAX_CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            self._offset += len(chunk)
            if swallowed.check(_normalise_line_end(chunk)):
                # A lying count that ends at a later separator would hide whole messages in this body.
                self._stream.seek(start)
                self._offset = start
                message.warnings.append(
                    f"its Content-Length header ({length} bytes) is wrong because it covers the "
                    "next message, so the message was read up to the next 'From ' line instead"
                )
                logger.warning("The Content-Length %d at byte %d covers a later message", length, start)
                return False
            if kept_bytes + len(chunk) <= MAX_MESSAGE_BYTES:
                body.append(_normalise_line_end(chunk))
                kept_bytes += len(chunk)
            else:
                message.truncated = True
        self._starts_line = True

        # mboxcl quotes "From " lines in bodies and mboxcl2 does not: a body with an
        # unquoted "From " line was written without quoting, so ">From" there is text.
        quoted = not any(chunk.startswith(b"From ") for chunk in body)
        for chunk in body:
            message.add(_unquote(chunk) if quoted else chunk)
        return True

    def _read_plain_counted_body(self, message: _PendingMessage, length: int) -> bool:
        """Read a counted body at once when the line loop of ``_read_counted_body`` would keep it unchanged.

        That is when it fits in the message, has no "From " line (which could
        start a swallowed message, or show that ">From " lines are text) and
        no line longer than a chunk. Return False, having read nothing, otherwise.
        """
        if message.size + length > MAX_MESSAGE_BYTES:
            return False
        start = self._offset
        body = self._stream.read(length)
        if (
            len(body) < length
            or body.startswith(b"From ")
            or b"\nFrom " in body
            or _end_of_short_lines(body, 0, len(body), _MAX_CHUNK_BYTES) < len(body)
        ):
            self._stream.seek(start)
            return False
        self._offset += length
        self._starts_line = True
        # Without "From " lines the body is quoted (mboxcl), as the line loop concludes.
        message.add(_QUOTED_FROM_LINES.sub(rb"\1", body.replace(b"\r\n", b"\n")))
        return True

    def _separator_follows(self, offset: int) -> bool:
        """Tell whether blank lines and then a "From " line, or the end of file, start at ``offset``."""
        if offset > self._total:
            return False
        position = self._stream.tell()
        try:
            self._stream.seek(offset)
            following = self._stream.read(_PEEK_BYTES)
        finally:
            self._stream.seek(position)
        rest = following.lstrip(b"\r\n")
        if not rest:
            return len(following) < _PEEK_BYTES
        return rest.startswith(b"From ")


class _BlockReader:
    """A binary reader over an mbox with a large buffer, so that runs of body lines are found with one search.

    ``readline``, ``read``, ``seek`` and ``tell`` behave as those of a
    buffered file. ``plain_lines`` returns the lines ahead that the splitter
    need not read one at a time.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = b""
        # The file offset of the buffer's first byte, and the read position inside the buffer.
        self._buffer_offset = stream.tell()
        self._position = 0

    def tell(self) -> int:
        return self._buffer_offset + self._position

    def seek(self, offset: int) -> None:
        if self._buffer_offset <= offset <= self._buffer_offset + len(self._buffer):
            self._position = offset - self._buffer_offset
            return
        self._stream.seek(offset)
        self._buffer = b""
        self._buffer_offset = offset
        self._position = 0

    def read(self, size: int) -> bytes:
        self._fill(size)
        data = self._buffer[self._position : self._position + size]
        self._position += len(data)
        return data

    def readline(self, limit: int) -> bytes:
        """Return the next line with its line end, or its first ``limit`` bytes, or the rest of the file."""
        end = self._buffer.find(b"\n", self._position, self._position + limit)
        if end < 0:
            self._fill(limit)
            end = self._buffer.find(b"\n", self._position, self._position + limit)
        stop = min(len(self._buffer), self._position + limit) if end < 0 else end + 1
        line = self._buffer[self._position : stop]
        self._position = stop
        return line

    def plain_lines(self, limit: int, *, in_header: bool) -> bytes:
        """Return the whole lines ahead up to the next line that starts with "From " or ">From ".

        In a header, the lines also stop before the first blank line. The read
        position must be at the start of a line. Lines of more than ``limit``
        bytes, the last line of the file when it has no line end, and lines
        beyond the buffer are left for ``readline``.
        """
        self._fill(limit)
        start = self._position
        first_line, next_lines = _HEADER_STOP if in_header else _BODY_STOP
        if first_line.match(self._buffer, start):
            return b""
        special = next_lines.search(self._buffer, start)
        stop = self._buffer.rfind(b"\n", start) + 1 if special is None else special.start() + 1
        if stop - start > limit:
            stop = _end_of_short_lines(self._buffer, start, stop, limit)
        self._position = max(start, stop)
        return self._buffer[start : self._position]

    def _fill(self, size: int) -> None:
        """Read more of the file when fewer than ``size`` bytes are buffered after the read position."""
        if len(self._buffer) - self._position >= size:
            return
        rest = self._buffer[self._position :]
        self._buffer_offset += self._position
        self._buffer = rest + self._stream.read(max(_BLOCK_BYTES, size) - len(rest))
        self._position = 0


def _end_of_short_lines(buffer: bytes, start: int, stop: int, limit: int) -> int:
    """Return the end of the lines of ``buffer[start:stop]`` before the first line longer than ``limit``."""
    line_start = start
    while stop - line_start > limit:
        last_end = buffer.rfind(b"\n", line_start, line_start + limit)
        if last_end < 0:
            return line_start
        line_start = last_end + 1
    return stop


def _ends_with_blank_line(block: bytes) -> bool:
    """Return True when the last line of a block of whole lines is empty or only whitespace."""
    last_line_start = block.rfind(b"\n", 0, len(block) - 1) + 1
    return not block[last_line_start:].strip()


class _SwallowedMessageCheck:
    """Find a whole message inside a counted body: a separator line, then a header with From or Message-ID.

    A "From " line followed by other header fields (as in a quoted message)
    is body text, so a count that covers one is still trusted.
    """

    def __init__(self) -> None:
        self._in_header = False
        self._after_blank_line = True

    def check(self, line: bytes) -> bool:
        """Take the next line of the body; return True once a whole message has been seen."""
        if self._in_header:
            if line.startswith((b" ", b"\t")):
                return False
            if is_header_line(line):
                name = line.partition(b":")[0].strip().lower()
                return name in (b"from", b"message-id")
            self._in_header = False
        self._in_header = _looks_like_separator(line, after_blank_line=self._after_blank_line)
        self._after_blank_line = not line.strip()
        return False


def _content_length(header: bytes) -> int | None:
    """Return the value of the one Content-Length header, or None when there is none or it is odd."""
    if b"content-length" not in header.lower():
        return None
    values = [value.strip() for name, value in read_headers(header) if name == "content-length"]
    if len(values) != 1 or not values[0].isdigit():
        return None
    return int(values[0])


def _finish_message(name: str, pending: _PendingMessage) -> MailActivity | SourceProblem:
    source_ref = f"{name}, message {pending.number} (byte {pending.offset})"
    data = b"".join(pending.lines)
    if pending.truncated:
        logger.warning(
            "%s is larger than %d bytes: only the first part is read", source_ref, MAX_MESSAGE_BYTES
        )
    fields, body_start = split_header(data)
    if not fields:
        return SourceProblem(
            source_ref=source_ref,
            reason="the text after this 'From ' line has no header lines: it is not a message",
            raw_header=None,
        )
    parsed = parse_split_message(data, fields, body_start, source_ref)
    if isinstance(parsed, MailActivity) and pending.warnings:
        return dataclasses.replace(parsed, message_id=with_warnings(parsed.message_id, pending.warnings))
    if isinstance(parsed, SourceProblem) and pending.warnings:
        return dataclasses.replace(parsed, reason=f"{parsed.reason}; " + "; ".join(pending.warnings))
    return parsed


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
    if line.startswith(b"\x1f\x8b"):
        return "is gzip-compressed data: decompress the file (for example .mbox.gz to .mbox) and open that"
    if line.startswith(b"PK\x03\x04"):
        return "is the start of a ZIP archive (perhaps a .docx, .xlsx or .zip file)"
    if looks_binary(line) or line.startswith((b"\xd0\xcf\x11\xe0", b"\x89PNG")):
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
