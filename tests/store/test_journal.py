"""The sync journal keeps every run's rows and their states, commits before each call, and locks an org."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from backstory_desktop.core.plan import Action, FieldRules, FirstRow, InactiveOwner, PlanRow, ReasonCode
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.store.journal import (
    ItemState,
    ItemUpdate,
    Journal,
    JournalError,
    JournalRows,
    RunInProgress,
    RunState,
    default_journal_path,
)

ORG = "00D000000000001AAA"
RULES = FieldRules("Message_ID__c", case_sensitive=False, flag_field="Flag__c")


_CODES = {
    Action.CREATE: ReasonCode.NEW_KEY,
    Action.UPDATE: ReasonCode.UPDATE_STORED_SPELLING,
    Action.CONFLICT: ReasonCode.RECYCLE_BIN,
    Action.INVALID: ReasonCode.UNKNOWN_REFERENCE,
    Action.EXCLUDED: ReasonCode.REPEATED_KEY,
}


def _row(number: int, action: Action = Action.CREATE, key: str | None = None) -> PlanRow:
    key = key if key is not None else f"<m{number}@x.example>"
    return PlanRow(
        action,
        f"box.mbox, message {number}",
        key,
        f"Subject {number}",
        "no Task holds this key yet",
        upsert_key=key if action in (Action.CREATE, Action.UPDATE) else None,
        existing=(TaskRecord("00T000000000001AAA", key, subject="old"),) if action is Action.UPDATE else (),
        record={"Subject": f"Subject {number}", "TaskSubtype": "Email"},
        reason_code=_CODES[action],
    )


def _run(journal: Journal, rows: list[PlanRow], org_id: str = ORG, rules: FieldRules = RULES) -> str:
    run_id = journal.start_run(org_id=org_id, instance_url="https://127.0.0.1", username="admin@org.example",
                               source="/mail/box.mbox", source_kind="mbox", rules=rules)
    journal.add_rows(run_id, rows)
    gone = InactiveOwner("005000000000003AAA", "gus@org.example", "admin@org.example", 1)
    journal.finish_plan(run_id, [gone])
    return run_id


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal.open(tmp_path / "sync" / "journal.sqlite3")
    yield opened
    opened.close()


def test_journal__plan_rows_round_trip(journal: Journal) -> None:
    rows = [_row(1), _row(2, Action.UPDATE), _row(3, Action.INVALID, key="")]
    run_id = _run(journal, rows)

    plan = journal.plan(run_id)

    assert list(plan.rows) == rows
    assert plan.rows[1] == rows[1]
    assert plan.rows[-1].action is Action.INVALID
    assert len(plan.rows) == 3
    assert plan.counts() == {"create": 1, "update": 1, "conflict": 0, "invalid": 1, "excluded": 0}
    assert plan.rules == RULES
    assert plan.run_id == run_id
    assert plan.inactive_owners[0].username == "gus@org.example"


def test_journal__long_plan_reads_past_a_page(journal: Journal) -> None:
    rows = [_row(number) for number in range(1234)]
    run_id = _run(journal, rows)

    plan_rows = journal.plan(run_id).rows

    assert plan_rows[1233].source_ref == "box.mbox, message 1233"
    assert plan_rows[499].source_ref == "box.mbox, message 499"
    around_the_page_end = [row.source_ref for row in plan_rows[498:502]]
    assert around_the_page_end == [f"box.mbox, message {n}" for n in range(498, 502)]
    assert sum(1 for _ in plan_rows) == 1234
    with pytest.raises(IndexError):
        plan_rows[1234]


def test_journal__first_rows_fold_keys(journal: Journal) -> None:
    run_id = _run(journal, [_row(1, key="<A@x.example>"), _row(2, Action.EXCLUDED, key="<a@x.example>")])

    found = journal.first_rows(run_id, ["<a@x.example>", "<b@x.example>"])

    assert found == {"<a@x.example>": FirstRow("box.mbox, message 1", Action.CREATE)}


CASE_SENSITIVE = FieldRules("Message_ID__c", case_sensitive=True, flag_field="Flag__c")


def test_first_rows__any_case_on_case_sensitive_field(journal: Journal) -> None:
    run_id = _run(journal, [_row(1, key="<A@x.example>"), _row(2, key="<B@x.example>"),
                            _row(3, key="<a@x.example>")], rules=CASE_SENSITIVE)

    exact = journal.first_rows(run_id, ["<a@x.example>", "<b@x.example>"])
    any_case = journal.first_rows(run_id, ["<a@x.example>", "<b@x.example>", "<c@x.example>"], any_case=True)

    assert exact == {"<a@x.example>": FirstRow("box.mbox, message 3", Action.CREATE)}
    assert any_case == {
        "<a@x.example>": FirstRow("box.mbox, message 1", Action.CREATE),
        "<b@x.example>": FirstRow("box.mbox, message 2", Action.CREATE),
    }


def test_first_rows__any_case_casefolds_beyond_ascii(journal: Journal) -> None:
    run_id = _run(journal, [_row(1, key="<STRASSE@x.example>"), _row(2, key="<Straße@x.example>")],
                  rules=CASE_SENSITIVE)

    found = journal.first_rows(run_id, ["<strasse@x.example>"], any_case=True)

    assert found == {"<strasse@x.example>": FirstRow("box.mbox, message 1", Action.CREATE)}


def test_reason_counts__every_code_listed(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2), _row(3, Action.UPDATE), _row(4, Action.EXCLUDED)])

    counts = journal.reason_counts(run_id)

    assert counts["new_key"] == 2
    assert counts["update_stored_spelling"] == 1
    assert counts["repeated_key"] == 1
    assert set(counts) == {code.value for code in ReasonCode}
    assert sum(counts.values()) == 4


def test_reason_counts__journal_rows_count_by_query(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2, Action.CONFLICT)])

    rows = journal.plan(run_id).rows

    assert isinstance(rows, JournalRows)
    assert rows.reason_counts() == journal.reason_counts(run_id)
    assert rows.reason_counts()["recycle_bin"] == 1


def test_journal__rows_not_sent_are_skipped(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2, Action.CONFLICT), _row(3, Action.EXCLUDED)])

    assert journal.state_counts(run_id) == {ItemState.PLANNED: 1, ItemState.SKIPPED: 2}


def test_journal__sending_is_committed_before_the_call(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2)])

    journal.mark_sending(run_id, [0], "collections")

    # Another connection, as a process started after a kill would open.
    with closing(sqlite3.connect(journal.path)) as other:
        states = dict(other.execute("SELECT seq, state FROM items WHERE run_id = ?", (run_id,)).fetchall())
    assert states == {0: "sending", 1: "planned"}


def test_journal__call_keeps_states_before_and_after(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2)])
    call_id = journal.mark_sending(run_id, [0, 1], "collections")

    journal.record_outcomes(run_id, [
        ItemUpdate(0, ItemState.CREATED, record_id="00T000000000009AAA"),
        ItemUpdate(1, ItemState.QUEUED, error_code="UNABLE_TO_LOCK_ROW", message="locked",
                   next_attempt_at=time.time() + 60),
    ], call_id=call_id, outcome="answered")

    (call,) = journal.call_history(run_id)
    assert call["api"] == "collections"
    assert call["finished_at"]
    assert call["states"] == [(0, "planned", "created"), (1, "planned", "queued")]
    (queued,) = journal.queued_items(run_id)
    assert (queued.key, queued.attempts, queued.error_code) == ("<m2@x.example>", 1, "UNABLE_TO_LOCK_ROW")
    assert queued.next_attempt_at is not None


def test_journal__reverted_call_restores_states(journal: Journal) -> None:
    run_id = _run(journal, [_row(1)])
    call_id = journal.mark_sending(run_id, [0], "collections")

    journal.revert_call(run_id, call_id, "sign-in ended")

    (item,) = journal.items(run_id, [ItemState.PLANNED])
    assert item.attempts == 0


def test_journal__unfinished_run_is_one_with_work_left(journal: Journal) -> None:
    done = _run(journal, [_row(1)])
    journal.record_outcomes(done, [ItemUpdate(0, ItemState.CREATED)])
    journal.set_run_state(done, RunState.FINISHED)
    killed = _run(journal, [_row(2)])
    journal.set_run_state(killed, RunState.APPLYING)
    journal.mark_sending(killed, [0], "collections")
    _run(journal, [_row(3)])  # planned only, never applied

    unfinished = journal.unfinished_run(ORG)

    assert unfinished is not None
    assert unfinished.run_id == killed
    assert unfinished.states == {ItemState.SENDING: 1}
    assert journal.unfinished_run("00D000000000002AAA") is None


def test_journal__history_is_per_org_newest_first(journal: Journal) -> None:
    first = _run(journal, [_row(1)])
    second = _run(journal, [_row(2)])
    _run(journal, [_row(3)], org_id="00D000000000002AAA")

    runs = journal.runs(ORG)

    assert [run.run_id for run in runs] == [second, first]
    assert runs[0].source == "/mail/box.mbox"
    assert runs[0].counts["create"] == 1


def test_journal__discarded_run_leaves_no_rows(journal: Journal) -> None:
    run_id = _run(journal, [_row(1)])

    journal.discard_run(run_id)

    assert journal.runs(ORG) == []
    assert journal.row_count(run_id) == 0


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_journal__folder_is_owner_only() -> None:
    with closing(Journal.open()) as opened:
        assert opened.path == default_journal_path()
        assert stat.S_IMODE(opened.path.parent.stat().st_mode) == 0o700


_HOLDER = """
import sys, time
from pathlib import Path
from backstory_desktop.store.journal import Journal
journal = Journal.open(Path(sys.argv[1]))
with journal.lock_org(sys.argv[2], holder="rita@org.example"):
    print("holding", flush=True)
    time.sleep(60)
