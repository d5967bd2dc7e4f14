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
from backstory_desktop.gui import dialogs
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
from backstory_desktop.gui.wizard import WizardWindow
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
    sync = window.page(Step.LOCAL_SYNC)
    assert isinstance(sync, LocalSyncPage)
    _run(window, sync.plan_button.click)
    shoot("local-sync-plan")
    with _answering_dialogs(shoot, "local-sync-apply-dialog"):
        _run(window, sync.apply_button.click)
    shoot("local-sync-applied")

    window.go_next()
    conflicts = window.page(Step.CONFLICTS)
    assert isinstance(conflicts, ConflictsPage)
    _run(window, conflicts.scan_button.click)
    shoot("conflicts")

    window.go_next()
    shoot("summary")
    diagnostics = window.open_diagnostics()
    _wait_idle(window)
    _shoot_dialog(shoot, "help-diagnostics", diagnostics)
    return saved


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
