"""Drive the wizard through every page against a practice org and save a PNG of each page.

Used for the README's screenshots:
``python -m backstory_desktop.gui.screenshots OUTPUT_FOLDER``. The practice org
is made in a temporary folder unless a database is given, so the admin's own
practice org is left as it is.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from backstory_desktop.core.checklist import Step
from backstory_desktop.gui import dialogs, sync_dialogs
from backstory_desktop.gui.app import create_window
from backstory_desktop.gui.pages.backstory_setting import BackstorySettingPage
from backstory_desktop.gui.pages.cadence_mapping import CadenceMappingPage
from backstory_desktop.gui.pages.cadence_tools import CadenceToolsPage
from backstory_desktop.gui.pages.conflicts import ConflictsPage
from backstory_desktop.gui.pages.connect import ConnectPage
from backstory_desktop.gui.pages.integration_user import IntegrationUserPage
from backstory_desktop.gui.pages.local_sync import LocalSyncPage
from backstory_desktop.gui.pages.message_id_field import MessageIdFieldPage
from backstory_desktop.gui.profile_dialog import ProfileDialog
from backstory_desktop.gui.sign_in_dialogs import GuideDialog
from backstory_desktop.gui.sync_dialogs import CsvMappingDialog
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.store.paths import HOME_OVERRIDE_VARIABLE

log = logging.getLogger(__name__)

# How long one job of the tour may take before the tour gives up on it.
JOB_TIMEOUT_MS = 120_000


def save_screenshots(
    folder: Path, *, practice_db: Path | None = None, scenario: str = "default"
) -> list[Path]:
    """Walk every page of the wizard, doing each step for real, and save one PNG per view.

    The "fresh" scenario adds views of the Create field path. Returns the
    files written, in wizard order. A QApplication is created when none
    exists yet.
    """
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backstory-screenshots-") as scratch, _scratch_home(scratch):
        database = practice_db or Path(scratch) / "practice-org.sqlite3"
        window = create_window(database, scenario=scenario)
        window.show()
        try:
            return _tour(window, folder)
        finally:
            window.close()
            window.context.stop_practice_org()


@contextmanager
def _scratch_home(scratch: str) -> Iterator[None]:
    """Keep the tour's profiles and logs out of the admin's own folders."""
    previous = os.environ.get(HOME_OVERRIDE_VARIABLE)
    os.environ[HOME_OVERRIDE_VARIABLE] = str(Path(scratch) / "home")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HOME_OVERRIDE_VARIABLE, None)
        else:
            os.environ[HOME_OVERRIDE_VARIABLE] = previous


def _tour(window: WizardWindow, folder: Path) -> list[Path]:
    saved: list[Path] = []

    def shoot(name: str, widget: QWidget | None = None) -> None:
        path = folder / f"{len(saved) + 1:02d}-{name}.png"
        QApplication.processEvents()  # lay out and paint once before grabbing
        (widget or window).grab().save(str(path))
        saved.append(path)

    connect = window.page(Step.CONNECT)
    assert isinstance(connect, ConnectPage)
    shoot("connect-choose-org")
    _shoot_dialog(shoot, "connect-new-profile", ProfileDialog(window, taken_aliases=()))
    _shoot_dialog(shoot, "connect-setup-guide", GuideDialog(window))
    _run(window, connect.connect_button.click)
    shoot("connect")

    window.go_next()
    tools = window.page(Step.CADENCE_TOOLS)
    assert isinstance(tools, CadenceToolsPage)
    _wait_idle(window)
    shoot("cadence-tools")
    # Ticking a tool ticks the users named after it: the practice org's Outreach user.
    tools.boxes["Outreach"].setChecked(True)
    shoot("cadence-tools-chosen")
    _run(window, tools.save_button.click)
    shoot("cadence-tools-saved")

    window.go_next()
    field = window.page(Step.MESSAGE_ID_FIELD)
    assert isinstance(field, MessageIdFieldPage)
    _run(window, field.inspect_button.click)
    if field.create_button.isVisible():
        shoot("message-id-field-missing")
        with _answering_dialogs(shoot, "message-id-field-create-dialog"):
            _run(window, field.create_button.click)
    shoot("message-id-field")

    window.go_next()
    user = window.page(Step.INTEGRATION_USER)
    assert isinstance(user, IntegrationUserPage)
    _wait_idle(window)
    shoot("integration-user")
    org = window.context.practice_org
    assert org is not None
    user.users.setCurrentIndex(user.users.findData(org.integration_username))
    _run(window, user.check_button.click)
    shoot("integration-user-check")
    if user.grant_button.isVisible():
        with _answering_dialogs(shoot, "integration-user-grant-dialog"):
            _run(window, user.grant_button.click)
        shoot("integration-user-granted")

    window.go_next()
    setting = window.page(Step.BACKSTORY_SETTING)
    assert isinstance(setting, BackstorySettingPage)
    shoot("backstory-setting-not-confirmed")
    setting.confirmed.setChecked(True)
    shoot("backstory-setting")

    window.go_next()
    mapping = window.page(Step.CADENCE_MAPPING)
    assert isinstance(mapping, CadenceMappingPage)
    shoot("cadence-mapping")
    _run(window, mapping.check_button.click)
    shoot("cadence-mapping-checked")
    mapping.tabs.setCurrentIndex(mapping.tabs.count() - 1)
    shoot("cadence-mapping-calls")

    window.go_next()
    _wait_idle(window)
    _tour_local_sync(window, shoot)

    window.go_next()
    _tour_conflicts(window, shoot)

    window.go_next()
    shoot("summary")
    diagnostics = window.open_diagnostics()
    _wait_idle(window)
    _shoot_dialog(shoot, "help-diagnostics", diagnostics)
    return saved


def _tour_conflicts(window: WizardWindow, shoot: Callable[..., None]) -> None:
    """Scan, compare, the charts, then resolve one group, resolve all shown and undo the last resolution."""
    conflicts = window.page(Step.CONFLICTS)
    assert isinstance(conflicts, ConflictsPage)
    _run(window, conflicts.scan_button.click)
    shoot("conflicts")
    if conflicts.groups_model.rowCount() == 0:
        return
    conflicts.groups.selectRow(0)
    shoot("conflicts-compare")
    conflicts.tabs.setCurrentWidget(conflicts.charts)
    shoot("conflicts-charts")
    conflicts.tabs.setCurrentIndex(0)

    _run(window, conflicts.resolve_button.click)
    if conflicts.resolve_dialog is not None:
        shoot("conflicts-resolve-dialog", conflicts.resolve_dialog)
        _run(window, conflicts.resolve_dialog.resolve_button.click)
        shoot("conflicts-resolved")
    if conflicts.resolve_all_button.isEnabled():
        _run(window, conflicts.resolve_all_button.click)
        if conflicts.bulk_dialog is not None:
            shoot("conflicts-resolve-all-dialog", conflicts.bulk_dialog)
            _run(window, conflicts.bulk_dialog.resolve_button.click)
            shoot("conflicts-resolved-all")
    _run(window, conflicts.undo_button.click)
    if conflicts.undo_dialog is not None:
        shoot("conflicts-undo-dialog", conflicts.undo_dialog)
        _run(window, conflicts.undo_dialog.undo_button.click)
        shoot("conflicts-undone")


def _tour_local_sync(window: WizardWindow, shoot: Callable[..., None]) -> None:
    """Plan, filter, apply, history, a cancelled apply offered for resuming, the queue and the drill."""
    sync = window.page(Step.LOCAL_SYNC)
    assert isinstance(sync, LocalSyncPage)
    with tempfile.TemporaryDirectory(prefix="backstory-csv-") as scratch:
        export = Path(scratch) / "task-export.csv"
        export.write_text(SAMPLE_TASK_EXPORT, encoding="utf-8")
        headers = SAMPLE_TASK_EXPORT.splitlines()[0].split(",")
        mapping = CsvMappingDialog(export, headers, "Message_ID__c", window)
        _shoot_dialog(shoot, "local-sync-csv-mapping", mapping)
    _run(window, sync.plan_button.click)
    shoot("local-sync-plan")
    sync.filter_box.setCurrentIndex(sync.filter_box.findData("update"))
    _wait_idle(window)
    shoot("local-sync-plan-updates")
    sync.filter_box.setCurrentIndex(0)
    with _answering_dialogs(shoot, "local-sync-apply-dialog"):
        _run(window, sync.apply_button.click)
    _wait_idle(window)
    shoot("local-sync-applied")
    sync.tabs.setCurrentWidget(sync.history_panel)
    shoot("local-sync-history")
    sync.history_panel.show_all_plans.setChecked(True)
    shoot("local-sync-history-all-plans")
    sync.history_panel.show_all_plans.setChecked(False)

    # A slow org and a Cancel during the apply leave a run to resume.
    org = window.context.practice_org
    assert org is not None
    sync.tabs.setCurrentIndex(0)
    _run(window, sync.plan_button.click)
    org.faults = FaultPlan(latency_seconds=3.0)
    with _answering_dialogs(shoot, "local-sync-apply-again-dialog"):
        QTimer.singleShot(1500, sync.progress.cancel_button.click)
        _run(window, sync.apply_button.click)
    org.faults = FaultPlan()
    shoot("local-sync-stopped")
    window.show_step(Step.CONFLICTS)
    _wait_idle(window)
    window.show_step(Step.LOCAL_SYNC)
    _wait_idle(window)
    shoot("local-sync-resume-offer")
    if sync.resume_offer.isVisible():
        with _answering_dialogs(shoot, "local-sync-resume-dialog"):
            _run(window, sync.resume_offer_button.click)
        _wait_idle(window)
    _tour_backfill_queue(window, sync, shoot)
    sync.tabs.setCurrentWidget(sync.drill_panel)
    with _answering_dialogs(shoot, "local-sync-drill-dialog"):
        _run(window, sync.drill_panel.run_button.click)
    shoot("local-sync-drill")
    sync.tabs.setCurrentIndex(0)


def _tour_backfill_queue(window: WizardWindow, sync: LocalSyncPage, shoot: Callable[..., None]) -> None:
    """Apply a CSV export while the org's daily API requests run out, then show and retry the queue."""
    org = window.context.practice_org
    assert org is not None
    with tempfile.TemporaryDirectory(prefix="backstory-csv-") as scratch:
        export = Path(scratch) / "outreach-activities.csv"
        lines = ["Message ID,Subject,Body,From,To,Sent At"]
        lines += [f"<tour-{number}@outreach.example.com>,Follow-up {number},Hello,sdr@example.com,"
                  f"buyer{number}@example.com,2026-11-02 10:{number % 60:02d}" for number in range(450)]
        export.write_text("\n".join(lines) + "\n", encoding="utf-8")
        original = sync_dialogs.edit_csv_mapping
        sync_dialogs.edit_csv_mapping = lambda parent, path, key_field: CsvMappingDialog(
            path, lines[0].split(","), key_field, parent).mapping()
        try:
            sync.path_edit.setText(str(export))
            _run(window, sync.plan_button.click)
        finally:
            sync_dialogs.edit_csv_mapping = original
        limit = org.daily_api_limit
        org.faults = FaultPlan(latency_seconds=1.0)

        def use_up_requests(value: int) -> None:
            if value > 0:
                org.daily_api_limit = 1
                sync.progress.bar.valueChanged.disconnect(use_up_requests)

        sync.progress.bar.valueChanged.connect(use_up_requests)
        with _answering_dialogs(shoot, "local-sync-apply-csv-dialog"):
            _run(window, sync.apply_button.click)
        org.faults = FaultPlan()
        org.daily_api_limit = limit
        sync.tabs.setCurrentWidget(sync.queue_panel)
        shoot("local-sync-queue")
        if sync.queue_panel.retry_button.isEnabled():
            with _answering_dialogs(shoot, "local-sync-retry-dialog"):
                _run(window, sync.queue_panel.retry_button.click)
            shoot("local-sync-queue-retried")


