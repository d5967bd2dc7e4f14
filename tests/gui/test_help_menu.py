"""The Help menu: the Diagnostics report with Copy and Refresh, and the External Client App guide."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot
from wizard_driver import SERVED_ALIAS, add_served_profile, browser_sign_in, click

from backstory_desktop.gui.diagnostics_dialog import COLLECTING, DiagnosticsDialog
from backstory_desktop.gui.sign_in_dialogs import GuideDialog
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.server import PracticeOrg


def collected(qtbot: QtBot, dialog: DiagnosticsDialog) -> str:
    qtbot.waitUntil(lambda: not dialog.collecting, timeout=60_000)
    return dialog.text.toPlainText()


def test_help_menu__lists_diagnostics_and_about(make_window: Callable[..., WizardWindow]) -> None:
    window = make_window()
    menus = window.menuBar().actions()
    assert [action.text() for action in menus] == ["&Help"]

    help_menu = menus[0].menu()
    assert help_menu is not None
    assert [action.text() for action in help_menu.actions()] == ["Diagnostics…", "About Backstory Desktop"]


def test_diagnostics__report_copy_and_refresh(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window()
    dialog = window.open_diagnostics()
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.text.toPlainText() == COLLECTING
    assert not dialog.copy_button.isEnabled()

    text = collected(qtbot, dialog)
    assert "product version" in text
    assert "keyring backend" in text
    assert "could not be collected" not in text

    click(qtbot, dialog.copy_button)
    assert QGuiApplication.clipboard().text() == text
    click(qtbot, dialog.refresh_button)
    assert dialog.text.toPlainText() == COLLECTING
    assert collected(qtbot, dialog) != COLLECTING


def test_diagnostics__names_the_connected_org(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)

    dialog = window.open_diagnostics()
    qtbot.addWidget(dialog)
    text = collected(qtbot, dialog)

    assert re.search(rf"^org +{SERVED_ALIAS}$", text, re.MULTILINE), text
    assert default_org.base_url in text
    assert default_org.admin_username in text
    assert "could not be collected" not in text


def test_guide__shows_callbacks_and_scopes(qtbot: QtBot) -> None:
    dialog = GuideDialog()
    qtbot.addWidget(dialog)
    text = dialog.browser.toPlainText()

    for port in (7317, 7318, 7319):
        assert f"http://localhost:{port}/callback" in text
    assert "Manage user data via APIs (api)" in text
    assert "Perform requests at any time (refresh_token, offline_access)" in text
    assert "External Client App Manager" in text
