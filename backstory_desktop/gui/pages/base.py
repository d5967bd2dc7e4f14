"""Shared parts of the wizard pages: the enablement run, the worker, the message line and progress."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from backstory_desktop.core.checklist import STEP_TITLES, Step
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui.widgets import MessagePanel, ProgressRow, heading
from backstory_desktop.gui.worker import Job, Worker
from backstory_desktop.practice_org.server import PracticeOrg

log = logging.getLogger(__name__)


@dataclass
class PracticeSettings:
    """Database file of the practice org, and the scenario that seeds a new one."""

    db_path: Path
    scenario: str = "default"


class WizardContext(QObject):
    """State shared by the pages of one window: the run, the worker and the practice org."""

    # Emitted after a step result was recorded, so the step list and Next refresh.
    checklist_changed = Signal()

    def __init__(self, run: EnablementRun, worker: Worker, practice: PracticeSettings,
                 mailbox: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.worker = worker
        self.practice = practice
        self.mailbox = mailbox
        self.practice_org: PracticeOrg | None = None
        # What this window changed in the org, in the admin's words, for the summary.
        self.changes: list[str] = []
        # Set when the window is closing: no new dialog or job may start.
        self.closing = False

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
        context.worker.busy_changed.connect(lambda _busy: self.update_actions())

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
        progress_message: str | None = None,
        cancellable: bool = False,
        **kwargs: Any,
    ) -> Job:
        """Run ``function`` on the worker; ``on_finished`` gets its result on the GUI thread.

        With ``progress_message`` the page shows a progress bar, and a Cancel
        button when the function checks its cancel event. A failure or a
        cancel is shown on the message line.
        """
        self.message.clear()
        job = self.context.worker.start(name, function, *args, **kwargs)
        self._job = job
        if progress_message is not None:
            self.progress.begin(progress_message, cancellable=cancellable)
            job.progress.connect(self.progress.update_progress)
        job.finished.connect(on_finished)
        job.failed.connect(self.job_failed)
        job.ended.connect(lambda: self._job_ended(job))
        self.update_actions()
        return job

    def job_failed(self, error: BaseException) -> None:
        """Show why a job failed, and log it; pages extend this to reset their own state."""
        if isinstance(error, Cancelled):
            log.info("%s: job cancelled", self.step.value)
        else:
            log.warning("%s: job failed", self.step.value, exc_info=error)
        self.message.show_error(error)
        self.context.checklist_changed.emit()

    def record_changed(self) -> None:
        """Tell the wizard that this step's result changed."""
        self.context.checklist_changed.emit()

    def _job_ended(self, job: Job) -> None:
        # A handler may already have started the next job; only the current one owns the progress row.
        if job is self._job:
            self._job = None
            self.progress.end()

    def _cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
