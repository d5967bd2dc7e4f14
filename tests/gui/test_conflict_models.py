"""The duplicate viewer's models: groups fetched in batches, filtered, sorted, and one group side by side."""

from __future__ import annotations

import threading

from PySide6.QtCore import QModelIndex, Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.group_view import (
    OTHER_WRITERS,
    GroupFilter,
    counts_by_kind,
    counts_by_month,
    counts_by_tool,
    matches,
)
from backstory_desktop.core.jobs import no_progress
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.gui.conflict_models import (
    BODY_LABEL,
    BODY_TOOLTIP,
    ROWS_SIGNALLED_ONE_BY_ONE,
    SORT_SLICE,
    ConflictGroupsModel,
    RecordComparisonModel,
    body_names,
    prepare_groups,
    sorted_positions,
    sorted_positions_in_slices,
)
from backstory_desktop.gui.models import ROW_ROLE
from backstory_desktop.gui.widgets import NEUTRAL_COLOR, PASSED_COLOR

TOOLS = ("Outreach", "SalesLoft")
KINDS = (GroupKind.EXACT, GroupKind.NORMALISED, GroupKind.PROBABLE, GroupKind.CLONES)
WRITERS = ("Outreach (jane@x.example)", "SalesLoft (bob@x.example)", "Backstory", "Jane Doe")


def make_groups(count: int) -> list[DuplicateGroup]:
    """Build ``count`` groups of two Tasks, cycling through kinds, writers, owners and months."""
    groups = []
    for number in range(count):
        kind = KINDS[number % len(KINDS)]
        key = "" if kind is GroupKind.PROBABLE else f"<m{number}@mail.example.com>"
        records = tuple(
            TaskRecord(
                id=f"00T{number:010d}{member}AA", key=key or None, subject=f"Re: pricing {number}",
                owner_name=f"Owner {number % 7}", writer=WRITERS[(number + member) % len(WRITERS)],
                created_date=f"2026-{1 + number % 12:02d}-1{member}T10:00:0{member}.000+0000",
                description_digest=f"{number:016x}" if member == 0 else "",
            )
            for member in range(2)
        )
        groups.append(DuplicateGroup(kind, key, records, f"reason {number}", group_id=records[0].id,
                                     survivor_id=records[0].id, survivor_reason="It is the oldest Task."))
    return groups


def loaded_model(count: int) -> ConflictGroupsModel:
    model = ConflictGroupsModel()
    model.set_groups(make_groups(count), tools=TOOLS)
    return model


def fetch_all(model: ConflictGroupsModel) -> None:
    while model.canFetchMore():
        model.fetchMore()


def test_groups_model__passes_model_tester(qtmodeltester: ModelTester) -> None:
    model = loaded_model(2500)
    qtmodeltester.check(model)


def test_groups_model__tester_after_sort_and_filter(qtmodeltester: ModelTester) -> None:
    model = loaded_model(2500)
    model.sort(ConflictGroupsModel.WRITERS, Qt.SortOrder.DescendingOrder)
    model.set_filter(GroupFilter(tool="SalesLoft"))
    # The tester starts after the resets: its own modelReset handler calls fetchMore() before it
    # marks the reset as finished, and then reports the rows fetched as a change inside the reset.
    qtmodeltester.check(model)


def test_groups_model__fetches_in_batches() -> None:
    model = loaded_model(2500)

    assert model.rowCount() == 1000
    assert model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == 2000
    model.fetchMore()
    assert model.rowCount() == 2500
    assert not model.canFetchMore()
    assert model.shown_count() == 2500


def test_groups_model__columns() -> None:
    model = loaded_model(4)

    probable = model.group_at(2)
    assert probable.kind is GroupKind.PROBABLE
    assert model.index(2, ConflictGroupsModel.KEY).data() == "(no key) Re: pricing 2"
    assert model.index(0, ConflictGroupsModel.WRITERS).data() == "Outreach, SalesLoft"
    assert model.index(3, ConflictGroupsModel.WRITERS).data() == "Jane Doe, Outreach"
    assert model.index(0, ConflictGroupsModel.OWNER).data() == "Owner 0"
    assert model.index(0, ConflictGroupsModel.NEWEST).data() == "2026-01-11"
    assert model.index(0, ConflictGroupsModel.TASKS).data() == "2"
    assert model.index(0, ConflictGroupsModel.STATUS).data() == ""
    assert model.index(1, 0).data(ROW_ROLE) is model.group_at(1)


