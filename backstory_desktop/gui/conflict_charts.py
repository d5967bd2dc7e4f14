"""Charts of duplicate groups with Qt Charts: by who wrote their Tasks, by kind, and by month.

Each chart counts the groups the viewer's filters let through, counted as
core.group_view counts them for the reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCharts import (
    QAbstractAxis,
    QAbstractBarSeries,
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QCategoryAxis,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QLocale, QMargins, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGridLayout, QWidget

from backstory_desktop.core.group_view import OTHER_WRITERS
from backstory_desktop.gui.widgets import note

BAR_COLOR = QColor("#1a5fb4")
CLONES_COLOR = QColor("#9aa0a6")
# More months than this crowd the axis, so the older ones are summed into one bar.
MAX_MONTHS = 12
EARLIER = "Earlier"
# A chart with more bars than this shows its counts on the value axis only, because numbers
# on narrow bars overlap one another.
MAX_LABELLED_BARS = 6
# Round steps between ticks, as multiples of a power of ten.
ROUND_STEPS = (1, 2, 2.5, 3, 4, 5, 6, 8)
# Number of bar names on a crowded axis.
CROWDED_AXIS_NAMES = 3
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Counts read with thousands separators on the axes and bars ("27,538").
NUMBER_LOCALE = QLocale(QLocale.Language.English, QLocale.Country.UnitedStates)


def last_months(counts: Mapping[str, int], limit: int = MAX_MONTHS) -> dict[str, int]:
    """Return ``counts`` by month, oldest first, in at most ``limit`` bars.

    Past ``limit`` months, the result is EARLIER, the sum of the older months,
    followed by the latest ``limit - 1`` months.
    """
    months = sorted(counts)
    if len(months) <= limit:
        return {month: counts[month] for month in months}
    older = months[: len(months) - limit + 1]
    latest = months[len(months) - limit + 1:]
    return {EARLIER: sum(counts[month] for month in older), **{month: counts[month] for month in latest}}


def every_month(counts: Mapping[str, int]) -> dict[str, int]:
    """Return the counts by month ("2026-11") with a zero for each month between the first and last.

    Keys that are not months come first, unchanged.
    """
    months = sorted(month for month in counts if _month_number(month) is not None)
    others = {key: value for key, value in counts.items() if _month_number(key) is None}
    if not months:
        return others
    first, last = _month_number(months[0]), _month_number(months[-1])
    assert first is not None
    assert last is not None
    filled = {f"{number // 12:04d}-{number % 12 + 1:02d}": 0 for number in range(first, last + 1)}
    filled.update({month: counts[month] for month in months})
    return {**others, **filled}


def _month_number(month: str) -> int | None:
    """Return the number of months since year 0 for a month such as "2026-11", or None for other text."""
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        return None
    number = int(month[5:])
    return int(month[:4]) * 12 + number - 1 if 1 <= number <= 12 else None


def month_labels(months: Sequence[str]) -> list[str]:
    """Return short labels with the year ("Nov '26") for months such as "2026-11".

    Other keys, such as EARLIER, keep their text.
    """
    labels: list[str] = []
    for month in months:
        number = _month_number(month)
        labels.append(month if number is None else f"{MONTH_NAMES[number % 12]} '{month[2:4]}")
    return labels


def axis_range(largest: float, *, max_intervals: int = 4) -> tuple[int, int]:
    """Return a maximum at or above ``largest`` and a tick count whose ticks are round numbers.

    Each step between ticks is a whole number: 1, 2, 2.5, 3, 4, 5, 6 or 8 times a
    power of ten. Of the choices from two to ``max_intervals`` intervals, the one
    with the lowest maximum wins, and of equal maximums the one with fewer intervals.
    """
    best: tuple[int, int] | None = None
    for intervals in range(2, max(max_intervals, 2) + 1):
        step = _round_step(max(largest, 1) / intervals)
        if best is None or step * intervals < best[0]:
            best = (step * intervals, intervals + 1)
    assert best is not None
    return best


def _round_step(at_least: float) -> int:
    power = 1
    while True:
        for factor in ROUND_STEPS:
            step = factor * power
            if step >= at_least and step == int(step):
                return int(step)
        power *= 10


def category_axis_for(categories: Sequence[str], *, crowded: bool) -> QAbstractAxis:
    """Return the axis that names the bars: each bar by name, or when ``crowded`` every few bars.

    Qt Charts cuts a bar's name to the bar's width, so under many narrow bars it
    shows only "…". A crowded axis names about CROWDED_AXIS_NAMES bars, evenly
    spaced from the first, each name as wide as the bars up to the next one.
    """
    if not crowded:
        axis = QBarCategoryAxis()
        axis.append(list(categories) or [""])
        return axis
    spaced = QCategoryAxis()
    spaced.setRange(-0.5, len(categories) - 0.5)
    spaced.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionOnValue)
    spaced.setGridLineVisible(False)
    every = max(1, math.ceil(len(categories) / CROWDED_AXIS_NAMES))
    for position in range(0, len(categories), every):
        spaced.append(categories[position], position)
    return spaced


def bar_chart(title: str, counts: Mapping[str, int], *, horizontal: bool,
              colors: Mapping[str, QColor] | None = None, labels: Sequence[str] | None = None) -> QChart:
    """Build a one-series bar chart of ``counts``, a bar per category.

    ``labels`` name the categories on the axis when they differ from the keys of
    ``counts``. A chart of up to MAX_LABELLED_BARS bars shows each bar's count at
    its end. With more bars, the counts are read against round ticks and grid
    lines. A horizontal chart lists the first category at the top.
    """
    names = list(labels) if labels is not None else list(counts)
    # Qt draws a horizontal chart's first category at the bottom.
    keys = list(counts)[::-1] if horizontal else list(counts)
    categories = names[::-1] if horizontal else names
    series = QHorizontalBarSeries() if horizontal else QBarSeries()
    bar_set = QBarSet("Groups")
    bar_set.append([float(counts[key]) for key in keys])
    bar_set.setColor(BAR_COLOR)
    bar_set.setBorderColor(BAR_COLOR)
    for position, key in enumerate(keys):
        color = (colors or {}).get(key)
        if color is not None:
            # QBarSet colors a single bar only through a selection, and nothing else here reads it.
            bar_set.setSelectedColor(color)
            bar_set.selectBar(position)
    series.append(bar_set)
    labelled = len(keys) <= MAX_LABELLED_BARS
    series.setLabelsVisible(labelled)
    # Outside the bar's end, a count stays readable however short its bar is.
    series.setLabelsPosition(QBarSeries.LabelsPosition.LabelsOutsideEnd)
    series.setLabelsPrecision(12)
    bar_set.setLabelColor(QColor("black"))
    series.setBarWidth(0.7)

    chart = QChart()
    chart.setTitle(title)
    chart.setLocale(NUMBER_LOCALE)
    chart.setLocalizeNumbers(True)
    chart.addSeries(series)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setBackgroundRoundness(0)
    # Room on the right for the last tick's number, centred on the axis' end.
    chart.setMargins(QMargins(2, 2, 16, 2))
    chart.legend().hide()
    category_axis = category_axis_for(categories, crowded=not horizontal and not labelled)
    value_axis = QValueAxis()
    largest = max([*counts.values(), 1])
    # Labelled bars need room beyond the longest bar for its count. A horizontal chart needs more,
    # because there the count's whole text width runs along the value axis.
    headroom = 1.0
    if labelled:
        headroom = 1.5 if horizontal else 1.15
    # A horizontal chart's value axis is narrow, so its numbers get three ticks at most.
    maximum, ticks = axis_range(largest * headroom, max_intervals=2 if horizontal else 4)
    value_axis.setRange(0, maximum)
    value_axis.setTickCount(ticks)
    # With localised numbers Qt Charts shows no label for "%d", so whole numbers are "%.0f".
    value_axis.setLabelFormat("%.0f")
    value_axis.setGridLineVisible(not labelled)
    if horizontal:
        chart.addAxis(category_axis, Qt.AlignmentFlag.AlignLeft)
        chart.addAxis(value_axis, Qt.AlignmentFlag.AlignBottom)
    else:
        chart.addAxis(category_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(value_axis, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(category_axis)
    series.attachAxis(value_axis)
    return chart


def chart_caption(shown: int, total: int, *, tool_users_named: bool) -> str:
    """Return the caption: which groups the charts count and where the tools' users come from."""
    if total == 0:
        return "The scan found no duplicate groups, so there is nothing to chart."
    scope = f"All {total:,} groups."
    if shown != total:
        scope = f"The {shown:,} groups the filters show, of {total:,}."
    if not tool_users_named:
        return (f"{scope} No cadence tool user is named in the Cadence tools step, so every Task that "
                f"Backstory did not write counts as {OTHER_WRITERS}: name the tools' users there, then scan "
                "again.")
    return (f"{scope} A group counts once for each writer of its Tasks, and the tools' users come from the "
            "Cadence tools step.")


