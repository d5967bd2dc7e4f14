"""Applying a plan writes through sObject Collections upserts, and a second run creates nothing."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from backstory_desktop import enablement
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.plan import Action, PlanRow
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.schema import create_message_id_field
from backstory_desktop.salesforce.tasks import UpsertOutcome
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.settings import SyncResult, SyncSettings

# Retries a few milliseconds apart, so that a run whose calls all fail ends quickly.
QUICK_RETRIES = SyncSettings(first_retry_seconds=0.01, max_retry_seconds=0.05)


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
    plan = enablement.plan_sync(run, sample_mailbox_path())
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
    mailbox = sample_mailbox_path()
    enablement.plan_sync(run, mailbox)
    enablement.apply_sync(run)
    first = run.sync_result
    count_after_first = len(_keyed_tasks(admin))

    second_plan = enablement.plan_sync(run, mailbox)
    enablement.apply_sync(run)

    assert first is not None and run.sync_result is not None
    assert second_plan.counts()["create"] == 0
    assert run.sync_result.created == 0
    assert run.sync_result.updated == first.created + first.updated
    assert len(_keyed_tasks(admin)) == count_after_first


def test_apply__cancel_before_the_first_call_writes_nothing(admin: OrgConnection) -> None:
    run = _ready_run(admin)
    enablement.plan_sync(run, sample_mailbox_path())
    before = _keyed_tasks(admin)
    cancel = threading.Event()
    cancel.set()

    result = enablement.apply_sync(run, cancel=cancel)

    assert result.status is StepStatus.FAILED
    assert "cancelled" in result.reason.lower()
    assert run.sync_result is not None and run.sync_result.not_sent > 0
    assert _keyed_tasks(admin) == before
    assert run.changes == []


def test_apply__cancel_is_logged_as_a_stop(admin: OrgConnection, caplog: pytest.LogCaptureFixture) -> None:
    run = _ready_run(admin)
    enablement.plan_sync(run, sample_mailbox_path())
    cancel = threading.Event()
    cancel.set()

    with caplog.at_level(logging.INFO, logger="backstory_desktop.sync.engine"):
        enablement.apply_sync(run, cancel=cancel)

    apply_log = "backstory_desktop.sync.engine"
    messages = [record.getMessage() for record in caplog.records if record.name == apply_log]
    assert any(message.startswith("sync stopped after") for message in messages)
    assert any("(cancelled by the user)" in message for message in messages)
    assert not any(message.startswith("sync applied") for message in messages)


def test_apply__field_hidden_from_the_user_stops_before_writing(default_org: PracticeOrg) -> None:
    from backstory_desktop.salesforce.connection import connect_practice_org

    integration = connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.integration_username, default_org.client_id
    )
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=integration)

    result = enablement.check_field(run)

    assert result.status is StepStatus.FAILED
    assert "could not be checked" in result.reason


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

    plan = enablement.plan_sync(run, mailbox)
    result = enablement.apply_sync(run)

    assert [row.action for row in plan.rows] == [Action.INVALID]
    assert plan.rows[0].reason == "no Message-ID header"
    assert "1 invalid message was not sent." in result.reason
    assert run.sync_result is not None and run.sync_result.created == 0
    assert _keyed_tasks(admin) == before


def _mbox(path: Path, *ids: str) -> Path:
    messages = [
        f"From rita@sales.example Mon Jan  1 10:00:00 2024\n"
        f"Message-ID: {message_id}\n"
        "From: Rita Rep <rita@sales.example>\n"
        "To: Carla <carla@customer.example>\n"
        f"Subject: Message {number}\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "\n"
        "Body.\n"
        for number, message_id in enumerate(ids)
    ]
    path.write_text("".join(messages), encoding="utf-8")
    return path


def test_apply__create_taken_by_another_writer_becomes_an_update(
    admin: OrgConnection, tmp_path: Path
) -> None:
    mailbox = _mbox(tmp_path / "a.mbox", "<taken-1@x.example>")
    mine, other = _ready_run(admin), _ready_run(admin)
    enablement.plan_sync(mine, mailbox)
    enablement.plan_sync(other, mailbox)
    enablement.apply_sync(other)

    result = enablement.apply_sync(mine)

    assert result.status is StepStatus.PASSED
    assert mine.sync_result is not None
    assert (mine.sync_result.created, mine.sync_result.updated, mine.sync_result.failed) == (0, 1, 0)
    row, outcome = mine.sync_result.outcomes[0]
    assert outcome.success
    assert row.action is Action.UPDATE
    assert "another writer" in row.reason
    assert "TaskSubtype" not in row.record
    tasks = [task for task in _keyed_tasks(admin).values() if task["Message_ID__c"] == "<taken-1@x.example>"]
    assert len(tasks) == 1


def test_apply__case_spellings_are_one_key_on_a_case_insensitive_field(
    fresh_org: PracticeOrg, tmp_path: Path
) -> None:
    from backstory_desktop.salesforce.connection import connect_practice_org

    connection = connect_practice_org(
        fresh_org.base_url, fresh_org.ca_bundle, fresh_org.admin_username, fresh_org.client_id
    )
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=connection)
    enablement.check_field(run)
    assert enablement.create_field(run, case_sensitive=False).status is StepStatus.PASSED
    mailbox = _mbox(tmp_path / "c.mbox", "<ABC123@EXAMPLE.COM>", "<abc123@example.com>")

    plan = enablement.plan_sync(run, mailbox)
    enablement.apply_sync(run)

    assert [row.action for row in plan.rows] == [Action.CREATE, Action.EXCLUDED]
    assert run.sync_result is not None
    assert (run.sync_result.created, run.sync_result.failed) == (1, 0)


def test_plan__id_warnings_reach_the_row(admin: OrgConnection, tmp_path: Path) -> None:
    mailbox = _mbox(tmp_path / "w.mbox", "3a53c9f2-1a8e-41f0-bb95-58c8029e16f0")

    (row,) = enablement.plan_sync(_ready_run(admin), mailbox).rows

    assert row.action is Action.CREATE
    assert "no @" in row.reason


def test_sync_result__failures_are_counted_per_error_code() -> None:
    row = PlanRow(Action.CREATE, "m.mbox, message 1", "<a@x.example>", "Subject", "new")
    result = SyncResult(
        outcomes=[
            (row, UpsertOutcome("<a@x.example>", False, False, None, "STRING_TOO_LONG", "Subject: too long")),
            (row, UpsertOutcome("<b@x.example>", False, False, None, "STRING_TOO_LONG", "Description")),
            (row, UpsertOutcome("<c@x.example>", True, True, "00T000000000001AAA", None, "")),
            (row, UpsertOutcome("<d@x.example>", False, False, None, "UNABLE_TO_LOCK_ROW", "locked")),
        ]
    )

    assert result.failures_by_code() == {
        "STRING_TOO_LONG": (2, "Subject: too long"),
        "UNABLE_TO_LOCK_ROW": (1, "locked"),
    }


def test_field_step__missing_flag_field_is_named_and_left_out(admin: OrgConnection, tmp_path: Path) -> None:
    run = enablement.EnablementRun(
        OrgProfile(alias="practice", flag_field_api_name="Created_By_Backstory__c"), connection=admin
    )

    result = enablement.check_field(run)
    plan = enablement.plan_sync(run, _mbox(tmp_path / "f.mbox", "<flag@x.example>"))

    assert result.status is StepStatus.PASSED
    assert "Created_By_Backstory__c cannot be set" in result.reason
    assert result.details["flag_problems"]
    assert "Created_By_Backstory__c" not in plan.rows[0].record


def test_apply__lost_response_is_in_doubt_then_update(
    admin: OrgConnection, default_org: PracticeOrg
) -> None:
    run = _ready_run(admin)
    mailbox = sample_mailbox_path()
    plan = enablement.plan_sync(run, mailbox)
    creates = {row.upsert_key for row in plan.rows if row.action is Action.CREATE}
    before = len(_keyed_tasks(admin))

    # The first upsert call commits, then its connection closes before the response.
    default_org.faults = FaultPlan(dropped_after_commit_rate=1.0)
    enablement.apply_sync(run, settings=QUICK_RETRIES)
    default_org.faults = FaultPlan()
    first = run.sync_result
    written_in_doubt = len(_keyed_tasks(admin)) - before
    enablement.plan_sync(run, mailbox)
    enablement.apply_sync(run)

    assert first is not None and run.sync_result is not None
    assert first.in_doubt
    assert first.created == 0
    assert written_in_doubt == len(creates & set(first.in_doubt))
    assert written_in_doubt > 0
    assert len(_keyed_tasks(admin)) == before + len(creates)
    assert run.sync_result.created == len(creates) - written_in_doubt


def test_plan__csv_guess_uses_org_field_name(fresh_org: PracticeOrg, tmp_path: Path) -> None:
    admin = connect_practice_org(
        fresh_org.base_url, fresh_org.ca_bundle, fresh_org.admin_username, fresh_org.client_id
    )
    create_message_id_field(admin, "Email_Key", case_sensitive=True)
    run = enablement.EnablementRun(OrgProfile(alias="practice", field_api_name="Email_Key__c"),
                                   connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    export = tmp_path / "tasks.csv"
    export.write_text("Subject,Description,Email_Key__c\nPricing,Hello,<csv.1@x.example>\n", encoding="utf-8")

    plan = enablement.plan_sync(run, export)

    assert [row.action for row in plan.rows] == [Action.CREATE]
    assert plan.rows[0].key == "<csv.1@x.example>"
