"""Local sync: pick a mail source or CSV export, show the dry-run plan, apply it when the admin confirms.

Beside the plan, tabs show the backfill queue of the run, the run history of
the org with Resume and the result files, and on the practice org the
cadence-tool drill. Every run is journalled, so a sync that stopped, or a
computer that restarted, is offered for resuming when the page opens.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.cadence_drill import DrillReport, run_cadence_drill
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.plan import Action, InactiveOwner, Plan
from backstory_desktop.enablement.run import record_change
from backstory_desktop.enablement.sync import sync_journal
from backstory_desktop.gui import dialogs, sync_dialogs
from backstory_desktop.gui.models import PlanTableModel, index_actions
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.pages.sync_jobs import (
    SyncOverview,
    apply_job,
    delete_run,
    export_job,
    plan_job,
    read_overview,
    resume_job,
    retry_job,
)
from backstory_desktop.gui.pages.sync_panels import (
    DrillPanel,
    HistoryPanel,
    QueuePanel,
    describe_run,
    is_unfinished,
    resume_sentence,
)
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    ElideMiddleDelegate,
    compact_rows,
    explain_error,
    note,
    plain_label,
    plain_tooltip,
    plural,
)
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.csv_export import CsvMapping
from backstory_desktop.sources.registry import SourceKind, describe_source, detect_source
from backstory_desktop.store.journal import RunInProgress, RunSummary
from backstory_desktop.sync.settings import SyncSettings

log = logging.getLogger(__name__)

# Column widths of the plan table, in pixels. Reason, the last column, takes the rest of the width and
# keeps at least REASON_SHARE of it (and REASON_MIN_WIDTH). Of the width left, Key gets KEY_SHARE, so it
# grows with the window, and Source fits the references of the first rows within its bounds.
ACTION_WIDTH = 64
REASON_MIN_WIDTH = 200
REASON_SHARE = 0.25
KEY_SHARE = 0.56
SOURCE_MAX_SHARE = 0.22
KEY_MIN_WIDTH = 200
SOURCE_MIN_WIDTH = 85
SUBJECT_MIN_WIDTH = 65
SOURCE_ROWS_MEASURED = 50
# Existing Tasks is as wide as one 18-character record Id, plus the cell's margins.
RECORD_ID_SAMPLE = "00T000000000000AAA"
CELL_MARGIN = 16
# The spin box's largest value: a threshold above the size of any plan sends every plan through Collections.
MAX_BULK_THRESHOLD = 100_000_000
ALL_ACTIONS = "All actions"
# Inactive owners named on the plan tab; the tooltip lists every one.
OWNERS_NAMED = 3
# The error code of a step result rejected because another sync has locked the org.
RUN_IN_PROGRESS = "RUN_IN_PROGRESS"
WARNING_COLOR = "#8a5a00"

NO_PLAN = "No plan yet: choose a mail source and build the plan."
SOURCE_FILTER = ("Mail sources and exports (*.mbox *.mbx *.csv);;mbox files (*.mbox *.mbx);;"
                 "CSV files (*.csv);;All files (*)")

# The Bulk API threshold the admin set, per window, so it lasts until the window closes.
_bulk_thresholds: WeakKeyDictionary[WizardContext, int] = WeakKeyDictionary()


def counted(count: int, noun: str) -> str:
    """Return "1 Task" or "2,000 Tasks", with thousands separators."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def inactive_owner_lines(plan: Plan) -> list[str]:
    """Describe each inactive owner the plan replaced, with the user who owns the rows instead."""
    return [f"{owner.username} → {owner.replaced_by} ({counted(owner.rows, 'row')})"
            for owner in plan.inactive_owners]


def inactive_owner_summary(plan: Plan) -> str:
    """Summarise the inactive owners in a sentence per replacing user, naming the first few of them."""
    replaced: dict[str, list[InactiveOwner]] = {}
    for owner in plan.inactive_owners:
        replaced.setdefault(owner.replaced_by, []).append(owner)
    sentences = []
    for replacement, owners in replaced.items():
        names = ", ".join(owner.username for owner in owners[:OWNERS_NAMED])
        if len(owners) > OWNERS_NAMED:
            names += f" and {len(owners) - OWNERS_NAMED} more"
        rows = sum(owner.rows for owner in owners)
        were = "was" if rows == 1 else "were"
        sentences.append(f"{counted(rows, 'row')} {were} from {counted(len(owners), 'inactive user')} "
                         f"({names}), so {replacement} owns those Tasks.")
    return " ".join(sentences)


