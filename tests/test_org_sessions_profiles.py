"""new_profile checks what an admin typed for an org profile and names each problem in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop.org_sessions import new_profile
from backstory_desktop.store.settings import DEFAULT_CALLBACK_PORTS, load_profiles, save_profile

CLIENT_ID = "3MVG9consumerKey"


def test_new_profile__served_practice_org(tmp_path: Path) -> None:
    ca_bundle = tmp_path / "ca.pem"
    ca_bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")

    profile = new_profile(
        "served", "served", "https://127.0.0.1:8443/", "BackstoryDesktopPractice",
        ca_bundle=str(ca_bundle), callback_ports=[0],
    )

    assert profile.alias == "served"
    assert profile.kind == "served"
    assert profile.login_host == "https://127.0.0.1:8443"
    assert profile.ca_bundle == str(ca_bundle)
    assert profile.callback_ports == [0]
    assert profile.sign_in_method == "browser"


def test_new_profile__production_defaults_to_login_salesforce_com() -> None:
    profile = new_profile("acme-prod", "production", "", CLIENT_ID)

    assert profile.login_host == "https://login.salesforce.com"
    assert profile.callback_ports == list(DEFAULT_CALLBACK_PORTS)
    assert profile.api_version == ""


def test_new_profile__sandbox_defaults_to_test_salesforce_com() -> None:
    assert new_profile("acme-uat", "sandbox", "", CLIENT_ID).login_host == "https://test.salesforce.com"


def test_new_profile__lightning_address_becomes_the_my_domain() -> None:
    profile = new_profile(
        "acme", "mydomain", "https://acme.lightning.force.com/lightning/page/home", CLIENT_ID
    )

    assert profile.login_host == "https://acme.my.salesforce.com"


def test_new_profile__sandbox_my_domain_is_a_sandbox() -> None:
    profile = new_profile("acme-uat", "sandbox", "acme--uat.sandbox.my.salesforce.com", CLIENT_ID)

    assert profile.login_host == "https://acme--uat.sandbox.my.salesforce.com"


def test_new_profile__production_my_domain_is_production() -> None:
    profile = new_profile("acme-prod", "production", "acme.my.salesforce.com", CLIENT_ID)

    assert profile.login_host == "https://acme.my.salesforce.com"


def test_new_profile__surrounding_spaces_are_ignored() -> None:
    profile = new_profile(" acme-prod ", "production", " login.salesforce.com ", f" {CLIENT_ID} ",
                          api_version=" 64.0 ")

    assert (profile.alias, profile.client_id, profile.api_version) == ("acme-prod", CLIENT_ID, "64.0")


def test_new_profile__password_sign_in_needs_no_client_id() -> None:
    profile = new_profile("acme-prod", "production", "", "", sign_in_method="password")

    assert profile.client_id == ""
    assert profile.sign_in_method == "password"


@pytest.mark.parametrize(
    ("arguments", "options", "named"),
    [
        (("acme prod", "production", "", CLIENT_ID), {}, "contains ' '"),
        (("", "production", "", CLIENT_ID), {}, "alias is empty"),
        (("acme", "galaxy", "", CLIENT_ID), {}, "kind 'galaxy' is unknown"),
        (("practice", "production", "", CLIENT_ID), {}, "built-in practice org"),
        (("acme", "production", "", ""), {}, "consumer key is empty"),
        (("acme", "production", "", CLIENT_ID), {"sign_in_method": "magic"}, "'magic' is unknown"),
        (("acme", "mydomain", "", CLIENT_ID), {}, "My Domain is empty"),
        (("acme", "served", "", CLIENT_ID), {}, "login host is empty"),
        (("acme", "production", "https://127.0.0.1:8443", CLIENT_ID), {}, "local address"),
        (("acme", "served", "login.salesforce.com", CLIENT_ID), {}, "practice org is served"),
        (("acme", "production", "test.salesforce.com", CLIENT_ID), {}, "pick the kind sandbox"),
        (("acme", "sandbox", "login.salesforce.com", CLIENT_ID), {}, "not a sandbox login host"),
        (("acme", "sandbox", "acme.my.salesforce.com", CLIENT_ID), {}, "not a sandbox login host"),
        (("acme", "mydomain", "login.salesforce.com", CLIENT_ID), {}, "not a My Domain"),
        (("acme", "production", "acme.salesforce-setup.com", CLIENT_ID), {}, "acme.salesforce-setup.com"),
        (("acme", "production", "", CLIENT_ID), {"api_version": "v64"}, "'v64' is not a Salesforce API"),
        (("acme", "production", "", CLIENT_ID), {"ca_bundle": "/no/ca.pem"}, "/no/ca.pem is not a file"),
        (("acme", "production", "", CLIENT_ID), {"callback_ports": []}, "No callback port"),
        (("acme", "production", "", CLIENT_ID), {"callback_ports": [0]}, "only with a practice org"),
        (("acme", "production", "", CLIENT_ID), {"callback_ports": [70000]}, "outside the TCP port range"),
        (("acme", "production", "", CLIENT_ID), {"callback_ports": [7317, 7317]}, "listed twice"),
    ],
)
def test_new_profile__rejects_naming_the_problem(
    arguments: tuple[str, str, str, str], options: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError) as raised:
        new_profile(*arguments, **options)  # type: ignore[arg-type]

    message = str(raised.value)
    assert named in message
    assert message.endswith(".")
    assert "\n" not in message


def test_new_profile__practice_alias_reserved_in_any_case() -> None:
    with pytest.raises(ValueError, match="practice org's alias in other letter case"):
        new_profile("PRACTICE", "production", "", CLIENT_ID)


def test_new_profile__alias_differing_only_in_case_rejected() -> None:
    with pytest.raises(ValueError, match="An org profile named acme exists already, and aliases ignore"):
        new_profile("ACME", "production", "", CLIENT_ID, taken_aliases=["acme"])


def test_new_profile__taken_alias_rejected() -> None:
    with pytest.raises(ValueError, match="An org profile named acme exists already"):
        new_profile("acme", "production", "", CLIENT_ID, taken_aliases=["acme"])


def test_save_profile__alias_differing_only_in_case_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKSTORY_DESKTOP_HOME", str(tmp_path / "home"))
    save_profile(new_profile("acme", "production", "", CLIENT_ID))

    with pytest.raises(ValueError, match="aliases ignore letter case"):
        save_profile(new_profile("Acme", "production", "", CLIENT_ID))
    assert list(load_profiles()) == ["acme"]


def test_new_profile__ca_bundle_without_certificate_rejected(tmp_path: Path) -> None:
    not_pem = tmp_path / "browser.py"
    not_pem.write_text("print('hello')\n", encoding="utf-8")

    with pytest.raises(ValueError, match="contains no PEM certificate"):
        new_profile("acme", "production", "", CLIENT_ID, ca_bundle=str(not_pem))


def test_new_profile__api_version_without_dot_zero() -> None:
    assert new_profile("acme", "production", "", CLIENT_ID, api_version="64").api_version == "64.0"


@pytest.mark.parametrize("host", ["localhost:18443", "127.0.0.1:99999", "example.com"])
def test_new_profile__served_host_problem_names_practice_address(host: str) -> None:
    with pytest.raises(ValueError, match="practice-org serve") as raised:
        new_profile("local", "served", host, CLIENT_ID, callback_ports=[0])
    assert "login.salesforce.com" not in str(raised.value)
