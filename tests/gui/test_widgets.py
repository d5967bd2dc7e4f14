"""The message line: one sentence for the admin, the details behind a button."""

from __future__ import annotations

import requests
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from pytestqt.qtbot import QtBot

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.gui.widgets import FAILED_COLOR, MessagePanel, plain_label, plain_tooltip


def test_message_panel__error_details_behind_button(qtbot: QtBot) -> None:
    panel = MessagePanel()
    qtbot.addWidget(panel)
    panel.show()
    refused = requests.exceptions.ConnectionError("Failed to establish a new connection: [Errno 111]")

    panel.show_error(refused)

    assert "\n" not in panel.label.text()
    assert FAILED_COLOR.name() in panel.label.styleSheet()
    assert panel.details_button.isVisible()
    assert panel.details.isHidden()
    panel.details_button.click()
    assert panel.details.isVisible()
    assert "Errno 111" in panel.details.toPlainText()


def test_message_panel__cancel_is_not_an_error(qtbot: QtBot) -> None:
    panel = MessagePanel()
    qtbot.addWidget(panel)
    panel.show()

    panel.show_error(Cancelled("cancelled by the user"))

    assert panel.label.text().startswith("Cancelled")
    assert FAILED_COLOR.name() not in panel.label.styleSheet()
    assert panel.details_button.isHidden()


def test_message_panel__failed_result_shows_reason(qtbot: QtBot) -> None:
    panel = MessagePanel()
    qtbot.addWidget(panel)
    panel.show()
    result = StepResult(Step.MESSAGE_ID_FIELD, StepStatus.FAILED,
                        "Activity.Message_ID__c does not exist.", {"details": "HTTP 404 from /tooling/query"})

    panel.show_result(result)

    assert panel.label.text() == "✗ Activity.Message_ID__c does not exist."
    assert panel.details_button.isVisible()
    assert panel.details.toPlainText() == "HTTP 404 from /tooling/query"


def test_plain_tooltip__markup_shows_as_written(qtbot: QtBot) -> None:
    text = '<h1 style="color:red">Big</h1> & <a href="x">link</a>\nsecond line'
    document = QTextDocument()

    document.setHtml(plain_tooltip(text))

    assert document.toPlainText() == text


def test_plain_label__markup_shows_as_written(qtbot: QtBot) -> None:
    label = plain_label("<b>Bold</b>")
    qtbot.addWidget(label)

    assert label.textFormat() is Qt.TextFormat.PlainText
    assert label.text() == "<b>Bold</b>"
