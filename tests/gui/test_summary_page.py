"""The Summary page: every check with its status, each change made in the org with its time and
user, what remains for the admin, and Export HTML, after the wizard ran on a practice org."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot
from wizard_driver import (
    Confirmation,
    apply_plan,
    build_plan,
    check_integration_user,
    click,
    confirm_backstory_setting,
    connect,
    grant_field_access,
    inspect_field,
    wait_idle,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult, StepStatus
from backstory_desktop.gui.pages.summary import NO_CHANGES, NOTHING_REMAINS, SummaryPage
from backstory_desktop.gui.wizard import WizardWindow

UTC_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def _open_summary(qtbot: QtBot, window: WizardWindow) -> SummaryPage:
    """Skip the steps left before the Summary, as the admin would."""
    while window.current_step is not Step.SUMMARY:
        wait_idle(qtbot, window)
        if window.skip_button.isVisible():
            click(qtbot, window.skip_button)
        else:
            click(qtbot, window.next_button)
    page = window.page(Step.SUMMARY)
    assert isinstance(page, SummaryPage)
    return page


def _cells(page: SummaryPage, column: int) -> list[str]:
    return [page.changes.item(row, column).text() for row in range(page.changes.rowCount())]


def _grant_and_sync(qtbot: QtBot, window: WizardWindow, confirmations: list[Confirmation]) -> None:
    """Connect, grant the integration user the field, confirm the setting and apply a sync plan."""
    connect(qtbot, window)
    inspect_field(qtbot, window)
    click(qtbot, window.next_button)
    user_page = check_integration_user(qtbot, window)
    grant_field_access(qtbot, window, user_page, confirmations)
    click(qtbot, window.next_button)
    confirm_backstory_setting(qtbot, window)
    assert build_plan(qtbot, window)["create"] > 0
    apply_plan(qtbot, window, confirmations)


def test_summary__change_log_has_time_and_user(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    _grant_and_sync(qtbot, window, confirmations)

    page = _open_summary(qtbot, window)

    run = window.context.run
    page.tabs.setCurrentWidget(page.changes_tab)
    assert page.changes.isVisible()
    assert page.no_changes.isHidden()
    assert page.changes.rowCount() == len(run.changes) == 2
    assert all(UTC_TIME.fullmatch(cell) for cell in _cells(page, 0))
    assert _cells(page, 1) == [run.profile.username] * 2
    grant, sync = _cells(page, 2)
    assert grant.startswith(run.changes[0].summary)
    assert all(line in grant for line in run.changes[0].lines)
    assert sync.startswith("Upserted Tasks from ")
    assert "+ create " in sync


def test_summary__checks_table_lists_every_step(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    _grant_and_sync(qtbot, window, confirmations)

    page = _open_summary(qtbot, window)

    steps = [step for step in Step if step is not Step.SUMMARY]
    assert page.table.rowCount() == len(steps)
    titles = [page.table.item(row, 0).text() for row in range(len(steps))]
    assert titles == [STEP_TITLES[step] for step in steps]
    statuses = dict(zip(titles, (page.table.item(row, 1).text() for row in range(len(steps))), strict=True))
    assert statuses["Integration user"] == "✓ passed"
    assert statuses["Local sync"] == "✓ passed"
    assert statuses["Cadence tools"] == "⊘ skipped"
    assert page.overall.text().startswith("Steps not passed: Cadence tools")


def test_summary__what_remains_lists_open_work(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)

    window.show_step(Step.SUMMARY)

    page = window.page(Step.SUMMARY)
    assert isinstance(page, SummaryPage)

    shown = [page.remains.item(row).text() for row in range(page.remains.count())]
    expected = enablement.open_work(window.context.run)
    assert shown == [f"{number}. {item}" for number, item in enumerate(expected, 1)]
    assert any("'Upsert Message Id field name'" in item for item in shown)
    assert NOTHING_REMAINS not in shown
    assert page.tabs.currentWidget() is page.remains_tab
    page.tabs.setCurrentWidget(page.changes_tab)
    assert page.no_changes.isVisible()
    assert page.no_changes.text() == NO_CHANGES
    assert page.changes.isHidden()


def test_summary__export_writes_every_section(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
    tmp_path: Path,
) -> None:
    window = make_window("default")
    _grant_and_sync(qtbot, window, confirmations)
    page = _open_summary(qtbot, window)
    path = tmp_path / "report.html"

    page.export_to(path)
    wait_idle(qtbot, window)

    text = path.read_text(encoding="utf-8")
    for heading in ("Checks", "Evidence", "Changes made in the org", "What remains"):
        assert f"<h2>{heading}</h2>" in text
    assert "Upserted Tasks from " in text
    assert window.context.run.profile.username in text
    assert f"Report written to {path}." in page.message.label.text()


def test_summary__layout_fits_1100_by_720(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    window.resize(1100, 720)
    _grant_and_sync(qtbot, window, confirmations)

    page = _open_summary(qtbot, window)
    qtbot.wait(50)

    table = page.table
    assert table.rowCount() == len(Step) - 1
    assert table.verticalScrollBar().maximum() == 0
    last = table.rowCount() - 1
    assert table.rowViewportPosition(last) + table.rowHeight(last) <= table.viewport().height()
    assert page.tabs.currentWidget() is page.remains_tab
    assert page.remains.viewport().height() >= 3 * page.remains.fontMetrics().lineSpacing()
    page.tabs.setCurrentWidget(page.changes_tab)
    qtbot.wait(50)
    viewport = page.changes.viewport().height()
    for row in range(page.changes.rowCount()):
        assert page.changes.rowHeight(row) <= viewport
        assert page.changes.rowHeight(row) == page.changes.sizeHintForRow(row), "row not fitted to its text"
    assert page.tabs.tabText(page.tabs.indexOf(page.changes_tab)) == "Changes made in the org (2)"


def test_summary__org_text_in_tooltips_is_plain(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    run = window.context.run
    hostile = '<h1 style="color:red">BIG</h1><a href=x>click</a>'
    run.checklist.record(StepResult(Step.CADENCE_TOOLS, StepStatus.FAILED, f"Not found: {hostile}"))

    window.show_step(Step.SUMMARY)

    page = window.page(Step.SUMMARY)
    assert isinstance(page, SummaryPage)
    tooltip = page.table.item(1, 2).toolTip()
    assert html.escape(hostile) in tooltip
    assert "<h1" not in tooltip