"""


def _holder(journal: Journal) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, str(journal.path), ORG],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"
    return child


def test_lock__second_process_names_holder(journal: Journal) -> None:
    child = _holder(journal)
    try:
        with pytest.raises(RunInProgress) as refused, journal.lock_org(ORG):
            pass
    finally:
        child.kill()
        child.wait()

    sentence = str(refused.value)
    assert f"Another sync of org {ORG} is running" in sentence
    assert f"rita@org.example (process {child.pid} on" in sentence
    assert time.strftime("%Y-%m-%d", time.gmtime()) in sentence


def test_lock__released_when_the_holder_dies(journal: Journal) -> None:
    child = _holder(journal)
    child.kill()
    child.wait()

    held = journal.lock_org(ORG, holder="admin@org.example")
    with held, pytest.raises(RunInProgress), journal.lock_org(ORG):
        pass


_PROBER = """
import sys
from pathlib import Path
from backstory_desktop.store.journal import Journal
journal = Journal.open(Path(sys.argv[1]))
print("probing", flush=True)
while True:
    journal.org_lock_held(sys.argv[2])
"""

# A process that took the lock file and wrote no note (as a probe does), and keeps it.
_SILENT_HOLDER = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1], timeout=0)
lock.acquire()
print("holding", flush=True)
time.sleep(60)
"""


