"""Cancel and window close while a job runs: the page returns to idle and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from wizard_driver import admin_connection, click, open_step_after_field, wait_idle

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import Step
from backstory_desktop.gui.pages.local_sync import LocalSyncPage
from backstory_desktop.gui.wizard import WizardWindow

# Copies of the sample mailbox in the big one: enough that reading it outlasts a click.
BIG_MAILBOX_COPIES = 300


@pytest.fixture
def big_mailbox(tmp_path: Path) -> Path:
    """Write an mbox of many copies of the bundled sample, tens of megabytes."""
    sample = sample_mailbox_path().read_bytes()
    path = tmp_path / "big.mbox"
    with path.open("wb") as stream:
        for _ in range(BIG_MAILBOX_COPIES):
            stream.write(sample)
            stream.write(b"\n")
    return path


def open_local_sync(qtbot: QtBot, window: WizardWindow, mailbox: Path) -> LocalSyncPage:
    page = open_step_after_field(qtbot, window, Step.LOCAL_SYNC, LocalSyncPage)
    page.path_edit.setText(str(mailbox))
    return page


def all_task_ids(window: WizardWindow) -> set[str]:
    connection = admin_connection(window)
    return {str(row["Id"]) for row in connection.query_all("SELECT Id FROM Task")}


def test_local_sync__cancel_during_plan_returns_to_idle(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], big_mailbox: Path,
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window, big_mailbox)
    tasks_before = all_task_ids(window)

    click(qtbot, page.plan_button)
    assert page.progress.isVisible()
    assert not page.plan_button.isEnabled()
    click(qtbot, page.progress.cancel_button)
    wait_idle(qtbot, window)

    assert page.message.label.text().startswith("Cancelled")
    assert page.progress.isHidden()
    assert page.plan_button.isEnabled()
    assert not page.apply_button.isEnabled()
    assert page.model.rowCount() == 0
    assert window.context.run.plan is None
    assert all_task_ids(window) == tasks_before


def test_local_sync__mailbox_error_shown_under_picker(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], tmp_path: Path,
) -> None:
    not_mbox = tmp_path / "notes.txt"
    not_mbox.write_text("Meeting notes\nnothing here is mail\n", encoding="utf-8")
    window = make_window("default")
    page = open_local_sync(qtbot, window, not_mbox)

    click(qtbot, page.plan_button)
    wait_idle(qtbot, window)

    assert page.mailbox_error.isVisible()
    assert "not an mbox" in page.mailbox_error.text()
    assert page.mailbox_error.text().endswith("Choose another file or folder.")
    assert page.kind_label.text() == "Kind: not a mail source", "the reason shows twice"
    assert page.model.rowCount() == 0
    assert window.context.run.plan is None

    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    page.path_edit.setText(str(empty))
    assert "empty" in page.mailbox_error.text(), "the error of the file chosen before still shows"
    click(qtbot, page.plan_button)
    wait_idle(qtbot, window)
    assert "empty" in page.mailbox_error.text()


def test_window__close_while_planning_cancels_then_closes(
    qtbot: QtBot, make_window: Callable[..., WizardWindow], big_mailbox: Path,
) -> None:
    window = make_window("default")
    page = open_local_sync(qtbot, window, big_mailbox)

    click(qtbot, page.plan_button)
    window.close()
    assert window.isVisible(), "the window waits for the cancelled job before closing"
    assert window.statusBar().currentMessage() == "Stopping the reading of the source before closing…"
    assert not window.content.isEnabled()

    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not window.worker.busy
    assert page.message.label.text().startswith("Cancelled")
    assert window.context.practice_org is None, "closing stops the practice org"


CLOSE_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from backstory_desktop.core.jobs import Cancelled
    from backstory_desktop.gui.app import run_gui
    from backstory_desktop.gui.wizard import WizardWindow

    mailbox, database = Path(sys.argv[1]), Path(sys.argv[2])
    app = QApplication(sys.argv)

    def wait_for_cancel(progress, cancel):
        # A job that runs until it is cancelled, however fast or loaded the machine is.
        progress(0, 1, "Waiting")
        if cancel.wait(60):
            raise Cancelled("cancelled by the user")
        return "never cancelled"

    def start_then_close():
        window = next(w for w in app.topLevelWidgets() if isinstance(w, WizardWindow))
        job = window.worker.start("wait for cancel", wait_for_cancel)
        job.failed.connect(lambda error: print("job failed:", type(error).__name__, flush=True))
        # Close once the job reports progress, so it is surely running.
        closing = []

        def close_once(done, total, message):
            if not closing:
                closing.append(True)
                window.close()

        job.progress.connect(close_once)

    QTimer.singleShot(0, start_then_close)
    code = run_gui(database, mailbox)
    print("exit code", code, flush=True)
    sys.exit(code)
""")


def test_run_gui__close_during_job_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "close_during_job.py"
    script.write_text(CLOSE_SCRIPT, encoding="utf-8")
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
                   "BACKSTORY_DESKTOP_HOME": str(tmp_path / "home"),
                   "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    finished = subprocess.run(
        [sys.executable, str(script), str(sample_mailbox_path()), str(tmp_path / "org.sqlite3")],
        capture_output=True, text=True, timeout=120, env=environment, check=False,
    )

    assert "QThread: Destroyed while thread is still running" not in finished.stderr
    assert finished.returncode == 0, finished.stderr
    assert "job failed: Cancelled" in finished.stdout
    assert "exit code 0" in finished.stdout
