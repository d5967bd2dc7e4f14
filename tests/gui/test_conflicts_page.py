"""The Conflicts page: 100,000 groups in memory, and the duplicates scenario through the wizard."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QDate, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from pytestqt.qtbot import QtBot
from test_conflict_models import make_groups
from wizard_driver import click, connect, inspect_field, wait_idle

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import GroupKind
from backstory_desktop.core.survivor import SURVIVOR_RULE
from backstory_desktop.gui.conflict_models import ConflictGroupsModel
from backstory_desktop.gui.pages.conflicts import ConflictsPage
from backstory_desktop.gui.threshold_dialog import ThresholdDialog
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.seed_duplicates import (
    DUPLICATES_SCENARIO,
    EXPECTED_DUPLICATE_GROUPS,
    PRICING_SUBJECT,
)

GROUP_COUNT = 100_000


def page_with_groups(qtbot: QtBot, window: WizardWindow, count: int, *, wait: bool = True) -> ConflictsPage:
    """Open a Conflicts page at 1100x760 showing ``count`` groups built in memory, as after a scan."""
    page = ConflictsPage(window.context)
    qtbot.addWidget(page)
    page.resize(1100, 760)
    page.show()
    window.context.run.groups = make_groups(count)
    page.show_scan(StepResult(Step.CONFLICTS, StepStatus.PASSED, f"Found {count} groups.", {}))
    if wait:
        wait_idle(qtbot, window)
    return page


def scroll_to_end(page: ConflictsPage) -> None:
    model = page.groups_model
    for _ in range(model.shown_count() // model.BATCH + 2):
        if not model.canFetchMore():
            return
        page.groups.scrollToBottom()
        QCoreApplication.processEvents()


def test_page__hundred_thousand_groups(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    page = page_with_groups(qtbot, make_window(), GROUP_COUNT)
    model = page.groups_model

    assert model.rowCount() == ConflictGroupsModel.BATCH
    assert page.shown_label.text() == "100,000 of 100,000 groups shown"
    scroll_to_end(page)
    assert model.rowCount() == GROUP_COUNT

    page.search.setText("<M4241@")
    qtbot.waitUntil(lambda: model.shown_count() < GROUP_COUNT)
    assert {group.subject for group in model.shown_groups()} == {"Re: pricing 4241"}
    page.search.clear()
    page.show_clones.setChecked(False)
    qtbot.waitUntil(lambda: model.shown_count() == GROUP_COUNT * 3 // 4)

    page.groups.sortByColumn(ConflictGroupsModel.NEWEST, Qt.SortOrder.DescendingOrder)
    # Every December group of make_groups is a clones group, which the checkbox hides.
    assert model.group_at(0).records[-1].created_date.startswith("2026-11")
    assert model.rowCount() == ConflictGroupsModel.BATCH

    page.groups.selectAll()
    assert len(page.groups.selectionModel().selectedRows()) == model.rowCount()
    changes: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last, _roles: changes.append((first.row(), last.row())))
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))
    target = model.group_at(7)
    page.refresh_after_resolution([target.group_id], "resolved")

    assert changes == [(7, 7)]
    assert not resets
    assert model.index(7, ConflictGroupsModel.STATUS).data() == "resolved"
    assert len(page.groups.selectionModel().selectedRows()) == model.rowCount()


def test_page__filter_keeps_compared_group(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    page = page_with_groups(qtbot, make_window(), 40)
    model = page.groups_model
    page.groups.selectRow(6)
    compared = model.group_at(6)
    assert compared.kind is GroupKind.PROBABLE

    page.kind_filter.setCurrentIndex(page.kind_filter.findText("Probable"))

    assert model.shown_count() == 10
    assert page.selected_group() == compared
    assert page.records_model.columnCount() == len(compared.records)
    page.kind_filter.setCurrentIndex(page.kind_filter.findText("Clones"))
    assert page.selected_group() is None
    assert page.records_model.columnCount() == 0
    assert not page.resolve_button.isEnabled()


def test_page__charts_count_shown_groups(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    page = page_with_groups(qtbot, make_window(), 40)

    page.tabs.setCurrentWidget(page.charts)
    assert page.charts.chart_categories("kind") == ["exact", "normalised", "probable", "clones"]
    assert page.charts.chart_values("kind") == [10, 10, 10, 10]
    page.show_clones.setChecked(False)
    assert page.charts.chart_values("kind") == [10, 10, 10, 0]
    assert page.charts.caption.text().startswith("The 30 groups the filters show, of 40.")
    assert sum(page.charts.chart_values("month")) == 30


def duplicates_page(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> tuple[WizardWindow, ConflictsPage]:
    """Connect to the duplicates scenario, inspect the field and scan on the Conflicts page."""
    window = make_window(DUPLICATES_SCENARIO)
    window.resize(1100, 760)
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(Step.CONFLICTS)
    page = window.page(Step.CONFLICTS)
    assert isinstance(page, ConflictsPage)
    click(qtbot, page.scan_button)
    wait_idle(qtbot, window)
    return window, page


def test_page__duplicates_scenario(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    window, page = duplicates_page(qtbot, make_window)
    model = page.groups_model

    assert model.rowCount() == len(EXPECTED_DUPLICATE_GROUPS)
    assert window.width() == 1100, "the page widened the window"
    assert page.summary.text().startswith("Scan finished. 8 groups (6 flagged) among ")
    page.kind_filter.setCurrentIndex(page.kind_filter.findText("Probable"))
    assert model.rowCount() == 1
    page.groups.selectRow(0)
    probable = page.selected_group()
    assert probable is not None
    assert probable.subject == PRICING_SUBJECT
    survivor = page.records_model.survivor_column()
    assert survivor is not None
    assert probable.records[survivor].id == probable.survivor_id
    assert page.survivor.text().startswith(f"Task {survivor + 1} is kept by default. ")
    assert html.escape(SURVIVOR_RULE) in page.survivor.toolTip()
    assert page.resolve_button.isEnabled()

    page.kind_filter.setCurrentIndex(0)
    page.show_clones.setChecked(False)
    assert model.rowCount() == 6
    page.tabs.setCurrentWidget(page.charts)
    assert page.charts.chart_values("kind") == [2, 3, 1, 0]
    window.grab().save("/tmp/shots-d1/test-duplicates-charts.png")


def test_matching_rules__rescan_applies_thresholds(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window, page = duplicates_page(qtbot, make_window)
    assert any(group.kind is GroupKind.PROBABLE for group in window.context.run.groups)

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ThresholdDialog)
        # The probable group's keyless Tasks were created two seconds apart.
        dialog.window_minutes.setValue(0)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    QTimer.singleShot(0, answer)
    click(qtbot, page.rules_button)
    wait_idle(qtbot, window)

    assert window.context.run.thresholds.window_minutes == 0
    assert not any(group.kind is GroupKind.PROBABLE for group in window.context.run.groups)
    assert "within 0 minutes" in page.rules_button.toolTip()


def test_threshold_dialog__restore_defaults(qtbot: QtBot) -> None:
    from backstory_desktop.core.duplicates import Thresholds

    dialog = ThresholdDialog(Thresholds(window_minutes=90, subject_similarity=70, bodies_must_match=False))
    qtbot.addWidget(dialog)
    assert dialog.thresholds() == Thresholds(90, 70, False)
    assert "within 90 minutes" in dialog.summary.text()

    dialog.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).click()

    assert dialog.thresholds() == Thresholds()
    assert "within 15 minutes" in dialog.summary.text()


def test_page__created_dates_filter(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    page = page_with_groups(qtbot, make_window(), 40)
    model = page.groups_model
    assert not page.date_from.isEnabled()

    page.date_from.setDate(QDate(2026, 3, 1))
    page.date_to.setDate(QDate(2026, 3, 31))
    assert model.shown_count() == 40, "the dates apply only once Created is ticked"
    page.date_filter.setChecked(True)

    assert page.date_from.isEnabled()
    assert model.shown_count() == 4
    assert {group.records[0].created_date[:7] for group in model.shown_groups()} == {"2026-03"}
    page.date_filter.setChecked(False)
    assert model.shown_count() == 40


def test_page__cancelled_preparation_still_filters(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window()
    page = page_with_groups(qtbot, window, 30_000, wait=False)
    model = page.groups_model
    assert page.progress.cancel_button.isVisible(), "no preparation job started"

    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)

    assert page.message.label.text().startswith("Cancelled")
    page.owner_filter.setCurrentIndex(page.owner_filter.findData("Owner 3"))
    assert model.shown_count() == len([number for number in range(30_000) if number % 7 == 3])


def test_page__rescan_keeps_sort(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    window = make_window()
    page = page_with_groups(qtbot, window, 30_000)
    page.groups.sortByColumn(ConflictGroupsModel.NEWEST, Qt.SortOrder.DescendingOrder)
    newest_first = page.groups_model.group_at(0)

    window.context.run.groups = make_groups(30_000)
    page.show_scan(StepResult(Step.CONFLICTS, StepStatus.PASSED, "Found 30000 groups.", {}))
    assert page.groups_model.group_at(0).group_id == "00T00000000000AA", "sorted before the keys were ready"
    wait_idle(qtbot, window)

    header = page.groups.horizontalHeader()
    assert header.sortIndicatorSection() == ConflictGroupsModel.NEWEST
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert page.groups_model.group_at(0).group_id == newest_first.group_id
