"""Kill the sync at seeded moments, start it again each time, then check the org and the journal.

A child process runs ``backstory-desktop sync apply`` (or ``sync resume`` when the journal
has an unfinished run) on a practice org database file. The practice org runs inside the
child, so a SIGKILL ends the client and the server at once, anywhere: while planning, between
the journal's commit and the call, after the org committed and before the response came back.
Each mailbox ("wave") is new e-mails; a wave ends when a child exits by itself with status 0.

At the end, the org's database file is read directly: every planned key is exactly one live
Task, with no key lost and none doubled in any spelling. The journal must agree: no run is
left unfinished, each wave's last run has every item created or updated with the Task's id,
and no wave created more Tasks in the journal than it has keys.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cadence_drill import write_drill_mailbox
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.store.journal import ItemState, Journal, RunState, RunSummary

# Kills of the sObject Collections apply, and of the Bulk API 2.0 apply (every run at or above
# a threshold of 1 goes through Bulk jobs, which a later process must find again).
KILLS = 20
BULK_KILLS = 8
SEED = 20261205
WAVE_SIZE = 600
# The whole test stops waiting after this, so a hang fails instead of blocking the suite.
BUDGET_SECONDS = 600.0
KEY_FIELD = "Message_ID__c"


class Child:
    """One ``sync`` process, its stderr lines read on a thread as they come."""

    def __init__(self, arguments: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backstory_desktop", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.ended = False
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.started = time.monotonic()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, matches: Callable[[str], bool], deadline: float) -> bool:
        """Wait for a stderr line for which ``matches`` is true; False when the process ended first.

        The end of stderr is remembered, so a second wait after it returns at once
        instead of waiting for the deadline.
        """
        while not self.ended:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                self.ended = True
            elif matches(line):
                return True
        return False

    def kill(self) -> bool:
        """SIGKILL the process; True when it was still running."""
        running = self.process.poll() is None
        if running:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return running

    def finish(self, timeout: float) -> int:
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return self.process.returncode


def _journal_unfinished() -> bool:
    journal = Journal.open()
    try:
        runs = journal.runs(limit=1)
        return bool(runs) and journal.unfinished_run(runs[0].org_id) is not None
    finally:
        journal.close()


def _live_tasks(db_path: Path) -> dict[str, list[str]]:
    """Return the ids of the live Tasks of each key in the org's database, by the key's bracketed spelling."""
    tasks: dict[str, list[str]] = {}
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as database:
        rows = database.execute(
            "SELECT id, fields FROM records WHERE sobject = 'Task' AND is_deleted = 0").fetchall()
    for task_id, fields in rows:
        key = json.loads(fields).get(KEY_FIELD)
        if key:
            tasks.setdefault(key_spellings(key)[0], []).append(task_id)
    return tasks


def _command(db_path: Path, source: Path | None, bulk_threshold: int) -> list[str]:
    action = ["resume"] if source is None else ["apply", "--source", str(source)]
    return ["sync", *action, "--org", "practice", "--db", str(db_path), "--yes",
            "--bulk-threshold", str(bulk_threshold)]


def test_kill__twenty_kills_nothing_lost_or_doubled(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, KILLS, bulk_threshold=1_000_000, seed=SEED)


def test_kill__bulk_jobs_nothing_lost_or_doubled(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, BULK_KILLS, bulk_threshold=1, seed=SEED + 1)


def _kill_and_resume(tmp_path: Path, kill_count: int, *, bulk_threshold: int, seed: int) -> None:
    db_path = tmp_path / "org.sqlite3"
    draw = random.Random(seed)
    waves: dict[str, list[str]] = {}
    current: Path | None = None
    kills = 0
    resumes = 0
    moments: list[str] = []
    deadline = time.monotonic() + BUDGET_SECONDS
    # Made and seeded before the first kill, which could otherwise end its seeding.
    PracticeOrg(db_path).stop()

    while kills < kill_count or current is not None:
        assert time.monotonic() < deadline, f"took too long after {kills} kills: {moments}"
        if current is None:
            current = tmp_path / f"wave-{len(waves) + 1}.mbox"
            waves[current.name] = write_drill_mailbox(sample_mailbox_path(), current, count=WAVE_SIZE,
                                                      token=f"w{len(waves) + 1}")
        resume = _journal_unfinished()
        resumes += resume
        child = Child(_command(db_path, None if resume else current, bulk_threshold))
        if kills < kill_count:
            killed, moment = _kill_at_seeded_moment(child, draw, resume, deadline)
            moments.append(f"{'resume' if resume else 'apply'} {moment}")
            if killed:
                kills += 1
                continue
        status = child.finish(timeout=max(1.0, deadline - time.monotonic()))
        assert status == 0, "".join(child.stderr)
        current = None

    assert kills >= kill_count
    # Kills that left a run half applied: each is continued by `sync resume`.
    assert resumes >= kill_count // 4, "; ".join(moments)
    print(f"{kills} kills, {resumes} resumes, {len(waves)} mailboxes: {moments}")
    assert not _journal_unfinished()
    live = _live_tasks(db_path)
    for name, keys in waves.items():
        lost = [key for key in keys if key not in live]
        doubled = [key for key in keys if len(live.get(key, [])) > 1]
        assert lost == [], f"{name}: kills at {moments}"
        assert doubled == [], f"{name}: kills at {moments}"
    _check_journal(waves, live)


def _sent(line: str) -> bool:
    """Accept a progress line of the apply: a batch sent, a Bulk job's upload or its processing."""
    return line.startswith(("Sent ", "Uploading ", "Salesforce processed "))


