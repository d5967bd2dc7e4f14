"""Fault drills: each failure the practice org can inject, during an apply through the journal.

Every drill plans a new mailbox with no faults and applies it with one kind of fault switched on.
The run must end with every record written once or QUEUED with a reason: nothing doubled, nothing
left SENDING or in doubt. Then the faults are switched off and
retry_queued writes the rest, still with one Task per key.

A Cancel during a slow upsert leaves that call's rows IN_DOUBT, and the next apply settles them.
The last test counts the API calls of a Collections apply of 10,000 activities.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cadence_drill import write_drill_mailbox
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed import FLAG_FIELD
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.http import DEFAULT_TIMEOUT, SalesforceSession
from backstory_desktop.salesforce.schema import inspect_message_id_field
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.store.journal import ItemState, Journal
from backstory_desktop.sync.engine import apply_run, retry_queued
from backstory_desktop.sync.planner import build_plan
from backstory_desktop.sync.settings import SyncSettings

KEY_FIELD = "Message_ID__c"
WAVE_SIZE = 400
# Few attempts and no waiting, so a drill ends in seconds and leaves some records queued.
DRILL_SETTINGS = SyncSettings(bulk_threshold=1_000_000, max_attempts=2, first_retry_seconds=0.0,
                              max_retry_seconds=0.0, api_reserve_fraction=0.0)
# The calls of an apply of WAVE_SIZE rows without faults: /limits and two upserts of 200.
MIN_CALLS = 3
# States that must not remain once a run returned: each is work the run did not settle.
UNSETTLED = (ItemState.SENDING, ItemState.IN_DOUBT, ItemState.PLANNED)


def _no_sleep(seconds: float) -> None:
    """The drills' sleep: back-off waits are skipped, their count still shows in the journal."""


@dataclass
class Drill:
    org: PracticeOrg
    admin: OrgConnection
    journal: Journal
    keys: list[str]
    run_id: str


