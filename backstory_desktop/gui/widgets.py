"""Small widgets shared by the wizard pages: the message line with details, progress, status marks."""

from __future__ import annotations

import html
import traceback
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.core.checklist import StepResult, StepStatus
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.logging_setup import scrub_secrets

PASSED_COLOR = QColor("#1b7f3b")
FAILED_COLOR = QColor("#b3261e")
NEUTRAL_COLOR = QColor("#5f6368")
# Shown where a value is not known yet.
NO_VALUE = "-"

# The mark and word shown for a step's status; words, so color is never the only cue.
STATUS_MARKS: dict[StepStatus | None, str] = {
    StepStatus.PASSED: "✓ passed",
    StepStatus.FAILED: "✗ failed",
    StepStatus.SKIPPED: "⊘ skipped",
    None: "○ not run",
}


def status_color(status: StepStatus | None) -> QColor:
    """Return the text color for a step status."""
    if status is StepStatus.PASSED:
        return PASSED_COLOR
    if status is StepStatus.FAILED:
        return FAILED_COLOR
    return NEUTRAL_COLOR


def explain_error(error: BaseException) -> tuple[str, str]:
    """Turn a job's exception into one line for the admin and the details behind the button."""
    if isinstance(error, Cancelled):
        return "Cancelled: the job stopped before its next step, and nothing more was written.", ""
    # Imported here, because the practice org's package and the journal's file lock would
    # otherwise load with every window.
    from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
    from backstory_desktop.sources.base import SourceError
    from backstory_desktop.store.journal import JournalError

    if isinstance(error, (PracticeOrgDatabaseError, SourceError, JournalError)):
        # These messages already name the file, what is wrong with it and what to do.
        return str(error), ""
    from backstory_desktop.salesforce.errors import explain

    problem = explain(error)
    trace = "".join(traceback.format_exception(error))
    details = f"{problem.details}\n\n{trace}" if problem.details else trace
    # A traceback may quote a request header or URL, so it gets the log's scrubbing too.
    return scrub_secrets(problem.sentence), scrub_secrets(details)


def plain_label(text: str = "") -> QLabel:
    """Return a label that shows ``text`` as written: org data such as a user's name may contain markup."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_tooltip(text: str) -> str:
    """Return a tooltip that shows ``text`` as written, even when it looks like HTML.

    Qt renders a tooltip as rich text when it looks like markup, so the text is
    escaped inside a paragraph that keeps its line breaks.
    """
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"


class MessagePanel(QFrame):
    """One line saying what happened, colored by outcome, with a Details expander.

    The line may carry one action button, such as "Sign in again", for the admin to
    act on the message. A new message removes it.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        # Messages quote org data (usernames, labels, values), which must never render as HTML.
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.clicked.connect(self._run_action)
        self._action: Callable[[], None] | None = None
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._show_details)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(140)
        self.details.hide()

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.label, 1)
        top.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addLayout(top)
        layout.addWidget(self.details)
        self.clear()

    def clear(self) -> None:
        """Hide the panel."""
        self.label.clear()
        self.details.clear()
        self.details_button.setChecked(False)
        self._set_action(None, "")
        self.hide()

    def show_message(self, text: str, color: QColor = NEUTRAL_COLOR, details: str = "") -> None:
        """Show one line, and a Details button when there is more to read; both are scrubbed of tokens."""
        self.label.setText(scrub_secrets(text))
        self.label.setStyleSheet(f"color: {color.name()};")
        self.details.setPlainText(scrub_secrets(details))
        self.details_button.setChecked(False)
        self.details_button.setVisible(bool(details))
        self._set_action(None, "")
        self.show()

    def offer_action(self, label: str, action: Callable[[], None]) -> None:
        """Add one action button to the message shown, replacing any earlier action."""
        self._set_action(action, label)

    def _set_action(self, action: Callable[[], None] | None, label: str) -> None:
        self._action = action
        self.action_button.setText(label)
        self.action_button.setVisible(action is not None)

    def _run_action(self) -> None:
        # One click runs the action once, and the button stays hidden until a message offers it again.
        action = self._action
        self._set_action(None, "")
        if action is not None:
            action()

    def show_error(self, error: BaseException) -> None:
        """Show a job's failure as one sentence, the traceback behind Details."""
        sentence, details = explain_error(error)
        color = NEUTRAL_COLOR if isinstance(error, Cancelled) else FAILED_COLOR
        self.show_message(sentence, color, details)

    def show_result(self, result: StepResult) -> None:
        """Show a step's status and reason; Salesforce's own details sit behind Details."""
        mark = STATUS_MARKS[result.status].split(" ", 1)[0]
        details = str(result.details.get("details", ""))
        self.show_message(f"{mark} {result.reason}", status_color(result.status), details)

    def _show_details(self, visible: bool) -> None:
        self.details.setVisible(visible)


class ProgressRow(QWidget):
    """A progress bar with its message and a Cancel button, shown while a job runs."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.message = QLabel()
        # A long message, such as one naming the callback address, wraps instead of widening the window.
        self.message.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 2)
        layout.addWidget(self.message, 3)
        layout.addWidget(self.cancel_button)
        self.hide()

    def begin(self, message: str, *, cancellable: bool) -> None:
        """Show the row in its busy state, before the first progress report."""
        self.bar.setRange(0, 0)
        self.message.setText(message)
        self.cancel_button.setVisible(cancellable)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.show()

    def update_progress(self, done: int, total: int, message: str) -> None:
        """Show a progress report; an unknown total shows a busy bar."""
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)
        if message:
            self.message.setText(message)

    def end(self) -> None:
        """Hide the row when the job has ended."""
        self.hide()

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.cancel_requested.emit()


def heading(text: str) -> QLabel:
    """Return a page title label."""
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.35)
    font.setBold(True)
    label.setFont(font)
    return label


def note(text: str) -> QLabel:
    """Return a wrapped explanatory paragraph."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def compact_rows(table: QTableView) -> None:
    """Give every row of a table one fixed text line, so big tables need no per-row sizing."""
    header = table.verticalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    header.setDefaultSectionSize(table.fontMetrics().height() + 8)


class ElideMiddleDelegate(QStyledItemDelegate):
    """Item delegate that elides text in the middle, so a Message-ID key keeps its start and its domain."""

    def initStyleOption(self, option: QStyleOptionViewItem,
                        index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle

