"""Cadence tools: which of Outreach, SalesLoft and SendBloom the org uses, and the users they log as."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.records import UserRef
from backstory_desktop.enablement import EnablementRun
from backstory_desktop.enablement.cadence import check_saved_cadence_tools
from backstory_desktop.gui.pages.base import StepPage, WizardContext
from backstory_desktop.gui.pages.integration_user import load_users_job, picker_order
from backstory_desktop.gui.widgets import NEUTRAL_COLOR, note, plain_tooltip
from backstory_desktop.store.settings import CADENCE_TOOLS

NO_TOOL_HINT = "Tick the cadence tools the org uses, or skip this step if it uses none."


def check_saved_tools_job(
    run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Check the users the org profile already names in the org, on the worker; nothing is saved."""
    return check_saved_cadence_tools(run)


def save_tools_job(
    run: EnablementRun, users: dict[str, list[str]], *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Check the chosen users in the org and save them in the org profile, on the worker."""
    return enablement.record_cadence_tools(run, users)


def two_line_label(user: UserRef) -> str:
    """Return the list's text for a user: the name, marked when inactive, over the username."""
    name = user.name or user.username
    return f"{name}{'' if user.is_active else ', inactive'}\n{user.username}"


def suggested_usernames(tool: str, users: list[UserRef]) -> list[str]:
    """Return the active users whose username or name contains the tool's name, in any case."""
    word = tool.casefold()
    return [user.username for user in users
            if user.is_active and word in f"{user.username} {user.name}".casefold()]


def tab_title(box: ToolUsersBox) -> str:
    """Return a tool's tab title: "Outreach: 2 users", or "SalesLoft: not used"."""
    if not box.isChecked():
        return f"{box.tool}: not used"
    count = len(box.chosen_usernames())
    return f"{box.tool}: {count} user{'' if count == 1 else 's'}"


class ToolUsersBox(QGroupBox):
    """A tool's tick box with a filterable list of the org's users to tick."""

    def __init__(self, tool: str, parent: QWidget | None = None) -> None:
        super().__init__(tool, parent)
        self.tool = tool
        self.setCheckable(True)
        self.setChecked(False)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Type to filter users")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter)
        self.user_list = QListWidget()
        self.user_list.setUniformItemSizes(True)
        self.user_list.setSpacing(2)
        self.user_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.user_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chosen_label = QLabel()
        self.chosen_label.setWordWrap(True)
        # Room for two lines in every box, so the three lists keep one height.
        self.chosen_label.setMinimumHeight(2 * self.chosen_label.fontMetrics().lineSpacing() + 4)
        self.chosen_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.user_list, 1)
        layout.addWidget(self.chosen_label)
        self.user_list.itemChanged.connect(lambda _item: self._show_chosen())
        self.toggled.connect(lambda _on: self._show_chosen())
        self._show_chosen()

    def set_users(self, users: list[UserRef], chosen: list[str]) -> None:
        """Fill the list with the org's users, ticking those in ``chosen``."""
        wanted = {name.casefold() for name in chosen}
        self.user_list.blockSignals(True)
        self.user_list.clear()
        for user in users:
            item = QListWidgetItem(two_line_label(user))
            item.setData(Qt.ItemDataRole.UserRole, user.username)
            item.setToolTip(plain_tooltip(user.username))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = user.username.casefold() in wanted
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.user_list.addItem(item)
        self.user_list.blockSignals(False)
        self._filter(self.filter_edit.text())
        self._show_chosen()
        self.scroll_to_first_chosen()

    def scroll_to_first_chosen(self) -> None:
        """Scroll the list so the first ticked user is in sight."""
        for row in range(self.user_list.count()):
            item = self.user_list.item(row)
            if item.checkState() is Qt.CheckState.Checked:
                self.user_list.scrollToItem(item, QAbstractItemView.ScrollHint.PositionAtCenter)
                return

    def chosen_usernames(self) -> list[str]:
        """Return the ticked users' usernames, in list order."""
        items = (self.user_list.item(row) for row in range(self.user_list.count()))
        return [str(item.data(Qt.ItemDataRole.UserRole)) for item in items
                if item.checkState() is Qt.CheckState.Checked]

    def choose(self, usernames: list[str]) -> None:
        """Tick the users with these usernames, leaving the others as they are."""
        wanted = {name.casefold() for name in usernames}
        for row in range(self.user_list.count()):
            item = self.user_list.item(row)
            if str(item.data(Qt.ItemDataRole.UserRole)).casefold() in wanted:
                item.setCheckState(Qt.CheckState.Checked)
        self.scroll_to_first_chosen()

    def _filter(self, text: str) -> None:
        words = text.casefold().split()
        for row in range(self.user_list.count()):
            item = self.user_list.item(row)
            label = item.text().casefold()
            # A ticked user stays in sight, so a filter never hides a choice.
            ticked = item.checkState() is Qt.CheckState.Checked
            item.setHidden(not ticked and not all(word in label for word in words))

    def _show_chosen(self) -> None:
        chosen = self.chosen_usernames()
        if not self.isChecked():
            text = "Not used."
        elif chosen:
            text = "Logs as: " + ", ".join(chosen)
        else:
            text = f"Tick the users {self.tool} logs Tasks as."
        self.chosen_label.setText(text)


