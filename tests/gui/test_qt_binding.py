"""The installed Qt binding keeps Python's reference counts intact across signals."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

EMITS = 50


class _Emitter(QObject):
    flag = Signal(bool)


def test_qt_binding__bool_signal_keeps_the_reference_count_of_true(qapp: object) -> None:
    emitter = _Emitter()
    received: list[bool] = []
    emitter.flag.connect(received.append)
    before = sys.getrefcount(True)

    for _ in range(EMITS):
        emitter.flag.emit(True)

    # Each received value holds one reference to True. A binding that drops
    # one per emit ends below that, and the process aborts once it reaches 0.
    assert len(received) == EMITS
    assert sys.getrefcount(True) - before >= EMITS
