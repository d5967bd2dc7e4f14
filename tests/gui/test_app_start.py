"""Starting the wizard: its name and icon, a screenshot to check a new install, and no display."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication, QIcon, QImage
from PySide6.QtWidgets import QApplication

from backstory_desktop import __version__
from backstory_desktop.bundled import desktop_entry_path
from backstory_desktop.gui.wizard import WINDOW_SIZE, WizardWindow
from backstory_desktop.store.paths import log_dir


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux decides on DISPLAY")
def test_app_start__no_display_names_the_cause_and_the_way_out(tmp_path: Path) -> None:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    environment["BACKSTORY_DESKTOP_HOME"] = str(tmp_path)

    finished = subprocess.run(
        [sys.executable, "-m", "backstory_desktop"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )

    assert finished.returncode == 2
    assert "No display found" in finished.stderr
    assert "rehearse" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_gui_unknown_org__lists_built_in_practice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from backstory_desktop import cli
    from backstory_desktop.org_sessions import new_profile
    from backstory_desktop.store.settings import save_profile

    monkeypatch.setenv("BACKSTORY_DESKTOP_HOME", str(tmp_path / "home"))
    save_profile(new_profile("acme", "production", "", "3MVG9example"))

    status = cli.main(["gui", "--org", "nosuch"])

    assert status == 2
    message = capsys.readouterr().err
    assert "practice (the built-in practice org)" in message
    assert "acme" in message


def test_application_icon__loads_at_16_and_256_px(qapp: QApplication) -> None:
    from backstory_desktop.bundled import ICON_SIZES
    from backstory_desktop.gui.app import application_icon

    icon = application_icon()

    assert sorted(size.width() for size in icon.availableSizes()) == list(ICON_SIZES)
    for size in (16, 256):
        pixmap = icon.pixmap(QSize(size, size))
        assert not pixmap.isNull(), size
        assert pixmap.size() == QSize(size, size)


def test_create_window__sets_names_and_window_icon(make_window: Callable[..., WizardWindow],
                                                   qapp: QApplication) -> None:
    qapp.setWindowIcon(QIcon())
    qapp.setApplicationName("")

    make_window()

    assert not QApplication.windowIcon().isNull()
    assert QApplication.applicationName() == "Backstory Desktop"
    assert QApplication.applicationVersion() == __version__
    assert QApplication.organizationName() == "Backstory"
    assert QGuiApplication.desktopFileName() == "backstory-desktop"


def test_create_window__names_match_the_desktop_entry(make_window: Callable[..., WizardWindow]) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(desktop_entry_path(), encoding="utf-8")
    entry = parser["Desktop Entry"]

    make_window()

    # Qt on X11 sets the window's WM_CLASS class to the application name.
    assert entry["StartupWMClass"] == QApplication.applicationName()
    assert desktop_entry_path().stem == QGuiApplication.desktopFileName()
    assert entry["Icon"] == QGuiApplication.desktopFileName()


def test_gui_screenshot__saves_the_window_and_exits(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    path = folder / "wizard.png"

    # A process of its own, because once the wizard's event loop quits, Qt returns at once from
    # every later event loop of the same process, so the tests after this one could wait no more.
    finished = subprocess.run(
        [sys.executable, "-m", "backstory_desktop", "gui", "--screenshot", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )

    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    assert [item.name for item in folder.iterdir()] == ["wizard.png"]
    image = QImage(str(path))
    assert not image.isNull()
    assert image.width() >= WINDOW_SIZE.width()
    assert image.height() >= WINDOW_SIZE.height()
    # The window may open wider than WINDOW_SIZE when a label, such as a long database path, needs it.
    log_text = (log_dir() / "backstory-desktop.log").read_text(encoding="utf-8")
    assert f"saved a {image.width()}x{image.height()} screenshot of the wizard to {path}" in log_text
    colours = {image.pixel(x, y) for x in range(0, image.width(), 5) for y in range(0, image.height(), 5)}
    assert len(colours) >= 4


def test_gui_screenshot__missing_folder_is_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from backstory_desktop import cli

    path = tmp_path / "no-such-folder" / "wizard.png"

    status = cli.main(["gui", "--screenshot", str(path)])

    assert status == 2
    message = capsys.readouterr().err
    assert str(path) in message
    assert "does not exist" in message
    assert not path.parent.exists()


def test_gui_screenshot__folder_path_is_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from backstory_desktop import cli

    folder = tmp_path / "shots"
    folder.mkdir()

    status = cli.main(["gui", "--screenshot", str(folder)])

    assert status == 2
    assert f"{folder} because it is a folder" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_gui_screenshot__name_too_long_is_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from backstory_desktop import cli

    path = tmp_path / ("a" * 300 + ".png")

    status = cli.main(["gui", "--screenshot", str(path)])

    assert status == 2
    assert "choose a shorter path" in capsys.readouterr().err


def test_gui_screenshot__parent_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from backstory_desktop import cli

    (tmp_path / "notes").write_text("", encoding="utf-8")

    status = cli.main(["gui", "--screenshot", str(tmp_path / "notes" / "wizard.png")])

    assert status == 2
    assert "is not a folder" in capsys.readouterr().err
