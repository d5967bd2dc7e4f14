"""The Local sync page on the practice org: sources, plan, apply, history, resume, queue and the drill."""

from __future__ import annotations

import csv
import inspect
import mailbox
import sqlite3
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QFileDialog
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
from backstory_desktop.cadence_drill import ToolUser, run_cadence_drill
from backstory_desktop.core.checklist import Step
from backstory_desktop.core.plan import ReasonCode
from backstory_desktop.gui import sync_dialogs
from backstory_desktop.gui.models import PlanTableModel, QueueModel, RunHistoryModel
from backstory_desktop.gui.pages.local_sync import REASON_FILTER_PREFIX, LocalSyncPage
from backstory_desktop.gui.pages.plan_table import REASON_MIN_WIDTH, SUBJECT_MIN_WIDTH
from backstory_desktop.gui.pages.sync_panels import DRILL_HEADERS, DRILL_ROW_PASSED
from backstory_desktop.gui.sync_dialogs import NOT_MAPPED, CsvMappingDialog
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.tasks import UPSERT_BATCH_SIZE
from backstory_desktop.sources.csv_export import CsvColumn, read_csv_header
from backstory_desktop.store.journal import Journal, JournalError, RunState

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


def answer_mapping_dialog(qtbot: QtBot, window: WizardWindow, seen: list[CsvMappingDialog]) -> None:
    """Click "Use this mapping" in the CSV mapping dialog once it opens, as the admin would."""
    timer = QTimer(window)
    timer.setInterval(20)

    def answer() -> None:
        dialogs = [widget for widget in QApplication.topLevelWidgets()
                   if isinstance(widget, CsvMappingDialog) and widget.isVisible()]
        if not dialogs:
            return
        timer.stop()
        dialog = dialogs[0]
        seen.append(dialog)
        assert dialog.accept_button.isEnabled(), dialog.problems.text()
        click(qtbot, dialog.accept_button)

    timer.timeout.connect(answer)
    timer.start()


def outcomes_by_action(page: LocalSyncPage) -> dict[str, set[str]]:
    """Return the first word of each row's Outcome cell, per planned action."""
    found: dict[str, set[str]] = {}
    for row in range(page.model.rowCount()):
        action = page.model.index(row, PlanTableModel.ACTION).data()
        outcome = page.model.index(row, PlanTableModel.OUTCOME).data()
        found.setdefault(action, set()).add(outcome.split(" ")[0].rstrip(":"))
    return found


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
    assert outcomes_by_action(page)["create"] == {"created"}
    assert outcomes_by_action(page)["update"] == {"updated"}
    assert history.model.index(0, RunHistoryModel.SOURCE).data() == "sample.mbox"
    header = history.table.horizontalHeader()
    assert header.length() >= history.table.viewport().width(), "an empty strip stays right of State"
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
    suggested: list[str] = []

    def choose(parent: object, title: str, path: str, filters: str) -> tuple[str, str]:
        suggested.append(path)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)

    click(qtbot, page.export_button)
    wait_idle(qtbot, window)

    with target.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    assert len(rows) == 1 + sum(counts.values())
    assert page.message.label.text().startswith(f"Wrote {sum(counts.values())} plan rows")
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert Path(suggested[0]) == Path(documents) / f"sample plan {date.today().isoformat()}.csv"


def test_local_sync__csv_export_mapped_then_planned(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path,
) -> None:
    export = write_task_export(tmp_path / "tasks.csv", 7)
    seen: list[CsvMappingDialog] = []
    window = make_window("default")
    page = open_local_sync(qtbot, window)

    page.path_edit.setText(str(export))
    assert "CSV" in page.kind_label.text()
    assert page.mapping_button.isVisible()
    answer_mapping_dialog(qtbot, window, seen)
    click(qtbot, page.plan_button)
    wait_idle(qtbot, window)

    assert [dialog.preview.rowCount() for dialog in seen] == [sync_dialogs.PREVIEW_ROWS]
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


