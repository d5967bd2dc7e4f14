"""What every mail source shares: the error for a source that cannot be read, and progress reports.

A source is checked before it is read: ``SourceError`` reports at once that a
path is missing, empty or another format. Problems inside a readable source
(one odd message, one bad row) are not errors. They are yielded as
``SourceProblem``, so one bad item never stops an import.
"""

from __future__ import annotations

from backstory_desktop.core.jobs import ProgressCallback

# Share of control bytes in the first block above which a file is binary data rather than text.
BINARY_CONTROL_SHARE = 0.1
BINARY_CHECK_BYTES = 8192
# C0 control bytes that text files do not contain: all but tab, line feed, form feed, carriage return and
# escape (which terminal logs and some exports contain).
_BINARY_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}


class SourceError(ValueError):
    """The path cannot be read as the chosen source at all: missing, empty or another format.

    The message names the path and describes what it is instead.
    """


def looks_binary(block: bytes) -> bool:
    """Tell whether the first block of a file is binary data: more than 10% of its bytes are controls.

    One NUL byte in a text file is a damaged value, not a sign of binary data,
    so it is reported where it sits rather than rejecting the whole file.
    """
    sample = block[:BINARY_CHECK_BYTES]
    if not sample:
        return False
    controls = sum(1 for byte in sample if byte in _BINARY_BYTES)
    return controls / len(sample) > BINARY_CONTROL_SHARE


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
