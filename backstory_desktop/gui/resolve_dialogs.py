"""The dialogs of a duplicate resolution: one group, every shown group, and undo.

Each dialog shows the changes as a diff before the admin confirms them. The
resolve dialogs plan from values read from the org just before they opened, so
what the admin confirms is what the resolution writes. The undo dialog lists
what the snapshot records that the resolution changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from PySide6.QtCore import QAbstractTableModel, QItemSelection, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.resolution import (
    FILLABLE_FIELDS,
    RECYCLE_BIN_DAYS,
    ResolutionChoice,
    ResolutionPlan,
    ResolveAction,
    default_choice,
    diff_value,
    fillable,
    plan_resolution,
)
from backstory_desktop.core.survivor import SURVIVOR_RULE, readable_time
from backstory_desktop.enablement.resolution import (
    SnapshotSummary,
    ran_group_ids,
    summarise_snapshot,
    undo_lines,
)
from backstory_desktop.gui.dialogs import change_list_html
from backstory_desktop.gui.pages.plan_text import counted
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    NEUTRAL_COLOR,
    ElideMiddleDelegate,
    compact_rows,
    note,
    plain_label,
)
from backstory_desktop.store.snapshots import Snapshot

RESOLVE = "Resolve"
RESOLVE_ALL = "Resolve all"
UNDO = "Undo"
DEFAULT_MARK = " (default)"
# Width and height in pixels the dialogs open with, so that they fit a 1100x760 window.
DIALOG_SIZE = (1000, 660)
# The maximum number of diff lines a dialog shows, so a bulk resolution's undo opens at once.
DIFF_LINE_LIMIT = 400

ModelIndex = QModelIndex | QPersistentModelIndex

RECORD_HEADERS = ("Keep", "Task ID", "Message-ID key", "Written by", "Created", "State", "Subject")
KEY_COLUMN = 2
# The records table's columns that share the width left by the others: the key, the writer and Subject.
SHARED_COLUMNS = (KEY_COLUMN, 3, 6)
# The maximum number of a group's Tasks the table shows without scrolling.
RECORD_ROWS_SHOWN = 8


def record_state(values: Mapping[str, object]) -> str:
    """Return "in recycle bin", "archived", both or "" for a Task's fresh values."""
    states = [name for name, flag in (("in recycle bin", "IsDeleted"), ("archived", "IsArchived"))
              if values.get(flag)]
    return ", ".join(states)


def how_resolved(group: DuplicateGroup) -> str:
    """Say in plain words what resolving the group does, as merging Tasks is not possible."""
    if group.kind is GroupKind.CLONES:
        return ("These clones are logged on purpose, so by default every Task stays and only the others "
                "lose the key, which lets the Message-ID field be made Unique.")
    return ("Salesforce cannot merge Tasks, so one Task is kept, it takes what you tick below into its "
            "empty fields, and the others are deleted after their key is cleared.")


