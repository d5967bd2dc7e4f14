"""The Connect page: Sign out, a browser that does not open, timeouts, and failed sign-ins.

The org is a practice org served on 127.0.0.1 and reached like a real org, as a
"served" profile.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pytestqt.qtbot import QtBot
from wizard_driver import (
    SERVED_ALIAS,
    add_served_profile,
    browser_sign_in,
    click,
    connect_page,
    signed_in_window,
    wait_idle,
)

from backstory_desktop import org_sessions
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui import sign_in_dialogs
from backstory_desktop.gui.pages.base import SIGN_IN_AGAIN
from backstory_desktop.gui.pages.connect import BROWSER_NOT_OPENED, SIGNED_OUT, callback_url_of
from backstory_desktop.gui.sign_in_dialogs import ACCESS_TOKEN_METHOD, PASSWORD_METHOD, OtherSignIn
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.store.settings import load_profiles
from tests.consent_browser import refresh_with, revoke_at_org


def denying_browser(org: PracticeOrg) -> Callable[[str], bool]:
    """Return a browser that presses Deny on the consent page and follows the redirect."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(org.ca_bundle)

    def deny(authorize_url: str) -> bool:
        parts = urlsplit(authorize_url)
        form = {name: values[0] for name, values in parse_qs(parts.query).items()}
        form.update(username=org.admin_username, decision="deny")
        consent = session.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data=form,
                               allow_redirects=False, timeout=30)
        session.get(consent.headers["Location"], timeout=30)
        return True

    return deny


def test_sign_out__revokes_deletes_keeps_profile(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    refresh_token = org_sessions.secret_store().load(SERVED_ALIAS)
    assert refresh_token

    click(qtbot, page.sign_out_button)
    wait_idle(qtbot, window)

    assert page.message.label.text() == SIGNED_OUT.format(alias=SERVED_ALIAS)
    assert org_sessions.secret_store().load(SERVED_ALIAS) is None
    assert SERVED_ALIAS in load_profiles()
    assert window.context.run.profile.alias == SERVED_ALIAS
    assert window.context.run.connection is None
    assert window.context.run.checklist.status(Step.CONNECT) is None
    assert "Not connected" in window.org_label.text()
    assert page.username.text() != default_org.admin_username
    assert refresh_with(default_org, refresh_token).status_code == 400, "the sign-in was not revoked"


def test_browser_not_opened__points_to_copy_link(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    page.open_browser = lambda url: False  # what webbrowser.open returns when no browser starts
    width = window.width()

    click(qtbot, page.sign_in_button)
    qtbot.waitUntil(lambda: "could not be opened" in page.progress.message.text())
    qtbot.wait(50)  # lets the layout settle
    assert window.width() == width, "the waiting message widened the window"

    callback_url = callback_url_of(page.sign_in_link)
    assert page.progress.message.text() == BROWSER_NOT_OPENED.format(callback_url=callback_url)
    assert page.copy_link_button.isVisible()
    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)


def test_browser_raises__points_to_copy_link(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)

    def broken_browser(url: str) -> bool:
        raise OSError("Operation not supported")

    page.open_browser = broken_browser
    click(qtbot, page.sign_in_button)
    qtbot.waitUntil(lambda: "could not be opened" in page.progress.message.text())
    assert "Copy sign-in link" in page.progress.message.text()
    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)


