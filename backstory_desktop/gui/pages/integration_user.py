"""Integration user: the effective access of Backstory's user and of the cadence tools' users, and the fix."""

from __future__ import annotations

import threading
from collections.abc import Collection

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.records import UserRef
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    NEUTRAL_COLOR,
    NO_VALUE,
    PASSED_COLOR,
    note,
    plain_label,
    plain_tooltip,
)
from backstory_desktop.salesforce.access import AccessLine, AccessReport, list_users
from backstory_desktop.salesforce.access_grants import GrantPlan
from backstory_desktop.store.settings import CADENCE_TOOLS

COLUMNS = ("Check", "Granted", "Required", "By what", "Note")
SOURCES_COLUMN = COLUMNS.index("By what")
# Text in a username or name that suggests the user Backstory signs in as.
INTEGRATION_HINT = "integration"
# Pixels added to a column fitted to its text, so the text does not touch the grid line.
CELL_PADDING = 12
# Maximum starting width in pixels of the "By what" column; a group source wraps onto two lines.
SOURCES_WIDTH = 280
# Width in pixels of the fix dialog, so each diff line of a permission set change fits on one row.
FIX_DIALOG_WIDTH = 900
GRANT_TITLE = "Grant field access"
NOTHING_CHOSEN = "Tick at least one permission to grant."
FIX_TITLE = "Fix access"


def load_users_job(
    run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event
) -> list[UserRef]:
    """List the org's users on the worker."""
    return list_users(run.require_connection())


