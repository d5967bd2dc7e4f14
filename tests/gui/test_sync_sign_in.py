"""A sync stopped because the org's sign-in ended offers "Sign in again" once, on the Local sync page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytestqt.qtbot import QtBot
from wizard_driver import (
    SERVED_ALIAS,
    Confirmation,
    add_served_profile,
    apply_plan,
    browser_sign_in,
    build_plan,
)

from backstory_desktop import enablement, org_sessions
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.gui.pages.base import SIGN_IN_AGAIN
from backstory_desktop.gui.pages.local_sync import LocalSyncPage
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.practice_org.server import PracticeOrg
from tests.consent_browser import revoke_at_org


def test_apply__ended_sign_in_offers_sign_in_again(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], default_org: PracticeOrg,
    monkeypatch: pytest.MonkeyPatch, confirmations: list[Confirmation],
) -> None:
    window = make_window()
    add_served_profile(qtbot, window, default_org, monkeypatch)
    browser_sign_in(qtbot, window, default_org)
    assert enablement.check_field(window.context.run).status is StepStatus.PASSED
    window.show_step(Step.LOCAL_SYNC)
    build_plan(qtbot, window)
    refresh_token = org_sessions.secret_store().load(SERVED_ALIAS)
    assert refresh_token
    revoke_at_org(default_org, refresh_token)

    apply_plan(qtbot, window, confirmations)

    page = window.page(Step.LOCAL_SYNC)
    assert isinstance(page, LocalSyncPage)
    assert window.context.run.checklist.status(Step.LOCAL_SYNC) is StepStatus.FAILED
    assert page.message.action_button.isVisible()
    assert page.message.action_button.text() == SIGN_IN_AGAIN
    assert not window.worker.busy
