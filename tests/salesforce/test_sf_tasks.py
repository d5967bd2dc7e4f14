"""Tasks by Message-ID in the practice org: hostile keys, lookups, scans, upsert outcomes."""

from __future__ import annotations

import threading

import pytest
from simple_salesforce.exceptions import SalesforceMoreThanOneRecord
from simple_salesforce.format import format_external_id

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.errors import explain
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.oauth import TokenSet
from backstory_desktop.salesforce.tasks import (
    UpsertCancelled,
    UpsertInterrupted,
    find_people_by_email,
    find_tasks_by_keys,
    find_users_by_email,
    scan_tasks,
    upsert_tasks,
)


def connect_practice(org: PracticeOrg, username: str) -> OrgConnection:
    """Sign in to ``org`` as ``username`` through the PKCE flow."""
    return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)

FIELD = "Message_ID__c"
HOSTILE_KEYS = [
    "<a/b@x.example>",
    "<with space@x.example>",
    "<a#frag@x.example>",
    "<a?b=c@x.example>",
    "<a/../../../Case/500000000000001AAA#@attacker.example>",
    "<o'neil.20240101@example.com>",
    "<a_b%c@example.com>",
    "<CAEA+Pe0Bx+y/Zq==@mail.gmail.com>",
]


def task_bodies(keys: list[str], subject: str) -> list[dict[str, object]]:
    return [{FIELD: key, "Subject": f"{subject} {index}"} for index, key in enumerate(keys)]


def test_upsert__hostile_keys_create_then_update(admin: OrgConnection) -> None:
    first = upsert_tasks(admin, FIELD, task_bodies(HOSTILE_KEYS, "first"))
    second = upsert_tasks(admin, FIELD, task_bodies(HOSTILE_KEYS, "second"))

    assert [outcome.key for outcome in first] == HOSTILE_KEYS
    assert all(outcome.success for outcome in first), first
    assert all(outcome.created for outcome in first)
    assert all(outcome.success for outcome in second), second
    assert not any(outcome.created for outcome in second)
    assert [outcome.record_id for outcome in second] == [outcome.record_id for outcome in first]


def test_upsert__expired_session_renewed_and_replayed(default_org: PracticeOrg) -> None:
    signed_in = connect_practice(default_org, default_org.admin_username)
    stale = TokenSet(
        access_token="00D000000000001!expired",
        refresh_token=signed_in.tokens.refresh_token,
        instance_url=signed_in.tokens.instance_url,
        id_url=signed_in.tokens.id_url,
        issued_at="",
    )
    conn = OrgConnection(
        build_session(default_org.ca_bundle),
        stale,
        login_host=default_org.base_url,
        client_id=default_org.client_id,
    )

    (outcome,) = upsert_tasks(conn, FIELD, task_bodies(["<replay.1@x.example>"], "replay"))

    assert outcome.success
    assert outcome.created
    found = find_tasks_by_keys(signed_in, FIELD, ["<replay.1@x.example>"])
    assert [record.id for record in found["<replay.1@x.example>"]] == [outcome.record_id]


def test_upsert__hostile_keys_found_exactly(admin: OrgConnection) -> None:
    outcomes = upsert_tasks(admin, FIELD, task_bodies(HOSTILE_KEYS, "found"))

    found = find_tasks_by_keys(admin, FIELD, HOSTILE_KEYS)

    assert set(found) == set(HOSTILE_KEYS)
    for outcome in outcomes:
        records = found[outcome.key]
        assert [record.id for record in records] == [outcome.record_id]
        assert records[0].key == outcome.key
        assert records[0].subject.startswith("found")


def test_upsert__no_other_object_touched(admin: OrgConnection) -> None:
    cases_before = list(admin.query_all("SELECT Id FROM Task WHERE Subject LIKE 'found%'"))
    upsert_tasks(admin, FIELD, task_bodies(HOSTILE_KEYS[4:5], "found"))
    rows = list(admin.query_all("SELECT Id, Subject FROM Task WHERE Subject LIKE 'found%'"))
    assert len(rows) == len(cases_before) + 1
    assert all(row["Id"].startswith("00T") for row in rows)


