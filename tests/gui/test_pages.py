"""Page details a first-time admin meets: the user picker, the setting confirmation and the table widths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem, QTableView
from pytestqt.qtbot import QtBot
from wizard_driver import (
    Confirmation,
    apply_plan,
    build_plan,
    click,
    connect,
    inspect_field,
    open_step_after_field,
    wait_idle,
)

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.records import UserRef
from backstory_desktop.gui.conflict_models import ConflictGroupsModel
from backstory_desktop.gui.models import PlanTableModel
from backstory_desktop.gui.pages import conflicts
from backstory_desktop.gui.pages.backstory_setting import WAITING_NOTE, BackstorySettingPage
from backstory_desktop.gui.pages.conflicts import ConflictsPage
from backstory_desktop.gui.pages.integration_user import (
    IntegrationUserPage,
    picker_order,
    preselected_username,
    user_label,
)
from backstory_desktop.gui.pages.local_sync import LocalSyncPage
from backstory_desktop.gui.widgets import FAILED_COLOR, NEUTRAL_COLOR
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.store.settings import load_profiles


def user(name: str, username: str, *, active: bool = True) -> UserRef:
    return UserRef(id="005000000000001AAA", name=name, username=username,
                   email=username, is_active=active)


ADMIN = user("Avery Admin", "admin@example.com")
OLD_INTEGRATION = user("Backstory Integration", "old-integration@example.com", active=False)
OUTREACH = user("Outreach Integration", "outreach@example.com")
SERVICE = user("Sync Service", "api.INTEGRATION@example.com")


def test_user_picker__active_users_first_by_name() -> None:
    ordered = sorted([OUTREACH, OLD_INTEGRATION, ADMIN, SERVICE], key=picker_order)

    assert ordered == [ADMIN, OUTREACH, SERVICE, OLD_INTEGRATION]


def test_user_picker__label_shows_name_and_username() -> None:
    assert user_label(ADMIN) == "Avery Admin (admin@example.com)"
    assert user_label(OLD_INTEGRATION) == "Backstory Integration (old-integration@example.com), inactive"


def test_user_picker__remembered_user_wins() -> None:
    users = [ADMIN, OUTREACH, SERVICE]

    assert preselected_username(users, "admin@example.com") == "admin@example.com"


def test_user_picker__guess_skips_inactive_users() -> None:
    users = sorted([ADMIN, SERVICE, OLD_INTEGRATION], key=picker_order)

    assert preselected_username(users, "") == "api.INTEGRATION@example.com"
    assert preselected_username(users, "gone@example.com") == "api.INTEGRATION@example.com"
    assert preselected_username([ADMIN, OLD_INTEGRATION], "") is None


def test_integration_page__preselects_integration_user(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_step_after_field(qtbot, window, Step.INTEGRATION_USER, IntegrationUserPage)
    org = window.context.practice_org
    assert org is not None

    assert page.users.currentData() == org.integration_username
    assert page.users.currentText() == f"Backstory Integration ({org.integration_username})"
    assert page.check_button.isEnabled()
    last = page.users.count() - 1
    assert page.users.itemText(last).endswith(", inactive"), "inactive users belong at the end"


def open_setting_page(qtbot: QtBot, window: WizardWindow) -> BackstorySettingPage:
    return open_step_after_field(qtbot, window, Step.BACKSTORY_SETTING, BackstorySettingPage)


def test_setting_page__untouched_box_is_a_neutral_note(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_setting_page(qtbot, window)
    item = window.step_list.item(list(Step).index(Step.BACKSTORY_SETTING))

    assert page.message.label.text() == WAITING_NOTE
    assert page.message.label.styleSheet() == f"color: {NEUTRAL_COLOR.name()};"
    assert "failed" not in item.text()
    assert window.context.run.checklist.status(Step.BACKSTORY_SETTING) is StepStatus.FAILED
    assert window.next_button.isEnabled()


def test_setting_page__unticked_box_shows_failure(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_setting_page(qtbot, window)
    item = window.step_list.item(list(Step).index(Step.BACKSTORY_SETTING))

    page.confirmed.click()
    assert page.message.label.text().startswith("✓")
    page.confirmed.click()

    assert page.message.label.text().startswith("✗")
    assert page.message.label.styleSheet() == f"color: {FAILED_COLOR.name()};"
    assert "failed" in item.text()


def test_setting_page__confirmation_saved_with_its_date(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_setting_page(qtbot, window)
    today = datetime.now(UTC).date().isoformat()

    page.confirmed.click()

    saved = load_profiles()[window.context.run.profile.alias]
    assert saved.backstory_setting_confirmed
    assert saved.backstory_setting_confirmed_on == today
    assert f"on {today}" in page.message.label.text()


def test_setting_page__later_visit_keeps_first_date(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_setting_page(qtbot, window)
    page.confirmed.click()
    profile = window.context.run.profile
    profile.backstory_setting_confirmed_on = "2026-01-02"

    page.enter()

    assert load_profiles()[profile.alias].backstory_setting_confirmed_on == "2026-01-02"
    page.confirmed.click()
    assert load_profiles()[profile.alias].backstory_setting_confirmed_on == ""


def right_edge(table: QTableView, column: int) -> int:
    header = table.horizontalHeader()
    return header.sectionViewportPosition(column) + header.sectionSize(column)


def elide_mode(table: QTableView, column: int) -> Qt.TextElideMode:
    index = table.model().index(0, column)
    option = QStyleOptionViewItem()
    table.itemDelegateForColumn(column).initStyleOption(option, index)  # type: ignore[attr-defined]
    return option.textElideMode


def test_sync_table__columns_fit_default_window(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(Step.LOCAL_SYNC)
    page = window.page(Step.LOCAL_SYNC)
    assert isinstance(page, LocalSyncPage)
    build_plan(qtbot, window)
    table = page.table
    width = table.viewport().width()

    assert right_edge(table, PlanTableModel.EXISTING) < width, "Existing Tasks starts off-screen"
    assert right_edge(table, PlanTableModel.REASON) == width, "Reason must take the rest"
    assert table.columnWidth(PlanTableModel.REASON) >= 200
    assert elide_mode(table, PlanTableModel.KEY) is Qt.TextElideMode.ElideMiddle
    assert elide_mode(table, PlanTableModel.SOURCE) is Qt.TextElideMode.ElideMiddle

    apply_plan(qtbot, window, confirmations)
    assert not table.isColumnHidden(PlanTableModel.OUTCOME)
    assert right_edge(table, PlanTableModel.REASON) == table.viewport().width()
    assert table.columnWidth(PlanTableModel.REASON) >= 150, "Reason was pushed off by Outcome"


def test_groups_table__reason_takes_the_rest(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(Step.CONFLICTS)
    page = window.page(Step.CONFLICTS)
    assert isinstance(page, ConflictsPage)
    click(qtbot, page.scan_button)
    wait_idle(qtbot, window)
    assert page.groups_model.rowCount() > 0
    table = page.groups

    assert right_edge(table, ConflictGroupsModel.REASON) == table.viewport().width()
    assert table.columnWidth(ConflictGroupsModel.REASON) >= 80
    assert elide_mode(table, ConflictGroupsModel.KEY) is Qt.TextElideMode.ElideMiddle


def test_access_table__check_names_fit(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_step_after_field(qtbot, window, Step.INTEGRATION_USER, IntegrationUserPage)
    click(qtbot, page.check_button)
    wait_idle(qtbot, window)
    table = page.table
    metrics = table.fontMetrics()

    for row in range(table.rowCount()):
        name = table.item(row, 0).text()
        assert metrics.horizontalAdvance(name) + 8 < table.columnWidth(0), f"{name!r} touches the edge"


def test_conflicts_status__failed_scan_wraps_and_says_once(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(Step.CONFLICTS)
    page = window.page(Step.CONFLICTS)
    assert isinstance(page, ConflictsPage)
    width = window.width()
    reason = (
        "The sign-in to served-org (https://127.0.0.1:18444) has ended (invalid_grant: expired "
        "access/refresh token); sign in again. " * 2
    ).strip()
    failed = StepResult(Step.CONFLICTS, StepStatus.FAILED, reason, {})
    monkeypatch.setattr(conflicts, "scan_job", lambda run, *, progress, cancel: failed)

    click(qtbot, page.scan_button)
    wait_idle(qtbot, window)
    qtbot.wait(50)  # lets the layout settle

    assert page.summary.wordWrap()
    assert window.width() == width, "the status line widened the window"
    assert reason not in page.summary.text()
    assert reason in page.message.label.text()
