"""The Conflicts page: 100,000 groups in memory, and the duplicates scenario through the wizard."""

from __future__ import annotations

import gc
import html
import threading
from collections.abc import Callable

from PySide6.QtCharts import QAbstractBarSeries, QCategoryAxis, QValueAxis
from PySide6.QtCore import QCoreApplication, QDate, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel
from pytestqt.qtbot import QtBot
from test_conflict_models import make_groups
from wizard_driver import click, connect, inspect_field, wait_idle

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import SURVIVOR_RULE
from backstory_desktop.gui.conflict_charts import EARLIER, MONTH_NAMES, axis_range, every_month, month_labels
from backstory_desktop.gui.conflict_models import ConflictGroupsModel
from backstory_desktop.gui.pages.conflicts import AfterNextPaint, ConflictsPage, scan_status
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


def test_page__select_all_leaves_header_alone(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    page = page_with_groups(qtbot, make_window(), 40)

    page.groups.selectAll()

    assert len(page.groups.selectionModel().selectedRows()) == 40
    # The header's own selection model stays empty, so painting it visits no row.
    header_selection = page.groups.horizontalHeader().selectionModel()
    assert header_selection is not page.groups.selectionModel()
    assert not header_selection.hasSelection()


def test_page__large_scan_kept_from_collections(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window()
    gc.unfreeze()
    page = page_with_groups(qtbot, window, 30_000)

    # At least the groups, their two Tasks each, and the facts prepared on the worker.
    assert gc.get_freeze_count() >= 4 * 30_000
    click(qtbot, page.scan_button)
    assert gc.get_freeze_count() == 0
    wait_idle(qtbot, window)


def test_after_next_paint__sets_event(qtbot: QtBot) -> None:
    label = QLabel("groups")
    qtbot.addWidget(label)
    painted = threading.Event()
    AfterNextPaint(label).arm(painted)
    assert not painted.is_set()

    label.show()

    qtbot.waitUntil(painted.is_set)


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


def test_page__charts_caption_names_tools_step(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    page = page_with_groups(qtbot, make_window(), 8)
    page.run.profile.cadence_users = {}

    page.tabs.setCurrentWidget(page.charts)
    caption = page.charts.caption.text()
    assert "No cadence tool user is named in the Cadence tools step" in caption
    assert "counts as Other users" in caption

    page.run.profile.cadence_users = {"Outreach": ["jane@x.example"]}
    page.show_clones.setChecked(False)
    caption = page.charts.caption.text()
    assert caption.startswith("The 6 groups the filters show, of 8.")
    assert "the tools' users come from the Cadence tools step" in caption


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


def test_matching_rules__rescan_applies_thresholds(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window, page = duplicates_page(qtbot, make_window)
    assert any(group.kind is GroupKind.PROBABLE for group in window.context.run.groups)

    def rescan_with_zero_window() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ThresholdDialog)
        # The probable group's keyless Tasks were created two seconds apart.
        dialog.window_minutes.setValue(0)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    QTimer.singleShot(0, rescan_with_zero_window)
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


def clones_group(number: int, keys: tuple[str | None, ...]) -> DuplicateGroup:
    """Build a clones group of one e-mail on ``len(keys)`` Opportunities, with these keys."""
    records = tuple(TaskRecord(id=f"00T{number:010d}{member}AA", key=key, subject="Intro",
                               what_id=f"006{member:012d}AAA", created_date="2026-11-02T10:00:00.000+0000")
                    for member, key in enumerate(keys))
    return DuplicateGroup(GroupKind.CLONES, keys[0] or "", records, "3 Tasks are one e-mail",
                          group_id=records[0].id, survivor_id=records[0].id)


def test_page__keyless_clones_need_no_change(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    window = make_window()
    page = page_with_groups(qtbot, window, 0)
    page.run.groups = [clones_group(1, (None, None, None)), clones_group(2, ("<c@x>", None, None)),
                       clones_group(3, ("<d@x>", "<d@x>", None))]
    page.show_scan(StepResult(Step.CONFLICTS, StepStatus.PASSED, "Found 3 groups.", {}))

    page.groups.selectRow(0)
    assert page.survivor.text().startswith("These clones are logged once per related record on purpose and "
                                           "none holds a key, so they need no change.")
    assert "clear the key" not in page.survivor.text()
    assert not page.resolve_button.isEnabled()
    assert "need no change" in page.resolve_button.toolTip()
    page.groups.selectRow(1)
    assert "only one holds the key, so they need no change" in page.survivor.text()
    assert not page.resolve_button.isEnabled()
    page.groups.selectRow(2)
    assert "clears the key on all but one of the 2 Tasks that hold it" in page.survivor.text()
    assert page.resolve_button.isEnabled()


def test_page__written_by_everywhere(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    page = page_with_groups(qtbot, make_window(), 8)

    assert page.tool_filter.itemText(0) == "Written by: any"
    assert page.tool_filter.findText("Written by: Outreach") > 0
    page.tool_filter.setCurrentIndex(page.tool_filter.findText("Written by: Outreach"))
    assert page.current_filter().tool == "Outreach"
    header = page.groups_model.headerData(ConflictGroupsModel.WRITERS, Qt.Orientation.Horizontal)
    assert header == "Written by"
    page.tabs.setCurrentWidget(page.charts)
    assert page.charts.views["tool"].chart().title() == "Written by"


def test_page__charts_at_scale(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    page = page_with_groups(qtbot, make_window(), GROUP_COUNT)
    page.tabs.setCurrentWidget(page.charts)

    months = page.charts.chart_categories("month")
    assert months == [f"{name} '26" for name in MONTH_NAMES]
    month_chart = page.charts.views["month"].chart()
    bars = next(series for series in month_chart.series() if isinstance(series, QAbstractBarSeries))
    assert not bars.isLabelsVisible(), "numbers on 12 narrow bars overlap"
    spaced = next(axis for axis in month_chart.axes() if isinstance(axis, QCategoryAxis))
    assert len(spaced.categoriesLabels()) <= 3
    for name in ("tool", "kind", "month"):
        axis = next(axis for axis in page.charts.views[name].chart().axes() if type(axis) is QValueAxis)
        step = axis.max() / (axis.tickCount() - 1)
        assert step == int(step)
        assert str(int(step)).rstrip("0") in {"1", "2", "25", "3", "4", "5", "6", "8"}
    kind_chart = page.charts.views["kind"].chart()
    assert next(series for series in kind_chart.series()).isLabelsVisible()


def test_axis_range__round_ticks() -> None:
    assert axis_range(7432) == (7500, 4)
    assert axis_range(30108) == (32000, 5)
    assert axis_range(30108, max_intervals=2) == (40000, 3)
    assert axis_range(3) == (3, 4)
    assert axis_range(0) == (2, 3)


def test_month_labels__short_with_year() -> None:
    assert month_labels([EARLIER, "2025-12", "2026-01"]) == [EARLIER, "Dec '25", "Jan '26"]
    assert every_month({"2025-11": 2, "2026-02": 1}) == {"2025-11": 2, "2025-12": 0, "2026-01": 0,
                                                         "2026-02": 1}


def test_scan_status__flagged_groups_left() -> None:
    left = StepResult(Step.CONFLICTS, StepStatus.FAILED, "Read 4 Tasks and found 1 group.",
                      {"groups": 1, "flagged": 1, "tasks": 4})
    stopped = StepResult(Step.CONFLICTS, StepStatus.FAILED, "The connection was lost.", {})

    assert scan_status(left) == "Scan finished."
    assert scan_status(stopped) == "The scan did not finish."
