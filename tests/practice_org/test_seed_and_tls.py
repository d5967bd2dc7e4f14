"""The seeded scenarios and the local certificate files, read straight from disk."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.practice_org.seed import seed_org
from backstory_desktop.practice_org.store import Store
from backstory_desktop.practice_org.tls import ensure_tls_files

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


def seeded_rows(path: Path, scenario: str) -> list[tuple[str, str, dict[str, object]]]:
    store = Store(path)
    seed_org(store, scenario, sample_mailbox_path(), now=NOW)
    rows = [(r.id, r.created_date, r.fields)
            for sobject in ("User", "Contact", "Lead", "Task", "FieldPermissions")
            for r in store.records_of(sobject)]
    store.close()
    return rows


def test_seed__same_mailbox_gives_same_records(tmp_path: Path) -> None:
    first = seeded_rows(tmp_path / "a.db", "default")
    second = seeded_rows(tmp_path / "b.db", "default")

    assert first == second


def test_seed__default_contains_duplicates_to_find(tmp_path: Path) -> None:
    store = Store(tmp_path / "org.db")
    seed_org(store, "default", sample_mailbox_path(), now=NOW)
    tasks = store.records_of("Task")
    keyed = [t for t in tasks if t.fields.get("Message_ID__c")]
    bare = {str(t.fields["Message_ID__c"]).strip("<>") for t in keyed if not t.is_deleted
            and not t.is_archived}

    archived = [str(t.fields["Message_ID__c"]).strip("<>") for t in keyed if t.is_archived]
    recycled = [str(t.fields["Message_ID__c"]).strip("<>") for t in keyed if t.is_deleted]
    assert archived
    assert archived[0] in bare
    assert recycled
    assert recycled[0] in bare
    assert any(str(t.fields["Message_ID__c"]).startswith("<") for t in keyed)
    assert any(not str(t.fields["Message_ID__c"]).startswith("<") for t in keyed)
    calls = [t for t in tasks if t.fields.get("CallType") == "Outbound"]
    assert any(call.fields.get("TaskSubtype") != "Call" for call in calls)
    assert any(t.fields.get("Message_ID__c") is None and t.fields.get("WhoId") for t in tasks)


def test_seed__unknown_scenario_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown practice org scenario"):
        seed_org(Store(tmp_path / "org.db"), "blank", sample_mailbox_path())


def test_seed__empty_has_users_and_nothing_else(tmp_path: Path) -> None:
    store = Store(tmp_path / "org.db")
    seed_org(store, "empty", sample_mailbox_path(), now=NOW)

    usernames = {str(user.fields["Username"]) for user in store.records_of("User")}
    assert "integration@practice.backstory.example" in usernames
    assert store.records_of("Task") == []
    assert store.records_of("Contact") == []
    assert store.records_of("Lead") == []
    assert [field.name for field in store.custom_fields()] == ["peopleai__Created_by_PeopleAI__c"]


def test_tls__key_files_are_owner_only_and_reused(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path / "org.db")
    again = ensure_tls_files(tmp_path / "org.db")

    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((files.ca_cert.parent / "ca-key.pem").stat().st_mode) == 0o600
    assert again.ca_cert.read_bytes() == files.ca_cert.read_bytes()
    assert files.ca_cert.parent.name == "org.db.tls"
