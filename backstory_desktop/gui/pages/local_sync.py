"""Local sync: read an mbox, show the dry-run plan, and apply it only when the admin confirms."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.core.plan import Action, Plan
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.models import PlanTableModel
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import FAILED_COLOR, ElideMiddleDelegate, compact_rows, note, plural
from backstory_desktop.sources.mbox import MailboxError

log = logging.getLogger(__name__)

# Starting widths in pixels; Reason, the last column, takes the rest of the table's width.
COLUMN_WIDTHS = {
    PlanTableModel.ACTION: 70,
    PlanTableModel.OUTCOME: 200,
    PlanTableModel.KEY: 220,
    PlanTableModel.SUBJECT: 150,
}
# Existing Tasks is as wide as one 18-character record Id, plus the cell's margins.
RECORD_ID_SAMPLE = "00T000000000000AAA"
CELL_MARGIN = 16


NO_PLAN = "No plan yet: choose a mailbox and build the plan."


def read_and_plan_job(
    run: EnablementRun, path: Path, *, progress: ProgressCallback, cancel: threading.Event
) -> Plan:
    """Read the mailbox and build the dry-run plan; nothing is written to the org."""
    reading = enablement.read_mailbox(path, progress=progress, cancel=cancel)
    check_cancel(cancel)
    return enablement.plan_sync(run, reading, progress=progress, cancel=cancel)


def apply_plan_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Upsert the plan's creates and updates."""
    return enablement.apply_sync(run, progress=progress, cancel=cancel)


def describe_counts(counts: dict[str, int]) -> str:
    """Describe the plan's counts per action in one line."""
    return " · ".join(f"{counts.get(action.value, 0)} {action.value}" for action in Action)


