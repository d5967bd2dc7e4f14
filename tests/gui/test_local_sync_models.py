"""The plan and queue tables over long runs: rows and outcomes are read only when shown."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from backstory_desktop.core.jobs import Cancelled, no_progress
from backstory_desktop.core.plan import Action, PlanRow, ReasonCode
from backstory_desktop.gui.models import (
    PlanTableModel,
    QueueModel,
    index_actions,
    index_plan_rows,
    next_attempt_text,
)
from backstory_desktop.gui.widgets import compact_rows
from backstory_desktop.store.journal import ItemOutcome, ItemState, QueuedItem

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
    created = ItemOutcome(6, ItemState.CREATED, "00T000000000006AAA", None, "")
    queued = ItemOutcome(11, ItemState.QUEUED, None, "REQUEST_LIMIT_EXCEEDED", "")
    journal = {6: created, 11: queued}

    model.set_outcomes(lambda start, stop: [journal[seq] for seq in range(start, stop) if seq in journal])
    model.set_filter([1, 6, 11])

    assert model.index(1, PlanTableModel.OUTCOME).data() == "created 00T000000000006AAA"
    assert model.index(2, PlanTableModel.OUTCOME).data() == "queued: REQUEST_LIMIT_EXCEEDED"
    assert model.index(0, PlanTableModel.OUTCOME).data() == ""


def test_plan_model__outcomes_read_a_page_per_screen() -> None:
    rows = CountingRows(LONG_PLAN_ROWS)
    model = PlanTableModel()
    model.set_rows(rows)
    reads: list[tuple[int, int]] = []

    def read(start: int, stop: int) -> list[ItemOutcome]:
        reads.append((start, stop))
        return [ItemOutcome(seq, ItemState.IN_DOUBT, None, None, "") for seq in range(start, stop)]

    model.set_outcomes(read)
    last = LONG_PLAN_ROWS - 1
    texts = {model.index(row, PlanTableModel.OUTCOME).data() for row in range(last - 40, last + 1)}

    assert texts == {"in doubt: looked up before it is sent again"}
    assert len(reads) == 1
    assert reads[0][1] - reads[0][0] <= PlanTableModel.OUTCOME_PAGE


def test_plan_model__source_column_names_row() -> None:
    model = PlanTableModel()
    model.set_rows(CountingRows(3))

    assert model.index(2, PlanTableModel.SOURCE).data() == "message 3"
    source_tip = model.index(2, PlanTableModel.SOURCE).data(Qt.ItemDataRole.ToolTipRole)
    assert source_tip.startswith("big.mbox, message 3")
    assert model.index(2, PlanTableModel.KEY).data(Qt.ItemDataRole.ToolTipRole) == "<m2@example.com>"


def test_plan_model__update_key_shows_kept_spelling() -> None:
    stored = PlanRow(Action.UPDATE, "a.mbox, message 1", "<kept@example.com>", "Kept", "updates Task 00T",
                   upsert_key="kept@example.com", reason_code=ReasonCode.UPDATE_STORED_SPELLING)
    created = PlanRow(Action.CREATE, "a.mbox, message 2", "<new@example.com>", "New",
                      "no Task holds this key yet", upsert_key="<new@example.com>")
    model = PlanTableModel()
    model.set_rows([stored, created])

    assert model.index(0, PlanTableModel.KEY).data() == "kept@example.com"
    tip = model.index(0, PlanTableModel.KEY).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("kept@example.com: the spelling the Task already holds"), tip
    assert "<kept@example.com>" in tip
    assert model.index(1, PlanTableModel.KEY).data() == "<new@example.com>"
    assert model.index(1, PlanTableModel.KEY).data(Qt.ItemDataRole.ToolTipRole) == "<new@example.com>"


def test_queue_model__reads_only_shown_pages() -> None:
    pages: list[tuple[int, int]] = []
    due = datetime.now(UTC) + timedelta(minutes=2)

    def read(offset: int, limit: int) -> list[QueuedItem]:
        pages.append((offset, limit))
        return [QueuedItem(seq, f"<q{seq}@example.com>", f"tasks.csv, row {seq + 2}", "s", 1, due,
                           "UNABLE_TO_LOCK_ROW", "busy") for seq in range(offset, offset + limit)]

    model = QueueModel()
    model.set_queue(50_000, read)

    assert model.rowCount() == 50_000
    assert model.index(49_999, QueueModel.KEY).data() == "<q49999@example.com>"
    assert model.index(49_998, QueueModel.SOURCE).data() == "row 50000"
    assert model.index(49_998, QueueModel.SOURCE).data(Qt.ItemDataRole.ToolTipRole) == "tasks.csv, row 50000"
    assert pages == [(49_800, QueueModel.PAGE)]
    assert model.index(0, QueueModel.NEXT).data().startswith("in 2 min (")


def test_next_attempt_text__names_offset() -> None:
    now = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)

    assert next_attempt_text(now + timedelta(minutes=5), now).startswith("in 5 min (")
    assert " UTC+" in next_attempt_text(now, now) or " UTC-" in next_attempt_text(now, now)
    assert next_attempt_text(now - timedelta(seconds=1), now).startswith("due now")
    assert next_attempt_text(None, now) == ""


def test_index_actions__cancel_stops_scan() -> None:
    cancel = threading.Event()
    cancel.set()
    rows = CountingRows(5000)

    with pytest.raises(Cancelled):
        index_actions(rows, progress=no_progress, cancel=cancel)
    assert rows.reads == 0


def test_index_plan_rows__positions_per_reason() -> None:
    codes = [ReasonCode.NEW_KEY, ReasonCode.UPDATE_STORED_SPELLING, ReasonCode.UPDATE, ReasonCode.NEW_KEY]
    actions = [Action.CREATE, Action.UPDATE, Action.UPDATE, Action.CREATE]
    rows = [PlanRow(action, f"sample.mbox, message {number + 1}", f"<m{number}@example.com>", "Subject",
                    "reason", reason_code=code)
            for number, (action, code) in enumerate(zip(actions, codes, strict=True))]

    index = index_plan_rows(rows, progress=no_progress, cancel=threading.Event())

    assert list(index.reasons[ReasonCode.NEW_KEY]) == [0, 3]
    assert list(index.reasons[ReasonCode.UPDATE_STORED_SPELLING]) == [1]
    assert list(index.reasons[ReasonCode.UPDATE]) == [2]
    assert list(index.reasons[ReasonCode.NO_KEY]) == []
    assert list(index.actions[Action.UPDATE]) == [1, 2]
