"""The whole wizard, driven by its buttons against a practice org, checked through the API afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from wizard_driver import (
    FIELD,
    Confirmation,
    admin_connection,
    apply_plan,
    build_plan,
    check_integration_user,
    click,
    confirm_backstory_setting,
    connect,
    grant_field_access,
    inspect_field,
    integration_access,
    keyed_task_count,
    wait_idle,
)

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.conflicts import ConflictsPage
from backstory_desktop.gui.pages.message_id_field import MessageIdFieldPage
from backstory_desktop.gui.pages.summary import SummaryPage
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.salesforce.schema import inspect_message_id_field


def test_wizard__fresh_org_creates_field_grants_and_syncs(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
    tmp_path: Path,
) -> None:
    window = make_window("fresh")
    connect(qtbot, window)

    field_page = inspect_field(qtbot, window)
    assert field_page.values["Exists"].text() == "no"
    assert field_page.create_box.isVisible()
    assert not window.next_button.isEnabled()
    click(qtbot, field_page.case_sensitive)
    click(qtbot, field_page.create_button)
    wait_idle(qtbot, window)
    created = confirmations[-1]
    assert created.title == "Create the Message-ID field"
    assert f"+ Custom field Activity.{FIELD} (shared by Task and Event)" in created.lines
    assert "+     Unique: yes, case-sensitive" in created.lines
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert field_page.values["Unique"].text() == "yes"
    assert field_page.values["Case sensitivity"].text() == "case-sensitive"
    click(qtbot, window.next_button)

    user_page = check_integration_user(qtbot, window)
    grant_field_access(qtbot, window, user_page, confirmations)
    click(qtbot, window.next_button)
    confirm_backstory_setting(qtbot, window)

    counts = build_plan(qtbot, window)
    assert counts["create"] > 0
    assert counts["update"] == 0
    apply_plan(qtbot, window, confirmations)
    result = window.context.run.sync_result
    assert result is not None
    assert result.created == counts["create"]
    assert result.failed == 0
    assert window.context.run.checklist.status(Step.LOCAL_SYNC) is StepStatus.PASSED

    connection = admin_connection(window)
    field = inspect_message_id_field(connection, FIELD)
    assert field.exists
    assert field.unique is True
    assert field.external_id is True
    assert field.case_sensitive is True
    assert keyed_task_count(connection) == counts["create"]

    again = build_plan(qtbot, window)
    assert again["create"] == 0
    assert again["update"] == counts["create"]
    apply_plan(qtbot, window, confirmations)
    second = window.context.run.sync_result
    assert second is not None
    assert second.created == 0
    assert keyed_task_count(connection) == counts["create"]
    click(qtbot, window.next_button)

    conflicts = window.page(Step.CONFLICTS)
    assert isinstance(conflicts, ConflictsPage)
    click(qtbot, conflicts.scan_button)
    wait_idle(qtbot, window)
    assert window.context.run.checklist.status(Step.CONFLICTS) is StepStatus.PASSED
    assert conflicts.groups_model.rowCount() == len(window.context.run.groups)
    click(qtbot, window.next_button)

    summary = window.page(Step.SUMMARY)
    assert isinstance(summary, SummaryPage)
    # connect() and confirm_backstory_setting() skip the two cadence-tool steps.
    assert summary.overall.text() == "Steps not passed: Cadence tools, Cadence-tool mapping."
    changes = [summary.changes.item(row, 2).text() for row in range(summary.changes.rowCount())]
    assert any(change.startswith(f"Created Activity.{FIELD}") for change in changes)
    assert any(change.startswith("Upserted Tasks from ") for change in changes)
    report = tmp_path / "report.html"
    summary.export_to(report)
    wait_idle(qtbot, window)
    text = report.read_text(encoding="utf-8")
    assert text.count('<td class="status passed">') == len(Step) - 3
    assert "Message-ID field" in text
    assert "Changes made in the org" in text


def test_wizard__default_org_grants_field_access_after_confirmation(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    field_page = inspect_field(qtbot, window)
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert field_page.create_box.isHidden()
    click(qtbot, window.next_button)

    user_page = check_integration_user(qtbot, window)
    granted = [user_page.table.item(row, 1).text() for row in range(user_page.table.rowCount())]
    assert "✗ missing" in granted
    assert user_page.grant_button.isVisible()
    grant_field_access(qtbot, window, user_page, confirmations)
    assert any(f"Task.{FIELD}" in line for line in confirmations[-1].lines)
    assert any(f"Event.{FIELD}" in line for line in confirmations[-1].lines)

    report = integration_access(window)
    assert report.ok
    assert report.line(f"Edit on {FIELD}").granted


def test_wizard__declined_grant_changes_nothing(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dialogs, "confirm", lambda *args, **kwargs: False)
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    click(qtbot, window.next_button)
    user_page = check_integration_user(qtbot, window)
    click(qtbot, user_page.grant_button)
    wait_idle(qtbot, window)

    assert user_page.message.label.text() == "Nothing was changed."
    assert window.context.run.checklist.status(Step.INTEGRATION_USER) is StepStatus.FAILED
    assert integration_access(window).line(f"Edit on {FIELD}").granted is False


def test_wizard__invalid_field_name_disables_inspect(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    page = window.page(Step.MESSAGE_ID_FIELD)
    assert isinstance(page, MessageIdFieldPage)
    page.name_edit.setText("Message ID")
    assert page.name_error.isVisible()
    assert page.name_error.text()
    assert not page.inspect_button.isEnabled()
    page.name_edit.setText(FIELD)
    assert page.name_error.isHidden()
    assert page.inspect_button.isEnabled()


def test_wizard__next_waits_for_connect(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    assert not window.next_button.isEnabled()
    assert not window.back_button.isEnabled()
    window.step_list.setCurrentRow(4)
    assert window.current_step is Step.CONNECT


def test_wizard__skipped_steps_show_in_summary(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    click(qtbot, window.next_button)
    check_integration_user(qtbot, window)
    click(qtbot, window.next_button)
    confirm_backstory_setting(qtbot, window)
    assert window.current_step is Step.LOCAL_SYNC

    click(qtbot, window.skip_button)
    assert window.current_step is Step.CONFLICTS
    click(qtbot, window.skip_button)

    assert window.current_step is Step.SUMMARY
    checklist = window.context.run.checklist
    assert checklist.status(Step.LOCAL_SYNC) is StepStatus.SKIPPED
    assert checklist.status(Step.CONFLICTS) is StepStatus.SKIPPED
    summary = window.page(Step.SUMMARY)
    assert isinstance(summary, SummaryPage)
    assert "Local sync" in summary.overall.text()
    assert summary.table.item(list(Step).index(Step.LOCAL_SYNC), 1).text() == "⊘ skipped"
    assert not window.skip_button.isVisible()
