"""The Message-ID field page as the admin uses it: properties, flag field, the fix and its blocker scan."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from wizard_driver import FIELD, Confirmation, admin_connection, click, connect, inspect_field, wait_idle

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui.pages.message_id_field import MessageIdFieldPage
from backstory_desktop.gui.widgets import plain_tooltip
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import connect_practice_org
from backstory_desktop.store.settings import load_profiles
from tests.field_access import hide_field_from_admin


def _scan(qtbot: QtBot, window: WizardWindow, page: MessageIdFieldPage) -> None:
    click(qtbot, page.scan_button)
    wait_idle(qtbot, window)


def _blocker_states(page: MessageIdFieldPage) -> list[str]:
    table = page.blocker_table
    column = 3
    return [table.item(row, column).text() for row in range(table.rowCount())]


def _shorten_field(db: Path) -> None:
    """Make the non-unique scenario's field Text(80) and not External ID, as an old setup left it."""
    with PracticeOrg(db, scenario="non-unique") as org:
        admin = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
        (row,) = admin.tooling_query("SELECT Id FROM CustomField WHERE DeveloperName = 'Message_ID'")
        metadata = {"label": "Message ID", "type": "Text", "length": 80, "externalId": False,
                    "unique": False}
        admin.request("PATCH", f"tooling/sobjects/CustomField/{row['Id']}", json={"Metadata": metadata})


