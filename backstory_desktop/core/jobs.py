"""Progress and cancellation for long jobs, free of Qt.

Core, Salesforce and sync code report progress through a plain callback and
check a ``threading.Event`` at every wait; the GUI adapts both to signals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# progress(done, total, message): total is 0 when it is not known yet.
ProgressCallback = Callable[[int, int, str], None]


class Cancelled(Exception):
    """Raised inside a job when its cancel event is set; nothing after it was started."""


def no_progress(done: int, total: int, message: str) -> None:
    """Ignore a progress report."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise Cancelled when the admin has asked the job to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")
