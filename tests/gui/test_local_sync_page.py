"""The Local sync page on the practice org: sources, plan, apply, history, resume, queue and the drill."""

from __future__ import annotations

import csv
import inspect
import mailbox
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QWidget
from pytestqt.qtbot import QtBot
from simple_salesforce.format import format_soql
from wizard_driver import (
    Confirmation,
    admin_connection,
    apply_plan,
    build_plan,
    click,
    keyed_task_count,
    open_step_after_field,
    wait_idle,
)

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cadence_drill import run_cadence_drill
from backstory_desktop.core.checklist import Step
from backstory_desktop.gui import sync_dialogs
from backstory_desktop.gui.models import PlanTableModel, QueueModel, RunHistoryModel
from backstory_desktop.gui.pages.local_sync import LocalSyncPage
from backstory_desktop.gui.pages.sync_panels import DRILL_HEADERS, DRILL_ROW_PASSED
from backstory_desktop.gui.sync_dialogs import NOT_MAPPED, CsvMappingDialog
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.salesforce.tasks import UPSERT_BATCH_SIZE
from backstory_desktop.sources.csv_export import CsvColumn, CsvMapping, read_csv_header
from backstory_desktop.store.journal import Journal

# Seconds Cancel may take to return while an upsert call is in flight, with slack for a loaded machine.
CANCEL_LIMIT_SECONDS = 2.5
# The cadence tool's user the drill writes as.
CADENCE_USERNAME = str(inspect.signature(run_cadence_drill).parameters["cadence_username"].default)


def open_local_sync(qtbot: QtBot, window: WizardWindow) -> LocalSyncPage:
    return open_step_after_field(qtbot, window, Step.LOCAL_SYNC, LocalSyncPage)


def keyed_tasks_by_key(window: WizardWindow) -> dict[str, int]:
    """Count the live Tasks per Message-ID key, as the admin would in a report."""
    counts: dict[str, int] = {}
    soql = "SELECT Message_ID__c FROM Task WHERE Message_ID__c != null"
    for row in admin_connection(window).query_all(soql):
        key = str(row["Message_ID__c"]).strip("<>").casefold()
        counts[key] = counts.get(key, 0) + 1
    return counts


