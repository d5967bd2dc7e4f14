"""The Connect page with saved org profiles: browser sign-in, resume, switching, and an ended sign-in.

The org is a practice org served on 127.0.0.1 and reached like a real org, as a
"served" profile. The test's browser approves the practice org's consent page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import keyring
import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot
from wizard_driver import (
    JOB_TIMEOUT_MS,
    SERVED_ALIAS,
    Confirmation,
    add_served_profile,
    browser_sign_in,
    click,
    connect,
    connect_page,
    inspect_field,
    signed_in_window,
    skip_step,
    wait_idle,
)

from backstory_desktop import org_sessions
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.gui import dialogs, sign_in_dialogs
from backstory_desktop.gui.app import create_window
from backstory_desktop.gui.pages.base import SIGN_IN_AGAIN, needs_sign_in
from backstory_desktop.gui.pages.connect import (
    RESUMING,
    RETRY,
    SIGN_IN_CANCELLED,
    WAITING_AT_CALLBACK,
    callback_url_of,
)
from backstory_desktop.gui.pages.integration_user import IntegrationUserPage
from backstory_desktop.gui.pages.message_id_field import MessageIdFieldPage
from backstory_desktop.gui.sign_in_dialogs import ACCESS_TOKEN_METHOD, PASSWORD_METHOD, OtherSignIn
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.practice_org.soap_login import PRACTICE_PASSWORD
from backstory_desktop.salesforce.connection import connect_practice_org
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.store.settings import load_app_settings, load_profiles
from tests.consent_browser import (
    ConsentBrowser,
    refresh_with,
    revoke_at_org,
)
from tests.memory_keyring import LockableKeyring


def test_browser_sign_in__served_org_then_next_works(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    assert page.sign_in_button.isVisible()
    assert page.practice_row.isHidden()
    assert "Not signed in" in page.message.label.text()
    assert "Not connected" in window.org_label.text()

    browser = browser_sign_in(qtbot, window, default_org)

    assert len(browser.opened) == 1
    assert browser.opened[0].startswith(f"{default_org.base_url}/services/oauth2/authorize?")
    assert "Sign-in received" in browser.callback_pages[0]
    assert page.instance_url.text() == default_org.base_url
    assert page.username.text() == default_org.admin_username
    assert window.org_label.text() == (
        f"Org: {default_org.base_url} ({SERVED_ALIAS})    User: {default_org.admin_username}"
    )
    assert org_sessions.secret_store().load(SERVED_ALIAS), "the refresh token was not kept in the keyring"
    assert load_app_settings().last_profile == SERVED_ALIAS
    click(qtbot, window.next_button)
    skip_step(qtbot, window, Step.CADENCE_TOOLS)
    field_page = inspect_field(qtbot, window)
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert field_page.values["Exists"].text() == "yes"


def test_browser_sign_in__copy_link_while_waiting(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    consent = ConsentBrowser(default_org.ca_bundle, default_org.admin_username)
    admin_is_done = threading.Event()

    def slow_browser(url: str) -> None:
        # A person takes a while to sign in; the page waits and offers the link meanwhile.
        threading.Thread(target=lambda: admin_is_done.wait(30) and consent(url), daemon=True).start()

    page.open_browser = slow_browser
    click(qtbot, page.sign_in_button)
    qtbot.waitUntil(page.copy_link_button.isVisible)
    callback_url = callback_url_of(page.sign_in_link)
    assert callback_url.startswith("http://localhost:")
    assert page.progress.message.text() == WAITING_AT_CALLBACK.format(callback_url=callback_url)
    assert page.progress.cancel_button.isVisible()

    click(qtbot, page.copy_link_button)
    assert QGuiApplication.clipboard().text().startswith(f"{default_org.base_url}/services/oauth2/authorize?")
    admin_is_done.set()
    wait_idle(qtbot, window)

    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED
    assert page.copy_link_button.isHidden()


def test_browser_sign_in__cancel_saves_nothing(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    page.open_browser = lambda url: None  # the admin never finishes signing in
    click(qtbot, page.sign_in_button)
    qtbot.waitUntil(page.copy_link_button.isVisible)

    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)

    assert page.message.label.text() == SIGN_IN_CANCELLED
    assert window.context.run.checklist.status(Step.CONNECT) is None
    assert org_sessions.secret_store().load(SERVED_ALIAS) is None


def test_new_window__resumes_saved_sign_in_without_browser(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed_in_window(qtbot, make_window, default_org, monkeypatch)

    second = make_window()
    page = connect_page(second)
    page.open_browser = lambda url: pytest.fail("resuming opened a browser")
    wait_idle(qtbot, second)

    assert second.context.run.profile.alias == SERVED_ALIAS
    assert second.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED
    assert page.profiles.currentData() == SERVED_ALIAS
    assert page.username.text() == default_org.admin_username


def test_resume__slow_org_can_be_cancelled(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed_in_window(qtbot, make_window, default_org, monkeypatch)
    default_org.faults = FaultPlan(latency_seconds=5)

    second = make_window()
    page = connect_page(second)
    qtbot.waitUntil(lambda: page.progress.message.text() == RESUMING, timeout=JOB_TIMEOUT_MS)
    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, second)

    assert second.context.run.checklist.status(Step.CONNECT) is not StepStatus.PASSED
    assert page.profiles.isEnabled()


def test_org_alias__opens_that_profile(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    first = signed_in_window(qtbot, make_window, default_org, monkeypatch)
    first.switch_profile("practice", ask=False)

    window = create_window(tmp_path / "practice.sqlite3", org_alias=SERVED_ALIAS)
    qtbot.addWidget(window)
    wait_idle(qtbot, window)

    assert connect_page(window).profiles.currentData() == SERVED_ALIAS
    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED


def test_resume__locked_keychain_offers_retry(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = LockableKeyring()
    keyring.set_keyring(backend)
    org_sessions.reset_secret_store()
    signed_in_window(qtbot, make_window, default_org, monkeypatch)
    backend.locked = True

    window = make_window()
    page = connect_page(window)
    page.open_browser = lambda url: pytest.fail("a locked keychain led to a new sign-in")
    wait_idle(qtbot, window)

    assert "unlock your keychain and press retry" in page.message.label.text().lower()
    assert page.message.action_button.text() == RETRY
    assert window.context.run.checklist.status(Step.CONNECT) is None

    backend.locked = False
    click(qtbot, page.message.action_button)
    wait_idle(qtbot, window)
    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED


def test_sign_in_required__one_offer_then_browser(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = signed_in_window(qtbot, make_window, default_org, monkeypatch)
    click(qtbot, window.next_button)
    skip_step(qtbot, window, Step.CADENCE_TOOLS)
    inspect_field(qtbot, window)
    refresh_token = org_sessions.secret_store().load(SERVED_ALIAS)
    assert refresh_token
    revoke_at_org(default_org, refresh_token)

    window.show_step(Step.INTEGRATION_USER)
    wait_idle(qtbot, window)
    user_page = window.page(Step.INTEGRATION_USER)
    assert isinstance(user_page, IntegrationUserPage)
    assert user_page.message.label.text().count("sign in again") == 1
    assert user_page.message.action_button.isVisible()
    assert user_page.message.action_button.text() == SIGN_IN_AGAIN
    assert not window.worker.busy, "the wizard retried on its own"

    page = connect_page(window)
    browser = ConsentBrowser(default_org.ca_bundle, default_org.admin_username)
    page.open_browser = browser
    click(qtbot, user_page.message.action_button)
    assert window.current_step is Step.CONNECT
    wait_idle(qtbot, window)

    assert len(browser.opened) == 1
    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED
    assert user_page.message.action_button.isHidden()
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED


def test_needs_sign_in__error_and_step_result() -> None:
    ended = SignInRequired("acme (https://acme.my.salesforce.com)", "invalid_grant: expired refresh token")
    failed_step = StepResult(Step.MESSAGE_ID_FIELD, StepStatus.FAILED, ended.sentence,
                             {"details": "", "error_code": ended.error_code})
    other_failure = StepResult(Step.MESSAGE_ID_FIELD, StepStatus.FAILED, "The field is not Unique.", {})

    assert needs_sign_in(ended)
    assert needs_sign_in(failed_step)
    assert not needs_sign_in(other_failure)
    assert not needs_sign_in(RuntimeError("socket closed"))


def test_switch_profile__asks_then_starts_fresh_run(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch, confirmations: list[Confirmation],
) -> None:
    window = signed_in_window(qtbot, make_window, default_org, monkeypatch)
    click(qtbot, window.next_button)
    skip_step(qtbot, window, Step.CADENCE_TOOLS)
    inspect_field(qtbot, window)
    old_field_page = window.page(Step.MESSAGE_ID_FIELD)
    window.show_step(Step.CONNECT)
    page = connect_page(window)

    page.profiles.setCurrentIndex(page.profiles.findData("practice"))

    assert confirmations[-1].title == "Switch org profile"
    assert confirmations[-1].action == "Switch"
    assert confirmations[-1].lines == [
        "• Connect: ✓ passed", "• Cadence tools: ⊘ skipped", "• Message-ID field: ✓ passed"
    ]
    assert window.context.run.profile.alias == "practice"
    assert window.context.run.checklist.results == {}
    assert window.context.run.connection is None
    assert window.page(Step.MESSAGE_ID_FIELD) is not old_field_page
    assert window.org_label.text() == "Org profile: practice    Not connected"
    assert page.practice_row.isVisible()
    assert load_app_settings().last_profile == "practice"
    connect(qtbot, window)


def test_switch_profile__declined_keeps_run(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    run = window.context.run
    monkeypatch.setattr(dialogs, "confirm", lambda *args, **kwargs: False)
    page = connect_page(window)

    page.profiles.setCurrentIndex(page.profiles.findData("practice"))

    assert window.context.run is run
    assert page.profiles.currentData() == SERVED_ALIAS
    assert run.checklist.status(Step.CONNECT) is StepStatus.PASSED


def test_remove_profile__revokes_and_returns_to_practice(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch, confirmations: list[Confirmation],
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    refresh_token = org_sessions.secret_store().load(SERVED_ALIAS)
    assert refresh_token

    click(qtbot, page.remove_button)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.context.run.profile.alias == "practice")

    assert confirmations[-1].title == "Remove org profile"
    assert confirmations[-1].action == "Remove"
    assert SERVED_ALIAS not in load_profiles()
    assert org_sessions.secret_store().load(SERVED_ALIAS) is None
    assert page.profiles.findData(SERVED_ALIAS) == -1
    assert refresh_with(default_org, refresh_token).status_code == 400, (
        "the removed profile's refresh token still works"
    )


def test_edit_profile__new_host_drops_token(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    start_org: Callable[[str], PracticeOrg], monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    other_org = start_org("default")
    edited = load_profiles()[SERVED_ALIAS]
    edited.login_host = other_org.base_url
    monkeypatch.setattr("backstory_desktop.gui.profile_dialog.edit_profile", lambda *args, **kwargs: edited)

    refresh_token = org_sessions.secret_store().load(SERVED_ALIAS)
    assert refresh_token

    click(qtbot, page.edit_button)
    wait_idle(qtbot, window)

    assert load_profiles()[SERVED_ALIAS].login_host == other_org.base_url
    assert org_sessions.secret_store().load(SERVED_ALIAS) is None
    assert window.context.run.connection is None
    assert window.context.run.checklist.status(Step.CONNECT) is None
    assert "sign in again" in page.message.label.text()
    assert refresh_with(default_org, refresh_token).status_code == 400, (
        "the old sign-in still works at the old login host"
    )


def test_password_sign_in__one_session_nothing_saved(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    username = default_org.admin_username
    sign_in = OtherSignIn(PASSWORD_METHOD, username=username, password=PRACTICE_PASSWORD,
                          security_token=default_org.security_token(username))
    monkeypatch.setattr(sign_in_dialogs, "ask_other_sign_in", lambda *args: sign_in)

    click(qtbot, page.other_button)
    wait_idle(qtbot, window)

    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED, page.message.label.text()
    assert page.username.text() == username
    assert org_sessions.secret_store().load(SERVED_ALIAS) is None
    assert PRACTICE_PASSWORD not in repr(sign_in)


def test_access_token_sign_in__one_session_nothing_saved(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    session = connect_practice_org(default_org.base_url, default_org.ca_bundle,
                                   default_org.admin_username, default_org.client_id)
    sign_in = OtherSignIn(ACCESS_TOKEN_METHOD, instance_url=default_org.base_url,
                          access_token=session.tokens.access_token)
    monkeypatch.setattr(sign_in_dialogs, "ask_other_sign_in", lambda *args: sign_in)

    click(qtbot, page.other_button)
    wait_idle(qtbot, window)

    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED, page.message.label.text()
    assert org_sessions.secret_store().load(SERVED_ALIAS) is None
    click(qtbot, window.next_button)
    skip_step(qtbot, window, Step.CADENCE_TOOLS)
    assert isinstance(window.page(window.current_step), MessageIdFieldPage)


class _LowPriorityKeyring(LockableKeyring):
    priority = 0.5  # type: ignore[assignment]


def test_insecure_keyring__used_only_after_admin_agrees(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch, confirmations: list[Confirmation],
) -> None:
    backend = _LowPriorityKeyring()
    monkeypatch.setattr("keyring.get_keyring", lambda: backend)
    org_sessions.reset_secret_store()
    window = make_window()
    page = add_served_profile(qtbot, window, default_org, monkeypatch)
    assert page.insecure_keyring_button.isVisible()
    assert "kept in memory" in page.keyring_notice.text()

    click(qtbot, page.insecure_keyring_button)
    browser_sign_in(qtbot, window, default_org)

    assert confirmations[-1].title == "Use an insecure keyring"
    assert "_LowPriorityKeyring" in confirmations[-1].question
    assert not page.insecure_keyring_button.isVisible()
    assert "not a secure store" in page.keyring_notice.text()
    assert window.context.run.connection is not None
    assert window.context.run.connection.tokens.refresh_token in backend.values()


def test_switch_profile__picker_unchanged_while_asking(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window()
    add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    page = connect_page(window)
    shown_while_asking: list[str] = []

    def decline(*args: object, **kwargs: object) -> bool:
        shown_while_asking.append(str(page.profiles.currentData()))
        return False

    monkeypatch.setattr(dialogs, "confirm", decline)
    page.profiles.setCurrentIndex(page.profiles.findData("practice"))

    assert shown_while_asking == [SERVED_ALIAS]


def test_confirm_box__names_action_and_keeps_facts_uncolored(qtbot: QtBot) -> None:
    box = dialogs.build_confirm_box(None, "Switch org profile", "Switch?", ["• Connect: ✓ passed"], "Switch")
    qtbot.addWidget(box)

    buttons = [button.text() for button in box.buttons()]
    assert "Switch" in buttons
    assert dialogs.APPLY not in buttons
    assert "#b3261e" not in box.informativeText()
    assert "#1b7f3b" not in box.informativeText()
