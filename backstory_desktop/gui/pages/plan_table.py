"""The plan table's column widths.

Action, Existing Tasks and Outcome keep a fixed width. Reason, the last
column, gets the largest share of the width left and stretches. Subject and
Message-ID key get fair shares, and Source fits the references of the first
rows. Each cell's tooltip contains its full text, so a narrow column loses no
fact.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QTableView

from backstory_desktop.gui.models import PlanTableModel, short_source_ref

# Column widths of the plan table, in pixels. Reason gets REASON_SHARE of the width the fixed columns
# leave. Key, Subject and Source get their shares of the rest, and Reason stretches over what they leave.
ACTION_WIDTH = 64
REASON_SHARE = 0.38
KEY_SHARE = 0.34
SUBJECT_SHARE = 0.39
SOURCE_MAX_SHARE = 0.27
REASON_MIN_WIDTH = 220
KEY_MIN_WIDTH = 110
SUBJECT_MIN_WIDTH = 100
SOURCE_MIN_WIDTH = 70
SOURCE_ROWS_MEASURED = 50
# Existing Tasks is as wide as one 18-character record Id, plus the cell's margins.
RECORD_ID_SAMPLE = "00T000000000000AAA"
CELL_MARGIN = 16


class PlanColumns(QObject):
    """The plan table's column widths, fitted to the table's width until the admin drags a column.

    Action, Existing Tasks and Outcome keep their width. Key, Subject and Source
    get shares of the rest, and Reason stretches over what they leave.
    """

    def __init__(self, table: QTableView) -> None:
        super().__init__(table)
        self.table = table
        metrics = table.fontMetrics()
        self.source_width = SOURCE_MIN_WIDTH
        self._sizing = False
        self._dragged = False
        table.setColumnWidth(PlanTableModel.ACTION, ACTION_WIDTH)
        # Read once, because a hidden column reports a width of 0.
        self.existing_width = metrics.horizontalAdvance(RECORD_ID_SAMPLE) + CELL_MARGIN
        table.setColumnWidth(PlanTableModel.EXISTING, self.existing_width)
        self.outcome_width = metrics.horizontalAdvance(f"updated {RECORD_ID_SAMPLE}") + CELL_MARGIN
        table.setColumnWidth(PlanTableModel.OUTCOME, self.outcome_width)
        table.horizontalHeader().sectionResized.connect(self._section_resized)
        # The viewport narrows when the vertical scroll bar appears, so its resizes are watched.
        self._viewport = table.viewport()
        self._viewport.installEventFilter(self)
        self.fit()

    def measure_sources(self, model: PlanTableModel) -> None:
        """Fit Source to the references of the first rows of a new plan."""
        metrics = self.table.fontMetrics()
        shown = min(model.rowCount(), SOURCE_ROWS_MEASURED)
        references = (short_source_ref(model.row_at(row).source_ref) for row in range(shown))
        widths = [metrics.horizontalAdvance(reference) for reference in references]
        widest = max(widths, default=0)
        self.source_width = max(widest + CELL_MARGIN, SOURCE_MIN_WIDTH)
        self.fit()

    def fit(self) -> None:
        """Share the table's width between Key, Source and Subject; Reason stretches over the rest."""
        if self._dragged:
            return
        width = self.table.viewport().width()
        # Outcome takes the place of Existing Tasks after an apply.
        applied = not self.table.isColumnHidden(PlanTableModel.OUTCOME)
        fixed = ACTION_WIDTH + (self.outcome_width if applied else self.existing_width)
        shared = max(width - fixed, 0)
        rest = shared - max(REASON_MIN_WIDTH, int(shared * REASON_SHARE))
        key = max(int(rest * KEY_SHARE), KEY_MIN_WIDTH)
        subject = max(int(rest * SUBJECT_SHARE), SUBJECT_MIN_WIDTH)
        source = min(self.source_width, max(int(rest * SOURCE_MAX_SHARE), SOURCE_MIN_WIDTH))
        self._sizing = True
        try:
            for column, size in ((PlanTableModel.KEY, key), (PlanTableModel.SOURCE, source),
                                 (PlanTableModel.SUBJECT, subject)):
                self.table.setColumnWidth(column, size)
        finally:
            self._sizing = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self._viewport:
            self.fit()
        return False

    def _section_resized(self, column: int, _old: int, _new: int) -> None:
        # The admin's own width wins over the automatic one until the page is built again.
        if not self._sizing and column in (PlanTableModel.KEY, PlanTableModel.SOURCE, PlanTableModel.SUBJECT):
            self._dragged = True
