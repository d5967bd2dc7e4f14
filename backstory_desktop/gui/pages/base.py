"""Shared parts of the wizard pages: the enablement run, the worker, the message line and progress."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from backstory_desktop.core.checklist import STEP_TITLES, Checklist, Step, StepResult
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.gui.widgets import MessagePanel, ProgressRow, explain_error, heading
from backstory_desktop.gui.worker import Job, Worker

# The enablement run, the practice org's server and the Salesforce layer import
# simple-salesforce, requests, werkzeug and lark, which took most of the wizard's start-up time.
# They load when the first job needs them, and tests/gui/test_start_imports.py checks it.
if TYPE_CHECKING:
    from backstory_desktop.enablement.run import EnablementRun
    from backstory_desktop.practice_org.server import PracticeOrg
    from backstory_desktop.salesforce.connection import OrgConnection
    from backstory_desktop.store.settings import OrgProfile

log = logging.getLogger(__name__)

SIGN_IN_AGAIN = "Sign in again"


def needs_sign_in(outcome: object) -> bool:
    """Tell whether a job's error or step result reports that the org's sign-in has ended."""
    from backstory_desktop.salesforce.errors import SignInRequired

    if isinstance(outcome, SignInRequired):
        return True
    if isinstance(outcome, StepResult):
        # A step that failed on an ended sign-in keeps SignInRequired's error code in its details.
        return outcome.details.get("error_code") == SignInRequired.ERROR_CODE
    return False


def import_sign_in_modules() -> None:
    """Import the modules that the first sign-in needs and the window's start leaves out.

    The window imports them right after its first paint, or as the first job of a window that
    resumes a saved sign-in. Every job needs the run, and creating the run imports them first,
    so the jobs' own imports on the worker thread find them loaded. Two threads that import the
    same package at once can fail with Python's import deadlock error. A failed import is
    logged, not raised, because the same import fails again where the module is used.
    """
    try:
        import keyring  # noqa: F401

        from backstory_desktop import enablement, org_sessions  # noqa: F401
        from backstory_desktop.practice_org import server  # noqa: F401
    except Exception:
        log.exception("could not import the sign-in modules ahead of their first use")


@dataclass
class PracticeSettings:
    """Database file of the practice org, and the scenario that seeds a new one."""

    db_path: Path
    scenario: str = "default"


class WizardContext(QObject):
    """State shared by the pages of one window: the run, the worker and the practice org.

    The enablement run is created on first use of ``run``, because its module loads the whole
    Salesforce layer. Until then ``profile``, ``checklist`` and ``connection`` serve the step
    list and the status bar, and the run created later takes over the same checklist.
    """

    # Emitted after a step result was recorded, so the step list and Next refresh.
    checklist_changed = Signal()
    # Emitted when the admin clicks "Sign in again" after the org's sign-in ended.
    sign_in_again_requested = Signal()
    # Emitted with an org profile alias when the run should move to that profile. The flag
    # is True when the window must confirm with the admin first if the run has results.
    profile_switch_requested = Signal(str, bool)

    def __init__(self, profile: OrgProfile, worker: Worker, practice: PracticeSettings,
                 mailbox: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._profile = profile
        self._checklist = Checklist()
        self._run: EnablementRun | None = None
        self.worker = worker
        self.practice = practice
        self.mailbox = mailbox
        self.practice_org: PracticeOrg | None = None
        # Set when the window is closing: no new dialog or job may start.
        self.closing = False

    @property
    def run(self) -> EnablementRun:
        """The enablement run of this window, created on first use."""
        if self._run is None:
            import_sign_in_modules()
            from backstory_desktop.enablement.run import EnablementRun

            self._run = EnablementRun(self._profile, checklist=self._checklist)
        return self._run

    @run.setter
    def run(self, run: EnablementRun) -> None:
        self._run = run
        self._profile = run.profile
        self._checklist = run.checklist

    @property
    def run_created(self) -> bool:
        """True once the enablement run exists."""
        return self._run is not None

    @property
    def profile(self) -> OrgProfile:
        """The org profile of the run."""
        return self._profile

    @property
    def checklist(self) -> Checklist:
        """The step results of the run."""
        return self._checklist

    @property
    def connection(self) -> OrgConnection | None:
        """The run's org connection, or None before the run exists or connects."""
        return None if self._run is None else self._run.connection

    def stop_practice_org(self) -> None:
        """Stop serving the practice org, if this window started it."""
        if self.practice_org is not None:
            self.practice_org.stop()
            self.practice_org = None


