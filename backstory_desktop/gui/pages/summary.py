"""Summary: every step's status and reason, what was changed in the org, and an HTML export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import STEP_TITLES, Step
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.report import summary_html, write_report
from backstory_desktop.gui.widgets import STATUS_MARKS, note, status_color

# The file name Export HTML offers first.
REPORT_FILE_NAME = "backstory-enablement-report.html"


class SummaryPage(StepPage):
    """The checklist as a table, the list of changes, and Export HTML."""

    step = Step.SUMMARY

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.overall = note("")
        self.body.addWidget(self.overall)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(("Step", "Status", "Reason"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.body.addWidget(self.table, 2)

        self.body.addWidget(QLabel("Changes made in the org:"))
        self.changes = QListWidget()
        self.changes.setWordWrap(True)
        self.body.addWidget(self.changes, 1)

        self.export_button = QPushButton("Export HTML…")
        self.export_button.clicked.connect(self.export)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.export_button)
        self.body.addLayout(row)

    def enter(self) -> None:
        # Closing the checklist reads results already in memory, so it runs on the GUI thread.
        result = enablement.summarise(self.run)
        self.overall.setText(result.reason)
        self._fill_table()
        self.changes.clear()
        self.changes.addItems(self.context.changes or ["None."])
        self.record_changed()
        super().enter()

    def _fill_table(self) -> None:
        steps = [step for step in Step if step is not Step.SUMMARY]
        self.table.setRowCount(len(steps))
        for row, step in enumerate(steps):
            result = self.run.checklist.results.get(step)
            status = result.status if result else None
            status_item = QTableWidgetItem(STATUS_MARKS[status])
            status_item.setForeground(status_color(status))
            reason_item = QTableWidgetItem(result.reason if result else "")
            reason_item.setToolTip(reason_item.text())
            self.table.setItem(row, 0, QTableWidgetItem(STEP_TITLES[step]))
            self.table.setItem(row, 1, status_item)
            self.table.setItem(row, 2, reason_item)
        self.table.resizeRowsToContents()

    def update_actions(self) -> None:
        self.export_button.setEnabled(not self.busy)

    def export(self) -> None:
        """Ask where to save, then write the report on the worker."""
        chosen, _filter = QFileDialog.getSaveFileName(
            self, "Export the report", str(Path.home() / REPORT_FILE_NAME), "HTML files (*.html)")
        if chosen:
            self.export_to(Path(chosen))

    def export_to(self, path: Path) -> None:
        """Write the report to ``path`` on the worker."""
        text = summary_html(self.run, self.context.changes)
        self.start_job("export report", write_report, path, text, on_finished=self._exported,
                       progress_message="Writing the report…")

    def _exported(self, path: Path) -> None:
        self.message.show_message(f"Report written to {path}.")
