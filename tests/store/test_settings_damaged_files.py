"""Settings files that cannot be used: unreadable, wrong-typed, invalid profiles, and keys of newer versions.

A folder in place of a file gives the same OSError as a file without read permission,
which root cannot produce with chmod, so the tests use folders and a patched read.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from backstory_desktop.store.settings import (
    AppSettings,
    OrgProfile,
    ProfilesFileError,
    delete_profile,
    load_app_settings,
    load_profiles,
    save_app_settings,
    save_profile,
)


def _fail_renames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every rename fail, as for a file in a folder this user may not write."""

    def replace(self: Path, target: Path) -> Path:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "replace", replace)


def _deny_reading(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    original = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)


# -- app.toml -----------------------------------------------------------------------------------


def test_app_settings__folder_in_place_gives_defaults(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "app.toml"
    path.mkdir()

    with caplog.at_level(logging.WARNING):
        settings = load_app_settings(path)

    assert settings == AppSettings()
    assert "Using the default app settings" in caplog.text
    assert len(list(tmp_path.glob("app.toml.unreadable-*"))) == 1
    # With the folder moved aside, the next save works.
    save_app_settings(AppSettings(last_profile="acme"), path)
    assert load_app_settings(path).last_profile == "acme"


def test_app_settings__unreadable_and_unmovable_gives_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "app.toml"
    path.write_text('[app]\nallow_insecure_keyring = true\n', encoding="utf-8")
    _deny_reading(monkeypatch, path)
    _fail_renames(monkeypatch)

    with caplog.at_level(logging.WARNING):
        settings = load_app_settings(path)

    assert settings == AppSettings()
    assert "could not be moved aside" in caplog.text
    assert path.is_file()


def test_app_settings__wrong_type_kept_aside_naming_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "app.toml"
    original = '[app]\nallow_insecure_keyring = "yes"\n'
    path.write_text(original, encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        settings = load_app_settings(path)
    save_app_settings(AppSettings(last_profile="acme"), path)

    assert settings == AppSettings()
    assert "allow_insecure_keyring" in caplog.text
    kept_copies = list(tmp_path.glob("app.toml.unreadable-*"))
    assert len(kept_copies) == 1
    assert kept_copies[0].read_text(encoding="utf-8") == original


def test_app_settings__unknown_keys_kept_on_save(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(
        '[app]\nlast_profile = "acme"\ntheme = "dark"\n\n[window]\nwidth = 900\n', encoding="utf-8"
    )

    settings = load_app_settings(path)
    settings.last_profile = "other"
    save_app_settings(settings, path)

    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert document["app"]["theme"] == "dark"
    assert document["window"] == {"width": 900}
    assert load_app_settings(path).last_profile == "other"


# -- profiles.toml ------------------------------------------------------------------------------


def test_profiles__folder_in_place_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.mkdir()

    with pytest.raises(ProfilesFileError) as raised:
        load_profiles(path)

    assert raised.value.kept_at is not None
    assert raised.value.kept_at.is_dir()
    assert not path.exists()
    assert "could not be read" in str(raised.value)


def test_profiles__unreadable_and_unmovable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[org.acme]\nkind = "production"\n', encoding="utf-8")
    _deny_reading(monkeypatch, path)
    _fail_renames(monkeypatch)

    with pytest.raises(ProfilesFileError) as raised:
        load_profiles(path)

    assert raised.value.kept_at is None
    message = str(raised.value)
    assert str(path) in message
    assert "PermissionError" in message
    assert "could not be moved aside" in message
    assert path.is_file()


def test_profiles__invalid_entries_skipped_once_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[org."../../evil alias"]\nkind = "production"\n\n'
        '[org.seven]\nkind = 7\n\n'
        '[org.unknown-kind]\nkind = "galaxy"\n\n'
        '[org.bad-ports]\nkind = "production"\ncallback_ports = ["x"]\n\n'
        '[org.good]\nkind = "production"\nlogin_host = "https://login.salesforce.com"\n',
        encoding="utf-8",
    )

    with caplog.at_level(logging.WARNING):
        first = load_profiles(path)
        second = load_profiles(path)

    assert list(first) == ["good"]
    assert list(second) == ["good"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert any("'../../evil alias'" in warning and "contains" in warning for warning in warnings)
    assert any("'seven'" in warning and "kind must be a str" in warning for warning in warnings)
    assert any("'unknown-kind'" in warning and "galaxy" in warning for warning in warnings)
    assert any("'bad-ports'" in warning and "callback_ports" in warning for warning in warnings)


def test_profiles__invalid_entry_kept_on_save(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[org.seven]\nkind = 7\n', encoding="utf-8")

    save_profile(OrgProfile(alias="good", kind="production"), path)

    text = path.read_text(encoding="utf-8")
    assert "[org.seven]" in text
    assert "kind = 7" in text
    assert list(load_profiles(path)) == ["good"]


def test_profiles__unknown_keys_kept_on_save(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[org.acme]\nkind = "production"\nlogin_host = "https://login.salesforce.com"\n'
        'color = "blue"\n\n[org.other]\nkind = "sandbox"\nnickname = "uat"\n\n'
        '[groups]\nsales = ["acme"]\n',
        encoding="utf-8",
    )

    acme = load_profiles(path)["acme"]
    acme.username = "admin@acme.example"
    save_profile(acme, path)
    delete_profile("other", path)

    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert document["org"]["acme"]["color"] == "blue"
    assert document["groups"] == {"sales": ["acme"]}
    assert "other" not in document["org"]
    assert load_profiles(path)["acme"].username == "admin@acme.example"


def test_delete_profile__removes_invalid_entry(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[org.seven]\nkind = 7\n', encoding="utf-8")

    assert delete_profile("seven", path)

    assert "seven" not in path.read_text(encoding="utf-8")
