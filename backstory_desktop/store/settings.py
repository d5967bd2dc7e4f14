"""Org profiles and app settings, as TOML files in the config folder.

``profiles.toml`` holds the saved orgs and each one's enablement settings;
``app.toml`` holds the settings of the app itself. Each file is written
atomically (a temporary file renamed over the old one), so a crash never
leaves half a file, and is readable by its owner only (mode 0600 on POSIX).
A profiles file that cannot be read is moved aside and reported, never
silently reset. Keys that a newer version wrote are kept on save. No secret
is ever stored here: refresh tokens live in the OS keyring
(store/secrets.py), and a save rejects any value shaped like a Salesforce
access or refresh token.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from backstory_desktop.store.paths import config_dir, write_private_file

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
# The cadence tools whose Salesforce users a profile can name, as their vendors spell them.
CADENCE_TOOLS = ("Outreach", "SalesLoft", "SendBloom")
DEFAULT_COVERAGE_DAYS = 30
MAX_COVERAGE_DAYS = 365

ALIAS_MAX_LENGTH = 40
_ALIAS_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")

# A Salesforce access token or session id (the 15- or 18-character org id, "!", then the
# secret), or a refresh token, which starts with "5Aep".
_TOKEN_SHAPE = re.compile(r"\b00D[0-9A-Za-z]{12,15}![0-9A-Za-z._\-]+|\b5Aep[0-9A-Za-z._\-]{16,}")



class ProfilesFileError(Exception):
    """The profiles file could not be read; it was moved aside to ``kept_at``, or left in place when None."""

    def __init__(self, path: Path, kept_at: Path | None, reason: str) -> None:
        if kept_at is None:
            message = (
                f"{path} could not be read ({reason}), and it could not be moved aside either, so "
                "fix its permissions or remove it; until then no profile can be saved"
            )
        else:
            message = (
                f"{path} could not be read ({reason}); it was kept as {kept_at}, and the next "
                "saved profile starts a new file"
            )
        super().__init__(message)
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
    # The UTC date (YYYY-MM-DD) the admin confirmed entering the value, "" while unconfirmed.
    backstory_setting_confirmed_on: str = ""
    practice_db: str = ""
    # The loopback ports of the callback URLs registered for the app, tried in order.
    callback_ports: list[int] = field(default_factory=lambda: list(DEFAULT_CALLBACK_PORTS))
    # A PEM file of extra certificate authorities, for a served practice org or a TLS proxy.
    ca_bundle: str = ""
    sign_in_method: str = "browser"  # browser | password | access_token
    # The Salesforce usernames each cadence tool logs as, by tool name (see CADENCE_TOOLS).
    cadence_users: dict[str, list[str]] = field(default_factory=dict)
    # How many days back the cadence-tool coverage checks look.
    coverage_days: int = DEFAULT_COVERAGE_DAYS


@dataclass
class AppSettings:
    """Settings of the app itself, shared by every profile."""

    last_profile: str = ""  # the alias selected when the app last closed
    # Accept a keyring backend that keyring does not recommend, such as a plain-text file.
    allow_insecure_keyring: bool = False


# The declared type of each profile field, by name, for checking values read from the file.
_PROFILE_FIELD_TYPES = {f.name: str(f.type) for f in fields(OrgProfile) if f.name != "alias"}
_APP_SETTING_TYPES: dict[str, type] = {"last_profile": str, "allow_insecure_keyring": bool}


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


def check_alias_free(alias: str, taken_aliases: Iterable[str]) -> None:
    """Raise ValueError when ``alias`` names the built-in practice org or a profile in ``taken_aliases``.

    Letter case is ignored, so "PRACTICE" is reserved like "practice", and "Acme" and
    "acme" cannot be two profiles. An alias equal to one in ``taken_aliases`` counts as
    that same profile, so an edited profile may keep its alias.
    """
    folded = alias.casefold()
    if folded == PRACTICE_PROFILE_ALIAS and alias != PRACTICE_PROFILE_ALIAS:
        raise ValueError(
            f"The alias {alias} is the built-in practice org's alias in other letter case, so "
            "choose another alias."
        )
    for existing_alias in taken_aliases:
        if existing_alias != alias and existing_alias.casefold() == folded:
            raise ValueError(
                f"An org profile named {existing_alias} exists already, and aliases ignore letter "
                "case, so choose another alias."
            )


def profiles_path() -> Path:
    """Return the path of the profiles file."""
    return config_dir() / PROFILES_FILE_NAME


def load_profiles(path: Path | None = None) -> dict[str, OrgProfile]:
    """Read every valid saved profile; a missing file means none are saved yet.

    A profile with an invalid alias, kind or value is skipped with one warning in the log,
    and stays in the file. Raises ProfilesFileError when the file cannot be read or parsed.
    """
    path = path or profiles_path()
    document = _read_profiles_document(path)
    profiles: dict[str, OrgProfile] = {}
    for alias, table in document.get("org", {}).items():
        try:
            profiles[alias] = _profile_from_table(alias, table)
        except ValueError as error:
            _report_skipped_profile(path, alias, str(error))
    return profiles


def _read_profiles_document(path: Path) -> dict[str, Any]:
    """Return the profiles file as a TOML document, or {} when there is none yet.

    The document keeps keys and tables this version does not know, so that a save
    leaves what a newer version wrote in place.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    # A folder in place of the file, or a file this user may not read (PermissionError).
    except OSError as error:
        raise ProfilesFileError(path, _keep_aside(path), f"{type(error).__name__}: {error}") from error
    try:
        document = tomllib.loads(data.decode("utf-8"))
        if not isinstance(document.get("org", {}), dict):
            raise TypeError("the key org is not a table")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, TypeError) as error:
        raise ProfilesFileError(path, _keep_aside(path), str(error)) from error
    return document


