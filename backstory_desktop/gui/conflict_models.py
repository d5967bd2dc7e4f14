"""Table models of the duplicate viewer: the groups of a scan, and one group's Tasks side by side.

The groups model stays responsive at 100,000 groups. Rows are handed to the
view 1,000 at a time (fetchMore). Each column's sort order and the facts that
the filters read are computed once per scan, on the worker for large scans, so
that a sort or a filter is a few passes over plain lists without calling
``data()``, and ``data()`` returns early for the roles it does not use. A status
change on a few groups signals only their rows, and on many groups one signal
covers every fetched row.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from backstory_desktop.core import group_view
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.group_view import GroupFacts, GroupFilter
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import readable_time
from backstory_desktop.gui.models import DIFFERENT_BACKGROUND, ROW_ROLE
from backstory_desktop.gui.widgets import FAILED_COLOR, NEUTRAL_COLOR, PASSED_COLOR, plain_tooltip

ModelIndex = QModelIndex | QPersistentModelIndex

# The statuses a group takes after a resolution or an undo. A failure reads "failed: <reason>".
RESOLVED = "resolved"
UNDONE = "undone"
# Groups prepared between two progress reports and cancel checks.
PREPARE_PAGE = 1000
# Groups prepared between two offers of the GIL to the GUI thread; see prepare_groups().
GROUPS_PER_YIELD = 64
# Keys sorted in one call of sorted() on the worker; see sorted_positions_in_slices().
SORT_SLICE = 5000
# A status change on more groups than this emits one dataChanged over every fetched row.
ROWS_SIGNALLED_ONE_BY_ONE = 8


@dataclass(frozen=True)
class PreparedGroups:
    """The facts, sort orders and lookups of every group of a scan, computed on the worker.

    ``sort_orders`` maps (column, descending) to the scan positions of the groups
    in that order, for every column but Status, which changes after the scan.
    """

    groups: Sequence[DuplicateGroup]
    facts: list[GroupFacts]
    sort_keys: list[tuple[object, ...]]
    sort_orders: dict[tuple[int, bool], list[int]]
    position_of_id: dict[str, int]
    filter_choices: tuple[list[str], list[str]]


def prepare_groups(groups: Sequence[DuplicateGroup], tools: Collection[str], *,
                   progress: ProgressCallback, cancel: threading.Event | None) -> PreparedGroups:
    """Compute the facts, sort orders and lookups of the groups, so the GUI thread does not have to.

    Reports progress and checks ``cancel`` every PREPARE_PAGE groups and before each column's sort.
    """
    facts: list[GroupFacts] = []
    keys: list[tuple[object, ...]] = []
    message = f"Preparing {len(groups):,} groups…"
    for position, group in enumerate(groups):
        if position % PREPARE_PAGE == 0:
            check_cancel(cancel)
            progress(position, len(groups), message)
        if position % GROUPS_PER_YIELD == 0:
            # Each cell the GUI thread paints calls data() and needs the GIL, which a busy thread
            # hands over only after the switch interval. sleep(0) hands it over at once.
            time.sleep(0)
        group_facts = group_view.group_facts(group, tools)
        facts.append(group_facts)
        keys.append(group_view.sort_keys(group, group_facts))
    orders: dict[tuple[int, bool], list[int]] = {}
    for column in SORTED_ON_PREPARE:
        check_cancel(cancel)
        progress(len(groups), len(groups), message)
        column_keys = [group_keys[column] for group_keys in keys]
        for descending in (False, True):
            orders[column, descending] = sorted_positions_in_slices(column_keys, descending)
    return PreparedGroups(groups, facts, keys, orders, positions_by_id(groups), filter_choices(facts))


# Every column but Status, whose values change after the scan.
SORTED_ON_PREPARE = tuple(column for column in range(len(group_view.COLUMN_TITLES))
                          if column != group_view.STATUS)


def sorted_positions(column_keys: Sequence[Any], descending: bool) -> list[int]:
    """Return the positions of the keys in sort order; equal keys keep their scan order either way."""
    return sorted(range(len(column_keys)), key=column_keys.__getitem__, reverse=descending)


def sorted_positions_in_slices(column_keys: Sequence[Any], descending: bool) -> list[int]:
    """Return what sorted_positions() returns, by sorting slices of the keys and merging them.

    sorted() with a key written in C runs no Python bytecode, so it holds the GIL until it
    returns: tens of milliseconds for 100,000 strings, a stall of the GUI thread when a
    worker sorts.
    A slice of SORT_SLICE keys holds it for a few milliseconds, and heapq.merge, written in
    Python, lets the GUI thread run in between. Both keep equal keys in their scan order.
    """
    key = column_keys.__getitem__
    count = len(column_keys)
    slices = []
    for start in range(0, count, SORT_SLICE):
        slices.append(sorted(range(start, min(start + SORT_SLICE, count)), key=key, reverse=descending))
        time.sleep(0)
    return list(heapq.merge(*slices, key=key, reverse=descending))


def positions_by_id(groups: Sequence[DuplicateGroup]) -> dict[str, int]:
    """Return the position of each group in the scan by its id; groups without an id are left out."""
    return {group.group_id: position for position, group in enumerate(groups) if group.group_id}


def filter_choices(facts: Sequence[GroupFacts]) -> tuple[list[str], list[str]]:
    """Return the writers' sources, most frequent first, and the owners, sorted, that the filters offer."""
    sources = Counter(source for group_facts in facts for source in group_facts.sources)
    owners = sorted({owner for group_facts in facts for owner in group_facts.owners}, key=str.casefold)
    return list(group_view.by_count(sources)), owners


