"""Read a folder of .eml files, subfolders included, as a stream of mail activities.

Files are read in name order, folder by folder, so the order is the same on
every run. ``source_ref`` is the file's path from the chosen folder, for
example "exports/2024/offer.eml". Hidden files and folders (names starting
with ".", such as macOS "._" resource files) are skipped. Outlook's .msg
files are not read: each is reported with the way to save it as .eml. An
entry named .eml that is not a regular file (a named pipe, a broken link) is
reported and never opened, because opening a named pipe blocks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.message_files import (
    OLE_SIGNATURE,
    MessageFile,
    count_message_files,
    entry_kind,
    not_regular_reason,
    read_message_folder,
    sorted_entries,
)

logger = logging.getLogger(__name__)

MESSAGE_SUFFIX = ".eml"
OUTLOOK_SUFFIX = ".msg"


def read_eml_folder(
    path: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[MailActivity | SourceProblem]:
    """Check that ``path`` is a folder with .eml files, then return an iterator over them.

    Raises SourceError at once when it is not. Progress and Cancel work as in read_message_folder.
    """
    return read_message_folder(path, _check_eml_folder, _message_files, progress, cancel)


def check_eml_folder(path: Path) -> int:
    """Return the number of .eml and .msg files in a folder, or raise SourceError saying why none."""
    return count_message_files(path, _check_eml_folder)


def has_message_files(path: Path) -> bool:
    """Tell whether a folder or one of its subfolders contains an .eml file."""
    return any(message_file.skip_reason is None for message_file in _message_files(path))


def _check_eml_folder(path: Path) -> int:
    if not path.exists():
        raise SourceError(f"{path} not found")
    if not path.is_dir():
        raise SourceError(f"{path} is a file: choose the folder that contains the .eml files")
    total = 0
    outlook = 0
    special = 0
    for message_file in _message_files(path):
        total += 1
        if message_file.skip_reason is None:
            continue
        if entry_kind(message_file.path) is None:
            outlook += 1
        else:
            special += 1
    if special and total == outlook + special:
        raise SourceError(
            f"{path} contains no readable .eml files: {special} of its entries named .eml or .msg are "
            "not regular files (named pipes, broken links or devices): choose the folder with the messages"
        )
    if total == outlook and outlook:
        raise SourceError(
            f"{path} contains only Outlook .msg files ({outlook}), which are not read: "
            "save the messages as .eml files, or export the folder as an mbox file"
        )
    if total == 0:
        raise SourceError(f"{path} contains no .eml files, in it or in its subfolders")
    return total


def _message_files(root: Path) -> Iterator[MessageFile]:
    """Yield the .eml and .msg files under ``root``, folder by folder, sorted by name."""
    return _message_files_under(root, root)


def _message_files_under(root: Path, folder: Path) -> Iterator[MessageFile]:
    try:
        entries = sorted_entries(folder)
    except OSError as error:
        if folder == root:
            raise
        # One unreadable subfolder is reported like an unreadable message, so the rest is still read.
        reason = f"the folder cannot be read: {error.strerror or error}"
        yield MessageFile(folder, f"{root.name}/{folder.relative_to(root).as_posix()}", skip_reason=reason)
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _message_files_under(root, path)
        else:
            message_file = _message_file(root, path)
            if message_file is not None:
                yield message_file


def _message_file(root: Path, path: Path) -> MessageFile | None:
    suffix = path.suffix.lower()
    source_ref = f"{root.name}/{path.relative_to(root).as_posix()}"
    if suffix not in (MESSAGE_SUFFIX, OUTLOOK_SUFFIX):
        return None
    kind = entry_kind(path)
    if kind is not None:
        return MessageFile(path, source_ref, skip_reason=not_regular_reason(kind))
    if suffix == MESSAGE_SUFFIX:
        return MessageFile(path, source_ref)
    if suffix == OUTLOOK_SUFFIX:
        return MessageFile(path, source_ref, skip_reason=_outlook_reason(path))
    return None


def _outlook_reason(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            signature = stream.read(len(OLE_SIGNATURE))
    except OSError:
        signature = b""
    if signature == OLE_SIGNATURE:
        return (
            "Outlook .msg files are not read: save the message as .eml, or export the folder as "
            "an mbox file"
        )
    return (
        ".msg files are not read because .msg is Outlook's format: if this file is a plain-text "
        "message, rename it to .eml"
    )