def test_field_page__default_org_shows_every_property(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window()
    connect(qtbot, window)

    page = inspect_field(qtbot, window)

    values = {caption: label.text() for caption, label in page.values.items()}
    assert values["Label"] == "Message ID"
    assert values["Type"] == "Text"
    assert values["Length"] == "255"
    assert values["Case sensitivity"] == "case-sensitive"
    assert values["Visible to you"] == "yes, Read and Edit"
    assert values["Description"] == "RFC 5322 Message-ID of the logged e-mail"
    assert values["Room left"] == "99 of 100 custom fields (default limit), 24 of 25 External IDs"
    assert "exists and is visible to you" in page.flag_status.text()
    assert page.fix_box.isHidden()
    assert page.create_box.isHidden()


def test_field_page__blockers_listed_and_unique_withheld(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("non-unique")
    connect(qtbot, window)
    page = inspect_field(qtbot, window)
    assert page.fix_box.isVisible()

    _scan(qtbot, window, page)

    assert sorted(_blocker_states(page)) == ["archived", "in the recycle bin", "live", "live", "live", "live"]
    assert "Unique is not offered: 3 values" in page.blockers_label.text()
    assert page.consequences_label.isVisible()
    assert "View All Data" in page.consequences_label.text()
    assert page.apply_fix_button.isHidden()
    # Nothing but Unique is wrong, so there is nothing else to apply.
    assert page.apply_without_unique_button.isHidden()
    assert window.next_button.isEnabled()


def test_field_page__cleared_blockers_make_unique(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation]
) -> None:
    window = make_window("non-unique")
    connect(qtbot, window)
    page = inspect_field(qtbot, window)
    _scan(qtbot, window, page)
    plan = page._plan
    assert plan is not None
    org = window.context.practice_org
    assert org is not None
    admin = admin_connection(window)
    for blocker in plan.blockers:
        copy = blocker.records[1]
        if copy.deleted:
            org.undelete([copy.record_id])
        admin.request("PATCH", f"sobjects/Task/{copy.record_id}", json={FIELD: None})

    _scan(qtbot, window, page)
    assert page.blocker_table.isHidden()
    assert page.apply_fix_button.text() == "Make Unique…"
    click(qtbot, page.apply_fix_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].lines == ["~ Unique: no -> yes (case-sensitive)"]
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert page.values["Unique"].text() == "yes"
    (change,) = window.context.run.changes
    assert change.summary == f"Changed Activity.{FIELD}"
    described = {entry["name"]: entry for entry in admin.describe("Task")["fields"]}
    assert described[FIELD]["unique"] is True


def test_field_page__short_field_fixed_without_unique(
    qtbot: QtBot, tmp_path: Path, make_window: Callable[..., WizardWindow],
    confirmations: list[Confirmation],
) -> None:
    _shorten_field(tmp_path / "practice-non-unique.sqlite3")
    window = make_window("non-unique")
    connect(qtbot, window)
    page = inspect_field(qtbot, window)
    assert page.values["Length"].text() == "80"

    _scan(qtbot, window, page)
    assert "~ Length: 80 -&gt; 255" in page.plan_label.text()
    assert "~ Unique" not in page.plan_label.text()
    click(qtbot, page.apply_without_unique_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].lines == ["~ Length: 80 -> 255", "~ External ID: no -> yes"]
    assert page.values["Length"].text() == "255"
    assert page.values["External ID"].text() == "yes"
    assert page.values["Unique"].text() == "no"
    # A usable field that is only not Unique lets the admin go on.
    assert window.next_button.isEnabled()


def test_field_page__flag_field_name_saved_and_checked(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window()
    connect(qtbot, window)
    page = inspect_field(qtbot, window)

    page.flag_edit.setText("1st_Flag__c")
    assert page.flag_error.isVisible()
    assert not page.inspect_button.isEnabled()
    page.flag_edit.setText("Logged_by_Backstory__c")
    page.flag_edit.editingFinished.emit()
    assert "press Inspect" in page.flag_status.text()
    click(qtbot, page.inspect_button)
    wait_idle(qtbot, window)

    alias = window.context.run.profile.alias
    assert load_profiles()[alias].flag_field_api_name == "Logged_by_Backstory__c"
    assert "Logged_by_Backstory__c does not exist" in page.flag_status.text()


def test_field_page__create_recorded_in_change_log(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation]
) -> None:
    window = make_window("fresh")
    connect(qtbot, window)
    page = inspect_field(qtbot, window)

    click(qtbot, page.create_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Create the Message-ID field"
    (change,) = window.context.run.changes
    assert change.summary == f"Created Activity.{FIELD}"
    assert page.create_box.isHidden()


def _hide_from_admin(window: WizardWindow) -> None:
    """Delete the System Administrator profile's field permissions on the key field."""
    hide_field_from_admin(admin_connection(window))


def test_field_page__org_text_shown_as_plain_text(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("non-unique")
    connect(qtbot, window)
    admin = admin_connection(window)
    (row,) = admin.tooling_query(f"SELECT Id FROM CustomField WHERE DeveloperName = '{FIELD[:-3]}'")
    label = '<h1 style="color:red">BIG</h1>'
    description = "<a href=x>click</a> <b>bold</b>"
    admin.request("PATCH", f"tooling/sobjects/CustomField/{row['Id']}",
                  json={"Metadata": {"label": label, "description": description}})

    page = inspect_field(qtbot, window)
    _scan(qtbot, window, page)

    for caption in ("Label", "Description"):
        assert page.values[caption].textFormat() is Qt.TextFormat.PlainText
    assert page.values["Label"].text() == label
    assert page.values["Description"].text() == description
    assert page.flag_status.textFormat() is Qt.TextFormat.PlainText
    tooltip = page.blocker_table.item(0, 0).toolTip()
    value = page.blocker_table.item(0, 0).text()
    assert tooltip == f"<p style='white-space:pre-wrap'>{html.escape(value)}</p>"


def test_field_page__other_case_shows_org_spelling(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window()
    connect(qtbot, window)
    page = window.page(Step.MESSAGE_ID_FIELD)
    assert isinstance(page, MessageIdFieldPage)
    page.name_edit.setText("message_id__c")

    page = inspect_field(qtbot, window)

    assert page.name_edit.text() == FIELD
    assert page.values["Label"].text() == "Message ID"
    assert "org spells it Message_ID__c" in page.message.label.text()
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED


def test_field_page__hidden_field_granted_before_scan(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], confirmations: list[Confirmation]
) -> None:
    window = make_window("non-unique")
    connect(qtbot, window)
    _hide_from_admin(window)
    page = inspect_field(qtbot, window)
    assert page.values["Visible to you"].text() == "no: hidden by field-level security"

    _scan(qtbot, window, page)
    assert page.blocker_table.isHidden()
    assert "hidden from you" in page.message.label.text()
    assert page.apply_fix_button.text() == "Grant access…"
    click(qtbot, page.apply_fix_button)
    wait_idle(qtbot, window)

    quoted = '"Backstory Message ID Access"'
    assert confirmations[-1].lines == [
        f"+ Create permission set {quoted} (API name Backstory_Message_ID_Access).",
        f"+ Add field permission Read and Edit on Task.{FIELD} to {quoted}.",
        f"+ Add field permission Read and Edit on Event.{FIELD} to {quoted}.",
        f"+ Assign {quoted} to {window.context.run.profile.username}."]
    assert page.values["Visible to you"].text() == "yes, Read and Edit"
    assert page.fix_box.isVisible()
    _scan(qtbot, window, page)
    assert "Unique is not offered: 3 values" in page.blockers_label.text()


def test_field_page__blocked_grant_withholds_fix(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("non-unique")
    connect(qtbot, window)
    _hide_from_admin(window)
    admin_connection(window).request("POST", "sobjects/PermissionSet", json={
        "Name": "Backstory_Message_ID_Access", "Label": "Backstory Message ID Access",
        "PermissionsModifyAllData": True})
    page = inspect_field(qtbot, window)

    _scan(qtbot, window, page)

    assert page.plan_label.text().startswith("Once the permission set may be reused")
    assert "also grants Modify All Data" in page.warnings_label.text()
    assert page.warnings_label.isVisible()
    assert "cannot be granted" in page.message.label.text()
    assert page.apply_fix_button.isHidden()


def test_field_page__room_left_says_at_most_with_hidden_fields(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window()
    connect(qtbot, window)
    admin = admin_connection(window)
    admin.request("POST", "tooling/sobjects/CustomField", json={
        "FullName": "Activity.Hidden_Key__c",
        "Metadata": {"label": "Hidden Key", "type": "Text", "length": 20, "externalId": True}})

    page = inspect_field(qtbot, window)

    assert page.values["Room left"].text() == (
        "98 of 100 custom fields (default limit), at most 24 of 25 External IDs. 1 Activity field is "
        f"hidden from {window.context.run.profile.username} by field-level security, so it was not "
        "checked for External ID.")


def test_field_page__long_values_block_the_type_change(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window("fresh")
    connect(qtbot, window)
    admin = admin_connection(window)
    admin.request("POST", "tooling/sobjects/CustomField", json={
        "FullName": "Activity.Other_Key__c",
        "Metadata": {"label": "Other Key", "type": "LongTextArea", "length": 32768, "visibleLines": 3}})
    (profile_set,) = admin.query_all(
        "SELECT Id FROM PermissionSet WHERE Profile.Name = 'System Administrator'")
    for sobject in ("Task", "Event"):
        admin.request("POST", "sobjects/FieldPermissions", json={
            "ParentId": profile_set["Id"], "SobjectType": sobject, "Field": f"{sobject}.Other_Key__c",
            "PermissionsRead": True, "PermissionsEdit": True})
    long_value = "<" + "x" * 300 + "@mail.example>"
    admin.request("POST", "sobjects/Task", json={"Subject": "long", "Other_Key__c": long_value})
    page = window.page(Step.MESSAGE_ID_FIELD)
    assert isinstance(page, MessageIdFieldPage)
    page.name_edit.setText("Other_Key__c")

    page = inspect_field(qtbot, window)
    _scan(qtbot, window, page)

    assert "The change to Text(255) is not offered: 1 value is longer than 255" in page.blockers_label.text()
    assert page.blocker_table.rowCount() == 1
    assert page.blocker_table.item(0, 3).text() == "live"
    assert page.blocker_table.item(0, 4).text() == f"Text(255): {len(long_value)} characters"
    assert page.blocker_table.item(0, 0).toolTip() == plain_tooltip(long_value)
    assert page.apply_fix_button.isHidden()
    assert page.apply_without_unique_button.isHidden()
    assert "1 value is longer than 255 characters" in page.message.label.text()
