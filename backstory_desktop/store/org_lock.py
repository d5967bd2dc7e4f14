"""One local sync per org at a time: an OS file lock, with a note naming who holds it.

The lock is a filelock file lock, which the OS releases when the holding
process dies, so a killed sync never leaves its org locked. The history checks
whether a sync holds an org by taking the lock for a moment (``is_held``);
such a probe writes no note. A sync that finds the lock taken waits up to
PROBE_GRACE_SECONDS before it gives up, so a probe does not refuse a start
unless the probing process stalls that long while it has the lock.
"""

from __future__ import annotations

import json
import os
import re
import socket
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from backstory_desktop.store import paths

# How long a sync waits for the lock before it is rejected. A probe keeps it for
# a few file operations, and a sync keeps it for its whole apply.
PROBE_GRACE_SECONDS = 1.0
_POLL_SECONDS = 0.02


class RunInProgress(Exception):
    """Another sync holds the org; ``str()`` is the sentence shown: who holds it and since when."""


class OrgLock(AbstractContextManager[None]):
    """The OS file lock of one org's syncs, with a note of who holds it."""

    def __init__(self, folder: Path, org_id: str, holder: str) -> None:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", org_id) or "org"
        self._folder = folder
        self._lock = FileLock(str(folder / f"{name}.lock"), timeout=0)
        self._note = folder / f"{name}.holder.json"
        self._org_id = org_id
        self._holder = holder

    def __enter__(self) -> None:
        paths.ensure_private_dir(self._folder)
        try:
            self._lock.acquire(timeout=PROBE_GRACE_SECONDS, poll_interval=_POLL_SECONDS)
        except Timeout:
            raise RunInProgress(self._refusal()) from None
        note = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "holder": self._holder,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            self._note.write_text(json.dumps(note), encoding="utf-8")
        except BaseException:
            # A lock held without its note would refuse every later sync with no holder named.
            self._lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._note.unlink(missing_ok=True)
        self._lock.release()

    def is_held(self) -> bool:
        """Tell whether a sync (of this process or another) holds the lock, without writing a note.

        Raises OSError when the lock file cannot be created or opened.
        """
        paths.ensure_private_dir(self._folder)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return True
        self._lock.release()
        return False

    def _refusal(self) -> str:
        try:
            note = json.loads(self._note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            note = {}
        if not isinstance(note, dict) or "pid" not in note:
            # Taken but not named yet: another process has it and has not written its note.
            return (
                f"Another sync of org {self._org_id} is running in another process on this computer: "
                "wait for it to finish or stop it, then start this one again."
            )
        who = f"process {note['pid']} on {note.get('host') or 'this computer'}"
        if note.get("holder"):
            who = f"{note['holder']} ({who})"
        since = note.get("since", "a moment ago")
        return (
            f"Another sync of org {self._org_id} is running, started by {who} at {since}: "
            "wait for it to finish or stop it, then start this one again."
        )
