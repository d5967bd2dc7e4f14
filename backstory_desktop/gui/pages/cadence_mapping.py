"""Cadence-tool mapping: what to map in each tool, and a check of the keys and calls the tools logged.

A tab per cadence tool lists the mapping steps beside that tool's numbers and a
small stacked bar chart of its key forms. The Calls tab lists, per owner, the
calls logged without TaskSubtype Call.
"""

from __future__ import annotations

import html
import threading
import unicodedata
from typing import Any

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSet,
    QChart,
    QChartView,
    QHorizontalStackedBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.coverage import percent
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.enablement.cadence import WHY_CALLS, mapping_steps
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.pages.plan_text import counted
from backstory_desktop.gui.widgets import (
    FAILED_COLOR,
    NO_VALUE,
    PASSED_COLOR,
    STATUS_MARKS,
    note,
    plain_label,
    plain_tooltip,
    status_color,
)
from backstory_desktop.store.settings import CADENCE_TOOLS, MAX_COVERAGE_DAYS

# The chart's segments: (details key, label, color). Green is what Backstory can match.
KEY_FORMS = (
    ("canonical", "Canonical", QColor("#1b7f3b")),
    ("without_brackets", "No angle brackets", QColor("#e3a008")),
    ("not_canonical", "Other form", QColor("#d4622a")),
    ("unusable", "Unusable", QColor("#b3261e")),
    ("without_key", "No key", QColor("#9aa0a6")),
)
# The numbers beside each chart: (details key, row label). The key form rows carry the chart's
# colors, so they are its legend too.
NUMBER_ROWS = (
    ("tasks", "E-mail Tasks:"),
    ("with_key", "With a key:"),
    *((key, f"{label}:") for key, label, _color in KEY_FORMS),
)
FORM_COLORS = {key: color for key, _label, color in KEY_FORMS}
CALL_COLUMNS = ("Owner", "Username", "Calls", "Logged by", "Example Task Ids")
CHART_HEIGHT = 90


