"""`diagnose` and the secret store with settings files that cannot be read, and the insecure keyring advice.

A folder in place of a file gives the same OSError as a file without read permission,
which root cannot produce with chmod.
"""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from backstory_desktop.cli import main
from backstory_desktop.org_sessions import secret_store
from backstory_desktop.store.paths import config_dir


class _LowPriorityKeyring(KeyringBackend):
    """A backend below keyring's recommended priority, which SecretStore rejects as insecure."""

    priority = 0.5

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("diagnose must not write to the keyring")

    def delete_password(self, service: str, username: str) -> None:
        raise AssertionError("diagnose must not delete from the keyring")


def _fail_renames(monkeypatch: pytest.MonkeyPatch) -> None:
    def replace(self: Path, target: Path) -> Path:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", replace)


@pytest.mark.parametrize("movable", [True, False])
def test_diagnose__folders_in_place_of_settings_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, movable: bool
) -> None:
    (config_dir() / "app.toml").mkdir(parents=True)
    (config_dir() / "profiles.toml").mkdir()
    if not movable:
        _fail_renames(monkeypatch)

    status = main(["diagnose", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert status == 0
    assert report["keyring"]["backend"] is not None
    assert report["profiles"]["profiles"] == []
    assert "profiles.toml could not be read" in report["profiles"]["error"]


def test_secret_store__folder_in_place_of_app_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    (config_dir() / "app.toml").mkdir(parents=True)
    _fail_renames(monkeypatch)

    store = secret_store()

    store.save("acme", "5Aep-test-token")
    assert store.load("acme") == "5Aep-test-token"


def test_diagnose__insecure_keyring_advice_fits_an_admin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring, "get_keyring", _LowPriorityKeyring)

    status = main(["diagnose"])
    text = capsys.readouterr().out

    assert status == 0
    assert "allow_insecure=True" not in text
    assert "Use this keyring anyway" in text
    assert "allow_insecure_keyring = true in app.toml" in text
