"""The New and Edit org profile dialog: the login host it will use, and one clear message per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from wizard_driver import fill_profile_dialog

from backstory_desktop.gui.profile_dialog import ProfileDialog, parse_callback_ports
from backstory_desktop.gui.widgets import FAILED_COLOR
from backstory_desktop.store.settings import OrgProfile

CONSUMER_KEY = "3MVG9example.consumer.key"


def new_dialog(qtbot: QtBot, taken: tuple[str, ...] = ()) -> ProfileDialog:
    dialog = ProfileDialog(taken_aliases=taken)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def save_error(dialog: ProfileDialog) -> str:
    """Press Save and return the message the dialog shows, or "" when it saved."""
    dialog.save_button.click()
    return dialog.error_label.text() if dialog.error_label.isVisible() else ""


def test_profile_dialog__valid_production_profile(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-prod", kind="production",
                        login_host="acme.my.salesforce.com", client_id=CONSUMER_KEY)

    assert save_error(dialog) == ""
    profile = dialog.result_profile
    assert profile is not None
    assert profile.alias == "acme-prod"
    assert profile.kind == "production"
    assert profile.login_host == "https://acme.my.salesforce.com"
    assert profile.client_id == CONSUMER_KEY
    assert profile.callback_ports == [7317, 7318, 7319]


def test_profile_dialog__kind_sets_login_host(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    assert dialog.host_edit.text() == "login.salesforce.com"

    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("sandbox"))
    assert dialog.host_edit.text() == "test.salesforce.com"

    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("mydomain"))
    assert dialog.host_edit.text() == ""
    assert "My Domain" in dialog.host_status.text()


def test_profile_dialog__lightning_address_corrected_live(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("mydomain"))

    dialog.host_edit.setText("https://acme.lightning.force.com/lightning/page/home")

    status = dialog.host_status.text()
    assert status.startswith("Signs in at https://acme.my.salesforce.com.")
    assert "Corrected the Lightning Experience address acme.lightning.force.com" in status


def test_profile_dialog__invalid_login_host_shown_live(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)

    dialog.host_edit.setText("http://acme.my.salesforce.com")

    assert "uses http:// without TLS" in dialog.host_status.text()
    assert FAILED_COLOR.name() in dialog.host_status.styleSheet()


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("", "The alias is empty"),
        ("acme prod", "contains ' '"),
        ("practice", "belongs to the built-in practice org"),
        ("acme-sandbox", "An org profile named acme-sandbox exists already"),
    ],
)
def test_profile_dialog__alias_problems(qtbot: QtBot, alias: str, message: str) -> None:
    dialog = new_dialog(qtbot, taken=("acme-sandbox",))
    fill_profile_dialog(dialog, alias=alias, kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY)

    assert message in save_error(dialog)
    assert dialog.result_profile is None
    assert dialog.isVisible()


def test_profile_dialog__missing_consumer_key(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-prod", kind="production", login_host="login.salesforce.com",
                        client_id="  ")

    assert "The consumer key is empty" in save_error(dialog)


def test_profile_dialog__kind_must_match_host(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-uat", kind="sandbox", login_host="acme.my.salesforce.com",
                        client_id=CONSUMER_KEY)

    assert "is not a sandbox login host" in save_error(dialog)


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ("", "Enter at least one callback port"),
        ("7317, abc", "The callback port 'abc' is not a number from 1 to 65535"),
        ("0", "The callback port '0' is not a number from 1 to 65535"),
        ("7317, 7317", "The callback port 7317 is listed twice"),
    ],
)
def test_profile_dialog__callback_port_problems(qtbot: QtBot, ports: str, message: str) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-prod", kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY, ports=ports)

    assert message in save_error(dialog)


def test_profile_dialog__served_org_takes_any_port(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="local", kind="served", login_host="https://127.0.0.1:8443",
                        client_id="BackstoryDesktopPractice", ports="0")

    assert save_error(dialog) == ""
    assert dialog.result_profile is not None
    assert dialog.result_profile.callback_ports == [0]
    assert dialog.result_profile.login_host == "https://127.0.0.1:8443"


def test_profile_dialog__bad_api_version_and_ca_bundle(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-prod", kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY)
    dialog.api_version_edit.setText("v64")
    assert "The API version 'v64' is not a Salesforce API version" in save_error(dialog)

    dialog.api_version_edit.setText("64.0")
    dialog.ca_bundle_edit.setText(str(tmp_path / "missing.pem"))
    assert "missing.pem is not a file" in save_error(dialog)


def test_profile_dialog__edit_keeps_alias_and_step_settings(qtbot: QtBot) -> None:
    saved = OrgProfile(alias="acme-prod", kind="production", login_host="https://login.salesforce.com",
                       client_id=CONSUMER_KEY, integration_username="integration@acme.example",
                       backstory_setting_confirmed=True)
    dialog = ProfileDialog(taken_aliases=("acme-prod",), profile=saved)
    qtbot.addWidget(dialog)
    assert dialog.alias_edit.isReadOnly()

    dialog.api_version_edit.setText("63.0")

    assert save_error(dialog) == ""
    edited = dialog.result_profile
    assert edited is not None
    assert edited.alias == "acme-prod"
    assert edited.api_version == "63.0"
    assert edited.integration_username == "integration@acme.example"
    assert edited.backstory_setting_confirmed


def test_parse_callback_ports__order_kept() -> None:
    assert parse_callback_ports("7319, 7317;7318") == [7319, 7317, 7318]
    assert parse_callback_ports("0", allow_any_port=True) == [0]


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("PRACTICE", "practice org's alias in other letter case"),
        ("Acme-Sandbox", "An org profile named acme-sandbox exists already, and aliases ignore letter case"),
    ],
)
def test_profile_dialog__alias_case_ignored(qtbot: QtBot, alias: str, message: str) -> None:
    dialog = new_dialog(qtbot, taken=("acme-sandbox",))
    fill_profile_dialog(dialog, alias=alias, kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY)

    assert message in save_error(dialog)
    assert dialog.result_profile is None


def test_profile_dialog__error_hidden_after_edit(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot, taken=("acme-sandbox",))
    fill_profile_dialog(dialog, alias="acme-sandbox", kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY)
    assert save_error(dialog)

    dialog.alias_edit.setText("acme-uat")

    assert dialog.error_label.isHidden()


def test_profile_dialog__ca_bundle_hint_fits_kind(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    assert "replaces the public CA list" in dialog.ca_bundle_hint.text()

    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("served"))

    assert dialog.ca_bundle_hint.text().startswith("Required")
    assert ".tls" in dialog.ca_bundle_hint.text()


def test_profile_dialog__ca_bundle_without_certificate(qtbot: QtBot, tmp_path: Path) -> None:
    not_pem = tmp_path / "browser.py"
    not_pem.write_text("print('hello')\n", encoding="utf-8")
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-prod", kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY, ca_bundle=str(not_pem))

    assert "contains no PEM certificate" in save_error(dialog)


@pytest.mark.parametrize(
    ("kind", "host"),
    [
        ("sandbox", "acme.my.salesforce.com"),
        ("served", "localhost:18443"),
        ("served", "login.salesforce.com"),
    ],
)
def test_profile_dialog__live_line_agrees_with_save(qtbot: QtBot, kind: str, host: str) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme", kind=kind, login_host=host, client_id=CONSUMER_KEY,
                        ports="0" if kind == "served" else "7317")

    live = dialog.host_status.text()
    assert FAILED_COLOR.name() in dialog.host_status.styleSheet()
    assert live == save_error(dialog)


def test_profile_dialog__long_host_note_not_clipped(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    # A large system font makes the five-line note of a pasted sandbox address longer still.
    font = dialog.font()
    font.setPointSize(font.pointSize() * 2)
    dialog.setFont(font)
    qtbot.waitUntil(lambda: dialog.alias_edit.fontInfo().pointSize() == font.pointSize())
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("sandbox"))
    dialog.host_edit.setText(
        "https://acme--uat.sandbox.lightning.force.com/lightning/setup/SetupOneHome/home?setupid=x"
    )
    qtbot.wait(200)  # lets the layout place the widgets for the new font and text

    label = dialog.host_status
    assert "Ignored the path" in label.text()
    assert label.height() >= label.heightForWidth(label.width()), "the host note is cut off"


def test_profile_dialog__api_version_number_only(qtbot: QtBot) -> None:
    dialog = new_dialog(qtbot)
    fill_profile_dialog(dialog, alias="acme-prod", kind="production", login_host="login.salesforce.com",
                        client_id=CONSUMER_KEY)
    dialog.api_version_edit.setText("64")

    assert save_error(dialog) == ""
    assert dialog.result_profile is not None
    assert dialog.result_profile.api_version == "64.0"
