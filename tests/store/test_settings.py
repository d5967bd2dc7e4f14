"""Org profiles and app settings survive a round trip, stay owner-only and free of secrets,
and a broken file is kept aside, never lost."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path

import pytest

from backstory_desktop.salesforce import oauth
from backstory_desktop.store.paths import config_dir
from backstory_desktop.store.settings import (
    DEFAULT_CALLBACK_PORTS,
    AppSettings,
    OrgProfile,
    ProfilesFileError,
    app_settings_path,
    delete_profile,
    load_app_settings,
    load_profiles,
    save_app_settings,
    save_profile,
    validate_alias,
)

FAKE_ACCESS_TOKEN = "00D000000000001!AQ4AQFakeAccessTokenValue"
FAKE_REFRESH_TOKEN = "5Aep861FakeRefreshTokenValue.x-y_z"


def test_profiles__round_trip_keeps_every_setting(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    profile = OrgProfile(
        alias="practice",
        instance_url="https://127.0.0.1:5000",
        field_api_name="Email_Message_ID__c",
        backstory_setting_value="Email_Message_ID__c",
        backstory_setting_confirmed=True,
    )

    save_profile(profile, path)

    assert load_profiles(path) == {"practice": profile}


def test_profiles__saving_one_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    save_profile(OrgProfile(alias="practice"), path)
    save_profile(OrgProfile(alias="sandbox", kind="sandbox"), path)

    assert sorted(load_profiles(path)) == ["practice", "sandbox"]


def test_profiles__missing_file_means_no_profiles(tmp_path: Path) -> None:
    assert load_profiles(tmp_path / "absent.toml") == {}


def test_profiles__unreadable_file_is_kept_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text("[org.practice\nalias = ", encoding="utf-8")

    with pytest.raises(ProfilesFileError) as raised:
        load_profiles(path)

    assert raised.value.kept_at.read_text(encoding="utf-8") == "[org.practice\nalias = "
    assert not path.exists()
    assert str(path) in str(raised.value)


def test_profiles__file_not_utf8_is_kept_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_bytes(b"[org.practice]\nalias = \"caf\xe9\"\n")

    with pytest.raises(ProfilesFileError) as raised:
        load_profiles(path)

    assert raised.value.kept_at.read_bytes() == b"[org.practice]\nalias = \"caf\xe9\"\n"
    assert not path.exists()
    assert "codec can't decode" in str(raised.value)


def test_profiles__new_fields_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    profile = OrgProfile(
        alias="acme-uat",
        kind="sandbox",
        login_host="https://acme--uat.sandbox.my.salesforce.com",
        client_id="3MVG9consumerKey",
        callback_ports=[7400, 7401],
        ca_bundle="/etc/ssl/proxy-ca.pem",
        sign_in_method="password",
    )

    save_profile(profile, path)

    assert load_profiles(path) == {"acme-uat": profile}


def test_profiles__older_file_gets_the_new_defaults(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[org.practice]\nkind = "practice"\n', encoding="utf-8")

    profile = load_profiles(path)["practice"]

    assert profile.callback_ports == list(DEFAULT_CALLBACK_PORTS)
    assert profile.ca_bundle == ""
    assert profile.sign_in_method == "browser"


def test_profiles__default_ports_are_not_shared_between_profiles() -> None:
    first = OrgProfile(alias="a")
    second = OrgProfile(alias="b")

    first.callback_ports.append(9000)

    assert second.callback_ports == list(DEFAULT_CALLBACK_PORTS)


def test_profiles__default_ports_match_the_sign_in() -> None:
    assert DEFAULT_CALLBACK_PORTS == oauth.DEFAULT_CALLBACK_PORTS


def test_profiles__file_is_owner_only(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    path = tmp_path / "config" / "profiles.toml"
    path.parent.mkdir()
    path.write_text("", encoding="utf-8")
    path.chmod(0o644)

    save_profile(OrgProfile(alias="practice"), path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_profiles__new_folder_is_owner_only(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    path = tmp_path / "config" / "profiles.toml"

    save_profile(OrgProfile(alias="practice"), path)

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("token", [FAKE_ACCESS_TOKEN, FAKE_REFRESH_TOKEN])
@pytest.mark.parametrize("field_name", ["instance_url", "username", "client_id", "ca_bundle"])
def test_profiles__token_value_is_never_saved(tmp_path: Path, field_name: str, token: str) -> None:
    path = tmp_path / "profiles.toml"
    save_profile(OrgProfile(alias="acme"), path)
    leaked = OrgProfile(alias="acme", **{field_name: f"x {token}"})

    with pytest.raises(ValueError) as raised:
        save_profile(leaked, path)

    assert field_name in str(raised.value)
    assert token not in str(raised.value)
    assert token not in path.read_text(encoding="utf-8")
    assert load_profiles(path) == {"acme": OrgProfile(alias="acme")}


def test_app_settings__token_value_is_never_saved(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"

    with pytest.raises(ValueError):
        save_app_settings(AppSettings(last_profile=FAKE_REFRESH_TOKEN), path)

    assert not path.exists()


def test_profiles__no_field_is_meant_for_a_secret() -> None:
    names = {field.name for field in dataclasses.fields(OrgProfile)}
    names |= {field.name for field in dataclasses.fields(AppSettings)}

    assert [name for name in names if re.search("token|secret|password|session", name)] == []


def test_profiles__invalid_alias_is_not_saved(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"

    with pytest.raises(ValueError):
        save_profile(OrgProfile(alias="acme prod"), path)

    assert not path.exists()


def test_delete_profile__keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    save_profile(OrgProfile(alias="practice"), path)
    save_profile(OrgProfile(alias="acme-prod", kind="production"), path)

    deleted = delete_profile("practice", path)

    assert deleted is True
    assert list(load_profiles(path)) == ["acme-prod"]


def test_delete_profile__missing_alias_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    save_profile(OrgProfile(alias="practice"), path)
    before = path.read_bytes()

    deleted = delete_profile("acme-prod", path)

    assert deleted is False
    assert path.read_bytes() == before


@pytest.mark.parametrize("alias", ["a", "acme-prod", "Acme_UAT.2", "x" * 40])
def test_validate_alias__accepts(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "named"),
    [
        ("", "empty"),
        ("x" * 41, "41 characters"),
        ("acme prod", "' '"),
        ("acme#part", "'#'"),
        ("acme/prod", "'/'"),
        ("café", "'é'"),
        ("a\nb", "'\\n'"),
    ],
)
def test_validate_alias__rejects_naming_the_problem(alias: str, named: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_alias(alias)

    assert named in str(raised.value)


def test_app_settings__missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_app_settings(tmp_path / "app.toml") == AppSettings()


def test_app_settings__round_trip(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    settings = AppSettings(last_profile="acme-prod", allow_insecure_keyring=True)

    save_app_settings(settings, path)

    assert load_app_settings(path) == settings


def test_app_settings__default_path_is_app_toml() -> None:
    save_app_settings(AppSettings(last_profile="acme-prod"))

    assert app_settings_path() == config_dir() / "app.toml"
    assert load_app_settings().last_profile == "acme-prod"


def test_app_settings__file_is_owner_only(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    path = tmp_path / "app.toml"

    save_app_settings(AppSettings(last_profile="acme-prod"), path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_app_settings__unreadable_file_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "app.toml"
    path.write_text("[app\nallow_insecure_keyring = ", encoding="utf-8")

    settings = load_app_settings(path)

    assert settings == AppSettings()
    assert not path.exists()
    kept = list(tmp_path.glob("app.toml.unreadable-*"))
    assert len(kept) == 1
    assert kept[0].read_text(encoding="utf-8") == "[app\nallow_insecure_keyring = "
    assert "app.toml" in caplog.text


def test_app_settings__wrong_type_is_not_an_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text('[app]\nallow_insecure_keyring = "yes"\n', encoding="utf-8")

    assert load_app_settings(path).allow_insecure_keyring is False


def test_app_settings__unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text('[app]\nlast_profile = "acme"\ntheme = "dark"\n', encoding="utf-8")

    assert load_app_settings(path) == AppSettings(last_profile="acme")
