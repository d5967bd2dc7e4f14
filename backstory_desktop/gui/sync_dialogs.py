"""The CSV mapping dialog: which column of an activity export contains the Message-ID, subject, body...

The admin sees the file's headers, the mapping guessed from them, the problems
``check_mapping`` finds and a preview of the first rows as the sync would read
them, and confirms the mapping before any plan is built.
"""

from __future__ import annotations

import csv
import logging
import re
from itertools import islice
from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.gui.widgets import FAILED_COLOR, compact_rows, note, plain_label
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.csv_export import (
    COLUMN_LABELS,
    CsvColumn,
    CsvMapping,
    check_mapping,
    csv_encoding,
    guess_mapping,
    read_csv_export,
    read_csv_header,
)

log = logging.getLogger(__name__)

# Rows of the file shown in the preview.
PREVIEW_ROWS = 5
NOT_MAPPED = "(not in this file)"
CUSTOM_LABEL = "Custom"
USE_MAPPING = "Use this mapping"

PREVIEW_HEADERS = ("Row", "Message-ID key", "Subject", "From", "Sent at", "Problem")
# Starting widths of every column but Problem; after a read, short columns fit their text.
PREVIEW_WIDTHS = (110, 200, 150, 150, 120)
# The widest a column grows to fit its text, so Problem, the last column, keeps room.
PREVIEW_MAX_WIDTH = 260


# The row number at the end of a CSV row's source reference: "tasks.csv, row 4".
ROW_NUMBER = re.compile(r", row (\d+)")
# The mapped columns shown, as the file has them, for a row that could not be read.
RAW_COLUMNS = (CsvColumn.MESSAGE_ID, CsvColumn.SUBJECT, CsvColumn.SENDER, CsvColumn.SENT_AT)


def raw_rows(path: Path, count: int) -> list[list[str]]:
    """Return the first ``count`` rows of the file, header included, as plain cells."""
    with path.open(encoding=csv_encoding(path), errors="replace", newline="") as stream:
        return list(islice(csv.reader(stream), count))


def problem_cells(problem: SourceProblem, headers: list[str], mapping: CsvMapping,
                  rows: list[list[str]]) -> tuple[str, ...]:
    """Return the preview cells of a row that could not be read, with its values as the file has them."""
    cells = ["", "", "", ""]
    match = ROW_NUMBER.search(problem.source_ref)
    if match is not None and int(match.group(1)) <= len(rows):
        row = rows[int(match.group(1)) - 1]
        for position, column in enumerate(RAW_COLUMNS):
            header = mapping.columns.get(column)
            index = headers.index(header) if header in headers else len(row)
            cells[position] = row[index] if index < len(row) else ""
    if not cells[0]:
        cells[0] = problem.raw_header or ""
    return (problem.source_ref, *cells, problem.reason)


def preview_cells(item: MailActivity | SourceProblem) -> tuple[str, ...]:
    """Return the preview cells of one item read from the file, in PREVIEW_HEADERS order."""
    if isinstance(item, SourceProblem):
        # A row that could not be read has only its raw Message-ID, when one was found.
        return (item.source_ref, item.raw_header or "", "", "", "", item.reason)
    sender = item.sender.email if item.sender is not None else ""
    sent_at = item.sent_at.isoformat(sep=" ", timespec="minutes") if item.sent_at is not None else ""
    problem = (item.message_id.problem or "") if item.message_id.key is None else ""
    # A value that makes no key is shown as the file has it, so the admin can find and fix it.
    key = item.message_id.key or item.message_id.raw
    return (item.source_ref, key, item.subject, sender, sent_at, problem)


