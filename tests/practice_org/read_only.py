"""Make files and folders read-only for the test process, root included."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Remove write permission from paths for the block, with chattr +i when running as root.

    root may write to any file whatever its mode, but not to an immutable one. The
    test is skipped where neither works.
    """
    changed: list[Path] = []
    immutable: list[Path] = []
    try:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
            changed.append(path)
            if os.access(path, os.W_OK):
                _make_immutable(path)
                immutable.append(path)
        yield
    finally:
        for path in immutable:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
        for path in changed:
            path.chmod(0o755 if path.is_dir() else 0o644)


def _make_immutable(path: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("root writes to read-only files and chattr is not installed")
    result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"root writes to read-only files and chattr +i failed: {result.stderr!r}")
