"""The scan for values that would stop the Message-ID field from being made Unique.

Task and Event share the Activity field's unique index, recycle bin and archive
included, so the scan reads both through queryAll.
"""

from __future__ import annotations

import threading

import pytest

from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.unique_blockers import find_unique_blockers
from tests.conftest import StartOrg

FIELD = "Message_ID__c"


def _admin_of(start_org: StartOrg, scenario: str) -> OrgConnection:
    org = start_org(scenario)
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


def _create(conn: OrgConnection, sobject: str, key: str) -> str:
    fields = {"Subject": f"{sobject} holding {key}", FIELD: key}
    if sobject == "Event":
        fields.update({"StartDateTime": "2026-12-01T10:00:00Z", "EndDateTime": "2026-12-01T10:30:00Z"})
    created = conn.request("POST", f"sobjects/{sobject}", json=fields)
    return str(created["id"])


def test_blockers__non_unique_scenario_copies_found(start_org: StartOrg) -> None:
    admin = _admin_of(start_org, "non-unique")

    blockers = find_unique_blockers(admin, FIELD, case_sensitive=True)

    # One key held by two live Tasks, one by a live and a recycled Task, one by a live and
    # an archived Task.
    states = sorted(
        tuple(sorted((record.deleted, record.archived) for record in blocker.records))
        for blocker in blockers
    )
    assert states == [
        ((False, False), (False, False)),
        ((False, False), (False, True)),
        ((False, False), (True, False)),
    ]
    for blocker in blockers:
        assert {record.sobject for record in blocker.records} == {"Task"}
        assert {record.value for record in blocker.records} == {blocker.value}


def test_blockers__task_and_event_share_the_index(start_org: StartOrg) -> None:
    admin = _admin_of(start_org, "non-unique")
    task_id = _create(admin, "Task", "<shared-across@objects.example>")
    event_id = _create(admin, "Event", "<shared-across@objects.example>")

    blockers = find_unique_blockers(admin, FIELD, case_sensitive=True)

    across = [b for b in blockers if b.value == "<shared-across@objects.example>"]
    assert len(across) == 1
    assert {(r.sobject, r.record_id) for r in across[0].records} == {("Task", task_id), ("Event", event_id)}


def test_blockers__case_rule_decides_case_only_pairs(start_org: StartOrg) -> None:
    admin = _admin_of(start_org, "non-unique")
    _create(admin, "Event", "<Case-Pair@example.com>")
    _create(admin, "Event", "<case-pair@example.com>")

    sensitive = find_unique_blockers(admin, FIELD, case_sensitive=True)
    insensitive = find_unique_blockers(admin, FIELD, case_sensitive=False)

    assert not any(b.value.casefold() == "<case-pair@example.com>" for b in sensitive)
    pairs = [b for b in insensitive if b.value.casefold() == "<case-pair@example.com>"]
    assert len(pairs) == 1
    assert len(pairs[0].records) == 2


def test_blockers__recycled_record_still_blocks(start_org: StartOrg) -> None:
    admin = _admin_of(start_org, "non-unique")
    live = _create(admin, "Task", "<recycled-pair@example.com>")
    recycled = _create(admin, "Event", "<recycled-pair@example.com>")
    admin.request("DELETE", f"sobjects/Event/{recycled}")

    blockers = find_unique_blockers(admin, FIELD, case_sensitive=True)

    pair = next(b for b in blockers if b.value == "<recycled-pair@example.com>")
    deleted = {record.record_id: record.deleted for record in pair.records}
    assert deleted == {live: False, recycled: True}


def test_blockers__cancel_stops_the_scan(start_org: StartOrg) -> None:
    admin = _admin_of(start_org, "non-unique")
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(Cancelled):
        find_unique_blockers(admin, FIELD, case_sensitive=True, cancel=cancel)