def _live_keys(db_path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as database:
        rows = database.execute(
            "SELECT fields FROM records WHERE sobject = 'Task' AND is_deleted = 0").fetchall()
    for (fields,) in rows:
        key = json.loads(fields).get(KEY_FIELD)
        if key:
            counts[key_spellings(key)[0]] += 1
    return counts


@pytest.fixture
def journal(tmp_path: Path) -> Any:
    opened = Journal.open(tmp_path / "journal.sqlite3")
    yield opened
    opened.close()


def _planned(org: PracticeOrg, admin: OrgConnection, journal: Journal, tmp_path: Path,
             size: int = WAVE_SIZE) -> Drill:
    mailbox = tmp_path / "drill.mbox"
    keys = write_drill_mailbox(sample_mailbox_path(), mailbox, count=size, token="fault")
    plan = build_plan(admin, read_mbox(mailbox), journal=journal, source_label=mailbox.name,
                      source_kind="mbox", field=inspect_message_id_field(admin, KEY_FIELD),
                      flag_field=FLAG_FIELD, progress=lambda *_: None, cancel=None)
    assert plan.run_id is not None
    assert plan.counts().get("create") == size
    return Drill(org, admin, journal, keys, plan.run_id)


def _check_settled(drill: Drill, *, in_doubt: bool = False) -> list[str]:
    """Check every key is written once or queued with a reason; return the queued keys.

    With ``in_doubt``, rows whose call got no response may stay IN_DOUBT: when every call
    times out, not even the lookup that would settle them gets through.
    """
    summary = drill.journal.run(drill.run_id)
    unsettled = {state: summary.states.get(state, 0) for state in UNSETTLED if summary.states.get(state)}
    if in_doubt:
        unsettled.pop(ItemState.IN_DOUBT, None)
        assert summary.stop_reason or summary.states.get(ItemState.QUEUED), summary
    assert unsettled == {}, f"{summary.states} ({summary.stop_reason})"
    assert not summary.states.get(ItemState.FAILED), summary.states
    queued = drill.journal.queued_items(drill.run_id)
    assert all(item.error_code or item.message for item in queued), queued
    queued_keys = {item.key for item in queued if item.key is not None}
    if in_doubt:
        queued_keys |= set(drill.journal.keys_in_states(drill.run_id, [ItemState.IN_DOUBT]))
    live = _live_keys(drill.org.db_path)
    assert [key for key in drill.keys if live[key] > 1] == []
    assert [key for key in drill.keys if live[key] == 0 and key not in queued_keys] == []
    assert summary.states.get(ItemState.QUEUED, 0) == len(queued)
    return sorted(queued_keys)


def _retry_writes_the_rest(drill: Drill) -> None:
    drill.org.faults = FaultPlan()
    drill.org.daily_api_limit = 15000
    _set_timeout(drill.admin, DEFAULT_TIMEOUT)
    retry_queued(drill.admin, drill.journal, drill.run_id, settings=DRILL_SETTINGS,
                 progress=lambda *_: None, cancel=None)
    summary = drill.journal.run(drill.run_id)
    written = summary.states.get(ItemState.CREATED, 0) + summary.states.get(ItemState.UPDATED, 0)
    assert written == len(drill.keys), summary.states
    live = _live_keys(drill.org.db_path)
    assert [live[key] for key in drill.keys] == [1] * len(drill.keys)


FAULTS: dict[str, FaultPlan] = {
    "server_error": FaultPlan(server_error_rate=0.5, seed=10),
    "server_unavailable": FaultPlan(server_unavailable_rate=0.5, seed=2),
    "unable_to_lock_row": FaultPlan(unable_to_lock_row_rate=0.3, seed=3),
    "expired_session": FaultPlan(expired_session_rate=0.5, seed=4),
    "dropped_connection": FaultPlan(dropped_connection_rate=0.5, seed=10),
    "dropped_after_commit": FaultPlan(dropped_after_commit_rate=0.5, seed=6),
    "gateway_error": FaultPlan(gateway_error_rate=0.4, seed=7),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_fault_drill__written_once_or_queued(kind: str, default_org: PracticeOrg, admin: OrgConnection,
                                             journal: Journal, tmp_path: Path) -> None:
    drill = _planned(default_org, admin, journal, tmp_path)
    default_org.faults = FAULTS[kind]

    result = apply_run(admin, journal, drill.run_id, settings=DRILL_SETTINGS, progress=lambda *_: None,
                       cancel=None, sleep=_no_sleep)

    queued = _check_settled(drill)
    assert result.queued == len(queued)
    # The fault hit the run: rows were queued, or calls were sent again or looked up.
    assert result.queued or result.api_calls > MIN_CALLS, result
    _retry_writes_the_rest(drill)


def test_fault_drill__gateway_page_never_shown(default_org: PracticeOrg, admin: OrgConnection,
                                               journal: Journal, tmp_path: Path) -> None:
    drill = _planned(default_org, admin, journal, tmp_path)
    default_org.faults = FaultPlan(gateway_error_rate=0.7, seed=8)
    before = default_org.request_count

    result = apply_run(admin, journal, drill.run_id, settings=DRILL_SETTINGS, progress=lambda *_: None,
                       cancel=None, sleep=_no_sleep)

    # Most lookups of rows in doubt fail too at this rate, so some may stay in doubt, with a reason.
    _check_settled(drill, in_doubt=True)
    assert default_org.request_count - before > MIN_CALLS, result
    summary = journal.run(drill.run_id)
    messages = [summary.stop_reason, result.stopped_because,
                *(item.message for item in journal.queued_items(drill.run_id)),
                *(line.message for line in journal.result_lines(drill.run_id)),
                *(entry["outcome"] for entry in journal.call_history(drill.run_id))]
    assert [text for text in messages if "<" in text or "nginx" in text.lower()] == []
    gateway = [text for text in messages if "HTTP 502" in text or "HTTP 504" in text]
    assert gateway, messages
    assert all(text.endswith(".") for text in gateway), gateway
    _retry_writes_the_rest(drill)


def test_fault_drill__daily_limit_spent_mid_run(default_org: PracticeOrg, admin: OrgConnection,
                                                journal: Journal, tmp_path: Path) -> None:
    drill = _planned(default_org, admin, journal, tmp_path, size=1000)

    def spend_the_day(done: int, total: int, message: str) -> None:
        # Another integration spends what is left of the day's calls after the first batch.
        if done and default_org.daily_api_limit == 15000:
            default_org.daily_api_limit = _used_calls(admin)

    result = apply_run(admin, journal, drill.run_id, settings=DRILL_SETTINGS, progress=spend_the_day,
                       cancel=None, sleep=_no_sleep)

    queued = _check_settled(drill)
    assert queued, result
    assert result.queued == len(queued)
    assert any(item.error_code == "REQUEST_LIMIT_EXCEEDED" or "limit" in item.message.lower()
               for item in journal.queued_items(drill.run_id))
    _retry_writes_the_rest(drill)


def _set_timeout(connection: OrgConnection, timeout: tuple[float, float]) -> None:
    """Set the connect and read timeouts of every later call of the connection."""
    session = connection.session
    assert isinstance(session, SalesforceSession)
    session.default_timeout = timeout


def _used_calls(admin: OrgConnection) -> int:
    usage = admin.api_usage
    assert usage is not None
    return usage[0]


def test_fault_drill__latency_times_out(default_org: PracticeOrg, admin: OrgConnection, journal: Journal,
                                        tmp_path: Path) -> None:
    drill = _planned(default_org, admin, journal, tmp_path)
    default_org.faults = FaultPlan(latency_seconds=0.5)
    # Every call takes longer than the client waits for a response.
    _set_timeout(admin, (5.0, 0.2))

    result = apply_run(admin, journal, drill.run_id, settings=DRILL_SETTINGS, progress=lambda *_: None,
                       cancel=None, sleep=_no_sleep)

    _check_settled(drill, in_doubt=True)
    assert result.queued or result.in_doubt, result
    _retry_writes_the_rest(drill)


# -- API calls per 10,000 activities -----------------------------------------------------------


def test_collections__calls_per_10000(default_org: PracticeOrg, admin: OrgConnection, journal: Journal,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = _planned(default_org, admin, journal, tmp_path, size=10_000)
    before = default_org.request_count

    result = apply_run(admin, journal, drill.run_id, settings=SyncSettings(bulk_threshold=1_000_000),
                       progress=lambda *_: None, cancel=None)

    calls = default_org.request_count - before
    with capsys.disabled():
        print(f"\nCollections apply of 10,000 activities: {calls} API calls "
              f"(the engine counted {result.api_calls})")
    assert result.created == 10_000
    assert calls <= 51
    assert result.api_calls == calls



def test_fault_drill__cancel_during_slow_upsert(default_org: PracticeOrg, admin: OrgConnection,
                                                journal: Journal, tmp_path: Path) -> None:
    drill = _planned(default_org, admin, journal, tmp_path)
    # Each call takes 2 s: the cancel comes while the first upsert (after /limits) is on its way.
    default_org.faults = FaultPlan(latency_seconds=2.0)
    cancel = threading.Event()
    timer = threading.Timer(3.0, cancel.set)
    timer.start()
    started = time.monotonic()

    try:
        result = apply_run(admin, journal, drill.run_id, settings=DRILL_SETTINGS,
                           progress=lambda *_: None, cancel=cancel, sleep=_no_sleep)
    finally:
        timer.cancel()

    assert time.monotonic() - started < 3.0 + DRILL_SETTINGS.cancel_grace_seconds + 1.5
    assert result.stopped_because
    states = journal.run(drill.run_id).states
    assert states.get(ItemState.SENDING, 0) == 0, states
    assert states.get(ItemState.IN_DOUBT, 0) == 200, states
    default_org.faults = FaultPlan()
    time.sleep(0.5)  # the abandoned upsert ends on the server
    apply_run(admin, journal, drill.run_id, settings=DRILL_SETTINGS, progress=lambda *_: None, cancel=None)
    live = _live_keys(default_org.db_path)
    assert [live[key] for key in drill.keys] == [1] * len(drill.keys)
