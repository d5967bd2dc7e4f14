"""The Local sync page's actions on runs: resume, retry of the backfill queue, run history and the drill.

``SyncRunActions`` is mixed into ``LocalSyncPage``: its methods use the
page's tabs, message line and jobs, and the page connects its panels' signals
to them.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QTabWidget

from backstory_desktop.cadence_drill import DrillReport, ToolUser, run_cadence_drill
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.plan import Plan
from backstory_desktop.enablement.run import record_change
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import StepPage
from backstory_desktop.gui.pages.plan_text import counted
from backstory_desktop.gui.pages.sync_jobs import (
    SyncOverview,
    delete_run,
    read_overview,
    resume_job,
    retry_job,
)
from backstory_desktop.gui.pages.sync_panels import (
    DrillPanel,
    HistoryPanel,
    QueuePanel,
    describe_run,
    is_unfinished,
    resume_sentence,
)
from backstory_desktop.gui.widgets import FAILED_COLOR, explain_error
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.sources.csv_export import CsvMapping
from backstory_desktop.sources.registry import SourceKind
from backstory_desktop.store.journal import RunSummary
from backstory_desktop.sync.settings import SyncSettings

log = logging.getLogger(__name__)

# The error code of a step result rejected because another sync has locked the org.
RUN_IN_PROGRESS = "RUN_IN_PROGRESS"


class SyncRunActions(StepPage):
    """Resume, Retry now, the run history's Open result folder and Delete run, and the cadence-tool drill.

    The page that inherits these makes the widgets and methods declared here.
    """

    tabs: QTabWidget
    path_edit: QLineEdit
    queue_panel: QueuePanel
    history_panel: HistoryPanel
    drill_panel: DrillPanel
    blocked: QLabel
    resume_offer: QFrame
    resume_text: QLabel
    _offered_run_id: str | None
    _sent_run: RunSummary | None
    _open_failed: bool
    _mapping: CsvMapping | None
    _kind: SourceKind | None
    _requested_path: str

    def update_actions(self) -> None:
        raise NotImplementedError

    def _on_practice_org(self) -> bool:
        raise NotImplementedError

    def _clear_plan_view(self) -> None:
        raise NotImplementedError

    def _settings(self) -> SyncSettings:
        raise NotImplementedError

    def _detect(self, text: str, *, look_into_folders: bool) -> SourceKind | None:
        raise NotImplementedError

    def _show_plan(self, plan: Plan) -> None:
        raise NotImplementedError

    def _show_outcomes(self, result: StepResult) -> None:
        raise NotImplementedError

    def _show_step_result(self, result: StepResult) -> None:
        raise NotImplementedError

    def resume(self, run_id: str) -> None:
        """Confirm, then continue the unfinished run ``run_id`` where it stopped."""
        summary = next((run for run in self.history_panel.runs() if run.run_id == run_id), None)
        left = summary.work_left if summary is not None else 0
        name = describe_run(summary) if summary is not None else f"the sync run {run_id}"
        lines = [f"+ send the {counted(left, 'row')} not written yet "
                 "(rows that got no response are looked up first)"]
        if not dialogs.confirm(self, "Resume the sync", f"Resume {name}?", lines, "Resume"):
            return
        self.resume_offer.hide()
        self.blocked.hide()
        self._sent_run = summary
        self.start_job("the sync resume", resume_job, self.run, run_id, self._settings(), lines,
                       on_finished=self._show_resumed,
                       progress_message="Resuming the sync…", cancellable=True)

    def _resume_offered(self) -> None:
        if self._offered_run_id is not None:
            self.resume(self._offered_run_id)

    def retry_queue(self, run_id: str) -> None:
        """Confirm, then send the queued items of ``run_id`` again now."""
        count = self.queue_panel.model.rowCount()
        lines = [f"+ send {counted(count, 'queued item')} again (creates and updates as planned)"]
        if not dialogs.confirm(self, "Retry the backfill queue", f"Send {counted(count, 'queued item')} now?",
                               lines, "Retry now"):
            return
        self.blocked.hide()
        self._sent_run = next((run for run in self.history_panel.runs() if run.run_id == run_id), None)
        self.start_job("the backfill retry", retry_job, self.run, run_id, self._settings(), lines,
                       on_finished=self._show_resumed,
                       progress_message="Retrying the queued items…", cancellable=True)

    def _show_resumed(self, result: StepResult) -> None:
        """Show the plan of the run a resume or retry sent, with the outcome of each row sent."""
        plan = self.run.plan
        summary = self._sent_run
        if result.details.get("error_code") != RUN_IN_PROGRESS and plan is not None and summary is not None:
            if self.path_edit.text() != summary.source:
                # The run may come from another source than the one shown; its plan is shown under its path.
                self.path_edit.blockSignals(True)
                self.path_edit.setText(summary.source)
                self.path_edit.blockSignals(False)
                self._mapping = None
                self._kind = self._detect(summary.source, look_into_folders=False)
            self._requested_path = summary.source
            self._show_plan(plan)
            self._show_outcomes(result)
            return
        self._show_step_result(result)

    # History and queue.

    def refresh_overview(self, *, offer_resume: bool = False, queue_run_id: str | None = None) -> None:
        """Read the run history and the backfill queue of the org again from the journal.

        The read keeps the message line, so the result of the apply or resume
        before it stays on screen.
        """
        try:
            overview = read_overview(self.run, queue_run_id)
        except (OSError, sqlite3.Error, LookupError) as error:
            reason, _details = explain_error(error)
            log.warning("reading the sync history failed: %s", reason, exc_info=error)
            self.history_panel.summary.setText(f"Could not read the run history: {reason}")
            return
        self._show_overview(overview, offer_resume)

    def _show_overview(self, overview: SyncOverview, offer_resume: bool) -> None:
        plan = self.run.plan
        self.history_panel.set_runs(overview.runs, plan.run_id if plan is not None else None)
        self.queue_panel.set_queue(overview.queue_run, overview.queued_count, overview.read_queue)
        queued = overview.queued_count
        self.tabs.setTabText(self.tabs.indexOf(self.queue_panel),
                             f"Backfill queue ({queued:,})" if queued else "Backfill queue")
        unfinished = overview.unfinished
        if unfinished is None or not is_unfinished(unfinished):
            self._offered_run_id = None
            self.resume_offer.hide()
        elif offer_resume or self.resume_offer.isVisible():
            self._offered_run_id = unfinished.run_id
            self.resume_text.setText(resume_sentence(unfinished))
            self.resume_offer.show()
        self.update_actions()

    def open_folder(self, folder: Path) -> None:
        """Open a run's result folder in the system's file manager."""
        self._clear_open_failure()
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.message.show_message(f"Could not open {folder}: open it from your file manager.")
            self._open_failed = True

    def _clear_open_failure(self) -> None:
        # The message about a folder that did not open is stale once the admin does anything else.
        if self._open_failed and not self.busy:
            self.message.clear()
        self._open_failed = False

    def _history_selection_changed(self) -> None:
        self._clear_open_failure()
        self.update_actions()

    def _tab_changed(self, _index: int) -> None:
        self._clear_open_failure()
        if self.busy:
            return
        if self.run.connection is not None and self.tabs.currentWidget() in (self.history_panel,
                                                                               self.queue_panel):
            self.refresh_overview()

    def delete_history_run(self, run_id: str) -> None:
        """Confirm, then delete a run from the history; its result files stay on disk."""
        summary = next((run for run in self.history_panel.runs() if run.run_id == run_id), None)
        name = describe_run(summary) if summary is not None else f"the sync run {run_id}"
        lines = [f"- remove {name} from the run history of this computer",
                 "• the org and the run's result files stay as they are"]
        question = f"Delete {name} from the history?"
        if not dialogs.confirm(self, "Delete the run", question, lines, "Delete run"):
            return
        try:
            delete_run(self.run, run_id)
        except (OSError, sqlite3.Error, LookupError) as error:
            reason, _details = explain_error(error)
            log.warning("deleting sync run %s failed: %s", run_id, reason, exc_info=error)
            self.message.show_message(f"Could not delete {name}: {reason}", FAILED_COLOR)
            return
        plan = self.run.plan
        if plan is not None and plan.run_id == run_id:
            # The plan shown was read from the deleted run, so it can no longer be applied.
            self.run.plan = None
            self._clear_plan_view()
        self.refresh_overview()
        self.message.show_message(f"Deleted {name} from the history.")

    # The drill.

    def run_drill(self) -> None:
        """Confirm, then run the cadence-tool drill on the practice org, as each rep or as one shared user."""
        org = self.context.practice_org
        if org is None or not self._on_practice_org():
            return
        tool_user = self.drill_panel.tool_user()
        writer = ("the cadence tool's one shared user" if tool_user is ToolUser.SHARED
                  else "each sender's own user, as the cadence tool")
        mailbox = self.context.mailbox.name
        lines = [
            f"• write a copy of the messages of {mailbox} with new Message-IDs, as cadence-drill.mbox "
            "in a temporary folder",
            f"+ create Tasks for those messages as {writer}, before, during and after a local sync",
            "~ update those Tasks with the local sync, keyed on the Message-ID",
            "• on the practice org only, so no other org changes",
        ]
        question = f"Run the cadence-tool drill on a copy of {mailbox} with new Message-IDs?"
        if not dialogs.confirm(self, "Run the cadence-tool drill", question, lines, "Run drill"):
            return
        admin = self.run.require_connection()

        def connection_for_user(username: str) -> OrgConnection:
            return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)

        self.start_job("the cadence-tool drill", run_cadence_drill, connection_for_user, admin,
                       self.context.mailbox, tool_user=tool_user,
                       on_finished=lambda report: self._show_drill(report, lines),
                       progress_message="Running the cadence-tool drill…", cancellable=True)

    def _show_drill(self, report: DrillReport, lines: list[str]) -> None:
        self.drill_panel.show_report(report)
        verdict = "passed" if report.passed else "failed"
        record_change(self.run, Step.LOCAL_SYNC,
                      f"Ran the cadence-tool drill on the practice org with a copy of "
                      f"{self.context.mailbox.name}, the tool writing as {report.tool_user}: {verdict}.",
                      lines)
        self.update_actions()
