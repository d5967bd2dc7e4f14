"""Charts of duplicate groups with Qt Charts: by source tool, by kind, and by month.

Each chart counts the groups the viewer's filters let through, counted as
core.group_view counts them for the reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from PySide6.QtCharts import (
    QAbstractBarSeries,
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGridLayout, QWidget

from backstory_desktop.gui.widgets import note

BAR_COLOR = QColor("#1a5fb4")
CLONES_COLOR = QColor("#9aa0a6")
# More months than this crowd the axis, so the older ones are summed into one bar.
MAX_MONTHS = 18
EARLIER = "Earlier"


def last_months(counts: Mapping[str, int], limit: int = MAX_MONTHS) -> dict[str, int]:
    """Keep the latest ``limit`` months of ``counts`` (oldest first) and sum the older ones under EARLIER."""
    months = sorted(counts)
    if len(months) <= limit:
        return {month: counts[month] for month in months}
    older = months[: len(months) - limit + 1]
    kept = months[len(months) - limit + 1:]
    return {EARLIER: sum(counts[month] for month in older), **{month: counts[month] for month in kept}}


def bar_chart(title: str, counts: Mapping[str, int], *, horizontal: bool,
              colors: Mapping[str, QColor] | None = None) -> QChart:
    """Build a one-series bar chart of ``counts``, a bar per category, the count written on each bar.

    A horizontal chart lists the first category at the top.
    """
    # Qt draws a horizontal chart's first category at the bottom.
    categories = list(counts)[::-1] if horizontal else list(counts)
    series = QHorizontalBarSeries() if horizontal else QBarSeries()
    bar_set = QBarSet("Groups")
    bar_set.append([float(counts[category]) for category in categories])
    bar_set.setColor(BAR_COLOR)
    bar_set.setBorderColor(BAR_COLOR)
    for position, category in enumerate(categories):
        color = (colors or {}).get(category)
        if color is not None:
            # QBarSet colors one bar through a selection, which here marks the bar and nothing else.
            bar_set.setSelectedColor(color)
            bar_set.selectBar(position)
    series.append(bar_set)
    series.setLabelsVisible(True)
    series.setLabelsPosition(QBarSeries.LabelsPosition.LabelsInsideBase if horizontal
                             else QBarSeries.LabelsPosition.LabelsOutsideEnd)
    bar_set.setLabelColor(QColor("white") if horizontal else QColor("black"))
    series.setBarWidth(0.7)

    chart = QChart()
    chart.setTitle(title)
    chart.addSeries(series)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setBackgroundRoundness(0)
    chart.setMargins(QMargins(2, 2, 2, 2))
    chart.legend().hide()
    category_axis = QBarCategoryAxis()
    category_axis.append(categories or [""])
    value_axis = QValueAxis()
    # Three ticks on an even maximum fall on whole numbers, which "%d" then shows truly.
    headroom = 1.0 if horizontal else 1.15
    value_axis.setRange(0, 2 * math.ceil(max([*counts.values(), 1]) * headroom / 2))
    value_axis.setLabelFormat("%d")
    value_axis.setTickCount(3)
    value_axis.setGridLineVisible(False)
    if horizontal:
        chart.addAxis(category_axis, Qt.AlignmentFlag.AlignLeft)
        chart.addAxis(value_axis, Qt.AlignmentFlag.AlignBottom)
    else:
        category_axis.setLabelsAngle(-60 if len(categories) > 6 else 0)
        chart.addAxis(category_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(value_axis, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(category_axis)
    series.attachAxis(value_axis)
    return chart


class ConflictCharts(QWidget):
    """Three charts side by side: groups by source tool, by kind, and by the month of their newest Task."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = note("Scan to see charts of the duplicate groups.")
        self.views: dict[str, QChartView] = {}
        layout = QGridLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption, 0, 0, 1, 3)
        for column, name in enumerate(("tool", "kind", "month")):
            view = QChartView()
            view.setRenderHint(QPainter.RenderHint.Antialiasing)
            view.setMinimumSize(180, 150)
            self.views[name] = view
            layout.addWidget(view, 1, column)
        layout.setRowStretch(1, 1)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        layout.setColumnStretch(2, 1)

    def show_counts(self, by_source: Mapping[str, int], by_kind: Mapping[str, int],
                    by_month: Mapping[str, int], *, shown: int, total: int) -> None:
        """Chart the counts of the ``shown`` groups out of ``total`` found (see core.group_view's counts)."""
        if total == 0:
            self.caption.setText("The scan found no duplicate groups, so there is nothing to chart.")
        elif shown == total:
            self.caption.setText(f"All {total:,} groups. A group counts once for each source of its Tasks.")
        else:
            self.caption.setText(f"The {shown:,} groups the filters show, of {total:,}. "
                                 "A group counts once for each source of its Tasks.")
        self._set_chart("tool", bar_chart("By source", by_source, horizontal=True))
        self._set_chart("kind", bar_chart("By kind", by_kind, horizontal=True,
                                          colors={"clones": CLONES_COLOR}))
        self._set_chart("month", bar_chart("By month of the newest Task", last_months(by_month),
                                           horizontal=False))

    def _set_chart(self, name: str, chart: QChart) -> None:
        view = self.views[name]
        # The view releases the chart it showed before without deleting it.
        previous = view.chart()
        view.setChart(chart)
        previous.deleteLater()

    def chart_categories(self, name: str) -> list[str]:
        """Return the categories of one chart ("tool", "kind" or "month"), top down or left to right."""
        chart = self.views[name].chart()
        categories: list[str] = []
        for axis in chart.axes():
            if isinstance(axis, QBarCategoryAxis):
                categories = list(axis.categories())
        return self._as_read(chart, categories)

    def chart_values(self, name: str) -> list[int]:
        """Return the bar values of one chart in the order of ``chart_categories``."""
        chart = self.views[name].chart()
        values: list[int] = []
        for series in chart.series():
            if isinstance(series, QAbstractBarSeries):
                bar_set = series.barSets()[0]
                values = [int(bar_set.at(position)) for position in range(bar_set.count())]
        return self._as_read(chart, values)

    @staticmethod
    def _as_read(chart: QChart, items: list[Any]) -> list[Any]:
        horizontal = any(isinstance(series, QHorizontalBarSeries) for series in chart.series())
        return items[::-1] if horizontal else items
