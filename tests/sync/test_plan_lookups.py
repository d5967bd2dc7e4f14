"""Planning reads the org only, so a lookup that fails in passing is sent again before the plan stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.core.plan import Plan
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed import FLAG_FIELD
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import explain
from backstory_desktop.salesforce.schema import FieldState, inspect_message_id_field
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.store.journal import Journal
from backstory_desktop.sync import planner

KEY_FIELD = "Message_ID__c"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal.open(tmp_path / "journal.sqlite3")
    yield opened
    opened.close()


def _plan(admin: OrgConnection, journal: Journal, field: FieldState,
          cancel: threading.Event | None = None) -> Plan:
    return planner.build_plan(
        admin, read_mbox(sample_mailbox_path()), journal=journal, source_label="sample.mbox",
        source_kind="mbox", field=field, flag_field=FLAG_FIELD, cancel=cancel,
    )


def test_plan__unavailable_server_retried(default_org: PracticeOrg, admin: OrgConnection,
                                          journal: Journal) -> None:
    field = inspect_message_id_field(admin, KEY_FIELD)
    expected = _plan(admin, journal, field).counts()
    default_org.faults = FaultPlan(seed=3, server_unavailable_rate=0.6)

    counts = _plan(admin, journal, field).counts()

    assert counts == expected


def test_plan__lasting_outage_stops_plan(default_org: PracticeOrg, admin: OrgConnection,
                                         journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    field = inspect_message_id_field(admin, KEY_FIELD)
    monkeypatch.setattr(planner, "FIRST_LOOKUP_WAIT_SECONDS", 0.05)
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)
    before = default_org.request_count

    with pytest.raises(Exception) as raised:
        _plan(admin, journal, field)

    assert explain(raised.value).error_code == "SERVER_UNAVAILABLE"
    assert default_org.request_count - before >= planner.LOOKUP_ATTEMPTS
    assert journal.runs() == []


def test_plan__cancel_ends_retry_wait(default_org: PracticeOrg, admin: OrgConnection,
                                      journal: Journal) -> None:
    field = inspect_message_id_field(admin, KEY_FIELD)
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)
    cancel = threading.Event()
    timer = threading.Timer(1.5, cancel.set)
    timer.start()
    started = time.monotonic()

    try:
        with pytest.raises(Cancelled):
            _plan(admin, journal, field, cancel)
    finally:
        timer.cancel()

    assert time.monotonic() - started < 4.0
