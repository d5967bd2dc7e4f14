"""Conflicts: scan the org's Tasks for duplicates, filter and compare the groups, chart them, resolve them.

The groups table stays responsive at 100,000 groups (see gui/conflict_models.py).
Resolving, undo and export are ``ConflictResolveActions``, mixed in from
gui/pages/conflicts_resolve.py. This page provides the groups model, the
selected group and ``refresh_after_resolution``.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Collection, Sequence

from PySide6.QtCore import QDate, QEvent, QItemSelectionModel, QModelIndex, QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind, Thresholds, garbage_collection_paused
from backstory_desktop.core.group_view import GroupFilter
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.core.resolution import ResolutionPlan, ResolveAction
from backstory_desktop.core.survivor import SURVIVOR_RULE
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.enablement.conflicts import scan_finished
from backstory_desktop.enablement.resolution import groups_for_bulk
from backstory_desktop.gui.conflict_charts import ConflictCharts
from backstory_desktop.gui.conflict_models import (
    RESOLVED,
    ConflictGroupsModel,
    PreparedGroups,
    RecordComparisonModel,
    prepare_groups,
)
from backstory_desktop.gui.pages.base import WizardContext
from backstory_desktop.gui.pages.conflicts_resolve import ConflictResolveActions
from backstory_desktop.gui.pages.plan_text import counted
from backstory_desktop.gui.threshold_dialog import edit_thresholds
from backstory_desktop.gui.widgets import ElideMiddleDelegate, compact_rows, note, plain_label, plain_tooltip
from backstory_desktop.store.settings import CADENCE_TOOLS

MERGE_NOTE = (
    "Salesforce cannot merge Tasks, and duplicate rules do not cover activities. Resolving a group "
    "keeps one Task (the survivor), fills its empty fields from the others if you choose, clears the "
    "key on the others and deletes them. A snapshot is saved first, so Undo can restore them."
)

# Starting widths in pixels; Reason, the last column, takes the rest of the table's width.
GROUP_COLUMN_WIDTHS = {
    ConflictGroupsModel.KIND: 78,
    ConflictGroupsModel.KEY: 170,
    ConflictGroupsModel.TASKS: 44,
    ConflictGroupsModel.WRITERS: 116,
    ConflictGroupsModel.OWNER: 100,
    ConflictGroupsModel.NEWEST: 82,
    ConflictGroupsModel.STATUS: 70,
}
# (label in the kind filter, the kinds it lets through). An empty set lets every kind through.
KIND_CHOICES: tuple[tuple[str, frozenset[GroupKind]], ...] = (
    ("Any kind", frozenset()),
    ("Exact", frozenset({GroupKind.EXACT})),
    ("Normalised", frozenset({GroupKind.NORMALISED})),
    ("Probable", frozenset({GroupKind.PROBABLE})),
    ("Clones", frozenset({GroupKind.CLONES})),
)
ANY_WRITER = "Written by: any"
WRITTEN_BY = "Written by: {}"
ANY_OWNER = "Any owner"
# The date range offered when the admin ticks "Created": the last year.
DEFAULT_RANGE_MONTHS = 12
# Up to this many Tasks share the Compare table's width, and more keep their width and scroll.
COMPARE_COLUMNS_THAT_FIT = 4
# Scans with more groups than this prepare the table's sort and filter facts on the worker, and are
# kept out of the garbage collector's full collections (see keep_out_of_collections). At 5,000
# groups, preparing them on the GUI thread stalled it for about 50 ms (benchmarks/conflict_viewer.py).
PREPARE_ON_WORKER = 2_000
# The GIL switch interval in seconds while a large scan is prepared on the worker (see prepare_job).
PREPARE_SWITCH_INTERVAL = 0.001
# The longest wait in seconds for the table's first paint before the worker prepares a large scan.
SHOWN_WAIT_SECONDS = 1.0
# How often in seconds that wait checks whether the admin cancelled.
CANCEL_CHECK_SECONDS = 0.05
# Typing in the search box filters once the admin pauses, not on every key.
SEARCH_DELAY_MS = 250


def scan_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event,
             thresholds: Thresholds | None = None) -> StepResult:
    """Read every Task, deleted and archived included, and group the duplicates."""
    return enablement.scan_conflicts(run, thresholds=thresholds, progress=progress, cancel=cancel)


def scan_status(result: StepResult) -> str:
    """Return the short status beside Scan. The message line below gives the reason.

    The step also fails after a finished scan that left flagged groups, which the page then shows.
    """
    if result.status is StepStatus.FAILED and not scan_finished(result):
        return "The scan did not finish."
    return "Scan finished."


def keyed_count(group: DuplicateGroup) -> int:
    """Return how many of a group's Tasks have a key."""
    return sum(1 for record in group.records if record.key)