def _wait_until_applying(child: Child, deadline: float) -> None:
    """Wait until the newest run of the journal is being applied, or the child ended."""
    journal = Journal.open()
    try:
        while child.process.poll() is None and time.monotonic() < deadline:
            runs = journal.runs(limit=1)
            if runs and runs[0].state is RunState.APPLYING:
                return
            time.sleep(0.02)
    finally:
        journal.close()


def _kill_at_seeded_moment(child: Child, draw: random.Random, resume: bool,
                           deadline: float) -> tuple[bool, str]:
    """Kill the child at a seeded moment; return whether it was still running, and the moment.

    Most moments fall in the apply: a seeded delay after the journal shows the run applying
    (its first call in flight) or after a batch was sent. The others are a seeded time after
    the start, which also reaches the start-up, the reading and the planning.
    """
    roll = draw.random()
    batch = 0
    if not resume and roll < 0.4:
        moment, delay = "applying", draw.uniform(0.0, 0.4)
        _wait_until_applying(child, deadline)
    elif roll < 0.75:
        batch = draw.randint(1, 2)
        moment, delay = f"batch {batch}", draw.uniform(0.0, 0.25)
        for _ in range(batch):
            if not child.wait_for_line(_sent, deadline):
                break
    else:
        moment, delay = "start", draw.uniform(0.5, 5.0)
    if moment == "start":
        time.sleep(max(0.0, child.started + delay - time.monotonic()))
    else:
        time.sleep(delay)
    moment = f"{moment} + {delay:.2f} s"
    if child.kill():
        return True, f"killed at {moment}"
    return False, f"ended with {child.process.returncode} before {moment}"


def _check_journal(waves: dict[str, list[str]], live: dict[str, list[str]]) -> None:
    from backstory_desktop.store.journal import Journal

    journal = Journal.open()
    try:
        runs = journal.runs(limit=1000)
        for name, keys in waves.items():
            _check_wave(journal, [run for run in runs if Path(run.source).name == name], name, keys, live)
    finally:
        journal.close()


def _check_wave(journal: Journal, runs: list[RunSummary], name: str, keys: list[str],
                live: dict[str, list[str]]) -> None:
    """Check the journal's runs of one wave (newest first) against the Tasks found in the org."""
    finished = [run for run in runs if run.state is RunState.FINISHED]
    assert finished, f"no finished run of {name}: {[(run.run_id, run.state) for run in runs]}"
    last = finished[0]
    written = last.states.get(ItemState.CREATED, 0) + last.states.get(ItemState.UPDATED, 0)
    assert written == len(keys), f"{name}: {dict(last.states)}"
    left = {state: count for state, count in last.states.items()
            if state not in (ItemState.CREATED, ItemState.UPDATED) and count}
    assert left == {}, f"{name}: {left}"
    # A Task created twice would show as more creates than keys across the wave's runs.
    assert sum(run.states.get(ItemState.CREATED, 0) for run in runs) <= len(keys)
    recorded = {item.row.key: item.record_id for item in journal.iter_items(last.run_id)}
    assert {key: recorded.get(key) for key in keys} == {key: live[key][0] for key in keys}
