"""Locate files bundled with the product: the sample mailbox, icons and their licences.

The top-level ``resources/`` folder of a checkout is installed as the
``backstory_desktop.resources`` package in a wheel, so both layouts are looked up.
"""

from __future__ import annotations

import importlib
from pathlib import Path

_CHECKOUT_RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Return the path of a bundled resource, in a checkout, an installed wheel or the desktop bundle."""
    return _resources_root().joinpath(*parts)


def _resources_root() -> Path:
    # The folder has no __init__.py, so an installed wheel or the desktop bundle makes it a
    # namespace package, for which importlib.resources.files() gives a MultiplexedPath.
    # The package's __path__ names the folder in every layout.
    try:
        package = importlib.import_module("backstory_desktop.resources")
    except ModuleNotFoundError:
        return _CHECKOUT_RESOURCES
    for folder in package.__path__:
        return Path(folder)
    return _CHECKOUT_RESOURCES


def sample_mailbox_path() -> Path:
    """Return the bundled sample mailbox that seeds the default practice org."""
    return resource_path("sample-mailbox", "sample.mbox")


# The name of the icon and of the desktop entry, as installed in the freedesktop icon theme.
ICON_NAME = "backstory-desktop"
# The sizes, in pixels, of the square PNGs rendered from the icon's SVG by packaging/make_icons.py.
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def icon_svg_path() -> Path:
    """Return the application icon drawn as SVG, the source of every PNG, ICO and ICNS icon."""
    return resource_path("icons", f"{ICON_NAME}.svg")


def icon_png_paths() -> dict[int, Path]:
    """Return the application icon's PNG of each size in ICON_SIZES, by size in pixels."""
    return {
        size: resource_path("icons", "hicolor", f"{size}x{size}", "apps", f"{ICON_NAME}.png")
        for size in ICON_SIZES
    }


def desktop_entry_path() -> Path:
    """Return the freedesktop desktop entry that Linux menus and Wayland match the window with."""
    return resource_path("linux", f"{ICON_NAME}.desktop")
