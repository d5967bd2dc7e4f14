"""The folders of Backstory Desktop's files: settings, data and logs, from platformdirs."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "backstory-desktop"
APP_AUTHOR = "Backstory"

# Lets tests and portable installs keep every file under one folder.
HOME_OVERRIDE_VARIABLE = "BACKSTORY_DESKTOP_HOME"


def _override() -> Path | None:
    value = os.environ.get(HOME_OVERRIDE_VARIABLE)
    return Path(value) if value else None


def config_dir() -> Path:
    """Return the folder of org profiles and app settings."""
    override = _override()
    return (
        override / "config"
        if override
        else Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR))
    )


def data_dir() -> Path:
    """Return the folder of the practice org, journals and result files."""
    override = _override()
    return override / "data" if override else Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def log_dir() -> Path:
    """Return the folder of the daily log files."""
    override = _override()
    return override / "logs" if override else Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))


def practice_org_db() -> Path:
    """Return the default practice org database file."""
    return data_dir() / "practice-org" / "practice-org.sqlite3"


PRIVATE_DIR_MODE = 0o700
OWNER_ONLY_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create a folder readable by its owner only, since it may hold org data.

    An existing folder of the app's own (settings, data, logs, or a folder
    inside them) is tightened to mode 0700 when this user owns it. Any other
    existing folder is left as it is: a database or export the admin puts in
    their own folder, or in /tmp, must not change who may open that folder.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if os.name == "posix" and _is_app_folder(path):
        status = path.stat()
        if status.st_uid == os.getuid() and stat.S_IMODE(status.st_mode) != PRIVATE_DIR_MODE:
            os.chmod(path, PRIVATE_DIR_MODE)
    return path


def _is_app_folder(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in (config_dir(), data_dir(), log_dir()))


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, readable by its owner only.

    The text goes to a temporary file in the same folder, is flushed to disk and
    then renamed over ``path``, so a reader sees the old file or the new one,
    never half of either. On POSIX the folder is flushed too, so the new name
    survives a power loss. The caller creates the folder.
    """
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, OWNER_ONLY_FILE_MODE)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if os.name == "posix":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
