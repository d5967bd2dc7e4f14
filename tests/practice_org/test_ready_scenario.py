"""The "ready" scenario: an org already set up as the integration needs it, read over the API."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

import pytest

from backstory_desktop.core.message_id import canonical_message_id, normalise_key
from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.seed import MESSAGE_ID_FIELD, OUTREACH_USERNAME
from backstory_desktop.salesforce.access import effective_access
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import find_user_by_username
from tests.practice_org.conftest import admin_connection


@pytest.fixture(scope="module")
def connection(ready_org: PracticeOrg) -> OrgConnection:
    return admin_connection(ready_org)


@pytest.fixture(scope="module")
def tasks(connection: OrgConnection) -> list[dict[str, Any]]:
    """Every Task of the org, those in the recycle bin and archived ones included."""
    soql = (f"SELECT Id, Subject, TaskSubtype, CallType, {MESSAGE_ID_FIELD}, CreatedById, CreatedDate, "
            "IsDeleted, IsArchived FROM Task")
    return [row for page in connection.query_pages(soql, include_deleted=True)
            for row in page["records"]]


def _days_ago(created_date: str) -> float:
    created = datetime.datetime.strptime(created_date, "%Y-%m-%dT%H:%M:%S.%f%z")
    return (datetime.datetime.now(datetime.UTC) - created) / datetime.timedelta(days=1)


def test_ready__key_field_is_unique_external_id(connection: OrgConnection) -> None:
    fields = {field["name"]: field for field in connection.sf.Task.describe()["fields"]}

    key_field = fields[MESSAGE_ID_FIELD]
    assert key_field["unique"] is True
    assert key_field["externalId"] is True
    assert key_field["caseSensitive"] is True
    assert key_field["length"] == 255


def test_ready__tool_keys_are_canonical(connection: OrgConnection, tasks: list[dict[str, Any]]) -> None:
    outreach_id = find_user_by_username(connection, OUTREACH_USERNAME).id

    logged = [row for row in tasks if row["CreatedById"] == outreach_id and row["TaskSubtype"] == "Email"]

    assert len(logged) > 1
    for row in logged:
        key = row[MESSAGE_ID_FIELD]
        assert key is not None, row["Id"]
        assert key == canonical_message_id(key).key, row["Id"]


def test_ready__tool_tasks_spread_over_days(connection: OrgConnection, tasks: list[dict[str, Any]]) -> None:
    outreach_id = find_user_by_username(connection, OUTREACH_USERNAME).id

    ages = sorted(_days_ago(row["CreatedDate"]) for row in tasks
                  if row["CreatedById"] == outreach_id and row["TaskSubtype"] == "Email")

    recent_days = {int(age) for age in ages if age < 30}
    assert len(recent_days) > 1
    assert ages[0] >= 1


def test_ready__no_key_is_shared(tasks: list[dict[str, Any]]) -> None:
    keys = Counter(normalise_key(row[MESSAGE_ID_FIELD], case_sensitive=False)
                   for row in tasks if row[MESSAGE_ID_FIELD] is not None)

    assert keys
    assert [key for key, count in keys.items() if count > 1] == []


def test_ready__no_task_deleted_or_archived(tasks: list[dict[str, Any]]) -> None:
    assert tasks
    assert [row["Id"] for row in tasks if row["IsDeleted"]] == []
    assert [row["Id"] for row in tasks if row["IsArchived"]] == []


def test_ready__every_email_task_has_a_key(tasks: list[dict[str, Any]]) -> None:
    emails = [row for row in tasks if row["TaskSubtype"] == "Email"]

    assert emails
    assert [row["Id"] for row in emails if not row[MESSAGE_ID_FIELD]] == []


def test_ready__calls_have_task_subtype_call(tasks: list[dict[str, Any]]) -> None:
    calls = [row for row in tasks if row["CallType"] is not None]

    assert len(calls) == 3
    assert [row["Id"] for row in calls if row["TaskSubtype"] != "Call"] == []


def test_ready__integration_user_has_field_access(ready_org: PracticeOrg, connection: OrgConnection) -> None:
    user_id = find_user_by_username(connection, ready_org.integration_username).id

    report = effective_access(connection, user_id, MESSAGE_ID_FIELD, field_unique=True)

    assert [line.name for line in report.missing] == []
    assert report.ok is True
