"""Org profiles: the saved orgs and each one's enablement settings, as TOML.

The file is written atomically (a temporary file renamed over the old one),
so a crash never leaves half a file. A file that cannot be read is moved
aside and reported, never silently reset. No secret is ever stored here.
"""

from __future__ import annotations

import logging
import os
import tempfile
import tomllib
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from backstory_desktop.store.paths import config_dir

log = logging.getLogger(__name__)

PROFILES_FILE_NAME = "profiles.toml"
DEFAULT_FIELD_API_NAME = "Message_ID__c"
# The "Created by Backstory" checkbox of Backstory's managed package.
DEFAULT_FLAG_FIELD_API_NAME = "peopleai__Created_by_PeopleAI__c"


class ProfilesFileError(Exception):
    """The profiles file could not be read; it was moved aside to ``kept_at``."""

    def __init__(self, path: Path, kept_at: Path, reason: str) -> None:
        super().__init__(
            f"{path} could not be read ({reason}); it was kept as {kept_at}, and the next "
            "saved profile starts a new file"
        )
        self.path = path
        self.kept_at = kept_at


@dataclass
class OrgProfile:
    """One saved org and the settings the enablement steps record for it."""

    alias: str
    kind: str = "practice"  # practice | production | sandbox | mydomain
    login_host: str = ""
    instance_url: str = ""
    username: str = ""
    api_version: str = ""
    client_id: str = ""
    field_api_name: str = DEFAULT_FIELD_API_NAME
    flag_field_api_name: str = DEFAULT_FLAG_FIELD_API_NAME
    integration_username: str = ""
    backstory_setting_value: str = ""
    backstory_setting_confirmed: bool = False
    practice_db: str = ""


def profiles_path() -> Path:
    """Return the path of the profiles file."""
    return config_dir() / PROFILES_FILE_NAME


def load_profiles(path: Path | None = None) -> dict[str, OrgProfile]:
    """Read every saved profile; a missing file means none are saved yet."""
    path = path or profiles_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        document = tomllib.loads(data.decode("utf-8"))
        return {
            alias: _profile_from_table(alias, table)
            for alias, table in document.get("org", {}).items()
        }
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError, AttributeError) as error:
        kept_at = _keep_aside(path)
        raise ProfilesFileError(path, kept_at, str(error)) from error


def _profile_from_table(alias: str, table: dict[str, Any]) -> OrgProfile:
    known = {f.name for f in fields(OrgProfile)} - {"alias"}
    values = {key: value for key, value in table.items() if key in known}
    return OrgProfile(alias=alias, **values)


def _keep_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept_at = path.with_name(f"{path.name}.unreadable-{stamp}")
    path.replace(kept_at)
    log.warning("profiles file %s was unreadable; kept as %s", path, kept_at)
    return kept_at


def save_profile(profile: OrgProfile, path: Path | None = None) -> None:
    """Add or replace one profile, keeping the others, in one atomic write."""
    path = path or profiles_path()
    profiles = load_profiles(path)
    profiles[profile.alias] = profile
    document = {"org": {alias: _table_from_profile(p) for alias, p in sorted(profiles.items())}}
    _write_atomically(path, tomli_w.dumps(document))


def _table_from_profile(profile: OrgProfile) -> dict[str, Any]:
    table = asdict(profile)
    del table["alias"]
    return table


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