class StepPage(QWidget):
    """A page for one enablement step; subclasses add their controls to ``body``."""

    step: Step

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        # True while the step has a result that the admin has not acted on yet, so the step
        # list shows it as waiting rather than failed.
        self.waiting_for_admin = False
        self.message = MessagePanel()
        self.progress = ProgressRow()
        self.progress.cancel_requested.connect(self._cancel_job)
        self._job: Job | None = None

        self.body = QVBoxLayout()
        self.body.setSpacing(8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading(STEP_TITLES[self.step]))
        layout.addLayout(self.body, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        # A bound method, so a page replaced by a fresh enablement run stops listening.
        context.worker.busy_changed.connect(self._worker_busy_changed)

    @property
    def run(self) -> EnablementRun:
        """The enablement run this window works on."""
        return self.context.run

    @property
    def busy(self) -> bool:
        """Tell whether any job of this window is running; actions wait for it."""
        return self.context.worker.busy

    def enter(self) -> None:
        """Refresh the page when the wizard shows it."""
        self.update_actions()

    def update_actions(self) -> None:
        """Enable the page's buttons for its current state; pages override this."""

    def start_job(
        self,
        name: str,
        function: Callable[..., Any],
        *args: Any,
        on_finished: Callable[[Any], None],
        on_failed: Callable[[BaseException], None] | None = None,
        progress_message: str | None = None,
        cancellable: bool = False,
        **kwargs: Any,
    ) -> Job:
        """Run ``function`` on the worker; ``on_finished`` gets its result on the GUI thread.

        ``name`` is a noun phrase such as "the sync", shown in "Stopping the sync
        before closing…" and logged. With ``progress_message`` the page shows a progress bar, and a Cancel
        button when the function checks its cancel event. A failure or a
        cancel goes to ``on_failed``, by default ``job_failed``, which shows it
        on the message line.
        """
        self.message.clear()
        job = self.context.worker.start(name, function, *args, **kwargs)
        self._job = job
        if progress_message is not None:
            self.progress.begin(progress_message, cancellable=cancellable)
            job.progress.connect(self.progress.update_progress)
        job.finished.connect(on_finished)
        job.finished.connect(self._offer_sign_in_if_needed)
        job.failed.connect(on_failed or self.job_failed)
        job.ended.connect(lambda: self._job_ended(job))
        self.update_actions()
        return job

    def job_failed(self, error: BaseException) -> None:
        """Show why a job failed, and log it; pages extend this to reset their own state."""
        from backstory_desktop.salesforce.errors import SignInRequired

        if isinstance(error, Cancelled):
            log.info("%s: job cancelled", self.step.value)
        elif isinstance(error, SignInRequired):
            log.info("%s: the sign-in to the org has ended", self.step.value)
        else:
            # The reason goes into the line itself, so the recent problems of Diagnostics show it.
            reason, _details = explain_error(error)
            log.warning("%s: job failed: %s", self.step.value, reason, exc_info=error)
        self.message.show_error(error)
        self._offer_sign_in_if_needed(error)
        self.context.checklist_changed.emit()

    def _offer_sign_in_if_needed(self, outcome: object) -> None:
        # The offer waits for the admin: nothing signs in or runs the job again by itself.
        if needs_sign_in(outcome):
            self.message.offer_action(SIGN_IN_AGAIN, self.context.sign_in_again_requested.emit)

    def _worker_busy_changed(self, _busy: bool) -> None:
        self.update_actions()

    def record_changed(self) -> None:
        """Tell the wizard that this step's result changed."""
        self.context.checklist_changed.emit()

    def _job_ended(self, job: Job) -> None:
        # A handler may already have started the next job; only the current one owns the progress row.
        if job is self._job:
            self._job = None
            self.progress.end()
            self.job_ended()

    def job_ended(self) -> None:
        """Reset what a page shows only while its job runs; pages override this."""

    def _cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
