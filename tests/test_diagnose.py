"""The `diagnose` command reports versions, keyring, folders, profiles, log problems and, with
`--org`, the org's API version and daily API requests left, and never a secret."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend

from backstory_desktop import __version__, diagnostics, org_sessions
from backstory_desktop.cli import main
from backstory_desktop.logging_setup import LOG_FILE_NAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import API_VERSION, OrgConnection
from backstory_desktop.store.paths import config_dir, ensure_private_dir, log_dir
from backstory_desktop.store.secrets import SecretStore
from backstory_desktop.store.settings import OrgProfile, load_profiles, profiles_path, save_profile
from tests.consent_browser import ConsentBrowser, served_profile
from tests.memory_keyring import LockableKeyring, MemoryKeyring

FAKE_BEARER_TOKEN = "fakeBearerToken.abc123XYZ"
FAKE_SESSION_ID = "00D000000000001!AQ4AQFakeSessionIdValue"


def _diagnose_json(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status = main(["diagnose", "--json"])
    return status, json.loads(capsys.readouterr().out)


def _diagnose_text(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["diagnose"])
    return status, capsys.readouterr().out


class _LowPriorityKeyring(KeyringBackend):
    """A backend below keyring's recommended priority, which SecretStore rejects as insecure."""

    priority = 0.5

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("diagnose must not write to the keyring")

    def delete_password(self, service: str, username: str) -> None:
        raise AssertionError("diagnose must not delete from the keyring")


def test_diagnose__json_has_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _diagnose_json(capsys)

    assert status == 0
    assert set(report) == {
        "product_version", "python_version", "platform", "packages", "api_version",
        "keyring", "folders", "profiles", "org", "log",
    }
    assert report["product_version"] == __version__
    assert report["api_version"] == API_VERSION
    assert set(report["packages"]) == {"PySide6", "simple-salesforce", "requests", "keyring"}
    assert report["packages"]["keyring"] == importlib.metadata.version("keyring")
    assert report["packages"]["requests"] is not None
    assert set(report["keyring"]) == {"backend", "persistent", "storage_notice", "insecure_error", "backends"}
    assert set(report["folders"]) == {"config", "data", "log"}
    assert set(report["profiles"]) == {"path", "profiles", "error"}
    assert set(report["log"]) == {"path", "exists", "recent_problems", "error"}
    assert report["org"] is None


def test_diagnose__lists_keyrings_own_backends(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = _diagnose_json(capsys)
    backends = {backend["name"]: backend for backend in report["keyring"]["backends"]}

    # keyring's own backends come through its entry points, as they do in the desktop bundle.
    assert {"SecretService Keyring", "Windows WinVaultKeyring", "macOS Keyring"} <= set(backends)
    # Another system's backend cannot be used here, and the report gives the reason.
    foreign = "macOS Keyring" if sys.platform == "win32" else "Windows WinVaultKeyring"
    assert backends[foreign]["priority"] is None
    assert backends[foreign]["problem"]


def test_diagnose__text_names_each_keyring_backend(capsys: pytest.CaptureFixture[str]) -> None:
    _, text = _diagnose_text(capsys)
    row = next(line for line in text.splitlines() if line.startswith("keyring backends"))

    assert "SecretService Keyring: " in row


def test_diagnose__folders_report_whether_they_exist(capsys: pytest.CaptureFixture[str]) -> None:
    ensure_private_dir(config_dir())

    _, report = _diagnose_json(capsys)

    assert report["folders"]["config"] == {"path": str(config_dir()), "exists": True}
    assert report["folders"]["data"]["exists"] is False


def test_diagnose__lists_profile_alias_and_kind_only(capsys: pytest.CaptureFixture[str]) -> None:
    save_profile(OrgProfile(alias="acme-prod", kind="production", username="admin@acme.example",
                            instance_url="https://acme.my.salesforce.com", client_id="3MVG9fakeClientId"))
    save_profile(OrgProfile(alias="acme-practice"))

    status, report = _diagnose_json(capsys)
    text_status, text = _diagnose_text(capsys)

    assert status == 0
    assert report["profiles"]["error"] is None
    assert report["profiles"]["profiles"] == [
        {"alias": "acme-practice", "kind": "practice"},
        {"alias": "acme-prod", "kind": "production"},
    ]
    assert text_status == 0
    assert "acme-practice (practice), acme-prod (production)" in text
    for detail in ("admin@acme.example", "acme.my.salesforce.com", "3MVG9fakeClientId"):
        assert detail not in text


def test_diagnose__corrupt_profiles_file_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text("[org.acme\nkind = ", encoding="utf-8")

    status, report = _diagnose_json(capsys)

    assert status == 0
    assert report["profiles"]["profiles"] == []
    assert str(path) in report["profiles"]["error"]
    assert "could not be read" in report["profiles"]["error"]


def test_diagnose__profiles_file_not_utf8_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"[org.caf\xe9]\n")

    status, text = _diagnose_text(capsys)

    assert status == 0
    assert "unreadable" in text
    assert str(path) in text