# Bad profile entries already reported, as (file, alias, problem), so each is logged once.
_reported_profile_problems: set[tuple[str, str, str]] = set()


def _report_skipped_profile(path: Path, alias: str, problem: str) -> None:
    key = (str(path), alias, problem)
    if key in _reported_profile_problems:
        return
    _reported_profile_problems.add(key)
    log.warning(
        "Skipped the org profile %r in %s because it is invalid (%s); fix or delete it in the file",
        alias, path, problem,
    )


def _profile_from_table(alias: str, table: object) -> OrgProfile:
    """Build the profile ``alias`` from its TOML table, or raise ValueError naming the problem."""
    validate_alias(alias)
    if not isinstance(table, dict):
        raise ValueError(f"org.{alias} is not a table")
    values = {key: value for key, value in table.items() if key in _PROFILE_FIELD_TYPES}
    for key, value in values.items():
        _check_profile_value(key, value)
    profile = OrgProfile(alias=alias, **values)
    if profile.kind not in PROFILE_KINDS:
        raise ValueError(f"the kind {profile.kind!r} is not one of {', '.join(PROFILE_KINDS)}")
    if profile.sign_in_method not in SIGN_IN_METHODS:
        raise ValueError(
            f"the sign_in_method {profile.sign_in_method!r} is not one of {', '.join(SIGN_IN_METHODS)}"
        )
    return profile


def _check_profile_value(key: str, value: object) -> None:
    expected = _PROFILE_FIELD_TYPES[key]
    if expected == "list[int]":
        ports_valid = isinstance(value, list) and all(
            isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535 for port in value
        )
        if not ports_valid:
            raise ValueError(f"{key} must be a list of TCP port numbers")
        return
    if expected == "dict[str, list[str]]":
        _check_cadence_users(key, value)
        return
    if expected == "int":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COVERAGE_DAYS:
            raise ValueError(f"{key} must be a whole number of days from 1 to {MAX_COVERAGE_DAYS}")
        return
    python_type = bool if expected == "bool" else str
    if not isinstance(value, python_type):
        raise ValueError(f"{key} must be a {expected}, not {type(value).__name__}")


def _check_cadence_users(key: str, value: object) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a table of cadence tool names to lists of usernames")
    for tool, usernames in value.items():
        if tool not in CADENCE_TOOLS:
            raise ValueError(f"{key} names {tool!r}, which is not one of {', '.join(CADENCE_TOOLS)}")
        if not isinstance(usernames, list) or not all(isinstance(name, str) for name in usernames):
            raise ValueError(f"{key}.{tool} must be a list of Salesforce usernames")