def describe_counts(counts: dict[str, int]) -> str:
    """Describe the plan's counts per action in one line."""
    return " · ".join(f"{counts.get(action.value, 0):,} {action.value}" for action in Action)


def sends_by_bulk(plan: Plan, threshold: int) -> tuple[int, bool]:
    """Return the number of rows an apply of ``plan`` sends, and whether Bulk API 2.0 sends them."""
    counts = plan.counts()
    sending = counts.get(Action.CREATE.value, 0) + counts.get(Action.UPDATE.value, 0)
    return sending, sending >= threshold


def describe_route(sending: int, threshold: int) -> str:
    """Say which API an apply of ``sending`` rows uses with this Bulk threshold."""
    if sending >= threshold:
        return (f"Apply will use Bulk API 2.0 ({counted(sending, 'row')}, at or above the Bulk threshold "
                f"of {threshold:,}).")
    return (f"Apply will use sObject Collections ({counted(sending, 'row')}, below the Bulk threshold "
            f"of {threshold:,}).")


def export_file_name(source: str, today: date) -> str:
    """Name a plan export after its source and the day: "sample plan 2026-12-05.csv"."""
    stem = Path(source.strip()).stem or "sync"
    return f"{stem} plan {today.isoformat()}.csv"


class ElideLeftDelegate(QStyledItemDelegate):
    """Item delegate that elides text at its start, so a source reference keeps its row or byte number."""

    def initStyleOption(self, option: QStyleOptionViewItem,
                        index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideLeft


class PlanColumns(QObject):
    """The plan table's column widths, fitted to the table's width until the admin drags a column.

    Action, Existing Tasks and Outcome keep their width. Reason keeps a share of
    the width, Key gets most of the rest, and Source fits its references.
    """

    def __init__(self, table: QTableView) -> None:
        super().__init__(table)
        self.table = table
        metrics = table.fontMetrics()
        self.source_width = SOURCE_MIN_WIDTH
        self._sizing = False
        self._dragged = False
        table.setColumnWidth(PlanTableModel.ACTION, ACTION_WIDTH)
        # Read once, because a hidden column reports a width of 0.
        self.existing_width = metrics.horizontalAdvance(RECORD_ID_SAMPLE) + CELL_MARGIN
        table.setColumnWidth(PlanTableModel.EXISTING, self.existing_width)
        self.outcome_width = metrics.horizontalAdvance(f"updated {RECORD_ID_SAMPLE}") + CELL_MARGIN
        table.setColumnWidth(PlanTableModel.OUTCOME, self.outcome_width)
        table.horizontalHeader().sectionResized.connect(self._section_resized)
        # The viewport narrows when the vertical scroll bar appears, so its resizes are watched.
        self._viewport = table.viewport()
        self._viewport.installEventFilter(self)
        self.fit()

    def measure_sources(self, model: PlanTableModel) -> None:
        """Fit Source to the references of the first rows of a new plan."""
        metrics = self.table.fontMetrics()
        shown = min(model.rowCount(), SOURCE_ROWS_MEASURED)
        widths = [metrics.horizontalAdvance(model.row_at(row).source_ref) for row in range(shown)]
        widest = max(widths, default=0)
        self.source_width = max(widest + CELL_MARGIN, SOURCE_MIN_WIDTH)
        self.fit()

    def fit(self) -> None:
        """Share the table's width between Key, Source and Subject; Reason takes the rest."""
        if self._dragged:
            return
        width = self.table.viewport().width()
        # Outcome takes the place of Existing Tasks after an apply.
        applied = not self.table.isColumnHidden(PlanTableModel.OUTCOME)
        fixed = ACTION_WIDTH + (self.outcome_width if applied else self.existing_width)
        reason = max(REASON_MIN_WIDTH, int(width * REASON_SHARE))
        shared = max(width - fixed - reason, KEY_MIN_WIDTH + SOURCE_MIN_WIDTH + SUBJECT_MIN_WIDTH)
        key = max(int(shared * KEY_SHARE), KEY_MIN_WIDTH)
        source = min(self.source_width, max(int(shared * SOURCE_MAX_SHARE), SOURCE_MIN_WIDTH))
        subject = max(shared - key - source, SUBJECT_MIN_WIDTH)
        self._sizing = True
        try:
            for column, size in ((PlanTableModel.KEY, key), (PlanTableModel.SOURCE, source),
                                 (PlanTableModel.SUBJECT, subject)):
                self.table.setColumnWidth(column, size)
        finally:
            self._sizing = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self._viewport:
            self.fit()
        return False

    def _section_resized(self, column: int, _old: int, _new: int) -> None:
        # The admin's own width wins over the automatic one until the page is built again.
        if not self._sizing and column in (PlanTableModel.KEY, PlanTableModel.SOURCE, PlanTableModel.SUBJECT):
            self._dragged = True


class LocalSyncPage(StepPage):
    """Source picker, plan with filter and apply, backfill queue, run history and the drill."""

    step = Step.LOCAL_SYNC

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Sync mail the way Backstory would: each message becomes a Task upserted on its Message-ID. "
            "Build the plan first; nothing is written until you apply it."
        ))
        self._build_source_row(context)
        self._build_resume_offer()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_plan_tab(), "Plan")
        self.queue_panel = QueuePanel()
        self.queue_panel.retry_requested.connect(self.retry_queue)
        self.tabs.addTab(self.queue_panel, "Backfill queue")
        self.history_panel = HistoryPanel()
        self.history_panel.resume_requested.connect(self.resume)
        self.history_panel.open_folder_requested.connect(self.open_folder)
        self.history_panel.selection_changed.connect(self._history_selection_changed)
        self.history_panel.delete_requested.connect(self.delete_history_run)
        self.tabs.addTab(self.history_panel, "Run history")
        self.drill_panel = DrillPanel()
        self.drill_panel.drill_requested.connect(self.run_drill)
        self.tabs.addTab(self.drill_panel, "Cadence-tool drill")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.body.addWidget(self.tabs, 1)

        self._plan_applied = False
        self._open_failed = False
        # The path text the shown plan was built from; Apply waits for a new plan after an edit.
        self._planned_path = ""
        self._requested_path = ""
        self._mapping: CsvMapping | None = None
        self._kind: SourceKind | None = None
        self._action_positions: dict[Action, Any] | None = None
        self._offered_run_id: str | None = None
        # The run a resume or retry is sending, to show its plan when it ends.
        self._sent_run: RunSummary | None = None
        self._path_changed(self.path_edit.text())

    # Building the page.

    def _build_source_row(self, context: WizardContext) -> None:
        self.path_edit = QLineEdit(str(context.mailbox))
        self.path_edit.textChanged.connect(self._path_changed)
        self.path_edit.editingFinished.connect(self._path_edited)
        self.choose_button = QPushButton("File…")
        self.choose_button.setToolTip("Choose an mbox file or a CSV export")
        self.choose_button.clicked.connect(self.choose_file)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Choose a Maildir folder or a folder of .eml files")
        self.folder_button.clicked.connect(self.choose_folder)
        self.plan_button = QPushButton("Build plan")
        self.plan_button.clicked.connect(self.build_plan)
        picker = QHBoxLayout()
        picker.addWidget(QLabel("Source:"))
        picker.addWidget(self.path_edit, 1)
        picker.addWidget(self.choose_button)
        picker.addWidget(self.folder_button)
        picker.addWidget(self.plan_button)
        self.body.addLayout(picker)

        self.kind_label = plain_label()
        self.kind_label.setWordWrap(True)
        self.mapping_button = QPushButton("Map CSV columns…")
        self.mapping_button.clicked.connect(self.edit_mapping)
        kind_row = QHBoxLayout()
        kind_row.addWidget(self.kind_label, 1)
        kind_row.addWidget(self.mapping_button)
        self.body.addLayout(kind_row)

        # Named for the mailbox it once was; it shows why any source cannot be read.
        self.mailbox_error = QLabel()
        self.mailbox_error.setWordWrap(True)
        self.mailbox_error.setTextFormat(Qt.TextFormat.PlainText)
        self.mailbox_error.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.mailbox_error.hide()
        self.body.addWidget(self.mailbox_error)
        # The sentence of a sync that has locked the org, shown alone in place of any other message.
        self.blocked = plain_label()
        self.blocked.setWordWrap(True)
        self.blocked.setStyleSheet(f"color: {WARNING_COLOR};")
        self.blocked.hide()
        self.body.addWidget(self.blocked)

    def _build_resume_offer(self) -> None:
        self.resume_offer = QFrame()
        self.resume_offer.setFrameShape(QFrame.Shape.StyledPanel)
        self.resume_offer.setStyleSheet("QFrame { background: #fff4ce; }")
        self.resume_text = plain_label()
        self.resume_text.setWordWrap(True)
        self.resume_offer_button = QPushButton("Resume…")
        self.resume_offer_button.clicked.connect(self._resume_offered)
        self.dismiss_button = QPushButton("Not now")
        self.dismiss_button.clicked.connect(self.resume_offer.hide)
        row = QHBoxLayout(self.resume_offer)
        row.setContentsMargins(8, 6, 8, 6)
        row.addWidget(self.resume_text, 1)
        row.addWidget(self.resume_offer_button)
        row.addWidget(self.dismiss_button)
        self.resume_offer.hide()
        self.body.addWidget(self.resume_offer)

    def _build_plan_tab(self) -> QWidget:
        self.counts = plain_label(NO_PLAN)
        self.counts.setWordWrap(True)
        # Always shown, at least a line high, so the rows below keep their place when owners appear.
        self.owners = plain_label()
        self.owners.setWordWrap(True)
        self.owners.setMinimumHeight(self.owners.fontMetrics().lineSpacing())
        self.route = plain_label()

        self.filter_box = QComboBox()
        self.filter_box.addItem(ALL_ACTIONS, "")
        for action in Action:
            self.filter_box.addItem(action.value, action.value)
        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        self.export_button = QPushButton("Export plan CSV…")
        self.export_button.clicked.connect(self.export_plan)

        self.threshold = QSpinBox()
        self.threshold.setRange(1, MAX_BULK_THRESHOLD)
        self.threshold.setGroupSeparatorShown(True)
        self.threshold.setValue(_bulk_thresholds.get(self.context, SyncSettings().bulk_threshold))
        self.threshold.setToolTip("Plans that send this many rows or more go through Bulk API 2.0; "
                                  "smaller ones through sObject Collections, 200 records a call.")
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.apply_button = QPushButton("Apply plan…")
        self.apply_button.clicked.connect(self.apply)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show:"))
        controls.addWidget(self.filter_box)
        controls.addWidget(self.export_button)
        controls.addStretch(1)
        controls.addWidget(self.apply_button)
        api_row = QHBoxLayout()
        api_row.addWidget(self.route, 1)
        api_row.addWidget(QLabel("Bulk API 2.0 from"))
        api_row.addWidget(self.threshold)
        api_row.addWidget(QLabel("rows"))

        self.model = PlanTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        compact_rows(self.table)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.columns = PlanColumns(self.table)
        self.key_delegate = ElideMiddleDelegate(self.table)
        self.table.setItemDelegateForColumn(PlanTableModel.KEY, self.key_delegate)
        # A long source reference keeps its end: the message, row or file that differs between rows.
        self.source_delegate = ElideLeftDelegate(self.table)
        self.table.setItemDelegateForColumn(PlanTableModel.SOURCE, self.source_delegate)
        self._show_outcome_column(False)

        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.counts)
        layout.addLayout(api_row)
        layout.addLayout(controls)
        layout.addWidget(self.owners)
        layout.addWidget(self.table, 1)
        return tab

    # State shown and enabled.

    def enter(self) -> None:
        self.tabs.setTabVisible(self.tabs.indexOf(self.drill_panel), self._on_practice_org())
        super().enter()
        if self.run.connection is not None:
            self.refresh_overview(offer_resume=True)

    def _on_practice_org(self) -> bool:
        return self.context.practice_org is not None and self.run.profile.kind == "practice"

    def _show_outcome_column(self, applied: bool) -> None:
        # After an apply, Outcome takes the place of Existing Tasks so that Reason keeps room at
        # the default window size. Outcome names the Task each sent row created or updated, and
        # its tooltip names the existing Tasks of a row that was not sent.
        self.table.setColumnHidden(PlanTableModel.OUTCOME, not applied)
        self.table.setColumnHidden(PlanTableModel.EXISTING, applied)
        self.columns.fit()

    def update_actions(self) -> None:
        idle = not self.busy
        has_plan = self.run.plan is not None and self.model.rowCount() > 0
        plan_shown = self.run.plan is not None and bool(self._planned_path)
        plan_is_current = self.path_edit.text() == self._planned_path
        connected = self.run.connection is not None
        self.path_edit.setEnabled(idle)
        self.choose_button.setEnabled(idle)
        self.folder_button.setEnabled(idle)
        self.mapping_button.setVisible(self._kind is SourceKind.CSV)
        self.mapping_button.setEnabled(idle)
        self.plan_button.setEnabled(idle and bool(self.path_edit.text().strip()))
        self.apply_button.setEnabled(idle and has_plan and plan_is_current and not self._plan_applied)
        self.filter_box.setEnabled(idle and plan_shown)
        self.export_button.setEnabled(idle and plan_shown)
        self.threshold.setEnabled(idle)
        self.resume_offer_button.setEnabled(idle and connected)
        self.queue_panel.set_enabled_actions(idle and connected)
        self.history_panel.set_enabled_actions(idle and connected)
        self.drill_panel.run_button.setEnabled(idle and connected and self._on_practice_org())

    # The source.

    def choose_file(self) -> None:
        """Let the admin pick an mbox file or a CSV export."""
        chosen, _filter = QFileDialog.getOpenFileName(
            self, "Choose a mail source", str(Path(self.path_edit.text()).parent), SOURCE_FILTER)
        if chosen:
            self.path_edit.setText(chosen)

    def choose_folder(self) -> None:
        """Let the admin pick a Maildir folder or a folder of .eml files."""
        chosen = QFileDialog.getExistingDirectory(self, "Choose a mail folder", self.path_edit.text())
        if chosen:
            self.path_edit.setText(chosen)
            self._path_edited()

    def _path_changed(self, text: str) -> None:
        self.mailbox_error.hide()
        self.blocked.hide()
        self._mapping = None
        self._kind = self._detect(text, look_into_folders=False)
        if text != self._planned_path:
            self._clear_plan_view()
        self.update_actions()

    def _path_edited(self) -> None:
        self._kind = self._detect(self.path_edit.text(), look_into_folders=True)
        self.update_actions()

    def _detect(self, text: str, *, look_into_folders: bool) -> SourceKind | None:
        """Show which kind of source the path is; a folder is looked into only when asked to.

        Typing a path changes it at every key, and looking for .eml files in a
        big folder such as a home folder takes long, so a folder is checked
        when the admin leaves the field or chooses it.
        """
        path = Path(text.strip()).expanduser()
        if not text.strip() or not path.exists():
            self.kind_label.setText("Kind: mbox file, Maildir folder, folder of .eml files or CSV export")
            return None
        if path.is_dir() and not look_into_folders:
            self.kind_label.setText("Kind: a folder, checked when you leave the field or build the plan")
            return None
        try:
            kind = detect_source(path)
        except SourceError as error:
            self.kind_label.setText(f"Kind: not a mail source ({error})")
            return None
        self.kind_label.setText(f"Kind: {describe_source(kind)}")
        return kind

    def edit_mapping(self) -> bool:
        """Show the CSV mapping dialog; returns True when the admin confirmed a mapping."""
        path = Path(self.path_edit.text().strip()).expanduser()
        field_state = self.run.field_state
        key_field = field_state.api_name if field_state is not None else "Message_ID__c"
        try:
            mapping = sync_dialogs.edit_csv_mapping(self, path, key_field)
        except SourceError as error:
            self._show_source_error(error)
            return False
        if mapping is None:
            return False
        self._mapping = mapping
        self.kind_label.setText(f"Kind: {describe_source(SourceKind.CSV)}, mapping: {mapping.label}")
        return True

    def _show_source_error(self, error: BaseException) -> None:
        log.info("mail source rejected: %s", error)
        self.mailbox_error.setText(str(error))
        self.mailbox_error.show()

    # The plan.

    def _clear_plan_view(self) -> None:
        # A plan or outcome shown under another source path would read as that source's.
        self._planned_path = ""
        self._action_positions = None
        self.model.set_rows([])
        self._reset_filter()
        self._label_filter(None)
        self._show_outcome_column(False)
        self.counts.setText(NO_PLAN)
        self.owners.clear()
        self.owners.setToolTip("")
        self.route.clear()
        self.message.clear()

    def build_plan(self) -> None:
        """Read the source and plan the sync, on the worker; a CSV export is mapped first."""
        self.mailbox_error.hide()
        self.blocked.hide()
        self._clear_plan_view()
        self._requested_path = self.path_edit.text()
        if self._kind is SourceKind.CSV and self._mapping is None and not self.edit_mapping():
            return
        path = Path(self._requested_path.strip()).expanduser()
        mapping = self._mapping if self._kind is SourceKind.CSV else None
        self.start_job("plan sync", plan_job, self.run, path, mapping, on_finished=self._show_plan,
                       progress_message="Reading the source…", cancellable=True)

    def job_failed(self, error: BaseException) -> None:
        if isinstance(error, SourceError):
            self._show_source_error(error)
            return
        if isinstance(error, RunInProgress):
            log.info("sync rejected: %s", error)
            self.message.clear()
            self.blocked.setText(str(error))
            self.blocked.show()
            return
        super().job_failed(error)

    def _show_plan(self, plan: Plan) -> None:
        self._plan_applied = False
        self._planned_path = self._requested_path
        self._action_positions = None
        self._reset_filter()
        self.model.set_rows(plan.rows)
        self._show_outcome_column(False)
        self.columns.measure_sources(self.model)
        counts = plan.counts()
        self.counts.setText("Plan: " + describe_counts(counts))
        self._label_filter(counts)
        self.owners.setText(inactive_owner_summary(plan) or "No owner in this plan is an inactive user.")
        self.owners.setToolTip(plain_tooltip("\n".join(inactive_owner_lines(plan))))
        self._show_route()
        self.update_actions()

    def _show_route(self) -> None:
        plan = self.run.plan
        if plan is None or not self._planned_path:
            self.route.clear()
            return
        sending, _bulk = sends_by_bulk(plan, self.threshold.value())
        self.route.setText(describe_route(sending, self.threshold.value()))

    def _label_filter(self, counts: dict[str, int] | None) -> None:
        """Name each action of the filter with its row count, or alone while no plan is shown."""
        for position in range(1, self.filter_box.count()):
            action = str(self.filter_box.itemData(position))
            text = action if counts is None else f"{action} ({counts.get(action, 0):,})"
            self.filter_box.setItemText(position, text)

    def _filter_changed(self) -> None:
        plan = self.run.plan
        chosen = self.filter_box.currentData()
        if plan is None or not chosen:
            self.model.set_filter(None)
            return
        if self._action_positions is None:
            self.start_job("sort plan rows", index_actions, plan.rows, on_finished=self._positions_read,
                           on_failed=self._positions_failed,
                           progress_message="Sorting the plan rows by action…", cancellable=True)
            return
        self.model.set_filter(self._action_positions[Action(chosen)])

    def _positions_read(self, positions: dict[Action, Any]) -> None:
        self._action_positions = positions
        self._filter_changed()

    def _positions_failed(self, error: BaseException) -> None:
        # The table still shows every row, so the filter goes back to "All actions" too.
        self._reset_filter()
        self.job_failed(error)

    def _reset_filter(self) -> None:
        self.filter_box.blockSignals(True)
        self.filter_box.setCurrentIndex(0)
        self.filter_box.blockSignals(False)
        self.model.set_filter(None)

    def export_plan(self) -> None:
        """Write the shown plan, every row, to a CSV file the admin chooses."""
        plan = self.run.plan
        if plan is None:
            return
        documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        folder = Path(documents) if documents else Path.home()
        suggested = folder / export_file_name(self._planned_path or self.path_edit.text(), date.today())
        chosen, _filter = QFileDialog.getSaveFileName(
            self, "Export the plan", str(suggested), "CSV files (*.csv)")
        if not chosen:
            return
        path = Path(chosen)
        self.start_job("export plan", export_job, path, plan,
                       on_finished=lambda written: self._plan_exported(path, written),
                       progress_message="Writing the plan…")

    def _plan_exported(self, path: Path, written: int) -> None:
        self.message.show_message(f"Wrote {counted(written, 'plan row')} to {path}.")

    def _threshold_changed(self, value: int) -> None:
        _bulk_thresholds[self.context] = value
        self._show_route()

    # Apply, resume and retry.

    def apply(self) -> None:
        """Confirm the numbers of Tasks to create and update, then apply on the worker."""
        plan = self.run.plan
        if plan is None:
            return
        counts = plan.counts()
        creates, updates = counts[Action.CREATE.value], counts[Action.UPDATE.value]
        settings = SyncSettings(bulk_threshold=self.threshold.value())
        sending = creates + updates
        route = ("• through Bulk API 2.0" if sending >= settings.bulk_threshold
                 else "• through sObject Collections, 200 records a call")
        lines = [
            f"+ create {counted(creates, 'Task')}",
            f"~ update {counted(updates, 'Task')}",
            f"  not sent: {counted(counts[Action.CONFLICT.value], 'conflict')}, "
            f"{counts[Action.INVALID.value]:,} invalid, {counts[Action.EXCLUDED.value]:,} excluded",
            f"{route} ({counted(sending, 'row')}, Bulk API from {settings.bulk_threshold:,})",
        ]
        lines += [f"~ owner {owner.replaced_by} for the {counted(owner.rows, 'row')} of inactive user "
                  f"{owner.username}" for owner in plan.inactive_owners]
        question = (f"Create {counted(creates, 'Task')} and update {counted(updates, 'Task')} "
                    f"in the org at {self.run.profile.instance_url}?")
        if not dialogs.confirm(self, "Apply the sync plan", question, lines):
            return
        # A failed apply leaves no result, so outcomes of an earlier apply must not show as this one's.
        self.run.sync_result = None
        self.blocked.hide()
        self.start_job("apply sync", apply_job, self.run, settings, on_finished=self._show_outcomes,
                       progress_message="Upserting Tasks…", cancellable=True)

    def _show_outcomes(self, result: StepResult) -> None:
        if result.details.get("error_code") == RUN_IN_PROGRESS:
            self._show_step_result(result)
            return
        self._plan_applied = True
        outcome = self.run.sync_result
        plan = self.run.plan
        if outcome is not None and plan is not None and plan.run_id is not None:
            journal, run_id = sync_journal(self.run), plan.run_id
            self.model.set_outcomes(lambda start, stop: journal.item_outcomes(run_id, start, stop))
            self._show_outcome_column(True)
            if outcome.stopped_because:
                written = f"{counted(outcome.created, 'Task')} created, {outcome.updated:,} updated"
                if outcome.in_doubt_count:
                    written += f", {outcome.in_doubt_count:,} in doubt"
                self.counts.setText(f"Stopped ({outcome.stopped_because}): {written}. "
                                    "Resume sends the rest; the Outcome column shows where each row is.")
            else:
                self.counts.setText(f"Applied plan: {describe_counts(plan.counts())}. "
                                    "The Outcome column shows where each row is now.")
        self._show_step_result(result)

    def _show_step_result(self, result: StepResult) -> None:
        if result.details.get("error_code") == RUN_IN_PROGRESS:
            # Another sync has locked the org. Its sentence names who and since when; nothing else applies.
            log.info("sync rejected: %s", result.reason)
            self.message.clear()
            self.blocked.setText(result.reason)
            self.blocked.show()
        else:
            self.message.show_result(result)
        self.record_changed()
        self.update_actions()
        plan = self.run.plan
        self.refresh_overview(queue_run_id=plan.run_id if plan is not None else None)

    def _show_resumed(self, result: StepResult) -> None:
        """Show the plan of the run a resume or retry sent, with the outcome of each row sent."""
        plan = self.run.plan
        summary = self._sent_run
        if result.details.get("error_code") != RUN_IN_PROGRESS and plan is not None and summary is not None:
            if self.path_edit.text() != summary.source:
                # The run may come from another source than the one shown; its plan is shown under its path.
                self.path_edit.blockSignals(True)
                self.path_edit.setText(summary.source)
                self.path_edit.blockSignals(False)
                self._mapping = None
                self._kind = self._detect(summary.source, look_into_folders=False)
            self._requested_path = summary.source
            self._show_plan(plan)
            self._show_outcomes(result)
            return
        self._show_step_result(result)

    def resume(self, run_id: str) -> None:
        """Confirm, then continue the unfinished run ``run_id`` where it stopped."""
        summary = next((run for run in self.history_panel.runs() if run.run_id == run_id), None)
        left = summary.work_left if summary is not None else 0
        name = describe_run(summary) if summary is not None else f"the sync run {run_id}"
        lines = [f"+ send the {plural(left, 'item')} not written yet (each key is looked up first)"]
        if not dialogs.confirm(self, "Resume the sync", f"Resume {name}?", lines, "Resume"):
            return
        self.resume_offer.hide()
        self.blocked.hide()
        self._sent_run = summary
        self.start_job("resume sync", resume_job, self.run, run_id, on_finished=self._show_resumed,
                       progress_message="Resuming the sync…", cancellable=True)

    def _resume_offered(self) -> None:
        if self._offered_run_id is not None:
            self.resume(self._offered_run_id)

    def retry_queue(self, run_id: str) -> None:
        """Confirm, then send the queued items of ``run_id`` again now."""
        count = self.queue_panel.model.rowCount()
        lines = [f"+ send {counted(count, 'queued item')} again (creates and updates as planned)"]
        if not dialogs.confirm(self, "Retry the backfill queue", f"Send {counted(count, 'queued item')} now?",
                               lines, "Retry now"):
            return
        self.blocked.hide()
        self._sent_run = next((run for run in self.history_panel.runs() if run.run_id == run_id), None)
        self.start_job("retry backfill", retry_job, self.run, run_id, on_finished=self._show_resumed,
                       progress_message="Retrying the queued items…", cancellable=True)

    # History and queue.

    def refresh_overview(self, *, offer_resume: bool = False, queue_run_id: str | None = None) -> None:
        """Read the run history and the backfill queue of the org again from the journal.

        The read keeps the message line, so the result of the apply or resume
        before it stays on screen.
        """
        try:
            overview = read_overview(self.run, queue_run_id)
        except (OSError, sqlite3.Error, LookupError) as error:
            reason, _details = explain_error(error)
            log.warning("reading the sync history failed: %s", reason, exc_info=error)
            self.history_panel.summary.setText(f"Could not read the run history: {reason}")
            return
        self._show_overview(overview, offer_resume)

    def _show_overview(self, overview: SyncOverview, offer_resume: bool) -> None:
        plan = self.run.plan
        self.history_panel.set_runs(overview.runs, plan.run_id if plan is not None else None)
        self.queue_panel.set_queue(overview.queue_run, overview.queued_count, overview.read_queue)
        queued = overview.queued_count
        self.tabs.setTabText(self.tabs.indexOf(self.queue_panel),
                             f"Backfill queue ({queued:,})" if queued else "Backfill queue")
        unfinished = overview.unfinished
        if unfinished is None or not is_unfinished(unfinished):
            self._offered_run_id = None
            self.resume_offer.hide()
        elif offer_resume or self.resume_offer.isVisible():
            self._offered_run_id = unfinished.run_id
            self.resume_text.setText(resume_sentence(unfinished))
            self.resume_offer.show()
        self.update_actions()

    def open_folder(self, folder: Path) -> None:
        """Open a run's result folder in the system's file manager."""
        self._clear_open_failure()
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.message.show_message(f"Could not open {folder}: open it from your file manager.")
            self._open_failed = True

    def _clear_open_failure(self) -> None:
        # The message about a folder that did not open is stale once the admin does anything else.
        if self._open_failed and not self.busy:
            self.message.clear()
        self._open_failed = False

    def _history_selection_changed(self) -> None:
        self._clear_open_failure()
        self.update_actions()

    def _tab_changed(self, _index: int) -> None:
        self._clear_open_failure()
        if self.busy:
            return
        if self.run.connection is not None and self.tabs.currentWidget() in (self.history_panel,
                                                                               self.queue_panel):
            self.refresh_overview()

    def delete_history_run(self, run_id: str) -> None:
        """Confirm, then delete a run from the history; its result files stay on disk."""
        summary = next((run for run in self.history_panel.runs() if run.run_id == run_id), None)
        name = describe_run(summary) if summary is not None else f"the sync run {run_id}"
        lines = [f"- remove {name} from the run history of this computer",
                 "• the org and the run's result files stay as they are"]
        question = f"Delete {name} from the history?"
        if not dialogs.confirm(self, "Delete the run", question, lines, "Delete run"):
            return
        try:
            delete_run(self.run, run_id)
        except (OSError, sqlite3.Error, LookupError) as error:
            reason, _details = explain_error(error)
            log.warning("deleting sync run %s failed: %s", run_id, reason, exc_info=error)
            self.message.show_message(f"Could not delete {name}: {reason}", FAILED_COLOR)
            return
        plan = self.run.plan
        if plan is not None and plan.run_id == run_id:
            # The plan shown was read from the deleted run, so it can no longer be applied.
            self.run.plan = None
            self._clear_plan_view()
        self.refresh_overview()
        self.message.show_message(f"Deleted {name} from the history.")

    # The drill.

    def run_drill(self) -> None:
        """Confirm, then run the cadence-tool drill on the practice org."""
        org = self.context.practice_org
        if org is None or not self._on_practice_org():
            return
        lines = [
            "+ create Tasks as the cadence tool's user, before, during and after a local sync",
            "~ update those Tasks with the local sync, keyed on the Message-ID",
            "• on the practice org only; it changes no other org",
        ]
        question = f"Run the cadence-tool drill with the messages of {self.context.mailbox.name}?"
        if not dialogs.confirm(self, "Run the cadence-tool drill", question, lines, "Run drill"):
            return
        admin = self.run.require_connection()

        def connection_for_user(username: str) -> OrgConnection:
            return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)

        self.start_job("cadence drill", run_cadence_drill, connection_for_user, admin, self.context.mailbox,
                       on_finished=lambda report: self._show_drill(report, lines),
                       progress_message="Running the cadence-tool drill…", cancellable=True)

    def _show_drill(self, report: DrillReport, lines: list[str]) -> None:
        self.drill_panel.show_report(report)
        verdict = "passed" if report.passed else "failed"
        record_change(self.run, Step.LOCAL_SYNC,
                      f"Ran the cadence-tool drill on the practice org with {self.context.mailbox.name}: "
                      f"{verdict}.", lines)
        self.update_actions()