def diff_view() -> tuple[QScrollArea, QLabel]:
    """Return a scrolling area with a label that shows change lines as a diff."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(label)
    scroll.setMinimumHeight(120)
    return scroll, label


def button_box(dialog: QDialog, action: str) -> tuple[QDialogButtonBox, QPushButton]:
    """Return the action and Cancel buttons of a dialog; Cancel is the default, as in every confirmation."""
    buttons = QDialogButtonBox()
    action_button = buttons.addButton(action, QDialogButtonBox.ButtonRole.AcceptRole)
    cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
    cancel.setDefault(True)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons, action_button


class ResolveDialog(QDialog):
    """Resolve one group: the Task to keep, the empty fields it takes from the others, and the diff.

    The default survivor is ticked and marked; the diff follows every choice,
    and Resolve makes exactly what it lists. For clones the admin may keep every
    Task and only clear the key on the others.
    """

    def __init__(self, group: DuplicateGroup, current: Mapping[str, Mapping[str, object]], key_field: str,
                 parent: QWidget | None = None, *, flag_field: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Resolve a duplicate group")
        self.resize(*DIALOG_SIZE)
        self.group = group
        self.current = current
        self.key_field = key_field
        self.flag_field = flag_field
        self.default = default_choice(group)
        self.fill_boxes: dict[str, QCheckBox] = {}

        layout = QVBoxLayout(self)
        layout.addWidget(note(f"{group.reason}. {how_resolved(group)}"))
        layout.addWidget(self._survivor_box())
        self.action_box = self._action_box()
        layout.addWidget(self.action_box)
        self.fills_box = QGroupBox("Empty fields of the kept Task to fill from the others")
        self.fills_layout = QGridLayout(self.fills_box)
        self.fills_layout.setColumnStretch(1, 1)
        layout.addWidget(self.fills_box)

        layout.addWidget(plain_label("Changes to make in the org:"))
        scroll, self.diff = diff_view()
        layout.addWidget(scroll, 1)
        self.problem = note("")
        self.problem.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.problem.hide()
        layout.addWidget(self.problem)
        buttons, self.resolve_button = button_box(self, RESOLVE)
        layout.addWidget(buttons)
        self._survivor_changed()

    def _survivor_box(self) -> QGroupBox:
        box = QGroupBox("Task to keep")
        box_layout = QVBoxLayout(box)
        default_reason = (f" By this rule the Task marked{DEFAULT_MARK} is kept. {self.group.survivor_reason}"
                          if self.group.survivor_reason else "")
        rule = note(SURVIVOR_RULE + default_reason)
        rule.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")
        box_layout.addWidget(rule)

        self.records = QTableWidget(len(self.group.records), len(RECORD_HEADERS))
        self.records.setHorizontalHeaderLabels(RECORD_HEADERS)
        self.records.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.records.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.records.verticalHeader().hide()
        compact_rows(self.records)

        self.survivor_group = QButtonGroup(self)
        self.survivor_buttons: dict[str, QRadioButton] = {}
        for row, record in enumerate(self.group.records):
            values = self.current.get(record.id)
            is_default = record.id == self.default.survivor_id
            button = QRadioButton("Keep" + (DEFAULT_MARK if is_default else ""))
            button.setChecked(is_default)
            # A Task that could not be read again is left out of the resolution, so it cannot be kept.
            button.setEnabled(values is not None)
            self.survivor_group.addButton(button)
            self.survivor_buttons[record.id] = button
            button.toggled.connect(self._survivor_toggled)
            self.records.setCellWidget(row, 0, button)
            state = record_state(values) if values is not None else "could not be read"
            cells = (record.id, record.key or "", record.writer, readable_time(record.created_date), state,
                     record.subject)
            for column, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.records.setItem(row, column, item)
        # Short columns fit their text; the key, the writer and Subject share the rest, so the table never
        # scrolls sideways. A key keeps its start and its domain when it is cut.
        self.key_delegate = ElideMiddleDelegate(self.records)
        self.records.setItemDelegateForColumn(KEY_COLUMN, self.key_delegate)
        header = self.records.horizontalHeader()
        for column in range(len(RECORD_HEADERS)):
            mode = (QHeaderView.ResizeMode.Stretch if column in SHARED_COLUMNS
                    else QHeaderView.ResizeMode.ResizeToContents)
            header.setSectionResizeMode(column, mode)

        # The table is as tall as its rows, up to RECORD_ROWS_SHOWN, so the diff gets the rest.
        shown_rows = min(len(self.group.records), RECORD_ROWS_SHOWN)
        self.records.setFixedHeight(header.sizeHint().height()
                                    + shown_rows * self.records.verticalHeader().defaultSectionSize()
                                    + 2 * self.records.frameWidth() + 2)
        box_layout.addWidget(self.records)
        return box

    def _action_box(self) -> QGroupBox:
        box = QGroupBox("The other Tasks")
        box_layout = QVBoxLayout(box)
        self.delete_button = QRadioButton("Delete them after clearing their key (they stay in the recycle "
                                          f"bin for {RECYCLE_BIN_DAYS} days, so undo can restore them)")
        self.clear_key_button = QRadioButton("Keep them all and only clear their key (for clones: "
                                             "one e-mail logged on purpose once per related record)")
        clear_key = self.default.action is ResolveAction.CLEAR_KEY_ON_OTHERS
        self.clear_key_button.setChecked(clear_key)
        self.delete_button.setChecked(not clear_key)
        self.delete_button.toggled.connect(self._update_plan)
        box_layout.addWidget(self.delete_button)
        box_layout.addWidget(self.clear_key_button)
        # Only clones may keep every Task; any other group's duplicates are deleted.
        box.setVisible(self.group.kind is GroupKind.CLONES)
        return box

    def survivor_id(self) -> str:
        """Return the Id of the Task the admin chose to keep."""
        return next((record_id for record_id, button in self.survivor_buttons.items() if button.isChecked()),
                    self.default.survivor_id)

    def action(self) -> ResolveAction:
        """Return what happens to the other Tasks."""
        return (ResolveAction.CLEAR_KEY_ON_OTHERS if self.clear_key_button.isChecked()
                else ResolveAction.DELETE_OTHERS)

    def choice(self) -> ResolutionChoice:
        """Return the admin's choice as the dialog shows it."""
        fields = tuple(name for name, box in self.fill_boxes.items() if box.isChecked())
        return ResolutionChoice(group_id=self.default.group_id, survivor_id=self.survivor_id(),
                                fill_fields=fields, action=self.action())

    def plan(self) -> ResolutionPlan:
        """Return the writes the dialog's diff lists."""
        return plan_resolution(self.group, self.choice(), self.current, self.key_field,
                               flag_field=self.flag_field)

    def _survivor_toggled(self, checked: bool) -> None:
        # Each change of survivor unticks one button and ticks another; only the ticked one counts.
        if checked:
            self._survivor_changed()

    def _survivor_changed(self) -> None:
        self._fill_field_boxes()
        self._update_plan()

    def _fill_field_boxes(self) -> None:
        """List the survivor's empty fields that another Task fills, each ticked, with the value it takes."""
        ticked = {name for name, box in self.fill_boxes.items() if box.isChecked()}
        previous = set(self.fill_boxes)
        while self.fills_layout.count():
            item = self.fills_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.fill_boxes = {}

        survivor_id = self.survivor_id()
        survivor = self.current.get(survivor_id, {})
        others = [values for record_id, values in self.current.items()
                  if record_id != survivor_id and record_id in {record.id for record in self.group.records}]
        fills = fillable(survivor, others, [*FILLABLE_FIELDS, self.key_field])
        for row, (name, fill) in enumerate(fills.items()):
            box = QCheckBox(name)
            # A field unticked by the admin stays unticked when another survivor is chosen.
            box.setChecked(name in ticked or name not in previous)
            box.toggled.connect(self._update_plan)
            source = plain_label(f"{diff_value(fill.value)}  (from {fill.from_id})")
            self.fills_layout.addWidget(box, row, 0)
            self.fills_layout.addWidget(source, row, 1)
            self.fill_boxes[name] = box
        if not fills:
            self.fills_layout.addWidget(plain_label("The kept Task has no empty field that another "
                                                    "Task fills."), 0, 0, 1, 2)

    def _update_plan(self) -> None:
        deleting = self.action() is ResolveAction.DELETE_OTHERS
        # The other Tasks stay when only their key is cleared, so the kept Task takes nothing from them.
        self.fills_box.setEnabled(deleting)
        try:
            plan = self.plan()
        except ValueError as error:
            self.diff.setText("")
            self.problem.setText(f"This choice cannot be resolved: {error}. Choose another Task to keep.")
            self.problem.show()
            self.resolve_button.setEnabled(False)
            return
        self.problem.hide()
        self.diff.setText(change_list_html(limited(plan.lines())))
        self.resolve_button.setEnabled(plan.has_changes)


