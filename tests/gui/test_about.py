"""The About box names the product and the version the package, the CLI and the bundle share."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from backstory_desktop import __version__
from backstory_desktop.gui.wizard import WizardWindow


def test_about__shows_the_package_version(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    window = make_window()
    texts: list[str] = []

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        texts.append(box.text())
        box.accept()

    QTimer.singleShot(0, read_and_close)
    window.about_action.trigger()

    assert len(texts) == 1
    assert f"Backstory Desktop {__version__}" in texts[0]