def test_find__bare_spelling_found_by_bracketed_key(admin: OrgConnection) -> None:
    (outcome,) = upsert_tasks(admin, FIELD, [{FIELD: "bare.key.1@x.example", "Subject": "bare"}])
    found = find_tasks_by_keys(admin, FIELD, ["<bare.key.1@x.example>"])
    assert [record.id for record in found["<bare.key.1@x.example>"]] == [outcome.record_id]
    assert found["<bare.key.1@x.example>"][0].key == "bare.key.1@x.example"


def test_find__deleted_task_found(admin: OrgConnection) -> None:
    (outcome,) = upsert_tasks(admin, FIELD, [{FIELD: "<deleted.1@x.example>", "Subject": "bin"}])
    admin.request("DELETE", f"sobjects/Task/{outcome.record_id}")
    found = find_tasks_by_keys(admin, FIELD, ["<deleted.1@x.example>"])
    (record,) = found["<deleted.1@x.example>"]
    assert record.id == outcome.record_id
    assert record.is_deleted


def test_find__archived_task_found(admin: OrgConnection) -> None:
    soql = f"SELECT Id, {FIELD} FROM Task WHERE IsArchived = true AND {FIELD} != null"
    archived = list(admin.query_all(soql, include_deleted=True))
    assert archived, "the default scenario has an archived Task with a key"
    stored = archived[0][FIELD]
    bracketed = stored if stored.startswith("<") else f"<{stored}>"

    found = find_tasks_by_keys(admin, FIELD, [bracketed])

    by_id = {record.id: record for record in found[bracketed]}
    assert archived[0]["Id"] in by_id
    assert by_id[archived[0]["Id"]].is_archived


def test_find__unknown_key_gives_empty_list(admin: OrgConnection) -> None:
    assert find_tasks_by_keys(admin, FIELD, ["<never.seen@x.example>"]) == {
        "<never.seen@x.example>": []
    }


def test_find__many_keys_chunked(admin: OrgConnection) -> None:
    keys = [f"<bulk.{index}@x.example>" for index in range(230)]
    outcomes = upsert_tasks(admin, FIELD, task_bodies(keys, "bulk"))
    assert all(outcome.success for outcome in outcomes)
    found = find_tasks_by_keys(admin, FIELD, keys)
    assert all(len(found[key]) == 1 for key in keys)


def test_find__both_spellings_found_for_each(admin: OrgConnection) -> None:
    (outcome,) = upsert_tasks(admin, FIELD, [{FIELD: "both.1@x.example", "Subject": "bare"}])

    found = find_tasks_by_keys(admin, FIELD, ["<both.1@x.example>", "both.1@x.example"])

    assert [record.id for record in found["<both.1@x.example>"]] == [outcome.record_id]
    assert [record.id for record in found["both.1@x.example"]] == [outcome.record_id]


def test_find__each_spelling_asked_once(default_org: PracticeOrg, admin: OrgConnection) -> None:
    keys = [f"<asked.{index}@x.example>" for index in range(100)]
    before = default_org.request_count

    find_tasks_by_keys(admin, FIELD, keys + [key.strip("<>") for key in keys])

    # 200 distinct values fit one query of 100 keys in two spellings each.
    assert default_org.request_count - before == 1


def test_upsert__more_than_200_records_split(admin: OrgConnection) -> None:
    keys = [f"<split.{index}@x.example>" for index in range(450)]
    progress: list[tuple[int, int]] = []
    outcomes = upsert_tasks(
        admin, FIELD, task_bodies(keys, "split"), progress=lambda d, t, m: progress.append((d, t))
    )
    assert [outcome.key for outcome in outcomes] == keys
    assert all(outcome.created for outcome in outcomes)
    assert progress == [(200, 450), (400, 450), (450, 450)]


def test_upsert__cancel_stops_before_the_next_request(admin: OrgConnection) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(UpsertCancelled) as raised:
        upsert_tasks(admin, FIELD, task_bodies(["<cancel.1@x.example>"], "cancel"), cancel=cancel)
    assert raised.value.outcomes == []
    assert find_tasks_by_keys(admin, FIELD, ["<cancel.1@x.example>"])["<cancel.1@x.example>"] == []


def test_upsert__task_subtype_on_update_fails_that_record(admin: OrgConnection) -> None:
    body = {FIELD: "<subtype.1@x.example>", "Subject": "s", "TaskSubtype": "Email"}
    (created,) = upsert_tasks(admin, FIELD, [body])
    (updated,) = upsert_tasks(admin, FIELD, [body])
    assert created.success
    assert not updated.success
    assert updated.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert updated.fields == ("TaskSubtype",)


