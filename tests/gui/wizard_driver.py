"""Drive the wizard's pages by their buttons, step by step, as an admin would."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QWidget
from pytestqt.qtbot import QtBot
from simple_salesforce import format_soql

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui import profile_dialog
from backstory_desktop.gui.pages.backstory_setting import BackstorySettingPage
from backstory_desktop.gui.pages.connect import ConnectPage
from backstory_desktop.gui.pages.integration_user import IntegrationUserPage
from backstory_desktop.gui.pages.local_sync import LocalSyncPage
from backstory_desktop.gui.pages.message_id_field import MessageIdFieldPage
from backstory_desktop.gui.profile_dialog import ProfileDialog
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.access import AccessReport, effective_access
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.store.settings import OrgProfile
from tests.consent_browser import ConsentBrowser

JOB_TIMEOUT_MS = 60_000


@dataclass
class Confirmation:
    """One confirmation dialog the wizard asked, as the admin would have read it."""

    title: str
    question: str
    lines: list[str]
    action: str = "Apply"  # the accept button's text


def connect_page(window: WizardWindow) -> ConnectPage:
    page = window.page(Step.CONNECT)
    assert isinstance(page, ConnectPage)
    return page


def click(qtbot: QtBot, button: QAbstractButton) -> None:
    """Click a button as the admin would, after checking it can be clicked."""
    assert button.isVisible(), f"{button.text()!r} is hidden"
    assert button.isEnabled(), f"{button.text()!r} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_idle(qtbot: QtBot, window: WizardWindow) -> None:
    """Wait until the window's worker has no job left."""
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=JOB_TIMEOUT_MS)


def admin_connection(window: WizardWindow) -> OrgConnection:
    """Open a second, independent connection to the window's practice org as its admin."""
    org = window.context.practice_org
    assert org is not None, "the window has not started its practice org"
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


FIELD = "Message_ID__c"


def skip_step(qtbot: QtBot, window: WizardWindow, step: Step) -> None:
    """Skip an optional step as the admin would, once the job its page starts on entry has ended."""
    assert window.current_step is step
    wait_idle(qtbot, window)
    click(qtbot, window.skip_button)
    assert window.context.run.checklist.status(step) is StepStatus.SKIPPED


def connect(qtbot: QtBot, window: WizardWindow) -> None:
    """Connect to the practice org, then skip Cadence tools, so the Message-ID field step is open."""
    page = window.page(Step.CONNECT)
    assert isinstance(page, ConnectPage)
    assert not window.next_button.isEnabled()
    click(qtbot, page.connect_button)
    wait_idle(qtbot, window)
    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED
    assert page.instance_url.text().startswith("https://127.0.0.1:")
    assert "Org: https://127.0.0.1:" in window.org_label.text()
    click(qtbot, window.next_button)
    skip_step(qtbot, window, Step.CADENCE_TOOLS)


def inspect_field(qtbot: QtBot, window: WizardWindow) -> MessageIdFieldPage:
    page = window.page(Step.MESSAGE_ID_FIELD)
    assert isinstance(page, MessageIdFieldPage)
    assert window.current_step is Step.MESSAGE_ID_FIELD
    click(qtbot, page.inspect_button)
    wait_idle(qtbot, window)
    return page


PageT = TypeVar("PageT")


def open_step_after_field(
    qtbot: QtBot, window: WizardWindow, step: Step, page_class: type[PageT]
) -> PageT:
    """Connect, inspect the field, then open ``step`` and wait for the job it starts on entry."""
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(step)
    wait_idle(qtbot, window)
    page = window.page(step)
    assert isinstance(page, page_class)
    return page


def check_integration_user(qtbot: QtBot, window: WizardWindow) -> IntegrationUserPage:
    page = window.page(Step.INTEGRATION_USER)
    assert isinstance(page, IntegrationUserPage)
    wait_idle(qtbot, window)
    org = window.context.practice_org
    assert org is not None
    position = page.users.findData(org.integration_username)
    assert position >= 0, "the integration user is missing from the picker"
    page.users.setCurrentIndex(position)
    click(qtbot, page.check_button)
    wait_idle(qtbot, window)
    return page


def grant_field_access(qtbot: QtBot, window: WizardWindow, page: IntegrationUserPage,
                       confirmations: list[Confirmation]) -> None:
    assert window.context.run.checklist.status(Step.INTEGRATION_USER) is StepStatus.FAILED
    click(qtbot, page.grant_button)
    wait_idle(qtbot, window)
    dialog = confirmations[-1]
    assert dialog.title == "Grant field access"
    assert dialog.lines
    assert all(line.startswith(("+ ", "~ ")) for line in dialog.lines)
    assert any("Backstory Message ID Access" in line for line in dialog.lines)
    assert window.context.run.checklist.status(Step.INTEGRATION_USER) is StepStatus.PASSED
    assert page.grant_button.isHidden()