class ListTableModel(QAbstractTableModel):
    """A read-only table with one row per item. Subclasses set HEADERS and return each item's cells."""

    HEADERS: tuple[str, ...] = ()
    ROLES: tuple[Qt.ItemDataRole, ...] = (Qt.ItemDataRole.DisplayRole,)

    def __init__(self, items: Sequence[Any]) -> None:
        super().__init__()
        self.items = list(items)

    def cells(self, item: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in self.ROLES:
            return None
        return self.cells(self.items[index.row()])[index.column()]


class PlanTableModel(ListTableModel):
    """One row per planned group: the group, the Task kept, how many Tasks are deleted, the fields filled."""

    HEADERS = ("Group", "Kind", "Keep", "Deleted", "Keys cleared", "Fields filled")
    ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)

    def __init__(self, plans: Sequence[ResolutionPlan], titles: Mapping[str, str]) -> None:
        super().__init__(plans)
        self.titles = titles

    def cells(self, item: Any) -> tuple[str, ...]:
        plan = cast(ResolutionPlan, item)
        return (self.titles.get(plan.group_id, plan.group_id), str(plan.kind), plan.survivor_id,
                f"{len(plan.delete_ids):,}", f"{len(plan.clear_key_ids):,}",
                ", ".join(fill.field for fill in plan.fills))