def check_coverage_job(
    run: EnablementRun, days: int, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Read the cadence tools' Tasks and the calls on the worker."""
    return enablement.check_coverage(run, days=days, progress=progress, cancel=cancel)


def key_form_chart(tool: dict[str, Any]) -> QChart:
    """Build a one-bar stacked chart of a tool's Tasks by key form, leaving out empty forms."""
    series = QHorizontalStackedBarSeries()
    series.setLabelsVisible(True)
    series.setBarWidth(0.6)
    for key, label, color in KEY_FORMS:
        count = int(tool.get(key, 0))
        if count == 0:
            continue
        bar_set = QBarSet(label)
        bar_set.append(count)
        bar_set.setColor(color)
        bar_set.setBorderColor(color)
        bar_set.setLabelColor(QColor("white") if key != "without_key" else QColor("black"))
        series.append(bar_set)

    chart = QChart()
    chart.addSeries(series)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setBackgroundRoundness(0)
    chart.setMargins(QMargins(4, 4, 4, 4))
    category = QBarCategoryAxis()
    category.append([str(tool.get("tool", ""))])
    category.setVisible(False)
    chart.addAxis(category, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(category)
    values = QValueAxis()
    values.setRange(0, max(int(tool.get("tasks", 0)), 1))
    values.setLabelFormat("%d")
    values.setTickCount(2)
    values.setGridLineVisible(False)
    chart.addAxis(values, Qt.AlignmentFlag.AlignBottom)
    series.attachAxis(values)
    chart.legend().hide()
    return chart


def visible_text(value: str) -> str:
    """Spell out control and invisible formatting characters as U+XXXX, so a value shows what it holds.

    A bidirectional override in a stored key would otherwise reorder the text shown after it.
    """
    return "".join(
        f"<U+{ord(char):04X}>" if unicodedata.category(char) in ("Cc", "Cf") else char for char in value
    )


def check_summary(details: dict[str, Any]) -> str:
    """Return the check's findings in one line: each tool's canonical share, and the unmarked calls."""
    parts = [f"{tool['tool']}: {tool['canonical']} of {tool['tasks']} e-mail Tasks carry the canonical key"
             if tool["tasks"] else f"{tool['tool']}: no e-mail Tasks to check"
             for tool in details["tools"]]
    calls = sum(int(user["count"]) for user in details["calls"])
    if calls:
        parts.append(f"{counted(calls, 'call')} {'lacks' if calls == 1 else 'lack'} TaskSubtype Call")
    else:
        parts.append("every call has TaskSubtype Call")
    return "; ".join(parts) + f" (last {details['days']} days). The tabs explain each finding."


class ToolTab(QWidget):
    """One tool's mapping steps, and its numbers and chart after a check."""

    def __init__(
        self, tool: str, field_api_name: str, has_users: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.tool = tool
        steps = "".join(f"<li>{html.escape(step)}</li>" for step in mapping_steps(tool, field_api_name))
        self.steps = QLabel(f"<b>What to map in {tool}</b><ol>{steps}</ol>")
        self.steps.setWordWrap(True)
        self.steps.setTextFormat(Qt.TextFormat.RichText)
        self.steps.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.steps.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.numbers: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setVerticalSpacing(2)
        for key, label in NUMBER_ROWS:
            value = plain_label(NO_VALUE)
            self.numbers[key] = value
            color = FORM_COLORS.get(key)
            swatch = f"<span style='color: {color.name()}'>■</span> " if color is not None else ""
            form.addRow(QLabel(swatch + html.escape(label)), value)
        self.reason = QLabel(
            "Click Check to read the Tasks its users created."
            if has_users else f"No users are named for {tool}: name them in the Cadence tools step to check "
            "its Tasks."
        )
        self.reason.setWordWrap(True)
        # Reasons quote usernames and stored keys, which are org data.
        self.reason.setTextFormat(Qt.TextFormat.PlainText)
        self.chart_view = QChartView()
        self.chart_view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.chart_view.setFixedHeight(CHART_HEIGHT)
        self.chart_view.hide()

        right = QVBoxLayout()
        right.addWidget(QLabel("<b>What the check found</b>"))
        right.addLayout(form)
        right.addWidget(self.chart_view)
        right.addWidget(self.reason)
        right.addStretch(1)
        content = QWidget()
        columns = QHBoxLayout(content)
        columns.addWidget(self.steps, 1)
        columns.addSpacing(12)
        columns.addLayout(right, 1)
        # Long reasons and several examples scroll instead of being clipped.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    def show_coverage(self, tool: dict[str, Any]) -> None:
        """Show a tool's numbers from the step's details, its chart and what they mean."""
        tasks = int(tool["tasks"])
        for key, label in self.numbers.items():
            count = int(tool[key])
            label.setText(f"{count} ({percent(count, tasks)}%)" if key != "tasks" and tasks else str(count))
        usernames = tool["usernames"]
        creators = ", ".join(usernames) if len(usernames) <= 2 else f"{len(usernames)} users"
        self.numbers["tasks"].setText(f"{tasks} created by {creators or NO_VALUE}")
        self.numbers["tasks"].setToolTip(plain_tooltip("\n".join(usernames)))
        self.numbers["tasks"].setWordWrap(True)
        good = tasks > 0 and tool["canonical"] == tasks
        self.numbers["canonical"].setStyleSheet(f"color: {(PASSED_COLOR if good else FAILED_COLOR).name()}")
        # Stored keys come from e-mail headers, which the sender writes, so every value is escaped.
        reason = html.escape(tool["reason"])
        examples = tool.get("examples") or []
        if examples:
            reason += "<br><br>Examples:" + "".join(
                f"<br><code>{html.escape(visible_text(example['value']))}</code>" for example in examples)
        self.reason.setTextFormat(Qt.TextFormat.RichText)
        self.reason.setText(reason)
        self.chart_view.setVisible(tasks > 0)
        if tasks > 0:
            # The view releases the chart it showed before without deleting it.
            previous = self.chart_view.chart()
            self.chart_view.setChart(key_form_chart(tool))
            previous.deleteLater()


class CadenceMappingPage(StepPage):
    """Mapping steps per tool, the window in days, Check, and the findings with charts."""

    step = Step.CADENCE_MAPPING

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Each cadence tool must write the e-mail's Message-ID into the key field, as the steps below "
            "say. Check then reads the Tasks the tools' users created in the last days you choose, and "
            "the calls logged without TaskSubtype Call."
        ))
        self.days = QSpinBox()
        self.days.setRange(1, MAX_COVERAGE_DAYS)
        self.days.setSuffix(" days")
        self.days.setValue(self.run.profile.coverage_days)
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.check)
        row = QHBoxLayout()
        row.addWidget(QLabel("Look back:"))
        row.addWidget(self.days)
        row.addWidget(self.check_button)
        row.addStretch(1)
        self.body.addLayout(row)

        self.tabs = QTabWidget()
        self.body.addWidget(self.tabs, 1)
        self.tool_tabs: dict[str, ToolTab] = {}
        self._calls_tab = self._build_calls_tab()
        self._tab_key: tuple[str, str] | None = None

    def _build_calls_tab(self) -> QWidget:
        tab = QWidget()
        self.calls_reason = plain_label(WHY_CALLS)
        self.calls_reason.setWordWrap(True)
        self.calls_table = QTableWidget(0, len(CALL_COLUMNS))
        self.calls_table.setHorizontalHeaderLabels(CALL_COLUMNS)
        self.calls_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.calls_table.verticalHeader().hide()
        self.calls_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.calls_table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(tab)
        layout.addWidget(self.calls_reason)
        layout.addWidget(self.calls_table, 1)
        return tab

    def enter(self) -> None:
        self._build_tool_tabs()
        super().enter()

    def _build_tool_tabs(self) -> None:
        """Make a tab per tool the profile names users for, or per known tool when it names none."""
        state = self.run.field_state
        field_api_name = state.api_name if state is not None else self.run.profile.field_api_name
        users = self.run.profile.cadence_users
        named = [tool for tool in CADENCE_TOOLS if users.get(tool)]
        # Other users or another field make the numbers shown stale, so the tabs start afresh.
        key = (field_api_name, repr(sorted(users.items())))
        if key == self._tab_key:
            return
        self._tab_key = key
        self.tabs.clear()
        self.calls_table.setRowCount(0)
        self.calls_reason.setText(WHY_CALLS)
        if self.run.checklist.status(self.step) is None:
            self.message.clear()
        for old in self.tool_tabs.values():
            old.deleteLater()
        self.tool_tabs = {}
        for tool in named or CADENCE_TOOLS:
            tab = ToolTab(tool, field_api_name, has_users=tool in named)
            self.tool_tabs[tool] = tab
            self.tabs.addTab(tab, tool)
        self.tabs.addTab(self._calls_tab, "Calls")

    def update_actions(self) -> None:
        ready = self.run.field_state is not None and self.run.connection is not None
        self.check_button.setEnabled(not self.busy and ready)
        self.days.setEnabled(not self.busy)

    def check(self) -> None:
        """Read the tools' Tasks and the calls over the chosen window, on the worker."""
        self.start_job("the cadence mapping check", check_coverage_job, self.run, self.days.value(),
                       on_finished=self._show_result, progress_message="Reading Tasks…", cancellable=True)

    def _show_result(self, result: StepResult) -> None:
        for tool in result.details.get("tools", []):
            tab = self.tool_tabs.get(tool["tool"])
            if tab is not None:
                tab.show_coverage(tool)
                # No e-mail Task proves nothing about the mapping, so it is no pass either.
                gaps = not tool["tasks"] or tool["canonical"] < tool["tasks"]
                self.tabs.setTabText(self.tabs.indexOf(tab), f"{tab.tool} {'✗' if gaps else '✓'}")
        if "calls" in result.details:
            self._show_calls(result.details["calls"], result.details["calls_reason"])
            # The tabs show each finding, so the message line only sums them up. Details has the reason.
            mark = STATUS_MARKS[result.status].split(" ", 1)[0]
            summary = f"{mark} {check_summary(result.details)}"
            self.message.show_message(summary, status_color(result.status), result.reason)
        else:
            self.message.show_result(result)
        self.record_changed()

    def _show_calls(self, calls: list[dict[str, Any]], reason: str) -> None:
        self.calls_reason.setText(reason)
        self.calls_table.setRowCount(len(calls))
        for row, user in enumerate(calls):
            cells = (user["name"], user["username"], str(user["count"]), ", ".join(user["logged_by"]),
                     ", ".join(user["example_ids"]))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tooltip(text))
                self.calls_table.setItem(row, column, item)
        self.calls_table.resizeColumnsToContents()
        total = sum(int(user["count"]) for user in calls)
        self.tabs.setTabText(self.tabs.indexOf(self._calls_tab), f"Calls {'✗' if total else '✓'}")
