"""The wizard window: the step list, one page per step, Back and Next, and the org in the status bar.

Navigation follows ``Checklist.can_leave``: Next opens once the current step
has the result it needs, and a step in the list opens only when every step
before it may be left. While a job runs, navigation waits for it. Picking
another org profile starts a fresh enablement run with fresh pages.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QColor, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import __version__
from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult, StepStatus
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import PracticeSettings, StepPage, WizardContext, import_sign_in_modules
from backstory_desktop.gui.pages.connect import ConnectPage, practice_profile, saved_profiles
from backstory_desktop.gui.widgets import NEUTRAL_COLOR, STATUS_MARKS, status_color
from backstory_desktop.gui.worker import Worker
from backstory_desktop.store.settings import (
    PRACTICE_PROFILE_ALIAS,
    OrgProfile,
    ProfilesFileError,
    load_app_settings,
    save_app_settings,
)

if TYPE_CHECKING:
    from backstory_desktop.gui.diagnostics_dialog import DiagnosticsDialog

log = logging.getLogger(__name__)

# Optional steps: the admin may skip them, and the summary lists them as skipped.
SKIPPABLE_STEPS = (Step.CADENCE_TOOLS, Step.CADENCE_MAPPING, Step.LOCAL_SYNC, Step.CONFLICTS)
WINDOW_SIZE = QSize(1100, 720)
# The progress line while a saved profile's window loads what its sign-in needs.
STARTING = "Starting…"
# Steps the admin cannot open yet are drawn in this lighter grey, because their own
# status color would make them look as clickable as the others.
UNREACHABLE_COLOR = QColor("#a0a4a8")
# Shown in the step list for a step whose result waits for the admin to act.
WAITING_MARK = "… waiting for you"
# How long closing waits for a cancelled job to stop before the window closes anyway.
CLOSE_WAIT_MS = 15_000


def quit_shortcuts() -> list[QKeySequence]:
    """Return the platform's Quit keys, or Ctrl+Q (Cmd+Q on macOS) where it defines none.

    Some platforms, Qt's offscreen platform among them, bind nothing to
    QKeySequence.StandardKey.Quit.
    """
    return QKeySequence.keyBindings(QKeySequence.StandardKey.Quit) or [QKeySequence("Ctrl+Q")]


ABOUT_TEXT = (
    "<p><b>Backstory Desktop {version}</b></p>"
    "<p>Sets up a Salesforce org for Backstory's cadence-tool integration: the cadence tools' "
    "users, the Message-ID field, the integration user's access, the Backstory setting, the "
    "cadence tools' mapping, a local mail sync and the duplicate check.</p>"
)


def page_class(step: Step) -> type[StepPage]:
    """Import the module of ``step``'s page and return the page class.

    The window builds the Connect page at once and every other page when it is first shown,
    so their modules and the Salesforce layer they import stay out of the start-up.
    """
    if step is Step.CONNECT:
        return ConnectPage
    if step is Step.CADENCE_TOOLS:
        from backstory_desktop.gui.pages.cadence_tools import CadenceToolsPage

        return CadenceToolsPage
    if step is Step.MESSAGE_ID_FIELD:
        from backstory_desktop.gui.pages.message_id_field import MessageIdFieldPage

        return MessageIdFieldPage
    if step is Step.INTEGRATION_USER:
        from backstory_desktop.gui.pages.integration_user import IntegrationUserPage

        return IntegrationUserPage
    if step is Step.BACKSTORY_SETTING:
        from backstory_desktop.gui.pages.backstory_setting import BackstorySettingPage

        return BackstorySettingPage
    if step is Step.CADENCE_MAPPING:
        from backstory_desktop.gui.pages.cadence_mapping import CadenceMappingPage

        return CadenceMappingPage
    if step is Step.LOCAL_SYNC:
        from backstory_desktop.gui.pages.local_sync import LocalSyncPage

        return LocalSyncPage
    if step is Step.CONFLICTS:
        from backstory_desktop.gui.pages.conflicts import ConflictsPage

        return ConflictsPage
    from backstory_desktop.gui.pages.summary import SummaryPage

    return SummaryPage


def starting_profile(org_alias: str | None) -> OrgProfile:
    """Return the profile a new window opens with: the one asked for, else the last one used.

    An alias that names no saved profile falls back to the built-in practice org.
    """
    alias = org_alias or load_app_settings().last_profile
    if alias and alias != PRACTICE_PROFILE_ALIAS:
        try:
            profile = saved_profiles().get(alias)
        except ProfilesFileError as error:
            log.warning("%s", error)
            profile = None
        if profile is not None:
            return profile
        log.warning("no saved org profile is named %s; opening the practice org", alias)
    return practice_profile()


def start_up_job(*, progress: ProgressCallback, cancel: threading.Event) -> None:
    """Import the modules of the first sign-in as a job on the worker."""
    import_sign_in_modules()


class WizardWindow(QMainWindow):
    """The main window of Backstory Desktop."""

    # Emitted once the start-up work left out of __init__ is done: the start-up imports, the
    # keyring notice and the enablement run.
    ready = Signal()

    def __init__(self, practice: PracticeSettings, mailbox: Path, *, org_alias: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Backstory Desktop")
        self.resize(WINDOW_SIZE)
        self.worker = Worker(self)
        self.context = WizardContext(starting_profile(org_alias), self.worker, practice, mailbox, self)
        # The pages built so far. The stack has one placeholder per step until its page is built,
        # so the stack's order stays the steps' order.
        self.pages: dict[Step, StepPage] = {}
        self.is_ready = False
        self._start_scheduled = False
        self._closing = False
        self._force_close = False

        self.step_list = QListWidget()
        self.step_list.setMinimumWidth(210)
        self.step_list.setMaximumWidth(260)
        self.step_list.setSpacing(4)
        self.step_list.setStyleSheet("QListWidget::item { padding: 4px 8px; }")
        for step in Step:
            item = QListWidgetItem(STEP_TITLES[step])
            item.setData(Qt.ItemDataRole.UserRole, step)
            self.step_list.addItem(item)
        self.step_list.currentRowChanged.connect(self._step_clicked)
        self.stack = QStackedWidget()
        for _step in Step:
            self.stack.addWidget(QWidget())
        self._build_page(Step.CONNECT)

        self.skip_button = QPushButton("Skip this step")
        self.skip_button.clicked.connect(self.skip_step)
        self.back_button = QPushButton("Back")
        self.back_button.clicked.connect(self.go_back)
        self.next_button = QPushButton("Next")
        self.next_button.setDefault(True)
        self.next_button.clicked.connect(self.go_next)
        navigation = QHBoxLayout()
        navigation.setContentsMargins(16, 0, 16, 12)
        navigation.addWidget(self.skip_button)
        navigation.addStretch(1)
        navigation.addWidget(self.back_button)
        navigation.addWidget(self.next_button)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.stack, 1)
        right_layout.addLayout(navigation)
        splitter = QSplitter()
        splitter.addWidget(self.step_list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 880])
        self.setCentralWidget(splitter)
        self.content = splitter

        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcuts(quit_shortcuts())
        self.quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        # Closing goes through closeEvent, which cancels a running job first.
        self.quit_action.triggered.connect(self.close)
        self.addAction(self.quit_action)

        self._build_help_menu()
        self.org_label = QLabel()
        self.statusBar().addPermanentWidget(self.org_label)
        self.context.checklist_changed.connect(self.refresh)
        self.context.profile_switch_requested.connect(self.switch_profile)
        self.context.sign_in_again_requested.connect(self.sign_in_again)
        self.worker.busy_changed.connect(lambda _busy: self.refresh())
        self.show_step(Step.CONNECT)
        if self.context.profile.kind != "practice":
            # A saved profile resumes its sign-in, so the window is busy with it from the start,
            # and its first job imports the modules of the sign-in on the worker.
            self._start_scheduled = True
            self.connect_page.start_job(
                "the start-up", start_up_job, progress_message=STARTING,
                on_finished=lambda _result: self._finish_start(resume=True),
            )

    def event(self, event: QEvent) -> bool:
        """Start the work that waits for the first paint once that paint is under way."""
        if event.type() == QEvent.Type.Paint and not self._start_scheduled:
            # Work started from __init__, even by a zero timer, would run before the first paint,
            # because the window system sends the paint only after the window is exposed.
            # The second timer lets the events posted during the paint, such as input or a quit
            # request, run before the start-up work blocks the event loop, for about half a second
            # on a 2-CPU Linux VM.
            self._start_scheduled = True
            QTimer.singleShot(0, lambda: QTimer.singleShot(0, lambda: self._finish_start(resume=False)))
        return super().event(event)

    def _finish_start(self, *, resume: bool) -> None:
        """Run the start-up work left out of __init__, then emit ``ready``.

        It creates the enablement run, which imports the modules of the first sign-in unless a
        job did, and chooses the keyring backend for the notice on Connect. With ``resume`` it
        then resumes the saved sign-in of the window's saved profile.
        """
        if self.context.closing:
            # Closed during the start-up job: no sign-in may start after the close.
            return
        self.connect_page.finish_start()
        run = self.context.run
        if resume:
            self.connect_page.resume_saved_session()
        log.info("window ready on org profile %s", run.profile.alias)
        self.is_ready = True
        self.ready.emit()

    def _build_help_menu(self) -> None:
        help_menu = self.menuBar().addMenu("&Help")
        self.diagnostics_action = help_menu.addAction("Diagnostics…")
        self.diagnostics_action.triggered.connect(self.show_diagnostics)
        self.about_action = help_menu.addAction("About Backstory Desktop")
        self.about_action.triggered.connect(self.show_about)

    def _build_page(self, step: Step) -> StepPage:
        page = page_class(step)(self.context)
        position = list(Step).index(step)
        replaced = self.stack.widget(position)
        assert replaced is not None
        self.stack.removeWidget(replaced)
        replaced.deleteLater()
        self.stack.insertWidget(position, page)
        self.pages[step] = page
        return page

    @property
    def connect_page(self) -> ConnectPage:
        """The Connect page, which stays the same page across runs."""
        page = self.pages[Step.CONNECT]
        assert isinstance(page, ConnectPage)
        return page

    def open_diagnostics(self) -> DiagnosticsDialog:
        """Build the Diagnostics dialog, which starts collecting at once, without showing it."""
        from backstory_desktop.gui.diagnostics_dialog import DiagnosticsDialog

        context = self.context
        return DiagnosticsDialog(
            self.worker, lambda: (context.run.connection, context.run.profile.alias), self
        )

    def show_diagnostics(self) -> None:
        """Show the Diagnostics dialog until the admin closes it."""
        self.open_diagnostics().exec()

    def show_about(self) -> None:
        """Show the product name, version and purpose."""
        QMessageBox.about(self, "About Backstory Desktop", ABOUT_TEXT.format(version=__version__))

    def switch_profile(self, alias: str, ask: bool = True) -> None:
        """Start a fresh enablement run on the profile ``alias``; ask first if ``ask`` and results exist."""
        if self.worker.busy or (ask and alias == self.context.profile.alias):
            return
        profile = self.connect_page.profile_for(alias)
        if profile is None:
            return
        results = self.context.checklist.results
        if ask and results:
            lines = [
                f"• {STEP_TITLES[step]}: {STATUS_MARKS[result.status]}" for step, result in results.items()
            ]
            question = (
                f"Switch to the org profile {alias}? A fresh enablement run starts, and this run's "
                "results are cleared from the window. Changes already made in the org stay there."
            )
            if not dialogs.confirm(self, "Switch org profile", question, lines, "Switch"):
                return
        self.start_fresh_run(profile)

    def start_fresh_run(self, profile: OrgProfile) -> None:
        """Replace the run and every page but Connect, so nothing of the old org stays on screen."""
        from backstory_desktop.enablement.run import EnablementRun

        log.info("starting a fresh enablement run on org profile %s", profile.alias)
        self._close_journal()
        self.context.run = EnablementRun(profile)
        for step in list(self.pages):
            if step is not Step.CONNECT:
                self._build_page(step)
        self._remember_profile(profile.alias)
        self.show_step(Step.CONNECT)
        self.connect_page.profile_switched()

    def _remember_profile(self, alias: str) -> None:
        try:
            settings = load_app_settings()
            settings.last_profile = alias
            save_app_settings(settings)
        except OSError as error:
            log.warning("could not remember the last org profile: %s", error)

    def sign_in_again(self) -> None:
        """Go to Connect and start the sign-in, after a job found the org's sign-in ended."""
        if self.worker.busy:
            return
        self.show_step(Step.CONNECT)
        self.connect_page.sign_in_again()

    @property
    def current_step(self) -> Step:
        """The step whose page is shown."""
        page = self.stack.currentWidget()
        assert isinstance(page, StepPage)
        return page.step

    def page(self, step: Step) -> StepPage:
        """Return the page of ``step``, building it on first use."""
        return self.pages.get(step) or self._build_page(step)

    def show_step(self, step: Step) -> None:
        """Show the page of ``step`` and let it refresh."""
        page = self.page(step)
        self.stack.setCurrentWidget(page)
        self.step_list.blockSignals(True)
        self.step_list.setCurrentRow(list(Step).index(step))
        self.step_list.blockSignals(False)
        page.enter()
        self.refresh()

    def go_next(self) -> None:
        """Move to the next step when the current one may be left."""
        following = self.context.checklist.next_step(self.current_step)
        if following is not None and self._can_open(following):
            self.show_step(following)

    def go_back(self) -> None:
        """Move to the step before."""
        order = list(Step)
        position = order.index(self.current_step)
        if position > 0 and not self.worker.busy:
            self.show_step(order[position - 1])

    def skip_step(self) -> None:
        """Record the current step as skipped and move on."""
        step = self.current_step
        if step in SKIPPABLE_STEPS and not self.worker.busy:
            self.context.checklist.record(StepResult(step, StepStatus.SKIPPED, "Skipped by the admin."))
            self.go_next()

    def _can_open(self, step: Step) -> bool:
        checklist = self.context.checklist
        earlier = list(Step)[: list(Step).index(step)]
        return not self.worker.busy and all(checklist.can_leave(before) for before in earlier)

    def _step_clicked(self, row: int) -> None:
        step = list(Step)[row]
        if step is not self.current_step and self._can_open(step):
            self.show_step(step)
        else:
            self.step_list.blockSignals(True)
            self.step_list.setCurrentRow(list(Step).index(self.current_step))
            self.step_list.blockSignals(False)

    def refresh(self) -> None:
        """Update the step marks, Back and Next, and the status bar."""
        checklist = self.context.checklist
        for row, step in enumerate(Step):
            self._refresh_step_item(row, step)
        step = self.current_step
        has_next = checklist.next_step(step) is not None
        self.next_button.setEnabled(has_next and not self.worker.busy and checklist.can_leave(step))
        self.back_button.setEnabled(step is not Step.CONNECT and not self.worker.busy)
        self.skip_button.setVisible(step in SKIPPABLE_STEPS and checklist.status(step) is None)
        self.skip_button.setEnabled(not self.worker.busy)
        self._refresh_status_bar()

    def _refresh_step_item(self, row: int, step: Step) -> None:
        status = self.context.checklist.status(step)
        mark, color = STATUS_MARKS[status], status_color(status)
        page = self.pages.get(step)
        if status is StepStatus.FAILED and page is not None and page.waiting_for_admin:
            mark, color = WAITING_MARK, NEUTRAL_COLOR
        reachable = self._can_open(step) or step is self.current_step
        item = self.step_list.item(row)
        item.setText(f"{row + 1}. {STEP_TITLES[step]}\n      {mark}")
        item.setForeground(color if reachable else UNREACHABLE_COLOR)
        # A step opens on click exactly when Next could reach it, because _step_clicked checks
        # the same _can_open; disabled items ignore clicks.
        flags = Qt.ItemFlag.ItemIsSelectable
        if reachable:
            flags |= Qt.ItemFlag.ItemIsEnabled
        item.setFlags(flags)

    def _refresh_status_bar(self) -> None:
        profile = self.context.profile
        connection = self.context.connection
        if connection is None:
            self.org_label.setText(f"Org profile: {profile.alias}    Not connected")
        else:
            self.org_label.setText(
                f"Org: {connection.instance_url} ({profile.alias})    User: {connection.username}"
            )

    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel a running job and wait for it, bounded, before the window closes."""
        if not self.worker.busy or self._force_close:
            if not self.worker.busy:
                # A job still running after the wait may write to the journal, so it stays open.
                self._close_journal()
            self.context.stop_practice_org()
            event.accept()
            return
        event.ignore()
        if self._closing:
            return
        self._closing = True
        self.context.closing = True
        names = ", ".join(self.worker.running_job_names())
        log.info("window closing while %s runs: cancelling", names)
        self.statusBar().showMessage(f"Stopping {names} before closing…")
        self.content.setEnabled(False)
        self.worker.cancel_all()
        self.worker.busy_changed.connect(self._close_when_idle)
        QTimer.singleShot(CLOSE_WAIT_MS, self._close_anyway)

    def _close_journal(self) -> None:
        """Close the sync journal of the current run, if it opened one."""
        if not self.context.run_created:
            return
        run = self.context.run
        if run.journal is not None:
            run.journal.close()
            run.journal = None

    def _close_when_idle(self, busy: bool) -> None:
        if not busy:
            self.close()

    def _close_anyway(self) -> None:
        if not self.worker.busy or not self.isVisible():
            return
        names = ", ".join(self.worker.running_job_names())
        log.warning(
            "%s did not stop within %.1f s of the cancel; the window closes without its result, "
            "so check the org before running it again", names, CLOSE_WAIT_MS / 1000)
        self._force_close = True
        self.close()