def needs_change(group: DuplicateGroup) -> bool:
    """Return True when resolving the group changes anything: duplicates, or clones keyed more than once."""
    return bool(groups_for_bulk([group]))


def survivor_line(group: DuplicateGroup, survivor_column: int | None) -> str:
    """Return one line naming the Task the default rule keeps, and the reason."""
    if group.kind is GroupKind.CLONES:
        keyed = keyed_count(group)
        if keyed == 0:
            return ("These clones are logged once per related record on purpose and none holds a key, "
                    "so they need no change.")
        if keyed == 1:
            return ("These clones are logged once per related record on purpose and only one holds the key, "
                    "so they need no change.")
        return ("Clones are logged once per related record on purpose, so nothing needs deleting; "
                f"resolving clears the key on all but one of the {keyed} Tasks that hold it.")
    if survivor_column is None:
        return "No Task is marked to keep."
    return f"Task {survivor_column + 1} is kept by default. {group.survivor_reason}".strip()


def task_names(group: DuplicateGroup, ids: Collection[str]) -> str:
    """Return the names of a group's Tasks by their column in Compare: "Task 1", "Task 1 and Task 3"…"""
    names = [f"Task {column + 1}" for column, record in enumerate(group.records) if record.id in ids]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def resolved_line(group: DuplicateGroup, plan: ResolutionPlan) -> str:
    """Return a line describing a group's resolution: the Task it kept and those it deleted or cleared."""
    if plan.action is ResolveAction.CLEAR_KEY_ON_OTHERS:
        return (f"Resolved: kept every Task and cleared the key on {task_names(group, plan.clear_key_ids)}; "
                f"{task_names(group, {plan.survivor_id})} keeps it.")
    resolved = f"Resolved: kept {task_names(group, {plan.survivor_id})} ({plan.survivor_id})"
    deleted = task_names(group, plan.delete_ids)
    return f"{resolved}; deleted {deleted}." if deleted else f"{resolved}."


def keep_out_of_collections() -> None:
    """Move every object alive now, a large scan's groups and facts included, out of full collections.

    A full collection walks every object that Python's cyclic garbage collector tracks,
    and it holds the GIL meanwhile. With 100,000 groups in memory each one took up to
    about 400 ms on a 2-CPU machine (benchmarks/conflict_viewer.py), which stalled the
    GUI thread at random moments. gc.freeze() moves the objects to a permanent
    generation that collections skip. release_from_freeze() undoes it when the next
    scan starts, so that cycles among them that have died since can still be reclaimed.
    """
    gc.freeze()


def release_from_freeze() -> None:
    """Return the objects moved by keep_out_of_collections() to the collector's oldest generation."""
    gc.unfreeze()


