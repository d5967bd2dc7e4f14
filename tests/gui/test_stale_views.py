"""Results on screen follow their input: an edited field name or mailbox path clears the old result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot
from wizard_driver import (
    FIELD,
    Confirmation,
    apply_plan,
    build_plan,
    click,
    connect,
    inspect_field,
    open_step_after_field,
)

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui.pages.local_sync import NO_PLAN, NO_PLAN_OF_SOURCE, LocalSyncPage
from backstory_desktop.gui.widgets import NO_VALUE
from backstory_desktop.gui.wizard import WizardWindow


def open_local_sync(qtbot: QtBot, window: WizardWindow) -> LocalSyncPage:
    return open_step_after_field(qtbot, window, Step.LOCAL_SYNC, LocalSyncPage)


def test_field_page__edited_name_clears_old_result(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    page = inspect_field(qtbot, window)
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert page.message.isVisible()
    assert window.next_button.isEnabled()

    page.name_edit.setText("Message ID")

    assert page.name_error.isVisible()
    assert page.message.isHidden(), "the old field's result still shows under an invalid name"
    assert page.values["Exists"].text() == NO_VALUE
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is None
    assert "not run" in window.step_list.item(list(Step).index(Step.MESSAGE_ID_FIELD)).text()
    assert not window.next_button.isEnabled()


def test_field_page__inspecting_again_restores_next(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    page = inspect_field(qtbot, window)
    page.name_edit.setText("Message ID")
    page.name_edit.setText(FIELD)
    assert not window.next_button.isEnabled()

    inspect_field(qtbot, window)

    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert page.message.isVisible()
    assert window.next_button.isEnabled()


def test_local_sync__new_path_clears_old_plan(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path,
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    assert page.model.rowCount() > 0
    assert page.counts.text().startswith("Plan: ")

    missing = tmp_path / "missing.mbox"
    page.path_edit.setText(str(missing))

    assert page.model.rowCount() == 0, "the old plan still shows under the new path"
    assert page.counts.text() == NO_PLAN_OF_SOURCE
    assert not page.apply_button.isEnabled()

    click(qtbot, page.plan_button)
    qtbot.waitUntil(lambda: not window.worker.busy)
    assert page.mailbox_error.isVisible()
    assert page.model.rowCount() == 0
    assert page.counts.text() == NO_PLAN, "a source that cannot be read is offered for a plan"


def test_local_sync__applied_counts_say_applied(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    planned = page.counts.text()

    apply_plan(qtbot, window, confirmations)

    assert page.counts.text() != planned
    assert page.counts.text().startswith("Applied plan: ")
    assert page.route.text() == "", "the route of an apply already made still shows"
    assert not page.table.isColumnHidden(page.model.OUTCOME)