def bulk_lines(plans: Sequence[ResolutionPlan]) -> list[str]:
    """Return the diff of many plans as totals, one kind of write a line."""
    restored_survivors = sum(1 for plan in plans if plan.survivor_id in plan.undelete_first_ids)
    restored = sum(len(plan.undelete_first_ids) for plan in plans) - restored_survivors
    cleared = sum(len(plan.clear_key_ids) for plan in plans)
    fills = sum(len(plan.fills) for plan in plans)
    filled_tasks = sum(1 for plan in plans if plan.fills)
    deleted = sum(len(plan.delete_ids) for plan in plans)
    kept = sum(1 for plan in plans if plan.action is ResolveAction.CLEAR_KEY_ON_OTHERS)
    key_field = next((plan.key_field for plan in plans if plan.key_field), "the key field")
    lines = [f"= keep one Task in each of {counted(len(plans), 'group')}"]
    if restored_survivors:
        lines.append(f"+ restore {counted(restored_survivors, 'kept Task')} from the recycle bin")
    if restored:
        lines.append(f"+ restore {counted(restored, 'Task')} from the recycle bin to clear the key")
    if cleared:
        lines.append(f"~ set {key_field} to empty on {counted(cleared, 'Task')}")
    if fills:
        lines.append(f"~ fill {counted(fills, 'empty field')} on {counted(filled_tasks, 'kept Task')}")
    if deleted:
        lines.append(f"- delete {counted(deleted, 'Task')} (deleted Tasks stay in the recycle bin for "
                     f"{RECYCLE_BIN_DAYS} days)")
    if kept:
        lines.append(f"• keep every Task of {counted(kept, 'group')} of clones, only their key is cleared")
    return lines


def bulk_note(plans: Sequence[ResolutionPlan]) -> str:
    """Explain a bulk resolution: the default rule, and why groups of clones are in it, when they are."""
    text = (f"Resolve {counted(len(plans), 'group')} by the default rule. {SURVIVOR_RULE} Each kept Task "
            "takes the others' values into its empty fields.")
    clones = sum(1 for plan in plans if plan.action is ResolveAction.CLEAR_KEY_ON_OTHERS)
    if clones:
        text += (f" {counted(clones, 'group')} of clones {'is' if clones == 1 else 'are'} included because "
                 "more than one of their Tasks holds the key, which blocks making the field Unique: every "
                 "Task stays and only the others lose the key.")
    return (f"{text} Select a group to see its changes. To choose another Task to keep, cancel and resolve "
            "that group on its own.")