def test_browser_sign_in__timeout_names_callback_url(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    monkeypatch.setattr(org_sessions, "sign_in_with_browser",
                        functools.partial(org_sessions.sign_in_with_browser, timeout=0.5))
    links: list[str] = []
    page.open_browser = links.append  # the admin never signs in

    click(qtbot, page.sign_in_button)
    wait_idle(qtbot, window)

    text = page.message.label.text()
    assert "timed out" in text
    assert callback_url_of(links[0]) in text
    assert "redirect_uri_mismatch" in text
    assert "callback URLs" in text


def test_failed_new_sign_in__says_still_connected(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    page.open_browser = denying_browser(default_org)

    click(qtbot, page.sign_in_button)
    wait_idle(qtbot, window)

    text = page.message.label.text()
    assert text.startswith("The sign-in failed (access_denied")
    assert text.endswith(
        f"Still connected as {default_org.admin_username}: the steps keep using the earlier sign-in."
    )
    assert window.context.run.connection is not None
    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED
    assert page.username.text() == default_org.admin_username


def test_rejected_access_token__reopens_token_tab(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    asked: list[OtherSignIn | None] = []

    def ask(parent: object, org_label: str, previous: OtherSignIn | None = None) -> OtherSignIn:
        asked.append(previous)
        return OtherSignIn(ACCESS_TOKEN_METHOD, instance_url=default_org.base_url,
                           access_token="00Dbad!token")

    monkeypatch.setattr(sign_in_dialogs, "ask_other_sign_in", ask)
    page.open_browser = lambda url: pytest.fail("Sign in again opened the browser")

    click(qtbot, page.other_button)
    wait_idle(qtbot, window)

    text = page.message.label.text()
    assert "rejected the pasted access token" in text
    assert "has ended" not in text
    assert page.message.action_button.text() == SIGN_IN_AGAIN
    first = asked[0]
    assert first is not None
    assert first.instance_url == default_org.base_url, "the instance URL was not filled in from the profile"

    click(qtbot, page.message.action_button)
    wait_idle(qtbot, window)
    again = asked[1]
    assert again is not None
    assert again.method == ACCESS_TOKEN_METHOD
    assert again.instance_url == default_org.base_url
    assert again.access_token == ""


def test_failed_password_sign_in__keeps_username_only(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    asked: list[OtherSignIn | None] = []

    def ask(parent: object, org_label: str, previous: OtherSignIn | None = None) -> OtherSignIn:
        asked.append(previous)
        return OtherSignIn(PASSWORD_METHOD, username=default_org.admin_username, password="wrong",
                           security_token="wrong")

    monkeypatch.setattr(sign_in_dialogs, "ask_other_sign_in", ask)
    click(qtbot, page.other_button)
    wait_idle(qtbot, window)
    assert "INVALID_LOGIN" in page.message.label.text()
    assert "after the password" not in page.message.label.text()

    click(qtbot, page.other_button)
    wait_idle(qtbot, window)
    again = asked[1]
    assert again is not None
    assert again.method == PASSWORD_METHOD
    assert again.username == default_org.admin_username
    assert again.password == ""
    assert again.security_token == ""


def test_other_sign_in_dialog__previous_fills_in_fields(qtbot: QtBot) -> None:
    previous = OtherSignIn(ACCESS_TOKEN_METHOD, username="admin@example.com",
                           instance_url="https://acme.my.salesforce.com")
    dialog = sign_in_dialogs.OtherSignInDialog(None, "acme", previous)
    qtbot.addWidget(dialog)

    assert dialog.tabs.currentIndex() == 1
    assert dialog.instance_url_edit.text() == "https://acme.my.salesforce.com"
    assert dialog.username_edit.text() == "admin@example.com"
    assert dialog.password_edit.text() == ""
    assert dialog.access_token_edit.text() == ""


def test_job_failed__log_line_names_reason(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    page.open_browser = denying_browser(default_org)

    with caplog.at_level(logging.WARNING, logger="backstory_desktop.gui.pages.base"):
        click(qtbot, page.sign_in_button)
        wait_idle(qtbot, window)

    failures = [record.getMessage() for record in caplog.records if "job failed" in record.getMessage()]
    assert failures, "no log line for the failed job"
    assert "access_denied" in failures[-1]


def test_resume_revoked__plain_words_code_in_details(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed_in_window(qtbot, make_window, default_org, monkeypatch)
    refresh_token = org_sessions.secret_store().load(SERVED_ALIAS)
    assert refresh_token
    revoke_at_org(default_org, refresh_token)

    second = make_window()
    page = connect_page(second)
    wait_idle(qtbot, second)

    text = page.message.label.text()
    assert text.startswith("Not signed in: the org no longer accepts the saved sign-in")
    assert "invalid_grant" not in text
    assert "invalid_grant" in page.message.details.toPlainText()


def test_edit_profile__clears_old_sign_in_error(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    page.open_browser = denying_browser(default_org)
    click(qtbot, page.sign_in_button)
    wait_idle(qtbot, window)
    assert "access_denied" in page.message.label.text()
    edited = load_profiles()[SERVED_ALIAS]
    edited.api_version = "64.0"
    monkeypatch.setattr("backstory_desktop.gui.profile_dialog.edit_profile", lambda *args, **kwargs: edited)

    click(qtbot, page.edit_button)
    wait_idle(qtbot, window)

    assert page.message.isHidden()
