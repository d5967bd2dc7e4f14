"""Read a Maildir folder as a stream of mail activities.

A Maildir keeps one message per file in ``cur/`` (seen) and ``new/`` (not
yet seen). ``tmp/`` contains deliveries still being written and is ignored.
Maildir++ subfolders (``.Sent``, ``.Archive``, as Dovecot and Courier store
them) are read after the top folder. Files are read in name order, so the
order is the same on every run. ``source_ref`` is the file's path from the
Maildir's own folder, for example "Maildir/cur/1700000000.M1P2.host:2,S".
Entries of cur/ and new/ that are not regular files (named pipes, broken
links, folders) are reported and never opened.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.message_files import (
    MessageFile,
    count_message_files,
    entry_kind,
    not_regular_reason,
    read_message_folder,
    sorted_entries,
)

MESSAGE_FOLDERS = ("cur", "new")


def is_maildir(path: Path) -> bool:
    """Tell whether a folder is a Maildir: it contains a cur/ or a new/ folder."""
    return any((path / name).is_dir() for name in MESSAGE_FOLDERS)


def read_maildir(
    path: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[MailActivity | SourceProblem]:
    """Check that ``path`` is a Maildir with messages, then return an iterator over them.

    Raises SourceError at once when it is not. Progress and Cancel work as in read_message_folder.
    """
    return read_message_folder(path, _check_maildir, _message_files, progress, cancel)


def check_maildir(path: Path) -> int:
    """Return the number of message files in a Maildir, or raise SourceError saying what the path is."""
    return count_message_files(path, _check_maildir)


def _check_maildir(path: Path) -> int:
    if not path.exists():
        raise SourceError(f"{path} not found")
    if not path.is_dir():
        raise SourceError(f"{path} is a file: choose a Maildir folder, the one that contains cur/ and new/")
    if not is_maildir(path):
        inner = [
            entry.name for entry in sorted_entries(path) if entry.is_dir() and is_maildir(Path(entry.path))
        ]
        hint = f": choose one of the Maildirs inside it ({', '.join(inner[:5])})" if inner else ""
        raise SourceError(f"{path} is not a Maildir folder (it contains no cur/ or new/ folder){hint}")
    total = 0
    kinds: Counter[str] = Counter()
    for message_file in _message_files(path):
        total += 1
        if message_file.skip_reason is not None:
            kinds[entry_kind(message_file.path) or "special file"] += 1
    if total == 0:
        raise SourceError(f"{path} contains no messages: its cur/ and new/ folders are empty")
    if kinds.total() == total:
        listed = ", ".join(f"{count} {_plural(kind, count)}" for kind, count in sorted(kinds.items()))
        raise SourceError(
            f"{path} contains no readable messages: its cur/ and new/ folders contain only entries that "
            f"are not regular files ({listed}): choose the Maildir that contains the messages"
        )
    return total


def _plural(kind: str, count: int) -> str:
    if count == 1:
        return kind
    noun, space, detail = kind.partition(" (")
    return f"{noun}s{space}{detail}"


def _message_files(root: Path) -> Iterator[MessageFile]:
    """Yield the message files of the Maildir and its Maildir++ subfolders, in a stable order."""
    subfolders = [
        Path(entry.path)
        for entry in sorted_entries(root, hidden=True)
        if entry.name.startswith(".") and entry.is_dir() and is_maildir(Path(entry.path))
    ]
    folders = [root, *subfolders]
    for folder in folders:
        for name in MESSAGE_FOLDERS:
            messages = folder / name
            if not messages.is_dir():
                continue
            for entry in sorted_entries(messages):
                path = Path(entry.path)
                source_ref = f"{root.name}/{path.relative_to(root).as_posix()}"
                kind = entry_kind(path)
                if kind is None:
                    yield MessageFile(path, source_ref)
                else:
                    yield MessageFile(path, source_ref, skip_reason=not_regular_reason(kind))