def test_lock__probe_never_refuses_a_start(journal: Journal) -> None:
    child = subprocess.Popen([sys.executable, "-c", _PROBER, str(journal.path), ORG],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "probing"
    refusals: list[str] = []
    try:
        for _ in range(300):
            try:
                with journal.lock_org(ORG, holder="admin@org.example"):
                    pass
            except RunInProgress as refused:
                refusals.append(str(refused))
    finally:
        child.kill()
        child.wait()

    assert refusals == []


def test_lock__holder_without_note_not_blank(journal: Journal) -> None:
    journal.path.parent.joinpath("locks").mkdir(mode=0o700)
    lock_file = journal.path.parent / "locks" / f"{ORG}.lock"
    child = subprocess.Popen([sys.executable, "-c", _SILENT_HOLDER, str(lock_file)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"
    try:
        with pytest.raises(RunInProgress) as refused, journal.lock_org(ORG):
            pass
        held = journal.org_lock_held(ORG)
    finally:
        child.kill()
        child.wait()

    sentence = str(refused.value)
    assert f"Another sync of org {ORG} is running in another process on this computer" in sentence
    assert "?" not in sentence
    assert "()" not in sentence
    assert held


def test_lock__probe_leaves_holder_note(journal: Journal) -> None:
    with journal.lock_org(ORG, holder="rita@org.example"):
        held = journal.org_lock_held(ORG)
        note = (journal.path.parent / "locks" / f"{ORG}.holder.json").read_text(encoding="utf-8")

    assert held
    assert "rita@org.example" in note
    assert not journal.org_lock_held(ORG)


def test_lock__other_org_is_free(journal: Journal) -> None:
    with journal.lock_org(ORG), journal.lock_org("00D000000000002AAA"):
        pass


def test_open__abandoned_plan_deleted(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "journal.sqlite3"
    journal = Journal.open(path)
    old = journal.start_run(org_id=ORG, instance_url="https://127.0.0.1", username="admin@org.example",
                            source="/mail/box.mbox", source_kind="mbox", rules=RULES)
    journal.add_rows(old, [_row(1)])
    recent = journal.start_run(org_id=ORG, instance_url="https://127.0.0.1", username="admin@org.example",
                               source="/mail/box.mbox", source_kind="mbox", rules=RULES)
    finished = _run(journal, [_row(2)])
    journal.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE runs SET created_at = '2020-01-01T00:00:00+00:00' WHERE run_id IN (?, ?)",
                   (old, finished))

    reopened = Journal.open(path)

    with pytest.raises(LookupError):
        reopened.run(old)
    assert reopened.row_count(old) == 0
    assert reopened.run(recent).run_id == recent
    assert reopened.run(finished).run_id == finished
    reopened.close()


def test_open__rows_written_before_reason_codes(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "journal.sqlite3"
    journal = Journal.open(path)
    run_id = _run(journal, [_row(1, Action.UPDATE), _row(2, Action.INVALID, key="")])
    journal.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("ALTER TABLE items DROP COLUMN reason_code")

    reopened = Journal.open(path)

    codes = [row.reason_code for row in reopened.plan(run_id).rows]
    assert codes == [ReasonCode.UPDATE, ReasonCode.NO_KEY]
    assert reopened.reason_counts(run_id)["update"] == 1
    assert reopened.reason_counts(run_id)["no_key"] == 1
    reopened.close()


def test_open__old_update_of_stored_spelling(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "journal.sqlite3"
    journal = Journal.open(path)
    stored = PlanRow(Action.UPDATE, "box.mbox, message 2", "<m2@x.example>", "Subject 2", "updates the Task",
                     upsert_key="m2@x.example", reason_code=ReasonCode.UPDATE_STORED_SPELLING)
    run_id = _run(journal, [_row(1, Action.UPDATE), stored])
    journal.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("ALTER TABLE items DROP COLUMN reason_code")

    reopened = Journal.open(path)

    codes = [row.reason_code for row in reopened.plan(run_id).rows]
    assert codes == [ReasonCode.UPDATE, ReasonCode.UPDATE_STORED_SPELLING]
    counts = reopened.reason_counts(run_id)
    assert (counts["update"], counts["update_stored_spelling"]) == (1, 1)
    reopened.close()


def test_first_rows__insensitive_field_lowercases(journal: Journal) -> None:
    run_id = _run(journal, [_row(1, key="<STRASSE@x.example>"), _row(2, key="<Ä@x.example>")])

    found = journal.first_rows(run_id, [RULES.fold("<straße@x.example>"), RULES.fold("<ä@x.example>")])

    assert found == {"<ä@x.example>": FirstRow("box.mbox, message 2", Action.CREATE)}


def test_open__rows_written_before_casefolded_keys(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "journal.sqlite3"
    journal = Journal.open(path)
    old_run = _run(journal, [_row(1, key="<A@x.example>")], rules=CASE_SENSITIVE)
    journal.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("DROP INDEX items_by_casefolded_key")
        db.execute("ALTER TABLE items DROP COLUMN casefolded_key")

    reopened = Journal.open(path)
    new_run = _run(reopened, [_row(2, key="<A@x.example>")], rules=CASE_SENSITIVE)

    assert reopened.first_rows(old_run, ["<a@x.example>"], any_case=True) == {}
    assert reopened.first_rows(new_run, ["<a@x.example>"], any_case=True) == {
        "<a@x.example>": FirstRow("box.mbox, message 2", Action.CREATE)}
    assert reopened.first_rows(old_run, ["<A@x.example>"]) == {
        "<A@x.example>": FirstRow("box.mbox, message 1", Action.CREATE)}
    reopened.close()


def test_outcome__settled_row_drops_body(journal: Journal) -> None:
    row = _row(1, Action.UPDATE)
    existing = TaskRecord("00T000000000001AAA", row.key, subject="old", description="old text")
    body_row = PlanRow(row.action, row.source_ref, row.key, row.subject, row.reason,
                       upsert_key=row.upsert_key, existing=(existing,),
                       record={"Subject": "Subject 1", "Description": "The whole e-mail.", "OwnerId": "005x"})
    run_id = _run(journal, [body_row, _row(2)])

    journal.record_outcomes(run_id, [ItemUpdate(0, ItemState.UPDATED, record_id="00T000000000001AAA")])

    settled, planned = journal.items(run_id, list(ItemState))
    assert "Description" not in settled.row.record
    assert settled.row.record["OwnerId"] == "005x"
    assert settled.row.existing[0].id == "00T000000000001AAA"
    assert settled.row.existing[0].description == ""
    assert settled.row.existing[0].subject == "old"
    assert planned.row.record == _row(2).record


def test_skipped_row__stored_without_body(journal: Journal) -> None:
    conflict = PlanRow(Action.CONFLICT, "box.mbox, message 1", "<c@x.example>", "Hi", "two Tasks hold it",
                       record={"Subject": "Hi", "Description": "The whole e-mail."})
    run_id = _run(journal, [conflict])

    (item,) = journal.items(run_id, [ItemState.SKIPPED])

    assert item.row.record == {"Subject": "Hi"}


def test_delete_run__rows_and_calls_gone(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2)])
    kept = _run(journal, [_row(3)])
    journal.mark_sending(run_id, [0], "collections")

    journal.delete_run(run_id)

    assert [summary.run_id for summary in journal.runs(ORG)] == [kept]
    assert journal.row_count(run_id) == 0
    assert journal.call_history(run_id) == []
    with pytest.raises(LookupError):
        journal.delete_run(run_id)


def test_runs__counts_kept_in_runs_table(journal: Journal) -> None:
    run_id = _run(journal, [_row(1), _row(2), _row(3, Action.CONFLICT)])
    call_id = journal.mark_sending(run_id, [0, 1], "collections")
    journal.record_outcomes(run_id, [ItemUpdate(0, ItemState.CREATED, record_id="00T1"),
                                     ItemUpdate(1, ItemState.QUEUED, error_code="UNABLE_TO_LOCK_ROW")],
                            call_id=call_id)
    with closing(sqlite3.connect(journal.path)) as db:
        stored = db.execute(
            "SELECT state_counts, action_counts FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()

    (summary,) = journal.runs(ORG)

    assert summary.states == {ItemState.CREATED: 1, ItemState.QUEUED: 1, ItemState.SKIPPED: 1}
    assert summary.counts["create"] == 2
    assert summary.counts["conflict"] == 1
    assert '"created": 1' in stored[0]
    assert '"create": 2' in stored[1]


def test_queued_items__paged_and_counted(journal: Journal) -> None:
    run_id = _run(journal, [_row(number) for number in range(5)])
    journal.queue_open_rows(run_id, "API_RESERVE", "reserve reached", time.time())

    page = journal.queued_items(run_id, limit=2, offset=2)

    assert [item.seq for item in page] == [2, 3]
    assert journal.queued_count(run_id) == 5
    assert len(journal.queued_items(run_id)) == 5


def test_item_outcomes__seq_range(journal: Journal) -> None:
    run_id = _run(journal, [_row(number) for number in range(4)])
    journal.record_outcomes(run_id, [ItemUpdate(2, ItemState.FAILED, error_code="STRING_TOO_LONG",
                                                message="too long")])

    outcomes = journal.item_outcomes(run_id, 1, 3)

    assert [(outcome.seq, outcome.state) for outcome in outcomes] == [
        (1, ItemState.PLANNED), (2, ItemState.FAILED)]
    assert outcomes[1].error_code == "STRING_TOO_LONG"
    assert outcomes[1].message == "too long"


def test_lock__failed_note_releases_lock(journal: Journal) -> None:
    notes = journal.path.parent / "locks"
    notes.mkdir()
    (notes / f"{ORG}.holder.json").mkdir()

    failed = journal.lock_org(ORG)
    with pytest.raises(OSError), failed:
        pass
    (notes / f"{ORG}.holder.json").rmdir()

    # ``failed`` is still referenced, so a lock it kept would refuse this one.
    with journal.lock_org(ORG):
        pass
    assert failed is not None


def _killed_with_one_queued(journal: Journal, attempt_limit: int) -> str:
    """Apply two rows until one is created and one queued after one attempt, then leave it APPLYING."""
    run_id = _run(journal, [_row(1), _row(2)])
    journal.cap_attempts(run_id, attempt_limit)
    journal.set_run_state(run_id, RunState.APPLYING)
    call_id = journal.mark_sending(run_id, [0, 1], "collections")
    journal.record_outcomes(run_id, [ItemUpdate(0, ItemState.CREATED, record_id="00T1"),
                                     ItemUpdate(1, ItemState.QUEUED, error_code="UNABLE_TO_LOCK_ROW",
                                                next_attempt_at=time.time())],
                            call_id=call_id)
    return run_id


def test_history__exhausted_queue_run_finished(journal: Journal) -> None:
    run_id = _killed_with_one_queued(journal, attempt_limit=1)

    summary = journal.run(run_id)

    assert summary.state is RunState.FINISHED
    assert summary.work_left == 0
    assert summary.states[ItemState.QUEUED] == 1
    assert journal.runs(ORG)[0].state is RunState.FINISHED
    assert journal.unfinished_run(ORG) is None


def test_history__queue_with_attempts_left_stopped(journal: Journal) -> None:
    run_id = _killed_with_one_queued(journal, attempt_limit=3)

    summary = journal.run(run_id)
    unfinished = journal.unfinished_run(ORG)

    assert summary.state is RunState.STOPPED
    assert summary.work_left == 1
    assert unfinished is not None
    assert unfinished.run_id == run_id


def test_history__retry_limit_raised_reopens_run(journal: Journal) -> None:
    run_id = _killed_with_one_queued(journal, attempt_limit=1)

    journal.allow_attempts(run_id, 1, states=[ItemState.QUEUED])

    assert journal.run(run_id).state is RunState.STOPPED
    assert journal.run(run_id).queued_to_retry == 1


def test_next_queued__due_row_with_attempts_left(journal: Journal) -> None:
    run_id = _killed_with_one_queued(journal, attempt_limit=3)

    queued = journal.next_queued(run_id)

    assert queued is not None
    assert queued.seq == 1
    assert queued.key == "<m2@x.example>"
    assert queued.attempts == 1
    assert queued.error_code == "UNABLE_TO_LOCK_ROW"
    assert queued.next_attempt_at is not None
    assert journal.queued_items(run_id) == [queued]


def test_rows_not_sent__by_action_paged(journal: Journal) -> None:
    rows = [_row(0, Action.EXCLUDED), _row(1), _row(2, Action.INVALID, key=""), _row(3, Action.CONFLICT),
            _row(4, Action.UPDATE), _row(5, Action.CONFLICT), _row(6, Action.INVALID, key="")]
    run_id = _run(journal, rows)

    first = journal.rows_not_sent(run_id, 3)
    second = journal.rows_not_sent(run_id, 3, offset=3)
    invalid = journal.rows_not_sent(run_id, 10, actions=[Action.INVALID])

    assert [row.source_ref for row in first] == [rows[3].source_ref, rows[5].source_ref, rows[2].source_ref]
    assert [row.source_ref for row in second] == [rows[6].source_ref, rows[0].source_ref]
    assert [row.action for row in invalid] == [Action.INVALID, Action.INVALID]
    assert first[0].reason_code is ReasonCode.RECYCLE_BIN


def test_write__full_disk_explained(journal: Journal) -> None:
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(JournalError) as raised:
        _run(journal, [_row(number) for number in range(500)])

    assert str(raised.value) == (
        f"The sync journal {journal.path} cannot be opened or written (database or disk is full): check that "
        "the file and its folder belong to your user and the disk has room, then start again."
    )
