"""The Plan tab's labels of reason codes."""

from __future__ import annotations

from backstory_desktop.core.plan import ReasonCode
from backstory_desktop.gui.pages.plan_text import REASON_LABELS


def test_reason_labels__every_code_named() -> None:
    assert set(REASON_LABELS) == set(ReasonCode)
    assert len(set(REASON_LABELS.values())) == len(ReasonCode)