class LocalSyncPage(StepPage):
    """Mailbox picker, plan counts and rows, and Apply with a confirmation."""

    step = Step.LOCAL_SYNC

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Sync a mailbox the way Backstory would: each message becomes a Task upserted on its "
            "Message-ID. Build the plan first; nothing is written until you apply it."
        ))
        self.path_edit = QLineEdit(str(context.mailbox))
        self.path_edit.textChanged.connect(self._path_changed)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self.choose_mailbox)
        self.plan_button = QPushButton("Build plan")
        self.plan_button.clicked.connect(self.build_plan)
        self.apply_button = QPushButton("Apply plan…")
        self.apply_button.clicked.connect(self.apply)
        picker = QHBoxLayout()
        picker.addWidget(QLabel("Mailbox (mbox):"))
        picker.addWidget(self.path_edit, 1)
        picker.addWidget(self.choose_button)
        picker.addWidget(self.plan_button)
        picker.addWidget(self.apply_button)
        self.body.addLayout(picker)
        self.mailbox_error = QLabel()
        self.mailbox_error.setWordWrap(True)
        self.mailbox_error.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.mailbox_error.hide()
        self.body.addWidget(self.mailbox_error)

        self.counts = QLabel(NO_PLAN)
        self.body.addWidget(self.counts)
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
        for column, width in COLUMN_WIDTHS.items():
            self.table.setColumnWidth(column, width)
        self.table.setColumnWidth(PlanTableModel.EXISTING,
                                  self.table.fontMetrics().horizontalAdvance(RECORD_ID_SAMPLE) + CELL_MARGIN)
        self.key_delegate = ElideMiddleDelegate(self.table)
        self.table.setItemDelegateForColumn(PlanTableModel.KEY, self.key_delegate)
        self._show_outcome_column(False)
        self.body.addWidget(self.table, 1)
        self._plan_applied = False
        # The path text the shown plan was built from; Apply waits for a new plan after an edit.
        self._planned_path = ""
        self._requested_path = ""

    def _show_outcome_column(self, applied: bool) -> None:
        # After an apply, Outcome takes the place of Existing Tasks so that Reason keeps room at
        # the default window size. Outcome names the Task each sent row created or updated, and
        # its tooltip names the existing Tasks of a row that was not sent.
        self.table.setColumnHidden(PlanTableModel.OUTCOME, not applied)
        self.table.setColumnHidden(PlanTableModel.EXISTING, applied)

    def update_actions(self) -> None:
        has_plan = self.run.plan is not None and self.model.rowCount() > 0
        plan_is_current = self.path_edit.text() == self._planned_path
        self.path_edit.setEnabled(not self.busy)
        self.choose_button.setEnabled(not self.busy)
        self.plan_button.setEnabled(not self.busy and bool(self.path_edit.text().strip()))
        self.apply_button.setEnabled(
            not self.busy and has_plan and plan_is_current and not self._plan_applied)

    def choose_mailbox(self) -> None:
        """Let the admin pick an mbox file."""
        chosen, _filter = QFileDialog.getOpenFileName(
            self, "Choose a mailbox", str(Path(self.path_edit.text()).parent),
            "Mailboxes (*.mbox *.mbx);;All files (*)")
        if chosen:
            self.path_edit.setText(chosen)

    def _path_changed(self, text: str) -> None:
        self.mailbox_error.hide()
        if text != self._planned_path:
            self._clear_plan_view()
        self.update_actions()

    def _clear_plan_view(self) -> None:
        # A plan or outcome shown under another mailbox path would read as that mailbox's.
        self._planned_path = ""
        self.model.set_rows([])
        self._show_outcome_column(False)
        self.counts.setText(NO_PLAN)
        self.message.clear()

    def build_plan(self) -> None:
        """Read the mailbox and plan the sync, on the worker."""
        self.mailbox_error.hide()
        self._clear_plan_view()
        self._requested_path = self.path_edit.text()
        path = Path(self._requested_path.strip()).expanduser()
        self.start_job("plan sync", read_and_plan_job, self.run, path, on_finished=self._show_plan,
                       progress_message="Reading the mailbox…", cancellable=True)

    def job_failed(self, error: BaseException) -> None:
        if isinstance(error, MailboxError):
            log.info("mailbox rejected: %s", error)
            self.mailbox_error.setText(str(error))
            self.mailbox_error.show()
            return
        super().job_failed(error)

    def _show_plan(self, plan: Plan) -> None:
        self._plan_applied = False
        self._planned_path = self._requested_path
        self.model.set_rows(plan.rows)
        self._show_outcome_column(False)
        self.counts.setText("Plan: " + describe_counts(plan.counts()))
        self.update_actions()

    def apply(self) -> None:
        """Confirm the numbers of Tasks to create and update, then apply on the worker."""
        plan = self.run.plan
        if plan is None:
            return
        counts = plan.counts()
        creates, updates = counts[Action.CREATE.value], counts[Action.UPDATE.value]
        lines = [
            f"+ create {plural(creates, 'Task')}",
            f"~ update {plural(updates, 'Task')}",
            f"  not sent: {plural(counts[Action.CONFLICT.value], 'conflict')}, "
            f"{counts[Action.INVALID.value]} invalid, {counts[Action.EXCLUDED.value]} excluded",
        ]
        question = (f"Create {plural(creates, 'Task')} and update {plural(updates, 'Task')} "
                    f"in the org at {self.run.profile.instance_url}?")
        if not dialogs.confirm(self, "Apply the sync plan", question, lines):
            return
        # A failed apply leaves no result, so outcomes of an earlier apply must not show as this one's.
        self.run.sync_result = None
        self.start_job("apply sync", apply_plan_job, self.run, on_finished=self._show_outcomes,
                       progress_message="Upserting Tasks…", cancellable=True)

    def _show_outcomes(self, result: StepResult) -> None:
        self._plan_applied = True
        outcome = self.run.sync_result
        plan = self.run.plan
        if outcome is not None:
            self.model.set_outcomes(outcome.outcomes)
            self._show_outcome_column(True)
            if plan is not None:
                self.counts.setText(f"Applied plan: {describe_counts(plan.counts())}. "
                                    "The Outcome column shows what each sent row did.")
        self.message.show_result(result)
        self.record_changed()
        self.update_actions()