# A few rows of a Data Loader Task export, for the view of the CSV mapping dialog.
SAMPLE_TASK_EXPORT = (
    "Id,Subject,Description,ActivityDate,WhoId,OwnerId,Message_ID__c\n"
    "00T000000000101AAA,Pricing follow-up,Thanks for the call,2026-11-02,003000000000001AAA,"
    "005000000000001AAA,<CAH4f2k@mail.example.com>\n"
    "00T000000000102AAA,Re: Pricing follow-up,See the attached quote,2026-11-03,003000000000001AAA,"
    "005000000000001AAA,cah4f2l@mail.example.com\n"
    "00T000000000103AAA,Intro,,2026-11-04,,005000000000002AAA,\n"
    "00T000000000104AAA,Renewal date,,2026-11-05,,005000000000002AAA,renewal-2026 at mail.example.com\n"
)


def _shoot_dialog(shoot: Callable[[str, QWidget], None], name: str, dialog: QDialog) -> None:
    """Show a dialog without its event loop, save a PNG of it, and close it."""
    dialog.show()
    shoot(name, dialog)
    dialog.close()


def _run(window: WizardWindow, click: Callable[[], None]) -> None:
    """Click a button, then wait for every job it started, and for chained ones."""
    click()
    _wait_idle(window)


