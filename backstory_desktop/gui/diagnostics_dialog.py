"""The Diagnostics dialog of the Help menu: the `diagnose` report, with Copy and Refresh.

The report is collected on the window's worker, because with a connection it
reads the org's remaining daily API requests from its limits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.diagnostics import collect_diagnostics, format_diagnostics
from backstory_desktop.gui.widgets import explain_error
from backstory_desktop.gui.worker import Worker
from backstory_desktop.salesforce.connection import OrgConnection

COLLECTING = "Collecting diagnostics…"


def diagnostics_job(
    connection: OrgConnection | None, alias: str, *, progress: ProgressCallback, cancel: threading.Event
) -> str:
    """Collect the report and render it as text, on the worker; ``alias`` names the connection's profile."""
    if connection is None:
        return format_diagnostics(collect_diagnostics())
    return format_diagnostics(collect_diagnostics(connection, alias=alias))


class DiagnosticsDialog(QDialog):
    """The report as plain text the admin can copy into a support request.

    ``current_connection`` returns the window's connection, or None, and its profile alias.
    """

    def __init__(
        self,
        worker: Worker,
        current_connection: Callable[[], tuple[OrgConnection | None, str]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Diagnostics")
        self.resize(860, 560)
        self._worker = worker
        self._current_connection = current_connection
        self.collecting = False

        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_report)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        """Collect the report again, showing "Collecting diagnostics…" until it arrives."""
        self.collecting = True
        self.text.setPlainText(COLLECTING)
        self.copy_button.setEnabled(False)
        self.refresh_button.setEnabled(False)
        connection, alias = self._current_connection()
        job = self._worker.start("collect diagnostics", diagnostics_job, connection, alias)
        job.finished.connect(self._show_report)
        job.failed.connect(self._show_failure)

    def copy_report(self) -> None:
        """Put the report on the clipboard."""
        QGuiApplication.clipboard().setText(self.text.toPlainText())

    def _show_report(self, report: Any) -> None:
        self._collected(str(report))

    def _show_failure(self, error: BaseException) -> None:
        sentence, details = explain_error(error)
        self._collected(f"The diagnostics could not be collected: {sentence}\n\n{details}".rstrip())

    def _collected(self, text: str) -> None:
        self.collecting = False
        self.text.setPlainText(text)
        self.copy_button.setEnabled(True)
        self.refresh_button.setEnabled(True)