def prepare_job(groups: Sequence[DuplicateGroup], tools: Collection[str], shown: threading.Event, *,
                progress: ProgressCallback, cancel: threading.Event | None) -> PreparedGroups:
    """Prepare a large scan's groups for the table on the worker, then keep them out of full collections.

    The GUI thread needs the GIL for each cell it paints, and a thread waiting for the GIL
    gets it after the switch interval (5 ms by default, sys.setswitchinterval). So the job
    waits until ``shown`` is set, once the table has been painted with the scan's first rows
    (at most SHOWN_WAIT_SECONDS), and the interval is PREPARE_SWITCH_INTERVAL until it ends.
    """
    deadline = time.monotonic() + SHOWN_WAIT_SECONDS
    while not shown.wait(CANCEL_CHECK_SECONDS) and time.monotonic() < deadline:
        check_cancel(cancel)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, PREPARE_SWITCH_INTERVAL))
    try:
        # The facts form no reference cycles. The objects made while the collector is paused all
        # wait in its youngest generation, and its first pass over them stalled the GUI thread
        # for about 100 ms, so they are frozen before it runs again.
        with garbage_collection_paused():
            prepared = prepare_groups(groups, tools, progress=progress, cancel=cancel)
            keep_out_of_collections()
    finally:
        sys.setswitchinterval(switch_interval)
    return prepared


class AfterNextPaint(QObject):
    """Event filter that sets a threading.Event once the widget it watches has finished its next paint."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self._pending: threading.Event | None = None
        widget.installEventFilter(self)

    def arm(self, done: threading.Event) -> None:
        """Set ``done`` on the pass of the event loop after the widget's next paint event."""
        self._pending = done

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self._pending is not None and event.type() == QEvent.Type.Paint:
            # The filter runs before the paint, so the event is set on the next pass of the event loop.
            QTimer.singleShot(0, self._pending.set)
            self._pending = None
        return False


def date_edit(date: QDate) -> QDateEdit:
    """Return a date field with a calendar, showing ``date``, off until the "Created" box is ticked."""
    edit = QDateEdit(date)
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd")
    edit.setEnabled(False)
    edit.setFixedWidth(edit.fontMetrics().horizontalAdvance("0000-00-00") + 36)
    return edit


