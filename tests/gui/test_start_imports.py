"""Starting the wizard: the modules its first window loads, and the start-up work after the first paint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pytestqt.qtbot import QtBot

from backstory_desktop.gui.wizard import WizardWindow

# Modules that the window loads only after its first paint or when a step needs them, because
# importing them before the first paint delayed it about fourfold (benchmarks/cold_start.py).
DEFERRED_MODULES = (
    "backstory_desktop.enablement",
    "backstory_desktop.org_sessions",
    "backstory_desktop.practice_org",
    "backstory_desktop.practice_org.server",
    "backstory_desktop.practice_org.soql_parser",
    "backstory_desktop.salesforce.connection",
    "backstory_desktop.salesforce.errors",
    "backstory_desktop.store.journal",
    "backstory_desktop.store.secrets",
    "backstory_desktop.gui.pages.local_sync",
    "backstory_desktop.gui.pages.conflicts",
    "backstory_desktop.gui.diagnostics_dialog",
    "simple_salesforce",
    "zeep",
    "requests",
    "jwt",
    "werkzeug",
    "lark",
    "rapidfuzz",
    "keyring",
    "filelock",
    "cryptography",
)

# The child process creates the wizard's window with create_window(), without showing it, and
# prints the deferred modules that are loaded by then.
START_CODE = f"""
import json, sys
from PySide6.QtWidgets import QApplication
from backstory_desktop.gui.app import create_window
app = QApplication(sys.argv)
window = create_window()
print(json.dumps([name for name in {DEFERRED_MODULES!r} if name in sys.modules]))
"""


def test_create_window__leaves_heavy_modules_out(tmp_path: Path) -> None:
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BACKSTORY_DESKTOP_HOME": str(tmp_path)}

    finished = subprocess.run([sys.executable, "-c", START_CODE], capture_output=True, text=True,
                              timeout=120, env=environment, check=False)

    assert finished.returncode == 0, finished.stderr
    loaded = json.loads(finished.stdout.strip().splitlines()[-1])
    assert loaded == []


def test_window__ready_after_first_paint(qtbot: QtBot, make_window: Callable[..., WizardWindow]) -> None:
    window = make_window()

    qtbot.waitUntil(lambda: window.is_ready, timeout=60_000)

    assert window.context.run_created
    assert "practice org needs no saved sign-in" in window.connect_page.keyring_notice.text()