def test_diagnose__log_problems_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    log_file = ensure_private_dir(log_dir()) / LOG_FILE_NAME
    log_file.write_text(
        "2026-12-04 09:00:00,001 INFO backstory_desktop.sync: synced 5 Tasks\n"
        "2026-12-04 09:00:01,002 WARNING backstory_desktop.salesforce.http: retrying with "
        f"Authorization: Bearer {FAKE_BEARER_TOKEN}\n"
        f"2026-12-04 09:00:02,003 ERROR backstory_desktop.sync: session {FAKE_SESSION_ID} failed\n"
        "Traceback (most recent call last):\n"
        '  File "sync.py", line 1, in <module>\n',
        encoding="utf-8",
    )

    status, report = _diagnose_json(capsys)
    problems = report["log"]["recent_problems"]

    assert status == 0
    assert len(problems) == 2
    assert "WARNING" in problems[0]
    assert "Bearer [hidden]" in problems[0]
    assert "ERROR" in problems[1]
    assert "[hidden]" in problems[1]
    assert FAKE_BEARER_TOKEN not in json.dumps(report)
    assert FAKE_SESSION_ID not in json.dumps(report)


def test_diagnose__keeps_only_the_last_log_problems(capsys: pytest.CaptureFixture[str]) -> None:
    log_file = ensure_private_dir(log_dir()) / LOG_FILE_NAME
    log_file.write_text(
        "".join(f"2026-12-04 09:00:{second:02},000 ERROR backstory_desktop.sync: failure {second}\n"
                for second in range(30)),
        encoding="utf-8",
    )

    _, report = _diagnose_json(capsys)
    problems = report["log"]["recent_problems"]

    assert len(problems) == 10
    assert problems[0].endswith("failure 20")
    assert problems[-1].endswith("failure 29")


def test_diagnose__insecure_keyring_is_reported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring, "get_keyring", _LowPriorityKeyring)

    status, report = _diagnose_json(capsys)

    assert status == 0
    assert report["keyring"]["backend"] is None
    assert report["keyring"]["persistent"] is False
    assert "not a secure store" in report["keyring"]["insecure_error"]


def test_diagnose__text_is_an_aligned_list(capsys: pytest.CaptureFixture[str]) -> None:
    status, text = _diagnose_text(capsys)
    lines = text.splitlines()
    value_column = lines[0].index(__version__)

    assert status == 0
    assert lines[0].startswith("product version")
    for line in lines:
        assert line[value_column - 2:value_column] == "  ", line
        assert line[value_column] != " ", line
    assert any(line.startswith("Salesforce API version") and line.endswith(API_VERSION) for line in lines)


ORG_ALIAS = "served-practice"


def _sign_in(org: PracticeOrg, username: str, store: SecretStore | None = None) -> OrgConnection:
    """Save a served profile for ``org`` and sign in to it as ``username`` through the browser flow."""
    profile = served_profile(org, ORG_ALIAS)
    browser = ConsentBrowser(org.ca_bundle, username)
    return org_sessions.sign_in_with_browser(
        profile, store or org_sessions.secret_store(), open_browser=browser, timeout=30
    )


def _diagnose_org(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str, str]:
    status = main(["diagnose", "--org", ORG_ALIAS, *options])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_diagnose_org__reports_api_version_and_daily_requests(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg, memory_keyring: MemoryKeyring
) -> None:
    connection = _sign_in(default_org, default_org.admin_username)

    status, out, _ = _diagnose_org(capsys, "--json")
    org = json.loads(out)["org"]
    requests_state = org["daily_api_requests"]

    assert status == 0
    assert org["alias"] == ORG_ALIAS
    assert org["instance_url"] == default_org.base_url
    assert org["username"] == default_org.admin_username
    assert org["api_version"] == API_VERSION
    assert org["error"] is None
    assert requests_state["source"] == "limits"
    assert requests_state["max"] == default_org.daily_api_limit
    assert requests_state["used"] > 0
    assert requests_state["remaining"] == requests_state["max"] - requests_state["used"]
    for secret in (connection.tokens.access_token, connection.tokens.refresh_token, *memory_keyring.values()):
        assert secret is not None
        assert secret not in out


