"""Table models: the sync plan, run history and backfill queue.

The duplicate viewer's models are in gui/conflict_models.py.

Each model keeps its frozen rows (the plan model only a window of a long
plan), names its columns with constants and returns ``data()`` by dispatching
on the role. A reload resets the model; a change to some rows signals only
those rows, so big tables stay responsive.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.core.plan import Action, PlanRow, ReasonCode
from backstory_desktop.store.journal import ItemOutcome, ItemState

if TYPE_CHECKING:
    from backstory_desktop.store.journal import QueuedItem, RunSummary

# Reads the outcomes of the plan rows from ``start`` up to ``stop``: Journal.item_outcomes for one run.
OutcomeReader = Callable[[int, int], list[ItemOutcome]]
# Reads ``limit`` queued items from ``offset``: Journal.queued_items for one run.
QueueReader = Callable[[int, int], "list[QueuedItem]"]

ModelIndex = QModelIndex | QPersistentModelIndex
ROW_ROLE = Qt.ItemDataRole.UserRole
DIFFERENT_BACKGROUND = QColor("#fff4ce")

ACTION_COLORS = {
    Action.CREATE: QColor("#1b7f3b"),
    Action.UPDATE: QColor("#1a5fb4"),
    Action.CONFLICT: QColor("#b35c00"),
    Action.INVALID: QColor("#b3261e"),
    Action.EXCLUDED: QColor("#5f6368"),
}


def describe_outcome(outcome: ItemOutcome) -> str:
    """Describe where one plan row is after an apply, in a few words: "created 00T…", "queued: …"."""
    state = outcome.state
    reason = f"{outcome.error_code or ''} {outcome.message}".strip()
    if state in (ItemState.CREATED, ItemState.UPDATED):
        return f"{state.value} {outcome.record_id or ''}".strip()
    if state is ItemState.FAILED:
        return f"failed: {reason}" if reason else "failed"
    if state is ItemState.QUEUED:
        return f"queued: {reason}" if reason else "queued"
    if state is ItemState.IN_DOUBT:
        return "in doubt: looked up before it is sent again"
    if state is ItemState.SENDING:
        return "sending"
    if state is ItemState.PLANNED:
        return "not sent yet"
    return ""


# A message of an mbox file or a row of a CSV export, after its file name and before any note in brackets.
SHORT_SOURCE_REF = re.compile(r".+, ((?:message|row) \d+)(?: \(.*\))?")

class _HeaderedTableModel(QAbstractTableModel):
    """A flat table whose columns are named by the class's HEADERS."""

    HEADERS: tuple[str, ...] = ()

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None


