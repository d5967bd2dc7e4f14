"""Start the wizard: the Qt application, its name and icon, the window, and a clean stop at exit."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, QTimer
from PySide6.QtGui import QIcon, QImageWriter
from PySide6.QtWidgets import QApplication

from backstory_desktop import __version__
from backstory_desktop.bundled import ICON_NAME, icon_png_paths, icon_svg_path, sample_mailbox_path
from backstory_desktop.gui.pages.base import PracticeSettings
from backstory_desktop.gui.wizard import WizardWindow
from backstory_desktop.store.paths import practice_org_db

log = logging.getLogger(__name__)

# On X11, Qt sets the window's WM_CLASS class to the application name, and the desktop
# entry's StartupWMClass repeats it. On Wayland the desktop file name is the window's app id.
APPLICATION_NAME = "Backstory Desktop"
ORGANIZATION_NAME = "Backstory"
DESKTOP_FILE_NAME = ICON_NAME

# The exit status of `gui --screenshot` when the picture could not be written.
SCREENSHOT_FAILED_STATUS = 1

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


def application_icon() -> QIcon:
    """Load the application icon from its bundled PNGs, one per size, or from the SVG without them."""
    icon = QIcon()
    for size, path in icon_png_paths().items():
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    if icon.isNull():
        log.warning("the icon PNGs are missing under %s; loading the SVG icon instead",
                    icon_svg_path().parent)
        icon = QIcon(str(icon_svg_path()))
    return icon


def configure_application(app: QApplication) -> None:
    """Set the name, version, organization, desktop entry and icon the desktop shows for the app.

    Call it before the first window is created, because Qt on X11 reads the application
    name into the window's WM_CLASS when the window is created.
    """
    app.setApplicationName(APPLICATION_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(ORGANIZATION_NAME)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    app.setWindowIcon(application_icon())


def create_window(
    practice_db: Path | None = None,
    mailbox: Path | None = None,
    *,
    scenario: str = "default",
    org_alias: str | None = None,
) -> WizardWindow:
    """Build the wizard window and set the application's name and icon; a QApplication must exist.

    ``scenario`` seeds a practice org database that does not exist yet; an
    existing database keeps its data. ``org_alias`` selects a saved org profile
    and resumes its saved sign-in; without it the window opens the profile used
    last, or the practice org.
    """
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        raise RuntimeError("create_window needs a QApplication, so create one before the window")
    configure_application(app)
    practice = PracticeSettings(practice_db or practice_org_db(), scenario)
    return WizardWindow(practice, mailbox or sample_mailbox_path(), org_alias=org_alias)


def run_gui(
    practice_db: Path | None,
    mailbox: Path | None,
    *,
    scenario: str = "default",
    org_alias: str | None = None,
    screenshot: Path | None = None,
) -> int:
    """Show the wizard until the admin closes it; return the process exit code.

    ``scenario`` seeds the practice org database when it does not exist yet, and
    ``org_alias`` names the saved org profile to open with. With ``screenshot``, the
    window closes by itself once its first page is saved there as a PNG.
    """
    if not _display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return NO_DISPLAY_STATUS
    app = QApplication.instance() or QApplication(sys.argv)
    window = create_window(practice_db, mailbox, scenario=scenario, org_alias=org_alias)
    window.show()
    if screenshot is not None:
        # The zero timer fires once the event loop has delivered the events that show() posted.
        # grab() then paints every widget of the window into the picture.
        QTimer.singleShot(0, lambda: _save_screenshot_and_quit(window, screenshot))
    exit_code = app.exec()

    # The window waits for a cancelled job before closing; this catches a job
    # still running after that bounded wait, so no pool thread outlives Qt.
    if not window.worker.wait_until_idle(EXIT_WAIT_MS):
        log.error("a job was still running %.1f s after the window closed; exiting without it",
                  EXIT_WAIT_MS / 1000)
    window.context.stop_practice_org()
    return int(exit_code)


def _save_screenshot_and_quit(window: WizardWindow, path: Path) -> None:
    """Save the window as a PNG at ``path``, then close it and leave the event loop."""
    writer = QImageWriter(str(path), QByteArray(b"png"))
    if writer.write(window.grab().toImage()):
        log.info("saved a %dx%d screenshot of the wizard to %s", window.width(), window.height(), path)
        status = 0
    else:
        log.error("could not save the screenshot to %s: %s", path, writer.errorString())
        print(f"Could not save the screenshot to {path} ({writer.errorString()}), so check that "
              "its folder is writable.", file=sys.stderr)
        status = SCREENSHOT_FAILED_STATUS
    window.close()
    QApplication.exit(status)