def write_task_export(path: Path, rows: int) -> Path:
    """Write a Data Loader style Task export with a Message-ID column, one row per e-mail."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Id", "Subject", "Description", "ActivityDate", "WhoId", "OwnerId", "Message_ID__c"])
        for number in range(rows):
            writer.writerow([f"00T00000000{number:04d}AAA", f"Export {number}", "Body", "2026-11-02", "", "",
                             f"<export-{number}@csv.example.com>"])
    return path


def test_local_sync__history_lists_applied_run(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)

    apply_plan(qtbot, window, confirmations)
    wait_idle(qtbot, window)
    page.tabs.setCurrentWidget(page.history_panel)

    history = page.history_panel
    assert history.model.rowCount() == 1
    assert history.model.index(0, RunHistoryModel.STATE).data() == "finished"
    assert history.model.index(0, RunHistoryModel.SOURCE).data() == "sample.mbox"
    assert not history.resume_button.isEnabled()
    opened: list[QUrl] = []

    def open_url(url: QUrl) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(QDesktopServices, "openUrl", open_url)
    click(qtbot, history.open_button)
    assert opened
    assert Path(opened[0].toLocalFile()).joinpath("success.csv").is_file()


def test_local_sync__filter_shows_one_action(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    counts = build_plan(qtbot, window)

    page.filter_box.setCurrentIndex(page.filter_box.findData("update"))
    wait_idle(qtbot, window)

    assert page.model.rowCount() == counts["update"]
    shown = {page.model.index(row, PlanTableModel.ACTION).data() for row in range(page.model.rowCount())}
    assert shown == {"update"}
    page.filter_box.setCurrentIndex(0)
    assert page.model.rowCount() == sum(counts.values())


def test_local_sync__export_plan_csv(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    counts = build_plan(qtbot, window)
    target = tmp_path / "exported plan.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(target), ""))

    click(qtbot, page.export_button)
    wait_idle(qtbot, window)

    with target.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    assert len(rows) == 1 + sum(counts.values())
    assert page.message.label.text().startswith(f"Wrote {sum(counts.values())} plan rows")


def test_local_sync__csv_export_mapped_then_planned(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    export = write_task_export(tmp_path / "tasks.csv", 7)
    previews: list[int] = []

    def answer(parent: QWidget | None, path: Path, key_field: str) -> CsvMapping | None:
        dialog = CsvMappingDialog(path, read_csv_header(path), key_field, parent)
        previews.append(dialog.preview.rowCount())
        assert dialog.accept_button.isEnabled(), dialog.problems.text()
        dialog.accept()
        return dialog.result_mapping

    monkeypatch.setattr(sync_dialogs, "edit_csv_mapping", answer)
    window = make_window("default")
    page = open_local_sync(qtbot, window)

    page.path_edit.setText(str(export))
    assert "CSV" in page.kind_label.text()
    assert page.mapping_button.isVisible()
    click(qtbot, page.plan_button)
    wait_idle(qtbot, window)

    assert previews == [sync_dialogs.PREVIEW_ROWS]
    plan = window.context.run.plan
    assert plan is not None
    assert plan.counts()["create"] == 7
    assert page.counts.text().startswith("Plan: 7 create")


def test_csv_mapping__unmapped_key_blocks_accept(qtbot: QtBot, tmp_path: Path) -> None:
    export = write_task_export(tmp_path / "tasks.csv", 3)
    dialog = CsvMappingDialog(export, read_csv_header(export), "Message_ID__c")
    qtbot.addWidget(dialog)
    assert dialog.accept_button.isEnabled()

    key_box = dialog.boxes[CsvColumn.MESSAGE_ID]
    key_box.setCurrentIndex(key_box.findText(NOT_MAPPED))

    assert not dialog.accept_button.isEnabled()
    assert dialog.problems.text()
    assert dialog.preview.rowCount() == 0
    dialog.reset_to_guess()
    assert dialog.accept_button.isEnabled()
    assert dialog.mapping().columns[CsvColumn.MESSAGE_ID] == "Message_ID__c"


def test_local_sync__run_in_progress_sentence(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    tasks_before = keyed_task_count(admin_connection(window))
    connection = window.context.run.connection
    assert connection is not None
    journal = Journal.open()

    with journal.lock_org(connection.org_id, holder="another window"):
        click(qtbot, page.apply_button)
        wait_idle(qtbot, window)
    journal.close()

    assert page.blocked.isVisible()
    assert page.blocked.text().startswith("Another sync of org")
    assert "another window" in page.blocked.text()
    assert page.message.isHidden()
    assert keyed_task_count(admin_connection(window)) == tasks_before


def test_local_sync__bulk_threshold_kept_and_used(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    counts = build_plan(qtbot, window)
    page.threshold.setValue(5)
    tasks_before = keyed_task_count(admin_connection(window))

    apply_plan(qtbot, window, confirmations)

    assert any("through Bulk API 2.0" in line for line in confirmations[-1].lines)
    assert keyed_task_count(admin_connection(window)) == tasks_before + counts["create"]
    window.start_fresh_run(window.context.run.profile)
    fresh = window.page(Step.LOCAL_SYNC)
    assert isinstance(fresh, LocalSyncPage)
    assert fresh.threshold.value() == 5


def test_local_sync__cancel_then_resume_on_entry(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    counts = build_plan(qtbot, window)
    before = keyed_tasks_by_key(window)
    org = window.context.practice_org
    assert org is not None
    org.faults = FaultPlan(latency_seconds=4.0)

    click(qtbot, page.apply_button)
    qtbot.waitUntil(page.progress.isVisible)
    qtbot.wait(1500)
    started = time.monotonic()
    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)
    cancel_seconds = time.monotonic() - started
    org.faults = FaultPlan()

    assert cancel_seconds < CANCEL_LIMIT_SECONDS
    assert "cancelled" in page.message.label.text().lower(), page.message.label.text()
    window.show_step(Step.CONFLICTS)
    wait_idle(qtbot, window)
    window.show_step(Step.LOCAL_SYNC)
    wait_idle(qtbot, window)
    assert page.resume_offer.isVisible()
    assert "did not finish" in page.resume_text.text()

    click(qtbot, page.resume_offer_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Resume the sync"
    assert page.resume_offer.isHidden()
    after = keyed_tasks_by_key(window)
    assert len(after) - len(before) == counts["create"]
    doubled = [key for key, count in after.items() if count != before.get(key, 1)]
    assert doubled == [], "keys written twice"
    page.tabs.setCurrentWidget(page.history_panel)
    assert page.history_panel.model.index(0, RunHistoryModel.STATE).data() == "finished"


def grant_modify_all_data(window: WizardWindow, username: str) -> None:
    """Give a user Modify All Data through a new permission set, as an admin would in Setup."""
    admin = admin_connection(window)
    user = next(iter(admin.query_all(format_soql("SELECT Id FROM User WHERE Username = {}", username))))
    created = admin.request("POST", "sobjects/PermissionSet", json={
        "Name": "Cadence_Modify_All", "Label": "Cadence Modify All", "PermissionsApiEnabled": True,
        "PermissionsViewAllData": True, "PermissionsModifyAllData": True, "PermissionsEditTask": True})
    admin.request("POST", "sobjects/PermissionSetAssignment",
                  json={"AssigneeId": user["Id"], "PermissionSetId": created["id"]})


def run_drill(qtbot: QtBot, window: WizardWindow, page: LocalSyncPage) -> None:
    assert page.tabs.isTabVisible(page.tabs.indexOf(page.drill_panel))
    page.tabs.setCurrentWidget(page.drill_panel)
    click(qtbot, page.drill_panel.run_button)
    wait_idle(qtbot, window)


def test_drill__passes_when_tool_may_edit(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    grant_modify_all_data(window, CADENCE_USERNAME)

    run_drill(qtbot, window, page)

    assert confirmations[-1].title == "Run the cadence-tool drill"
    verdict = page.drill_panel.verdict.text()
    assert verdict.startswith("✓ Passed"), verdict
    assert page.drill_panel.table.rowCount() > 0
    assert any("cadence-tool drill" in change.summary for change in window.context.run.changes)


def test_drill__reports_tool_without_edit_access(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)

    run_drill(qtbot, window, page)

    table = page.drill_panel.table
    verdict = page.drill_panel.verdict.text()
    assert verdict.startswith("✗ Failed"), verdict
    assert "give the cadence tool's user edit access" in verdict
    problems = [cell.text() for row in range(table.rowCount())
                if (cell := table.item(row, len(DRILL_HEADERS) - 1)) is not None]
    assert len(problems) == table.rowCount()
    failed = [problem for problem in problems if problem != DRILL_ROW_PASSED]
    assert failed
    assert all("edit access" in problem for problem in failed)


def test_local_sync__queue_retry_now(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    export = write_task_export(tmp_path / "tasks.csv", 3 * UPSERT_BATCH_SIZE)

    def keep_guess(parent: QWidget | None, path: Path, key_field: str) -> CsvMapping | None:
        return CsvMappingDialog(path, read_csv_header(path), key_field, parent).mapping()

    monkeypatch.setattr(sync_dialogs, "edit_csv_mapping", keep_guess)
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    page.path_edit.setText(str(export))
    build_plan(qtbot, window)
    org = window.context.practice_org
    assert org is not None
    org.faults = FaultPlan(latency_seconds=1.0)
    limited: list[int] = []

    def use_up_requests(value: int) -> None:
        # Once the first batch is written, the org's daily API requests run out, once.
        if value > 0 and not limited:
            limited.append(value)
            org.daily_api_limit = 1

    page.progress.bar.valueChanged.connect(use_up_requests)

    click(qtbot, page.apply_button)
    wait_idle(qtbot, window)
    org.faults = FaultPlan()
    org.daily_api_limit = 1_000_000

    queue = page.queue_panel
    assert queue.model.rowCount() > 0
    assert "REQUEST_LIMIT_EXCEEDED" in queue.model.index(0, QueueModel.REASON).data()
    assert page.tabs.tabText(page.tabs.indexOf(queue)) == f"Backfill queue ({queue.model.rowCount()})"
    page.tabs.setCurrentWidget(queue)
    click(qtbot, queue.retry_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Retry the backfill queue"
    assert queue.model.rowCount() == 0, page.message.label.text()
    by_key = keyed_tasks_by_key(window)
    exported = {key: count for key, count in by_key.items() if key.endswith("@csv.example.com")}
    assert len(exported) == 3 * UPSERT_BATCH_SIZE
    assert set(exported.values()) == {1}


def test_local_sync__inactive_owner_listed(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    plan = window.context.run.plan
    connection = window.context.run.connection
    assert plan is not None and connection is not None
    running_user = connection.user_id
    owners = {str(row.record["OwnerId"]) for row in plan.rows if row.record.get("OwnerId")} - {running_user}
    assert owners, "no message of the sample is owned by its sender's user"
    owner = sorted(owners)[0]
    admin = admin_connection(window)
    admin.request("PATCH", f"sobjects/User/{owner}", json={"IsActive": False})
    username = next(iter(admin.query_all(format_soql("SELECT Username FROM User WHERE Id = {}", owner))))

    build_plan(qtbot, window)

    assert page.owners.isVisible()
    assert str(username["Username"]) in page.owners.text()
    assert connection.username in page.owners.text()


def test_local_sync__maildir_folder_planned(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "Maildir"
    maildir = mailbox.Maildir(folder, create=True)
    for message in mailbox.mbox(sample_mailbox_path(), create=False):
        maildir.add(mailbox.MaildirMessage(message))
    maildir.close()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(folder))
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    mbox_counts = build_plan(qtbot, window)

    click(qtbot, page.folder_button)

    assert page.kind_label.text() == "Kind: Maildir folder"
    assert page.model.rowCount() == 0, "the mbox plan still shows under the folder"
    counts = build_plan(qtbot, window)
    assert sum(counts.values()) == sum(mbox_counts.values())
    assert counts["create"] + counts["update"] > 0
