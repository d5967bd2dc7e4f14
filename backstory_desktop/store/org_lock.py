"""One local sync per org at a time: an OS file lock, with a note naming who holds it.

The lock is a filelock file lock, which the OS releases when the holding
process dies, so a killed sync never leaves its org locked.
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
            self._lock.acquire()
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

    def _refusal(self) -> str:
        try:
            note = json.loads(self._note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            note = {}
        who = f"process {note.get('pid', '?')} on {note.get('host', 'this computer')}"
        if note.get("holder"):
            who = f"{note['holder']} ({who})"
        since = note.get("since", "a moment ago")
        return (
            f"Another sync of org {self._org_id} is running, started by {who} at {since}: "
            "wait for it to finish or stop it, then start this one again."
        )
