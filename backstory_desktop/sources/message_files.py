"""Read sources that store one message per file: Maildir folders and folders of .eml files.

Both readers list their files in a stable order (sorted by name, folder by
folder) and read one file at a time, so memory stays bounded by the largest
message, never by the number of messages.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.sources.base import ProgressReporter, SourceError
from backstory_desktop.sources.mbox import MAX_MESSAGE_BYTES
from backstory_desktop.sources.message import parse_message_file

logger = logging.getLogger(__name__)

# The first bytes of an OLE compound file, the container of Outlook's .msg format.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class MessageFile:
    """A file to read as one message, and the reference shown to the admin for it."""

    path: Path
    source_ref: str
    # The reason the file is reported instead of read, for entries that are never read: .msg files, and
    # named pipes, broken links and other entries that are not regular files.
    skip_reason: str | None = None


def read_message_folder(
    path: Path,
    count_files: Callable[[Path], int],
    list_files: Callable[[Path], Iterable[MessageFile]],
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Iterator[MailActivity | SourceProblem]:
    """Check the folder ``path`` with ``count_files``, then return an iterator over ``list_files(path)``.

    Raises SourceError at once when the folder cannot be read as a source. The iterator
    reports ``progress(files_done, total_files, "Reading <name>")`` and raises Cancelled
    when ``cancel`` is set.
    """
    total = count_message_files(path, count_files)
    return read_message_files(list_files(path), total, path.name, progress, cancel)


def count_message_files(path: Path, count_files: Callable[[Path], int]) -> int:
    """Return ``count_files(path)``, raising SourceError in place of OSError when the folder cannot be read.

    ``count_files`` raises SourceError itself when the folder contains no messages to read.
    """
    try:
        return count_files(path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SourceError(f"{path} cannot be read: {reason}") from error


def read_message_files(
    files: Iterable[MessageFile],
    total: int,
    name: str,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Iterator[MailActivity | SourceProblem]:
    """Yield one activity or problem per file, reporting progress in files."""
    reporter = ProgressReporter(progress, total, name)
    reporter.update(0)
    done = 0
    for message_file in files:
        check_cancel(cancel)
        yield _read_one(message_file)
        done += 1
        reporter.update(done)
    reporter.update(total, final=True)
    logger.info("Read %d message files from %s", done, name)


def entry_kind(path: Path) -> str | None:
    """Return what a path is when it is not a regular file ("named pipe (FIFO)", "broken link"...), else None.

    Opening a named pipe or a device blocks until another program writes to
    it, so such entries are reported and never opened.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "broken link" if path.is_symlink() else "missing file"
    except OSError as error:
        return f"entry that cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def not_regular_reason(kind: str) -> str:
    """Return the problem reported for an entry that is not a regular file, from ``entry_kind``."""
    return f"this is a {kind}, not a message file, so it is skipped: remove it from the folder"


def sorted_entries(folder: Path, *, hidden: bool = False) -> list[os.DirEntry[str]]:
    """Return the entries of a folder sorted by name; hidden ones (names starting with ".") only if asked."""
    with os.scandir(folder) as entries:
        listed = [entry for entry in entries if hidden or not entry.name.startswith(".")]
    return sorted(listed, key=_entry_name)


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _read_one(message_file: MessageFile) -> MailActivity | SourceProblem:
    if message_file.skip_reason is not None:
        return SourceProblem(message_file.source_ref, message_file.skip_reason, raw_header=None)
    try:
        # A file replaced by a named pipe after listing must not block the read: open without waiting.
        descriptor = os.open(message_file.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                kind = entry_kind(message_file.path) or "special file"
                return SourceProblem(message_file.source_ref, not_regular_reason(kind), raw_header=None)
            data = stream.read(MAX_MESSAGE_BYTES)
            truncated = bool(stream.read(1))
    except OSError as error:
        reason = error.strerror or str(error)
        return SourceProblem(message_file.source_ref, f"the file cannot be read: {reason}", raw_header=None)
    if truncated:
        logger.warning(
            "%s is larger than %d bytes: only the first part is read",
            message_file.source_ref,
            MAX_MESSAGE_BYTES,
        )
    if not data.strip():
        return SourceProblem(message_file.source_ref, "the file is empty", raw_header=None)
    return parse_message_file(data, message_file.source_ref)
