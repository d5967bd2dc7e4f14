"""Message-ID field: inspect the Activity field Backstory upserts on, then create it or fix it.

The page also checks the "Created by Backstory" flag field, whose name the admin
may change, and the room left for custom and External ID fields on Activity.
"""

from __future__ import annotations

import html
import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.fields import InvalidFieldName, validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.enablement.field import NOT_UNIQUE_CONSEQUENCES
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    NEUTRAL_COLOR,
    NO_VALUE,
    PASSED_COLOR,
    compact_rows,
    note,
    plain_label,
    plain_tooltip,
)
from backstory_desktop.salesforce.access import PERMISSION_SET_LABEL
from backstory_desktop.salesforce.field_fix import FieldFixPlan
from backstory_desktop.salesforce.schema import DEFAULT_LABEL, KEY_LENGTH, FieldState
from backstory_desktop.salesforce.unique_blockers import KeyedActivity
from backstory_desktop.store.settings import ProfilesFileError

CASE_SENSITIVE_LABEL = (
    "Case-sensitive: <ABC@x> and <abc@x> are different keys "
    "(recommended: Message-IDs are case-sensitive)"
)
CASE_INSENSITIVE_LABEL = "Case-insensitive: <ABC@x> and <abc@x> are the same key"
CASE_NOTE = (
    "A Unique field compares keys either with or without letter case. RFC 5322 Message-IDs are "
    "case-sensitive, so two e-mails may differ only in case; a case-insensitive field treats them "
    "as one key, and the second e-mail would update the first one's Task. Choose case-insensitive "
    "only if a cadence tool changes the case of the Message-IDs it writes."
)
MISSING_FIELD_NOTE = "The field does not exist. Creating it adds a Text(255), Unique, External ID field."
FIX_NOTE = (
    "The fix changes the field's definition in place, keeping its values, label and description. "
    "Before Unique is switched on, every Task and Event, recycle bin and archive included, is "
    "scanned for values held twice, because Salesforce refuses Unique while any exist."
)
# Property captions, in the order of the grid: left column, then right column.
LEFT_PROPERTIES = ("Exists", "Label", "Type", "Length", "Unique", "External ID")
RIGHT_PROPERTIES = ("Case sensitivity", "Visible to you", "Description", "Room left")
BLOCKER_COLUMNS = ("Value", "Object", "Record Id", "State", "Blocks")
# At most this many rows of the blocker table show without scrolling the table.
BLOCKER_ROWS_SHOWN = 6
# A value longer than this is cut in its table cell; the tooltip shows it whole.
CELL_CHARACTERS = 80


def check_field_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Inspect the field on the worker; the call is short, so it does not check cancel."""
    return enablement.check_field(run)


def create_field_job(
    run: EnablementRun, *, case_sensitive: bool, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Create the field on the worker; a create already sent to Salesforce is not cancelled."""
    return enablement.create_field(run, case_sensitive=case_sensitive)


def plan_fix_job(
    run: EnablementRun, *, case_sensitive: bool, progress: ProgressCallback, cancel: threading.Event
) -> FieldFixPlan:
    """Scan for values that block Unique and plan the fix, on the worker; nothing is written."""
    return enablement.plan_field_fix(run, case_sensitive=case_sensitive, progress=progress, cancel=cancel)


