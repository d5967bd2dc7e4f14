"""The tabs of the Local sync page beside the plan: backfill queue, run history and the drill.

Each panel only shows what it is given and emits a signal when the admin
requests an action. The page runs the jobs, so every job goes through its
progress row, Cancel and error handling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.cadence_drill import DrillReport, DrillRow, ToolUser
from backstory_desktop.gui.models import QueueModel, RunHistoryModel, local_time
from backstory_desktop.gui.pages.plan_text import as_sentence, counted
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    PASSED_COLOR,
    ElideMiddleDelegate,
    compact_rows,
    note,
    plain_label,
)
from backstory_desktop.store.journal import QueuedItem, RunState, RunSummary

# Widths of the backfill queue's Message-ID key and Source columns, in pixels.
QUEUE_KEY_WIDTH = 200
QUEUE_SOURCE_WIDTH = 150

# Run states of an apply that stopped, or whose process was killed, before the end.
UNFINISHED_RUN_STATES = (RunState.APPLYING, RunState.STOPPED)


def is_unfinished(run: RunSummary) -> bool:
    """Tell whether a run stopped, or was killed, with rows left to send or to resolve."""
    return run.state in UNFINISHED_RUN_STATES and run.work_left > 0


def source_name(run: RunSummary) -> str:
    """Return the file or folder name of a run's source, without its folders."""
    return Path(run.source).name or run.source


def describe_run(run: RunSummary) -> str:
    """Name a run for the admin: when it started and from which source."""
    return f"the sync of {source_name(run)} started {local_time(run.created_at)}"