def test_diagnose_org__text_names_the_requests_left(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    _sign_in(default_org, default_org.admin_username)

    status, out, _ = _diagnose_org(capsys)

    assert status == 0
    assert any(line.startswith("org API version") and line.endswith(API_VERSION) for line in out.splitlines())
    requests_line = next(line for line in out.splitlines() if line.startswith("daily API requests"))
    assert "remaining" in requests_line
    assert "from limits" in requests_line


def test_diagnose_org__usage_header_without_view_setup(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    _sign_in(default_org, default_org.integration_username)

    status, out, _ = _diagnose_org(capsys, "--json")
    requests_state = json.loads(out)["org"]["daily_api_requests"]

    assert status == 0
    assert requests_state["source"] == "Sforce-Limit-Info"
    assert requests_state["max"] == default_org.daily_api_limit
    assert requests_state["remaining"] == requests_state["max"] - requests_state["used"]


def test_diagnose_org__spent_limit_is_named(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    # Without View Setup the limits resource is refused, so only a call of its own can tell.
    _sign_in(default_org, default_org.integration_username)
    default_org.daily_api_limit = 1

    status, out, _ = _diagnose_org(capsys)

    requests_line = next(line for line in out.splitlines() if line.startswith("daily API requests"))
    assert status == 0
    assert "none left" in requests_line
    assert "REQUEST_LIMIT_EXCEEDED" in requests_line


def test_diagnose_org__stores_the_rotated_token(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    _sign_in(default_org, default_org.admin_username)
    saved_before = org_sessions.secret_store().load(ORG_ALIAS)

    _diagnose_org(capsys, "--json")
    status, _, _ = _diagnose_org(capsys, "--json")

    assert status == 0
    assert org_sessions.secret_store().load(ORG_ALIAS) != saved_before


def test_diagnose_org__missing_token_says_sign_in(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    _sign_in(default_org, default_org.admin_username)
    org_sessions.secret_store().delete(ORG_ALIAS)

    status, out, _ = _diagnose_org(capsys, "--json")
    report = json.loads(out)

    assert status == 1
    assert report["org"]["instance_url"] is None
    assert "sign in again in the app" in report["org"]["error"]
    assert report["product_version"] == __version__


def test_diagnose_org__rejected_token_says_sign_in(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    connection = _sign_in(default_org, default_org.admin_username)
    connection.revoke()

    status, out, _ = _diagnose_org(capsys)

    assert status == 1
    assert "invalid_grant" in out
    assert "sign in again in the app" in out


def test_diagnose_org__locked_keyring_says_unlock(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    backend = LockableKeyring()
    keyring.set_keyring(backend)
    org_sessions.reset_secret_store()
    _sign_in(default_org, default_org.admin_username)
    entries_before = dict(backend.entries)
    backend.locked = True

    status, out, _ = _diagnose_org(capsys, "--json")
    error = json.loads(out)["org"]["error"]

    assert status == 1
    assert "Unlock the keyring" in error
    assert "sign in again" not in error
    assert backend.entries == entries_before


def test_diagnose_org__unknown_alias_names_the_saved_ones(capsys: pytest.CaptureFixture[str]) -> None:
    save_profile(OrgProfile(alias="acme-prod", kind="production"))
    save_profile(OrgProfile(alias="acme-uat", kind="sandbox"))

    status = main(["diagnose", "--org", "acme"])
    captured = capsys.readouterr()

    assert status == 2
    assert "'acme'" in captured.err
    assert "acme-prod, acme-uat" in captured.err
    assert captured.out == ""


def test_diagnose_org__unknown_alias_with_no_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["diagnose", "--org", "acme"])

    assert status == 2
    assert "none is saved yet" in capsys.readouterr().err


def test_gui_org__unknown_alias_exits_before_any_window(capsys: pytest.CaptureFixture[str]) -> None:
    save_profile(OrgProfile(alias="acme-prod", kind="production"))

    status = main(["gui", "--org", "acme"])

    assert status == 2
    assert "acme-prod" in capsys.readouterr().err
    assert list(load_profiles()) == ["acme-prod"]


def test_diagnose_org__new_process_has_no_saved_sign_in(default_org: PracticeOrg) -> None:
    # A new process gets a new in-memory test keyring, as a restart without a keyring would.
    _sign_in(default_org, default_org.admin_username)

    finished = subprocess.run(
        [sys.executable, "-m", "backstory_desktop", "diagnose", "--org", ORG_ALIAS, "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    org = json.loads(finished.stdout)["org"]

    assert finished.returncode == 1
    assert org["alias"] == ORG_ALIAS
    assert "sign in again in the app" in org["error"]
    assert "Traceback" not in finished.stderr


def test_keyring_backends__plugin_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A keyring plugin may name a function of its module, and a broken one may name any object.
    dist_info = tmp_path / "fake_keyring_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-keyring-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[keyring.backends]\nfuncplug = fake_keyring_module:initialize\nstrattr = os:sep\n"
    )
    (tmp_path / "fake_keyring_module.py").write_text(
        "from keyring.backend import KeyringBackend\n\n"
        "class PlugKeyring(KeyringBackend):\n"
        "    priority = 0.5\n"
        "    def get_password(self, service, username): return None\n"
        "    def set_password(self, service, username, password): pass\n"
        "    def delete_password(self, service, username): pass\n\n"
        "def initialize():\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    backends = {backend["name"]: backend for backend in diagnostics.keyring_backends()}

    assert backends["funcplug PlugKeyring"]["priority"] == 0.5
    assert backends["strattr"]["problem"] == "os:sep is neither a module nor defined in one"
