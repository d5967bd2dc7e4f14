"""Confirmation dialogs shown before anything is written to the org.

Pages call ``dialogs.confirm`` through the module, so the GUI tests approve or decline
the message box by replacing this one function. Everything around it stays real.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QGridLayout, QMessageBox, QSizePolicy, QSpacerItem, QWidget

APPLY = "Apply"
# Width in pixels the confirmation box takes at least, so change lines stay on one row.
MIN_WIDTH = 680


def confirm(
    parent: QWidget | None, title: str, question: str, lines: list[str], action: str = APPLY
) -> bool:
    """Ask the admin to approve a change listed line by line; True when they click ``action``.

    ``action`` names what the accept button does, such as "Switch" or "Remove".
    """
    box = build_confirm_box(parent, title, question, lines, action)
    box.exec()
    clicked = box.clickedButton()
    return clicked is not None and box.buttonRole(clicked) == QMessageBox.ButtonRole.AcceptRole


def build_confirm_box(
    parent: QWidget | None, title: str, question: str, lines: list[str], action: str = APPLY
) -> QMessageBox:
    """Build the confirmation box without showing it; Cancel is the default button."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(question)
    box.setInformativeText(change_list_html(lines))
    box.addButton(action, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    _widen(box)
    return box


def _widen(box: QMessageBox) -> None:
    # QMessageBox sizes itself to its text and ignores setMinimumWidth, so a
    # spacer row in its grid keeps the diff lines from wrapping early.
    layout = box.layout()
    if isinstance(layout, QGridLayout):
        spacer = QSpacerItem(MIN_WIDTH, 0, QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Expanding)
        layout.addItem(spacer, layout.rowCount(), 0, 1, layout.columnCount())


def _line_color(line: str) -> str:
    if line.startswith("+"):
        return "#1b7f3b"
    if line.startswith("-"):
        return "#b3261e"
    if line.startswith("!"):  # a warning about the change, such as another user it reaches
        return "#8a5a00"
    return "inherit"


def change_list_html(lines: list[str]) -> str:
    """Render change lines as a diff: lines starting with + in green, - in red, ! in amber.

    Lines that list facts rather than changes start with another mark, such as "•", and
    keep the normal text color.
    """
    rendered = [f'<span style="color:{_line_color(line)}">{html.escape(line)}</span>' for line in lines]
    # pre-wrap keeps the diff's indentation but wraps a line wider than the box.
    return '<p style="white-space: pre-wrap; font-family: monospace">' + "<br>".join(rendered) + "</p>"