def test_upsert__hidden_key_field_stops_the_run(default_org: PracticeOrg) -> None:
    conn = connect_practice(default_org, default_org.integration_username)
    with pytest.raises(UpsertInterrupted) as raised:
        upsert_tasks(conn, FIELD, task_bodies(["<nofls.1@x.example>"], "nofls"))
    assert raised.value.outcomes == []
    assert raised.value.in_doubt == []
    assert raised.value.problem.error_code == "NOT_FOUND"
    assert "field-level security" in raised.value.problem.sentence


def test_upsert__record_without_key_rejected(admin: OrgConnection) -> None:
    with pytest.raises(ValueError):
        upsert_tasks(admin, FIELD, [{"Subject": "no key"}])


def test_scan__yields_every_keyed_task(admin: OrgConnection) -> None:
    upsert_tasks(admin, FIELD, task_bodies(["<scan.1@x.example>", "<scan.2@x.example>"], "scan"))
    progress: list[tuple[int, int]] = []
    records = list(
        scan_tasks(
            admin,
            FIELD,
            flag_field="peopleai__Created_by_PeopleAI__c",
            progress=lambda d, t, m: progress.append((d, t)),
        )
    )
    soql = f"SELECT Id FROM Task WHERE {FIELD} != null"
    expected = {row["Id"] for row in admin.query_all(soql, include_deleted=True)}
    assert {record.id for record in records} == expected
    assert all(record.key for record in records)
    assert {"<scan.1@x.example>", "<scan.2@x.example>"} <= {record.key for record in records}
    assert progress[-1] == (len(records), len(records))
    assert all(record.owner_name for record in records)


def test_scan__cancel_stops_the_scan(admin: OrgConnection) -> None:
    cancel = threading.Event()
    cancel.set()
    from backstory_desktop.core.jobs import Cancelled

    with pytest.raises(Cancelled):
        list(scan_tasks(admin, FIELD, flag_field=None, cancel=cancel))


def test_users__found_by_email_with_active_flag(admin: OrgConnection) -> None:
    rows = list(admin.query_all("SELECT Email, IsActive FROM User"))
    emails = [row["Email"] for row in rows]
    users = find_users_by_email(admin, [email.upper() for email in emails])
    assert set(users) == {email.lower() for email in emails}
    inactive = [row["Email"].lower() for row in rows if not row["IsActive"]]
    assert all(not users[email].is_active for email in inactive if email in users)


def test_people__contacts_first_then_leads(admin: OrgConnection) -> None:
    contacts = list(admin.query_all("SELECT Id, Email FROM Contact WHERE Email != null"))
    leads = list(admin.query_all("SELECT Id, Email FROM Lead WHERE Email != null"))
    emails = [row["Email"] for row in contacts + leads] + ["nobody@nowhere.example"]
    found_contacts, found_leads = find_people_by_email(admin, emails)
    assert set(found_contacts) == {row["Email"].lower() for row in contacts}
    assert not set(found_leads) & set(found_contacts)
    assert "nobody@nowhere.example" not in found_contacts
    assert "nobody@nowhere.example" not in found_leads


def test_non_unique__duplicate_key_is_a_conflict(start_org: object) -> None:
    org: PracticeOrg = start_org("non-unique")  # type: ignore[operator]
    conn = connect_practice(org, org.admin_username)
    groups: dict[str, list[str]] = {}
    for record in scan_tasks(conn, FIELD, flag_field=None):
        if not record.is_deleted:
            groups.setdefault(record.key or "", []).append(record.id)
    key, ids = next((key, ids) for key, ids in groups.items() if len(ids) > 1)

    (outcome,) = upsert_tasks(conn, FIELD, [{FIELD: key, "Subject": "third copy?"}])
    assert not outcome.success
    assert outcome.error_code == "DUPLICATE_EXTERNAL_ID"

    with pytest.raises(SalesforceMoreThanOneRecord) as raised:
        conn.request("PATCH", f"sobjects/Task/{format_external_id(FIELD, key)}", json={"Subject": "x"})
    problem = explain(raised.value)
    for record_id in ids:
        assert record_id in problem.sentence
    assert len(find_tasks_by_keys(conn, FIELD, [key])[key]) >= 2
