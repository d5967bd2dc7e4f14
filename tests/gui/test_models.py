"""Table models of the plan, the duplicate groups and the side-by-side view."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.plan import Action, PlanRow
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.gui.conflict_models import ConflictGroupsModel, RecordComparisonModel
from backstory_desktop.gui.models import DIFFERENT_BACKGROUND, PlanTableModel
from backstory_desktop.store.journal import ItemOutcome, ItemState

LOGGED_BY_TOOL = TaskRecord(
    id="00T000000000001AAA", key="<ABC123@example.com>", subject="Re: pricing",
    owner_name="Noel Hayes", created_by_name="Outreach Integration",
    created_date="2026-11-02T10:00:01.000+0000", subtype="Email",
)
LOGGED_AGAIN = TaskRecord(
    id="00T000000000002AAA", key="abc123@example.com", subject="Re: pricing",
    owner_name="Noel Hayes", created_by_name="Backstory Integration",
    created_date="2026-11-02T10:00:03.000+0000", subtype="Email", created_by_backstory=True,
    is_deleted=True,
)


def plan_rows() -> list[PlanRow]:
    return [
        PlanRow(Action.CREATE, "sample.mbox, message 1", "<new@example.com>", "Hello",
                "no Task holds this key yet", upsert_key="<new@example.com>"),
        PlanRow(Action.UPDATE, "sample.mbox, message 2", "<ABC123@example.com>", "Re: pricing",
                "updates Task 00T000000000001AAA", upsert_key="<ABC123@example.com>",
                existing=(LOGGED_BY_TOOL,)),
        PlanRow(Action.INVALID, "sample.mbox, message 3", None, "Lyrics", "no Message-ID header"),
    ]


def test_plan_model__passes_model_tester(qtmodeltester: ModelTester) -> None:
    model = PlanTableModel()
    model.set_rows(plan_rows())
    qtmodeltester.check(model)


def test_plan_model__outcomes_fill_only_outcome_column(qtbot: QtBot) -> None:
    model = PlanTableModel()
    model.set_rows(plan_rows())
    created = ItemOutcome(0, ItemState.CREATED, "00T000000000009AAA", None, "")

    with qtbot.waitSignal(model.dataChanged) as changed:
        model.set_outcomes(lambda start, stop: [created] if start <= created.seq < stop else [])

    top_left, bottom_right = changed.args[0], changed.args[1]
    assert (top_left.column(), bottom_right.column()) == (PlanTableModel.OUTCOME, PlanTableModel.OUTCOME)
    assert model.index(0, PlanTableModel.OUTCOME).data() == "created 00T000000000009AAA"
    assert model.index(1, PlanTableModel.OUTCOME).data() == ""
    assert model.index(1, PlanTableModel.EXISTING).data() == "00T000000000001AAA"


def test_groups_model__passes_model_tester(qtmodeltester: ModelTester) -> None:
    model = ConflictGroupsModel()
    group = DuplicateGroup(GroupKind.NORMALISED, "abc123@example.com", (LOGGED_BY_TOOL, LOGGED_AGAIN),
                           "2 Tasks hold keys that differ only in brackets and case")
    model.set_groups([group])
    qtmodeltester.check(model)
    assert model.index(0, ConflictGroupsModel.TASKS).data() == "2"


def test_comparison_model__marks_differing_fields(qtmodeltester: ModelTester) -> None:
    model = RecordComparisonModel()
    model.set_records([LOGGED_BY_TOOL, LOGGED_AGAIN])
    qtmodeltester.check(model)

    differing = model.differing_fields()
    assert "Subject" not in differing
    assert {"Id", "Message-ID key", "Created by", "Created by Backstory", "Deleted"} <= set(differing)
    row_labels = [model.headerData(row, Qt.Orientation.Vertical) for row in range(model.rowCount())]
    subject_row = row_labels.index("Subject")
    deleted_row = row_labels.index("≠ Deleted")
    assert model.index(subject_row, 0).data(Qt.ItemDataRole.BackgroundRole) is None
    assert model.index(deleted_row, 1).data(Qt.ItemDataRole.BackgroundRole) == DIFFERENT_BACKGROUND
    assert model.index(deleted_row, 1).data() == "yes"


def test_plan_model__unsent_row_tooltip_names_existing_tasks(qtbot: QtBot) -> None:
    model = PlanTableModel()
    model.set_rows(plan_rows())
    created = ItemOutcome(0, ItemState.CREATED, "00T000000000009AAA", None, "")
    model.set_outcomes(lambda start, stop: [created] if start <= created.seq < stop else [])

    tooltip = Qt.ItemDataRole.ToolTipRole
    unsent = model.index(1, PlanTableModel.OUTCOME).data(tooltip)
    assert unsent == "Not sent. Existing Tasks: 00T000000000001AAA"
    assert model.index(0, PlanTableModel.OUTCOME).data(tooltip) == "created 00T000000000009AAA"
    assert model.index(2, PlanTableModel.OUTCOME).data(tooltip) == ""
