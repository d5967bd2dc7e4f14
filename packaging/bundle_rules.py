"""Rules of what the PyInstaller bundle carries and leaves out, read by the spec and by the tests.

Plain Python with no PyInstaller import, so that the test suite can check the
rules against what the app really loads without building a bundle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APP_NAME = "Backstory Desktop"
# The executable's and the bundle folder's name: the same as the command pip installs.
EXECUTABLE = "backstory-desktop"
BUNDLE_ID = "com.backstory.desktop"
COMPANY = "Backstory"
COPYRIGHT = "Copyright Backstory. Licensed under the Apache License 2.0."

# The Qt modules the app imports. Every other Qt Python module is left out, so that no
# hook drags in its libraries, plugins or translations. (Qt Charts links Qt's OpenGL
# libraries, which are collected as its dependencies, but never loads PySide6.QtOpenGL.)
QT_MODULES_USED = ("QtCore", "QtGui", "QtWidgets", "QtCharts")
QT_MODULES_UNUSED = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
    "QtBluetooth", "QtConcurrent", "QtDataVisualization", "QtDBus", "QtDesigner", "QtGraphs",
    "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLocation", "QtMultimedia",
    "QtMultimediaWidgets", "QtNetwork", "QtNetworkAuth", "QtNfc", "QtOpenGL", "QtOpenGLWidgets",
    "QtPdf", "QtPdfWidgets",
    "QtPositioning", "QtPrintSupport", "QtQml", "QtQuick", "QtQuick3D", "QtQuickControls2",
    "QtQuickWidgets", "QtRemoteObjects", "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort",
    "QtSpatialAudio", "QtSql", "QtStateMachine", "QtSvgWidgets", "QtTest", "QtTextToSpeech",
    "QtUiTools", "QtWebChannel", "QtWebEngineCore", "QtWebEngineQuick", "QtWebEngineWidgets",
    "QtWebSockets", "QtXml",
)

# Python packages the app never imports but which the build environment may offer.
EXCLUDED_PACKAGES = (
    "tkinter", "unittest", "pydoc_data", "lib2to3", "IPython", "matplotlib", "numpy", "PIL",
    "pytest", "setuptools", "pkg_resources",
    # zeep, which simple-salesforce imports for the Metadata API, uses lxml.etree only.
    "lxml.objectify", "lxml.html", "lxml.isoschematron", "lxml.sax",
)

# Files the Qt hooks collect that the app does not load, as patterns on the path inside
# the bundle. Qt sits under PySide6/Qt/ on Linux and macOS and under PySide6/ on Windows,
# and a library is libQt6X.so on Linux, Qt6X.dll on Windows and QtX.framework on macOS.
# What each pattern leaves out:
# - translations: the UI is English only;
# - the virtual keyboard input method, which brings Qt Quick and QML with it;
# - Qt Quick, QML, PDF and network libraries, which only those plugins load;
# - platform plugins for embedded screens and remote framebuffers (eglfs, linuxfb, vnc,
#   Vulkan displays) and their device integrations: a desktop uses xcb, Wayland, Windows
#   or Cocoa, and the smoke test offscreen;
# - image format plugins beyond PNG, JPEG, GIF, ICO and SVG, which the app never reads.
_QT = r"PySide6/(Qt/)?"
EXCLUDED_FILE_PATTERNS = (
    _QT + r"translations/",
    _QT + r"plugins/platforminputcontexts/(lib)?qtvirtualkeyboardplugin",
    _QT + r"(lib/)?(lib)?Qt6?(VirtualKeyboard|Quick|Qml|Pdf|Network|EglFS|EglFs)\w*"
    r"(\.so|\.dll|\.dylib|\.framework)",
    _QT + r"plugins/platforms/(lib)?q(eglfs|linuxfb|vnc|minimalegl|vkkhrdisplay)",
    _QT + r"plugins/(egldeviceintegrations|generic|networkinformation|tls|sqldrivers)/",
    _QT + r"plugins/imageformats/(lib)?q(tiff|webp|wbmp|tga|pdf|icns|macjp2)",
    # pip's record of where it installed from: the build machine's path, which no user needs.
    r"\.dist-info/direct_url\.json$",
)


def excluded_modules() -> list[str]:
    """Return the module names the bundle's analysis must not follow."""
    return [f"PySide6.{name}" for name in QT_MODULES_UNUSED] + list(EXCLUDED_PACKAGES)


def is_excluded_file(destination: str) -> bool:
    """Return True for a collected file, by its path inside the bundle, the app never loads."""
    path = destination.replace("\\", "/")
    return any(re.search(pattern, path) for pattern in EXCLUDED_FILE_PATTERNS)


def product_version() -> str:
    """Return ``__version__`` from the package's ``__init__.py``, the version's only source."""
    tree = ast.parse((ROOT / "backstory_desktop" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    raise ValueError("backstory_desktop/__init__.py has no __version__ = '...' line")


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """Return the four numbers of a Windows file version: "1.2.3rc1" gives (1, 2, 3, 0)."""
    release = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if release is None:
        raise ValueError(f"version {version!r} does not start with a number")
    major, minor, patch = (int(part or 0) for part in release.groups())
    return major, minor, patch, 0
