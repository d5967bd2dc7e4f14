"""The tabs of the Local sync page beside the plan: backfill queue, run history and the drill.

Each panel only shows what it is given and emits a signal when the admin
requests an action. The page runs the jobs, so every job goes through its
progress row, Cancel and error handling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractItemModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.cadence_drill import DrillReport, DrillRow
from backstory_desktop.gui.models import QueueModel, RunHistoryModel, local_time
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    PASSED_COLOR,
    ElideMiddleDelegate,
    compact_rows,
    note,
    plain_label,
    plural,
)

if TYPE_CHECKING:
    from backstory_desktop.store.journal import QueuedItem, RunSummary

# Run states of an apply that stopped, or whose process was killed, before the end.
UNFINISHED_RUN_STATES = ("applying", "stopped")


def is_unfinished(run: RunSummary) -> bool:
    """Tell whether a run stopped, or was killed, with rows left to send or to resolve."""
    return str(run.state) in UNFINISHED_RUN_STATES and run.work_left > 0


def source_name(run: RunSummary) -> str:
    """Return the file or folder name of a run's source, without its folders."""
    return Path(run.source).name or run.source


def describe_run(run: RunSummary) -> str:
    """Name a run for the admin: when it started and from which source."""
    return f"the sync of {source_name(run)} started {local_time(run.created_at)}"


def resume_sentence(run: RunSummary) -> str:
    """Describe an unfinished run in one sentence that ends with what Resume does."""
    stopped = f" ({run.stop_reason})" if run.stop_reason else ""
    return (f"{describe_run(run).capitalize()} did not finish{stopped}: "
            f"{plural(run.work_left, 'row')} are not written yet. Resume sends them; "
            "nothing already written is sent twice.")


def table_view(model: QAbstractItemModel) -> QTableView:
    """Return a read-only table of whole rows, one text line each, over ``model``."""
    table = QTableView()
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    compact_rows(table)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    return table


class QueuePanel(QWidget):
    """The backfill queue of one run, with Retry now."""

    retry_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_id: str | None = None
        self.title = plain_label("No queued items: a transient failure during an apply puts the item here.")
        self.title.setWordWrap(True)
        self.retry_button = QPushButton("Retry now")
        self.retry_button.clicked.connect(self._retry)
        self.model = QueueModel()
        self.table = table_view(self.model)
        for column, width in ((QueueModel.KEY, 190), (QueueModel.SOURCE, 150),
                              (QueueModel.ATTEMPTS, 65), (QueueModel.NEXT, 115)):
            self.table.setColumnWidth(column, width)
        # Both elide in the middle: a key keeps its domain, a source its row or message number.
        self.elide_middle = ElideMiddleDelegate(self.table)
        self.table.setItemDelegateForColumn(QueueModel.KEY, self.elide_middle)
        self.table.setItemDelegateForColumn(QueueModel.SOURCE, self.elide_middle)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.set_queue(None, [])

    def set_queue(self, run: RunSummary | None, items: Sequence[QueuedItem]) -> None:
        """Show the queued items of ``run``; no run shows an empty queue."""
        self.run_id = run.run_id if run is not None and items else None
        self.model.set_items(items)
        if run is None or not items:
            self.title.setText("No queued items: a transient failure during an apply puts the item here.")
        else:
            self.title.setText(
                f"{plural(len(items), 'item')} of {describe_run(run)} wait for another try. "
                "Each is retried with back-off; Retry now sends every one at once.")

    def set_enabled_actions(self, idle: bool) -> None:
        """Enable Retry now when nothing runs and the queue has items."""
        self.retry_button.setEnabled(idle and self.run_id is not None)

    def _retry(self) -> None:
        if self.run_id is not None:
            self.retry_requested.emit(self.run_id)


