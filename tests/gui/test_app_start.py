"""Starting the wizard where it cannot open a window says why, instead of a Qt abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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
