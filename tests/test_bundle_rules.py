"""The desktop bundle's rules and the Windows installer script, checked without building a bundle.

packaging/bundle_rules.py decides what the PyInstaller bundle leaves out; these tests hold
its rules against the Qt modules the app really loads. The build itself and its smoke
test run in `make bundle` (packaging/build.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from backstory_desktop import __version__
from tests.conftest import ROOT

# Loaded from its file, so that packaging/ does not go onto sys.path for the whole session.
_spec = importlib.util.spec_from_file_location("bundle_rules", ROOT / "packaging" / "bundle_rules.py")
assert _spec is not None and _spec.loader is not None
bundle_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bundle_rules)


def test_version__bundle_reads_the_package_version() -> None:
    assert bundle_rules.product_version() == __version__


@pytest.mark.parametrize(("version", "numbers"), [
    ("0.1.0", (0, 1, 0, 0)), ("2.3", (2, 3, 0, 0)), ("1.2rc1", (1, 2, 0, 0)), ("4.5.6.dev7", (4, 5, 6, 0)),
])
def test_version__windows_file_version(version: str, numbers: tuple[int, int, int, int]) -> None:
    assert bundle_rules.version_tuple(version) == numbers


def test_bundle__keeps_every_qt_module_the_app_loads() -> None:
    # The wizard is built, shown and closed offscreen in a new process, so that only what
    # the app itself imports is counted.
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from backstory_desktop.gui.app import create_window\n"
        "import backstory_desktop.gui.conflict_charts, backstory_desktop.gui.resolve_dialogs\n"
        "app = QApplication([])\n"
        "window = create_window()\n"
        "window.show(); app.processEvents(); window.close()\n"
        "print(' '.join(sorted(m.split('.')[1] for m in sys.modules\n"
        "    if m.startswith('PySide6.Qt') and m.count('.') == 1)))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=True)
    loaded = set(result.stdout.strip().splitlines()[-1].split())

    assert loaded == set(bundle_rules.QT_MODULES_USED)


def test_bundle__leaves_out_no_module_it_keeps() -> None:
    used_modules = {f"PySide6.{name}" for name in bundle_rules.QT_MODULES_USED}

    assert used_modules & set(bundle_rules.excluded_modules()) == set()


@pytest.mark.parametrize(("path", "excluded"), [
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("PySide6/Qt/lib/libQt6Quick.so.6", True),
    ("PySide6/Qt/plugins/platforms/libqvnc.so", True),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
    ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
    ("PySide6/Qt/lib/libQt6Charts.so.6", False),
    ("PySide6/Qt/lib/libQt6DBus.so.6", False),
    ("PySide6\\translations\\qtbase_fr.qm", True),
    ("PySide6\\Qt6Network.dll", True),
    ("PySide6\\Qt6Quick.dll", True),
    ("PySide6\\plugins\\platforms\\qwindows.dll", False),
    ("PySide6\\plugins\\imageformats\\qtiff.dll", True),
    ("PySide6\\Qt6Widgets.dll", False),
    ("PySide6\\QtNetwork.pyd", False),
    ("PySide6/Qt/lib/QtNetwork.framework/Versions/A/QtNetwork", True),
    ("PySide6/Qt/lib/QtQml.framework/Resources/Info.plist", True),
    ("PySide6/Qt/lib/QtCharts.framework/Versions/A/QtCharts", False),
    ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", False),
    ("PySide6/Qt/translations/qtbase_ja.qm", True),
    ("backstory_desktop-0.1.0.dist-info/direct_url.json", True),
    ("backstory_desktop-0.1.0.dist-info/METADATA", False),
])
def test_bundle__file_rules(path: str, excluded: bool) -> None:
    assert bundle_rules.is_excluded_file(path) is excluded


INNO_SETUP_SCRIPT = ROOT / "packaging" / "windows" / "backstory-desktop.iss"


def test_installer_script__names_the_bundle_files() -> None:
    script = INNO_SETUP_SCRIPT.read_text(encoding="utf-8")

    assert f'#define AppName "{bundle_rules.APP_NAME}"' in script
    assert f'#define AppExeName "{bundle_rules.APP_NAME}.exe"' in script
    assert f'"\\dist\\{bundle_rules.EXECUTABLE}"' in script
    assert "SetupIconFile={#RepoRoot}\\resources\\icons\\backstory-desktop.ico" in script


def test_installer_script__app_id_never_changes() -> None:
    # Windows finds the installed copy to upgrade or uninstall by this id.
    assert "AppId={{367636B2-6731-4B47-BB05-55E24073855E}\n" in INNO_SETUP_SCRIPT.read_text(encoding="utf-8")
