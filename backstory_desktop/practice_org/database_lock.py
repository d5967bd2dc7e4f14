"""An OS file lock beside a practice org database, so that one practice org at a time uses it.

Two servers on one SQLite file would interleave their writes and fail with
"database is locked". The lock is taken on ``<db>.lock``, which contains the
process id of its holder and, on a second line, what kind of program it is
(such as ``DESKTOP_WINDOW_HOLDER``), so that the second one can name it. The operating
system drops the lock when the holder's process ends, so a crashed server
leaves no stale lock. The file itself is kept on purpose, because deleting it
while another process opens it would let two processes lock two different files.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO

from backstory_desktop.practice_org.database import PracticeOrgDatabaseError

logger = logging.getLogger(__name__)

# On Windows the lock covers one byte at this offset, beyond the holder's note,
# because other processes cannot read a locked byte there.
_WINDOWS_LOCK_OFFSET = 64
# The maximum length of a holder name in bytes, so that the note (a process id, a newline
# and the name) ends before the locked byte.
MAX_HOLDER_BYTES = 40
# The holder name the desktop app gives when its window runs the practice org.
DESKTOP_WINDOW_HOLDER = "the Backstory Desktop window"


def lock_file_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class DatabaseLock:
    """An exclusive, non-blocking lock on one practice org database.

    ``holder`` names the program that takes it for the sentence a second process shows,
    such as ``DESKTOP_WINDOW_HOLDER``. Without it that sentence names "another practice org".
    """

    def __init__(self, db_path: Path, holder: str = "") -> None:
        if not holder.isprintable() or len(holder.encode()) > MAX_HOLDER_BYTES:
            raise ValueError(f"the practice org holder name {holder!r} is not one printable line of at "
                             f"most {MAX_HOLDER_BYTES} bytes: give a shorter name without control characters")
        self.db_path = db_path
        self.path = lock_file_path(db_path)
        self.holder = holder
        self._handle: BinaryIO | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock, or raise PracticeOrgDatabaseError naming the process that holds it."""
        if self._handle is not None:
            return
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise PracticeOrgDatabaseError(
                self.db_path, f"its lock file {self.path} cannot be opened ({error.strerror})",
                "make its folder writable or choose another database file (--db)",
            ) from error
        handle = os.fdopen(descriptor, "r+b")
        try:
            _lock(handle)
        except BlockingIOError as error:
            process, holder = _read_holder(handle)
            handle.close()
            if holder:
                raise PracticeOrgDatabaseError(
                    self.db_path, f"{holder} (process {process}) is using it",
                    "close it or choose another database file (--db)",
                ) from error
            raise PracticeOrgDatabaseError(
                self.db_path, f"another practice org (process {process}) is using it",
                "stop that one or choose another database file (--db)",
            ) from error
        except OSError as error:
            handle.close()
            raise PracticeOrgDatabaseError(
                self.db_path, f"its lock file {self.path} cannot be locked ({error.strerror})",
                "choose a database file on a local disk (--db)",
            ) from error
        handle.seek(0)
        handle.truncate()
        note = f"{os.getpid()}\n{self.holder}" if self.holder else str(os.getpid())
        handle.write(note.encode())
        handle.flush()
        self._handle = handle
        logger.debug("Locked %s", self.path)

    def release(self) -> None:
        """Release the lock and keep the lock file for the next holder."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.seek(0)
            handle.truncate()
            _unlock(handle)
        finally:
            handle.close()
        logger.debug("Unlocked %s", self.path)


def _read_holder(handle: BinaryIO) -> tuple[str, str]:
    """Return the holder's process id ("unknown" if unreadable) and name ("" if none) from the lock file."""
    try:
        handle.seek(0)
        text = handle.read(_WINDOWS_LOCK_OFFSET).decode("utf-8", "replace")
    except OSError:
        return "unknown", ""
    process, _newline, holder = text.partition("\n")
    process = process.strip()
    return (process if process.isdigit() else "unknown"), holder.strip()


if sys.platform == "win32":
    import msvcrt

    # NOTE: the Windows branch has not been run by the test suite, which runs on Linux.
    def _lock(handle: BinaryIO) -> None:
        handle.seek(_WINDOWS_LOCK_OFFSET)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except PermissionError as error:
            # msvcrt reports a lock held elsewhere as EACCES, not EWOULDBLOCK.
            raise BlockingIOError(*error.args) from error

    def _unlock(handle: BinaryIO) -> None:
        handle.seek(_WINDOWS_LOCK_OFFSET)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    # flock, unlike fcntl's record locks, also excludes a second descriptor in the same
    # process, so a second PracticeOrg on one file in one program is rejected too.
    def _lock(handle: BinaryIO) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: BinaryIO) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