def test_groups_model__clones_are_grey() -> None:
    model = loaded_model(4)

    foreground = Qt.ItemDataRole.ForegroundRole
    assert model.index(3, ConflictGroupsModel.KIND).data(foreground) == NEUTRAL_COLOR
    assert model.index(0, ConflictGroupsModel.KIND).data(foreground) is None


def test_groups_model__key_tooltip_keeps_brackets() -> None:
    model = loaded_model(1)

    tooltip = model.index(0, ConflictGroupsModel.KEY).data(Qt.ItemDataRole.ToolTipRole)
    assert "&lt;m0@mail.example.com&gt;" in tooltip


def test_groups_model__filter_counts_unfetched_rows() -> None:
    model = loaded_model(5000)

    model.set_filter(GroupFilter(kinds=frozenset({GroupKind.PROBABLE})))
    assert model.shown_count() == 1250
    assert model.rowCount() == 1000
    assert len(model.shown_groups()) == 1250
    assert {group.kind for group in model.shown_groups()} == {GroupKind.PROBABLE}

    model.set_filter(GroupFilter(include_clones=False, text="pricing 49"))
    assert {group.subject for group in model.shown_groups()} >= {"Re: pricing 49", "Re: pricing 490"}
    assert all(group.kind is not GroupKind.CLONES for group in model.shown_groups())


def test_groups_model__sort_orders_every_group() -> None:
    model = loaded_model(3000)

    model.sort(ConflictGroupsModel.NEWEST, Qt.SortOrder.DescendingOrder)
    newest = [group.records[-1].created_date for group in model.shown_groups()]
    assert newest == sorted(newest, reverse=True)
    model.sort(ConflictGroupsModel.KIND, Qt.SortOrder.AscendingOrder)
    kinds = [group.kind for group in model.shown_groups()]
    assert kinds[0] is GroupKind.EXACT
    assert kinds[-1] is GroupKind.CLONES


def test_groups_model__sort_reads_no_cells() -> None:
    class CountingModel(ConflictGroupsModel):
        cells_read = 0

        def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
            CountingModel.cells_read += 1
            return super().data(index, role)

    model = CountingModel()
    model.set_groups(make_groups(2000), tools=TOOLS)
    model.sort(ConflictGroupsModel.OWNER, Qt.SortOrder.AscendingOrder)
    model.set_filter(GroupFilter(tool="Backstory"))

    assert CountingModel.cells_read == 0
    owners = [model.index(row, ConflictGroupsModel.OWNER).data() for row in range(model.rowCount())]
    assert owners == sorted(owners, key=str.casefold)


def test_groups_model__status_signals_one_row(qtbot: QtBot) -> None:
    model = loaded_model(3000)
    model.sort(ConflictGroupsModel.KEY, Qt.SortOrder.DescendingOrder)
    target = model.group_at(5)
    changes: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(lambda first, last, _roles: changes.append(
        (first.row(), last.row(), first.column(), last.column())))
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))

    model.set_status([target.group_id], "resolved")

    assert changes == [(5, 5, 0, len(ConflictGroupsModel.HEADERS) - 1)]
    assert not resets
    assert model.index(5, ConflictGroupsModel.STATUS).data() == "resolved"
    assert model.index(5, ConflictGroupsModel.STATUS).data(Qt.ItemDataRole.ForegroundRole) == PASSED_COLOR
    assert model.status(target.group_id) == "resolved"


def test_groups_model__unfetched_status_signals_nothing() -> None:
    model = loaded_model(3000)
    changes: list[int] = []
    model.dataChanged.connect(lambda first, _last, _roles: changes.append(first.row()))

    model.set_status([model.shown_groups()[2500].group_id], "failed: UNABLE_TO_LOCK_ROW")

    assert changes == []
    fetch_all(model)
    assert model.index(2500, ConflictGroupsModel.STATUS).data() == "failed: UNABLE_TO_LOCK_ROW"


def test_groups_model__status_sorts() -> None:
    model = loaded_model(50)
    model.set_status([model.group_at(40).group_id], "resolved")

    model.sort(ConflictGroupsModel.STATUS, Qt.SortOrder.DescendingOrder)

    assert model.index(0, ConflictGroupsModel.STATUS).data() == "resolved"