class HistoryPanel(QWidget):
    """The sync runs of this org, with Open result folder and Resume."""

    resume_requested = Signal(str)
    open_folder_requested = Signal(Path)
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = RunHistoryModel()
        self.table = table_view(self.model)
        for column, width in ((RunHistoryModel.STARTED, 130), (RunHistoryModel.SOURCE, 170),
                              (RunHistoryModel.PLANNED, 190), (RunHistoryModel.ITEMS, 190)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.selection_changed.emit())
        self.open_button = QPushButton("Open result folder")
        self.open_button.clicked.connect(self._open_folder)
        self.resume_button = QPushButton("Resume…")
        self.resume_button.clicked.connect(self._resume)
        self.summary = plain_label("No sync has run on this org yet.")
        self.summary.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.resume_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def set_runs(self, runs: Sequence[RunSummary]) -> None:
        """Show the runs, newest first, and select the newest."""
        self.model.set_runs(runs)
        if runs:
            self.summary.setText(f"{plural(len(runs), 'run')} on this org, newest first. "
                                 "Select one to open its result files or resume it.")
            self.table.selectRow(0)
        else:
            self.summary.setText("No sync has run on this org yet.")

    def runs(self) -> list[RunSummary]:
        """Return the runs shown, newest first."""
        return [self.model.run_at(position) for position in range(self.model.rowCount())]

    def selected_run(self) -> RunSummary | None:
        """Return the run of the selected row, if any."""
        rows = self.table.selectionModel().selectedRows()
        return self.model.run_at(rows[0].row()) if rows else None

    def select_run(self, run_id: str) -> None:
        """Select the row of the run ``run_id`` when it is shown."""
        for position in range(self.model.rowCount()):
            if self.model.run_at(position).run_id == run_id:
                self.table.selectRow(position)
                return

    def set_enabled_actions(self, idle: bool) -> None:
        """Enable the buttons that fit the selected run."""
        run = self.selected_run()
        folder = run.result_folder if run is not None else None
        self.open_button.setEnabled(folder is not None and folder.is_dir())
        self.resume_button.setEnabled(idle and run is not None and is_unfinished(run))

    def _open_folder(self) -> None:
        run = self.selected_run()
        if run is not None and run.result_folder is not None:
            self.open_folder_requested.emit(run.result_folder)

    def _resume(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.resume_requested.emit(run.run_id)


# The Problem cell of an e-mail that ended as it should.
DRILL_ROW_PASSED = "one Task, as expected"
DRILL_HEADERS = ("Message-ID key", "Cadence tool wrote", "Tasks", "Subject", "Owner", "Flag", "Problem")


def drill_cells(row: DrillRow) -> tuple[str, ...]:
    """Return one drill row's cells in DRILL_HEADERS order."""
    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    return (row.key, f"{row.moment} the sync", str(row.tasks), mark(row.subject_ok), mark(row.owner_ok),
            mark(row.flag_ok), row.problem or DRILL_ROW_PASSED)


class DrillPanel(QWidget):
    """The cadence-tool drill of the practice org: the button and its report."""

    drill_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton("Run the cadence-tool drill…")
        self.run_button.clicked.connect(self.drill_requested.emit)
        self.verdict = plain_label()
        self.verdict.setWordWrap(True)
        self.table = QTableWidget(0, len(DRILL_HEADERS))
        self.table.setHorizontalHeaderLabels(DRILL_HEADERS)
        for column, width in enumerate((210, 115, 50, 60, 55, 45)):
            self.table.setColumnWidth(column, width)
        self.table.setItemDelegateForColumn(0, ElideMiddleDelegate(self.table))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        compact_rows(self.table)
        top = QHBoxLayout()
        top.addWidget(note(
            "On the practice org, a cadence tool's user logs the same e-mails before, during and after "
            "a local sync, as a real tool would. The drill then checks that each e-mail is one Task "
            "with the key, the tool's subject and owner, and the Backstory flag."), 1)
        top.addWidget(self.run_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.verdict)
        layout.addWidget(self.table, 1)
        self.verdict.hide()

    def show_report(self, report: DrillReport) -> None:
        """Show whether the drill passed and one row per e-mail."""
        color = PASSED_COLOR if report.passed else FAILED_COLOR
        mark = "✓ Passed:" if report.passed else "✗ Failed:"
        summary = report.summary()
        text = f"{mark} {summary}" if summary.endswith(".") else f"{mark} {summary}."
        if report.tool_failures:
            text += (f" The cadence tool's backfill sent {plural(report.tool_failures, 'failed write')} "
                     "again after the sync.")
        self.verdict.setText(text)
        self.verdict.setStyleSheet(f"color: {color.name()};")
        self.verdict.show()
        # Failed e-mails first, so the rows that need the admin are on screen.
        self._fill_table(sorted(report.rows, key=lambda row: row.passed))

    def _fill_table(self, rows: Sequence[DrillRow]) -> None:
        self.table.clearContents()
        self.table.setRowCount(len(rows))
        for position, row in enumerate(rows):
            for column, text in enumerate(drill_cells(row)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if not row.passed:
                    item.setForeground(FAILED_COLOR)
                self.table.setItem(position, column, item)
