"""The Connect step reports the daily API requests left, from the limits resource or the usage header."""

from __future__ import annotations

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepResult, StepStatus
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import connect_practice_org
from backstory_desktop.store.settings import OrgProfile


def _connect_as(org: PracticeOrg, username: str) -> StepResult:
    connection = connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)
    run = enablement.EnablementRun(OrgProfile(alias="practice"))
    return enablement.use_connection(run, connection)


def test_connect__admin_sees_requests_left_from_limits(default_org: PracticeOrg) -> None:
    default_org.daily_api_limit = 5000

    result = _connect_as(default_org, default_org.admin_username)

    assert result.status is StepStatus.PASSED
    left = result.details["daily_api_requests_left"]
    assert isinstance(left, int)
    assert 4990 < left < 5000
    assert f"{left:,} of 5,000 daily API requests are left." in result.reason


def test_connect__user_without_view_setup_reads_the_usage_header(default_org: PracticeOrg) -> None:
    default_org.daily_api_limit = 7000

    result = _connect_as(default_org, default_org.integration_username)

    assert result.status is StepStatus.PASSED
    left = result.details["daily_api_requests_left"]
    assert isinstance(left, int)
    assert 6990 < left < 7000
    assert "of 7,000 daily API requests are left." in result.reason
