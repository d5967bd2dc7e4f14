"""Applying a plan writes through sObject Collections upserts, and a second run creates nothing."""

from __future__ import annotations

import threading
from pathlib import Path

from backstory_desktop import enablement
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.plan import Action
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.settings import OrgProfile


def _ready_run(admin: OrgConnection) -> enablement.EnablementRun:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    return run


def _keyed_tasks(admin: OrgConnection) -> dict[str, dict]:
    rows = admin.query_all(
        "SELECT Id, Message_ID__c, TaskSubtype, peopleai__Created_by_PeopleAI__c FROM Task "
        "WHERE Message_ID__c != null",
        include_deleted=True,
    )
    return {row["Id"]: row for row in rows}


def test_apply__creates_and_updates_as_planned(admin: OrgConnection) -> None:
    run = _ready_run(admin)
    plan = enablement.plan_sync(run, enablement.read_mailbox(sample_mailbox_path()))
    before = _keyed_tasks(admin)

    result = enablement.apply_sync(run)

    after = _keyed_tasks(admin)
    created = [row for row in plan.rows if row.action is Action.CREATE]
    updated = [row for row in plan.rows if row.action is Action.UPDATE]
    assert result.status is StepStatus.PASSED
    assert run.sync_result is not None
    assert (run.sync_result.created, run.sync_result.updated) == (len(created), len(updated))
    assert len(after) == len(before) + len(created)
    new_rows = [row for task_id, row in after.items() if task_id not in before]
    assert {row["Message_ID__c"] for row in new_rows} == {row.upsert_key for row in created}
    assert all(row["TaskSubtype"] == "Email" for row in new_rows)
    assert all(row["peopleai__Created_by_PeopleAI__c"] for row in new_rows)
    for row in updated:
        assert after[row.existing[0].id]["peopleai__Created_by_PeopleAI__c"] is True


def test_apply__second_run_updates_and_creates_nothing(admin: OrgConnection) -> None:
    run = _ready_run(admin)
    reading = enablement.read_mailbox(sample_mailbox_path())
    enablement.plan_sync(run, reading)
    enablement.apply_sync(run)
    first = run.sync_result
    count_after_first = len(_keyed_tasks(admin))

    second_plan = enablement.plan_sync(run, reading)
    enablement.apply_sync(run)

    assert first is not None and run.sync_result is not None
    assert second_plan.counts()["create"] == 0
    assert run.sync_result.created == 0
    assert run.sync_result.updated == first.created + first.updated
    assert len(_keyed_tasks(admin)) == count_after_first


def test_apply__cancel_before_the_first_call_writes_nothing(admin: OrgConnection) -> None:
    run = _ready_run(admin)
    enablement.plan_sync(run, enablement.read_mailbox(sample_mailbox_path()))
    before = _keyed_tasks(admin)
    cancel = threading.Event()
    cancel.set()

    result = enablement.apply_sync(run, cancel=cancel)

    assert result.status is StepStatus.FAILED
    assert "cancelled" in result.reason
    assert run.sync_result is not None and run.sync_result.not_sent > 0
    assert _keyed_tasks(admin) == before


def test_apply__field_hidden_from_the_user_stops_before_writing(default_org: PracticeOrg) -> None:
    from backstory_desktop.salesforce.connection import connect_practice_org

    integration = connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.integration_username, default_org.client_id
    )
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=integration)

    result = enablement.check_field(run)

    assert result.status is StepStatus.FAILED
    assert "field-level security" in result.reason


def test_apply__message_without_message_id_changes_nothing(admin: OrgConnection, tmp_path: Path) -> None:
    mailbox = tmp_path / "one.mbox"
    mailbox.write_text(
        "From rita@sales.example Mon Mar  2 10:00:00 2026\n"
        "From: Rita Rep <rita@sales.example>\n"
        "To: Carla <carla@customer.example>\n"
        "Subject: No id here\n"
        "Date: Mon, 2 Mar 2026 10:00:00 +0000\n"
        "\n"
        "A message whose client left out the Message-ID header.\n",
        encoding="utf-8",
    )
    run = _ready_run(admin)
    before = _keyed_tasks(admin)

    plan = enablement.plan_sync(run, enablement.read_mailbox(mailbox))
    result = enablement.apply_sync(run)

    assert [row.action for row in plan.rows] == [Action.INVALID]
    assert plan.rows[0].reason == "no Message-ID header"
    assert "1 invalid message" in result.reason
    assert run.sync_result is not None and run.sync_result.created == 0
    assert _keyed_tasks(admin) == before
