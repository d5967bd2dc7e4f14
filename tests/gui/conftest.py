"""Fixtures for driving the wizard offscreen against a practice org made in tmp_path.

Only the confirmation message box is replaced (``dialogs.confirm``); every
page, job and request runs for real.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot
from wizard_driver import JOB_TIMEOUT_MS, Confirmation

from backstory_desktop.gui import dialogs
from backstory_desktop.gui.app import create_window
from backstory_desktop.gui.wizard import WizardWindow


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep settings, logs and data of the app under tmp_path."""
    monkeypatch.setenv("BACKSTORY_DESKTOP_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def unfrozen_after() -> Iterator[None]:
    """Give back to the garbage collector what a large scan shown by the test froze.

    The conflicts page freezes the objects alive when it shows a large scan and
    releases them only at the next scan, which a test may never start.
    """
    yield
    gc.unfreeze()


@pytest.fixture
def confirmations(monkeypatch: pytest.MonkeyPatch) -> list[Confirmation]:
    """Approve every confirmation dialog and record what it listed."""
    shown: list[Confirmation] = []

    def approve(
        parent: QWidget | None, title: str, question: str, lines: list[str], action: str = dialogs.APPLY
    ) -> bool:
        shown.append(Confirmation(title, question, list(lines), action))
        return True

    monkeypatch.setattr(dialogs, "confirm", approve)
    return shown


@pytest.fixture
def make_window(qtbot: QtBot, tmp_path: Path) -> Iterator[Callable[..., WizardWindow]]:
    """Return a factory of shown wizard windows over a practice org database in tmp_path."""
    windows: list[WizardWindow] = []

    def make(scenario: str = "default", mailbox: Path | None = None) -> WizardWindow:
        window = create_window(tmp_path / f"practice-{scenario}.sqlite3", mailbox, scenario=scenario)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.worker.cancel_all()
        window.worker.wait_until_idle(JOB_TIMEOUT_MS)
        window.context.stop_practice_org()


