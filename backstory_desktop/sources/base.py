"""What every mail source shares: the error for a source that cannot be read, and progress reports.

A source is checked before it is read: ``SourceError`` reports at once that a
path is missing, empty or another format. Problems inside a readable source
(one odd message, one bad row) are not errors. They are yielded as
``SourceProblem``, so one bad item never stops an import.
"""

from __future__ import annotations

from backstory_desktop.core.jobs import ProgressCallback


class SourceError(ValueError):
    """The path cannot be read as the chosen source at all: missing, empty or another format.

    The message names the path and describes what it is instead.
    """


class ProgressReporter:
    """Report progress about every 1% of the total, and always at the end."""

    def __init__(self, callback: ProgressCallback | None, total: int, name: str) -> None:
        self._callback = callback
        self._total = total
        self._message = f"Reading {name}"
        self._step = max(1, total // 100)
        self._last = -1

    def update(self, done: int, *, final: bool = False) -> None:
        if self._callback is None:
            return
        done = min(done, self._total)
        if final or self._last < 0 or done - self._last >= self._step:
            self._last = done
            self._callback(done, self._total, self._message)
