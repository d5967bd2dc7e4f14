"""Org profiles and app settings, as TOML files in the config folder.

``profiles.toml`` holds the saved orgs and each one's enablement settings;
``app.toml`` holds the settings of the app itself. Each file is written
atomically (a temporary file renamed over the old one), so a crash never
leaves half a file, and is readable by its owner only (mode 0600 on POSIX).
A profiles file that cannot be read is moved aside and reported, never
silently reset. No secret is ever stored here: refresh tokens live in the
OS keyring (store/secrets.py), and a save rejects any value shaped like a
Salesforce access or refresh token.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from backstory_desktop.store.paths import config_dir

log = logging.getLogger(__name__)

PROFILES_FILE_NAME = "profiles.toml"
APP_SETTINGS_FILE_NAME = "app.toml"
DEFAULT_FIELD_API_NAME = "Message_ID__c"
# The "Created by Backstory" checkbox of Backstory's managed package.
DEFAULT_FLAG_FIELD_API_NAME = "peopleai__Created_by_PeopleAI__c"

# The loopback ports the sign-in listens on, in order, as in salesforce.oauth.DEFAULT_CALLBACK_PORTS.
# The store sits below the Salesforce layer, so the value is repeated here rather than imported.
DEFAULT_CALLBACK_PORTS = (7317, 7318, 7319)

# The alias of the practice org the app starts itself.
PRACTICE_PROFILE_ALIAS = "practice"
PROFILE_KINDS = ("practice", "served", "production", "sandbox", "mydomain")
SIGN_IN_METHODS = ("browser", "password", "access_token")

ALIAS_MAX_LENGTH = 40
_ALIAS_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")

# A Salesforce access token or session id (the 15- or 18-character org id, "!", then the
# secret), or a refresh token, which starts with "5Aep".
_TOKEN_SHAPE = re.compile(r"\b00D[0-9A-Za-z]{12,15}![0-9A-Za-z._\-]+|\b5Aep[0-9A-Za-z._\-]{16,}")

OWNER_ONLY_FILE_MODE = 0o600


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
    # practice (the built-in practice org) | served (a practice org run by
    # `practice-org serve`, reached like a real org) | production | sandbox | mydomain
    kind: str = "practice"
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
    # The loopback ports of the callback URLs registered for the app, tried in order.
    callback_ports: list[int] = field(default_factory=lambda: list(DEFAULT_CALLBACK_PORTS))
    # A PEM file of extra certificate authorities, for a served practice org or a TLS proxy.
    ca_bundle: str = ""
    sign_in_method: str = "browser"  # browser | password | access_token


@dataclass
class AppSettings:
    """Settings of the app itself, shared by every profile."""

    last_profile: str = ""  # the alias selected when the app last closed
    # Accept a keyring backend that keyring does not recommend, such as a plain-text file.
    allow_insecure_keyring: bool = False


def validate_alias(text: str) -> str:
    """Return ``text`` as a profile alias, or raise ValueError naming what is wrong with it.

    An alias is 1 to 40 characters of ASCII letters, digits, ".", "_" and "-", so it is
    a plain TOML key and a keyring entry name on every platform.
    """
    if not text:
        raise ValueError("The alias is empty, so type a short name such as acme-prod.")
    if len(text) > ALIAS_MAX_LENGTH:
        raise ValueError(
            f"The alias is {len(text)} characters long, so shorten it to {ALIAS_MAX_LENGTH} or fewer."
        )
    if not _ALIAS_CHARACTERS.fullmatch(text):
        invalid = sorted({character for character in text if not _ALIAS_CHARACTERS.fullmatch(character)})
        invalid_listed = " ".join(repr(character) for character in invalid)
        raise ValueError(
            f"The alias {text!r} contains {invalid_listed}, so use only ASCII letters, digits, "
            "'.', '_' and '-'."
        )
    return text


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
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError, ValueError, AttributeError) as error:
        kept_at = _keep_aside(path)
        raise ProfilesFileError(path, kept_at, str(error)) from error


def _profile_from_table(alias: str, table: dict[str, Any]) -> OrgProfile:
    known = {f.name for f in fields(OrgProfile)} - {"alias"}
    values = {key: value for key, value in table.items() if key in known}
    if "callback_ports" in values:
        values["callback_ports"] = [int(port) for port in values["callback_ports"]]
    return OrgProfile(alias=alias, **values)


def _keep_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept_at = path.with_name(f"{path.name}.unreadable-{stamp}")
    path.replace(kept_at)
    log.warning("settings file %s was unreadable; kept as %s", path, kept_at)
    return kept_at


def save_profile(profile: OrgProfile, path: Path | None = None) -> None:
    """Add or replace one profile, keeping the others, in one atomic write.

    Raises ValueError for an invalid alias and for a value shaped like a Salesforce token.
    """
    validate_alias(profile.alias)
    path = path or profiles_path()
    profiles = load_profiles(path)
    profiles[profile.alias] = profile
    _write_profiles(path, profiles)


def delete_profile(alias: str, path: Path | None = None) -> bool:
    """Remove the profile ``alias``, keeping the others; return whether it existed.

    The profile's refresh token in the keyring is not touched here: org_sessions.sign_out does that.
    """
    path = path or profiles_path()
    profiles = load_profiles(path)
    if profiles.pop(alias, None) is None:
        return False
    _write_profiles(path, profiles)
    log.info("Deleted org profile %s", alias)
    return True


def _write_profiles(path: Path, profiles: dict[str, OrgProfile]) -> None:
    document = {"org": {alias: _table_from_profile(p) for alias, p in sorted(profiles.items())}}
    _write_atomically(path, tomli_w.dumps(document))


def _table_from_profile(profile: OrgProfile) -> dict[str, Any]:
    table = asdict(profile)
    del table["alias"]
    _reject_secrets(f"profile {profile.alias}", table)
    return table


def _reject_secrets(owner: str, table: dict[str, Any]) -> None:
    """Raise ValueError when a value looks like a token, so no token reaches a file."""
    for name, value in table.items():
        if isinstance(value, str) and _TOKEN_SHAPE.search(value):
            # The value itself stays out of the message, since it may be a live token.
            raise ValueError(
                f"The {name} of {owner} looks like a Salesforce token, which is never saved "
                "in a settings file, so it was not saved."
            )


def app_settings_path() -> Path:
    """Return the path of the app settings file."""
    return config_dir() / APP_SETTINGS_FILE_NAME


def load_app_settings(path: Path | None = None) -> AppSettings:
    """Read the app settings; a missing file means the defaults.

    A file that cannot be read is moved aside with a warning in the log, and the defaults
    are returned: they are the safe choice (no insecure keyring, no preselected profile).
    """
    path = path or app_settings_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return AppSettings()
    try:
        table = tomllib.loads(data.decode("utf-8")).get("app", {})
        known = {f.name for f in fields(AppSettings)}
        settings = AppSettings(**{key: value for key, value in table.items() if key in known})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError, AttributeError) as error:
        kept_at = _keep_aside(path)
        log.warning("Using the default app settings because %s could not be read: %s", kept_at, error)
        return AppSettings()
    if not isinstance(settings.last_profile, str) or not isinstance(settings.allow_insecure_keyring, bool):
        log.warning("Using the default app settings because %s has a value of the wrong type", path)
        return AppSettings()
    return settings


def save_app_settings(settings: AppSettings, path: Path | None = None) -> None:
    """Write the app settings in one atomic write."""
    path = path or app_settings_path()
    table = asdict(settings)
    _reject_secrets("the app settings", table)
    _write_atomically(path, tomli_w.dumps({"app": table}))


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file that only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file with mode 0600, and os.replace keeps that mode for ``path``.
    handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
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
