"""The Cadence tools and Cadence-tool mapping pages, driven by their controls against a practice org."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCharts import QChart, QHorizontalStackedBarSeries
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from wizard_driver import admin_connection, click, connect, inspect_field, wait_idle

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui.pages.cadence_mapping import CadenceMappingPage, visible_text
from backstory_desktop.gui.pages.cadence_tools import CadenceToolsPage
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.seed import OUTREACH_USERNAME, SALESLOFT_USERNAME
from backstory_desktop.store.settings import PRACTICE_PROFILE_ALIAS, OrgProfile, load_profiles, save_profile

FIELD = "Message_ID__c"


def open_cadence_tools(qtbot: QtBot, window: WizardWindow) -> CadenceToolsPage:
    """Connect and open Cadence tools, waiting for its user list."""
    window.show()
    page = window.page(Step.CONNECT)
    click(qtbot, page.connect_button)  # type: ignore[attr-defined]
    wait_idle(qtbot, window)
    click(qtbot, window.next_button)
    wait_idle(qtbot, window)
    tools = window.page(Step.CADENCE_TOOLS)
    assert isinstance(tools, CadenceToolsPage)
    assert window.current_step is Step.CADENCE_TOOLS
    return tools


def save_outreach(qtbot: QtBot, window: WizardWindow) -> CadenceToolsPage:
    tools = open_cadence_tools(qtbot, window)
    tools.boxes["Outreach"].setChecked(True)
    click(qtbot, tools.save_button)
    wait_idle(qtbot, window)
    return tools


def test_cadence_tools__save_waits_for_a_user(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    window = make_window("default")
    tools = open_cadence_tools(qtbot, window)
    assert not tools.save_button.isEnabled()
    assert tools.hint.text().startswith("Tick the cadence tools")

    tools.boxes["SendBloom"].setChecked(True)

    assert tools.boxes["SendBloom"].chosen_usernames() == []
    assert not tools.save_button.isEnabled()
    assert "Tick at least one user for SendBloom" in tools.hint.text()
    assert window.skip_button.isVisible()


def test_cadence_tools__tool_name_suggests_its_user(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    tools = open_cadence_tools(qtbot, window)

    tools.boxes["Outreach"].setChecked(True)

    assert tools.boxes["Outreach"].chosen_usernames() == [OUTREACH_USERNAME]
    assert tools.save_button.isEnabled()
    assert OUTREACH_USERNAME in tools.boxes["Outreach"].chosen_label.text()


def test_cadence_tools__filter_keeps_ticked_users(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    tools = open_cadence_tools(qtbot, window)
    box = tools.boxes["Outreach"]
    box.setChecked(True)

    box.filter_edit.setText("finley ELLIS")

    shown = [box.user_list.item(row) for row in range(box.user_list.count())
             if not box.user_list.item(row).isHidden()]
    assert [item.text().splitlines()[0] for item in shown] == ["Finley Ellis", "Outreach Integration"]
    box.filter_edit.clear()
    assert all(not box.user_list.item(row).isHidden() for row in range(box.user_list.count()))


def test_cadence_tools__save_stores_users_in_profile(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")

    save_outreach(qtbot, window)

    run = window.context.run
    assert run.checklist.status(Step.CADENCE_TOOLS) is StepStatus.PASSED
    assert run.profile.cadence_users == {"Outreach": [OUTREACH_USERNAME]}
    assert load_profiles()[run.profile.alias].cadence_users == {"Outreach": [OUTREACH_USERNAME]}
    assert window.next_button.isEnabled()


def test_cadence_tools__saved_tools_pass_without_saving_again(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    save_profile(OrgProfile(alias=PRACTICE_PROFILE_ALIAS, kind="practice",
                            cadence_users={"Outreach": [OUTREACH_USERNAME]}))
    window = make_window("default")

    tools = open_cadence_tools(qtbot, window)
    wait_idle(qtbot, window)

    run = window.context.run
    assert run.checklist.status(Step.CADENCE_TOOLS) is StepStatus.PASSED
    assert f"Outreach logs as {OUTREACH_USERNAME}" in run.checklist.results[Step.CADENCE_TOOLS].reason
    assert tools.boxes["Outreach"].isChecked()
    assert tools.tabs.tabText(0) == "Outreach: 1 user"
    assert tools.tabs.tabText(1) == "SalesLoft: not used"
    assert window.next_button.isEnabled()


def test_cadence_tools__full_usernames_show_at_1100_by_720(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    window.resize(1100, 720)
    tools = open_cadence_tools(qtbot, window)
    box = tools.boxes["Outreach"]
    box.setChecked(True)
    qtbot.wait(50)

    metrics = box.user_list.fontMetrics()
    usernames = [str(box.user_list.item(row).data(Qt.ItemDataRole.UserRole))
                 for row in range(box.user_list.count())]
    longest = max(metrics.horizontalAdvance(name) for name in usernames)
    check_box_room = 3 * metrics.height()
    assert longest + check_box_room <= box.user_list.viewport().width()


def open_mapping(qtbot: QtBot, window: WizardWindow) -> CadenceMappingPage:
    """Name the Outreach user, inspect the field, and open Cadence-tool mapping."""
    save_outreach(qtbot, window)
    click(qtbot, window.next_button)
    inspect_field(qtbot, window)
    window.show_step(Step.CADENCE_MAPPING)
    page = window.page(Step.CADENCE_MAPPING)
    assert isinstance(page, CadenceMappingPage)
    return page


def test_cadence_mapping__tabs_follow_the_named_tools(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    page = open_mapping(qtbot, window)

    assert [page.tabs.tabText(index) for index in range(page.tabs.count())] == ["Outreach", "Calls"]
    steps = page.tool_tabs["Outreach"].steps.text()
    assert FIELD in steps
    assert "CRM Plugin Settings" in steps
    assert page.days.value() == 30


def test_cadence_mapping__check_shows_counts_chart_and_calls(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    page = open_mapping(qtbot, window)
    page.days.setValue(45)

    click(qtbot, page.check_button)
    wait_idle(qtbot, window)

    run = window.context.run
    assert run.checklist.status(Step.CADENCE_MAPPING) is StepStatus.FAILED
    assert window.next_button.isEnabled(), "a failed check may be left: the tools are fixed elsewhere"
    keys = [row[FIELD] for row in admin_connection(window).query_all(
        f"SELECT {FIELD} FROM Task WHERE CreatedBy.Username = '{OUTREACH_USERNAME}' "
        "AND CreatedDate = LAST_N_DAYS:45 AND TaskSubtype = 'Email'")]
    bare = sum(1 for key in keys if key and not key.startswith("<"))
    tab = page.tool_tabs["Outreach"]
    assert tab.numbers["tasks"].text().startswith(f"{len(keys)} created by {OUTREACH_USERNAME}")
    assert tab.numbers["without_brackets"].text().startswith(f"{bare} (")
    assert page.tabs.tabText(0) == "Outreach ✗"

    chart = tab.chart_view.chart()
    assert isinstance(chart, QChart)
    [series] = chart.series()
    assert isinstance(series, QHorizontalStackedBarSeries)
    bars = {bar_set.label(): int(bar_set.at(0)) for bar_set in series.barSets()}
    assert bars == {"Canonical": len(keys) - bare, "No angle brackets": bare}

    message = page.message.label.text()
    assert f"Outreach: {len(keys) - bare} of {len(keys)} e-mail Tasks carry the canonical key" in message
    assert "2 calls lack TaskSubtype Call (last 45 days)" in message

    owners = [page.calls_table.item(row, 1).text() for row in range(page.calls_table.rowCount())]
    assert len(owners) == 2
    assert "unanswered ones" in page.calls_reason.text()
    assert run.profile.coverage_days == 45


def test_cadence_mapping__tool_without_tasks_is_no_pass(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    page = open_mapping(qtbot, window)
    window.context.run.profile.cadence_users["SalesLoft"] = [SALESLOFT_USERNAME]
    window.show_step(Step.CADENCE_MAPPING)

    click(qtbot, page.check_button)
    wait_idle(qtbot, window)

    titles = [page.tabs.tabText(index) for index in range(page.tabs.count())]
    assert "SalesLoft ✗" in titles
    assert page.tool_tabs["SalesLoft"].numbers["tasks"].text().startswith("0 created by")
    assert "SalesLoft: no e-mail Tasks to check" in page.message.label.text()


def test_cadence_mapping__hostile_key_is_shown_as_text(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    page = open_mapping(qtbot, window)
    admin = admin_connection(window)
    outreach = next(iter(admin.query_all(f"SELECT Id FROM User WHERE Username = '{OUTREACH_USERNAME}'")))
    task = next(iter(admin.query_all(
        f"SELECT Id FROM Task WHERE CreatedById = '{outreach['Id']}' AND {FIELD} LIKE '<%' LIMIT 1")))
    admin.request("PATCH", f"sobjects/Task/{task['Id']}", json={FIELD: "<b>bold</b>@x.example"})

    click(qtbot, page.check_button)
    wait_idle(qtbot, window)

    reason = page.tool_tabs["Outreach"].reason.text()
    assert "&lt;b&gt;bold&lt;/b&gt;@x.example" in reason
    assert "<b>bold" not in reason


def test_cadence_mapping__no_tools_named_shows_every_tool(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    connect(qtbot, window)
    inspect_field(qtbot, window)
    window.show_step(Step.CADENCE_MAPPING)
    page = window.page(Step.CADENCE_MAPPING)
    assert isinstance(page, CadenceMappingPage)

    assert [page.tabs.tabText(index) for index in range(page.tabs.count())] == [
        "Outreach", "SalesLoft", "SendBloom", "Calls"]
    assert "No users are named for SalesLoft" in page.tool_tabs["SalesLoft"].reason.text()


def test_cadence_mapping__new_tool_users_clear_result(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("default")
    page = open_mapping(qtbot, window)
    click(qtbot, page.check_button)
    wait_idle(qtbot, window)
    assert page.calls_table.rowCount() == 2

    window.show_step(Step.CADENCE_TOOLS)
    tools = window.page(Step.CADENCE_TOOLS)
    assert isinstance(tools, CadenceToolsPage)
    tools.boxes["SendBloom"].setChecked(True)
    tools.boxes["SendBloom"].choose(["integration@practice.backstory.example"])
    click(qtbot, tools.save_button)
    wait_idle(qtbot, window)
    window.show_step(Step.CADENCE_MAPPING)

    assert window.context.run.checklist.status(Step.CADENCE_MAPPING) is None
    tabs = [page.tabs.tabText(index) for index in range(page.tabs.count())]
    assert tabs == ["Outreach", "SendBloom", "Calls"]
    assert page.tool_tabs["Outreach"].numbers["tasks"].text() == "-"
    assert page.calls_table.rowCount() == 0


def test_visible_text__spells_out_invisible_characters() -> None:
    assert visible_text("<a\u202eb@x.example>") == "<a<U+202E>b@x.example>"
    assert visible_text("<plain@x.example>") == "<plain@x.example>"
