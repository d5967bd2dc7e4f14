"""Tokens never show in the message line or its Details, and damaged settings files do not stop the window.

A token copied from a wrapped terminal line carries a line break, which QLineEdit keeps
on paste. A folder in place of a settings file gives the OSError of an unreadable file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from pytestqt.qtbot import QtBot

from backstory_desktop.core.checklist import Step
from backstory_desktop.gui.pages.connect import ConnectPage
from backstory_desktop.gui.sign_in_dialogs import ACCESS_TOKEN_METHOD, OtherSignInDialog
from backstory_desktop.gui.widgets import MessagePanel, explain_error
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.store.paths import config_dir

TOKEN_START = "00D000000000001!AQ4AQFirstHalfOfThePastedToken"
TOKEN_END = "SecondHalfAfterTheLineBreak0123"


def _invalid_header_error() -> requests.exceptions.InvalidHeader:
    request = requests.Request(
        "GET", "https://127.0.0.1:9/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {TOKEN_START}\n{TOKEN_END}"},
    )
    try:
        request.prepare()
    except requests.exceptions.InvalidHeader as error:
        return error
    raise AssertionError("requests accepted a header value with a line break")


def test_explain_error__traceback_is_scrubbed() -> None:
    sentence, details = explain_error(_invalid_header_error())

    assert "InvalidHeader" in details
    for text in (sentence, details):
        assert TOKEN_START not in text
        assert TOKEN_END not in text


def test_message_panel__details_have_no_token(qtbot: QtBot) -> None:
    panel = MessagePanel()
    qtbot.addWidget(panel)
    panel.show()

    panel.show_error(_invalid_header_error())
    panel.show_message(f"failed with {TOKEN_START}", details=f"Bearer {TOKEN_START}\n{TOKEN_END}")

    for text in (panel.label.text(), panel.details.toPlainText()):
        assert TOKEN_START not in text
        assert TOKEN_END not in text


def test_other_sign_in__pasted_token_loses_whitespace(qtbot: QtBot) -> None:
    dialog = OtherSignInDialog(None, "acme")
    qtbot.addWidget(dialog)
    dialog.tabs.setCurrentIndex(1)
    dialog.instance_url_edit.setText(" https://acme.my.salesforce.com ")
    dialog.access_token_edit.setText(f" {TOKEN_START}\n{TOKEN_END}\r\n")

    dialog.accept()

    assert dialog.sign_in is not None
    assert dialog.sign_in.method == ACCESS_TOKEN_METHOD
    assert dialog.sign_in.access_token == TOKEN_START + TOKEN_END
    assert dialog.sign_in.instance_url == "https://acme.my.salesforce.com"


def _fail_renames(monkeypatch: pytest.MonkeyPatch) -> None:
    def replace(self: Path, target: Path) -> Path:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", replace)


def test_window__folders_in_place_of_settings_files(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_dir() / "app.toml").mkdir(parents=True)
    (config_dir() / "profiles.toml").mkdir()
    _fail_renames(monkeypatch)

    window = make_window()

    page = window.page(Step.CONNECT)
    assert isinstance(page, ConnectPage)
    assert window.context.run.profile.alias == "practice"
    assert "profiles.toml could not be read" in page.message.label.text()
    assert "could not be moved aside" in page.message.label.text()
