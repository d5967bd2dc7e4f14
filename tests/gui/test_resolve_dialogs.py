"""The resolve, bulk resolve and undo dialogs, and the Conflicts page's actions, on the practice org.

The dialogs are built from values read from the ``duplicates`` scenario, and
the page's actions run the whole way: read again, the dialog's diff, the writes,
and undo from the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot
from wizard_driver import FIELD, click, connect, inspect_field, wait_idle

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.jobs import no_progress
from backstory_desktop.core.resolution import RECYCLE_BIN_DAYS, ResolutionPlan, ResolveAction
from backstory_desktop.core.survivor import SURVIVOR_RULE
from backstory_desktop.enablement.resolution import (
    ResolutionOutcome,
    UndoOutcome,
    apply_resolution,
    groups_for_bulk,
    preview_resolution,
)
from backstory_desktop.gui.pages.conflicts import ConflictsPage
from backstory_desktop.gui.pages.conflicts_resolve import (
    bulk_preview_job,
    outcome_details,
    outcome_sentence,
    undo_details,
    undo_sentence,
)
from backstory_desktop.gui.resolve_dialogs import (
    DEFAULT_MARK,
    DIFF_LINE_LIMIT,
    BulkResolveDialog,
    PlanTableModel,
    ResolveDialog,
    UndoDialog,
    UndoTableModel,
    bulk_lines,
    limited,
    undo_entry,
)
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed_duplicates import CLONES_KEY, LSTP_KEY, PRICING_KEY, SAYING_HELLO_KEY
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.store.snapshots import find_snapshot

SCENARIO = "duplicates"
StartOrg = Callable[[str], PracticeOrg]


def _connected_run(org: PracticeOrg) -> enablement.EnablementRun:
    admin = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    enablement.scan_conflicts(run)
    assert run.groups, "the duplicates scenario should have groups"
    return run


@pytest.fixture
def duplicates_org(start_org: StartOrg) -> PracticeOrg:
    return start_org(SCENARIO)


@pytest.fixture
def duplicates_run(duplicates_org: PracticeOrg) -> enablement.EnablementRun:
    return _connected_run(duplicates_org)


def _group(groups: list[DuplicateGroup], key: str) -> DuplicateGroup:
    return next(group for group in groups if any(record.key == key for record in group.records))


def test_bulk_preview_job__plans_bulk_groups(duplicates_run: enablement.EnablementRun) -> None:
    groups = duplicates_run.groups
    resolved = _group(groups, SAYING_HELLO_KEY).group_id

    picked, preview = bulk_preview_job(duplicates_run, groups, {resolved}, progress=no_progress, cancel=None)

    expected = [group for group in groups_for_bulk(groups) if group.group_id != resolved]
    assert picked == expected
    assert preview is not None
    assert {plan.group_id for plan in preview.plans} == {group.group_id for group in expected}


def test_bulk_preview_job__none_left(duplicates_run: enablement.EnablementRun) -> None:
    groups = duplicates_run.groups
    every_id = {group.group_id for group in groups}

    picked, preview = bulk_preview_job(duplicates_run, groups, every_id, progress=no_progress, cancel=None)

    assert picked == []
    assert preview is None


def _dialog(qtbot: QtBot, run: enablement.EnablementRun, group: DuplicateGroup) -> ResolveDialog:
    preview = preview_resolution(run, [group])
    dialog = ResolveDialog(group, preview.records, FIELD, flag_field=preview.flag_field)
    qtbot.addWidget(dialog)
    return dialog


def _texts(widget: Any) -> str:
    return "\n".join(label.text() for label in widget.findChildren(QLabel))


def _all_tasks(connection: OrgConnection) -> dict[str, dict[str, Any]]:
    fields = ("Id", "Subject", "Description", "WhoId", "WhatId", "ActivityDate", "IsDeleted", "IsArchived",
              FIELD)
    soql = f"SELECT {', '.join(fields)} FROM Task"
    return {row["Id"]: {name: row.get(name) for name in fields}
            for row in connection.query_all(soql, include_deleted=True)}


# The resolve dialog.


def test_resolve_dialog__default_survivor_marked(
    qtbot: QtBot, duplicates_run: enablement.EnablementRun
) -> None:
    group = _group(duplicates_run.groups, SAYING_HELLO_KEY)
    other = next(record.id for record in group.records if record.id != group.survivor_id)

    dialog = _dialog(qtbot, duplicates_run, group)

    default = dialog.survivor_buttons[group.survivor_id]
    assert default.isChecked()
    assert default.text().endswith(DEFAULT_MARK)
    assert not dialog.survivor_buttons[other].text().endswith(DEFAULT_MARK)
    assert SURVIVOR_RULE in _texts(dialog)
    assert f"By this rule the Task marked{DEFAULT_MARK} is kept. {group.survivor_reason}" in _texts(dialog)
    assert "Here:" not in _texts(dialog)
    assert f"- delete {other}" in dialog.diff.text()
    assert f"~ {other}: {FIELD}:" in dialog.diff.text()
    assert dialog.resolve_button.isEnabled()
    assert dialog.action_box.isHidden()


def test_resolve_dialog__other_survivor(qtbot: QtBot, duplicates_run: enablement.EnablementRun) -> None:
    group = _group(duplicates_run.groups, SAYING_HELLO_KEY)
    other = next(record.id for record in group.records if record.id != group.survivor_id)
    dialog = _dialog(qtbot, duplicates_run, group)

    dialog.survivor_buttons[other].click()

    plan = dialog.plan()
    assert plan.survivor_id == other
    assert plan.delete_ids == (group.survivor_id,)
    assert f"= keep {other}" in dialog.diff.text()
    assert f"- delete {group.survivor_id}" in dialog.diff.text()


def test_resolve_dialog__other_survivor_takes_backstory_flag(
    qtbot: QtBot, duplicates_run: enablement.EnablementRun
) -> None:
    group = _group(duplicates_run.groups, PRICING_KEY)
    other = next(record for record in group.records if not record.created_by_backstory)
    dialog = _dialog(qtbot, duplicates_run, group)

    dialog.survivor_buttons[other.id].click()

    plan = dialog.plan()
    assert dialog.flag_field
    assert [fill.value for fill in plan.fills if fill.field == dialog.flag_field] == [True]


def test_resolve_dialog__fills_follow_boxes(qtbot: QtBot, duplicates_run: enablement.EnablementRun) -> None:
    group = _group(duplicates_run.groups, SAYING_HELLO_KEY)
    other = next(record.id for record in group.records if record.id != group.survivor_id)
    connection = duplicates_run.require_connection()
    connection.request("PATCH", f"sobjects/Task/{group.survivor_id}", json={"Description": None})
    connection.request("PATCH", f"sobjects/Task/{other}", json={"Description": "Agreed on pricing."})
    dialog = _dialog(qtbot, duplicates_run, group)

    box = dialog.fill_boxes["Description"]
    assert box.isChecked()
    assert "Agreed on pricing." in _texts(dialog.fills_box)
    fill_line = f"~ {group.survivor_id}: Description: (empty) -&gt; &#x27;Agreed on pricing.&#x27;"
    assert fill_line in dialog.diff.text()

    box.click()

    assert not any(fill.field == "Description" for fill in dialog.plan().fills)
    assert "Description" not in dialog.diff.text()


def test_resolve_dialog__clones_keep_all(qtbot: QtBot, duplicates_run: enablement.EnablementRun) -> None:
    group = _group(duplicates_run.groups, CLONES_KEY)
    assert group.kind is GroupKind.CLONES
    dialog = _dialog(qtbot, duplicates_run, group)

    assert dialog.action_box.isVisibleTo(dialog)
    assert dialog.clear_key_button.isChecked()
    assert dialog.plan().action is ResolveAction.CLEAR_KEY_ON_OTHERS
    assert dialog.plan().delete_ids == ()
    assert "- delete" not in dialog.diff.text()
    assert not dialog.fills_box.isEnabled()

    dialog.delete_button.click()

    assert len(dialog.plan().delete_ids) == 2
    assert dialog.fills_box.isEnabled()
    assert "- delete" in dialog.diff.text()


def test_resolve_dialog__bin_member_restored_first(
    qtbot: QtBot, duplicates_run: enablement.EnablementRun
) -> None:
    group = _group(duplicates_run.groups, LSTP_KEY)
    in_bin = next(record.id for record in group.records if record.is_deleted)

    dialog = _dialog(qtbot, duplicates_run, group)

    text = dialog.diff.text()
    assert f"+ restore {in_bin} from the recycle bin" in text
    assert f"- delete {in_bin} again" in text
    assert text.index("+ restore") < text.index(f"~ {in_bin}") < text.index("- delete")


def test_resolve_dialog__fits_1100x760(qtbot: QtBot, duplicates_run: enablement.EnablementRun) -> None:
    group = _group(duplicates_run.groups, PRICING_KEY)

    dialog = _dialog(qtbot, duplicates_run, group)
    dialog.show()

    assert dialog.width() <= 1100
    assert dialog.height() <= 760
    assert dialog.records.rowCount() == 3
    last_row_bottom = dialog.records.rowViewportPosition(2) + dialog.records.rowHeight(2)
    assert last_row_bottom <= dialog.records.viewport().height()
    # The key column elides keys in the middle, and Subject takes the rest of the width.
    for column in (1, 3, 4, 5):
        width = dialog.records.columnWidth(column)
        for row in range(dialog.records.rowCount()):
            item = dialog.records.item(row, column)
            assert item is not None
            text = item.text()
            assert dialog.records.fontMetrics().horizontalAdvance(text) < width, f"{text!r} is cut"


# The bulk and undo dialogs.


def test_bulk_dialog__totals_and_group(qtbot: QtBot, duplicates_run: enablement.EnablementRun) -> None:
    groups = [group for group in duplicates_run.groups if group.flagged]
    preview = preview_resolution(duplicates_run, groups)

    titles = {group.group_id: group.key for group in groups}
    dialog = BulkResolveDialog(preview.plans, preview.problems, titles)
    qtbot.addWidget(dialog)

    assert dialog.model.rowCount() == len(groups)
    deleted = sum(len(plan.delete_ids) for plan in preview.plans)
    assert f"- delete {deleted} Tasks" in dialog.diff.text()
    assert f"= keep one Task in each of {len(groups)} groups" in dialog.diff.text()
    dialog.table.selectRow(0)
    assert f"= keep {preview.plans[0].survivor_id}" in dialog.diff.text()
    dialog.totals_button.click()
    assert "in each of" in dialog.diff.text()


def test_undo_dialog__purged_task_named(
    qtbot: QtBot, duplicates_org: PracticeOrg, duplicates_run: enablement.EnablementRun
) -> None:
    group = _group(duplicates_run.groups, SAYING_HELLO_KEY)
    preview = preview_resolution(duplicates_run, [group])
    outcome = apply_resolution(duplicates_run, preview)
    deleted = preview.plans[0].delete_ids
    snapshot = find_snapshot(duplicates_run.require_connection().org_id, outcome.snapshot_id)
    dialog = UndoDialog([undo_entry(snapshot)])
    qtbot.addWidget(dialog)

    assert f"+ restore {deleted[0]} from the recycle bin" in dialog.diff.text()
    assert f"~ {deleted[0]}: {FIELD}: (empty) -&gt; &#x27;&lt;1234@local.machine.example&gt;&#x27;" in (
        dialog.diff.text())
    assert dialog.undo_button.isEnabled()
    assert dialog.chosen() is not None

    snapshot.created_at = "2026-01-01T00:00:00+00:00"
    old = UndoDialog([undo_entry(snapshot)])
    qtbot.addWidget(old)

    assert "Older than 15 days" in old.entry_note.text()
    assert old.model.data(old.model.index(0, 6)) == "in part"


def test_diff_lines__limited() -> None:
    lines = [f"- delete 00T{number:015d}" for number in range(DIFF_LINE_LIMIT + 50)]

    shown = limited(lines)

    assert len(shown) == DIFF_LINE_LIMIT
    assert shown[:-1] == lines[: DIFF_LINE_LIMIT - 1]
    assert shown[-1] == "• … and 51 more lines"
    assert limited(lines[:3]) == lines[:3]


def _plan(group_id: str, survivor_id: str, **values: Any) -> ResolutionPlan:
    fields: dict[str, Any] = {"fills": (), "clear_key_ids": (), "delete_ids": (), "undelete_first_ids": (),
                              "key_field": FIELD}
    fields.update(values)
    return ResolutionPlan(group_id=group_id, survivor_id=survivor_id, **fields)


def test_bulk_lines__restored_survivor_apart() -> None:
    plans = [
        _plan("00TA", "00TA", delete_ids=("00TB",), undelete_first_ids=("00TA",)),
        _plan("00TC", "00TC", clear_key_ids=("00TD",), delete_ids=("00TD",), undelete_first_ids=("00TD",)),
    ]

    lines = bulk_lines(plans)

    assert "+ restore 1 kept Task from the recycle bin" in lines
    assert "+ restore 1 Task from the recycle bin to clear the key" in lines
    assert f"- delete 2 Tasks (deleted Tasks stay in the recycle bin for {RECYCLE_BIN_DAYS} days)" in lines


def test_bulk_lines__no_survivor_restored() -> None:
    lines = bulk_lines([_plan("00TC", "00TC", delete_ids=("00TD",), undelete_first_ids=("00TD",))])

    assert not any("kept Task from the recycle bin" in line for line in lines)


def test_plan_model__passes_model_tester(qtmodeltester: ModelTester) -> None:
    plans = [_plan("00TA", "00TA", kind=GroupKind.PROBABLE, delete_ids=("00TB", "00TC"))]
    model = PlanTableModel(plans, {"00TA": "Re: pricing"})

    qtmodeltester.check(model)
    assert [model.index(0, column).data() for column in range(model.columnCount())] == [
        "Re: pricing", "probable", "00TA", "2", "0", ""]


def test_undo_model__passes_model_tester(
    qtmodeltester: ModelTester, duplicates_run: enablement.EnablementRun
) -> None:
    group = _group(duplicates_run.groups, SAYING_HELLO_KEY)
    outcome = apply_resolution(duplicates_run, preview_resolution(duplicates_run, [group]))
    snapshot = find_snapshot(duplicates_run.require_connection().org_id, outcome.snapshot_id)
    model = UndoTableModel([undo_entry(snapshot)])

    qtmodeltester.check(model)
    assert model.index(0, 2).data() == "1"
    assert model.index(0, 6).data() == "yes"


def test_outcome_sentence__failure_one_sentence(tmp_path: Path) -> None:
    outcome = ResolutionOutcome(tmp_path / "snapshot.json", "s1", resolved_group_ids=["00TA"],
                                failed={"00TB": "Deleting Task 00TC failed: UNABLE_TO_LOCK_ROW: busy"})

    assert outcome_sentence(outcome) == "Resolved 1 group, and 1 group failed: see Details."
    details = outcome_details(outcome)
    assert details[0] == "Group 00TB: Deleting Task 00TC failed: UNABLE_TO_LOCK_ROW: busy."
    assert str(tmp_path / "snapshot.json") in details[-1]


def test_outcome_sentence__stopped_one_sentence(tmp_path: Path) -> None:
    outcome = ResolutionOutcome(tmp_path / "snapshot.json", "s1", resolved_group_ids=["00TA", "00TB"],
                                stopped="The resolution was cancelled after 2 groups")

    assert outcome_sentence(outcome) == "Resolved 2 groups before the resolution stopped: see Details."
    assert outcome_details(outcome)[0] == "The resolution was cancelled after 2 groups."


def test_undo_sentence__left_as_is() -> None:
    outcome = UndoOutcome("s1", restored=["00TB"], reverted=["00TB"],
                          left_as_is={"00TA": "Task 00TA: Subject changed since the resolution, so it was "
                                              "left as is."})

    assert undo_sentence(outcome) == ("Undo restored 1 Task from the recycle bin and put back the values of "
                                      "1 Task, and left 1 Task changed since as is: see Details.")
    assert undo_details(outcome) == [outcome.left_as_is["00TA"]]


# The page's actions, end to end.


@pytest.fixture
def conflicts_page(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> ConflictsPage:
    window = make_window(SCENARIO)
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(Step.CONFLICTS)
    page = window.page(Step.CONFLICTS)
    assert isinstance(page, ConflictsPage)
    click(qtbot, page.scan_button)
    wait_idle(qtbot, window)
    assert page.groups_model.rowCount() > 0
    return page


def _window(page: ConflictsPage) -> WizardWindow:
    window = page.window()
    assert isinstance(window, WizardWindow)
    return window


def _select(page: ConflictsPage, key: str) -> DuplicateGroup:
    for row in range(page.groups_model.rowCount()):
        group = page.groups_model.group_at(row)
        if any(record.key == key for record in group.records):
            page.groups.selectRow(row)
            assert page.selected_group() == group
            return group
    raise AssertionError(f"no group holds {key}")


def _status(page: ConflictsPage, group: DuplicateGroup) -> str:
    model = page.groups_model
    for row in range(model.rowCount()):
        if model.group_at(row).group_id == group.group_id:
            return str(model.data(model.index(row, model.STATUS)))
    raise AssertionError(f"group {group.group_id} is not shown")


def test_page__resolve_then_undo(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    window = _window(page)
    connection = page.run.require_connection()
    before = _all_tasks(connection)
    group = _select(page, SAYING_HELLO_KEY)
    other = next(record.id for record in group.records if record.id != group.survivor_id)

    click(qtbot, page.resolve_button)
    wait_idle(qtbot, window)
    dialog = page.resolve_dialog
    assert dialog is not None
    click(qtbot, dialog.resolve_button)
    wait_idle(qtbot, window)

    resolved = _all_tasks(connection)
    assert resolved[other]["IsDeleted"] is True
    assert resolved[other][FIELD] is None
    assert resolved[group.survivor_id][FIELD] == SAYING_HELLO_KEY
    assert _status(page, group) == "resolved"
    assert "Resolved 1 group" in page.message.label.text()
    assert page.run.changes[-1].step is Step.CONFLICTS

    click(qtbot, page.undo_button)
    wait_idle(qtbot, window)
    undo = page.undo_dialog
    assert undo is not None
    click(qtbot, undo.undo_button)
    wait_idle(qtbot, window)

    assert _all_tasks(connection) == before
    assert _status(page, group) == "undone"
    assert "Undo restored 1 Task" in page.message.label.text()


def test_page__failed_write_says_why(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    window = _window(page)
    org = window.context.practice_org
    assert org is not None
    group = _select(page, SAYING_HELLO_KEY)
    click(qtbot, page.resolve_button)
    wait_idle(qtbot, window)
    assert page.resolve_dialog is not None

    org.faults = FaultPlan(unable_to_lock_row_rate=1.0)
    click(qtbot, page.resolve_dialog.resolve_button)
    wait_idle(qtbot, window)
    org.faults = FaultPlan()

    assert _status(page, group).startswith("failed: ")
    assert "UNABLE_TO_LOCK_ROW" in _status(page, group)
    assert page.message.label.text() == "Resolved 0 groups, and 1 group failed: see Details."
    details = page.message.details.toPlainText()
    assert f"Group {group.group_id}: " in details
    assert "UNABLE_TO_LOCK_ROW" in details
    assert "The values before the resolution are saved in " in details


def test_page__cancel_changes_nothing(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    window = _window(page)
    connection = page.run.require_connection()
    before = _all_tasks(connection)
    _select(page, SAYING_HELLO_KEY)

    click(qtbot, page.resolve_button)
    wait_idle(qtbot, window)
    assert page.resolve_dialog is not None
    page.resolve_dialog.reject()

    assert page.resolve_dialog is None
    assert not window.worker.busy
    assert _all_tasks(connection) == before
    assert page.message.label.text() == "Nothing was changed."


def test_page__resolve_shown_leaves_no_duplicates(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    window = _window(page)
    connection = page.run.require_connection()
    flagged = [group for group in page.groups_model.shown_groups() if group.flagged]
    clones = _group(page.groups_model.shown_groups(), CLONES_KEY)
    assert clones.kind is GroupKind.CLONES

    click(qtbot, page.resolve_all_button)
    wait_idle(qtbot, window)
    dialog = page.bulk_dialog
    assert dialog is not None
    assert dialog.model.rowCount() == len(flagged) + 1
    assert "1 group of clones is included" in _texts(dialog)
    assert "keep every Task of 1 group of clones" in dialog.diff.text()
    click(qtbot, dialog.resolve_button)
    wait_idle(qtbot, window)

    assert all(_status(page, group) == "resolved" for group in [*flagged, clones])
    tasks = _all_tasks(connection)
    live_keys = [row[FIELD] for row in tasks.values() if row[FIELD] and not row["IsDeleted"]]
    in_bin_keys = [row[FIELD] for row in tasks.values() if row[FIELD] and row["IsDeleted"]]
    assert in_bin_keys == []
    # Clones are logged on purpose: every one stays, and only one keeps the key.
    assert all(not tasks[record.id]["IsDeleted"] for record in clones.records)
    assert live_keys.count(CLONES_KEY) == 1
    assert len({key.strip().strip("<>").casefold() for key in live_keys}) == len(live_keys)
    click(qtbot, page.resolve_all_button)
    wait_idle(qtbot, window)
    assert page.bulk_dialog is None
    assert page.message.label.text().startswith("No shown group is left to resolve")


def test_page__undo_names_purged(
    qtbot: QtBot, conflicts_page: ConflictsPage
) -> None:
    page = conflicts_page
    window = _window(page)
    org = window.context.practice_org
    assert org is not None
    group = _select(page, SAYING_HELLO_KEY)
    other = next(record.id for record in group.records if record.id != group.survivor_id)
    click(qtbot, page.resolve_button)
    wait_idle(qtbot, window)
    assert page.resolve_dialog is not None
    click(qtbot, page.resolve_dialog.resolve_button)
    wait_idle(qtbot, window)
    assert org.empty_recycle_bin([other]) == 1

    click(qtbot, page.undo_button)
    wait_idle(qtbot, window)
    assert page.undo_dialog is not None
    click(qtbot, page.undo_dialog.undo_button)
    wait_idle(qtbot, window)

    assert page.message.label.text().endswith(", but 1 Task could not be: see Details.")
    assert other in page.message.details.toPlainText()
    assert "no longer in the recycle bin" in page.message.details.toPlainText()


def test_page__export_csv_and_html(qtbot: QtBot, conflicts_page: ConflictsPage, tmp_path: Path) -> None:
    page = conflicts_page
    window = _window(page)
    shown = page.groups_model.shown_groups()

    click(qtbot, page.export_csv_button)
    assert page.export_dialog is not None
    page.export_dialog.selectFile(str(tmp_path / "groups.csv"))
    page.export_dialog.accept()
    wait_idle(qtbot, window)

    rows = (tmp_path / "groups.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 1 + sum(len(group.records) for group in shown)
    assert FIELD in rows[0]
    assert page.message.label.text().startswith(f"Wrote {len(rows) - 1} Tasks to ")

    click(qtbot, page.export_html_button)
    assert page.export_dialog is not None
    page.export_dialog.selectFile(str(tmp_path / "groups.html"))
    page.export_dialog.accept()
    wait_idle(qtbot, window)

    text = (tmp_path / "groups.html").read_text(encoding="utf-8")
    assert text.count("<h3 id=\"group-") == len(shown)
    assert page.message.label.text().startswith(f"Wrote {len(shown)} groups to ")


def test_page__no_selection_says_so(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    page.groups.clearSelection()

    page.resolve_selected()

    assert page.resolve_dialog is None
    assert not _window(page).worker.busy
    assert "Select a group" in page.message.label.text()



def test_page__other_survivor_shown_after_resolve(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    window = _window(page)
    group = _select(page, SAYING_HELLO_KEY)
    columns = {record.id: column for column, record in enumerate(group.records)}
    other = next(record.id for record in group.records if record.id != group.survivor_id)
    click(qtbot, page.resolve_button)
    wait_idle(qtbot, window)
    dialog = page.resolve_dialog
    assert dialog is not None
    dialog.survivor_buttons[other].click()
    click(qtbot, dialog.resolve_button)
    wait_idle(qtbot, window)

    header = page.records_model.headerData
    assert header(columns[other], Qt.Orientation.Horizontal) == f"Task {columns[other] + 1} (survivor)"
    assert header(columns[group.survivor_id], Qt.Orientation.Horizontal) == (
        f"Task {columns[group.survivor_id] + 1} (deleted)")
    assert (f"Resolved: kept Task {columns[other] + 1} ({other}); deleted Task "
            f"{columns[group.survivor_id] + 1}.") in page.group_reason.text()
    assert page.survivor.text().startswith(f"Task {columns[other] + 1} was kept as chosen.")
    assert not page.resolve_button.isEnabled()

    click(qtbot, page.undo_button)
    wait_idle(qtbot, window)
    assert page.undo_dialog is not None
    click(qtbot, page.undo_dialog.undo_button)
    wait_idle(qtbot, window)

    assert header(columns[group.survivor_id], Qt.Orientation.Horizontal) == (
        f"Task {columns[group.survivor_id] + 1} (survivor)")
    assert "Resolved: kept" not in page.group_reason.text()
    assert page.resolve_button.isEnabled()


def test_undo_dialog__warnings_above_diff(
    qtbot: QtBot, duplicates_run: enablement.EnablementRun
) -> None:
    group = _group(duplicates_run.groups, SAYING_HELLO_KEY)
    outcome = apply_resolution(duplicates_run, preview_resolution(duplicates_run, [group]))
    snapshot = find_snapshot(duplicates_run.require_connection().org_id, outcome.snapshot_id)
    warning = "The field is Unique now, so 1 Task will be restored without its key."
    dialog = UndoDialog([undo_entry(snapshot), undo_entry(snapshot, warnings=[warning])])
    qtbot.addWidget(dialog)

    assert dialog.warnings.isHidden()
    dialog.table.selectRow(1)
    assert not dialog.warnings.isHidden()
    assert dialog.warnings.text() == warning
    layout = dialog.layout()
    assert layout.indexOf(dialog.warnings) < layout.indexOf(dialog.diff.parentWidget().parentWidget())


def test_undo_entry__only_ran_groups(qtbot: QtBot, duplicates_run: enablement.EnablementRun) -> None:
    groups = [_group(duplicates_run.groups, SAYING_HELLO_KEY), _group(duplicates_run.groups, LSTP_KEY)]
    outcome = apply_resolution(duplicates_run, preview_resolution(duplicates_run, groups))
    snapshot = find_snapshot(duplicates_run.require_connection().org_id, outcome.snapshot_id)
    # As after a resolution stopped before its second group.
    snapshot.ran_group_ids = [groups[0].group_id]

    entry = undo_entry(snapshot)

    assert set(entry.group_ids) == {group.group_id for group in groups}
    assert entry.ran_group_ids == (groups[0].group_id,)


def test_page__undo_warns_unique_field(qtbot: QtBot, conflicts_page: ConflictsPage) -> None:
    page = conflicts_page
    window = _window(page)
    click(qtbot, page.resolve_all_button)
    wait_idle(qtbot, window)
    assert page.bulk_dialog is not None
    click(qtbot, page.bulk_dialog.resolve_button)
    wait_idle(qtbot, window)
    fix = enablement.apply_field_fix(page.run, enablement.plan_field_fix(page.run, case_sensitive=False))
    assert fix.status is StepStatus.PASSED, fix.reason

    click(qtbot, page.undo_button)
    wait_idle(qtbot, window)

    dialog = page.undo_dialog
    assert dialog is not None
    assert not dialog.warnings.isHidden()
    assert dialog.warnings.text().startswith(f"{FIELD} is Unique now, so ")
    assert "will be restored without their key" in dialog.warnings.text()