class ConflictCharts(QWidget):
    """Three charts side by side: groups by who wrote their Tasks, by kind, and by month of newest Task."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = note("Scan to see charts of the duplicate groups.")
        self.views: dict[str, QChartView] = {}
        # Each chart's bar names in reading order, stored because a crowded axis names only some bars.
        self.categories: dict[str, list[str]] = {}
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
                    by_month: Mapping[str, int], *, shown: int, total: int,
                    tool_users_named: bool = True) -> None:
        """Chart the counts of the ``shown`` groups out of ``total`` found (see core.group_view's counts).

        ``tool_users_named`` is False when the profile names no cadence tool user. Then no Task
        can be attributed to a tool, and the caption points to the step that names them.
        """
        self.caption.setText(chart_caption(shown, total, tool_users_named=tool_users_named))
        months = last_months(every_month(by_month))
        names = month_labels(list(months))
        self.categories = {"tool": list(by_source), "kind": list(by_kind), "month": names}
        self._set_chart("tool", bar_chart("Written by", by_source, horizontal=True))
        self._set_chart("kind", bar_chart("By kind", by_kind, horizontal=True,
                                          colors={"clones": CLONES_COLOR}))
        self._set_chart("month", bar_chart("By month of the newest Task", months, horizontal=False,
                                           labels=names))

    def _set_chart(self, name: str, chart: QChart) -> None:
        view = self.views[name]
        # The view releases the chart it showed before without deleting it.
        previous = view.chart()
        view.setChart(chart)
        previous.deleteLater()

    def chart_categories(self, name: str) -> list[str]:
        """Return the bar names of one chart ("tool", "kind" or "month"), top down or left to right."""
        return list(self.categories.get(name, []))

    def chart_values(self, name: str) -> list[int]:
        """Return the bar values of one chart in the order of ``chart_categories``."""
        chart = self.views[name].chart()
        values: list[int] = []
        for series in chart.series():
            if isinstance(series, QAbstractBarSeries):
                bar_set = series.barSets()[0]
                values = [int(bar_set.at(position)) for position in range(bar_set.count())]
        return self._in_reading_order(chart, values)

    @staticmethod
    def _in_reading_order(chart: QChart, items: list[Any]) -> list[Any]:
        horizontal = any(isinstance(series, QHorizontalBarSeries) for series in chart.series())
        return items[::-1] if horizontal else items
