"""Backstory setting: the value to enter in Backstory, where to enter it, and the admin's confirmation."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.widgets import note

WAITING_NOTE = "Not confirmed yet: enter the value in Backstory, then tick the box."


class BackstorySettingPage(StepPage):
    """Shows the value with a Copy button and records whether the admin entered it."""

    step = Step.BACKSTORY_SETTING

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Backstory upserts Tasks on the field only once its name is entered in Backstory's "
            "settings. Enter this value exactly, with the __c suffix."
        ))
        self.value = QLineEdit()
        self.value.setReadOnly(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_value)
        value_row = QHBoxLayout()
        value_row.addWidget(self.value, 1)
        value_row.addWidget(self.copy_button)

        where = QLabel(enablement.BACKSTORY_SETTING_PATH)
        where.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Setting:", QLabel(enablement.BACKSTORY_SETTING_NAME))
        form.addRow("Value:", value_row)
        form.addRow("Where:", where)
        self.body.addLayout(form)

        self.waiting_for_admin = True
        self.confirmed = QCheckBox("I entered this value in Backstory")
        self.confirmed.toggled.connect(self._confirmation_toggled)
        self.body.addWidget(self.confirmed)
        self.body.addStretch(1)

    def enter(self) -> None:
        state = self.run.field_state
        self.value.setText(state.api_name if state is not None else "")
        profile = self.run.profile
        remembered = (
            state is not None
            and profile.backstory_setting_confirmed
            and profile.backstory_setting_value == state.api_name
        )
        self.confirmed.blockSignals(True)
        self.confirmed.setChecked(self.confirmed.isChecked() or remembered)
        self.confirmed.blockSignals(False)
        self._record(self.confirmed.isChecked())
        super().enter()

    def update_actions(self) -> None:
        self.confirmed.setEnabled(self.run.field_state is not None)

    def copy_value(self) -> None:
        """Put the value on the clipboard."""
        QGuiApplication.clipboard().setText(self.value.text())
        self.message.show_message(f"Copied {self.value.text()} to the clipboard.")

    def _confirmation_toggled(self, confirmed: bool) -> None:
        self.waiting_for_admin = False
        self._record(confirmed)

    def _record(self, confirmed: bool) -> None:
        # Recording touches no org and writes one small settings file, so it runs here on the GUI thread.
        if self.run.field_state is None:
            return
        result = enablement.record_backstory_setting(self.run, confirmed=confirmed)
        self.waiting_for_admin = self.waiting_for_admin and not confirmed
        if self.waiting_for_admin:
            # Not a failure yet: the admin has not had the chance to enter the value.
            self.message.show_message(WAITING_NOTE)
        else:
            self.message.show_result(result)
        self.record_changed()