def resume_sentence(run: RunSummary) -> str:
    """Describe an unfinished run in sentences that end with what Resume does."""
    stopped = f": {as_sentence(run.stop_reason)}" if run.stop_reason else "."
    are = "is" if run.work_left == 1 else "are"
    return (f"{describe_run(run).capitalize()} did not finish{stopped} "
            f"{counted(run.work_left, 'row')} {are} not written yet. Resume sends them, and "
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


def fit_columns(table: QTableView, columns: Iterable[int]) -> None:
    """Size ``columns`` to their text; the last column of the table takes the width left over."""
    header = table.horizontalHeader()
    for column in columns:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(header.count() - 1, QHeaderView.ResizeMode.Stretch)


EMPTY_QUEUE_TEXT = "No queued rows: a transient failure during an apply puts the row here."


class QueuePanel(QWidget):
    """The backfill queue of one run, with Retry now."""

    retry_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_id: str | None = None
        self.title = plain_label(EMPTY_QUEUE_TEXT)
        self.title.setWordWrap(True)
        self.retry_button = QPushButton("Retry now")
        self.retry_button.clicked.connect(self._retry)
        self.model = QueueModel()
        self.table = table_view(self.model)
        self.table.setColumnWidth(QueueModel.KEY, QUEUE_KEY_WIDTH)
        # Attempts and Next attempt fit their text and Reason takes the rest. Source shows a message or
        # row number. A file of a folder elides in the middle, and its tooltip shows the whole reference.
        self.table.setColumnWidth(QueueModel.SOURCE, QUEUE_SOURCE_WIDTH)
        self.table.horizontalHeader().setSectionResizeMode(
            QueueModel.ATTEMPTS, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(
            QueueModel.NEXT, QHeaderView.ResizeMode.ResizeToContents)
        # A key elides in the middle, so it keeps its start and its domain.
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
        self.set_queue(None, 0, None)

    def set_queue(self, run: RunSummary | None, count: int,
                  read: Callable[[int, int], list[QueuedItem]] | None) -> None:
        """Show the ``count`` queued items of ``run``, read a page at a time; no run shows an empty queue."""
        shown = run is not None and count > 0 and read is not None
        self.run_id = run.run_id if run is not None and shown else None
        self.model.set_queue(count if shown else 0, read if shown else None)
        if run is None or not shown:
            self.title.setText(EMPTY_QUEUE_TEXT)
        else:
            self.title.setText(
                f"{counted(count, 'row')} of {describe_run(run)} {'waits' if count == 1 else 'wait'} for "
                "another try. "
                "Each is retried with back-off; Retry now sends every one at once.")

    def set_enabled_actions(self, idle: bool) -> None:
        """Enable Retry now when nothing runs and the queue has rows."""
        self.retry_button.setEnabled(idle and self.run_id is not None)

    def _retry(self) -> None:
        if self.run_id is not None:
            self.retry_requested.emit(self.run_id)


class HistoryPanel(QWidget):
    """The sync runs of this org, with Open result folder, Resume and Delete run.

    Every plan built is a run, so plans never applied are hidden but for the
    newest one and the one on the Plan tab, unless the admin shows them all.
    """

    resume_requested = Signal(str)
    open_folder_requested = Signal(Path)
    delete_requested = Signal(str)
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._all_runs: list[RunSummary] = []
        self._current_plan: str | None = None
        self.model = RunHistoryModel()
        self.table = table_view(self.model)
        # State takes the rest of the width, so a stop reason has room.
        fit_columns(self.table, range(RunHistoryModel.STATE))
        # A new read selects a row too; only the admin's own choice of a row is signalled.
        self._reading = False
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.open_button = QPushButton("Open result folder")
        self.open_button.clicked.connect(self._open_folder)
        self.resume_button = QPushButton("Resume…")
        self.resume_button.clicked.connect(self._resume)
        self.delete_button = QPushButton("Delete run…")
        self.delete_button.setToolTip("Remove the selected run from this history; its result files stay.")
        self.delete_button.clicked.connect(self._delete)
        self.show_all_plans = QCheckBox("Show plans never applied")
        self.show_all_plans.toggled.connect(lambda _checked: self._show_runs())
        self.summary = plain_label("No sync has run on this org yet.")
        self.summary.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.resume_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.delete_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.show_all_plans)
        layout.addWidget(self.table, 1)

    def set_runs(self, runs: Sequence[RunSummary], current_plan: str | None = None) -> None:
        """Show the runs, newest first, and select the newest; ``current_plan`` is the plan shown."""
        self._all_runs = list(runs)
        self._current_plan = current_plan
        self._show_runs()

    def _show_runs(self) -> None:
        selected = self.selected_run()
        newest_plan = next((run.run_id for run in self._all_runs if run.state is RunState.PLANNED), None)
        kept = {newest_plan, self._current_plan}
        show_all = self.show_all_plans.isChecked()
        shown = [run for run in self._all_runs
                 if show_all or run.state is not RunState.PLANNED or run.run_id in kept]
        hidden = len(self._all_runs) - len(shown)
        self._reading = True
        try:
            self._select_newest(shown, selected)
        finally:
            self._reading = False
        if shown:
            text = f"{counted(len(shown), 'run')} on this org, newest first"
            if hidden:
                text += f"; {counted(hidden, 'plan')} never applied not shown"
            self.summary.setText(text + ".")
        else:
            self.summary.setText("No sync has run on this org yet.")

    def _select_newest(self, shown: list[RunSummary], selected: RunSummary | None) -> None:
        self.model.set_runs(shown)
        if shown:
            self.table.selectRow(0)
            if selected is not None:
                self.select_run(selected.run_id)

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
        # A run another process is applying now stays until it stops.
        self.delete_button.setEnabled(idle and run is not None and run.state is not RunState.APPLYING)

    def _open_folder(self) -> None:
        run = self.selected_run()
        if run is not None and run.result_folder is not None:
            self.open_folder_requested.emit(run.result_folder)

    def _resume(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.resume_requested.emit(run.run_id)

    def _selection_changed(self) -> None:
        if not self._reading:
            self.selection_changed.emit()

    def _delete(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.delete_requested.emit(run.run_id)


# The Problem cell of an e-mail that ended as it should.
DRILL_ROW_PASSED = "one Task, as expected"
DRILL_HEADERS = ("Message-ID key", "Cadence tool wrote", "Tasks", "Subject", "Owner", "Flag", "Problem")


# The ways to connect the drill's cadence tool that the admin chooses from, with their labels.
TOOL_USER_CHOICES = (
    (ToolUser.EACH_REP, "as each rep's own user"),
    (ToolUser.SHARED, "once, as one shared user"),
)


def drill_conclusion(report: DrillReport) -> str:
    """Say in one or two sentences what the admin should conclude from a drill of this set-up."""
    if report.tool_user is ToolUser.SHARED:
        if report.access_finding():
            return ("What this means: a cadence tool connected once, as one shared user, cannot update "
                    "the Tasks the local sync creates for other reps. Connect it as each rep before you run "
                    "the local sync beside it.")
        if report.passed:
            return ("What this means: the tool's shared user may edit every rep's Tasks, so a tool connected "
                    "once can run beside the local sync.")
        return ("What this means: with the tool connected as one shared user, some e-mails do not end as "
                "one Task. Fix the failures listed below before you run the tool beside the local sync.")
    if report.passed:
        return ("What this means: with the tool connected as each rep, the tool and the local sync keep one "
                "Task per e-mail, so both can run at the same time.")
    return ("What this means: running the cadence tool and the local sync together would leave e-mails "
            "with missing or extra Tasks. Fix the failures listed below before you run both.")


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
        self.tool_user_box = QComboBox()
        for tool_user, text in TOOL_USER_CHOICES:
            self.tool_user_box.addItem(text, tool_user.value)
        self.tool_user_box.currentIndexChanged.connect(self._show_chosen_report)
        # The last report of each way of connecting the tool, so a report shows only under its own choice.
        self._reports: dict[ToolUser, DrillReport] = {}
        self.tool_user_box.setToolTip(
            "Each rep: the tool writes every e-mail as its sender's own user. One shared user: the tool "
            "writes every rep's e-mails as one integration user and makes the sender the owner.")
        self.verdict = plain_label()
        self.verdict.setWordWrap(True)
        self.conclusion = plain_label()
        self.conclusion.setWordWrap(True)
        self.table = QTableWidget(0, len(DRILL_HEADERS))
        self.table.setHorizontalHeaderLabels(DRILL_HEADERS)
        for column, width in enumerate((210, 130, 50, 60, 55, 45)):
            self.table.setColumnWidth(column, width)
        self.table.setItemDelegateForColumn(0, ElideMiddleDelegate(self.table))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        compact_rows(self.table)
        top = QHBoxLayout()
        top.addWidget(note(
            "On the practice org, a cadence tool logs the same e-mails before, during and after a local "
            "sync. Connected as each rep, it writes each e-mail as its sender's own user; connected once, "
            "as one shared user, it writes every rep's e-mails. The drill then checks that each e-mail is "
            "one Task with the key, the tool's subject and owner, and the Backstory flag."), 1)
        top.addWidget(self.run_button, 0, Qt.AlignmentFlag.AlignTop)
        choice = QHBoxLayout()
        choice.addWidget(QLabel("Cadence tool connected:"))
        choice.addWidget(self.tool_user_box)
        choice.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addLayout(choice)
        layout.addWidget(self.verdict)
        layout.addWidget(self.conclusion)
        layout.addWidget(self.table, 1)
        self.verdict.hide()
        self.conclusion.hide()

    def tool_user(self) -> ToolUser:
        """Return how the admin chose to connect the drill's cadence tool."""
        return ToolUser(str(self.tool_user_box.currentData()))

    def show_report(self, report: DrillReport) -> None:
        """Show a drill's report and choose its way of connecting the tool in the box above it."""
        self._reports[report.tool_user] = report
        self.tool_user_box.setCurrentIndex(self.tool_user_box.findData(report.tool_user.value))
        self._show_chosen_report()

    def _show_chosen_report(self) -> None:
        report = self._reports.get(self.tool_user())
        if report is not None:
            self._show(report)
            return
        self.conclusion.hide()
        self._fill_table(())
        if self._reports:
            # A report of the other choice is kept for when the admin chooses it again.
            self.verdict.setText("The drill has not run yet with the cadence tool connected "
                                 f"{self.tool_user_box.currentText()}.")
            self.verdict.setStyleSheet("")
            self.verdict.show()
        else:
            self.verdict.hide()

    def _show(self, report: DrillReport) -> None:
        """Show whether the drill passed and one row per e-mail."""
        color = PASSED_COLOR if report.passed else FAILED_COLOR
        mark = "✓ Passed:" if report.passed else "✗ Failed:"
        finding = report.access_finding()
        # The finding explains the failed rows, so the first failure's details stay in the table.
        summary = report.headline() if finding else report.summary()
        text = f"{mark} {summary}" if summary.endswith(".") else f"{mark} {summary}."
        if report.tool_failures:
            again = "it" if report.tool_failures == 1 else "them"
            text += (f" {counted(report.tool_failures, 'write')} of the cadence tool failed at first, "
                     f"and the tool made {again} again after the sync.")
        if finding:
            text += f" {finding}"
        self.verdict.setText(text)
        self.verdict.setStyleSheet(f"color: {color.name()};")
        self.verdict.show()
        self.conclusion.setText(drill_conclusion(report))
        self.conclusion.show()
        # Failed e-mails first, so the rows that need the admin are on screen.
        self._fill_table(sorted(report.rows, key=lambda row: row.passed))

    def _fill_table(self, rows: Sequence[DrillRow]) -> None:
        self.table.clearContents()
        self.table.setRowCount(len(rows))
        for position, row in enumerate(rows):
            for column, text in enumerate(drill_cells(row)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{text}, as {row.tool_user}" if column == 1 and row.tool_user else text)
                if not row.passed:
                    item.setForeground(FAILED_COLOR)
                self.table.setItem(position, column, item)
