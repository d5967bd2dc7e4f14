"""An update keeps the key spelling the Task holds, and a create writes the canonical <local@domain>."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from backstory_desktop import enablement
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.plan import Action, ReasonCode
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.settings import OrgProfile


def _ready_run(admin: OrgConnection) -> enablement.EnablementRun:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    return run


def _live_tasks_by_key(admin: OrgConnection) -> Counter[str]:
    """Count the live Tasks per key with its brackets removed, so both spellings count together."""
    rows = admin.query_all("SELECT Id, Message_ID__c FROM Task WHERE Message_ID__c != null")
    return Counter(key_spellings(row["Message_ID__c"])[-1] for row in rows)


def _stored_keys(admin: OrgConnection, task_ids: list[str]) -> dict[str, str]:
    soql = "SELECT Id, Message_ID__c FROM Task WHERE Id IN ({})".format(
        ", ".join(f"'{task_id}'" for task_id in task_ids)
    )
    return {row["Id"]: row["Message_ID__c"] for row in admin.query_all(soql)}


def test_stored_spelling__kept_across_two_syncs(admin: OrgConnection) -> None:
    run = _ready_run(admin)
    first_plan = enablement.plan_sync(run, sample_mailbox_path())
    stored = {row.existing[0].id: row for row in first_plan.rows
              if row.reason_code is ReasonCode.UPDATE_STORED_SPELLING}
    enablement.apply_sync(run)

    second_plan = enablement.plan_sync(run, sample_mailbox_path())

    again = {row.existing[0].id: row for row in second_plan.rows if row.existing}
    counts = _live_tasks_by_key(admin)
    assert stored, "the default practice org has cadence Tasks keyed without brackets"
    assert first_plan.reason_counts()[ReasonCode.UPDATE_STORED_SPELLING.value] == len(stored)
    assert second_plan.reason_counts()[ReasonCode.UPDATE_STORED_SPELLING.value] == len(stored)
    for task_id, row in stored.items():
        assert row.upsert_key is not None and not row.upsert_key.startswith("<")
        assert again[task_id].action is Action.UPDATE
        assert again[task_id].upsert_key == row.upsert_key
        assert counts[row.upsert_key] == 1
    assert _stored_keys(admin, list(stored)) == {task_id: row.upsert_key for task_id, row in stored.items()}


def test_stored_spelling__reason_says_key_is_kept(admin: OrgConnection) -> None:
    run = _ready_run(admin)

    plan = enablement.plan_sync(run, sample_mailbox_path())

    row = next(row for row in plan.rows if row.reason_code is ReasonCode.UPDATE_STORED_SPELLING)
    assert f"whose key stays stored as {row.upsert_key}" in row.reason
    assert "the tool that logged it finds the Task by that spelling" in row.reason


def test_create__writes_canonical_key(admin: OrgConnection, tmp_path: Path) -> None:
    mailbox = tmp_path / "bare.mbox"
    mailbox.write_text(
        "From rita@sales.example Mon Jan  1 10:00:00 2024\n"
        "Message-ID:  bare-spelling.1@x.example \n"
        "From: Rita Rep <rita@sales.example>\n"
        "To: Carla <carla@customer.example>\n"
        "Subject: Pricing\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "\n"
        "Body.\n",
        encoding="utf-8",
    )
    run = _ready_run(admin)

    plan = enablement.plan_sync(run, mailbox)
    enablement.apply_sync(run)

    (row,) = plan.rows
    assert row.action is Action.CREATE
    assert row.upsert_key == "<bare-spelling.1@x.example>"
    keys = [row["Message_ID__c"] for row in admin.query_all(
        "SELECT Message_ID__c FROM Task WHERE Message_ID__c LIKE '%bare-spelling.1@x.example%'"
    )]
    assert keys == ["<bare-spelling.1@x.example>"]
