"""The step list opens any step that Next could reach, and Ctrl+Q closes the window through its close path."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from pytestqt.qtbot import QtBot
from wizard_driver import check_integration_user, click, connect, inspect_field

from backstory_desktop.core.checklist import Step
from backstory_desktop.gui.wizard import UNREACHABLE_COLOR, WizardWindow


def click_step(qtbot: QtBot, window: WizardWindow, step: Step) -> None:
    """Click a step in the step list as the admin would."""
    item = window.step_list.item(list(Step).index(step))
    centre = window.step_list.visualItemRect(item).center()
    qtbot.mouseClick(window.step_list.viewport(), Qt.MouseButton.LeftButton, pos=centre)


def test_step_list__click_opens_earlier_step(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    click(qtbot, window.next_button)
    check_integration_user(qtbot, window)
    assert window.current_step is Step.INTEGRATION_USER

    click_step(qtbot, window, Step.CONNECT)
    assert window.current_step is Step.CONNECT

    click_step(qtbot, window, Step.INTEGRATION_USER)
    assert window.current_step is Step.INTEGRATION_USER

    click_step(qtbot, window, Step.BACKSTORY_SETTING)
    assert window.current_step is Step.BACKSTORY_SETTING


def test_step_list__unreachable_steps_are_disabled(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    assert window.current_step is Step.MESSAGE_ID_FIELD

    conflicts = window.step_list.item(list(Step).index(Step.CONFLICTS))
    assert not conflicts.flags() & Qt.ItemFlag.ItemIsEnabled
    assert conflicts.foreground().color() == UNREACHABLE_COLOR
    click_step(qtbot, window, Step.CONFLICTS)
    assert window.current_step is Step.MESSAGE_ID_FIELD

    following = window.step_list.item(list(Step).index(Step.INTEGRATION_USER))
    assert not following.flags() & Qt.ItemFlag.ItemIsEnabled, "Next is closed, so the list must be too"
    connect_item = window.step_list.item(list(Step).index(Step.CONNECT))
    assert connect_item.flags() & Qt.ItemFlag.ItemIsEnabled


def test_window__quit_shortcut_closes_and_stops_org(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    assert window.context.practice_org is not None
    assert QKeySequence("Ctrl+Q") in window.quit_action.shortcuts()

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)

    qtbot.waitUntil(lambda: not window.isVisible())
    assert window.context.practice_org is None
