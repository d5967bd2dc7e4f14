"""Inputs that broke other Salesforce and mail tools, run through the whole sync path.

Each test writes its own mbox file, reads it, plans and applies the sync on a
practice org over HTTPS, and then queries the org's Tasks. The wizard and
``rehearse`` take the same path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import pytest
from simple_salesforce.format import format_soql

from backstory_desktop import enablement
from backstory_desktop.cli import main
from backstory_desktop.core.activity import MailActivity
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.duplicates import GroupKind
from backstory_desktop.core.plan import Action, Plan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.tasks import upsert_tasks
from backstory_desktop.sources.mbox import MailboxError, read_mbox
from backstory_desktop.store.settings import OrgProfile
from tests.conftest import StartOrg

FIELD = "Message_ID__c"
SEPARATOR = "From sender@example.com Mon Jan  1 10:00:00 2024"


def message(message_id: str | None, *, subject: str = "Pricing", body: str = "Body text.") -> str:
    """Return one mbox entry: separator line, headers, blank line, body."""
    lines = [SEPARATOR]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    lines += [
        "From: Sam Sender <sender@example.com>",
        "To: rita@example.com",
        f"Subject: {subject}",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000",
        "",
        body,
    ]
    return "\n".join(lines) + "\n"


def write_mbox(path: Path, *messages: str) -> Path:
    path.write_text("".join(messages), encoding="utf-8")
    return path


def ready_run(connection: OrgConnection) -> enablement.EnablementRun:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=connection)
    assert enablement.check_field(run).status is StepStatus.PASSED
    return run


def sync(run: enablement.EnablementRun, mailbox: Path) -> tuple[Plan, Any]:
    """Plan and apply one mailbox; return the plan and the sync result."""
    plan = enablement.plan_sync(run, mailbox)
    step = enablement.apply_sync(run)
    assert step.status is StepStatus.PASSED, step.reason
    return plan, run.sync_result


def tasks_with_key(connection: OrgConnection, key: str) -> list[dict[str, Any]]:
    soql = format_soql(
        "SELECT Id, Subject, TaskSubtype, LastModifiedDate, Message_ID__c FROM Task "
        "WHERE Message_ID__c = {}",
        key,
    )
    return [row for row in connection.query_all(soql, include_deleted=True) if row[FIELD] == key]


def log_as_other_tool(connection: OrgConnection, key: str, *, subtype: str = "Email") -> None:
    """Create a Task under ``key`` exactly as written, as a cadence tool would have logged it."""
    (outcome,) = upsert_tasks(connection, FIELD, [{FIELD: key, "Subject": "cadence", "TaskSubtype": subtype}])
    assert outcome.created, outcome.message


def task_count(connection: OrgConnection) -> int:
    return len(list(connection.query_all("SELECT Id FROM Task", include_deleted=True)))


def connect_admin(org: PracticeOrg) -> OrgConnection:
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


# -- keys on the wire ------------------------------------------------------------------


def test_cases__slash_in_key_updates_the_same_task(admin: OrgConnection, tmp_path: Path) -> None:
    keys = ["<a/b@x.example>", "<CAEA+Pe0Bx+y/Zq==@mail.gmail.com>"]
    mailbox = write_mbox(tmp_path / "slash.mbox", *(message(key) for key in keys))

    _, first = sync(ready_run(admin), mailbox)
    ids_after_first = {key: [row["Id"] for row in tasks_with_key(admin, key)] for key in keys}
    _, second = sync(ready_run(admin), mailbox)

    assert (first.created, first.updated) == (2, 0)
    assert (second.created, second.updated) == (0, 2)
    for key in keys:
        assert len(ids_after_first[key]) == 1
        assert [row["Id"] for row in tasks_with_key(admin, key)] == ids_after_first[key]


def test_cases__space_and_plus_keys_update_on_rerun(
    admin: OrgConnection, tmp_path: Path
) -> None:
    mailbox = write_mbox(
        tmp_path / "space.mbox",
        message("<with space@x.example>"),
        message("<a+b@x.example>"),
    )

    sync(ready_run(admin), mailbox)
    count_after_first = task_count(admin)
    second_plan, second = sync(ready_run(admin), mailbox)

    assert second_plan.counts()["create"] == 0
    assert (second.created, second.updated) == (0, 2)
    assert task_count(admin) == count_after_first
    assert len(tasks_with_key(admin, "<withspace@x.example>")) == 1
    assert len(tasks_with_key(admin, "<a+b@x.example>")) == 1


def test_cases__hostile_keys_written_exactly(
    admin: OrgConnection, tmp_path: Path
) -> None:
    keys = [
        "<a#frag@x.example>",
        "<a?b=c@x.example>",
        "<a/../../../Case/500000000000001AAA#@attacker.example>",
        "<a%2Fb@x.example>",
        "<a&b=c;d,e@x.example>",
    ]
    mailbox = write_mbox(
        tmp_path / "hostile.mbox",
        *(message(key, subject=f"hostile {n}") for n, key in enumerate(keys)),
    )
    before = task_count(admin)

    _, result = sync(ready_run(admin), mailbox)

    assert result.created == len(keys)
    assert task_count(admin) == before + len(keys)
    for n, key in enumerate(keys):
        (row,) = tasks_with_key(admin, key)
        assert row["Id"].startswith("00T")
        assert row["Subject"] == f"hostile {n}"


def test_cases__shared_key_is_conflict_writing_nothing(
    start_org: StartOrg, tmp_path: Path
) -> None:
    org = start_org("non-unique")
    admin = connect_admin(org)
    rows = admin.query_all("SELECT Id, Message_ID__c FROM Task WHERE Message_ID__c != null")
    holders: dict[str, list[str]] = {}
    for row in rows:
        holders.setdefault(row[FIELD], []).append(row["Id"])
    key, ids = next((key, ids) for key, ids in holders.items() if len(ids) > 1)
    before = {row["Id"]: row["LastModifiedDate"] for row in tasks_with_key(admin, key)}
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    mailbox = write_mbox(tmp_path / "shared.mbox", message(key), message("<other@x.example>"))

    plan = enablement.plan_sync(run, mailbox)
    enablement.apply_sync(run)

    (conflict,) = [row for row in plan.rows if row.action is Action.CONFLICT]
    assert {task.id for task in conflict.existing} == set(ids)
    after = {row["Id"]: row["LastModifiedDate"] for row in tasks_with_key(admin, key)}
    assert after == before


def test_cases__stale_upsert_names_both_tasks(
    start_org: StartOrg,
) -> None:
    org = start_org("non-unique")
    admin = connect_admin(org)
    rows = list(admin.query_all("SELECT Id, Message_ID__c FROM Task WHERE Message_ID__c != null"))
    holders: dict[str, list[str]] = {}
    for row in rows:
        holders.setdefault(row[FIELD], []).append(row["Id"])
    key, ids = next((key, ids) for key, ids in holders.items() if len(ids) > 1)
    before = task_count(admin)

    (outcome,) = upsert_tasks(admin, FIELD, [{FIELD: key, "Subject": "third copy?"}])

    assert not outcome.success
    assert outcome.error_code == "DUPLICATE_EXTERNAL_ID"
    for record_id in ids:
        assert record_id in outcome.message
    assert task_count(admin) == before


def test_cases__quote_and_wildcard_keys_match_only_themselves(
    admin: OrgConnection, tmp_path: Path
) -> None:
    upsert_tasks(
        admin,
        FIELD,
        [
            {FIELD: "<aXbYc@example.com>", "Subject": "wildcard bait", "TaskSubtype": "Email"},
            {FIELD: "<o'neil.20240101@example.com>", "Subject": "other tool", "TaskSubtype": "Email"},
        ],
    )
    mailbox = write_mbox(
        tmp_path / "quotes.mbox",
        message("<a_b%c@example.com>"),
        message("<o'neil.20240101@example.com>"),
        message("<back\\slash@example.com>"),
    )

    plan, _ = sync(ready_run(admin), mailbox)

    actions = {row.key: row.action for row in plan.rows}
    assert actions["<a_b%c@example.com>"] is Action.CREATE
    assert actions["<o'neil.20240101@example.com>"] is Action.UPDATE
    assert actions["<back\\slash@example.com>"] is Action.CREATE
    assert [row["Subject"] for row in tasks_with_key(admin, "<aXbYc@example.com>")] == ["wildcard bait"]
    assert len(tasks_with_key(admin, "<a_b%c@example.com>")) == 1
    assert len(tasks_with_key(admin, "<back\\slash@example.com>")) == 1


# -- the field and who may use it ------------------------------------------------------


def test_cases__case_variant_updates_on_insensitive_field(
    start_org: StartOrg, tmp_path: Path
) -> None:
    org = start_org("fresh")
    admin = connect_admin(org)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    assert enablement.create_field(run, case_sensitive=False).status is StepStatus.PASSED
    log_as_other_tool(admin, "<ABC123@EXAMPLE.COM>")
    before = task_count(admin)
    mailbox = write_mbox(tmp_path / "case.mbox", message("<abc123@example.com>"))

    plan, result = sync(run, mailbox)

    (row,) = plan.rows
    assert row.action is Action.UPDATE
    assert row.upsert_key == "<ABC123@EXAMPLE.COM>"
    assert (result.created, result.updated) == (0, 1)
    assert task_count(admin) == before


def test_cases__case_variant_grouped_on_sensitive_field(
    admin: OrgConnection, tmp_path: Path
) -> None:
    run = ready_run(admin)
    log_as_other_tool(admin, "<CASE1@EXAMPLE.COM>")
    mailbox = write_mbox(tmp_path / "case.mbox", message("<case1@example.com>"))

    _, result = sync(run, mailbox)
    enablement.scan_conflicts(run)

    assert result.created == 1
    (group,) = [group for group in run.groups if group.key == "case1@example.com"]
    assert group.kind is GroupKind.NORMALISED
    assert {record.key for record in group.records} == {"<CASE1@EXAMPLE.COM>", "<case1@example.com>"}


def test_cases__update_keeps_the_subtype_another_tool_set(admin: OrgConnection, tmp_path: Path) -> None:
    log_as_other_tool(admin, "<call-42@x.example>", subtype="Call")
    mailbox = write_mbox(tmp_path / "call.mbox", message("<call-42@x.example>"))

    plan, result = sync(ready_run(admin), mailbox)

    (row,) = plan.rows
    assert row.action is Action.UPDATE
    assert "TaskSubtype" not in row.record
    assert (result.updated, result.failed) == (1, 0)
    assert [task["TaskSubtype"] for task in tasks_with_key(admin, "<call-42@x.example>")] == ["Call"]


# -- mail as it really is ----------------------------------------------------------------


def test_cases__odd_messages_listed_rest_synced(
    admin: OrgConnection, tmp_path: Path, mail_corpus: Path
) -> None:
    nested = (mail_corpus / "mimekit" / "messages" / "stack-overflow.txt").read_bytes()
    mailbox = tmp_path / "odd.mbox"
    mailbox.write_bytes(
        message("<before@x.example>").encode()
        + SEPARATOR.encode() + b"\n" + nested.replace(b"\r\n", b"\n") + b"\n"
        + message("<[ABCDEF====@mail.example.com]>").encode()
        + message("<after@x.example>").encode()
    )

    plan, result = sync(ready_run(admin), mailbox)

    (problem,) = [row for row in plan.rows if row.action is Action.INVALID]
    assert "nests too deeply" in problem.reason
    assert result.created == 3
    assert len(tasks_with_key(admin, "<[ABCDEF====@mail.example.com]>")) == 1
    assert len(tasks_with_key(admin, "<after@x.example>")) == 1


def test_cases__folded_ids_reach_the_task_stored_unfolded(admin: OrgConnection, tmp_path: Path) -> None:
    log_as_other_tool(admin, "<NMID-105-1232@communication.example.com>")
    mailbox = tmp_path / "folded.mbox"
    mailbox.write_bytes(
        (
            f"{SEPARATOR}\nMessage-ID: <NMID-105-1232@communication.exa\r\n\tmple.com>\r\n"
            "From: sender@example.com\r\nSubject: folded in the domain\r\n\r\nbody\r\n"
            f"{SEPARATOR}\nMessage-ID:\r\n <abc123@example.com>\r\n"
            "From: sender@example.com\r\nSubject: folded after the name\r\n\r\nbody\r\n"
        ).encode()
    )

    plan, result = sync(ready_run(admin), mailbox)

    assert [(row.action, row.key) for row in plan.rows] == [
        (Action.UPDATE, "<NMID-105-1232@communication.example.com>"),
        (Action.CREATE, "<abc123@example.com>"),
    ]
    assert (result.created, result.updated) == (1, 1)


def test_cases__both_spellings_reach_one_task(
    admin: OrgConnection, tmp_path: Path
) -> None:
    log_as_other_tool(admin, "<faff5b13bff19cf16f0fbf46edb721e3@example.com>")
    log_as_other_tool(admin, "stored-bare.1@example.com")
    mailbox = write_mbox(
        tmp_path / "bare.mbox",
        message("faff5b13bff19cf16f0fbf46edb721e3@example.com"),
        message("<stored-bare.1@example.com>"),
        message("3a53c9f2-1a8e-41f0-bb95-58c8029e16f0"),
    )

    first_plan, _ = sync(ready_run(admin), mailbox)
    _, second = sync(ready_run(admin), mailbox)

    assert [row.action for row in first_plan.rows] == [Action.UPDATE, Action.UPDATE, Action.CREATE]
    assert first_plan.rows[1].upsert_key == "stored-bare.1@example.com"
    assert (second.created, second.updated) == (0, 3)
    assert len(tasks_with_key(admin, "stored-bare.1@example.com")) == 1
    assert tasks_with_key(admin, "<stored-bare.1@example.com>") == []
    assert len(tasks_with_key(admin, "<3a53c9f2-1a8e-41f0-bb95-58c8029e16f0>")) == 1


def test_cases__from_paragraph_keeps_whole_body(
    admin: OrgConnection, tmp_path: Path
) -> None:
    body = "First paragraph.\n\nFrom here on, we agree.\n\nFrom that day on, prices held.\nLast line."
    mailbox = write_mbox(tmp_path / "from.mbox", message("<from-para@x.example>", body=body))

    plan, result = sync(ready_run(admin), mailbox)

    assert [row.action for row in plan.rows] == [Action.CREATE]
    assert result.created == 1
    soql = "SELECT Description FROM Task WHERE Message_ID__c = '<from-para@x.example>'"
    (row,) = admin.query_all(soql)
    assert row["Description"] == body


def test_mailbox__key_spellings_make_one_task(
    admin: OrgConnection, tmp_path: Path
) -> None:
    mailbox = write_mbox(
        tmp_path / "spellings.mbox",
        message("<one-key@x.example>"),
        message("one-key@x.example"),
        message("  < one-key@x.example >  "),
        message("<one-key@x.example> (a comment)"),
    )

    plan, result = sync(ready_run(admin), mailbox)

    assert [row.action for row in plan.rows] == [Action.CREATE] + [Action.EXCLUDED] * 3
    assert result.created == 1
    assert len(tasks_with_key(admin, "<one-key@x.example>")) == 1


@pytest.mark.parametrize(
    "letter", ["a", "\u00fc", "\U0001f600"], ids=["ascii", "two-byte-utf8", "utf16-surrogate-pair"]
)
def test_key_length__255_written_256_invalid(
    admin: OrgConnection, tmp_path: Path, letter: str
) -> None:
    suffix = "@x.example>"
    units = len(letter.encode("utf-16-le")) // 2
    fits = "<" + letter + "k" * (255 - 1 - units - len(suffix)) + suffix
    too_long = "<" + letter + "m" * (256 - 1 - units - len(suffix)) + suffix
    mailbox = write_mbox(tmp_path / "lengths.mbox", message(fits), message(too_long))

    plan, result = sync(ready_run(admin), mailbox)

    assert [row.action for row in plan.rows] == [Action.CREATE, Action.INVALID]
    assert "256 characters" in plan.rows[1].reason
    assert result.created == 1
    assert len(tasks_with_key(admin, fits)) == 1


# -- odd mailbox files ----------------------------------------------------------------


def _directory(tmp_path: Path) -> Path:
    folder = tmp_path / "folder.mbox"
    folder.mkdir()
    return folder


def _utf16(tmp_path: Path) -> Path:
    path = tmp_path / "utf16.mbox"
    path.write_bytes(message("<u16@x.example>").encode("utf-16"))
    return path


def _symlink_loop(tmp_path: Path) -> Path:
    first, second = tmp_path / "loop-a.mbox", tmp_path / "loop-b.mbox"
    first.symlink_to(second)
    second.symlink_to(first)
    return first


def _nul_first_line(tmp_path: Path) -> Path:
    path = tmp_path / "nul.mbox"
    path.write_bytes(b"\x00" * 16 + b"\n" + message("<n@x.example>").encode())
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.mbox"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "make", [_directory, _utf16, _symlink_loop, _nul_first_line, _fifo],
    ids=["directory", "utf16", "symlink-loop", "nul-first-line", "fifo"],
)
def test_mailbox__odd_file_is_rejected_before_reading(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path)

    with pytest.raises(MailboxError) as raised:
        read_mbox(path)

    assert str(path) in str(raised.value)


def test_mailbox__crlf_with_ctrl_z_reads_all(tmp_path: Path) -> None:
    text = message("<crlf-1@x.example>") + message("<crlf-2@x.example>", body="Last body.")
    path = tmp_path / "windows.mbox"
    path.write_bytes(text.replace("\n", "\r\n").encode() + b"\x1a")

    items = [item for item in read_mbox(path) if isinstance(item, MailActivity)]

    assert [item.message_id.key for item in items] == ["<crlf-1@x.example>", "<crlf-2@x.example>"]
    assert items[0].body_text == "Body text."


def test_mailbox__message_of_only_headers_is_an_activity(tmp_path: Path) -> None:
    path = tmp_path / "headers.mbox"
    path.write_text(f"{SEPARATOR}\nMessage-ID: <headers-only@x.example>\nSubject: only headers")

    (item,) = list(read_mbox(path))

    assert isinstance(item, MailActivity)
    assert item.message_id.key == "<headers-only@x.example>"
    assert item.subject == "only headers"
    assert item.body_text == ""


# -- the environment -------------------------------------------------------------------


def test_cases__ca_variables_do_not_override_profile_ca(
    default_org: PracticeOrg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    admin = connect_admin(default_org)
    mailbox = write_mbox(tmp_path / "ca.mbox", message("<ca-env@x.example>"))

    default_org.expire_sessions()
    _, result = sync(ready_run(admin), mailbox)

    assert result.created == 1


def test_rehearse__directory_mailbox_fails_sync_then_scans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _directory(tmp_path)

    status = main(["rehearse", "--json", "--db", str(tmp_path / "org.sqlite3"), "--mailbox", str(folder)])
    report = json.loads(capsys.readouterr().out)

    steps = {step["name"]: step for step in report["steps"]}
    assert status == 1
    assert steps["local_sync"]["status"] == "failed"
    assert str(folder) in steps["local_sync"]["reason"]
    # The scan still runs; the default org's bracket variants fail it on their own.
    assert steps["conflicts"]["reason"].startswith("Read ")