class ConflictGroupsModel(QAbstractTableModel):
    """Table model of a scan's groups: a row per group, filtered and sorted, fetched 1,000 rows at a time."""

    KIND, KEY, TASKS, WRITERS, OWNER, NEWEST, STATUS, REASON = (
        group_view.KIND, group_view.KEY, group_view.TASKS, group_view.WRITERS,
        group_view.OWNER, group_view.NEWEST, group_view.STATUS, group_view.REASON,
    )
    HEADERS = group_view.COLUMN_TITLES
    BATCH = 1000

    def __init__(self) -> None:
        super().__init__()
        self._source: Sequence[DuplicateGroup] = ()
        self._groups: list[DuplicateGroup] = []
        self._tools: tuple[str, ...] = ()
        self._kinds: list[GroupKind] | None = None
        self._facts: list[GroupFacts | None] = []
        self._sort_keys: list[tuple[object, ...]] | None = None
        # Scan positions in each column's order by (column, descending), computed once per scan.
        self._sort_orders: dict[tuple[int, bool], list[int]] = {}
        self._position_of_id: dict[str, int] | None = None
        self._filter_choices: tuple[list[str], list[str]] | None = None
        self._status: dict[str, str] = {}
        self._filter = GroupFilter()
        self._sort: tuple[int, Qt.SortOrder] | None = None
        # Positions in _groups of the rows the filter lets through, in the shown order.
        self._shown_positions: list[int] = []
        self._fetched = 0

    # Loading, filtering and sorting: each is a whole new set of rows, so each resets the model.

    def set_groups(self, groups: Sequence[DuplicateGroup], *, tools: Collection[str] = (),
                   keep_sort: bool = True) -> None:
        """Show the groups of a new scan. ``tools`` are the cadence tools that name writers' sources.

        With ``keep_sort`` False the groups come in the scan's order, so that no sort
        key is computed before the worker has prepared them.
        """
        self.beginResetModel()
        if not keep_sort:
            self._sort = None
        self._source = groups
        self._groups = list(groups)
        self._tools = tuple(tools)
        self._kinds = None
        self._facts = [None] * len(self._groups)
        self._sort_keys = None
        self._sort_orders = {}
        self._position_of_id = None
        self._filter_choices = None
        self._status = {}
        self._refresh_shown()
        self.endResetModel()

    def set_prepared(self, prepared: PreparedGroups) -> bool:
        """Store the facts and sort keys computed on the worker and return True.

        Returns False, storing nothing, when they belong to another scan.
        """
        if prepared.groups is not self._source or len(prepared.facts) != len(self._groups):
            return False
        self._facts = list(prepared.facts)
        self._sort_keys = prepared.sort_keys
        self._sort_orders = dict(prepared.sort_orders)
        self._position_of_id = prepared.position_of_id
        self._filter_choices = prepared.filter_choices
        return True

    def set_filter(self, f: GroupFilter) -> None:
        """Show only the groups the filter lets through, in the current sort order."""
        self.beginResetModel()
        self._filter = f
        self._refresh_shown()
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the shown groups on keys computed once per scan. The view calls this on a header click.

        Column -1 puts the groups back in the scan's order.
        """
        if column >= len(self.HEADERS):
            return
        self.beginResetModel()
        self._sort = (column, order) if column >= 0 else None
        self._refresh_shown()
        self.endResetModel()

    def _refresh_shown(self) -> None:
        positions: Sequence[int] = range(len(self._groups))
        if self._sort is not None:
            column, order = self._sort
            positions = self._sorted(column, order == Qt.SortOrder.DescendingOrder)
        self._shown_positions = self._filtered(positions, self._filter)
        self._fetched = min(self.BATCH, len(self._shown_positions))

    def _sorted(self, column: int, descending: bool) -> list[int]:
        order = self._sort_orders.get((column, descending))
        if order is None:
            order = sorted_positions(self._column_keys(column), descending)
            if column != self.STATUS:
                self._sort_orders[column, descending] = order
        return order

    def _filtered(self, positions: Sequence[int], f: GroupFilter) -> list[int]:
        """Return the positions the filter lets through, in their order.

        Each active filter is one list comprehension that indexes plain lists, because
        calling group_view.matches() or a function per group gives the same result but
        takes several times as long at 100,000 groups.
        """
        shown = list(positions)
        if not f.include_clones or f.kinds:
            if self._kinds is None:
                self._kinds = [group.kind for group in self._groups]
            kinds = self._kinds
        if not f.include_clones:
            shown = [position for position in shown if kinds[position] is not GroupKind.CLONES]
        if f.kinds:
            shown = [position for position in shown if kinds[position] in f.kinds]
        if not (f.tool or f.owner or f.date_from or f.date_to or f.text):
            return shown
        facts = self.all_facts()
        if f.tool:
            shown = [position for position in shown if f.tool in facts[position].sources]
        if f.owner:
            shown = [position for position in shown if f.owner in facts[position].owners]
        # Created dates are ISO strings, so the first ten characters compare as dates.
        if f.date_from:
            shown = [position for position in shown if facts[position].newest[:10] >= f.date_from]
        if f.date_to:
            shown = [position for position in shown
                     if facts[position].oldest and facts[position].oldest[:10] <= f.date_to]
        if f.text:
            text = f.text.casefold()
            shown = [position for position in shown if text in facts[position].search_text]
        return shown

    def _column_keys(self, column: int) -> list[Any]:
        if column == self.STATUS:
            return [self._status.get(group.group_id, "") for group in self._groups]
        if self._sort_keys is None:
            facts = self.all_facts()
            self._sort_keys = [group_view.sort_keys(group, facts[position])
                               for position, group in enumerate(self._groups)]
        return [keys[column] for keys in self._sort_keys]

    def all_facts(self) -> list[GroupFacts]:
        """Return the facts of every group of the scan, computing those not prepared yet."""
        for position, facts in enumerate(self._facts):
            if facts is None:
                self._facts[position] = group_view.group_facts(self._groups[position], self._tools)
        return cast(list[GroupFacts], self._facts)

    def filter_choices(self) -> tuple[list[str], list[str]]:
        """Return the writers' sources, most frequent first, and the owners, sorted, of every group."""
        if self._filter_choices is None:
            self._filter_choices = filter_choices(self.all_facts())
        return self._filter_choices

    def any_shown_flagged(self) -> bool:
        """Return True when a group the filter lets through is flagged, fetched or not."""
        groups = self._groups
        return any(groups[position].flagged for position in self._shown_positions)

    def shown_counts(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Count the shown groups by source, by kind and by the month of their newest Task.

        The counts equal group_view's counts_by_tool, counts_by_kind and
        counts_by_month over ``shown_groups()``, read from the facts.
        """
        facts = self.all_facts()
        by_source: Counter[str] = Counter()
        by_kind: Counter[GroupKind] = Counter()
        by_month: Counter[str] = Counter()
        for position in self._shown_positions:
            group_facts = facts[position]
            by_source.update(group_facts.sources)
            by_kind[self._groups[position].kind] += 1
            if group_facts.newest:
                by_month[group_facts.newest[:7]] += 1
        kinds = sorted(GroupKind, key=group_view.KIND_ORDER.__getitem__)
        return (group_view.by_count(by_source), {kind.value: by_kind.get(kind, 0) for kind in kinds},
                dict(sorted(by_month.items())))

    def facts(self, position: int) -> GroupFacts:
        """Return the facts of the group at ``position`` of the scan, computing them on first use."""
        facts = self._facts[position]
        if facts is None:
            facts = group_view.group_facts(self._groups[position], self._tools)
            self._facts[position] = facts
        return facts

    # Rows handed to the view a batch at a time.

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._fetched

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def canFetchMore(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._fetched < len(self._shown_positions)

    def fetchMore(self, parent: ModelIndex = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        more = min(self.BATCH, len(self._shown_positions) - self._fetched)
        if more <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._fetched, self._fetched + more - 1)
        self._fetched += more
        self.endInsertRows()

    def fetch_through(self, row: int) -> None:
        """Hand the view every row up to ``row``, so that it can be selected or scrolled to."""
        while self._fetched <= row and self.canFetchMore():
            self.fetchMore()

    # Reading rows.

    def shown_count(self) -> int:
        """Return how many groups the filter lets through, fetched or not."""
        return len(self._shown_positions)

    def total_count(self) -> int:
        """Return how many groups the scan found."""
        return len(self._groups)

    def group_at(self, row: int) -> DuplicateGroup:
        """Return the group shown on ``row``."""
        return self._groups[self._shown_positions[row]]

    def shown_groups(self) -> list[DuplicateGroup]:
        """Return every group the filter lets through, in the shown order, fetched or not."""
        return [self._groups[position] for position in self._shown_positions]

    def row_of(self, group_id: str) -> int | None:
        """Return the row a group is shown on (fetched or not), or None when the filter hides it."""
        position = self._positions_by_id().get(group_id)
        if position is None:
            return None
        # One search of the shown list costs less than indexing it, and a reset needs one row.
        try:
            return self._shown_positions.index(position)
        except ValueError:
            return None

    def _positions_by_id(self) -> dict[str, int]:
        if self._position_of_id is None:
            self._position_of_id = positions_by_id(self._groups)
        return self._position_of_id

    def status(self, group_id: str) -> str:
        """Return what was done to a group since the scan: "", "resolved", "undone" or "failed: …"."""
        return self._status.get(group_id, "")

    def set_status(self, group_ids: Collection[str], status: str) -> None:
        """Set the status of some groups of this scan, and emit dataChanged for their fetched rows.

        Up to ROWS_SIGNALLED_ONE_BY_ONE groups get one signal per fetched row. More get one
        signal over every fetched row, because finding each of 100,000 rows costs more than
        the view's repaint of the rows it shows. Ids of groups the scan did not find are ignored.
        """
        known = self._positions_by_id()
        changed = {group_id: status for group_id in group_ids if group_id in known}
        self._status.update(changed)
        last_column = len(self.HEADERS) - 1
        if len(changed) > ROWS_SIGNALLED_ONE_BY_ONE:
            if self._fetched:
                self.dataChanged.emit(self.index(0, 0), self.index(self._fetched - 1, last_column))
            return
        for row in map(self.row_of, changed):
            if row is not None and row < self._fetched:
                self.dataChanged.emit(self.index(row, 0), self.index(row, last_column))

    def ids_with_status(self, status: str) -> set[str]:
        """Return the ids of the groups whose status is ``status``."""
        return {group_id for group_id, value in self._status.items() if value == status}

    # Cells.

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        column = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column == self.TASKS:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                        Qt.ItemDataRole.ForegroundRole, ROW_ROLE):
            return None
        position = self._shown_positions[index.row()]
        group = self._groups[position]
        if role == ROW_ROLE:
            return group
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(group, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(group, position, column)
        return self._display(group, position, column)

    def _display(self, group: DuplicateGroup, position: int, column: int) -> str:
        if column == self.KIND:
            return group.kind.value
        if column == self.KEY:
            return group_view.shown_key(group)
        if column == self.TASKS:
            return str(len(group.records))
        if column == self.STATUS:
            return self._status.get(group.group_id, "")
        if column == self.REASON:
            return group.reason
        facts = self.facts(position)
        if column == self.WRITERS:
            return facts.writers
        if column == self.OWNER:
            return facts.owner
        return facts.newest[:10]

    def _tooltip(self, group: DuplicateGroup, position: int, column: int) -> str:
        if column == self.KIND and group.kind is GroupKind.CLONES:
            text = "Clones: one e-mail logged once per related record on purpose, so they are not flagged."
        elif column == self.KEY:
            text = "\n".join(part for part in (group.key, group.subject) if part)
        elif column == self.WRITERS:
            text = "\n".join(f"{record.id}: {record.writer or 'unknown'}" for record in group.records)
        elif column == self.NEWEST:
            facts = self.facts(position)
            text = f"Created from {readable_time(facts.oldest)} to {readable_time(facts.newest)}"
        elif column == self.REASON and group.survivor_reason:
            text = f"{group.reason}\nKept by default: {group.survivor_id}. {group.survivor_reason}"
        else:
            text = self._display(group, position, column)
        # Keys look like markup ("<abc@example.com>"), which a tooltip would otherwise swallow.
        return plain_tooltip(text) if text else ""

    def _foreground(self, group: DuplicateGroup, column: int) -> Any:
        if column == self.STATUS:
            status = self._status.get(group.group_id, "")
            if status == RESOLVED:
                return PASSED_COLOR
            return FAILED_COLOR if status.startswith("failed") else None
        if not group.flagged:
            return NEUTRAL_COLOR
        return None


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


BODY_LABEL = "Body (same letter, same text)"
BODY_TOOLTIP = ("The scan does not read the e-mail bodies into the app, only a fingerprint of each one, so "
                "Tasks whose bodies read the same get the same letter.")

# (row label, how to read it from a Task) for the side-by-side view. The rows that distinguish the Tasks
# (the key, who wrote them, whether they are deleted or archived) come first, so they fit in a short view.
COMPARED_FIELDS: tuple[tuple[str, Callable[[TaskRecord], str]], ...] = (
    ("Id", lambda task: task.id),
    ("Message-ID key", lambda task: task.key or ""),
    ("Written by", lambda task: task.writer),
    ("Deleted", lambda task: _yes_no(task.is_deleted)),
    ("Archived", lambda task: _yes_no(task.is_archived)),
    ("Subject", lambda task: task.subject),
    ("Owner", lambda task: task.owner_name or task.owner_id or ""),
    ("Created by", lambda task: task.created_by_name or task.created_by_id or ""),
    ("Created date", lambda task: readable_time(task.created_date)),
    ("Activity date", lambda task: task.activity_date or ""),
    ("Name (WhoId)", lambda task: task.who_id or ""),
    ("Related to (WhatId)", lambda task: task.what_id or ""),
    (BODY_LABEL, lambda task: task.description_digest),
    ("Subtype", lambda task: task.subtype or ""),
    ("Created by Backstory", lambda task: _yes_no(task.created_by_backstory)),
)


DESCRIPTION_ROW = [label for label, _read in COMPARED_FIELDS].index(BODY_LABEL)


def body_names(digests: Sequence[str]) -> list[str]:
    """Return a name for each Task's body from its digest: "body A", "body B"…, or "empty".

    The scan stores only a digest of each body, so equal names mean equal bodies.
    After "body Z" the names are numbers ("body 27").
    """
    letters: dict[str, str] = {}
    for digest in digests:
        if digest and digest not in letters:
            letters[digest] = chr(ord("A") + len(letters)) if len(letters) < 26 else str(len(letters) + 1)
    return [f"body {letters[digest]}" if digest else "empty" for digest in digests]


class RecordComparisonModel(QAbstractTableModel):
    """The Tasks of one group side by side: a column per Task, a row per field.

    A row whose values differ between the Tasks is marked twice: a "≠" before
    the field name and a tinted background, so color is never the only cue.
    The survivor's column header reads "(survivor)", in bold. After a resolution,
    the header of each Task it deleted reads "(deleted)".
    """

    SURVIVOR_MARK = "survivor"
    DELETED_MARK = "deleted"

    def __init__(self) -> None:
        super().__init__()
        self._records: list[TaskRecord] = []
        self._survivor_id = ""
        self._deleted_ids: frozenset[str] = frozenset()
        self._values: list[list[str]] = []
        self._differs: list[bool] = []

    def set_records(self, records: Sequence[TaskRecord], survivor_id: str = "", *,
                    deleted_ids: Collection[str] = ()) -> None:
        """Show the Tasks of one group, marking the Task ``survivor_id`` as the one kept.

        ``deleted_ids`` are the Tasks a resolution of the group deleted, marked as such.
        """
        self.beginResetModel()
        self._records = list(records)
        self._survivor_id = survivor_id
        self._deleted_ids = frozenset(deleted_ids)
        self._values = [[read(task) for task in self._records] for _label, read in COMPARED_FIELDS]
        self._values[DESCRIPTION_ROW] = body_names(self._values[DESCRIPTION_ROW])
        self._differs = [len(set(values)) > 1 for values in self._values]
        self.endResetModel()

    def differing_fields(self) -> list[str]:
        """Return the labels of the fields whose values differ."""
        return [label for (label, _read), differs in zip(COMPARED_FIELDS, self._differs, strict=True)
                if differs]

    def survivor_column(self) -> int | None:
        """Return the column of the survivor, or None when no Task of the group is the survivor."""
        for column, record in enumerate(self._records):
            if record.id == self._survivor_id:
                return column
        return None

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or not self._records else len(COMPARED_FIELDS)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        survivor = orientation == Qt.Orientation.Horizontal and section == self.survivor_column()
        if role == Qt.ItemDataRole.FontRole and survivor:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Vertical:
            return BODY_TOOLTIP if section == DESCRIPTION_ROW else None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            if survivor:
                return f"Task {section + 1} ({self.SURVIVOR_MARK})"
            if self._records[section].id in self._deleted_ids:
                return f"Task {section + 1} ({self.DELETED_MARK})"
            return f"Task {section + 1}"
        label = COMPARED_FIELDS[section][0]
        return f"≠ {label}" if self._differs[section] else label

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._values[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return value
        if role == Qt.ItemDataRole.ToolTipRole:
            if index.row() == DESCRIPTION_ROW:
                return BODY_TOOLTIP
            return plain_tooltip(value) if value else None
        if role == Qt.ItemDataRole.BackgroundRole and self._differs[index.row()]:
            return DIFFERENT_BACKGROUND
        return None