class PlanTableModel(_HeaderedTableModel):
    """The rows of a dry-run plan, and after an apply each row's outcome.

    The rows may be a journal-backed sequence of hundreds of thousands of rows,
    so the model reads a row only when the view requests it, and keeps the last
    rows read in a small cache. A filter shows only the rows at given positions.
    After an apply, the outcomes of the shown rows are read from the journal a
    page of sequence numbers at a time. A row's position in the plan is its
    sequence number.
    """

    # Reason comes last so that it takes the width left over by the short columns.
    ACTION, OUTCOME, KEY, SOURCE, SUBJECT, EXISTING, REASON = range(7)
    HEADERS = ("Action", "Outcome", "Message-ID key", "Source", "Subject", "Existing Tasks", "Reason")
    # Rows kept after reading: a few screens of a tall table.
    CACHE_SIZE = 2000
    # Outcomes read from the journal in one query, and pages of them kept.
    OUTCOME_PAGE = 200
    OUTCOME_PAGES_KEPT = 10

    def __init__(self) -> None:
        super().__init__()
        self._rows: Sequence[PlanRow] = ()
        self._positions: Sequence[int] | None = None
        self._cache: OrderedDict[int, PlanRow] = OrderedDict()
        self._read_outcomes: OutcomeReader | None = None
        self._outcome_pages: OrderedDict[int, dict[int, ItemOutcome]] = OrderedDict()

    def set_rows(self, rows: Sequence[PlanRow]) -> None:
        """Show a new plan, every row, without reading any of them yet."""
        self.beginResetModel()
        self._rows = rows
        self._positions = None
        self._cache.clear()
        self._read_outcomes = None
        self._outcome_pages.clear()
        self.endResetModel()

    def set_filter(self, positions: Sequence[int] | None) -> None:
        """Show only the plan rows at ``positions``, in that order; None shows every row."""
        self.beginResetModel()
        self._positions = positions
        self.endResetModel()

    def row_at(self, view_row: int) -> PlanRow:
        """Return the plan row shown on ``view_row``, reading it from the plan when not cached."""
        position = view_row if self._positions is None else self._positions[view_row]
        row = self._cache.get(position)
        if row is None:
            row = self._rows[position]
            self._cache[position] = row
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(position)
        return row

    def set_outcomes(self, reader: OutcomeReader | None) -> None:
        """Fill the Outcome column from ``reader``, read again for the rows shown; None empties it."""
        if reader is not None and not callable(reader):
            # Raised here, because an error inside data() would reach Qt's painting instead.
            raise TypeError(f"set_outcomes takes a function of (start, stop), not {type(reader).__name__}")
        self._read_outcomes = reader
        self._outcome_pages.clear()
        if self.rowCount():
            self.dataChanged.emit(self.index(0, self.OUTCOME), self.index(self.rowCount() - 1, self.OUTCOME))

    def outcome_at(self, view_row: int) -> ItemOutcome | None:
        """Return the outcome of the plan row shown on ``view_row``, or None before an apply."""
        if self._read_outcomes is None:
            return None
        position = view_row if self._positions is None else self._positions[view_row]
        start = position - position % self.OUTCOME_PAGE
        page = self._outcome_pages.get(start)
        if page is None:
            page = {outcome.seq: outcome for outcome in self._read_outcomes(start, start + self.OUTCOME_PAGE)}
            self._outcome_pages[start] = page
            if len(self._outcome_pages) > self.OUTCOME_PAGES_KEPT:
                self._outcome_pages.popitem(last=False)
        else:
            self._outcome_pages.move_to_end(start)
        return page.get(position)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(self._rows) if self._positions is None else len(self._positions)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                        Qt.ItemDataRole.ForegroundRole, ROW_ROLE):
            return None
        row = self.row_at(index.row())
        column = index.column()
        if column == self.OUTCOME and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._outcome_text(row, self.outcome_at(index.row()), role)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.SOURCE:
                return row.source_ref
            return key_tooltip(row) if column == self.KEY else self._display(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return ACTION_COLORS[row.action] if column == self.ACTION else None
        return row

    def _display(self, row: PlanRow, column: int) -> str:
        if column == self.ACTION:
            return row.action.value
        if column == self.KEY:
            return sent_key(row)
        if column == self.SOURCE:
            return short_source_ref(row.source_ref)
        if column == self.SUBJECT:
            return row.subject
        if column == self.REASON:
            return row.reason
        if column == self.EXISTING:
            return ", ".join(task.id for task in row.existing)
        return ""

    def _outcome_text(self, row: PlanRow, outcome: ItemOutcome | None, role: int) -> str:
        text = describe_outcome(outcome) if outcome is not None else ""
        if role == Qt.ItemDataRole.ToolTipRole and not text and row.existing:
            # The page hides Existing Tasks once outcomes show, so a row that was not sent names them here.
            return "Not sent. Existing Tasks: " + self._display(row, self.EXISTING)
        return text


def sent_key(row: PlanRow) -> str:
    """Return the key spelling a row sends: for an update, the spelling its Task already holds."""
    if row.action is Action.UPDATE and row.upsert_key:
        return row.upsert_key
    return row.key or ""


def key_tooltip(row: PlanRow) -> str:
    """Return the Key cell's tooltip, which names the message's own key when the update keeps another one."""
    sent = sent_key(row)
    if row.key and sent != row.key:
        return (f"{sent}: the spelling the Task already holds, kept by this update. "
                f"The message's key is {row.key}.")
    return sent


def short_source_ref(source_ref: str) -> str:
    """Shorten "sample.mbox, message 3 (byte 1091)" to "message 3", and "x.csv, row 12 (...)" to "row 12".

    Every row of a plan comes from the source named above the table, so the
    cell keeps the part that differs; its tooltip shows the whole reference.
    A file of a Maildir or .eml folder keeps its path.
    """
    match = SHORT_SOURCE_REF.fullmatch(source_ref)
    return match.group(1) if match else source_ref


# Rows read between two checks of the cancel event while sorting a plan by action.
INDEX_BATCH = 1000


@dataclass(frozen=True)
class PlanIndex:
    """Positions of a plan's rows per action and per reason code, for the plan table's filter."""

    actions: dict[Action, array[int]]
    reasons: dict[ReasonCode, array[int]]


def index_plan_rows(
    rows: Sequence[PlanRow], *, progress: ProgressCallback, cancel: threading.Event
) -> PlanIndex:
    """Return the positions of the plan's rows per action and per reason code, reading each row once.

    The plan table filters on these positions. Cancel is checked every
    ``INDEX_BATCH`` rows; a cancelled scan raises Cancelled.
    """
    index = PlanIndex({action: array("q") for action in Action}, {code: array("q") for code in ReasonCode})
    total = len(rows)
    check_cancel(cancel)
    # Iterating, not indexing, leaves the row cache of the table's reads on the GUI thread alone.
    for position, row in enumerate(rows):
        if position % INDEX_BATCH == 0:
            check_cancel(cancel)
            progress(position, total, "Sorting the plan rows by action and reason")
        index.actions[row.action].append(position)
        index.reasons[row.reason_code].append(position)
    return index


def index_actions(
    rows: Sequence[PlanRow], *, progress: ProgressCallback, cancel: threading.Event
) -> dict[Action, array[int]]:
    """Return the positions of the plan's rows per action; see ``index_plan_rows``."""
    return index_plan_rows(rows, progress=progress, cancel=cancel).actions


def describe_counts(counts: Mapping[str, int]) -> str:
    """Describe counts per name in one line, leaving out zeros: "12 create · 3 update"."""
    parts = [f"{count:,} {name}" for name, count in counts.items() if count]
    return " · ".join(parts) if parts else "none"


def local_time(moment: datetime | None) -> str:
    """Format a time in the computer's time zone, to the minute."""
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def next_attempt_text(moment: datetime | None, now: datetime) -> str:
    """Say when a queued item is sent again: "in 2 min (14:05 UTC+01:00)", or "due now"."""
    if moment is None:
        return ""
    local = moment.astimezone()
    offset = local.strftime("%z")
    clock = f"{local:%H:%M} UTC{offset[:3]}:{offset[3:]}"
    if local.date() != now.astimezone().date():
        clock = f"{local:%Y-%m-%d} {clock}"
    wait = moment - now
    if wait <= timedelta(0):
        return f"due now ({clock})"
    minutes = max(1, round(wait.total_seconds() / 60))
    after = f"in {minutes} min" if minutes < 120 else f"in {round(minutes / 60)} h"
    return f"{after} ({clock})"


class RunHistoryModel(_HeaderedTableModel):
    """The sync runs of one org, newest first: when, from which source, what was planned, where items are."""

    STARTED, SOURCE, PLANNED, ITEMS, STATE = range(5)
    HEADERS = ("Started", "Source", "Planned", "Items now", "State")

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[RunSummary] = []

    def set_runs(self, runs: Sequence[RunSummary]) -> None:
        """Show the runs of a new history read."""
        self.beginResetModel()
        self._runs = list(runs)
        self.endResetModel()

    def run_at(self, position: int) -> RunSummary:
        """Return the run shown on row ``position``."""
        return self._runs[position]

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._runs)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self._runs[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(run, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(run, index.column())
        if role == ROW_ROLE:
            return run
        return None

    def _display(self, run: RunSummary, column: int) -> str:
        if column == self.STARTED:
            return local_time(run.created_at)
        if column == self.SOURCE:
            return Path(run.source).name or run.source
        if column == self.PLANNED:
            return describe_counts(run.counts)
        if column == self.ITEMS:
            # Skipped rows are the conflicts, invalid and excluded rows Planned already counts.
            return self._items_now(run, with_skipped=False)
        return str(run.state)

    @staticmethod
    def _items_now(run: RunSummary, *, with_skipped: bool) -> str:
        states = {str(state).replace("_", " "): count for state, count in run.states.items()
                  if with_skipped or state is not ItemState.SKIPPED}
        return describe_counts(states)

    def _tooltip(self, run: RunSummary, column: int) -> str:
        if column == self.ITEMS:
            return self._items_now(run, with_skipped=True)
        if column == self.SOURCE:
            return f"{run.source} ({run.source_kind}), run {run.run_id}"
        if column == self.STATE and run.stop_reason:
            return f"{run.state}: {run.stop_reason}"
        return self._display(run, column)


class QueueModel(_HeaderedTableModel):
    """The backfill queue of one run: items a transient failure left for a later try.

    The queue may contain many thousands of items, so the model stores only
    their count and reads a page of them from the journal when the view shows it.
    """

    KEY, SOURCE, ATTEMPTS, NEXT, REASON = range(5)
    HEADERS = ("Message-ID key", "Source", "Attempts", "Next attempt", "Reason")
    PAGE = 200
    PAGES_KEPT = 10

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._read: QueueReader | None = None
        self._pages: OrderedDict[int, list[QueuedItem]] = OrderedDict()
        self._now = datetime.now().astimezone()

    def set_queue(self, count: int, reader: QueueReader | None) -> None:
        """Show ``count`` queued items, read a page at a time by ``reader``."""
        self.beginResetModel()
        self._count = count if reader is not None else 0
        self._read = reader
        self._pages.clear()
        self._now = datetime.now().astimezone()
        self.endResetModel()

    def item_at(self, position: int) -> QueuedItem | None:
        """Return the queued item on row ``position``, reading its page when it is not kept."""
        if self._read is None:
            return None
        start = position - position % self.PAGE
        page = self._pages.get(start)
        if page is None:
            page = self._read(start, self.PAGE)
            self._pages[start] = page
            if len(self._pages) > self.PAGES_KEPT:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(start)
        offset = position - start
        # The queue may have shrunk since the count was read.
        return page[offset] if offset < len(page) else None

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == self.ATTEMPTS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, ROW_ROLE):
            return None
        item = self.item_at(index.row())
        if item is None:
            return None
        if role == ROW_ROLE:
            return item
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == self.SOURCE:
            return item.source_ref
        return self._display(item, index.column())

    def _display(self, item: QueuedItem, column: int) -> str:
        if column == self.KEY:
            return item.key or ""
        if column == self.SOURCE:
            return short_source_ref(item.source_ref)
        if column == self.ATTEMPTS:
            return str(item.attempts)
        if column == self.NEXT:
            return next_attempt_text(item.next_attempt_at, self._now)
        return f"{item.error_code}: {item.message}" if item.error_code else item.message
