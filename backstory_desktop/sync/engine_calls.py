"""The API calls of an apply, each on its own thread so that Cancel returns within its grace period.

Also the apply's clock, its waits and its back-off between attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from backstory_desktop.sync.settings import SyncSettings

T = TypeVar("T")

CANCELLED = "cancelled by the user"
_WAIT_STEP_SECONDS = 0.25


class Stop(Exception):
    """Ends an apply early with a reason for the admin."""

    def __init__(self, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_code = error_code


class CallAbandoned(Exception):
    """The admin cancelled and the call got no response within the grace period."""


class CallRunner:
    """The part of an apply that runs calls, checks Cancel and waits; the apply supplies the state."""

    run_id: str
    settings: SyncSettings
    cancel: threading.Event | None
    sleep: Callable[[float], None]
    _clock_floor: float

    def _call(self, function: Callable[[], T]) -> T:
        """Run one API call on its own thread, so that Cancel returns within the grace period.

        A call still running when the grace period ends is left to finish on
        its own (raising CallAbandoned here); its rows are recorded IN_DOUBT.

        NOTE: the org's sync lock is released when the apply returns, even while
        such a call is still in flight. A resume meanwhile looks its keys up and
        may send them again. That ends with one Task per key only when a late
        create fails: the key field must be Unique (a second create then fails
        with DUPLICATE_VALUE), or the create must carry TaskSubtype, which fails
        on an existing Task. Either failure is sent again as an update. On a key
        field that is not Unique, two creates racing each other can write two Tasks.
        """
        box: dict[str, Any] = {}
        finished = threading.Event()

        def target() -> None:
            try:
                box["value"] = function()
            except BaseException as error:
                box["error"] = error
            finally:
                finished.set()

        threading.Thread(target=target, name=f"sync-call-{self.run_id}", daemon=True).start()
        while not finished.wait(0.05):
            if self.cancel is not None and self.cancel.is_set():
                # Leave a third of the grace period for recording the rows and returning.
                if not finished.wait(self.settings.cancel_grace_seconds * 2 / 3):
                    raise CallAbandoned
                break
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Stop(CANCELLED)

    def _now(self) -> float:
        # The clock never runs behind the end of the last wait, so an injected
        # ``sleep`` that does not really sleep still makes queued rows due.
        return max(time.time(), self._clock_floor)

    def _wait_until(self, wake: float) -> None:
        remaining = wake - self._now()
        while remaining > 0:
            self._check_cancel()
            step = min(remaining, _WAIT_STEP_SECONDS)
            self.sleep(step)
            remaining -= step
        self._clock_floor = max(self._clock_floor, wake)

    def _backoff(self, failures: int) -> float:
        delay: float = self.settings.first_retry_seconds * 2 ** max(failures, 0)
        return min(delay, self.settings.max_retry_seconds)

