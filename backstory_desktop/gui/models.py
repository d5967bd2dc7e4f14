"""Table models for the sync plan, the duplicate groups and the side-by-side record view.

Each model keeps a list of frozen rows, names its columns with constants and
returns ``data()`` by dispatching on the role. A reload resets the model; a
change to some rows signals only those rows, so big tables stay responsive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from backstory_desktop.core.duplicates import DuplicateGroup
from backstory_desktop.core.plan import Action, PlanRow
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.salesforce.tasks import UpsertOutcome

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


def describe_outcome(outcome: UpsertOutcome) -> str:
    """Describe one upsert outcome in a few words."""
    if outcome.success:
        verb = "created" if outcome.created else "updated"
        return f"{verb} {outcome.record_id}"
    return f"failed: {outcome.error_code} {outcome.message}".strip()


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
    """The rows of a dry-run plan, and after an apply each row's outcome."""

    # Reason comes last so that it takes the width left over by the short columns.
    ACTION, OUTCOME, KEY, SUBJECT, EXISTING, REASON = range(6)
    HEADERS = ("Action", "Outcome", "Message-ID key", "Subject", "Existing Tasks", "Reason")

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[PlanRow] = []
        self._outcomes: dict[int, UpsertOutcome] = {}

    def set_rows(self, rows: Sequence[PlanRow]) -> None:
        """Show a new plan."""
        self.beginResetModel()
        self._rows = list(rows)
        self._outcomes = {}
        self.endResetModel()

    def set_outcomes(self, outcomes: Sequence[tuple[PlanRow, UpsertOutcome]]) -> None:
        """Fill the Outcome column of the rows that were sent."""
        position = {id(row): index for index, row in enumerate(self._rows)}
        for row, outcome in outcomes:
            index = position.get(id(row))
            if index is not None:
                self._outcomes[index] = outcome
        if self._rows:
            self.dataChanged.emit(self.index(0, self.OUTCOME), self.index(len(self._rows) - 1, self.OUTCOME))

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)


    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, index.row(), index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, index.row(), index.column())
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == self.ACTION:
            return ACTION_COLORS[row.action]
        if role == ROW_ROLE:
            return row
        return None

    def _display(self, row: PlanRow, position: int, column: int) -> str:
        if column == self.ACTION:
            return row.action.value
        if column == self.KEY:
            return row.key or ""
        if column == self.SUBJECT:
            return row.subject
        if column == self.REASON:
            return row.reason
        if column == self.EXISTING:
            return ", ".join(task.id for task in row.existing)
        outcome = self._outcomes.get(position)
        return describe_outcome(outcome) if outcome is not None else ""

    def _tooltip(self, row: PlanRow, position: int, column: int) -> str:
        if column == self.ACTION:
            return row.source_ref
        if column == self.OUTCOME and position not in self._outcomes and row.existing:
            # The page hides Existing Tasks once outcomes show, so a row that was not sent names them here.
            return "Not sent. Existing Tasks: " + self._display(row, position, self.EXISTING)
        return self._display(row, position, column)


class DuplicateGroupsModel(_HeaderedTableModel):
    """Groups of Tasks that share a Message-ID key, one row per group."""

    KIND, KEY, RECORDS, REASON = range(4)
    HEADERS = ("Kind", "Key", "Tasks", "Reason")

    def __init__(self) -> None:
        super().__init__()
        self._groups: list[DuplicateGroup] = []

    def set_groups(self, groups: Sequence[DuplicateGroup]) -> None:
        """Show the groups of a new scan."""
        self.beginResetModel()
        self._groups = list(groups)
        self.endResetModel()

    def group_at(self, position: int) -> DuplicateGroup:
        """Return the group shown on row ``position``."""
        return self._groups[position]

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._groups)


    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        group = self._groups[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._display(group, index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == self.RECORDS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == ROW_ROLE:
            return group
        return None

    def _display(self, group: DuplicateGroup, column: int) -> str:
        if column == self.KIND:
            return group.kind.value
        if column == self.KEY:
            return group.key
        if column == self.RECORDS:
            return str(len(group.records))
        return group.reason


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


# (row label, how to read it from a Task) for the side-by-side view.
COMPARED_FIELDS: tuple[tuple[str, Callable[[TaskRecord], str]], ...] = (
    ("Id", lambda task: task.id),
    ("Message-ID key", lambda task: task.key or ""),
    ("Subject", lambda task: task.subject),
    ("Owner", lambda task: task.owner_name or task.owner_id or ""),
    ("Created by", lambda task: task.created_by_name or task.created_by_id or ""),
    ("Created date", lambda task: task.created_date),
    ("Activity date", lambda task: task.activity_date or ""),
    ("Subtype", lambda task: task.subtype or ""),
    ("Created by Backstory", lambda task: _yes_no(task.created_by_backstory)),
    ("Deleted", lambda task: _yes_no(task.is_deleted)),
    ("Archived", lambda task: _yes_no(task.is_archived)),
)


class RecordComparisonModel(QAbstractTableModel):
    """The Tasks of one group side by side: a column per Task, a row per field.

    A row whose values differ between the Tasks is marked twice: a "≠" before
    the field name and a tinted background, so color is never the only cue.
    """

    def __init__(self) -> None:
        super().__init__()
        self._records: list[TaskRecord] = []
        self._values: list[list[str]] = []
        self._differs: list[bool] = []

    def set_records(self, records: Sequence[TaskRecord]) -> None:
        """Show the Tasks of one group."""
        self.beginResetModel()
        self._records = list(records)
        self._values = [[read(task) for task in self._records] for _label, read in COMPARED_FIELDS]
        self._differs = [len(set(values)) > 1 for values in self._values]
        self.endResetModel()

    def differing_fields(self) -> list[str]:
        """Return the labels of the fields whose values differ."""
        return [label for (label, _read), differs in zip(COMPARED_FIELDS, self._differs, strict=True)
                if differs]

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or not self._records else len(COMPARED_FIELDS)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return f"Task {section + 1}"
        label = COMPARED_FIELDS[section][0]
        return f"≠ {label}" if self._differs[section] else label

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._values[index.row()][index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and self._differs[index.row()]:
            return DIFFERENT_BACKGROUND
        return None
