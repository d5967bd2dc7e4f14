"""The `diagnose` report: versions, keyring backend, folders, org profiles and recent log problems.

It needs no connection to an org, so an admin can paste it into a support request
from any machine. Given an open connection, it adds the org: address, user, API
version and the daily API requests left. It contains no secret: saved profiles
appear as alias and kind only, and log lines pass through the log scrubber once
more before they are shown.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import platform
import re
import types
from collections import deque
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend

from backstory_desktop import __version__
from backstory_desktop.logging_setup import LOG_FILE_NAME, scrub_secrets
from backstory_desktop.org_sessions import resume_session, secret_store
from backstory_desktop.salesforce.api_version import API_VERSION
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain
from backstory_desktop.store.paths import config_dir, data_dir, log_dir
from backstory_desktop.store.secrets import InsecureKeyringError, SecretsLocked, SecretStore
from backstory_desktop.store.settings import (
    OrgProfile,
    ProfilesFileError,
    load_app_settings,
    load_profiles,
    profiles_path,
)

log = logging.getLogger(__name__)

# Each package with the distributions that provide it, tried in order. The project
# depends on PySide6-Essentials, but the full PySide6 distribution provides the same modules.
PACKAGE_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "PySide6": ("PySide6-Essentials", "PySide6"),
    "simple-salesforce": ("simple-salesforce",),
    "requests": ("requests",),
    "keyring": ("keyring",),
}

RECENT_LOG_PROBLEM_COUNT = 10
MAX_LOG_LINE_CHARACTERS = 500

# The first line of a record in logging_setup's format, "%(asctime)s %(levelname)s %(name)s: ...".
# Traceback lines after an ERROR record do not match, so they are left out.
_PROBLEM_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?:WARNING|ERROR|CRITICAL) ")


def collect_diagnostics(
    connection: OrgConnection | None = None, *, alias: str = "", org_error: str = ""
) -> dict[str, Any]:
    """Build the report as one JSON-ready dictionary.

    ``org`` is None unless ``connection`` or ``alias`` is given. ``alias`` names the
    profile of ``connection``, and ``org_error`` explains why no connection could be opened.
    An unreadable profiles file is moved aside by ``load_profiles``, exactly as when the
    app starts, and the report names where it was kept.
    """
    # The log is read first, so the warnings that opening the keyring logs in this run stay out.
    recent_log = _recent_log_problems(log_dir() / LOG_FILE_NAME)
    org = _org_state(connection, alias, org_error) if connection is not None or alias else None
    return {
        "product_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "packages": _package_versions(),
        "api_version": API_VERSION,
        "keyring": _keyring_state(),
        "folders": {
            name: {"path": str(folder), "exists": folder.is_dir()}
            for name, folder in (("config", config_dir()), ("data", data_dir()), ("log", log_dir()))
        },
        "profiles": _profile_summary(),
        "org": org,
        "log": recent_log,
    }


def resume_for_diagnostics(profile: OrgProfile) -> tuple[OrgConnection | None, str]:
    """Open ``profile`` with its saved sign-in for the report; return the connection or why not.

    Never opens a browser and never writes the profiles file. A refresh token that the
    refresh rotates is still saved to the keyring, because the old one stops working. When
    only a new sign-in helps, the reason tells the admin to sign in again in the app.
    """
    try:
        return resume_session(profile, secret_store(), save_profile=False), ""
    except SignInRequired as error:
        return None, (
            f"The saved sign-in of {profile.alias} could not be resumed ({error.reason}), "
            "so sign in again in the app."
        )
    except SecretsLocked as error:
        return None, str(error)
    except Exception as error:
        problem = explain(error)
        log.warning("Diagnostics could not open %s: %s", profile.alias, problem.sentence)
        return None, problem.sentence


def _org_state(connection: OrgConnection | None, alias: str, org_error: str) -> dict[str, Any]:
    if connection is None:
        return {
            "alias": alias, "instance_url": None, "username": None, "api_version": None,
            "daily_api_requests": None, "error": org_error or "not connected",
        }
    return {
        "alias": alias,
        "instance_url": connection.instance_url,
        "username": connection.username,
        "api_version": connection.api_version,
        "daily_api_requests": daily_api_requests(connection),
        "error": org_error or None,
    }


def daily_api_requests(connection: OrgConnection) -> dict[str, Any] | None:
    """Return the org's daily API requests as {used, max, remaining, source}, or None if unknown."""
    try:
        figures = connection.daily_api_requests()
    except SignInRequired as error:
        log.info("The API usage could not be read: %s", error.sentence)
        return None
    except SalesforceProblem as error:
        # The limit is spent: the one figure a support request needs.
        return {"used": None, "max": None, "remaining": 0, "source": error.error_code,
                "problem": error.sentence}
    if figures is None:
        return None
    return {"used": figures.used, "max": figures.max, "remaining": figures.remaining,
            "source": figures.source}


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package, distributions in PACKAGE_DISTRIBUTIONS.items():
        versions[package] = None
        for distribution in distributions:
            try:
                versions[package] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def _keyring_state() -> dict[str, Any]:
    backends = keyring_backends()
    try:
        store = SecretStore(allow_insecure=load_app_settings().allow_insecure_keyring)
    except InsecureKeyringError as error:
        return {"backend": None, "persistent": False, "storage_notice": None, "insecure_error": str(error),
                "backends": backends}
    return {
        "backend": store.backend_description(),
        "persistent": store.persistent,
        "storage_notice": store.storage_notice,
        "insecure_error": None,
        "backends": backends,
    }


