"""Locate files bundled with the product: the sample mailbox, icons and their licences.

The top-level ``resources/`` folder of a checkout is installed as the
``backstory_desktop.resources`` package in a wheel, so both layouts are looked up.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT_RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Return the path of a bundled resource, in a checkout or an installed wheel."""
    try:
        root = Path(str(resources.files("backstory_desktop.resources")))
    except ModuleNotFoundError:
        root = _CHECKOUT_RESOURCES
    return root.joinpath(*parts)


def sample_mailbox_path() -> Path:
    """Return the bundled sample mailbox that seeds the default practice org."""
    return resource_path("sample-mailbox", "sample.mbox")
