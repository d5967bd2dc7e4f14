"""A field created but hidden from the admin (a create cut short) is finished by the page's Fix box."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot
from wizard_driver import Confirmation, click, connect, inspect_field, wait_idle

from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import connect_practice_org
from backstory_desktop.salesforce.schema import inspect_message_id_field


def _create_field_without_access(db: Path) -> None:
    with PracticeOrg(db, scenario="fresh") as org:
        admin = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
        metadata = {"label": "Message ID", "type": "Text", "length": 255, "unique": True,
                    "externalId": True, "caseSensitive": False}
        admin.request("POST", "tooling/sobjects/CustomField",
                      json={"FullName": "Activity.Message_ID__c", "Metadata": metadata})


def test_field_page__hidden_field_is_finished_not_created_again(
    qtbot: QtBot, tmp_path: Path, make_window: Callable[..., WizardWindow],
    confirmations: list[Confirmation],
) -> None:
    _create_field_without_access(tmp_path / "practice-fresh.sqlite3")
    window = make_window("fresh")
    connect(qtbot, window)

    page = inspect_field(qtbot, window)
    assert page.create_box.isHidden()
    assert page.values["Visible to you"].text() == "no: hidden by field-level security"
    assert page.case_insensitive.isChecked()
    click(qtbot, page.scan_button)
    wait_idle(qtbot, window)
    assert page.apply_fix_button.text() == "Grant access…"
    click(qtbot, page.apply_fix_button)
    wait_idle(qtbot, window)

    assert confirmations[-1].title == "Fix the Message-ID field"
    assert confirmations[-1].lines[0].startswith('+ Create permission set "Backstory Message ID Access"')
    assert '+ Add field permission Read and Edit on Task.Message_ID__c to "Backstory Message ID Access".' \
        in confirmations[-1].lines
    assert window.context.run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    assert page.values["Visible to you"].text() == "yes, Read and Edit"
    assert page.fix_box.isHidden()


def test_field_page__unreadable_definition_offers_no_create(
    qtbot: QtBot, make_window: Callable[..., WizardWindow]
) -> None:
    window = make_window()
    connect(qtbot, window)
    page = inspect_field(qtbot, window)
    org = window.context.practice_org
    assert org is not None
    # The integration user lacks View Setup, so Tooling cannot say whether the field exists.
    integration = connect_practice_org(
        org.base_url, org.ca_bundle, org.integration_username, org.client_id)
    page.run.field_state = inspect_message_id_field(integration)

    page._show_state(page.run.field_state)

    assert page.values["Exists"].text().startswith("unknown")
    assert page.create_box.isHidden()
