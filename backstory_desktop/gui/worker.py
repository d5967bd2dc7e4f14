"""Run enablement and sync functions off the GUI thread, with progress and cooperative cancel.

A job is a plain function called as ``function(*args, progress=..., cancel=..., **kwargs)``
on a one-thread pool, so calls on the org connection never overlap. The function
reports progress through the callback and stops at its next check of the
``threading.Event``. Every signal a page connects to is emitted on the GUI
thread: the runnable emits on a relay object, and the relay reaches the job
through queued connections.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)


class _Relay(QObject):
    """Signals emitted from the pool thread; only the owning Job listens to them."""

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    """Calls the job's function on a pool thread and reports through the relay."""

    def __init__(self, job: Job, function: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        super().__init__()
        self._job_name = job.name
        self._relay = job._relay
        self._cancel = job.cancel_event
        self._function = function
        self._args = args
        self._kwargs = kwargs

    def run(self) -> None:
        try:
            result = self._function(
                *self._args, progress=self._report_progress, cancel=self._cancel, **self._kwargs
            )
        except Exception as error:  # every failure reaches the page as a signal
            log.info("job %s ended with %s", self._job_name, type(error).__name__)
            self._emit(self._relay.failed, error)
        else:
            log.info("job %s finished", self._job_name)
            self._emit(self._relay.finished, result)

    def _report_progress(self, done: int, total: int, message: str) -> None:
        self._emit(self._relay.progress, done, total, message)

    def _emit(self, signal: Any, *values: Any) -> None:
        # A job that outlived its window (see Worker.wait_until_idle) has no relay left.
        try:
            signal.emit(*values)
        except RuntimeError:
            log.warning("job %s ended after its window closed; its result was not shown", self._job_name)


class Job(QObject):
    """One function run on the worker; its signals arrive on the GUI thread."""

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(object)
    # Emitted once after finished or failed, when the worker is free again.
    ended = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.cancel_event = threading.Event()
        self.running = True
        self._relay = _Relay()
        self._relay.progress.connect(self._relay_progress, Qt.ConnectionType.QueuedConnection)
        self._relay.finished.connect(self._relay_finished, Qt.ConnectionType.QueuedConnection)
        self._relay.failed.connect(self._relay_failed, Qt.ConnectionType.QueuedConnection)

    def cancel(self) -> None:
        """Ask the function to stop at its next cancel check."""
        self.cancel_event.set()

    @Slot(int, int, str)
    def _relay_progress(self, done: int, total: int, message: str) -> None:
        if self.running:
            self.progress.emit(done, total, message)

    @Slot(object)
    def _relay_finished(self, result: object) -> None:
        self.running = False
        self.finished.emit(result)
        self.ended.emit()

    @Slot(object)
    def _relay_failed(self, error: object) -> None:
        self.running = False
        self.failed.emit(error)
        self.ended.emit()


class Worker(QObject):
    """The window's single background thread: one job at a time, in the order started."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._jobs: list[Job] = []

    @property
    def busy(self) -> bool:
        """Tell whether a job is queued or running."""
        return bool(self._jobs)

    def start(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """Queue ``function`` and return its job; connect to the job's signals right away.

        Signals are delivered through the GUI thread's event loop, so a handler
        connected before control returns to that loop misses nothing.
        """
        job = Job(name, self)
        was_busy = self.busy
        self._jobs.append(job)
        job.ended.connect(lambda: self._forget(job))
        log.info("job %s started", name)
        self._pool.start(_Runnable(job, function, args, kwargs))
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def _forget(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        job.deleteLater()
        if not self._jobs:
            self.busy_changed.emit(False)

    def cancel_all(self) -> None:
        """Ask every queued or running job to stop."""
        for job in self._jobs:
            job.cancel()

    def running_job_names(self) -> list[str]:
        """Return the names of the jobs not finished yet, for the log and the status bar."""
        return [job.name for job in self._jobs]

    def wait_until_idle(self, timeout_ms: int) -> bool:
        """Block until the pool thread is free or ``timeout_ms`` passes; True when it is free.

        Only for shutdown, after the event loop has stopped: results of jobs
        that end during the wait are not delivered to any page.
        """
        return bool(self._pool.waitForDone(timeout_ms))
