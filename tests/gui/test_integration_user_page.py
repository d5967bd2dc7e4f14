"""The Integration user page: sources that grant and mute, the fix dialog, and the cadence tools' users."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot
from simple_salesforce import format_soql
from wizard_driver import (
    FIELD,
    Confirmation,
    admin_connection,
    click,
    open_step_after_field,
    wait_idle,
)

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui.pages.integration_user import (
    COLUMNS,
    SOURCES_COLUMN,
    AccessFixDialog,
    IntegrationUserPage,
    load_users_job,
)
from backstory_desktop.gui.widgets import plain_tooltip
from backstory_desktop.gui.wizard import WizardWindow

SALES_OPS = "salesops@practice.backstory.example"
SALESLOFT = "salesloft@practice.backstory.example"
OUTREACH = "outreach@practice.backstory.example"
MUTED = "muted by group Sales Operations (muting permission set Sales Operations Muted)"
SALESLOFT_SET_LABEL = f"Backstory Access for {SALESLOFT}"


def user_page(qtbot: QtBot, window: WizardWindow) -> IntegrationUserPage:
    return open_step_after_field(qtbot, window, Step.INTEGRATION_USER, IntegrationUserPage)


def check_user(qtbot: QtBot, window: WizardWindow, page: IntegrationUserPage, username: str) -> None:
    page.users.setCurrentIndex(page.users.findData(username))
    click(qtbot, page.check_button)
    wait_idle(qtbot, window)


def open_fix_dialog(
    qtbot: QtBot, window: WizardWindow, page: IntegrationUserPage, username: str
) -> AccessFixDialog:
    """Check ``username`` on the page and open the Fix access dialog for it."""
    check_user(qtbot, window, page, username)
    click(qtbot, page.grant_button)
    wait_idle(qtbot, window)
    dialog = page.fix_dialog
    assert dialog is not None
    return dialog


def row_of(page: IntegrationUserPage, name: str) -> int:
    names = [page.table.item(row, 0).text() for row in range(page.table.rowCount())]
    return names.index(name)


def system_set_flags(window: WizardWindow) -> dict[str, bool]:
    soql = format_soql("SELECT PermissionsViewAllData, PermissionsViewAllUsers FROM PermissionSet "
                       "WHERE Label = {}", SALESLOFT_SET_LABEL)
    (row,) = list(admin_connection(window).query_all(soql))
    return {"View All Data": bool(row["PermissionsViewAllData"]),
            "View All Users": bool(row["PermissionsViewAllUsers"])}


def test_report__muted_source_and_expired_assignment(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = user_page(qtbot, window)

    check_user(qtbot, window, page, SALES_OPS)
    edit = row_of(page, f"Edit on {FIELD}")

    assert COLUMNS[SOURCES_COLUMN] == "By what"
    assert page.table.item(edit, 1).text() == "✗ missing"
    assert page.table.item(edit, SOURCES_COLUMN).text() == f"✗ {MUTED}"
    assert page.table.item(row_of(page, f"Read on {FIELD}"), SOURCES_COLUMN).text() == (
        "permission set group Sales Operations (through permission set Activity Reporting)")
    assert page.ignored.isVisible()
    assert "permission set Quarter End Cleanup: expired on " in page.ignored.text()


def test_fix_dialog__only_required_pre_ticked(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("non-unique")
    page = user_page(qtbot, window)

    dialog = open_fix_dialog(qtbot, window, page, SALESLOFT)

    assert dialog.isVisible()
    assert sorted(dialog.boxes) == ["PermissionsViewAllData", "PermissionsViewAllUsers"]
    assert dialog.boxes["PermissionsViewAllData"].isChecked(), "required while the field is not Unique"
    assert not dialog.boxes["PermissionsViewAllUsers"].isChecked()
    assert "View All Data" in dialog.diff.text()
    assert "View All Users" not in dialog.diff.text()
    dialog.boxes["PermissionsViewAllUsers"].setChecked(True)
    assert "Enable system permission View All Users" in dialog.diff.text()


def test_fix_dialog__applies_only_ticked(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("non-unique")
    page = user_page(qtbot, window)
    dialog = open_fix_dialog(qtbot, window, page, SALESLOFT)

    click(qtbot, dialog.apply_button)
    wait_idle(qtbot, window)

    assert window.context.run.checklist.status(Step.INTEGRATION_USER) is StepStatus.PASSED
    assert system_set_flags(window) == {"View All Data": True, "View All Users": False}
    assert page.table.item(row_of(page, "View All Data"), SOURCES_COLUMN).text() == (
        f"permission set {SALESLOFT_SET_LABEL}")
    (change,) = window.context.run.changes
    assert "View All Data" in change.summary
    assert page.fix_dialog is None


def test_fix_dialog__nothing_ticked_disables_apply(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("non-unique")
    page = user_page(qtbot, window)
    # The outreach user has Read and Edit on the field, so only system permissions are missing.
    dialog = open_fix_dialog(qtbot, window, page, OUTREACH)

    for checkbox in dialog.boxes.values():
        checkbox.setChecked(False)

    assert dialog.boxes
    assert "Tick at least one permission to grant." in dialog.diff.text()
    assert "No change" not in dialog.diff.text()
    assert not dialog.apply_button.isEnabled()
    dialog.boxes["PermissionsViewAllData"].setChecked(True)
    assert dialog.apply_button.isEnabled()


def test_fix_dialog__cancel_changes_nothing(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("non-unique")
    page = user_page(qtbot, window)
    dialog = open_fix_dialog(qtbot, window, page, SALESLOFT)

    dialog.reject()
    wait_idle(qtbot, window)

    assert page.message.label.text() == "Nothing was changed."
    assert window.context.run.changes == []
    assert window.context.run.checklist.status(Step.INTEGRATION_USER) is StepStatus.FAILED


def test_cadence_users__failing_user_fixed(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = user_page(qtbot, window)
    # Saved after the Cadence tools step was skipped, as a profile from an earlier session would hold them.
    window.context.run.profile.cadence_users = {"Outreach": [OUTREACH], "SalesLoft": [SALESLOFT]}
    check_user(qtbot, window, page, SALES_OPS)

    assert page.cadence_labels[OUTREACH].text() == "✓ has what its upserts need"
    assert page.cadence_labels[SALESLOFT].text() == f"✗ lacks Read on {FIELD}, Edit on {FIELD}"
    assert sorted(page.cadence_buttons) == [SALESLOFT]
    assert f"SalesLoft user {SALESLOFT} lacks" in page.message.label.text()

    # A layout shows a widget added to a shown page on the next event loop turn.
    qtbot.waitUntil(page.cadence_buttons[SALESLOFT].isVisible)
    click(qtbot, page.cadence_buttons[SALESLOFT])
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Grant field access"
    assert confirmations[-1].lines == [
        '+ Create permission set "Backstory Message ID Access" (API name Backstory_Message_ID_Access).',
        f'+ Add field permission Read and Edit on Task.{FIELD} to "Backstory Message ID Access".',
        f'+ Add field permission Read and Edit on Event.{FIELD} to "Backstory Message ID Access".',
        f'+ Assign "Backstory Message ID Access" to {SALESLOFT}.',
    ]
    assert page.cadence_labels[SALESLOFT].text() == "✓ has what its upserts need"
    assert page.cadence_buttons == {}
    assert "SalesLoft" not in page.message.label.text()


def test_cadence_users__none_saved_says_where(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = user_page(qtbot, window)

    texts = [page.cadence_grid.itemAt(index).widget().text() for index in range(page.cadence_grid.count())]

    assert texts == ["No cadence tool users are saved for this org: name them on the Cadence tools page, "
                     "then check again."]


MARKUP = '<h1 style="color:red">BIG</h1><a href=x>click</a>'


def create_user_with_markup(window: WizardWindow) -> str:
    """Create a user whose last name and permission set label hold markup, through the API."""
    conn = admin_connection(window)
    (profile,) = list(conn.query_all("SELECT Id FROM Profile WHERE Name = 'Standard User'"))
    username = "markup@practice.backstory.example"
    user = conn.request("POST", "sobjects/User", json={
        "Username": username, "LastName": MARKUP, "Email": username, "Alias": "markup",
        "ProfileId": profile["Id"]})
    permission_set = conn.request("POST", "sobjects/PermissionSet", json={
        "Name": "Markup_Set", "Label": MARKUP[:80], "PermissionsViewAllUsers": True})
    conn.request("POST", "sobjects/PermissionSetAssignment",
                 json={"AssigneeId": user["id"], "PermissionSetId": permission_set["id"]})
    return username


def test_org_text__shown_as_plain_text(
    qtbot: QtBot, make_window: Callable[..., WizardWindow],
) -> None:
    window = make_window("default")
    page = user_page(qtbot, window)
    username = create_user_with_markup(window)
    window.context.run.profile.cadence_users = {"SendBloom": [username]}
    # The page read the users before this one existed: read them again.
    page.start_job("list users", load_users_job, page.run, on_finished=page._show_users)
    wait_idle(qtbot, window)

    check_user(qtbot, window, page, username)
    sources = page.table.item(row_of(page, "View All Users"), SOURCES_COLUMN)
    shown = [label for label in page.findChildren(QLabel) if "<h1" in label.text()]

    assert MARKUP in page.profile.text()
    assert sources.text() == f"permission set {MARKUP[:80]}"
    assert sources.toolTip() == plain_tooltip(sources.text())
    assert shown, "the user's name is on the page"
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in shown)
    assert page.cadence_labels[username].textFormat() == Qt.TextFormat.PlainText


def test_fix__set_granting_more_not_reused(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation],
) -> None:
    window = make_window("default")
    page = user_page(qtbot, window)
    admin_connection(window).request("POST", "sobjects/PermissionSet", json={
        "Name": "Backstory_Message_ID_Access", "Label": "Backstory Message ID Access",
        "PermissionsModifyAllData": True})
    org = window.context.practice_org
    assert org is not None
    check_user(qtbot, window, page, org.integration_username)

    click(qtbot, page.grant_button)
    wait_idle(qtbot, window)

    assert confirmations == []
    assert page.message.label.text() == (
        "The existing permission set Backstory_Message_ID_Access also grants Modify All Data, so it is "
        "not reused: remove that from it in Setup, or change its API name, then plan again.")
    assert window.context.run.changes == []
