"""The `diagnose` command reports versions, keyring, folders, profiles and log problems, and no secret."""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend

from backstory_desktop import __version__
from backstory_desktop.cli import main
from backstory_desktop.logging_setup import LOG_FILE_NAME
from backstory_desktop.salesforce.connection import API_VERSION
from backstory_desktop.store.paths import config_dir, ensure_private_dir, log_dir
from backstory_desktop.store.settings import OrgProfile, profiles_path, save_profile

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
        "keyring", "folders", "profiles", "log",
    }
    assert report["product_version"] == __version__
    assert report["api_version"] == API_VERSION
    assert set(report["packages"]) == {"PySide6", "simple-salesforce", "requests", "keyring"}
    assert report["packages"]["keyring"] == importlib.metadata.version("keyring")
    assert report["packages"]["requests"] is not None
    assert set(report["keyring"]) == {"backend", "persistent", "storage_notice", "insecure_error"}
    assert set(report["folders"]) == {"config", "data", "log"}
    assert set(report["profiles"]) == {"path", "profiles", "error"}
    assert set(report["log"]) == {"path", "exists", "recent_problems", "error"}


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