def test_groups_model__row_of_follows_filter() -> None:
    model = loaded_model(10)
    clones = model.group_at(3)

    assert model.row_of(clones.group_id) == 3
    model.set_filter(GroupFilter(include_clones=False))
    assert model.row_of(clones.group_id) is None
    assert model.row_of("not a group") is None


def test_prepare_groups__matches_lazy_facts() -> None:
    groups = make_groups(40)
    prepared = prepare_groups(groups, TOOLS, progress=no_progress, cancel=threading.Event())
    model = ConflictGroupsModel()
    model.set_groups(groups, tools=TOOLS)
    lazy = [model.facts(position) for position in range(len(groups))]

    assert model.set_prepared(prepared)
    assert [model.facts(position) for position in range(len(groups))] == lazy
    assert not model.set_prepared(prepare_groups(make_groups(40), TOOLS, progress=no_progress, cancel=None))


def test_prepared_model__sorts_like_lazy() -> None:
    groups = make_groups(3000)
    prepared = prepare_groups(groups, TOOLS, progress=no_progress, cancel=None)
    model = ConflictGroupsModel()
    model.set_groups(groups, tools=TOOLS)
    assert model.set_prepared(prepared)
    lazy = loaded_model(3000)
    for each in (model, lazy):
        each.set_status([each.group_at(row).group_id for row in (5, 50, 500)], "resolved")

    for column in range(len(ConflictGroupsModel.HEADERS)):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            model.sort(column, order)
            lazy.sort(column, order)
            shown = [group.group_id for group in model.shown_groups()]
            expected = [group.group_id for group in lazy.shown_groups()]
            assert shown == expected, (column, order)


def test_sorted_slices__match_sorted() -> None:
    # Few distinct keys, so that equal keys must keep their order across the slices.
    keys = [f"key {number % 7}" for number in range(SORT_SLICE * 2 + 345)]

    for descending in (False, True):
        assert sorted_positions_in_slices(keys, descending) == sorted_positions(keys, descending)


def test_prepared_model__filter_choices() -> None:
    groups = make_groups(40)
    prepared = prepare_groups(groups, TOOLS, progress=no_progress, cancel=None)
    lazy = loaded_model(40)

    sources, owners = prepared.filter_choices
    # Every source writes in 20 of the 40 groups, and equal counts go by name.
    assert sources == ["Backstory", OTHER_WRITERS, "Outreach", "SalesLoft"]
    assert owners == [f"Owner {number}" for number in range(7)]
    assert lazy.filter_choices() == prepared.filter_choices


def test_groups_model__many_statuses_one_signal() -> None:
    model = loaded_model(3000)
    changes: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda first, last, _roles: changes.append((first.row(), last.row())))
    group_ids = [group.group_id for group in model.shown_groups()[:2000]]

    model.set_status(group_ids, "resolved")

    assert len(group_ids) > ROWS_SIGNALLED_ONE_BY_ONE
    assert changes == [(0, model.rowCount() - 1)]
    assert model.status(group_ids[-1]) == "resolved"
    assert model.ids_with_status("resolved") == set(group_ids)


def test_groups_model__any_shown_flagged() -> None:
    model = loaded_model(40)
    assert model.any_shown_flagged()

    model.set_filter(GroupFilter(kinds=frozenset({GroupKind.CLONES})))

    assert model.shown_count() == 10
    assert not model.any_shown_flagged()


def test_flagged__read_once() -> None:
    group = make_groups(1)[0]

    assert group.flagged
    # Stored on the group, so the viewer's passes over 100,000 groups read an attribute.
    assert vars(group)["flagged"] is True


def test_comparison_model__passes_model_tester(qtmodeltester: ModelTester) -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records, group.survivor_id)
    qtmodeltester.check(model)


def test_comparison_model__marks_survivor_column() -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records, group.records[1].id)

    assert model.survivor_column() == 1
    assert model.headerData(1, Qt.Orientation.Horizontal) == "Task 2 (survivor)"
    assert model.headerData(0, Qt.Orientation.Horizontal) == "Task 1"
    assert model.headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole).bold()
    assert model.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole) is None


