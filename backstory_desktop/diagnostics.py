"""The `diagnose` report: versions, keyring backend, folders, org profiles and recent log problems.

It needs no connection to an org, so an admin can paste it into a support request
from any machine. It contains no secret: profiles appear as alias and kind only, and
log lines pass through the log scrubber once more before they are shown.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
from collections import deque
from pathlib import Path
from typing import Any

from backstory_desktop import __version__
from backstory_desktop.logging_setup import LOG_FILE_NAME, scrub_secrets
from backstory_desktop.salesforce.connection import API_VERSION
from backstory_desktop.store.paths import config_dir, data_dir, log_dir
from backstory_desktop.store.secrets import InsecureKeyringError, SecretStore
from backstory_desktop.store.settings import ProfilesFileError, load_profiles, profiles_path

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


def collect_diagnostics() -> dict[str, Any]:
    """Build the report as one JSON-ready dictionary.

    An unreadable profiles file is moved aside by ``load_profiles``, exactly as when the
    app starts, and the report names where it was kept.
    """
    # The log is read first, so the warnings that opening the keyring logs in this run stay out.
    recent_log = _recent_log_problems(log_dir() / LOG_FILE_NAME)
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
        "log": recent_log,
    }


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
    try:
        store = SecretStore()
    except InsecureKeyringError as error:
        return {"backend": None, "persistent": False, "storage_notice": None, "insecure_error": str(error)}
    return {
        "backend": store.backend_description(),
        "persistent": store.persistent,
        "storage_notice": store.storage_notice,
        "insecure_error": None,
    }


def _profile_summary() -> dict[str, Any]:
    path = profiles_path()
    try:
        profiles = load_profiles(path)
    except ProfilesFileError as error:
        return {"path": str(path), "profiles": [], "error": str(error)}
    # A file that exists but cannot be opened (permissions) is not moved aside.
    except OSError as error:
        return {"path": str(path), "profiles": [], "error": f"{path} could not be read: {error}"}
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
    ]


def _profile_rows(profiles: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("profiles file", profiles["path"])]
    if profiles["error"] is not None:
        return [*rows, ("profiles", f"unreadable: {profiles['error']}")]
    listed = ", ".join(f"{entry['alias']} ({entry['kind']})" for entry in profiles["profiles"])
    return [*rows, ("profiles", listed or "none saved")]


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
