"""The plan table over a long plan: rows are read only when shown, filtered by action, matched to outcomes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import overload

import pytest
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from backstory_desktop.core.jobs import Cancelled, no_progress
from backstory_desktop.core.plan import Action, PlanRow
from backstory_desktop.gui.models import PlanTableModel, index_actions
from backstory_desktop.gui.widgets import compact_rows
from backstory_desktop.salesforce.tasks import UpsertOutcome

LONG_PLAN_ROWS = 300_000
ACTIONS = list(Action)


class CountingRows(Sequence[PlanRow]):
    """A long plan made on demand, counting how many rows were read, as a journal-backed plan would."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.reads = 0

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, position: int) -> PlanRow: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[PlanRow]: ...

    def __getitem__(self, position: int | slice) -> PlanRow | Sequence[PlanRow]:
        if isinstance(position, slice):
            raise TypeError("the plan table reads rows one at a time")
        if not 0 <= position < self.length:
            raise IndexError(position)
        self.reads += 1
        action = ACTIONS[position % len(ACTIONS)]
        return PlanRow(action, f"big.mbox, message {position + 1}", f"<m{position}@example.com>",
                       f"Subject {position}", "no Task holds this key yet")


def test_plan_model__long_plan_reads_visible_rows(qtbot: QtBot) -> None:
    rows = CountingRows(LONG_PLAN_ROWS)
    model = PlanTableModel()
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(model)
    compact_rows(table)
    table.resize(1100, 720)
    table.show()

    model.set_rows(rows)
    qtbot.waitExposed(table)
    table.scrollToBottom()
    qtbot.wait(50)

    assert model.rowCount() == LONG_PLAN_ROWS
    assert model.index(LONG_PLAN_ROWS - 1, PlanTableModel.SUBJECT).data() == f"Subject {LONG_PLAN_ROWS - 1}"
    assert rows.reads < 1000, f"{rows.reads} rows read to show one screen"


def test_plan_model__filter_shows_one_action(qtbot: QtBot) -> None:
    rows = CountingRows(1000)
    model = PlanTableModel()
    model.set_rows(rows)

    positions = index_actions(rows, progress=no_progress, cancel=threading.Event())
    model.set_filter(positions[Action.UPDATE])

    assert model.rowCount() == 200
    shown = {model.index(row, PlanTableModel.ACTION).data() for row in range(model.rowCount())}
    assert shown == {"update"}
    model.set_filter(None)
    assert model.rowCount() == 1000


def test_plan_model__filtered_passes_model_tester(qtmodeltester: ModelTester) -> None:
    rows = CountingRows(50)
    model = PlanTableModel()
    model.set_rows(rows)
    model.set_filter([3, 8, 13])
    qtmodeltester.check(model)  # type: ignore[no-untyped-call]


def test_plan_model__outcome_follows_row_through_filter() -> None:
    rows = CountingRows(20)
    model = PlanTableModel()
    model.set_rows(rows)
    created = UpsertOutcome(key="<m6@example.com>", success=True, created=True,
                            record_id="00T000000000006AAA", error_code=None, message="")

    model.set_outcomes([(rows[6], created)])
    model.set_filter([1, 6, 11])

    assert model.index(1, PlanTableModel.OUTCOME).data() == "created 00T000000000006AAA"
    assert model.index(0, PlanTableModel.OUTCOME).data() == ""


def test_index_actions__cancel_stops_scan() -> None:
    cancel = threading.Event()
    cancel.set()
    rows = CountingRows(5000)

    with pytest.raises(Cancelled):
        index_actions(rows, progress=no_progress, cancel=cancel)
    assert rows.reads == 0