def keyring_backends() -> list[dict[str, Any]]:
    """List every backend keyring finds on this system, with its priority or why it cannot be used.

    keyring finds its backends, its own among them, through the "keyring.backends"
    entry points, so an empty list means keyring's package metadata is missing.
    """
    found: list[dict[str, Any]] = []
    for entry_point in importlib.metadata.entry_points(group="keyring.backends"):
        try:
            loaded = entry_point.load()
        except Exception as error:
            found.append({"name": entry_point.name, "priority": None, "problem": _sentence(error)})
            continue
        # An entry point names a module, or a function in the module that defines the backend.
        module = loaded if isinstance(loaded, types.ModuleType) else inspect.getmodule(loaded)
        if module is None:
            found.append({"name": entry_point.name, "priority": None,
                          "problem": f"{entry_point.value} is neither a module nor defined in one"})
            continue
        for backend in vars(module).values():
            if not (isinstance(backend, type) and issubclass(backend, KeyringBackend)
                    and backend.__module__ == getattr(module, "__name__", None)):
                continue
            name = f"{entry_point.name} {backend.__name__}"
            try:
                priority = float(backend.priority)
            except Exception as error:
                found.append({"name": name, "priority": None, "problem": _sentence(error)})
                continue
            found.append({"name": name, "priority": priority, "problem": None})
    return found


