"""A sync signed in through a saved profile survives expired sessions and stops once on a revoked sign-in.

The org is a practice org reached as a "served" profile, the way the app reaches a
real org: browser sign-in, refresh token in the (in-memory test) keyring, rotation
on every refresh.
"""

from __future__ import annotations

from backstory_desktop import enablement, org_sessions
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.plan import Action
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.store.settings import OrgProfile
from tests.consent_browser import (
    ConsentBrowser,
    revoke_at_org,
    served_profile,
)

ALIAS = "served-sync"


def _sign_in(org: PracticeOrg, profile: OrgProfile) -> OrgConnection:
    browser = ConsentBrowser(org.ca_bundle, org.admin_username)
    return org_sessions.sign_in_with_browser(
        profile, org_sessions.secret_store(), open_browser=browser, timeout=30
    )


def _planned_run(connection: OrgConnection, profile: OrgProfile) -> enablement.EnablementRun:
    run = enablement.EnablementRun(profile, connection=connection)
    assert enablement.check_field(run).status is StepStatus.PASSED
    enablement.plan_sync(run, sample_mailbox_path())
    return run


def _keys(admin: OrgConnection) -> list[str]:
    rows = admin.query_all(
        "SELECT Message_ID__c FROM Task WHERE Message_ID__c != null", include_deleted=True
    )
    return [row["Message_ID__c"] for row in rows]


def test_sync__expiring_sessions_renew_and_write_once(
    default_org: PracticeOrg, admin: OrgConnection
) -> None:
    profile = served_profile(default_org, ALIAS)
    connection = _sign_in(default_org, profile)
    first_refresh_token = connection.tokens.refresh_token
    run = _planned_run(connection, profile)
    assert run.plan is not None
    creates = {row.upsert_key for row in run.plan.rows if row.action is Action.CREATE}
    keys_before = _keys(admin)

    default_org.expire_sessions()
    result = enablement.apply_sync(run)

    assert result.status is StepStatus.PASSED
    keys_after = _keys(admin)
    assert len(keys_after) == len(keys_before) + len(creates)
    assert set(keys_after) - set(keys_before) == creates
    saved = org_sessions.secret_store().load(ALIAS)
    assert saved == connection.tokens.refresh_token
    assert saved != first_refresh_token
    resumed = org_sessions.resume_session(profile, org_sessions.secret_store())
    assert resumed.username == default_org.admin_username


def test_sync__revoked_sign_in_stops_once(
    default_org: PracticeOrg, admin: OrgConnection
) -> None:
    profile = served_profile(default_org, ALIAS)
    connection = _sign_in(default_org, profile)
    run = _planned_run(connection, profile)
    assert run.plan is not None
    planned_creates = sum(1 for row in run.plan.rows if row.action is Action.CREATE)
    keys_before = _keys(admin)
    assert connection.tokens.refresh_token
    revoke_at_org(default_org, connection.tokens.refresh_token)

    result = enablement.apply_sync(run)

    assert result.status is StepStatus.FAILED
    assert result.details["error_code"] == SignInRequired.ERROR_CODE
    assert _keys(admin) == keys_before
    assert org_sessions.secret_store().load(ALIAS) is not None  # kept until the admin signs in again

    again = _sign_in(default_org, profile)
    rerun = _planned_run(again, profile)
    assert enablement.apply_sync(rerun).status is StepStatus.PASSED
    assert len(_keys(admin)) == len(keys_before) + planned_creates