class ConflictsPage(ConflictResolveActions):
    """Conflicts page: Scan, filters, the groups table, Compare and Charts tabs, and the resolve buttons."""

    step = Step.CONFLICTS

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(MERGE_NOTE))
        self.body.addLayout(self._scan_row())
        self.body.addLayout(self._filter_row())

        self.groups_model = ConflictGroupsModel()
        # The plan each group was resolved by since the scan, so Compare shows the Task really kept.
        self.applied_plans: dict[str, ResolutionPlan] = {}
        self.groups = self._groups_table()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._compare_tab(), "Compare")
        self.charts = ConflictCharts()
        self.tabs.addTab(self.charts, "Charts")
        self.tabs.currentChanged.connect(self._refresh_charts_if_shown)
        self._charts_stale = True

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.groups)
        splitter.addWidget(self.tabs)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([170, 290])
        self.body.addWidget(splitter, 1)
        self.body.addLayout(self._button_row())
        self._compared_group_id = ""
        # The group compared before a reset of the table, selected again after it if still shown.
        self._reselect_group_id = ""
        self._any_shown_flagged = False
        # True while the facts of a large scan's groups are computed on the worker.
        self._preparing = False
        # The source and owner chosen before a large scan, chosen again once its lists are ready.
        self._pending_choices = ("", "")
        # The sort column and order set before a large scan, applied again once it is prepared.
        self._pending_sort = (-1, Qt.SortOrder.AscendingOrder)

    def _scan_row(self) -> QHBoxLayout:
        self.scan_button = QPushButton("Scan")
        self.scan_button.clicked.connect(self.scan)
        self.rules_button = QPushButton("Matching rules…")
        self.rules_button.clicked.connect(self.edit_matching_rules)
        self.summary = QLabel("Not scanned yet.")
        # A long status wraps, so it never widens the window.
        self.summary.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.scan_button)
        row.addWidget(self.rules_button)
        row.addWidget(self.summary, 1)
        return row

    def _filter_row(self) -> QHBoxLayout:
        self.kind_filter = QComboBox()
        for label, kinds in KIND_CHOICES:
            self.kind_filter.addItem(label, kinds)
        self.kind_filter.setToolTip(plain_tooltip(
            "Exact: the same key. Normalised: keys that differ only in brackets, case or whitespace.\n"
            "Probable: Tasks without a key that look like one e-mail (see Matching rules).\n"
            "Clones: one e-mail logged once per related record on purpose."))
        self.tool_filter = QComboBox()
        self.tool_filter.addItem(ANY_WRITER, "")
        self.tool_filter.setToolTip("Show groups with at least one Task written by this cadence tool's user, "
                                    "by Backstory, or by other users")
        self.owner_filter = QComboBox()
        self.owner_filter.addItem(ANY_OWNER, "")
        # Owner and writer names are org data of any length, so the combos keep a fixed width.
        for combo, length in ((self.kind_filter, 7), (self.tool_filter, 9), (self.owner_filter, 7)):
            combo.setMinimumContentsLength(length)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)

        today = QDate.currentDate()
        self.date_filter = QCheckBox("Created")
        self.date_filter.setToolTip("Show only groups with a Task created between these dates, both included")
        self.date_from = date_edit(today.addMonths(-DEFAULT_RANGE_MONTHS))
        self.date_to = date_edit(today)
        self.date_filter.toggled.connect(self.date_from.setEnabled)
        self.date_filter.toggled.connect(self.date_to.setEnabled)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Key or subject")
        self.search.setClearButtonEnabled(True)
        # About as wide as its placeholder, so that the filter row fits a 1100-pixel window.
        self.search.setMinimumWidth(self.search.fontMetrics().horizontalAdvance("Key or subject") + 4)
        self.show_clones = QCheckBox("Clones")
        self.show_clones.setChecked(True)
        self.show_clones.setToolTip("Show clones: one e-mail logged once per related record on purpose")

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_filter)
        self.search.textChanged.connect(self._search_timer.start)
        for combo in (self.kind_filter, self.tool_filter, self.owner_filter):
            combo.currentIndexChanged.connect(self.apply_filter)
        for edit in (self.date_from, self.date_to):
            edit.dateChanged.connect(self.apply_filter)
        self.show_clones.toggled.connect(self.apply_filter)
        self.date_filter.toggled.connect(self.apply_filter)

        row = QHBoxLayout()
        row.addWidget(self.kind_filter)
        row.addWidget(self.tool_filter)
        row.addWidget(self.owner_filter)
        row.addWidget(self.date_filter)
        row.addWidget(self.date_from)
        row.addWidget(QLabel("to"))
        row.addWidget(self.date_to)
        row.addWidget(self.search, 1)
        row.addWidget(self.show_clones)
        return row

    def _groups_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.groups_model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        compact_rows(table)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in GROUP_COLUMN_WIDTHS.items():
            table.setColumnWidth(column, width)
        self._after_next_paint = AfterNextPaint(table.viewport())
        self.key_delegate = ElideMiddleDelegate(table)
        table.setItemDelegateForColumn(ConflictGroupsModel.KEY, self.key_delegate)
        # No sort until the admin clicks a header, because the scan's order groups families together.
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        table.setSortingEnabled(True)
        # QHeaderView marks the sections of selected columns by asking the selection model whether
        # each column is selected, and QItemSelectionModel.isColumnSelected() visits every row:
        # with 100,000 rows selected each paint of the header took over a second. Rows are
        # selected whole here, so the header gets a selection model of its own, which stays empty.
        header.setSelectionModel(QItemSelectionModel(self.groups_model, header))
        table.selectionModel().currentRowChanged.connect(self._current_row_changed)
        table.selectionModel().selectionChanged.connect(lambda _selected, _deselected: self.update_actions())
        self.groups_model.modelAboutToBeReset.connect(self._keep_compared_group)
        self.groups_model.modelReset.connect(self._rows_reset)
        return table

    def _compare_tab(self) -> QWidget:
        self.group_reason = plain_label()
        self.group_reason.setWordWrap(True)
        self.survivor = plain_label()
        self.survivor.setWordWrap(True)
        self.survivor.setToolTip(plain_tooltip(SURVIVOR_RULE))
        self.records_model = RecordComparisonModel()
        self.records = QTableView()
        self.records.setModel(self.records_model)
        self.records.setWordWrap(False)
        compact_rows(self.records)
        self.records.horizontalHeader().setDefaultSectionSize(220)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.group_reason)
        layout.addWidget(self.survivor)
        layout.addWidget(self.records, 1)
        return tab

    def _button_row(self) -> QHBoxLayout:
        self.resolve_button = QPushButton("Resolve group…")
        self.resolve_button.clicked.connect(self.resolve_selected)
        self.resolve_all_button = QPushButton("Resolve all shown…")
        self.resolve_all_button.clicked.connect(self.resolve_shown)
        self.undo_button = QPushButton("Undo…")
        self.undo_button.clicked.connect(self.undo_resolution)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(self.export_csv)
        self.export_html_button = QPushButton("Export HTML…")
        self.export_html_button.clicked.connect(self.export_html)
        self.shown_label = QLabel()
        row = QHBoxLayout()
        for button in (self.resolve_button, self.resolve_all_button, self.undo_button):
            row.addWidget(button)
        row.addWidget(self.shown_label, 1, Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.export_csv_button)
        row.addWidget(self.export_html_button)
        return row

    # State of the buttons.

    def update_actions(self) -> None:
        idle = not self.busy
        connected = self.run.connection is not None
        any_shown = self.groups_model.shown_count() > 0
        self.scan_button.setEnabled(idle)
        self.rules_button.setEnabled(idle)
        group = self.selected_group()
        status = self.groups_model.status(group.group_id) if group is not None else ""
        self.resolve_button.setEnabled(idle and group is not None and needs_change(group)
                                       and status != RESOLVED)
        self.resolve_button.setToolTip(self._resolve_tooltip(group, status))
        self.resolve_all_button.setEnabled(idle and self._any_shown_flagged)
        self.undo_button.setEnabled(idle and connected)
        self.export_csv_button.setEnabled(idle and any_shown)
        self.export_html_button.setEnabled(idle and any_shown)

    @staticmethod
    def _resolve_tooltip(group: DuplicateGroup | None, status: str) -> str:
        if group is None:
            return "Select a group in the table to resolve it."
        if status == RESOLVED:
            return "This group is resolved: scan again to see its Tasks as the org holds them now."
        if not needs_change(group):
            return "These clones need no change: at most one of them holds the key."
        return "Choose the Task to keep and see every change before it is made."

    # Scanning.

    def scan(self) -> None:
        """Scan the org's Tasks on the worker with the current matching rules."""
        release_from_freeze()
        self.start_job("the conflict scan", scan_job, self.run, on_finished=self.show_scan,
                       progress_message="Reading Tasks…", cancellable=True)

    def edit_matching_rules(self) -> None:
        """Let the admin change the probable-duplicate thresholds, then scan again with them."""
        thresholds = edit_thresholds(self, self.run.thresholds)
        if thresholds is None:
            return
        release_from_freeze()
        self.start_job("the conflict scan", scan_job, self.run, thresholds=thresholds,
                       on_finished=self.show_scan, progress_message="Reading Tasks…", cancellable=True)

    def show_scan(self, result: StepResult) -> None:
        """Show the groups of a finished scan, or why it failed, keeping the filters the admin set."""
        self._compared_group_id = ""
        self._reselect_group_id = ""
        self.applied_plans = {}
        self._preparing = len(self.run.groups) > PREPARE_ON_WORKER
        if self._preparing:
            keep_out_of_collections()
        header = self.groups.horizontalHeader()
        if self._preparing:
            # The admin's sort comes back once the worker has computed the sort keys.
            self._pending_sort = (header.sortIndicatorSection(), header.sortIndicatorOrder())
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.groups_model.set_groups(self.run.groups, tools=self.tool_names(), keep_sort=not self._preparing)
        if self._preparing:
            # The filters' lists wait for the facts prepared on the worker.
            self._clear_filter_choices()
        else:
            self._fill_filter_choices()
        self.apply_filter()
        self.summary.setText(self._scan_summary(result))
        if len(self.run.groups) > PREPARE_ON_WORKER:
            shown = threading.Event()
            self.start_job("preparing the groups", prepare_job, self.run.groups, self.tool_names(), shown,
                           on_finished=self._take_prepared, on_failed=self._prepare_failed,
                           progress_message="Preparing the groups…", cancellable=True)
            self._after_next_paint.arm(shown)
        self.rules_button.setToolTip(plain_tooltip("\n".join(self.run.thresholds.lines())))
        # The message line gives the reason, so the line beside Scan shows only how far the scan got.
        self.message.show_result(result)
        self.record_changed()
        if self.groups_model.rowCount():
            self.groups.selectRow(0)

    def _scan_summary(self, result: StepResult) -> str:
        if result.status is StepStatus.FAILED and not scan_finished(result):
            return scan_status(result)
        groups = self.run.groups
        # The scan's result counts them already, and counting 100,000 groups again takes a while.
        flagged = result.details.get("flagged")
        if not isinstance(flagged, int):
            flagged = sum(1 for group in groups if group.flagged)
        return (f"{scan_status(result)} {counted(len(groups), 'group')} ({flagged:,} flagged) among "
                f"{counted(self.run.tasks_scanned, 'Task')}.")

    def tool_names(self) -> list[str]:
        """Return the cadence tools whose names start their users' writer labels."""
        return list(dict.fromkeys([*self.run.profile.cadence_users, *CADENCE_TOOLS]))

    def _fill_filter_choices(self) -> None:
        """List the sources and owners of this scan's groups in their filters, keeping the choices made."""
        sources, owners = self.groups_model.filter_choices()
        pending = dict(zip((self.tool_filter, self.owner_filter), self._pending_choices, strict=True))
        self._pending_choices = ("", "")
        for combo, values, any_label in ((self.tool_filter, sources, ANY_WRITER),
                                         (self.owner_filter, owners, ANY_OWNER)):
            chosen = pending[combo] or combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(any_label, "")
            for value in values:
                combo.addItem(WRITTEN_BY.format(value) if combo is self.tool_filter else value, value)
            combo.setCurrentIndex(max(combo.findData(chosen), 0))
            combo.blockSignals(False)

    def _clear_filter_choices(self) -> None:
        self._pending_choices = (self.tool_filter.currentData() or "", self.owner_filter.currentData() or "")
        for combo in (self.tool_filter, self.owner_filter):
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(combo.count() - 1)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)

    def _take_prepared(self, prepared: PreparedGroups) -> None:
        if self.groups_model.set_prepared(prepared):
            self._preparing = False
            self._fill_filter_choices()
            self.apply_filter()
            self._restore_sort()

    def _restore_sort(self) -> None:
        column, order = self._pending_sort
        self._pending_sort = (-1, Qt.SortOrder.AscendingOrder)
        if column >= 0:
            self.groups.sortByColumn(column, order)

    def _prepare_failed(self, error: BaseException) -> None:
        # The filters then compute what they read on the GUI thread, which is slower but correct.
        self._preparing = False
        self.job_failed(error)
        self._fill_filter_choices()
        self.apply_filter()
        self._restore_sort()

    # Filters.

    def current_filter(self) -> GroupFilter:
        """Return the filter set in the filter row."""
        return GroupFilter(
            kinds=self.kind_filter.currentData() or frozenset(),
            tool=self.tool_filter.currentData() or "",
            owner=self.owner_filter.currentData() or "",
            date_from=self._date_text(self.date_from),
            date_to=self._date_text(self.date_to),
            text=self.search.text().strip(),
            include_clones=self.show_clones.isChecked(),
        )

    def _date_text(self, edit: QDateEdit) -> str:
        return edit.date().toString(Qt.DateFormat.ISODate) if self.date_filter.isChecked() else ""

    def apply_filter(self) -> None:
        """Show only the groups the filter row lets through.

        While a large scan's groups are being prepared on the worker, only the kind
        and clones filters apply. The others apply once the facts they read are ready.
        """
        self._search_timer.stop()
        f = self.current_filter()
        if self._preparing:
            f = GroupFilter(kinds=f.kinds, include_clones=f.include_clones)
        self.groups_model.set_filter(f)

    def _keep_compared_group(self) -> None:
        self._reselect_group_id = self._compared_group_id

    def _rows_reset(self) -> None:
        """After a new scan, filter or sort: keep the compared group selected if it is still shown."""
        shown_count, total = self.groups_model.shown_count(), self.groups_model.total_count()
        self._any_shown_flagged = self.groups_model.any_shown_flagged()
        self.shown_label.setText(f"{shown_count:,} of {counted(total, 'group')} shown" if total else "")
        self._charts_stale = True
        self._refresh_charts_if_shown()
        row = self.groups_model.row_of(self._reselect_group_id) if self._reselect_group_id else None
        if row is None:
            self._show_group(None)
        else:
            self.groups_model.fetch_through(row)
            self.groups.selectRow(row)
            self.groups.scrollTo(self.groups_model.index(row, 0))
        self.update_actions()

    # The selected group.

    def selected_group(self) -> DuplicateGroup | None:
        """Return the group on the table's current row, or None."""
        selection = self.groups.selectionModel()
        index = selection.currentIndex()
        if not index.isValid() or not selection.hasSelection():
            return None
        return self.groups_model.group_at(index.row())

    def _current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_group(self.groups_model.group_at(current.row()) if current.isValid() else None)
        self.update_actions()

    def _show_group(self, group: DuplicateGroup | None) -> None:
        if group is None:
            self._compared_group_id = ""
            self.records_model.set_records([])
            self.group_reason.clear()
            self.survivor.clear()
            return
        self._compared_group_id = group.group_id
        status = self.groups_model.status(group.group_id)
        plan = self.applied_plans.get(group.group_id) if status == RESOLVED else None
        if plan is None:
            self.records_model.set_records(group.records, group.survivor_id)
        else:
            self.records_model.set_records(group.records, plan.survivor_id, deleted_ids=plan.delete_ids)
        # A few Tasks share the width, and more scroll sideways at a readable width each.
        header = self.records.horizontalHeader()
        fits = len(group.records) <= COMPARE_COLUMNS_THAT_FIT
        mode = QHeaderView.ResizeMode.Stretch if fits else QHeaderView.ResizeMode.Interactive
        header.setSectionResizeMode(mode)
        if plan is not None:
            self.group_reason.setText(f"{group.reason}. {resolved_line(group, plan)}")
        elif status:
            self.group_reason.setText(f"{group.reason}. Status: {status}.")
        else:
            self.group_reason.setText(f"{group.reason}.")
        line = survivor_line(group, self.records_model.survivor_column())
        if plan is not None:
            chosen_by = "by the default rule" if plan.survivor_id == group.survivor_id else "as chosen"
            line = f"{task_names(group, {plan.survivor_id})} was kept {chosen_by}."
        if self.records_model.differing_fields():
            line += " ≠ marks the fields that differ."
        self.survivor.setText(line)

    def refresh_after_resolution(self, group_ids: list[str], status: str) -> None:
        """Mark groups "resolved", "undone" or "failed: …" after a resolution or an undo.

        A group marked resolved keeps the plan the mixin put in ``applied_plans``. Any other
        status drops it, so Compare marks the default survivor again.
        """
        if status != RESOLVED:
            for group_id in group_ids:
                self.applied_plans.pop(group_id, None)
        self.groups_model.set_status(group_ids, status)
        if self._compared_group_id in group_ids:
            self._show_group(self.selected_group())
        self.update_actions()

    # Charts.

    def _refresh_charts_if_shown(self) -> None:
        # Counting 100,000 groups takes a moment, so the charts wait until their tab is open.
        if self._charts_stale and self.tabs.currentWidget() is self.charts:
            self._charts_stale = False
            by_source, by_kind, by_month = self.groups_model.shown_counts()
            tool_users_named = any(self.run.profile.cadence_users.values())
            self.charts.show_counts(by_source, by_kind, by_month, shown=self.groups_model.shown_count(),
                                    total=self.groups_model.total_count(), tool_users_named=tool_users_named)
