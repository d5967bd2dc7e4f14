"""Integration user: check the Backstory integration user's effective access, and grant field access."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.records import UserRef
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import FAILED_COLOR, NO_VALUE, PASSED_COLOR, note
from backstory_desktop.salesforce.access import AccessReport, GrantPlan, list_users

COLUMNS = ("Check", "Granted", "Required", "Granted by", "Note")
SOURCES_COLUMN = COLUMNS.index("Granted by")
# Text in a username or name that suggests the user Backstory signs in as.
INTEGRATION_HINT = "integration"
# Pixels added to a column fitted to its text, so the text does not touch the grid line.
CELL_PADDING = 12


def load_users_job(
    run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event
) -> list[UserRef]:
    """List the org's users on the worker."""
    return list_users(run.require_connection())


def check_user_job(
    run: EnablementRun, username: str, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Work out the user's effective access on the worker."""
    return enablement.check_integration_user(run, username)


def plan_grant_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> GrantPlan:
    """Work out the permission set change on the worker; nothing is written."""
    return enablement.plan_access_fix(run)


def apply_grant_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Apply the permission set change and check the user again, on the worker."""
    return enablement.apply_access_fix(run)


def grant_diff_lines(plan: GrantPlan) -> list[str]:
    """Mark each change of the plan as a diff line: + adds, ~ changes."""
    if not plan.has_changes:
        return ["  " + line for line in plan.describe()]
    return [("~ " if line.startswith("Change") else "+ ") + line for line in plan.describe()]


def missing_field_access(report: AccessReport, field_api_name: str) -> bool:
    """Tell whether a Read or Edit line on the Message-ID field is not granted."""
    return any(field_api_name in line.name and not line.granted for line in report.lines)


def picker_order(user: UserRef) -> tuple[bool, str, str]:
    """Sort key of the user picker: active users first, then by name and username."""
    return (not user.is_active, user.name.casefold(), user.username.casefold())


def user_label(user: UserRef) -> str:
    """Return the picker's text for a user: "Name (username)", marked when inactive."""
    label = f"{user.name} ({user.username})" if user.name else user.username
    return label if user.is_active else f"{label}, inactive"


def preselected_username(users: list[UserRef], remembered: str) -> str | None:
    """Return the user to preselect: the one the org profile remembers, else a likely integration user.

    A likely integration user is the first active user, in ``users`` order, whose
    username or name contains "integration" in any case.
    """
    if remembered and any(user.username == remembered for user in users):
        return remembered
    for user in users:
        words = f"{user.username} {user.name}".casefold()
        if user.is_active and INTEGRATION_HINT in words:
            return user.username
    return None


class IntegrationUserPage(StepPage):
    """User picker, the access table, and the field access fix shown as a diff first."""

    step = Step.INTEGRATION_USER

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Pick the user Backstory signs in as. It needs API access, Edit on Tasks, and Read "
            "and Edit on the Message-ID field; View All Data is recommended so it finds Tasks "
            "that other users own."
        ))
        self.users = QComboBox()
        self.users.setPlaceholderText("Choose the integration user")
        self.users.setMinimumContentsLength(40)
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.check)
        self.grant_button = QPushButton("Grant field access…")
        self.grant_button.clicked.connect(self.plan_grant)
        self.grant_button.hide()
        row = QHBoxLayout()
        row.addWidget(QLabel("Integration user:"))
        row.addWidget(self.users, 1)
        row.addWidget(self.check_button)
        row.addWidget(self.grant_button)
        self.body.addLayout(row)

        self.profile = QLabel()
        self.body.addWidget(self.profile)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # A handful of rows: the notes wrap so the admin reads them whole.
        self.table.setWordWrap(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.body.addWidget(self.table, 1)
        self._users_loaded = False

    def enter(self) -> None:
        super().enter()
        if not self._users_loaded and not self.busy:
            self.start_job("list users", load_users_job, self.run, on_finished=self._show_users,
                           progress_message="Reading the org's users…")

    def update_actions(self) -> None:
        has_choice = self.users.currentIndex() >= 0
        self.users.setEnabled(not self.busy)
        self.check_button.setEnabled(not self.busy and has_choice)
        self.grant_button.setEnabled(not self.busy)

    def _show_users(self, users: list[UserRef]) -> None:
        self._users_loaded = True
        self.users.clear()
        ordered = sorted(users, key=picker_order)
        for user in ordered:
            self.users.addItem(user_label(user), user.username)
        preselected = preselected_username(ordered, self.run.profile.integration_username)
        self.users.setCurrentIndex(self.users.findData(preselected) if preselected else -1)
        self.users.currentIndexChanged.connect(lambda _index: self.update_actions())
        self.update_actions()

    def check(self) -> None:
        """Check the chosen user's effective access, on the worker."""
        username = str(self.users.currentData())
        self.start_job("check integration user", check_user_job, self.run, username,
                       on_finished=self._show_result, progress_message="Reading permissions…")

    def plan_grant(self) -> None:
        """Work out the grant, show it as a diff, and apply it only when the admin confirms."""
        self.start_job("plan field access", plan_grant_job, self.run, on_finished=self._confirm_grant,
                       progress_message="Working out the permission set change…")

    def _confirm_grant(self, plan: GrantPlan) -> None:
        if self.context.closing:
            return
        if not plan.has_changes:
            self.message.show_message(" ".join(plan.describe()))
            return
        question = f"Make these changes so {plan.username} can read and edit the field?"
        if not dialogs.confirm(self, "Grant field access", question, grant_diff_lines(plan)):
            self.message.show_message("Nothing was changed.")
            return
        self.start_job("grant field access", apply_grant_job, self.run, on_finished=self._show_granted,
                       progress_message="Granting field access…")

    def _show_granted(self, result: StepResult) -> None:
        self.context.changes.extend(result.details.get("granted", []))
        self._show_result(result)

    def _show_result(self, result: StepResult) -> None:
        if self.run.access is not None:
            self._show_report(self.run.access)
        self.message.show_result(result)
        self.record_changed()

    def _show_report(self, report: AccessReport) -> None:
        self.profile.setText(f"{report.name} ({report.username}), profile {report.profile}")
        self.table.setRowCount(len(report.lines))
        for row, line in enumerate(report.lines):
            granted = QTableWidgetItem("✓ granted" if line.granted else "✗ missing")
            granted.setForeground(PASSED_COLOR if line.granted else FAILED_COLOR)
            cells = (
                QTableWidgetItem(line.name),
                granted,
                QTableWidgetItem("required" if line.required else "recommended"),
                QTableWidgetItem(", ".join(line.sources) or NO_VALUE),
                QTableWidgetItem(line.note),
            )
            for column, cell in enumerate(cells):
                cell.setToolTip(cell.text())
                self.table.setItem(row, column, cell)
        field_api_name = self.run.profile.field_api_name
        self.grant_button.setVisible(missing_field_access(report, field_api_name))
        for column in range(SOURCES_COLUMN + 1):
            self.table.resizeColumnToContents(column)
            self.table.setColumnWidth(column, self.table.columnWidth(column) + CELL_PADDING)
        # The sources can be long; the full list stays in the tooltip, and the note gets the room.
        self.table.setColumnWidth(SOURCES_COLUMN, min(self.table.columnWidth(SOURCES_COLUMN), 260))
