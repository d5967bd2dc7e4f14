"""Local sync: pick a mail source or CSV export, show the dry-run plan, apply it when the admin confirms.

Beside the plan, tabs show the backfill queue of the run, the run history of
the org with Resume and the result files, and on the practice org the
cadence-tool drill. Every run is journalled, so a sync that stopped, or a
computer that restarted, is offered for resuming when the page opens.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from weakref import WeakKeyDictionary

from PySide6.QtCore import QStandardPaths, Qt
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
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.plan import Action, Plan, ReasonCode
from backstory_desktop.enablement.sync import sync_journal
from backstory_desktop.gui import dialogs, sync_dialogs
from backstory_desktop.gui.models import PlanIndex, PlanTableModel, index_plan_rows
from backstory_desktop.gui.pages.base import WizardContext
from backstory_desktop.gui.pages.local_sync_runs import RUN_IN_PROGRESS, SyncRunActions
from backstory_desktop.gui.pages.plan_table import PlanColumns
from backstory_desktop.gui.pages.plan_text import (
    REASON_LABELS,
    apply_confirmation,
    as_sentence,
    counted,
    describe_counts,
    describe_route,
    export_file_name,
    inactive_owner_lines,
    inactive_owner_summary,
    sends_by_bulk,
    stopped_apply_text,
    stored_spelling_advice,
)
from backstory_desktop.gui.pages.sync_jobs import (
    apply_job,
    export_job,
    plan_job,
)
from backstory_desktop.gui.pages.sync_panels import (
    DrillPanel,
    HistoryPanel,
    QueuePanel,
)
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    ElideMiddleDelegate,
    compact_rows,
    note,
    plain_label,
    plain_tooltip,
)
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.csv_export import CsvMapping
from backstory_desktop.sources.registry import SourceKind, describe_source, detect_source
from backstory_desktop.store.journal import RunSummary
from backstory_desktop.sync.settings import SyncSettings

log = logging.getLogger(__name__)

# The spin box's largest value: a threshold above the size of any plan sends every plan through Collections.
MAX_BULK_THRESHOLD = 100_000_000
ALL_ACTIONS = "All actions"
# The filter's item data of a reason code starts with this, so that an action keeps its plain value.
REASON_FILTER_PREFIX = "reason:"
WARNING_COLOR = "#8a5a00"

NO_PLAN = "No plan yet: choose a mail source and build the plan."
NO_PLAN_OF_SOURCE = "No plan yet: click Build plan to read this source and plan the sync."
SOURCE_FILTER = ("Mail sources and exports (*.mbox *.mbx *.csv);;mbox files (*.mbox *.mbx);;"
                 "CSV files (*.csv);;All files (*)")

# The Bulk API threshold the admin set, per window, so it lasts until the window closes.
_bulk_thresholds: WeakKeyDictionary[WizardContext, int] = WeakKeyDictionary()


class LocalSyncPage(SyncRunActions):
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
        self._row_index: PlanIndex | None = None
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
        # Shown only when some updates keep the key spelling their Task holds.
        self.spelling = plain_label()
        self.spelling.setWordWrap(True)
        self.spelling.setStyleSheet(f"color: {WARNING_COLOR};")
        self.spelling.hide()

        self.filter_box = QComboBox()
        self.filter_box.setToolTip("Show the rows of one action, or of one reason")
        self._label_filter(None, None)
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
        # A message or row shows as its number. A file of a Maildir or .eml folder elides in the middle,
        # so the cell keeps the folder it is in and the end of its file name.
        self.table.setItemDelegateForColumn(PlanTableModel.SOURCE, self.key_delegate)
        self._show_outcome_column(False)

        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.counts)
        layout.addWidget(self.spelling)
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
        self.drill_panel.tool_user_box.setEnabled(idle)

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
            self._show_source_error(error)
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
        text = as_sentence(str(error))
        if "choose" not in text.lower():
            text += " Choose another file or folder."
        self.mailbox_error.setText(text)
        self.mailbox_error.show()
        self.kind_label.setText("Kind: not a mail source")
        self.counts.setText(NO_PLAN)

    # The plan.

    def _clear_plan_view(self) -> None:
        # A plan or outcome shown under another source path would read as that source's.
        self._planned_path = ""
        self._row_index = None
        self.model.set_rows([])
        self._reset_filter()
        self._label_filter(None, None)
        self._show_outcome_column(False)
        source_usable = bool(self.path_edit.text().strip()) and self.mailbox_error.isHidden()
        self.counts.setText(NO_PLAN_OF_SOURCE if source_usable else NO_PLAN)
        self.spelling.clear()
        self.spelling.hide()
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
        self.start_job("the reading of the source", plan_job, self.run, path, mapping,
                       on_finished=self._show_plan, progress_message="Reading the source…", cancellable=True)

    def job_failed(self, error: BaseException) -> None:
        if isinstance(error, SourceError):
            self._show_source_error(error)
            return
        super().job_failed(error)

    def _show_plan(self, plan: Plan) -> None:
        self._plan_applied = False
        self._planned_path = self._requested_path
        self._row_index = None
        self._reset_filter()
        self.model.set_rows(plan.rows)
        self._show_outcome_column(False)
        self.columns.measure_sources(self.model)
        counts = plan.counts()
        self.counts.setText("Plan: " + describe_counts(counts))
        reason_counts = plan.reason_counts()
        self._label_filter(counts, reason_counts)
        advice = stored_spelling_advice(reason_counts)
        self.spelling.setText(advice)
        self.spelling.setVisible(bool(advice))
        self.owners.setText(inactive_owner_summary(plan) or "No owner in this plan is an inactive user.")
        self.owners.setToolTip(plain_tooltip("\n".join(inactive_owner_lines(plan))))
        self._show_route()
        self.update_actions()

    def _show_route(self) -> None:
        plan = self.run.plan
        if plan is None or not self._planned_path or self._plan_applied:
            # After an apply the counts line shows what was sent, and a resume or retry reads the threshold.
            self.route.clear()
            return
        sending, _bulk = sends_by_bulk(plan, self.threshold.value())
        self.route.setText(describe_route(sending, self.threshold.value()))

    def _label_filter(self, counts: dict[str, int] | None, reason_counts: dict[str, int] | None) -> None:
        """List the actions and reasons of the shown plan's rows with their counts, or all of them, alone.

        An action or reason no row of the plan has is left out, so every choice shows some rows.
        """
        self.filter_box.blockSignals(True)
        try:
            self.filter_box.clear()
            self.filter_box.addItem(ALL_ACTIONS, "")
            for action in Action:
                self._add_filter_item(action.value, action.value, counts, action.value)
            if reason_counts is None or any(reason_counts.values()):
                self.filter_box.insertSeparator(self.filter_box.count())
            for code in ReasonCode:
                self._add_filter_item(REASON_LABELS[code], REASON_FILTER_PREFIX + code.value,
                                      reason_counts, code.value)
            self.filter_box.setCurrentIndex(0)
        finally:
            self.filter_box.blockSignals(False)

    def _add_filter_item(self, label: str, data: str, counts: dict[str, int] | None, name: str) -> None:
        if counts is None:
            self.filter_box.addItem(label, data)
        elif counts.get(name, 0):
            self.filter_box.addItem(f"{label} ({counts[name]:,})", data)

    def _filter_changed(self) -> None:
        plan = self.run.plan
        chosen = str(self.filter_box.currentData() or "")
        if plan is None or not chosen:
            self.model.set_filter(None)
            return
        if self._row_index is None:
            self.start_job("the plan row sort", index_plan_rows, plan.rows, on_finished=self._positions_read,
                           on_failed=self._positions_failed,
                           progress_message="Sorting the plan rows by action and reason…", cancellable=True)
            return
        if chosen.startswith(REASON_FILTER_PREFIX):
            self.model.set_filter(self._row_index.reasons[ReasonCode(chosen.removeprefix(REASON_FILTER_PREFIX))])
        else:
            self.model.set_filter(self._row_index.actions[Action(chosen)])

    def _positions_read(self, index: PlanIndex) -> None:
        self._row_index = index
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
        self.start_job("the plan export", export_job, path, plan,
                       on_finished=lambda written: self._plan_exported(path, written),
                       progress_message="Writing the plan…")

    def _plan_exported(self, path: Path, written: int) -> None:
        self.message.show_message(f"Wrote {counted(written, 'plan row')} to {path}.")

    def _settings(self) -> SyncSettings:
        """Return the sync settings an apply, resume or retry started now uses: the Bulk threshold shown."""
        return SyncSettings(bulk_threshold=self.threshold.value())

    def _threshold_changed(self, value: int) -> None:
        _bulk_thresholds[self.context] = value
        self._show_route()

    # Apply, resume and retry.

    def apply(self) -> None:
        """Confirm the numbers of Tasks to create and update, then apply on the worker."""
        plan = self.run.plan
        if plan is None:
            return
        settings = self._settings()
        question, lines = apply_confirmation(plan, settings, self.run.profile.instance_url)
        if not dialogs.confirm(self, "Apply the sync plan", question, lines):
            return
        # A failed apply leaves no result, so outcomes of an earlier apply must not show as this one's.
        self.run.sync_result = None
        self.blocked.hide()
        self.start_job("the sync", apply_job, self.run, settings, on_finished=self._show_outcomes,
                       progress_message="Upserting Tasks…", cancellable=True)

    def _show_outcomes(self, result: StepResult) -> None:
        if result.details.get("error_code") == RUN_IN_PROGRESS:
            self._show_step_result(result)
            return
        self._plan_applied = True
        self._show_route()
        outcome = self.run.sync_result
        plan = self.run.plan
        if outcome is not None and plan is not None and plan.run_id is not None:
            journal, run_id = sync_journal(self.run), plan.run_id
            self.model.set_outcomes(lambda start, stop: journal.item_outcomes(run_id, start, stop))
            self._show_outcome_column(True)
            if outcome.stopped_because:
                self.counts.setText(stopped_apply_text(outcome.stopped_because, outcome.created,
                                                       outcome.updated, outcome.in_doubt_count))
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