def _sentence(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _profile_summary() -> dict[str, Any]:
    path = profiles_path()
    try:
        profiles = load_profiles(path)
    except ProfilesFileError as error:
        return {"path": str(path), "profiles": [], "error": str(error)}
    return {
        "path": str(path),
        "profiles": [
            {"alias": alias, "kind": str(profile.kind)} for alias, profile in sorted(profiles.items())
        ],
        "error": None,
    }


def _recent_log_problems(path: Path) -> dict[str, Any]:
    """Return the last WARNING, ERROR and CRITICAL records of the current log file, scrubbed.

    The file handler already scrubs every record. Scrubbing again covers lines that
    reached the file some other way, such as an older version that did not scrub.
    """
    problems: deque[str] = deque(maxlen=RECENT_LOG_PROBLEM_COUNT)
    try:
        with path.open(encoding="utf-8", errors="replace") as log_file:
            for line in log_file:
                if _PROBLEM_RECORD.match(line):
                    problems.append(line.rstrip("\n"))
    except FileNotFoundError:
        return {"path": str(path), "exists": False, "recent_problems": [], "error": None}
    except OSError as error:
        return {"path": str(path), "exists": True, "recent_problems": [], "error": str(error)}

    # Scrub before shortening, so that a cut never leaves part of a token unrecognised.
    scrubbed = [scrub_secrets(line)[:MAX_LOG_LINE_CHARACTERS] for line in problems]
    return {"path": str(path), "exists": True, "recent_problems": scrubbed, "error": None}


def format_diagnostics(report: dict[str, Any]) -> str:
    """Render the report as an aligned list of labels and values, one per line."""
    rows: list[tuple[str, str]] = [
        ("product version", report["product_version"]),
        ("Python", report["python_version"]),
        ("platform", report["platform"]),
    ]
    rows += [(package, version or "not installed") for package, version in report["packages"].items()]
    rows.append(("Salesforce API version", report["api_version"]))
    rows += _keyring_rows(report["keyring"])
    rows += [
        (f"{name} folder", f"{folder['path']} ({'exists' if folder['exists'] else 'missing'})")
        for name, folder in report["folders"].items()
    ]
    rows += _profile_rows(report["profiles"])
    if report["org"] is not None:
        rows += _org_rows(report["org"])
    rows += _log_rows(report["log"])

    width = max(len(label) for label, _value in rows)
    return "\n".join(f"{label:<{width}}  {value}".rstrip() for label, value in rows)


def _keyring_rows(keyring_state: dict[str, Any]) -> list[tuple[str, str]]:
    if keyring_state["insecure_error"] is not None:
        return [("keyring backend", f"rejected as insecure: {keyring_state['insecure_error']}")]
    return [
        ("keyring backend", keyring_state["backend"]),
        ("secrets persist", "yes" if keyring_state["persistent"] else "no"),
        ("secret storage", keyring_state["storage_notice"]),
        ("keyring backends", "; ".join(
            f"{backend['name']}: " + (backend["problem"] or f"priority {backend['priority']:g}")
            for backend in keyring_state["backends"]
        ) or "none found: keyring's package metadata is missing"),
    ]


def _profile_rows(profiles: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("profiles file", profiles["path"])]
    if profiles["error"] is not None:
        return [*rows, ("profiles", f"unreadable: {profiles['error']}")]
    listed = ", ".join(f"{entry['alias']} ({entry['kind']})" for entry in profiles["profiles"])
    return [*rows, ("profiles", listed or "none saved")]


def _org_rows(org: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("org", org["alias"] or "(unnamed)")]
    if org["instance_url"] is None:
        return [*rows, ("org problem", org["error"])]
    rows += [
        ("org instance", org["instance_url"]),
        ("org user", org["username"]),
        ("org API version", org["api_version"]),
    ]
    requests_state = org["daily_api_requests"]
    if requests_state is None:
        rows.append(("daily API requests", "unknown"))
    elif requests_state.get("problem"):
        rows.append(("daily API requests", f"none left: {requests_state['problem']}"))
    else:
        rows.append((
            "daily API requests",
            f"{requests_state['remaining']} of {requests_state['max']} remaining "
            f"({requests_state['used']} used, from {requests_state['source']})",
        ))
    if org["error"]:
        rows.append(("org problem", org["error"]))
    return rows


def _log_rows(log_state: dict[str, Any]) -> list[tuple[str, str]]:
    if not log_state["exists"]:
        return [("log file", f"{log_state['path']} (missing)")]
    rows = [("log file", log_state["path"])]
    if log_state["error"] is not None:
        return [*rows, ("recent problems", f"unreadable: {log_state['error']}")]
    if not log_state["recent_problems"]:
        return [*rows, ("recent problems", "none")]
    return rows + [("recent problems" if index == 0 else "", line)
                   for index, line in enumerate(log_state["recent_problems"])]
