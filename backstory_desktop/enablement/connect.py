"""The Connect step: record a signed-in org connection and the API requests left today."""

from __future__ import annotations

import logging

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, failed_result, record_result
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.errors import SalesforceProblem

log = logging.getLogger(__name__)


def connect(run: EnablementRun, practice_org: PracticeOrg) -> StepResult:
    """Sign in to the practice org as its admin through the OAuth web-server flow with PKCE."""
    try:
        run.connection = connect_practice_org(
            practice_org.base_url,
            practice_org.ca_bundle,
            practice_org.admin_username,
            practice_org.client_id,
        )
    except Exception as error:
        return record_result(run, failed_result(Step.CONNECT, error))
    return use_connection(run, run.connection)


def use_connection(run: EnablementRun, connection: OrgConnection) -> StepResult:
    """Record the Connect step for a connection already opened, by any sign-in of any org."""
    run.connection = connection
    run.profile.instance_url = connection.instance_url
    run.profile.username = connection.username
    sentence = (
        f"Connected to {connection.instance_url} as {connection.username} "
        f"(API {connection.api_version})."
    )
    details: dict[str, object] = {
        "instance_url": connection.instance_url,
        "username": connection.username,
        "api_version": connection.api_version,
        "daily_api_requests_left": None,
    }
    try:
        requests_left = connection.daily_api_requests()
    except SalesforceProblem as error:
        return record_result(run, failed_result(Step.CONNECT, error))
    if requests_left is not None:
        details["daily_api_requests_left"] = requests_left.remaining
        sentence += (
            f" {requests_left.remaining:,} of {requests_left.max:,} daily API requests are left."
        )
    return record_result(run, StepResult(Step.CONNECT, StepStatus.PASSED, sentence, details))
