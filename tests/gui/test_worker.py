"""The worker: jobs run off the GUI thread, report on it, and stop when cancelled."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from backstory_desktop.core.jobs import Cancelled, ProgressCallback, check_cancel
from backstory_desktop.gui.worker import Worker


def count_to_three(*, progress: ProgressCallback, cancel: threading.Event) -> int:
    for done in range(1, 4):
        progress(done, 3, f"step {done}")
    return threading.get_ident()


def wait_for_cancel(*, progress: ProgressCallback, cancel: threading.Event) -> None:
    progress(0, 0, "waiting")
    while not cancel.wait(0.01):
        pass
    check_cancel(cancel)


def fail(*, progress: ProgressCallback, cancel: threading.Event) -> None:
    raise LookupError("no user with the username nobody@example.com in this org")


@pytest.fixture
def worker(qtbot: QtBot) -> Worker:
    worker = Worker()
    yield worker
    worker.cancel_all()
    worker.wait_until_idle(10_000)


def test_worker__progress_and_result_arrive_on_gui_thread(qtbot: QtBot, worker: Worker) -> None:
    gui_thread = threading.get_ident()
    reports: list[tuple[int, int, str, int]] = []
    job = worker.start("count", count_to_three)
    job.progress.connect(lambda done, total, message: reports.append(
        (done, total, message, threading.get_ident())))

    with qtbot.waitSignal(job.finished, timeout=10_000) as finished:
        pass

    job_thread = finished.args[0]
    assert job_thread != gui_thread
    assert [report[:3] for report in reports] == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert {report[3] for report in reports} == {gui_thread}


def test_worker__cancel_ends_job_with_cancelled(qtbot: QtBot, worker: Worker) -> None:
    job = worker.start("wait", wait_for_cancel)
    with qtbot.waitSignal(job.progress, timeout=10_000):
        pass
    assert worker.busy

    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        job.cancel()

    assert isinstance(failed.args[0], Cancelled)
    qtbot.waitUntil(lambda: not worker.busy, timeout=10_000)


def test_worker__exception_reaches_failed_signal(qtbot: QtBot, worker: Worker) -> None:
    job = worker.start("fail", fail)
    with qtbot.waitSignal(job.failed, timeout=10_000) as failed:
        pass
    assert isinstance(failed.args[0], LookupError)
    assert "nobody@example.com" in str(failed.args[0])


def test_worker__busy_changes_once_for_queued_jobs(qtbot: QtBot, worker: Worker) -> None:
    changes: list[bool] = []
    worker.busy_changed.connect(changes.append)
    results: list[Any] = []
    for _ in range(3):
        worker.start("count", count_to_three).finished.connect(results.append)

    qtbot.waitUntil(lambda: len(results) == 3, timeout=10_000)
    qtbot.waitUntil(lambda: not worker.busy, timeout=10_000)
    assert changes == [True, False]
    assert len(set(results)) == 1, "jobs of one worker share its single thread"
