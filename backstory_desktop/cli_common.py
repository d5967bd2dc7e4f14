"""Exit statuses, the stop error, and the profile lookup and org opening shared by the commands."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import ExitStack, closing
from pathlib import Path
from typing import TYPE_CHECKING

from backstory_desktop.store.settings import (
    PRACTICE_PROFILE_ALIAS,
    OrgProfile,
    ProfilesFileError,
    load_profiles,
)

if TYPE_CHECKING:
    from backstory_desktop.practice_org.server import PracticeOrg
    from backstory_desktop.salesforce.connection import OrgConnection

# The exit status for an invalid argument or a profile or database that cannot be used,
# the one argparse uses for invalid arguments.
USAGE_ERROR_STATUS = 2
# The exit statuses of `check`: a check failed (1), or the org's saved sign-in cannot be used (3).
CHECK_FAILED_STATUS = 1
SIGN_IN_NEEDED_STATUS = 3
# The scenario a new practice org database is seeded with, as `practice-org serve` does by default.
DEFAULT_SCENARIO = "default"
# The help of --org for the commands that sign in through a saved profile.
ORG_OPTION_HELP = ("saved org profile, signed in through its saved sign-in (never opens a browser), or "
                   "practice for the built-in practice org")


class CommandStop(Exception):
    """The command stops early: the exit status and the sentence printed to stderr."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ProfileNotFound(LookupError):
    """An error for an alias without a usable profile, whose message gives the reason and what to do."""


def find_profile(alias: str, *, built_in: str = "") -> OrgProfile:
    """Return the saved profile ``alias``; raise ProfileNotFound saying why there is none.

    ``built_in`` names an alias the command accepts without a saved profile, listed first
    among the choices.
    """
    try:
        profiles = load_profiles()
    except (ProfilesFileError, OSError) as error:
        raise ProfileNotFound(str(error)) from error
    if alias in profiles:
        return profiles[alias]
    saved = ", ".join(sorted(name for name in profiles if name != built_in))
    if built_in:
        choices = f"{built_in} (the built-in practice org)"
        if saved:
            choices = f"{choices}, {saved}"
        raise ProfileNotFound(f"No org profile is saved as {alias!r}; the choices are {choices}.")
    if saved:
        raise ProfileNotFound(f"No org profile is saved as {alias!r}; the saved profiles are {saved}.")
    raise ProfileNotFound(f"No org profile is saved as {alias!r}, and none is saved yet, so add one on the "
                          "app's Connect page.")


def saved_profile(alias: str, *, built_in: str = "") -> OrgProfile | None:
    """Return the saved profile ``alias``, or print why there is none to stderr and return None."""
    try:
        return find_profile(alias, built_in=built_in)
    except ProfileNotFound as error:
        print(error, file=sys.stderr)
        return None


def command_profile(alias: str) -> OrgProfile:
    """Return the profile a command opens; the built-in practice org needs no saved one.

    Raises CommandStop with the usage error status when no profile ``alias`` is saved
    or the profiles file cannot be read.
    """
    try:
        if alias != PRACTICE_PROFILE_ALIAS:
            return find_profile(alias, built_in=PRACTICE_PROFILE_ALIAS)
        saved = load_profiles().get(alias)
    except (ProfileNotFound, ProfilesFileError, OSError) as error:
        raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error
    return saved or OrgProfile(alias=alias, kind="practice")


def practice_db(profile: OrgProfile, option: Path | None) -> Path | None:
    """Return the practice org database: --db, else the profile's, else the app's own; None for a real org.

    The profile notes the path in memory only, so a report names the database opened.
    Raises CommandStop when --db is given for an org that is not a practice org.
    """
    from backstory_desktop.store.paths import practice_org_db

    if profile.kind != "practice":
        if option is not None:
            raise CommandStop(USAGE_ERROR_STATUS, f"--db names a practice org database, but the org "
                                                  f"profile {profile.alias} is not a practice org, so leave "
                                                  "--db out.")
        return None
    path = option or (Path(profile.practice_db) if profile.practice_db else practice_org_db())
    profile.practice_db = str(path)
    return path


def stored_scenario(db_path: Path) -> str:
    """Return the scenario an existing practice org database was seeded with, else the default one.

    The commands request no scenario, so opening the database with the one it keeps
    avoids a warning about a scenario mismatch.
    """
    from backstory_desktop.practice_org.seed import SCENARIOS

    try:
        uri = db_path.absolute().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as database:
            row = database.execute("SELECT value FROM meta WHERE key = 'scenario'").fetchone()
    except (sqlite3.Error, ValueError):
        return DEFAULT_SCENARIO
    return str(row[0]) if row and row[0] in SCENARIOS else DEFAULT_SCENARIO


def start_practice_org(stack: ExitStack, db_path: Path, scenario: str | None = None) -> PracticeOrg:
    """Start the practice org kept in ``db_path``, made and seeded when missing, until ``stack`` closes.

    A new database is seeded with ``scenario`` (the default one when None). An
    existing one keeps the scenario it was seeded with. Raises CommandStop with
    the usage error status when the file cannot hold a practice org.
    """
    from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
    from backstory_desktop.practice_org.server import PracticeOrg
    from backstory_desktop.store.paths import ensure_private_dir

    seeded = scenario if scenario is not None and not db_path.exists() else stored_scenario(db_path)
    try:
        ensure_private_dir(db_path.absolute().parent)
        return stack.enter_context(PracticeOrg(db_path, scenario=seeded))
    except (PracticeOrgDatabaseError, OSError) as error:
        raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error


def database_path(text: str) -> Path:
    """Convert a --db value to a path, rejecting the empty string that Path would read as "."."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the practice org database path is empty, so give a file name such as practice-org.sqlite3")
    return Path(text)


def resume_saved_session(profile: OrgProfile) -> OrgConnection:
    """Connect through the profile's saved sign-in, never opening a browser.

    Raises CommandStop with SIGN_IN_NEEDED_STATUS when the saved sign-in cannot be resumed
    or the secret store is locked. Other errors of the connection pass through.
    """
    from backstory_desktop.org_sessions import resume_session, secret_store
    from backstory_desktop.salesforce.errors import SignInRequired
    from backstory_desktop.store.secrets import SecretsLocked

    try:
        return resume_session(profile, secret_store(), save_profile=False)
    except SignInRequired as error:
        message = (f"The saved sign-in of {profile.alias} could not be resumed ({error.reason}), "
                   "so sign in again in the app.")
        raise CommandStop(SIGN_IN_NEEDED_STATUS, message) from error
    except SecretsLocked as error:
        raise CommandStop(SIGN_IN_NEEDED_STATUS, str(error)) from error
