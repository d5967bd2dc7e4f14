"""Message-ID field: inspect the Activity field Backstory upserts on, and create it when missing."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.fields import InvalidFieldName, validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import FAILED_COLOR, NO_VALUE, note
from backstory_desktop.salesforce.access import PERMISSION_SET_LABEL
from backstory_desktop.salesforce.schema import DEFAULT_LABEL, KEY_LENGTH, FieldState

CASE_SENSITIVE_LABEL = (
    "Case-sensitive: <ABC@x> and <abc@x> are different keys "
    "(recommended: Message-IDs are case-sensitive)"
)
CASE_INSENSITIVE_LABEL = "Case-insensitive: <ABC@x> and <abc@x> are the same key"


def check_field_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Inspect the field on the worker; the call is short, so it does not check cancel."""
    return enablement.check_field(run)


def create_field_job(
    run: EnablementRun, *, case_sensitive: bool, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Create the field on the worker; a create already sent to Salesforce is not cancelled."""
    return enablement.create_field(run, case_sensitive=case_sensitive)


def planned_field_lines(
    api_name: str, *, case_sensitive: bool, username: str, field_exists: bool = False
) -> list[str]:
    """List exactly what creating the field adds to the org, for the confirmation dialog.

    For a field that exists already, only the access it still needs is listed.
    """
    case_rule = "case-sensitive" if case_sensitive else "case-insensitive"
    field_lines = [
        f"+ Custom field Activity.{api_name} (shared by Task and Event)",
        f"+     Label: {DEFAULT_LABEL}",
        f"+     Type: Text({KEY_LENGTH})",
        f"+     Unique: yes, {case_rule}",
        "+     External ID: yes",
    ]
    access_lines = [
        f"+ Permission set \"{PERMISSION_SET_LABEL}\" (created if missing)",
        f"+     Read and Edit on Task.{api_name} and Event.{api_name}",
        f"+     assigned to {username or 'you'} (if not assigned yet)",
    ]
    return access_lines if field_exists else field_lines + access_lines


def _yes_no(value: bool | None) -> str:
    if value is None:
        return NO_VALUE
    return "yes" if value else "no"

MISSING_FIELD_NOTE = "The field does not exist. Choose how it compares keys:"
UNFINISHED_FIELD_NOTE = "The field exists, but field-level security hides it from you. Its case rule:"


class MessageIdFieldPage(StepPage):
    """Field name, Inspect, the field's settings, and Create when it is missing."""

    step = Step.MESSAGE_ID_FIELD

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Backstory and the cadence tools write each e-mail's Message-ID into one custom "
            "Activity field and upsert Tasks on it, so one e-mail is logged once. The field "
            "should be Text(255), Unique and External ID."
        ))
        self.name_edit = QLineEdit(self.run.profile.field_api_name)
        self.name_edit.textChanged.connect(self._name_changed)
        self.name_error = QLabel()
        self.name_error.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.name_error.hide()
        self.inspect_button = QPushButton("Inspect")
        self.inspect_button.clicked.connect(self.inspect)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Field API name:"))
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.inspect_button)
        self.body.addLayout(name_row)
        self.body.addWidget(self.name_error)

        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        for caption in ("Exists", "Type", "Length", "Unique", "External ID", "Case sensitivity",
                        "Visible in describe"):
            self.values[caption] = QLabel(NO_VALUE)
            form.addRow(caption + ":", self.values[caption])
        self.body.addLayout(form)

        self.create_box = self._build_create_box()
        self.body.addWidget(self.create_box)
        self.body.addStretch(1)

    def _build_create_box(self) -> QGroupBox:
        box = QGroupBox("Create the field")
        self.case_sensitive = QRadioButton(CASE_SENSITIVE_LABEL)
        self.case_insensitive = QRadioButton(CASE_INSENSITIVE_LABEL)
        self.case_sensitive.setChecked(True)
        self.case_choice = QButtonGroup(box)
        self.case_choice.addButton(self.case_sensitive)
        self.case_choice.addButton(self.case_insensitive)
        self.create_button = QPushButton("Create field…")
        self.create_button.clicked.connect(self.create_field)
        layout = QVBoxLayout(box)
        self.create_note = note(MISSING_FIELD_NOTE)
        layout.addWidget(self.create_note)
        layout.addWidget(self.case_sensitive)
        layout.addWidget(self.case_insensitive)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)
        layout.addLayout(buttons)
        box.hide()
        return box

    def update_actions(self) -> None:
        name_valid = self.name_error.isHidden()
        self.name_edit.setEnabled(not self.busy)
        self.inspect_button.setEnabled(not self.busy and name_valid)
        self.create_button.setEnabled(not self.busy and name_valid)

    def _name_changed(self, text: str) -> None:
        try:
            self.run.profile.field_api_name = validate_field_api_name(text.strip())
        except InvalidFieldName as error:
            self.name_error.setText(str(error))
            self.name_error.show()
        else:
            self.name_error.hide()
        self._forget_inspection()
        self.update_actions()

    def _forget_inspection(self) -> None:
        # The values, the message and the step's result belong to the field inspected last, not
        # to the name being typed, so Next waits until the new name is inspected.
        for value in self.values.values():
            value.setText(NO_VALUE)
        self.create_box.hide()
        self.message.clear()
        if self.run.checklist.forget(self.step):
            self.record_changed()

    def inspect(self) -> None:
        """Inspect the field, on the worker."""
        self.start_job("inspect field", check_field_job, self.run, on_finished=self._show_result,
                       progress_message="Reading the field's settings…")

    def create_field(self) -> None:
        """Confirm exactly what will be created, then create the field on the worker."""
        case_sensitive = self.case_sensitive.isChecked()
        state = self.run.field_state
        field_exists = state is not None and state.exists
        lines = planned_field_lines(self.run.profile.field_api_name, case_sensitive=case_sensitive,
                                    username=self.run.profile.username, field_exists=field_exists)
        if field_exists:
            title, question = "Finish the Message-ID field", "Grant yourself access to the existing field?"
        else:
            title, question = "Create the Message-ID field", "Create this field in the org?"
        if not dialogs.confirm(self, title, question, lines):
            return
        self.start_job("create field", create_field_job, self.run, case_sensitive=case_sensitive,
                       on_finished=self._show_created, progress_message="Creating the field…")

    def _show_created(self, result: StepResult) -> None:
        if result.status is StepStatus.PASSED:
            self.context.changes.append(result.reason)
        self._show_result(result)

    def _show_result(self, result: StepResult) -> None:
        state = self.run.field_state
        if state is not None and state.api_name == self.run.profile.field_api_name:
            self._show_state(state)
        self.message.show_result(result)
        self.record_changed()

    def _show_state(self, state: FieldState) -> None:
        if state.exists or state.definition_readable:
            self.values["Exists"].setText(_yes_no(state.exists))
        else:
            self.values["Exists"].setText("unknown (field definitions not readable)")
        self.values["Type"].setText(state.type or NO_VALUE)
        self.values["Length"].setText(str(state.length) if state.length else NO_VALUE)
        self.values["Unique"].setText(_yes_no(state.unique))
        self.values["External ID"].setText(_yes_no(state.external_id))
        if state.case_sensitive is None:
            self.values["Case sensitivity"].setText(NO_VALUE)
        else:
            self.values["Case sensitivity"].setText(
                "case-sensitive" if state.case_sensitive else "case-insensitive")
        self.values["Visible in describe"].setText(_yes_no(state.visible_in_describe))
        # A field that exists but is hidden from the admin is what a create cut
        # short before its access grant leaves; creating again finishes it.
        unfinished = state.exists and not state.visible_in_describe
        missing = not state.exists and state.definition_readable
        self.create_box.setVisible(missing or unfinished)
        self.create_box.setTitle("Finish the field's setup" if unfinished else "Create the field")
        self.create_note.setText(UNFINISHED_FIELD_NOTE if unfinished else MISSING_FIELD_NOTE)
        self.create_button.setText("Finish setup…" if unfinished else "Create field…")
        if unfinished and state.case_sensitive is not None:
            (self.case_sensitive if state.case_sensitive else self.case_insensitive).setChecked(True)
        self.case_sensitive.setEnabled(not unfinished)
        self.case_insensitive.setEnabled(not unfinished)
