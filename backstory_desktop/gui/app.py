"""Start the wizard: the Qt application, the window, and a clean stop of the worker at exit."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.gui.pages.base import PracticeSettings
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.store.paths import practice_org_db

log = logging.getLogger(__name__)

# After the window has closed, how long exit waits for a job that ignored its cancel.
EXIT_WAIT_MS = 30_000


# Qt aborts the whole process when Linux has no display to connect to, with a
# message about platform plugins that does not name the real cause.
NO_DISPLAY_STATUS = 2
NO_DISPLAY_MESSAGE = (
    "No display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the wizard cannot open a "
    "window. Run it in a desktop session, or use 'backstory-desktop rehearse' to run every step "
    "without a window."
)


def _display_available() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def create_window(
    practice_db: Path | None = None,
    mailbox: Path | None = None,
    *,
    scenario: str = "default",
    org_alias: str | None = None,
) -> WizardWindow:
    """Build the wizard window; a QApplication must exist already.

    ``scenario`` seeds a practice org database that does not exist yet; an
    existing database keeps its data. ``org_alias`` selects a saved org profile
    and resumes its saved sign-in; without it the window opens the profile used
    last, or the practice org.
    """
    practice = PracticeSettings(practice_db or practice_org_db(), scenario)
    return WizardWindow(practice, mailbox or sample_mailbox_path(), org_alias=org_alias)


def run_gui(
    practice_db: Path | None,
    mailbox: Path | None,
    *,
    scenario: str = "default",
    org_alias: str | None = None,
) -> int:
    """Show the wizard until the admin closes it; return the process exit code.

    ``scenario`` seeds the practice org database when it does not exist yet, and
    ``org_alias`` names the saved org profile to open with.
    """
    if not _display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return NO_DISPLAY_STATUS
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("Backstory Desktop")
    window = create_window(practice_db, mailbox, scenario=scenario, org_alias=org_alias)
    window.show()
    exit_code = app.exec()

    # The window waits for a cancelled job before closing; this catches a job
    # still running after that bounded wait, so no pool thread outlives Qt.
    if not window.worker.wait_until_idle(EXIT_WAIT_MS):
        log.error("a job was still running %.1f s after the window closed; exiting without it",
                  EXIT_WAIT_MS / 1000)
    window.context.stop_practice_org()
    return int(exit_code)
