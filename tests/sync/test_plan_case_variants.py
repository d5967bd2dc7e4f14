"""On a case-sensitive key field, keys that differ only in case are kept apart but named in the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop.core.plan import Action, Plan
from backstory_desktop.practice_org.seed import FLAG_FIELD
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.schema import inspect_message_id_field
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.store.journal import Journal
from backstory_desktop.sync import planner

KEY_FIELD = "Message_ID__c"


def _mbox(path: Path, message_ids: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for number, message_id in enumerate(message_ids):
            out.write(
                "From rita@sales.example Mon Jan  1 10:00:00 2024\n"
                f"Message-ID: {message_id}\n"
                "From: Rita Rep <rita@sales.example>\n"
                "To: Carla <carla@customer.example>\n"
                f"Subject: Message {number}\n"
                "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
                "\n"
                "Body.\n"
            )
    return path


def _plan(admin: OrgConnection, tmp_path: Path, mailbox: Path, chunk_size: int = 500) -> Plan:
    field = inspect_message_id_field(admin, KEY_FIELD)
    assert field.case_sensitive, "the default practice org's key field is Unique and case-sensitive"
    journal = Journal.open(tmp_path / "journal.sqlite3")
    try:
        plan = planner.build_plan(
            admin, read_mbox(mailbox), journal=journal, source_label=mailbox.name, source_kind="mbox",
            field=field, flag_field=FLAG_FIELD, chunk_size=chunk_size,
        )
        return Plan(list(plan.rows), plan.rules, plan.run_id, plan.inactive_owners)
    finally:
        journal.close()


@pytest.mark.parametrize("stored", ["<casevariant.1@x.example>", "<CASEVARIANT.1@X.EXAMPLE>",
                                    "CaseVariant.1@x.example"])
def test_case_variant__task_in_org_named(admin: OrgConnection, tmp_path: Path, stored: str) -> None:
    created = admin.request("POST", "sobjects/Task", json={"Subject": "Logged by a tool", KEY_FIELD: stored})
    mailbox = _mbox(tmp_path / "mixed.mbox", ["<CaseVariant.1@X.Example>"])

    (row,) = _plan(admin, tmp_path, mailbox).rows

    assert row.action is Action.CREATE
    assert f"Task {created['id']} holds this key in another case ({stored})" in row.reason


def test_case_variant__same_source_across_chunks(admin: OrgConnection, tmp_path: Path) -> None:
    mailbox = _mbox(tmp_path / "mixed.mbox", ["<Mixed.1@x.example>", "<other@x.example>",
                                              "<mixed.1@x.example>"])

    rows = _plan(admin, tmp_path, mailbox, chunk_size=1).rows

    assert [row.action for row in rows] == [Action.CREATE, Action.CREATE, Action.CREATE]
    assert "differs only in case" not in rows[0].reason
    assert f"the key differs only in case from the key of {rows[0].source_ref}" in rows[2].reason


def test_case_variant__same_source_in_one_chunk(admin: OrgConnection, tmp_path: Path) -> None:
    mailbox = _mbox(tmp_path / "mixed.mbox", ["<Mixed.1@x.example>", "<mixed.1@x.example>"])

    rows = _plan(admin, tmp_path, mailbox).rows

    assert f"the key differs only in case from the key of {rows[0].source_ref}" in rows[1].reason


def test_case_variants__lower_upper_and_domain() -> None:
    assert planner.case_variants("<Ab.1@Host.Example>") == [
        "<ab.1@host.example>", "<AB.1@HOST.EXAMPLE>", "<Ab.1@host.example>"
    ]
    assert planner.case_variants("<ab.1@host.example>") == ["<AB.1@HOST.EXAMPLE>"]