def _keep_aside(path: Path) -> Path | None:
    """Rename an unreadable settings file with a time stamp; return the new path, or None if it stays."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept_at = path.with_name(f"{path.name}.unreadable-{stamp}")
    try:
        path.replace(kept_at)
    except OSError as error:
        log.warning("settings file %s is unreadable and could not be moved aside: %s", path, error)
        return None
    log.warning("settings file %s was unreadable; kept as %s", path, kept_at)
    return kept_at


def save_profile(profile: OrgProfile, path: Path | None = None) -> None:
    """Add or replace one profile, keeping the others, in one atomic write.

    Keys of the profile that this version does not know are kept. Raises ValueError for
    an invalid alias and for a value shaped like a Salesforce token.
    """
    validate_alias(profile.alias)
    path = path or profiles_path()
    document = _read_profiles_document(path)
    profiles = document.setdefault("org", {})
    check_alias_free(profile.alias, profiles)
    old_table = profiles.get(profile.alias)
    unknown = (
        {key: value for key, value in old_table.items() if key not in _PROFILE_FIELD_TYPES}
        if isinstance(old_table, dict)
        else {}
    )
    profiles[profile.alias] = {**unknown, **_table_from_profile(profile)}
    _write_profiles(path, document)


def delete_profile(alias: str, path: Path | None = None) -> bool:
    """Remove the profile ``alias``, keeping the others; return whether it existed.

    The profile's refresh token in the keyring is not touched here: org_sessions.sign_out does that.
    """
    path = path or profiles_path()
    document = _read_profiles_document(path)
    if document.get("org", {}).pop(alias, None) is None:
        return False
    _write_profiles(path, document)
    log.info("Deleted org profile %s", alias)
    return True


def _write_profiles(path: Path, document: dict[str, Any]) -> None:
    document["org"] = dict(sorted(document.get("org", {}).items()))
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

    A file that cannot be read, cannot be parsed or contains a value of the wrong type is
    moved aside with a warning in the log, and the defaults are returned: they are the
    safe choice (no insecure keyring, no preselected profile).
    """
    path = path or app_settings_path()
    try:
        table = _read_app_table(path)
    except _UnusableAppSettings as error:
        kept_at = _keep_aside(path)
        where = f"it was kept as {kept_at}" if kept_at else "it could not be moved aside"
        log.warning("Using the default app settings because %s %s; %s", path, error, where)
        return AppSettings()
    return AppSettings(**{key: value for key, value in table.items() if key in _APP_SETTING_TYPES})


class _UnusableAppSettings(Exception):
    """The app settings file exists but cannot be used; the message completes "<path> ..."."""


def _read_app_table(path: Path) -> dict[str, Any]:
    """Return the [app] table of ``path``, {} when the file is missing; checked value types."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    # A folder in place of the file, or a file this user may not read (PermissionError).
    except OSError as error:
        raise _UnusableAppSettings(f"could not be read ({type(error).__name__}: {error})") from error
    try:
        table = tomllib.loads(data.decode("utf-8")).get("app", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise _UnusableAppSettings(f"could not be read ({error})") from error
    if not isinstance(table, dict):
        raise _UnusableAppSettings("has a value of the wrong type: app is not a table")
    for key, expected in _APP_SETTING_TYPES.items():
        if key in table and not isinstance(table[key], expected):
            raise _UnusableAppSettings(
                f"has a value of the wrong type: {key} must be a {expected.__name__}, "
                f"not {type(table[key]).__name__}"
            )
    return table


def save_app_settings(settings: AppSettings, path: Path | None = None) -> None:
    """Write the app settings in one atomic write, keeping keys this version does not know."""
    path = path or app_settings_path()
    table = asdict(settings)
    _reject_secrets("the app settings", table)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        document = {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        # load_app_settings moves such a file aside; this covers one that broke since then.
        log.warning("Replacing the app settings file %s, which could not be read: %s", path, error)
        _keep_aside(path)
        document = {}
    old_table = document.get("app")
    unknown = (
        {key: value for key, value in old_table.items() if key not in _APP_SETTING_TYPES}
        if isinstance(old_table, dict)
        else {}
    )
    document["app"] = {**unknown, **table}
    _write_atomically(path, tomli_w.dumps(document))


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only, creating its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private_file(path, text)
