"""Org profiles survive a round trip, and a broken file is kept aside, never lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop.store.settings import (
    OrgProfile,
    ProfilesFileError,
    load_profiles,
    save_profile,
)


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