def _wait_idle(window: WizardWindow) -> None:
    """Run the event loop until the window's worker is free again."""
    if not window.worker.busy:
        return
    loop = QEventLoop()
    window.worker.busy_changed.connect(lambda busy: loop.quit() if not busy else None)
    QTimer.singleShot(JOB_TIMEOUT_MS, loop.quit)
    loop.exec()
    if window.worker.busy:
        raise TimeoutError(f"{window.worker.running_job_names()} did not finish in time")


@contextmanager
def _answering_dialogs(shoot: Callable[[str, QWidget], None], name: str) -> Iterator[None]:
    """Approve the confirmation dialogs opened inside the block, saving a PNG of each first."""
    original = dialogs.confirm

    def approve(
        parent: QWidget | None, title: str, question: str, lines: list[str], action: str = dialogs.APPLY
    ) -> bool:
        box = dialogs.build_confirm_box(parent, title, question, lines, action)
        box.show()
        shoot(name, box)
        box.close()
        return True

    dialogs.confirm = approve
    try:
        yield
    finally:
        dialogs.confirm = original


def main(arguments: list[str]) -> int:
    """Save the screenshots into the folder named on the command line."""
    if len(arguments) != 1:
        print("usage: python -m backstory_desktop.gui.screenshots OUTPUT_FOLDER", file=sys.stderr)
        return 2
    for path in save_screenshots(Path(arguments[0])):
        print(path)
    return 0


if __name__ == "__main__":
    # Screenshots need no screen: render offscreen unless a platform is chosen.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    raise SystemExit(main(sys.argv[1:]))
