"""Exit statuses and profile lookup shared by the command-line commands."""

from __future__ import annotations

import sys

from backstory_desktop.store.settings import OrgProfile, ProfilesFileError, load_profiles

# The exit status for an invalid argument or a profile or database that cannot be used,
# the one argparse uses for invalid arguments.
USAGE_ERROR_STATUS = 2
# The exit statuses of `check`: a check failed (1), or the org's saved sign-in cannot be used (3).
CHECK_FAILED_STATUS = 1
SIGN_IN_NEEDED_STATUS = 3


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