class BulkResolveDialog(QDialog):
    """Resolve every shown group by the default rule: each plan, the totals as a diff, the problems."""

    def __init__(self, plans: Sequence[ResolutionPlan], problems: Sequence[str], titles: Mapping[str, str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Resolve all shown groups")
        self.resize(*DIALOG_SIZE)
        self.plans = [plan for plan in plans if plan.has_changes]

        layout = QVBoxLayout(self)
        layout.addWidget(note(bulk_note(self.plans)))
        self.model = PlanTableModel(self.plans, titles)
        self.table = _list_table(self.model, (260, 90, 150, 70, 90))
        # The selection, unlike the current row, changes only when the admin picks a row: totals show first.
        self.table.selectionModel().selectionChanged.connect(self._show_group)
        layout.addWidget(self.table, 3)

        self.group_diff_title = plain_label("Changes to make in the org, in total:")
        layout.addWidget(self.group_diff_title)
        scroll, self.diff = diff_view()
        layout.addWidget(scroll, 2)
        self.diff.setText(change_list_html(bulk_lines(self.plans)))
        self.problems = note(" ".join(problems))
        self.problems.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.problems.setVisible(bool(problems))
        layout.addWidget(self.problems)

        row = QHBoxLayout()
        self.totals_button = QPushButton("Show totals")
        self.totals_button.clicked.connect(self._show_totals)
        row.addWidget(self.totals_button)
        row.addStretch(1)
        buttons, self.resolve_button = button_box(self, RESOLVE_ALL)
        self.resolve_button.setEnabled(bool(self.plans))
        row.addWidget(buttons)
        layout.addLayout(row)

    def _show_group(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = {index.row() for index in selected.indexes()}
        if not rows:
            return
        plan = self.plans[min(rows)]
        self.group_diff_title.setText(f"Changes to make in the org for group {plan.group_id}:")
        self.diff.setText(change_list_html(limited(plan.lines())))

    def _show_totals(self) -> None:
        self.table.clearSelection()
        self.group_diff_title.setText("Changes to make in the org, in total:")
        self.diff.setText(change_list_html(bulk_lines(self.plans)))


@dataclass(frozen=True)
class UndoEntry:
    """One resolution in the undo list: its summary, the diff of its undo, and the groups it resolved.

    ``ran_group_ids`` are the groups the resolution started writing, which undo puts
    back; ``warnings`` are sentences on what undo cannot do as the org is now.
    """

    summary: SnapshotSummary
    lines: tuple[str, ...]
    group_ids: tuple[str, ...]
    ran_group_ids: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def undo_entry(snapshot: Snapshot, now: datetime | None = None, *,
               warnings: Sequence[str] = ()) -> UndoEntry:
    """Return a snapshot as the undo list shows it.

    NOTE: the diff takes the Tasks as the resolution left them, because reading every
    snapshot's Tasks would slow the list. Undo reads them again, leaves a value changed
    since as it is, and names it in its result.
    """
    plans = snapshot.resolution_plans
    return UndoEntry(summarise_snapshot(snapshot, now), tuple(undo_lines(snapshot)),
                     tuple(plan.group_id for plan in plans), ran_group_ids=tuple(ran_group_ids(snapshot)),
                     warnings=tuple(warnings))


def limited(lines: Sequence[str]) -> list[str]:
    """Return at most DIFF_LINE_LIMIT lines, the last one saying how many more there are."""
    if len(lines) <= DIFF_LINE_LIMIT:
        return list(lines)
    more = len(lines) - DIFF_LINE_LIMIT + 1
    return [*lines[: DIFF_LINE_LIMIT - 1], f"• … and {more:,} more lines"]


class UndoTableModel(ListTableModel):
    """One row per resolution made on the org from this computer, newest first."""

    HEADERS = ("Made", "By", "Groups", "Tasks", "Deleted", "Status", "Undo")

    def cells(self, item: Any) -> tuple[str, ...]:
        summary = cast(UndoEntry, item).summary
        possible = "in part" if summary.note else "yes"
        if not summary.undoable:
            possible = "no"
        return (readable_time(summary.created_at), summary.username, f"{summary.groups:,}",
                f"{summary.records:,}", f"{summary.deleted:,}", summary.status, possible)


class UndoDialog(QDialog):
    """Undo a resolution: the resolutions made on the org, what undo can still restore, and its diff."""

    def __init__(self, entries: Sequence[UndoEntry], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Undo a resolution")
        self.resize(*DIALOG_SIZE)
        self.entries = list(entries)

        layout = QVBoxLayout(self)
        layout.addWidget(note(
            "Undo restores the deleted Tasks from the recycle bin and puts back every value the resolution "
            f"changed, from the snapshot written before it. Salesforce purges the recycle bin after "
            f"{RECYCLE_BIN_DAYS} days, and a purged Task cannot be restored."))
        self.model = UndoTableModel(self.entries)
        self.table = _list_table(self.model, (180, 250, 70, 70, 70, 120))
        self.table.selectionModel().currentRowChanged.connect(self._show_entry)
        layout.addWidget(self.table, 2)

        self.entry_note = note("")
        self.entry_note.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        layout.addWidget(self.entry_note)
        # What undo cannot do as the org is now (a field made Unique since), above the diff it changes.
        self.warnings = note("")
        self.warnings.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        layout.addWidget(self.warnings)
        layout.addWidget(plain_label("Changes undo makes in the org:"))
        scroll, self.diff = diff_view()
        layout.addWidget(scroll, 3)
        buttons, self.undo_button = button_box(self, UNDO)
        layout.addWidget(buttons)

        first = next((row for row, entry in enumerate(self.entries) if entry.summary.undoable), 0)
        self.table.setCurrentIndex(self.model.index(first, 0))
        self._show_entry(self.model.index(first, 0), QModelIndex())

    def chosen(self) -> UndoEntry | None:
        """Return the resolution selected, when undo can still act on it."""
        row = self.table.currentIndex().row()
        if not 0 <= row < len(self.entries) or not self.entries[row].summary.undoable:
            return None
        return self.entries[row]

    def _show_entry(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.undo_button.setEnabled(False)
            return
        entry = self.entries[current.row()]
        self.entry_note.setText(entry.summary.note)
        self.entry_note.setVisible(bool(entry.summary.note))
        self.warnings.setText(" ".join(entry.warnings))
        self.warnings.setVisible(bool(entry.warnings))
        self.diff.setText(change_list_html(limited(entry.lines)))
        self.undo_button.setEnabled(entry.summary.undoable)


def _list_table(model: QAbstractTableModel, widths: Sequence[int]) -> QTableView:
    """Return a table of ``model`` that selects one whole row, with the given starting column widths."""
    table = QTableView()
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    compact_rows(table)
    for column, width in enumerate(widths):
        table.setColumnWidth(column, width)
    return table