def check_user_job(
    run: EnablementRun, username: str, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Work out the access of the user and of the cadence tools' users on the worker."""
    return enablement.check_integration_user(run, username)


def plan_fix_job(
    run: EnablementRun, username: str | None, system_permissions: Collection[str], *,
    progress: ProgressCallback, cancel: threading.Event,
) -> GrantPlan:
    """Work out the permission set changes on the worker; nothing is written."""
    return enablement.plan_access_fix(run, username=username, system_permissions=system_permissions)


def apply_fix_job(
    run: EnablementRun, plan: GrantPlan, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Apply the confirmed changes and check every user again, on the worker."""
    return enablement.apply_access_fix(run, plan)


def fixable(report: AccessReport) -> bool:
    """Tell whether a permission set can give the user something it lacks."""
    return report.field_access_missing or bool(report.missing_system_permissions())


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


def sources_text(line: AccessLine) -> str:
    """Return the "By what" cell: one source a line, muting ones marked with ✗ when they take the grant."""
    granting = [source for source in line.sources if source not in line.muted_by]
    mark = "" if line.granted else "✗ "
    return "\n".join(granting + [f"{mark}{source}" for source in line.muted_by]) or NO_VALUE


def cadence_status(report: AccessReport | None) -> str:
    """Return a cadence user's status in a few words."""
    if report is None:
        return "not checked yet: click Check"
    if report.ok:
        return "✓ has what its upserts need"
    return "✗ lacks " + ", ".join(line.name for line in report.missing)


class AccessFixDialog(QDialog):
    """The fix shown before it is made: a checkbox per missing system permission, and the diff.

    Required permissions start ticked and recommended ones unticked; the diff
    follows the boxes, and Apply makes exactly what it lists.
    """

    def __init__(self, plan: GrantPlan, report: AccessReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{FIX_TITLE} for {plan.username}")
        self.full_plan = plan
        self.setMinimumWidth(FIX_DIALOG_WIDTH)
        layout = QVBoxLayout(self)
        layout.addWidget(note(
            f"These changes give {plan.username} what it lacks through permission sets; no profile "
            "is changed. Tick each system permission you want to grant."
        ))

        box = QGroupBox("System permissions to grant")
        box_layout = QGridLayout(box)
        box_layout.setColumnStretch(1, 1)
        self.boxes: dict[str, QCheckBox] = {}
        for line in report.lines:
            if not line.flag or line.granted or line.flag not in plan.requested_permissions:
                continue
            checkbox = QCheckBox(f"{line.name} ({'required' if line.required else 'recommended'})")
            checkbox.setChecked(line.required)
            checkbox.toggled.connect(self._update_diff)
            why = note(line.note)
            why.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")
            row = len(self.boxes)
            box_layout.addWidget(checkbox, row, 0, Qt.AlignmentFlag.AlignTop)
            box_layout.addWidget(why, row, 1)
            self.boxes[line.flag] = checkbox
        layout.addWidget(box)

        layout.addWidget(plain_label("Changes to make in the org:"))
        self.diff = QLabel()
        self.diff.setTextFormat(Qt.TextFormat.RichText)
        self.diff.setWordWrap(True)
        self.diff.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.diff)
        scroll.setMinimumHeight(150)
        layout.addWidget(scroll, 1)

        buttons = QDialogButtonBox()
        self.apply_button = buttons.addButton(dialogs.APPLY, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)
        cancel.setFocus()
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._update_diff()

    def chosen(self) -> list[str]:
        """Return the PermissionSet fields of the ticked system permissions."""
        return [flag for flag, checkbox in self.boxes.items() if checkbox.isChecked()]

    def plan(self) -> GrantPlan:
        """Return the plan for the ticked permissions: what Apply makes."""
        return self.full_plan.with_permissions(self.chosen())

    def _update_diff(self) -> None:
        plan = self.plan()
        if not plan.requested_permissions and not plan.has_field_changes:
            # The plan would show "No change", which is false: the user still lacks every unticked one.
            self.diff.setText(dialogs.change_list_html([NOTHING_CHOSEN]))
            self.apply_button.setEnabled(False)
            return
        self.diff.setText(dialogs.change_list_html(plan.diff_lines()))
        self.apply_button.setEnabled(plan.can_apply)


class IntegrationUserPage(StepPage):
    """User picker, the access table, the cadence tools' users, and the fix shown as a diff first."""

    step = Step.INTEGRATION_USER

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Pick the user Backstory signs in as. It needs API access, Edit Tasks, and Read and Edit "
            "on the Message-ID field; View All Data is recommended so it finds Tasks other users "
            "own, and required while the field is not Unique."
        ))
        self.users = QComboBox()
        self.users.setPlaceholderText("Choose the integration user")
        self.users.setMinimumContentsLength(40)
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.check)
        self.grant_button = QPushButton("Fix access…")
        self.grant_button.setToolTip("Grant what the user lacks through a permission set, shown first")
        self.grant_button.clicked.connect(lambda: self.fix(None))
        self.grant_button.hide()
        row = QHBoxLayout()
        row.addWidget(plain_label("Integration user:"))
        row.addWidget(self.users, 1)
        row.addWidget(self.check_button)
        row.addWidget(self.grant_button)
        self.body.addLayout(row)

        self.profile = plain_label()
        self.body.addWidget(self.profile)
        self.table = self._access_table()
        self.body.addWidget(self.table, 1)
        self.ignored = note("")
        self.ignored.hide()
        self.body.addWidget(self.ignored)
        self.body.addWidget(self._cadence_box())
        self.fix_dialog: AccessFixDialog | None = None
        self._users_loaded = False

    def _access_table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        # A handful of rows: the sources and notes wrap so the admin reads them whole.
        table.setWordWrap(True)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        return table

    def _cadence_box(self) -> QGroupBox:
        box = QGroupBox("Cadence tool users")
        self.cadence_grid = QGridLayout(box)
        self.cadence_grid.setColumnStretch(2, 1)
        self.cadence_buttons: dict[str, QPushButton] = {}
        self.cadence_labels: dict[str, QLabel] = {}
        return box

    def enter(self) -> None:
        super().enter()
        self._show_cadence_users()
        if not self._users_loaded and not self.busy:
            self.start_job("the user list", load_users_job, self.run, on_finished=self._show_users,
                           progress_message="Reading the org's users…")

    def update_actions(self) -> None:
        has_choice = self.users.currentIndex() >= 0
        self.users.setEnabled(not self.busy)
        self.check_button.setEnabled(not self.busy and has_choice)
        self.grant_button.setEnabled(not self.busy)
        for button in self.cadence_buttons.values():
            button.setEnabled(not self.busy)

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
        """Check the chosen user's and the cadence users' effective access, on the worker."""
        username = str(self.users.currentData())
        self.start_job("the integration user check", check_user_job, self.run, username,
                       on_finished=self._show_result, progress_message="Reading permissions…")

    def fix(self, username: str | None) -> None:
        """Plan the fix of one user (None: the integration user) with every permission it may need."""
        report = self._report(username)
        if report is None:
            return
        self.start_job("the access fix plan", plan_fix_job, self.run, username,
                       report.missing_system_permissions(),
                       on_finished=lambda plan: self._confirm_fix(plan, report),
                       progress_message="Working out the permission set changes…")

    def _report(self, username: str | None) -> AccessReport | None:
        if username is None or (self.run.access and username == self.run.access.username):
            return self.run.access
        return self.run.cadence_access.get(username)

    def _confirm_fix(self, plan: GrantPlan, report: AccessReport) -> None:
        if self.context.closing:
            return
        if plan.field_set_blocked or (plan.blocked and not plan.requested_permissions):
            # Nothing could be applied: the admin first changes the set the sentence names.
            self.message.show_message(" ".join(plan.blocked), FAILED_COLOR)
            return
        if not plan.has_changes:
            self.message.show_message(" ".join(plan.describe()))
            return
        if not plan.requested_permissions:
            # Only field-level security is missing: nothing to choose, so the plain confirmation.
            # The diff lines name the user; the question does not, as a message box may render markup.
            question = "Make these changes so the user can read and edit the field?"
            if dialogs.confirm(self, GRANT_TITLE, question, plan.diff_lines()):
                self._apply(plan)
            else:
                self.message.show_message("Nothing was changed.")
            return
        self.fix_dialog = AccessFixDialog(plan, report, self)
        self.fix_dialog.accepted.connect(lambda: self._fix_dialog_closed(True))
        self.fix_dialog.rejected.connect(lambda: self._fix_dialog_closed(False))
        self.fix_dialog.open()

    def _fix_dialog_closed(self, accepted: bool) -> None:
        dialog = self.fix_dialog
        self.fix_dialog = None
        if dialog is None or self.context.closing:
            return
        dialog.deleteLater()
        if accepted:
            self._apply(dialog.plan())
        else:
            self.message.show_message("Nothing was changed.")

    def _apply(self, plan: GrantPlan) -> None:
        self.start_job("the access fix", apply_fix_job, self.run, plan, on_finished=self._show_result,
                       progress_message="Granting access…")

    def _show_result(self, result: StepResult) -> None:
        if self.run.access is not None:
            self._show_report(self.run.access)
        self._show_cadence_users()
        self.message.show_result(result)
        self.record_changed()

    def _show_report(self, report: AccessReport) -> None:
        self.profile.setText(f"{report.name} ({report.username}), profile {report.profile}")
        self.table.setRowCount(len(report.lines))
        for row, line in enumerate(report.lines):
            granted = QTableWidgetItem("✓ granted" if line.granted else "✗ missing")
            granted.setForeground(PASSED_COLOR if line.granted else FAILED_COLOR)
            sources = QTableWidgetItem(sources_text(line))
            if line.muted_by and not line.granted:
                sources.setForeground(FAILED_COLOR)
            cells = (
                QTableWidgetItem(line.name),
                granted,
                QTableWidgetItem("required" if line.required else "recommended"),
                sources,
                QTableWidgetItem(line.note),
            )
            for column, cell in enumerate(cells):
                cell.setToolTip(plain_tooltip(cell.text()))
                self.table.setItem(row, column, cell)
        self.grant_button.setVisible(fixable(report))
        for column in range(SOURCES_COLUMN + 1):
            self.table.resizeColumnToContents(column)
            self.table.setColumnWidth(column, self.table.columnWidth(column) + CELL_PADDING)
        # Long sources wrap inside the column, so the note keeps room.
        self.table.setColumnWidth(SOURCES_COLUMN, min(self.table.columnWidth(SOURCES_COLUMN), SOURCES_WIDTH))
        self.table.resizeRowsToContents()
        if report.ignored_assignments:
            self.ignored.setText("Not counted, because they grant nothing now: "
                                 + "; ".join(report.ignored_assignments) + ".")
        self.ignored.setVisible(bool(report.ignored_assignments))

    def _show_cadence_users(self) -> None:
        """List each saved cadence tool user with its status and a Fix button."""
        while self.cadence_grid.count():
            item = self.cadence_grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.cadence_buttons = {}
        self.cadence_labels = {}
        saved = [(tool, username) for tool in CADENCE_TOOLS
                 for username in self.run.profile.cadence_users.get(tool, [])]
        if not saved:
            self.cadence_grid.addWidget(note(
                "No cadence tool users are saved for this org: name them on the Cadence tools page, "
                "then check again."), 0, 0, 1, 4)
            return
        for row, (tool, username) in enumerate(saved):
            report = self.run.cadence_access.get(username)
            status = plain_label(cadence_status(report))
            color = NEUTRAL_COLOR
            if report is not None:
                color = PASSED_COLOR if report.ok else FAILED_COLOR
            status.setStyleSheet(f"color: {color.name()};")
            status.setWordWrap(True)
            if report is not None and report.ignored_assignments:
                status.setToolTip(plain_tooltip("Not counted: " + "; ".join(report.ignored_assignments)))
            self.cadence_grid.addWidget(plain_label(tool), row, 0)
            self.cadence_grid.addWidget(plain_label(username), row, 1)
            self.cadence_grid.addWidget(status, row, 2)
            self.cadence_labels[username] = status
            if report is not None and fixable(report) and username not in self.cadence_buttons:
                button = QPushButton("Fix…")
                button.setToolTip(plain_tooltip(f"Grant {username} what it lacks through a permission set, "
                                                "shown first"))
                button.clicked.connect(lambda _checked=False, name=username: self.fix(name))
                button.setEnabled(not self.busy)
                self.cadence_grid.addWidget(button, row, 3)
                self.cadence_buttons[username] = button