def confirm_backstory_setting(qtbot: QtBot, window: WizardWindow) -> None:
    """Confirm the setting, then skip Cadence-tool mapping, so the Local sync step is open."""
    page = window.page(Step.BACKSTORY_SETTING)
    assert isinstance(page, BackstorySettingPage)
    assert page.value.text() == FIELD
    click(qtbot, page.copy_button)
    assert QGuiApplication.clipboard().text() == FIELD
    page.confirmed.click()
    assert window.context.run.checklist.status(Step.BACKSTORY_SETTING) is StepStatus.PASSED
    click(qtbot, window.next_button)
    skip_step(qtbot, window, Step.CADENCE_MAPPING)


def build_plan(qtbot: QtBot, window: WizardWindow) -> dict[str, int]:
    page = window.page(Step.LOCAL_SYNC)
    assert isinstance(page, LocalSyncPage)
    click(qtbot, page.plan_button)
    wait_idle(qtbot, window)
    plan = window.context.run.plan
    assert plan is not None
    assert page.model.rowCount() == len(plan.rows)
    return plan.counts()


def apply_plan(qtbot: QtBot, window: WizardWindow, confirmations: list[Confirmation]) -> None:
    page = window.page(Step.LOCAL_SYNC)
    assert isinstance(page, LocalSyncPage)
    click(qtbot, page.apply_button)
    wait_idle(qtbot, window)
    assert confirmations[-1].title == "Apply the sync plan"
    assert not page.apply_button.isEnabled(), "an applied plan must be built again before another apply"


def integration_access(window: WizardWindow) -> AccessReport:
    """Read the integration user's access over a fresh connection, as Setup would show it."""
    connection = admin_connection(window)
    org = window.context.practice_org
    assert org is not None
    soql = format_soql("SELECT Id FROM User WHERE Username = {}", org.integration_username)
    user_id = str(next(iter(connection.query_all(soql)))["Id"])
    return effective_access(connection, user_id, FIELD, field_unique=True)


def keyed_task_count(connection: OrgConnection) -> int:
    rows = connection.query_all(f"SELECT Id FROM Task WHERE {FIELD} != null")
    return len(list(rows))


SERVED_ALIAS = "served-org"


def fill_profile_dialog(dialog: ProfileDialog, *, alias: str, kind: str, login_host: str,
                        client_id: str, ports: str = "7317, 7318, 7319", ca_bundle: str = "") -> None:
    """Type a profile into the New org profile dialog as the admin would."""
    dialog.alias_edit.setText(alias)
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData(kind))
    dialog.host_edit.setText(login_host)
    dialog.client_id_edit.setText(client_id)
    dialog.ports_edit.setText(ports)
    dialog.ca_bundle_edit.setText(ca_bundle)


def add_served_profile(qtbot: QtBot, window: WizardWindow, org: PracticeOrg,
                       monkeypatch: pytest.MonkeyPatch, alias: str = SERVED_ALIAS) -> ConnectPage:
    """Add a profile for a served practice org through the New dialog, which switches the run to it."""
    def answer(parent: QWidget | None, *, taken_aliases: Collection[str],
               profile: OrgProfile | None = None) -> OrgProfile | None:
        dialog = ProfileDialog(parent, taken_aliases=taken_aliases, profile=profile)
        # Port 0 takes any free port, which the practice org accepts as a callback.
        fill_profile_dialog(dialog, alias=alias, kind="served", login_host=org.base_url,
                            client_id=org.client_id, ports="0", ca_bundle=str(org.ca_bundle))
        dialog.accept()
        assert dialog.error_label.isHidden(), dialog.error_label.text()
        return dialog.result_profile

    monkeypatch.setattr(profile_dialog, "edit_profile", answer)
    page = window.page(Step.CONNECT)
    assert isinstance(page, ConnectPage)
    click(qtbot, page.new_button)
    wait_idle(qtbot, window)
    assert window.context.run.profile.alias == alias
    return page


def signed_in_window(qtbot: QtBot, make_window: Callable[..., WizardWindow], org: PracticeOrg,
                     monkeypatch: pytest.MonkeyPatch) -> WizardWindow:
    """Open a window, add the served org's profile and sign in, so that the next window resumes it."""
    window = make_window()
    add_served_profile(qtbot, window, org, monkeypatch)
    browser_sign_in(qtbot, window, org)
    return window


def browser_sign_in(qtbot: QtBot, window: WizardWindow, org: PracticeOrg) -> ConsentBrowser:
    """Click Sign in with browser, approve the consent page as the org's admin, and wait for the result."""
    page = window.page(Step.CONNECT)
    assert isinstance(page, ConnectPage)
    browser = ConsentBrowser(org.ca_bundle, org.admin_username)
    page.open_browser = browser
    click(qtbot, page.sign_in_button)
    wait_idle(qtbot, window)
    assert window.context.run.checklist.status(Step.CONNECT) is StepStatus.PASSED, page.message.label.text()
    return browser