class CadenceToolsPage(StepPage):
    """A tab per cadence tool with its users, and Save.

    Each tool has the page's whole width, so full usernames show. The tab's title counts
    the users the tool logs as. Opening the page with tools saved in the org profile
    checks them against the org, so the step passes without saving them again.
    """

    step = Step.CADENCE_TOOLS

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.body.addWidget(note(
            "Tick each cadence tool that logs e-mails and calls in this org, and the Salesforce users "
            "it logs them as: its integration user, or each rep when reps connect their own accounts. "
            "The mapping check later reads the Tasks these users created."
        ))
        self.tabs = QTabWidget()
        self.boxes: dict[str, ToolUsersBox] = {}
        for tool in CADENCE_TOOLS:
            box = ToolUsersBox(tool)
            box.setTitle(f"{tool} logs Tasks in this org")
            box.toggled.connect(lambda on, box=box: self._tool_toggled(box, on))
            box.user_list.itemChanged.connect(lambda _item: self.update_actions())
            self.boxes[tool] = box
            self.tabs.addTab(box, tool)
        self.body.addWidget(self.tabs, 1)

        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        palette = self.hint.palette()
        palette.setColor(self.hint.foregroundRole(), NEUTRAL_COLOR)
        self.hint.setPalette(palette)
        save_row = QHBoxLayout()
        save_row.addWidget(self.hint, 1)
        save_row.addWidget(self.save_button)
        self.body.addLayout(save_row)
        self._users: list[UserRef] = []
        self._users_loaded = False
        self._saved_before: dict[str, list[str]] = {}

    def enter(self) -> None:
        super().enter()
        if not self._users_loaded and not self.busy:
            self.start_job("the user list", load_users_job, self.run, on_finished=self._show_users,
                           progress_message="Reading the org's users…")

    def _show_users(self, users: list[UserRef]) -> None:
        self._users_loaded = True
        self._users = sorted(users, key=picker_order)
        saved = self.run.profile.cadence_users
        for tool, box in self.boxes.items():
            box.blockSignals(True)
            box.setChecked(bool(saved.get(tool)))
            box.blockSignals(False)
            box.set_users(self._users, saved.get(tool, []))
        first_used = next((box for box in self.boxes.values() if box.isChecked()), None)
        if first_used is not None:
            self.tabs.setCurrentWidget(first_used)
        self.update_actions()
        if any(saved.values()) and self.run.checklist.status(self.step) is None:
            # Tools saved in an earlier session: check them against this org, without saving again.
            self.start_job("the check of saved cadence tools", check_saved_tools_job, self.run,
                           on_finished=self._show_saved_check, progress_message="Checking the saved users…")

    def _show_saved_check(self, result: StepResult) -> None:
        self.message.show_result(result)
        self.record_changed()

    def _tool_toggled(self, box: ToolUsersBox, on: bool) -> None:
        if on and not box.chosen_usernames():
            box.choose(suggested_usernames(box.tool, self._users))
        self.update_actions()

    def chosen_users(self) -> dict[str, list[str]]:
        """Return the ticked users of each ticked tool."""
        return {tool: box.chosen_usernames() for tool, box in self.boxes.items() if box.isChecked()}

    def update_actions(self) -> None:
        for index in range(self.tabs.count()):
            box = self.tabs.widget(index)
            if isinstance(box, ToolUsersBox):
                self.tabs.setTabText(index, tab_title(box))
        chosen = self.chosen_users()
        empty = [tool for tool, names in chosen.items() if not names]
        if not chosen:
            self.hint.setText(NO_TOOL_HINT)
        elif empty:
            self.hint.setText(f"Tick at least one user for {', '.join(empty)}, or untick the tool.")
        else:
            self.hint.setText("")
        for box in self.boxes.values():
            box.setEnabled(not self.busy and self._users_loaded)
        self.save_button.setEnabled(not self.busy and self._users_loaded and bool(chosen) and not empty)

    def save(self) -> None:
        """Check the chosen users in the org and save them in the org profile, on the worker."""
        self._saved_before = dict(self.run.profile.cadence_users)
        self.start_job("the cadence tools save", save_tools_job, self.run, self.chosen_users(),
                       on_finished=self._show_result, progress_message="Checking the users in the org…")

    def _show_result(self, result: StepResult) -> None:
        if self.run.profile.cadence_users != self._saved_before:
            # The mapping check read other users' Tasks, so its result no longer holds.
            self.run.checklist.forget(Step.CADENCE_MAPPING)
        self.message.show_result(result)
        self.record_changed()