def apply_fix_job(
    run: EnablementRun, plan: FieldFixPlan, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Apply the confirmed fix on the worker; a change already sent to Salesforce is not cancelled."""
    return enablement.apply_field_fix(run, plan)


def planned_field_lines(api_name: str, *, case_sensitive: bool, username: str) -> list[str]:
    """List exactly what creating the field adds to the org, for the confirmation dialog."""
    case_rule = "case-sensitive" if case_sensitive else "case-insensitive"
    return [
        f"+ Custom field Activity.{api_name} (shared by Task and Event)",
        f"+     Label: {DEFAULT_LABEL}",
        f"+     Type: Text({KEY_LENGTH})",
        f"+     Unique: yes, {case_rule}",
        "+     External ID: yes",
        f"+ Permission set \"{PERMISSION_SET_LABEL}\" (created if missing)",
        f"+     Read and Edit on Task.{api_name} and Event.{api_name}",
        f"+     assigned to {username or 'you'} (if not assigned yet)",
    ]


def fix_dialog_lines(plan: FieldFixPlan) -> list[str]:
    """List a fix's changes, then its warnings as plain notes, for the confirmation dialog."""
    return [*plan.lines, *(f"• {warning}" for warning in plan.warnings)]


def _yes_no(value: bool | None) -> str:
    if value is None:
        return NO_VALUE
    return "yes" if value else "no"


def _visibility(state: FieldState) -> str:
    if not state.exists:
        return NO_VALUE
    if not state.visible_in_describe:
        return "no: hidden by field-level security"
    if state.createable and state.updateable:
        return "yes, Read and Edit"
    return "yes, but read-only"


def _room_text(details: dict[str, object]) -> str:
    """Describe the room left on Activity in one line, from the step's details."""
    parts = []
    if details.get("custom_fields_left") is not None:
        parts.append(f"{details['custom_fields_left']} of {details['custom_field_limit']} custom fields "
                     "(default limit)")
    if details.get("external_ids_left") is not None:
        # Fields hidden from the user were not checked, so the count is an upper bound.
        at_most = "at most " if details.get("hidden_fields") else ""
        parts.append(f"{at_most}{details['external_ids_left']} of {details['external_id_limit']} "
                     "External IDs")
    text = ", ".join(parts)
    notes = details.get("notes")
    if isinstance(notes, list) and notes:
        text = (f"{text}. " if text else "") + " ".join(str(line) for line in notes)
    return text or NO_VALUE


def _record_state(deleted: bool, archived: bool) -> str:
    if deleted:
        return "in the recycle bin"
    return "archived" if archived else "live"


def _values(count: int) -> str:
    """Return "1 value" or "3 values"."""
    return "1 value" if count == 1 else f"{count} values"


def _is_are(count: int) -> str:
    return "is" if count == 1 else "are"


class MessageIdFieldPage(StepPage):
    """Field name, Inspect, the field's properties, the flag field, and Create or Fix."""

    step = Step.MESSAGE_ID_FIELD

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._plan: FieldFixPlan | None = None
        content = QWidget()
        self.content = QVBoxLayout(content)
        self.content.setContentsMargins(0, 0, 8, 0)
        self.content.setSpacing(8)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        self.body.addWidget(scroll, 1)

        self.content.addWidget(note(
            "Backstory and the cadence tools write each e-mail's Message-ID into one custom "
            "Activity field and upsert Tasks on it, so one e-mail is logged once. The field "
            "should be Text(255), Unique and External ID."
        ))
        self._build_name_rows()
        self._build_properties()
        self.create_box = self._build_create_box()
        self.content.addWidget(self.create_box)
        self.fix_box = self._build_fix_box()
        self.content.addWidget(self.fix_box)
        self.content.addStretch(1)

    # -- building ----------------------------------------------------------------------

    def _build_name_rows(self) -> None:
        self.name_edit = QLineEdit(self.run.profile.field_api_name)
        self.name_edit.textChanged.connect(self._name_changed)
        self.name_error = self._error_label()
        self.inspect_button = QPushButton("Inspect")
        self.inspect_button.clicked.connect(self.inspect)
        self.flag_edit = QLineEdit(self.run.profile.flag_field_api_name)
        self.flag_edit.setToolTip("The checkbox Backstory sets on every Task it creates or enriches.")
        self.flag_edit.textChanged.connect(self._flag_name_changed)
        self.flag_edit.editingFinished.connect(self._save_flag_name)
        self.flag_error = self._error_label()
        self.flag_status = plain_label("Checked when you press Inspect.")
        self.flag_status.setWordWrap(True)

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("Field API name:"), 0, 0)
        grid.addWidget(self.name_edit, 0, 1)
        grid.addWidget(self.inspect_button, 0, 2)
        grid.addWidget(self.name_error, 1, 1, 1, 2)
        grid.addWidget(QLabel("“Created by Backstory” flag:"), 2, 0)
        grid.addWidget(self.flag_edit, 2, 1)
        grid.addWidget(self.flag_error, 3, 1, 1, 2)
        grid.addWidget(self.flag_status, 4, 1, 1, 2)
        self.content.addLayout(grid)

    def _error_label(self) -> QLabel:
        label = plain_label()
        label.setWordWrap(True)
        label.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        label.hide()
        return label

    def _build_properties(self) -> None:
        self.values: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 2)
        for column, captions in ((0, LEFT_PROPERTIES), (2, RIGHT_PROPERTIES)):
            for row, caption in enumerate(captions):
                # Label and description come from the org and are shown as written, never as HTML.
                value = plain_label(NO_VALUE)
                value.setWordWrap(True)
                value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.values[caption] = value
                grid.addWidget(QLabel(caption + ":"), row, column, Qt.AlignmentFlag.AlignTop)
                grid.addWidget(value, row, column + 1, Qt.AlignmentFlag.AlignTop)
        self.room_warning = self._error_label()
        grid.addWidget(self.room_warning, len(RIGHT_PROPERTIES), 2, 2, 2)
        self.content.addLayout(grid)

    def _build_case_choice(self, box: QGroupBox) -> QVBoxLayout:
        self.case_sensitive = QRadioButton(CASE_SENSITIVE_LABEL)
        self.case_insensitive = QRadioButton(CASE_INSENSITIVE_LABEL)
        self.case_sensitive.setChecked(True)
        self.case_choice = QButtonGroup(box)
        self.case_choice.addButton(self.case_sensitive)
        self.case_choice.addButton(self.case_insensitive)
        self.case_choice.buttonToggled.connect(self._case_changed)
        layout = QVBoxLayout()
        layout.setSpacing(4)
        self.case_note = note(CASE_NOTE)
        layout.addWidget(self.case_note)
        layout.addWidget(self.case_sensitive)
        layout.addWidget(self.case_insensitive)
        return layout

    def _build_create_box(self) -> QGroupBox:
        box = QGroupBox("Create the field")
        layout = QVBoxLayout(box)
        self.create_note = note(MISSING_FIELD_NOTE)
        layout.addWidget(self.create_note)
        self.case_layout = self._build_case_choice(box)
        layout.addLayout(self.case_layout)
        self.create_button = QPushButton("Create field…")
        self.create_button.clicked.connect(self.create_field)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.create_button)
        layout.addLayout(buttons)
        box.hide()
        return box

    def _build_fix_box(self) -> QGroupBox:
        box = QGroupBox("Fix the field")
        layout = QVBoxLayout(box)
        layout.addWidget(note(FIX_NOTE))
        self.fix_case_slot = QVBoxLayout()
        layout.addLayout(self.fix_case_slot)
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.plan_label)
        self.warnings_label = self._error_label()
        layout.addWidget(self.warnings_label)
        self.blockers_label = self._error_label()
        layout.addWidget(self.blockers_label)
        self.blocker_table = self._build_blocker_table()
        layout.addWidget(self.blocker_table)
        self.consequences_label = note("")
        self.consequences_label.hide()
        layout.addWidget(self.consequences_label)

        self.scan_button = QPushButton("Scan and plan the fix")
        self.scan_button.clicked.connect(self.plan_fix)
        self.apply_without_unique_button = QPushButton("Apply without Unique…")
        self.apply_without_unique_button.clicked.connect(self.apply_fix_without_unique)
        self.apply_fix_button = QPushButton("Apply fix…")
        self.apply_fix_button.clicked.connect(self.apply_fix)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.scan_button, self.apply_without_unique_button, self.apply_fix_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        box.hide()
        return box

    def _build_blocker_table(self) -> QTableWidget:
        table = QTableWidget(0, len(BLOCKER_COLUMNS))
        table.setHorizontalHeaderLabels(list(BLOCKER_COLUMNS))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.verticalHeader().hide()
        compact_rows(table)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(BLOCKER_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        table.hide()
        return table

    # -- state -------------------------------------------------------------------------

    def update_actions(self) -> None:
        name_valid = self.name_error.isHidden()
        flag_valid = self.flag_error.isHidden()
        plan = self._plan
        self.name_edit.setEnabled(not self.busy)
        self.flag_edit.setEnabled(not self.busy)
        self.inspect_button.setEnabled(not self.busy and name_valid and flag_valid)
        self.create_button.setEnabled(not self.busy and name_valid)
        self.scan_button.setEnabled(not self.busy and name_valid)
        self.apply_fix_button.setVisible(plan is not None and plan.can_apply)
        self.apply_fix_button.setEnabled(not self.busy)
        without_unique = plan is not None and plan.blockers and plan.without_unique().can_apply
        self.apply_without_unique_button.setVisible(bool(without_unique))
        self.apply_without_unique_button.setEnabled(not self.busy)

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

    def _flag_name_changed(self, text: str) -> None:
        try:
            validate_field_api_name(text.strip(), allow_namespace=True)
        except InvalidFieldName as error:
            self.flag_error.setText(str(error))
            self.flag_error.show()
        else:
            self.flag_error.hide()
        self.update_actions()

    def _save_flag_name(self) -> None:
        """Save a valid flag field name in the org profile; the flag is checked at the next Inspect."""
        if not self.flag_error.isHidden():
            return
        try:
            name = enablement.set_flag_field(self.run, self.flag_edit.text())
        except (OSError, ProfilesFileError) as error:
            self.flag_error.setText(f"The flag field name could not be saved in the org profile: {error}")
            self.flag_error.show()
            return
        if self.run.flag_state is None:
            self.flag_status.setText(f"{name} is saved in the org profile; press Inspect to check it.")
            self._forget_result()

    def _case_changed(self) -> None:
        # A plan contains the scan for one case rule, so another rule needs a new scan.
        if self._plan is not None:
            self._show_plan(None)

    def _forget_inspection(self) -> None:
        # The values, the message and the step's result belong to the field inspected last, not
        # to the name being typed, so Next waits until the new name is inspected.
        for value in self.values.values():
            value.setText(NO_VALUE)
        self.room_warning.hide()
        self.create_box.hide()
        self.fix_box.hide()
        self._show_plan(None)
        self._forget_result()

    def _forget_result(self) -> None:
        self.message.clear()
        if self.run.checklist.forget(self.step):
            self.record_changed()

    # -- actions -----------------------------------------------------------------------

    def inspect(self) -> None:
        """Inspect the field, on the worker."""
        self._save_flag_name()
        self.start_job("the field inspection", check_field_job, self.run, on_finished=self._show_result,
                       progress_message="Reading the field's settings…")

    def create_field(self) -> None:
        """Confirm exactly what will be created, then create the field on the worker."""
        case_sensitive = self.case_sensitive.isChecked()
        lines = planned_field_lines(self.run.profile.field_api_name, case_sensitive=case_sensitive,
                                    username=self.run.profile.username)
        if not dialogs.confirm(self, "Create the Message-ID field", "Create this field in the org?", lines):
            return
        self.start_job("the field creation", create_field_job, self.run, case_sensitive=case_sensitive,
                       on_finished=self._show_result, progress_message="Creating the field…")

    def plan_fix(self) -> None:
        """Scan for values that block Unique and plan the fix, on the worker, with Cancel."""
        self._show_plan(None)
        self.start_job("the field fix plan", plan_fix_job, self.run,
                       case_sensitive=self.case_sensitive.isChecked(), on_finished=self._show_plan,
                       progress_message="Scanning Tasks and Events for values held twice…",
                       cancellable=True)

    def apply_fix(self) -> None:
        """Confirm the planned changes, then apply them on the worker."""
        if self._plan is not None:
            self._apply(self._plan)

    def apply_fix_without_unique(self) -> None:
        """Apply the plan's other changes and leave the field not Unique."""
        if self._plan is not None:
            self._apply(self._plan.without_unique())

    def _apply(self, plan: FieldFixPlan) -> None:
        if not dialogs.confirm(self, "Fix the Message-ID field", "Change this field in the org?",
                               fix_dialog_lines(plan)):
            return
        self.start_job("the field fix", apply_fix_job, self.run, plan, on_finished=self._show_result,
                       progress_message="Changing the field…")

    # -- showing -----------------------------------------------------------------------

    def _show_result(self, result: StepResult) -> None:
        state = self.run.field_state
        if state is not None and state.api_name == self.run.profile.field_api_name:
            if self.name_edit.text().strip() != state.api_name:
                # The org spells the name in another letter case, and the steps use its spelling.
                self.name_edit.blockSignals(True)
                self.name_edit.setText(state.api_name)
                self.name_edit.blockSignals(False)
            self._show_state(state)
            self._show_details(result)
        self._show_plan(None)
        self.message.show_result(result)
        self.record_changed()

    def _show_state(self, state: FieldState) -> None:
        if state.exists or state.definition_readable:
            self.values["Exists"].setText(_yes_no(state.exists))
        else:
            self.values["Exists"].setText("unknown (field definitions not readable)")
        self.values["Label"].setText(state.label or NO_VALUE)
        self.values["Type"].setText(state.type or NO_VALUE)
        self.values["Length"].setText(str(state.length) if state.length else NO_VALUE)
        self.values["Unique"].setText(_yes_no(state.unique))
        self.values["External ID"].setText(_yes_no(state.external_id))
        if state.exists and state.unique is False:
            self.values["Case sensitivity"].setText("none (only a Unique field has a case rule)")
        elif state.case_sensitive is None:
            self.values["Case sensitivity"].setText(NO_VALUE)
        else:
            self.values["Case sensitivity"].setText(
                "case-sensitive" if state.case_sensitive else "case-insensitive")
        self.values["Visible to you"].setText(_visibility(state))
        self.values["Description"].setText(state.description or NO_VALUE)

        missing = not state.exists and state.definition_readable
        fixable = state.exists and bool(state.problems) and state.tooling_id is not None
        self._place_case_choice(in_fix_box=fixable)
        self.create_box.setVisible(missing)
        self.fix_box.setVisible(fixable)
        if fixable and state.unique and state.case_sensitive is not None:
            (self.case_sensitive if state.case_sensitive else self.case_insensitive).setChecked(True)

    def _place_case_choice(self, *, in_fix_box: bool) -> None:
        """Move the case choice into the box that is shown; only one of the two ever is."""
        target = self.fix_case_slot if in_fix_box else self.case_layout
        if self.case_note.parentWidget() is not (self.fix_box if in_fix_box else self.create_box):
            for widget in (self.case_note, self.case_sensitive, self.case_insensitive):
                target.addWidget(widget)

    def _show_details(self, result: StepResult) -> None:
        room = result.details.get("room")
        if isinstance(room, dict):
            self.values["Room left"].setText(_room_text(room))
            warnings = [str(text) for text in room.get("warnings", [])]
            self.room_warning.setText(" ".join(warnings))
            self.room_warning.setVisible(bool(warnings))
        self._show_flag(result)

    def _show_flag(self, result: StepResult) -> None:
        flag = result.details.get("flag_field")
        if flag is None:
            return
        problems = [str(problem) for problem in result.details.get("flag_problems", [])]
        if problems:
            self.flag_status.setText(" ".join(problems))
            self.flag_status.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        else:
            self.flag_status.setText(f"{flag} exists and is visible to you, so the sync sets it.")
            self.flag_status.setStyleSheet(f"color: {PASSED_COLOR.name()};")

    def _show_plan(self, plan: FieldFixPlan | None) -> None:
        self._plan = plan
        self.plan_label.setVisible(plan is not None)
        self.warnings_label.setVisible(bool(plan and plan.warnings))
        listed = bool(plan and (plan.blockers or plan.long_values))
        self.blockers_label.setVisible(listed)
        self.blocker_table.setVisible(listed)
        self.consequences_label.setVisible(bool(plan and plan.blockers))
        state = self.run.field_state
        first_label = "Plan the fix" if state is not None and state.unique else "Scan and plan the fix"
        self.scan_button.setText("Scan again" if plan is not None else first_label)
        if plan is not None:
            self._fill_plan(plan)
        self.update_actions()

    def _fill_plan(self, plan: FieldFixPlan) -> None:
        if plan.blockers and not plan.long_values:
            # Unique is blocked, so only the changes that can still be made are listed.
            others = plan.without_unique().lines
            self.plan_label.setText(
                "Besides Unique, the fix changes:" + dialogs.change_list_html(others) if others
                else "Unique is the only change the field needs.")
        elif plan.lines:
            heading = ("Once the permission set may be reused, the fix would change:" if plan.grant_blocked
                       else "The fix changes:")
            self.plan_label.setText(heading + dialogs.change_list_html(plan.lines))
        else:
            self.plan_label.setText("Nothing to change.")
        if plan.blockers or plan.long_values:
            self._fill_blockers(plan)
        self.warnings_label.setText(" ".join(plan.warnings))
        only_unique = len(plan.lines) == 1 and plan.lines[0].startswith("~ Unique")
        if plan.access_only:
            self.apply_fix_button.setText("Grant access…")
        else:
            self.apply_fix_button.setText("Make Unique…" if only_unique and not plan.blockers
                                          else "Apply fix…")
        self._show_plan_message(plan)

    def _show_plan_message(self, plan: FieldFixPlan) -> None:
        api_name = plan.api_name
        if plan.grant_blocked:
            self.message.show_message(
                f"Read and Edit on {api_name} cannot be granted, so the fix is not offered; "
                "see the note above.", FAILED_COLOR)
        elif plan.access_only:
            self.message.show_message(
                f"{api_name} is hidden from you, so its values cannot be scanned yet; grant access "
                "first, then scan again to plan the rest of the fix.", NEUTRAL_COLOR)
        elif plan.long_values:
            self.message.show_message(
                f"{_values(len(plan.long_values))} {_is_are(len(plan.long_values))} longer than "
                f"{KEY_LENGTH} characters, so "
                f"{api_name} cannot be changed to Text({KEY_LENGTH}) yet.", FAILED_COLOR)
        elif plan.blockers:
            count = len(plan.blockers)
            self.message.show_message(
                f"{_values(count)} of {api_name} {_is_are(count)} held by more than one activity, so "
                "it cannot be made Unique yet.", FAILED_COLOR)
        elif plan.can_apply:
            self.message.show_message(
                f"No value of {api_name} is held twice; review the changes and apply them.", PASSED_COLOR)
        else:
            self.message.show_message(f"{api_name} needs no change.", NEUTRAL_COLOR)

    def _fill_blockers(self, plan: FieldFixPlan) -> None:
        """List the values too long for Text(255), then the values held twice, in one table."""
        self.blockers_label.setText(" ".join(_blocker_sentences(plan)))

        # One row per activity; one that is too long and also collides once cut lists both.
        rows: dict[str, tuple[KeyedActivity, list[str]]] = {}
        for record in plan.long_values:
            rows[record.record_id] = (record, [f"Text({KEY_LENGTH}): {len(record.value)} characters"])
        for record in (record for blocker in plan.blockers for record in blocker.records):
            rows.setdefault(record.record_id, (record, []))[1].append("Unique")

        self.blocker_table.setRowCount(len(rows))
        for row, (record, blocks) in enumerate(rows.values()):
            cut = len(record.value) > CELL_CHARACTERS
            cell_text = record.value[:CELL_CHARACTERS] + "…" if cut else record.value
            cells = ((cell_text, record.value), (record.sobject, record.sobject),
                     (record.record_id, record.record_id),
                     (_record_state(record.deleted, record.archived),) * 2, (", ".join(blocks),) * 2)
            for column, (text, whole) in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tooltip(whole))
                self.blocker_table.setItem(row, column, item)

        shown_rows = min(len(rows), BLOCKER_ROWS_SHOWN)
        height = (self.blocker_table.horizontalHeader().height()
                  + shown_rows * self.blocker_table.verticalHeader().defaultSectionSize() + 4)
        self.blocker_table.setFixedHeight(height)
        self._show_consequences()

    def _show_consequences(self) -> None:
        """Say what not being Unique means, and that the admin may go on all the same."""
        consequences = "".join(f"<li>{html.escape(line)}</li>" for line in NOT_UNIQUE_CONSEQUENCES)
        self.consequences_label.setTextFormat(Qt.TextFormat.RichText)
        self.consequences_label.setText(
            "While the field is not Unique:"
            f"<ul style='margin-top:2px; margin-bottom:2px'>{consequences}</ul>"
            "You can still go on to the next step; the Conflicts step lists every shared key."
        )
        self.consequences_label.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")


def _blocker_sentences(plan: FieldFixPlan) -> list[str]:
    """Say why the change to Text(255) or Unique is not offered, and what to do."""
    sentences = []
    if plan.long_values:
        count = len(plan.long_values)
        sentences.append(
            f"The change to Text({KEY_LENGTH}) is not offered: {_values(count)} {_is_are(count)} "
            f"longer than {KEY_LENGTH} characters and would not fit. Shorten or clear "
            f"{'it' if count == 1 else 'them'}, then scan again.")
    if plan.blockers:
        count = len(plan.blockers)
        held_by = "is held" if count == 1 else "are each held"
        # Long values are compared as Text(255) would store them: their first 255 characters.
        compared = f" (compared by their first {KEY_LENGTH} characters)" if plan.long_values else ""
        sentences.append(
            f"Unique is not offered: {_values(count)}{compared} {held_by} by more than one Task or "
            "Event, so Salesforce would refuse it. Clear the value on all but one holder of each "
            "(restore one in the recycle bin first, or empty the recycle bin), then scan again.")
    return sentences
