"""Conflicts: scan the org for Tasks that share a Message-ID key and compare them side by side."""

from __future__ import annotations

import threading

from PySide6.QtCore import QItemSelection, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui.models import DuplicateGroupsModel, RecordComparisonModel
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import ElideMiddleDelegate, compact_rows, note

# Starting widths in pixels; Reason, the last column, takes the rest of the table's width.
GROUP_COLUMN_WIDTHS = {
    DuplicateGroupsModel.KIND: 90,
    DuplicateGroupsModel.KEY: 240,
    DuplicateGroupsModel.RECORDS: 50,
}
# A group's reason is one or two sentences, so its rows hold two wrapped lines.
GROUP_ROW_LINES = 2


def scan_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Read every keyed Task, deleted and archived included, and group them."""
    return enablement.scan_conflicts(run, progress=progress, cancel=cancel)


def scan_status(result: StepResult) -> str:
    """Return the short status beside Scan; the message line below gives the reason and the count."""
    if result.status is StepStatus.FAILED:
        return "The scan did not finish."
    return "Scan finished."


class ConflictsPage(StepPage):
    """Groups table above, the selected group's Tasks side by side below."""

    step = Step.CONFLICTS

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Tasks that share a Message-ID key are duplicates of one e-mail, and each one blocks "
            "a Unique field or makes upserts fail. Salesforce cannot merge Tasks, and this version "
            "does not resolve groups: resolving them (keep one Task, delete the others, with undo) "
            "comes in a later version. For now, review the groups here and resolve them in "
            "Salesforce."
        ))
        self.scan_button = QPushButton("Scan")
        self.scan_button.clicked.connect(self.scan)
        self.summary = QLabel("Not scanned yet.")
        # A long status wraps, so it never widens the window.
        self.summary.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.scan_button)
        row.addWidget(self.summary, 1)
        self.body.addLayout(row)

        self.groups_model = DuplicateGroupsModel()
        self.groups = self._table(self.groups_model)
        self.groups.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.groups.horizontalHeader().setStretchLastSection(True)
        for column, width in GROUP_COLUMN_WIDTHS.items():
            self.groups.setColumnWidth(column, width)
        self.key_delegate = ElideMiddleDelegate(self.groups)
        self.groups.setItemDelegateForColumn(DuplicateGroupsModel.KEY, self.key_delegate)
        self.groups.setWordWrap(True)
        self.groups.verticalHeader().setDefaultSectionSize(
            self.groups.fontMetrics().lineSpacing() * GROUP_ROW_LINES + 8)
        self.groups.selectionModel().selectionChanged.connect(self._group_selected)

        self.records_model = RecordComparisonModel()
        self.records = self._table(self.records_model)
        self.records.verticalHeader().show()
        self.records.horizontalHeader().setDefaultSectionSize(280)
        self.records.horizontalHeader().setStretchLastSection(True)
        self.difference = QLabel()

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.groups)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.difference)
        lower_layout.addWidget(self.records, 1)
        splitter.addWidget(lower)
        splitter.setSizes([200, 320])
        self.body.addWidget(splitter, 1)

    def _table(self, model: DuplicateGroupsModel | RecordComparisonModel) -> QTableView:
        table = QTableView()
        table.setModel(model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        compact_rows(table)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        return table

    def update_actions(self) -> None:
        self.scan_button.setEnabled(not self.busy)

    def scan(self) -> None:
        """Scan the org's Tasks on the worker."""
        self.start_job("the conflict scan", scan_job, self.run, on_finished=self._show_groups,
                       progress_message="Reading Tasks…", cancellable=True)

    def _show_groups(self, result: StepResult) -> None:
        self.groups_model.set_groups(self.run.groups)
        self.records_model.set_records([])
        self.difference.clear()
        # The message line below gives the reason, so this line shows only how far the scan got.
        self.summary.setText(scan_status(result))
        self.message.show_result(result)
        self.record_changed()
        if self.run.groups:
            self.groups.selectRow(0)

    def _group_selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if not indexes:
            return
        group = self.groups_model.group_at(indexes[0].row())
        self.records_model.set_records(group.records)
        differing = self.records_model.differing_fields()
        if differing:
            self.difference.setText("≠ marks fields that differ: " + ", ".join(differing) + ".")
        else:
            self.difference.setText("These Tasks hold the same values in every field shown.")