def test_comparison_model__written_by_and_bodies() -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records)
    labels = [model.headerData(row, Qt.Orientation.Vertical) for row in range(model.rowCount())]

    written = labels.index("≠ Written by")
    assert model.index(written, 0).data() == "Outreach (jane@x.example)"
    description = labels.index(f"≠ {BODY_LABEL}")
    assert [model.index(description, column).data() for column in range(2)] == ["body A", "empty"]
    assert model.survivor_column() is None


def test_comparison_model__created_date_readable() -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records)
    labels = [model.headerData(row, Qt.Orientation.Vertical) for row in range(model.rowCount())]

    created = labels.index("≠ Created date")
    assert model.index(created, 0).data() == "2026-01-10 10:00:00 UTC"


def test_groups_model__newest_tooltip_readable() -> None:
    model = loaded_model(1)

    tooltip = model.index(0, ConflictGroupsModel.NEWEST).data(Qt.ItemDataRole.ToolTipRole)

    assert "Created from 2026-01-10 10:00:00 UTC to 2026-01-11 10:00:01 UTC" in tooltip


def test_body_names__equal_digests_share_a_name() -> None:
    assert body_names(["aa", "", "bb", "aa"]) == ["body A", "empty", "body B", "body A"]


FILTERS = (
    GroupFilter(kinds=frozenset({GroupKind.EXACT, GroupKind.CLONES})),
    GroupFilter(include_clones=False, tool="Backstory"),
    GroupFilter(tool=OTHER_WRITERS, owner="Owner 3"),
    GroupFilter(date_from="2026-03-11", date_to="2026-05-10"),
    GroupFilter(date_to="2026-02-10", text="PRICING 1"),
)


def test_groups_model__filters_as_group_view_matches() -> None:
    groups = make_groups(600)
    model = ConflictGroupsModel()
    model.set_groups(groups, tools=TOOLS)

    for f in FILTERS:
        model.set_filter(f)
        expected = [group for group in groups if matches(group, f, tools=TOOLS)]
        assert model.shown_groups() == expected, f
        assert expected, f"{f} lets no group through, so it checks nothing"


def test_groups_model__counts_as_group_view() -> None:
    groups = make_groups(600)
    model = ConflictGroupsModel()
    model.set_groups(groups, tools=TOOLS)
    model.set_filter(GroupFilter(include_clones=False))
    shown = model.shown_groups()

    by_source, by_kind, by_month = model.shown_counts()

    assert by_source == counts_by_tool(shown, TOOLS)
    assert list(by_kind.items()) == list(counts_by_kind(shown).items())
    assert list(by_month.items()) == list(counts_by_month(shown).items())
    assert by_kind["clones"] == 0


def test_groups_model__written_by_title() -> None:
    model = loaded_model(1)

    assert model.headerData(ConflictGroupsModel.WRITERS, Qt.Orientation.Horizontal) == "Written by"


def test_comparison_model__key_facts_first() -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records)
    labels = [str(model.headerData(row, Qt.Orientation.Vertical)).removeprefix("≠ ")
              for row in range(model.rowCount())]

    # A Compare tab in a 1100x760 window shows about eight rows, so the rows that distinguish the Tasks
    # come first.
    assert labels[:5] == ["Id", "Message-ID key", "Written by", "Deleted", "Archived"]


def test_comparison_model__body_row_fingerprint_tooltip() -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records)
    labels = [str(model.headerData(row, Qt.Orientation.Vertical)) for row in range(model.rowCount())]
    row = labels.index(f"≠ {BODY_LABEL}")

    assert BODY_LABEL == "Body (same letter, same text)"
    assert model.headerData(row, Qt.Orientation.Vertical, Qt.ItemDataRole.ToolTipRole) == BODY_TOOLTIP
    assert model.index(row, 0).data(Qt.ItemDataRole.ToolTipRole) == BODY_TOOLTIP
    assert "only a fingerprint" in BODY_TOOLTIP


def test_comparison_model__deleted_columns_marked() -> None:
    group = make_groups(1)[0]
    model = RecordComparisonModel()
    model.set_records(group.records, group.records[1].id, deleted_ids=[group.records[0].id])

    assert model.headerData(0, Qt.Orientation.Horizontal) == "Task 1 (deleted)"
    assert model.headerData(1, Qt.Orientation.Horizontal) == "Task 2 (survivor)"
