"""Connect: pick the kind of org and sign in; this version signs in to the practice org only."""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui.pages.base import PracticeSettings, StepPage, WizardContext
from backstory_desktop.gui.widgets import NO_VALUE, note
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.store.paths import ensure_private_dir

PRACTICE_KIND = "practice"
# (profile kind, label); only the practice org can be signed in to in this version.
ORG_KINDS = (
    (PRACTICE_KIND, "Practice org (local rehearsal)"),
    ("production", "Production"),
    ("sandbox", "Sandbox"),
    ("mydomain", "My Domain"),
)


def start_and_connect(
    run: EnablementRun,
    practice: PracticeSettings,
    running_org: PracticeOrg | None,
    *,
    progress: ProgressCallback,
    cancel: threading.Event,
) -> tuple[PracticeOrg, StepResult]:
    """Start the practice org unless it already runs, then sign in to it as its admin."""
    org = running_org
    if org is None:
        progress(0, 0, "Starting the practice org…")
        ensure_private_dir(practice.db_path.parent)
        org = PracticeOrg(practice.db_path, scenario=practice.scenario)
        org.start()
    check_cancel(cancel)
    progress(0, 0, "Signing in with OAuth (PKCE)…")
    run.profile.kind = PRACTICE_KIND
    run.profile.login_host = org.base_url
    run.profile.client_id = org.client_id
    run.profile.practice_db = str(practice.db_path)
    return org, enablement.connect(run, org)


class ConnectPage(StepPage):
    """Lists the org kinds, starts the practice org and signs in."""

    step = Step.CONNECT

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Choose the org to work on. The practice org is a local stand-in for Salesforce that "
            "runs on this computer, so you can rehearse every step before touching a real org."
        ))
        self.kinds = QListWidget()
        self.kinds.setMaximumHeight(self.kinds.fontMetrics().height() * len(ORG_KINDS) + 16)
        for kind, label in ORG_KINDS:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, kind)
            if kind != PRACTICE_KIND:
                item.setText(f"{label} (not available in this version)")
                item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.kinds.addItem(item)
        self.kinds.setCurrentRow(0)
        self.body.addWidget(self.kinds)
        self.body.addWidget(note(
            "Signing in to Production, Sandbox and My Domain orgs is not available in this "
            "version; it comes in a later version. Until then, the wizard works with the "
            "practice org only."
        ))

        self.database = QLabel(str(context.practice.db_path))
        self.database.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_org)
        row = QHBoxLayout()
        row.addWidget(QLabel("Practice org database:"))
        row.addWidget(self.database, 1)
        row.addWidget(self.connect_button)
        self.body.addLayout(row)

        self.instance_url = QLabel(NO_VALUE)
        self.username = QLabel(NO_VALUE)
        self.api_version = QLabel(NO_VALUE)
        form = QFormLayout()
        form.addRow("Instance URL:", self.instance_url)
        form.addRow("User:", self.username)
        form.addRow("API version:", self.api_version)
        for value in (self.instance_url, self.username, self.api_version):
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addLayout(form)
        self.body.addStretch(1)

    def update_actions(self) -> None:
        self.connect_button.setEnabled(not self.busy)
        self.kinds.setEnabled(not self.busy)

    def connect_org(self) -> None:
        """Start the practice org if needed and sign in, on the worker."""
        self.start_job(
            "connect",
            start_and_connect,
            self.run,
            self.context.practice,
            self.context.practice_org,
            on_finished=self._connected,
            progress_message="Connecting…",
        )

    def _connected(self, outcome: tuple[PracticeOrg, StepResult]) -> None:
        org, result = outcome
        self.context.practice_org = org
        details: dict[str, Any] = result.details
        self.instance_url.setText(str(details.get("instance_url", NO_VALUE)))
        self.username.setText(str(details.get("username", NO_VALUE)))
        self.api_version.setText(str(details.get("api_version", NO_VALUE)))
        self.message.show_result(result)
        self.record_changed()
