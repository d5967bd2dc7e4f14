"""Summary: every check with its result, the changes made in the org, what remains, and an HTML export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
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
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import STEP_TITLES, Step, StepStatus
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import STATUS_MARKS, note, status_color
from backstory_desktop.report import readable_time, report_html, write_report

# The file name Export HTML offers first.
REPORT_FILE_NAME = "backstory-enablement-report.html"
NO_CHANGES = "None: nothing was changed in the org."
NOTHING_REMAINS = "Nothing: the steps found no work left for you."


class SummaryPage(StepPage):
    """The checks as a table, the change log with time and user, what remains, and Export HTML."""

    step = Step.SUMMARY

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.overall = note("")
        self.body.addWidget(self.overall)

        self.table = _table(("Step", "Status", "Reason"))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)

        self.changes = _table(("When (UTC)", "By", "What"))
        header = self.changes.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.no_changes = note(NO_CHANGES)

        self.remains = QListWidget()
        self.remains.setWordWrap(True)
        self.remains.setSpacing(3)
        self.remains.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

        self.checks_section = _section("Checks", self.table)
        self.changes_section = _section("Changes made in the org", self.changes, self.no_changes)
        self.remains_section = _section("What remains for you to do", self.remains)
        self.body.addWidget(self.checks_section, 3)
        self.body.addWidget(self.changes_section, 2)
        self.body.addWidget(self.remains_section, 2)

        self.export_button = QPushButton("Export HTML…")
        self.export_button.setToolTip("Save the checks with their evidence, the changes and what "
                                      "remains as one HTML page, for a change ticket.")
        self.export_button.clicked.connect(self.export)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.export_button)
        self.body.addLayout(row)

    def enter(self) -> None:
        # Closing the checklist reads results already in memory, so it runs on the GUI thread.
        result = enablement.summarise(self.run)
        not_passed = result.details.get("not_passed", [])
        overall = ("Steps not passed: " + ", ".join(not_passed) + ".") if not_passed else "Every step passed."
        self.overall.setText(overall)
        self.overall.setStyleSheet(f"color: {status_color(result.status).name()}; font-weight: 600;")
        self._fill_checks()
        self._fill_changes()
        self._fill_remains(result.details.get("open_items", []))
        self.record_changed()
        super().enter()

    def _fill_checks(self) -> None:
        steps = [step for step in Step if step is not Step.SUMMARY]
        self.table.setRowCount(len(steps))
        for row, step in enumerate(steps):
            result = self.run.checklist.results.get(step)
            status: StepStatus | None = result.status if result else None
            status_item = QTableWidgetItem(STATUS_MARKS[status])
            status_item.setForeground(status_color(status))
            reason_item = QTableWidgetItem(result.reason if result else "")
            reason_item.setToolTip(reason_item.text())
            self.table.setItem(row, 0, QTableWidgetItem(STEP_TITLES[step]))
            self.table.setItem(row, 1, status_item)
            self.table.setItem(row, 2, reason_item)
        self.table.resizeRowsToContents()

    def _fill_changes(self) -> None:
        changes = self.run.changes
        self.changes.setRowCount(len(changes))
        for row, change in enumerate(changes):
            what = "\n".join([change.summary, *(f"    {line}" for line in change.lines)])
            what_item = QTableWidgetItem(what)
            what_item.setToolTip(f"{STEP_TITLES[change.step]} step\n{what}")
            cells = (readable_time(change.made_at), change.made_by or "unknown")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
                self.changes.setItem(row, column, item)
            self.changes.setItem(row, 2, what_item)
        self.changes.resizeRowsToContents()
        self.changes.setVisible(bool(changes))
        self.no_changes.setVisible(not changes)
        # Without changes the section is one line, and the other two get its room.
        self.body.setStretchFactor(self.changes_section, 2 if changes else 0)

    def _fill_remains(self, items: list[str]) -> None:
        self.remains.clear()
        numbered = [f"{number}. {item}" for number, item in enumerate(items, 1)]
        self.remains.addItems(numbered or [NOTHING_REMAINS])
        # A short list leaves its room to the checks.
        self.body.setStretchFactor(self.remains_section, 2 if len(items) > 2 else 1)

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
        text = report_html(self.run)
        self.start_job("export report", write_report, path, text, on_finished=self._exported,
                       progress_message="Writing the report…")

    def _exported(self, path: Path) -> None:
        self.message.show_message(f"Report written to {path}.")


def _table(headers: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.verticalHeader().hide()
    table.setWordWrap(True)
    return table


def _section(title: str, *widgets: QWidget) -> QWidget:
    """Return a titled section of the page holding ``widgets``."""
    section = QWidget()
    layout = QVBoxLayout(section)
    layout.setContentsMargins(0, 4, 0, 0)
    label = QLabel(title)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    layout.addWidget(label)
    for widget in widgets:
        layout.addWidget(widget, 1)
    return section
