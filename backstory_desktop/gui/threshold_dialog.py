"""The "Matching rules" dialog: the thresholds that make Tasks without a key probable duplicates."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.core.duplicates import Thresholds
from backstory_desktop.gui.widgets import note

# core.duplicates.Thresholds accepts windows of up to one week.
MAX_WINDOW_MINUTES = 7 * 24 * 60
# Below this, unrelated subjects such as "Re: pricing" and "Re: proposal" start to match.
MIN_SUBJECT_SIMILARITY = 50

EXPLANATION = (
    "Tasks that share a Message-ID key are always grouped. A Task without a key joins a group as a "
    "probable duplicate only when it has the same owner and the same contact or lead (WhoId) as "
    "another Task, and the rules below hold. Rescan applies them."
)


class ThresholdDialog(QDialog):
    """Dialog that edits the probable-duplicate thresholds.

    Rescan accepts the dialog, and Restore defaults resets the fields.
    """

    def __init__(self, thresholds: Thresholds, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Matching rules")
        self.window_minutes = QSpinBox()
        self.window_minutes.setRange(0, MAX_WINDOW_MINUTES)
        self.window_minutes.setSuffix(" minutes")
        self.subject_similarity = QSpinBox()
        self.subject_similarity.setRange(MIN_SUBJECT_SIMILARITY, 100)
        self.subject_similarity.setSuffix(" %")
        self.bodies_must_match = QCheckBox("Bodies must match (or one of them is empty)")
        self.summary = note("")
        self.summary.setStyleSheet("color: #5f6368;")

        form = QFormLayout()
        form.addRow("Created within:", self.window_minutes)
        form.addRow("Subject similarity at least:", self.subject_similarity)
        form.addRow("", self.bodies_must_match)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Rescan")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.show_thresholds(Thresholds()))

        layout = QVBoxLayout(self)
        layout.addWidget(note(EXPLANATION))
        layout.addLayout(form)
        layout.addWidget(QLabel("In words:"))
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

        for spin in (self.window_minutes, self.subject_similarity):
            spin.valueChanged.connect(self._update_summary)
        self.bodies_must_match.toggled.connect(self._update_summary)
        self.show_thresholds(thresholds)

    def show_thresholds(self, thresholds: Thresholds) -> None:
        """Put ``thresholds`` in the fields."""
        self.window_minutes.setValue(thresholds.window_minutes)
        self.subject_similarity.setValue(thresholds.subject_similarity)
        self.bodies_must_match.setChecked(thresholds.bodies_must_match)
        self._update_summary()

    def thresholds(self) -> Thresholds:
        """Return the thresholds set in the fields."""
        return Thresholds(
            window_minutes=self.window_minutes.value(),
            subject_similarity=self.subject_similarity.value(),
            bodies_must_match=self.bodies_must_match.isChecked(),
        )

    def _update_summary(self) -> None:
        self.summary.setText("\n".join(f"• {line}" for line in self.thresholds().lines()))


def edit_thresholds(parent: QWidget | None, thresholds: Thresholds) -> Thresholds | None:
    """Show the dialog and return the new thresholds, or None when the admin cancels."""
    dialog = ThresholdDialog(thresholds, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.thresholds()