class CsvMappingDialog(QDialog):
    """Map an activity export's columns to the Task fields the sync fills, with a live preview."""

    def __init__(self, path: Path, headers: list[str], key_field: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Map the CSV columns")
        self.path = path
        self.headers = headers
        self.guessed = guess_mapping(headers, key_field=key_field)
        self.result_mapping: CsvMapping | None = None

        self.boxes: dict[CsvColumn, QComboBox] = {}
        form = QFormLayout()
        for column in CsvColumn:
            box = QComboBox()
            box.addItem(NOT_MAPPED, "")
            for header in headers:
                box.addItem(header, header)
            box.setCurrentIndex(max(0, box.findData(self.guessed.columns.get(column, ""))))
            box.currentIndexChanged.connect(self.refresh)
            self.boxes[column] = box
            form.addRow(COLUMN_LABELS[column] + ":", box)

        self.kind = plain_label()
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.preview = QTableWidget(0, len(PREVIEW_HEADERS))
        self.preview.setHorizontalHeaderLabels(PREVIEW_HEADERS)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.verticalHeader().hide()
        self.preview.horizontalHeader().setStretchLastSection(True)
        self.preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        compact_rows(self.preview)
        for position, width in enumerate(PREVIEW_WIDTHS):
            self.preview.setColumnWidth(position, width)
        self.reset_button = QPushButton("Use the guessed mapping")
        self.reset_button.clicked.connect(self.reset_to_guess)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.accept_button = self.buttons.addButton(USE_MAPPING, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(note(
            f"{path.name} has {len(headers)} columns. Choose the column that holds each value; "
            "the preview shows the first rows as the sync will read them."
        ))
        found = QListWidget()
        found.addItems(headers)
        found.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        columns = QVBoxLayout()
        columns.addWidget(QLabel("Columns in the file:"))
        columns.addWidget(found, 1)
        top = QHBoxLayout()
        top.addLayout(form, 3)
        top.addLayout(columns, 2)
        layout.addLayout(top)
        guess_row = QHBoxLayout()
        guess_row.addWidget(self.kind, 1)
        guess_row.addWidget(self.reset_button)
        layout.addLayout(guess_row)
        layout.addWidget(self.problems)
        layout.addWidget(QLabel(f"Preview of the first {PREVIEW_ROWS} rows:"))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.buttons)
        self.resize(1000, 600)
        self.refresh()

    def mapping(self) -> CsvMapping:
        """Return the mapping the boxes show, labelled as the guess when it is unchanged."""
        columns = {column: str(box.currentData()) for column, box in self.boxes.items() if box.currentData()}
        label = self.guessed.label if columns == dict(self.guessed.columns) else CUSTOM_LABEL
        return CsvMapping(columns=columns, label=label)

    def reset_to_guess(self) -> None:
        """Put every box back to the guessed column."""
        for column, box in self.boxes.items():
            box.setCurrentIndex(max(0, box.findData(self.guessed.columns.get(column, ""))))

    def refresh(self) -> None:
        """Check the mapping and read the preview again."""
        mapping = self.mapping()
        self.kind.setText(f"Mapping: {self._mapping_name(mapping)}")
        problems = check_mapping(mapping, self.headers)
        self.problems.setText(" ".join(problems))
        self.problems.setVisible(bool(problems))
        self.accept_button.setEnabled(not problems)
        self._fill_preview(mapping if not problems else None)

    def _mapping_name(self, mapping: CsvMapping) -> str:
        if mapping.columns:
            return mapping.label
        return "none guessed" if not self.guessed.columns else "no column chosen"

    def _fill_preview(self, mapping: CsvMapping | None) -> None:
        self.preview.setRowCount(0)
        if mapping is None:
            return
        try:
            items = list(islice(read_csv_export(self.path, mapping), PREVIEW_ROWS))
            rows = raw_rows(self.path, PREVIEW_ROWS * 2 + 1) if any(
                isinstance(item, SourceProblem) for item in items) else []
        except (SourceError, OSError, csv.Error) as error:
            log.info("CSV preview failed: %s", error)
            self.problems.setText(str(error))
            self.problems.show()
            self.accept_button.setEnabled(False)
            return
        self.preview.setRowCount(len(items))
        for row, item in enumerate(items):
            cells = (problem_cells(item, self.headers, mapping, rows) if isinstance(item, SourceProblem)
                     else preview_cells(item))
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                self.preview.setItem(row, column, cell)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Widen each column but the last to its text, up to PREVIEW_MAX_WIDTH."""
        for column in range(len(PREVIEW_HEADERS) - 1):
            self.preview.resizeColumnToContents(column)
            fitted = min(self.preview.columnWidth(column), PREVIEW_MAX_WIDTH)
            self.preview.setColumnWidth(column, max(fitted, PREVIEW_WIDTHS[column] // 2))

    def accept(self) -> None:
        self.result_mapping = self.mapping()
        super().accept()


def edit_csv_mapping(parent: QWidget | None, path: Path, key_field: str) -> CsvMapping | None:
    """Show the mapping dialog for a CSV export; returns the confirmed mapping, or None.

    Raises SourceError when the file has no header row to map.
    """
    headers = read_csv_header(path)
    dialog = CsvMappingDialog(path, headers, key_field, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.result_mapping