def test_csv_mapping__nothing_guessed_named(qtbot: QtBot, tmp_path: Path) -> None:
    export = tmp_path / "notes.csv"
    export.write_text("Colour,Size\nred,2\n", encoding="utf-8")
    dialog = CsvMappingDialog(export, read_csv_header(export), "Message_ID__c")
    qtbot.addWidget(dialog)

    assert dialog.kind.text() == "Mapping: none guessed"
    assert not dialog.accept_button.isEnabled()


def test_csv_mapping__problem_row_shows_file_values(qtbot: QtBot, tmp_path: Path) -> None:
    export = tmp_path / "tasks.csv"
    export.write_text("Id,Subject,Description,ActivityDate,WhoId,OwnerId,Message_ID__c\n"
                      "00T000000000101AAA,Intro call,Hello,2026-11-04,,,\n"
                      "00T000000000102AAA,Pricing,Quote,2026-11-05,,,<a1@mail.example.com>\n",
                      encoding="utf-8")
    dialog = CsvMappingDialog(export, read_csv_header(export), "Message_ID__c")
    qtbot.addWidget(dialog)

    cells = [[dialog.preview.item(row, column).text() for column in range(len(sync_dialogs.PREVIEW_HEADERS))]
             for row in range(dialog.preview.rowCount())]

    assert cells[0][0] == "tasks.csv, row 2"
    assert cells[0][2] == "Intro call"
    assert cells[0][-1], "the row without a Message-ID names no problem"
    assert cells[1][1] == "<a1@mail.example.com>"


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
    assert page.counts.text().startswith("The sync stopped before the end: cancelled"), page.counts.text()
    assert "(" not in page.counts.text(), "the reason is a sentence, not a bracket"
    window.show_step(Step.CONFLICTS)
    wait_idle(qtbot, window)
    window.show_step(Step.LOCAL_SYNC)
    wait_idle(qtbot, window)
    assert page.resume_offer.isVisible()
    assert "did not finish" in page.resume_text.text()

    click(qtbot, page.resume_offer_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Resume the sync"
    assert "row" in confirmations[-1].lines[0]
    assert "item" not in confirmations[-1].lines[0], "the banner counts rows, the dialog items"
    assert window.context.run.changes[-1].lines == tuple(confirmations[-1].lines)
    assert page.resume_offer.isHidden()
    after = keyed_tasks_by_key(window)
    assert len(after) - len(before) == counts["create"]
    doubled = [key for key, count in after.items() if count != before.get(key, 1)]
    assert doubled == [], "keys written twice"
    page.tabs.setCurrentWidget(page.history_panel)
    assert page.history_panel.model.index(0, RunHistoryModel.STATE).data() == "finished"


def run_drill(qtbot: QtBot, window: WizardWindow, page: LocalSyncPage) -> None:
    assert page.tabs.isTabVisible(page.tabs.indexOf(page.drill_panel))
    page.tabs.setCurrentWidget(page.drill_panel)
    click(qtbot, page.drill_panel.run_button)
    wait_idle(qtbot, window)


def drill_problems(page: LocalSyncPage) -> list[str]:
    """Return the Problem cell of every row of the drill's table."""
    table = page.drill_panel.table
    return [cell.text() for row in range(table.rowCount())
            if (cell := table.item(row, len(DRILL_HEADERS) - 1)) is not None]


def test_drill__passes_on_default_org(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)

    run_drill(qtbot, window, page)

    assert confirmations[-1].title == "Run the cadence-tool drill"
    assert "copy of sample.mbox with new Message-IDs" in confirmations[-1].question
    verdict = page.drill_panel.verdict.text()
    assert verdict.startswith("✓ Passed"), verdict
    assert "made them again after the sync" in verdict
    problems = drill_problems(page)
    assert problems
    assert len(problems) == page.drill_panel.table.rowCount()
    assert set(problems) == {DRILL_ROW_PASSED}
    conclusion = page.drill_panel.conclusion.text()
    assert conclusion.startswith("What this means: with the tool connected as each rep"), conclusion
    assert any("cadence-tool drill" in change.summary for change in window.context.run.changes)


def test_drill__shows_shared_user_finding(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path,
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    org = window.context.practice_org
    assert org is not None

    def connection_for_user(username: str) -> OrgConnection:
        return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)

    report = run_cadence_drill(connection_for_user, admin_connection(window), sample_mailbox_path(),
                               tool_user=ToolUser.SHARED, work_folder=tmp_path)
    page.tabs.setCurrentWidget(page.drill_panel)
    page.drill_panel.show_report(report)

    verdict = page.drill_panel.verdict.text()
    assert verdict.startswith("✗ Failed"), verdict
    assert f"The cadence tool wrote as {CADENCE_USERNAME}" in verdict
    assert "connect the tool as each rep, or give its user edit access" in verdict
    failed = [problem for problem in drill_problems(page) if problem != DRILL_ROW_PASSED]
    assert failed
    assert all("connect the cadence tool as each rep" in problem for problem in failed)


def test_local_sync__queue_retry_now(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
    tmp_path: Path,
) -> None:
    export = write_task_export(tmp_path / "tasks.csv", 3 * UPSERT_BATCH_SIZE)
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    page.path_edit.setText(str(export))
    answer_mapping_dialog(qtbot, window, [])
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
    assert queue.title.text().startswith(f"{queue.model.rowCount():,} rows of the sync of ")
    assert "queued" in outcomes_by_action(page)["create"]
    assert "" not in outcomes_by_action(page)["create"]
    page.tabs.setCurrentWidget(queue)
    click(qtbot, queue.retry_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Retry the backfill queue"
    assert queue.model.rowCount() == 0, page.message.label.text()
    assert window.context.run.changes[-1].lines == tuple(confirmations[-1].lines)
    by_key = keyed_tasks_by_key(window)
    exported = {key: count for key, count in by_key.items() if key.endswith("@csv.example.com")}
    assert len(exported) == 3 * UPSERT_BATCH_SIZE
    assert set(exported.values()) == {1}


def test_local_sync__inactive_owner_listed(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
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
    assert f"from 1 inactive user ({username['Username']}), so {connection.username} owns those Tasks" \
        in page.owners.text()
    click(qtbot, page.apply_button)
    wait_idle(qtbot, window)
    assert any(str(username["Username"]) in line and connection.username in line
               for line in confirmations[-1].lines), confirmations[-1].lines


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


def test_local_sync__route_follows_threshold(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    counts = build_plan(qtbot, window)
    sending = counts["create"] + counts["update"]

    page.threshold.setValue(2000)
    assert page.route.text() == (f"Apply will use sObject Collections ({sending} rows, below the Bulk "
                                 "threshold of 2,000).")
    page.threshold.setValue(sending)
    assert page.route.text().startswith("Apply will use Bulk API 2.0")


def test_local_sync__dead_apply_shows_stopped(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    plan = window.context.run.plan
    connection = window.context.run.connection
    assert plan is not None
    assert plan.run_id is not None
    assert connection is not None
    journal = Journal.open()
    # What a sync killed by Ctrl+C in the middle of its apply leaves behind.
    journal.set_run_state(plan.run_id, RunState.APPLYING)
    history = page.history_panel

    with journal.lock_org(connection.org_id, holder="a running sync"):
        page.tabs.setCurrentWidget(history)
        assert history.model.index(0, RunHistoryModel.STATE).data() == "applying"
    page.tabs.setCurrentIndex(0)
    page.tabs.setCurrentWidget(history)
    journal.close()

    assert history.model.index(0, RunHistoryModel.STATE).data() == "stopped"
    assert history.resume_button.isEnabled()


def test_local_sync__plans_never_applied_hidden_then_deleted(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    build_plan(qtbot, window)
    apply_plan(qtbot, window, confirmations)
    build_plan(qtbot, window)
    build_plan(qtbot, window)
    newest = window.context.run.plan
    assert newest is not None
    history = page.history_panel
    page.tabs.setCurrentWidget(history)

    assert [run.state for run in history.runs()] == [RunState.PLANNED, RunState.FINISHED]
    history.show_all_plans.setChecked(True)
    assert history.model.rowCount() == 4
    history.show_all_plans.setChecked(False)

    history.select_run(newest.run_id or "")
    click(qtbot, history.delete_button)

    assert confirmations[-1].title == "Delete the run"
    assert newest.run_id not in {run.run_id for run in history.runs()}
    history.show_all_plans.setChecked(True)
    assert history.model.rowCount() == 3
    assert window.context.run.plan is None
    assert not page.apply_button.isEnabled()


def test_wizard__journal_closed_with_run(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    journal = window.context.run.journal
    assert journal is not None

    window.start_fresh_run(window.context.run.profile)

    with pytest.raises(JournalError, match="closed database"):
        journal.runs()


def test_drill__shared_user_chosen_on_tab(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    panel = page.drill_panel
    panel.tool_user_box.setCurrentIndex(panel.tool_user_box.findData(ToolUser.SHARED.value))

    run_drill(qtbot, window, page)

    assert "the cadence tool's one shared user" in confirmations[-1].lines[1]
    verdict = panel.verdict.text()
    assert verdict.startswith("✗ Failed"), verdict
    assert f"The cadence tool wrote as {CADENCE_USERNAME}" in verdict
    conclusion = panel.conclusion.text()
    assert conclusion.startswith("What this means: a cadence tool connected once, as one shared user, cannot "
                                 "update the Tasks the local sync creates for other reps"), conclusion
    assert "Connect it as each rep" in conclusion
    assert any("the tool writing as one shared user: failed" in change.summary
               for change in window.context.run.changes)


def test_drill__report_shown_under_its_choice(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    panel = page.drill_panel
    panel.tool_user_box.setCurrentIndex(panel.tool_user_box.findData(ToolUser.SHARED.value))
    run_drill(qtbot, window, page)
    shared_verdict = panel.verdict.text()
    assert panel.table.rowCount() > 0

    panel.tool_user_box.setCurrentIndex(panel.tool_user_box.findData(ToolUser.EACH_REP.value))

    assert panel.verdict.text() == ("The drill has not run yet with the cadence tool connected "
                                    "as each rep's own user.")
    assert panel.conclusion.isHidden()
    assert panel.table.rowCount() == 0
    panel.tool_user_box.setCurrentIndex(panel.tool_user_box.findData(ToolUser.SHARED.value))
    assert panel.verdict.text() == shared_verdict
    assert panel.conclusion.text().startswith("What this means: a cadence tool connected once")
    assert panel.table.rowCount() > 0


def test_local_sync__stored_spelling_counted_and_filtered(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    assert page.spelling.isHidden()

    build_plan(qtbot, window)
    plan = window.context.run.plan
    assert plan is not None
    stored_spelling_updates = plan.reason_counts()[ReasonCode.UPDATE_STORED_SPELLING.value]
    assert stored_spelling_updates > 0, "no Task of the default org holds a sample key in another spelling"

    assert page.spelling.isVisible()
    assert page.spelling.text().startswith(f"{stored_spelling_updates} update"), page.spelling.text()
    position = page.filter_box.findData(REASON_FILTER_PREFIX + ReasonCode.UPDATE_STORED_SPELLING.value)
    assert page.filter_box.itemText(position) == f"stored spelling kept ({stored_spelling_updates})"
    page.filter_box.setCurrentIndex(position)
    wait_idle(qtbot, window)

    assert page.model.rowCount() == stored_spelling_updates
    codes = {page.model.row_at(row).reason_code for row in range(page.model.rowCount())}
    assert codes == {ReasonCode.UPDATE_STORED_SPELLING}
    actions = {page.model.index(row, PlanTableModel.ACTION).data() for row in range(page.model.rowCount())}
    assert actions == {"update"}
    for row in range(page.model.rowCount()):
        plan_row = page.model.row_at(row)
        assert plan_row.upsert_key != plan_row.key
        assert page.model.index(row, PlanTableModel.KEY).data() == plan_row.upsert_key
    page.filter_box.setCurrentIndex(0)
    assert page.model.rowCount() == len(plan.rows)


def test_local_sync__filter_leaves_out_empty_choices(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    plan = window.context.run.plan
    assert plan is not None
    reason_counts = plan.reason_counts()
    assert reason_counts.get(ReasonCode.RECYCLE_BIN.value, 0) == 0, "the sample plan has a Recycle Bin row"

    assert page.filter_box.findData(REASON_FILTER_PREFIX + ReasonCode.RECYCLE_BIN.value) == -1
    listed = [str(page.filter_box.itemData(position) or "") for position in range(page.filter_box.count())]
    reasons = {data.removeprefix(REASON_FILTER_PREFIX)
               for data in listed if data.startswith(REASON_FILTER_PREFIX)}
    assert reasons == {code for code, count in reason_counts.items() if count}
    actions = {data for data in listed if data and not data.startswith(REASON_FILTER_PREFIX)}
    assert actions == {action for action, count in plan.counts().items() if count}


def test_local_sync__filter_by_new_key_reason(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    counts = build_plan(qtbot, window)

    page.filter_box.setCurrentIndex(page.filter_box.findData(REASON_FILTER_PREFIX + ReasonCode.NEW_KEY.value))
    wait_idle(qtbot, window)

    assert page.model.rowCount() == counts["create"]
    codes = {page.model.row_at(row).reason_code for row in range(page.model.rowCount())}
    assert codes == {ReasonCode.NEW_KEY}


def api_calls(journal_path: Path, run_id: str) -> list[str]:
    """Return the API of each call the journal recorded for a run, in the order they were made."""
    with sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT api FROM calls WHERE run_id = ? ORDER BY call_id", (run_id,)).fetchall()
    return [str(api) for (api,) in rows]


def test_local_sync__resume_uses_shown_threshold(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    plan = window.context.run.plan
    journal = window.context.run.journal
    assert plan is not None
    assert plan.run_id is not None
    assert journal is not None
    org = window.context.practice_org
    assert org is not None
    org.faults = FaultPlan(latency_seconds=4.0)
    click(qtbot, page.apply_button)
    qtbot.waitUntil(page.progress.isVisible)
    qtbot.wait(1500)
    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)
    org.faults = FaultPlan()
    sent_before = api_calls(journal.path, plan.run_id)
    assert "bulk" not in sent_before, sent_before

    page.threshold.setValue(1)
    page.tabs.setCurrentWidget(page.history_panel)
    page.history_panel.select_run(plan.run_id)
    click(qtbot, page.history_panel.resume_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Resume the sync"
    assert "row" in confirmations[-1].lines[0]
    assert "item" not in confirmations[-1].lines[0], "the banner counts rows, the dialog items"
    assert window.context.run.changes[-1].lines == tuple(confirmations[-1].lines)
    resumed = api_calls(journal.path, plan.run_id)[len(sent_before):]
    assert "bulk" in resumed, resumed
    assert page.history_panel.model.index(0, RunHistoryModel.STATE).data() == "finished"


def test_plan_table__reason_and_subject_fit_1100_wide(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    window.resize(1100, 760)
    page = open_local_sync(qtbot, window)
    build_plan(qtbot, window)
    header = page.table.horizontalHeader()
    widths = {column: header.sectionSize(column) for column in range(len(PlanTableModel.HEADERS))
              if not page.table.isColumnHidden(column)}

    assert widths[PlanTableModel.REASON] >= REASON_MIN_WIDTH, widths
    assert widths[PlanTableModel.SUBJECT] >= SUBJECT_MIN_WIDTH, widths
    assert widths[PlanTableModel.REASON] >= widths[PlanTableModel.KEY], widths
    assert sum(widths.values()) <= page.table.viewport().width() + 1, "the table scrolls sideways at 1100 px"
    metrics = page.table.fontMetrics()
    sources = [page.model.index(position, PlanTableModel.SOURCE).data() for position in range(20)]
    widest = max(metrics.horizontalAdvance(source) for source in sources)
    assert widest < widths[PlanTableModel.SOURCE], sources
    row = page.model.row_at(0)
    assert page.model.index(0, PlanTableModel.REASON).data(Qt.ItemDataRole.ToolTipRole) == row.reason
    assert page.model.index(0, PlanTableModel.SUBJECT).data(Qt.ItemDataRole.ToolTipRole) == row.subject
