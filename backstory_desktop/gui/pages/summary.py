"""Summary: every check with its result, the changes made in the org, what remains, and an HTML export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import STEP_TITLES, Step, StepStatus
from backstory_desktop.core.survivor import readable_time
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import STATUS_MARKS, note, plain_tooltip, status_color
from backstory_desktop.report import report_html, write_report

# The file name Export HTML offers first.
REPORT_FILE_NAME = "backstory-enablement-report.html"
NO_CHANGES = "None: nothing was changed in the org."
NOTHING_REMAINS = "Nothing: the steps found no work left for you."
REMAINS_TITLE = "What remains for you to do"
CHANGES_TITLE = "Changes made in the org"


class SummaryPage(StepPage):
    """The checks as a table, then the change log and what remains as tabs, and Export HTML.

    The checks table is as tall as its rows, one line each, so every step shows without
    scrolling. A reason too long for its cell is shown whole in its tooltip. The change
    log and what remains share the rest of the page as two tabs.
    """

    step = Step.SUMMARY

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.overall = note("")
        self.body.addWidget(self.overall)

        self.table = _table(("Step", "Status", "Reason"))
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.checks_section = _section("Checks", self.table)
        self.body.addWidget(self.checks_section)

        self.changes = _table(("When (UTC)", "By", "What"), table=RowFittingTable())
        header = self.changes.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.no_changes = note(NO_CHANGES)
        self.no_changes.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self.remains = QListWidget()
        self.remains.setWordWrap(True)
        self.remains.setSpacing(3)
        self.remains.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

        self.export_button = QPushButton("Export HTML…")
        self.export_button.setToolTip("Save the checks with their evidence, the changes and what "
                                      "remains as one HTML page, for a change ticket.")
        self.export_button.clicked.connect(self.export)

        self.tabs = QTabWidget()
        self.remains_tab = _pane(self.remains)
        self.changes_tab = _pane(self.changes, self.no_changes)
        self.tabs.addTab(self.remains_tab, REMAINS_TITLE)
        self.tabs.addTab(self.changes_tab, CHANGES_TITLE)
        self.tabs.setCornerWidget(self.export_button, Qt.Corner.TopRightCorner)
        self.body.addWidget(self.tabs, 1)

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
            reason_item.setToolTip(plain_tooltip(reason_item.text()))
            self.table.setItem(row, 0, QTableWidgetItem(STEP_TITLES[step]))
            self.table.setItem(row, 1, status_item)
            self.table.setItem(row, 2, reason_item)
        self.table.resizeRowsToContents()
        # As tall as every row, so no step is out of sight.
        rows = sum(self.table.rowHeight(row) for row in range(self.table.rowCount()))
        frame = 2 * self.table.frameWidth()
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows + frame)

    def _fill_changes(self) -> None:
        changes = self.run.changes
        self.changes.setRowCount(len(changes))
        for row, change in enumerate(changes):
            what = "\n".join([change.summary, *(f"    {line}" for line in change.lines)])
            what_item = QTableWidgetItem(what)
            what_item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            what_item.setToolTip(plain_tooltip(f"{STEP_TITLES[change.step]} step\n{what}"))
            cells = (readable_time(change.made_at), change.made_by or "unknown")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
                self.changes.setItem(row, column, item)
            self.changes.setItem(row, 2, what_item)
        self.changes.resizeRowsToContents()
        self.changes.setVisible(bool(changes))
        self.no_changes.setVisible(not changes)
        self.tabs.setTabText(self.tabs.indexOf(self.changes_tab), f"{CHANGES_TITLE} ({len(changes)})")

    def _fill_remains(self, items: list[str]) -> None:
        self.remains.clear()
        numbered = [f"{number}. {item}" for number, item in enumerate(items, 1)]
        self.remains.addItems(numbered or [NOTHING_REMAINS])
        self.tabs.setTabText(self.tabs.indexOf(self.remains_tab), f"{REMAINS_TITLE} ({len(items)})")
        # What remains comes first; with nothing left, the change log is the news.
        self.tabs.setCurrentWidget(self.remains_tab if items or not self.run.changes else self.changes_tab)

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
        self.start_job("the report export", write_report, path, text, on_finished=self._exported,
                       progress_message="Writing the report…")

    def _exported(self, path: Path) -> None:
        self.message.show_message(f"Report written to {path}.")


class RowFittingTable(QTableWidget):
    """A table whose wrapped rows take the height their text needs at the columns' current widths."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The header lays out a stretched column after the resize, so the rows are fitted a turn later.
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self.resizeRowsToContents)
        self.horizontalHeader().sectionResized.connect(lambda *_sizes: self._fit_timer.start())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_timer.start()


def _table(headers: tuple[str, ...], table: QTableWidget | None = None) -> QTableWidget:
    """Return a read-only table with ``headers``, set up in ``table`` when one is given."""
    table = table if table is not None else QTableWidget()
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.verticalHeader().hide()
    table.setWordWrap(True)
    return table


def _pane(*widgets: QWidget) -> QWidget:
    """Return a tab's page holding ``widgets``, the first one stretched."""
    pane = QWidget()
    layout = QVBoxLayout(pane)
    layout.setContentsMargins(4, 4, 4, 4)
    for index, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if index == 0 else 0)
    return pane


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
