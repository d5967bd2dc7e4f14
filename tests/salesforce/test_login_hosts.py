"""Org addresses typed by an admin become OAuth login hosts, or are rejected with a reason."""

from __future__ import annotations

import dataclasses

import pytest

from backstory_desktop.salesforce.login_hosts import (
    LoginHost,
    LoginHostError,
    check_instance_url,
    normalise_login_host,
)

# text typed -> (url, kind, partition)
ACCEPTED = [
    ("login.salesforce.com", "https://login.salesforce.com", "production", None),
    ("https://login.salesforce.com/", "https://login.salesforce.com", "production", None),
    ("  HTTPS://LOGIN.SALESFORCE.COM/?startURL=%2F  ", "https://login.salesforce.com", "production", None),
    ("login.salesforce.com.", "https://login.salesforce.com", "production", None),
    ("https://login.salesforce.com:443", "https://login.salesforce.com", "production", None),
    ("//login.salesforce.com", "https://login.salesforce.com", "production", None),
    ("test.salesforce.com/services/oauth2/authorize", "https://test.salesforce.com", "sandbox", None),
    ("https://test.salesforce.com#top", "https://test.salesforce.com", "sandbox", None),
    ("acme.my.salesforce.com", "https://acme.my.salesforce.com", "my_domain", None),
    ("https://Acme.My.Salesforce.com/home/home.jsp", "https://acme.my.salesforce.com", "my_domain", None),
    (
        "acme--uat.sandbox.my.salesforce.com",
        "https://acme--uat.sandbox.my.salesforce.com",
        "my_domain",
        "sandbox",
    ),
    ("acme--uat.my.salesforce.com", "https://acme--uat.my.salesforce.com", "my_domain", "sandbox"),
    (
        "https://mycompany-dev-ed.develop.my.salesforce.com/",
        "https://mycompany-dev-ed.develop.my.salesforce.com",
        "my_domain",
        "develop",
    ),
    (
        "power-ability-1234.scratch.my.salesforce.com",
        "https://power-ability-1234.scratch.my.salesforce.com",
        "my_domain",
        "scratch",
    ),
    (
        "curious-otter-abc.trailblaze.my.salesforce.com",
        "https://curious-otter-abc.trailblaze.my.salesforce.com",
        "my_domain",
        "trailblaze",
    ),
    ("acme.demo.my.salesforce.com", "https://acme.demo.my.salesforce.com", "my_domain", "demo"),
    ("acme.patch.my.salesforce.com", "https://acme.patch.my.salesforce.com", "my_domain", "patch"),
]

# text pasted -> (url, partition, corrected_from)
CORRECTED = [
    (
        "https://acme.lightning.force.com/lightning/r/Account/001000000000001AAA/view",
        "https://acme.my.salesforce.com",
        None,
        "acme.lightning.force.com",
    ),
    (
        "acme--uat.sandbox.lightning.force.com/lightning/page/home",
        "https://acme--uat.sandbox.my.salesforce.com",
        "sandbox",
        "acme--uat.sandbox.lightning.force.com",
    ),
    (
        "https://mycompany-dev-ed.develop.lightning.force.com/lightning/setup/SetupOneHome/home",
        "https://mycompany-dev-ed.develop.my.salesforce.com",
        "develop",
        "mycompany-dev-ed.develop.lightning.force.com",
    ),
    (
        "https://acme--c.vf.force.com/apex/InvoicePage?id=1",
        "https://acme.my.salesforce.com",
        None,
        "acme--c.vf.force.com",
    ),
    (
        "acme.my.site.com/partners/s/",
        "https://acme.my.salesforce.com",
        None,
        "acme.my.site.com",
    ),
]

# text typed -> parts the message must contain
REJECTED = [
    ("", ["The org address is empty", "login.salesforce.com"]),
    ("   ", ["The org address is empty"]),
    ("http://login.salesforce.com", ["'http://login.salesforce.com'", "without TLS", "https://"]),
    ("ftp://login.salesforce.com", ["ftp://", "instead of https://"]),
    ("https://acme.my.salesforce.com:8443", ["port 8443", "without ':8443'"]),
    ("example.com", ["'example.com' is not a Salesforce address", "mycompany.my.salesforce.com"]),
    ("https://login.salesforce.com.evil.example/", ["not a Salesforce address"]),
    ("evil-salesforce.com", ["not a Salesforce address"]),
    ("10.1.2.3", ["'10.1.2.3' is an IP address"]),
    ("https://[::1]:8443", ["IP address"]),
    ("https://127.0.0.1:8443", ["'127.0.0.1:8443' is a local address", "practice org"]),
    ("localhost:8443", ["'localhost:8443' is not a Salesforce address"]),
    ("example.com:8443", ["not a Salesforce address"]),
    ("na123.salesforce.com", ["'na123.salesforce.com' is an instance host", "My Domain"]),
    ("https://usa2s.salesforce.com/", ["instance host"]),
    ("help.salesforce.com", ["is a Salesforce host but not an org login host"]),
    ("my.salesforce.com", ["not an org login host"]),
    ("acme.sandbox.my.salesforce.com", ["is missing the sandbox name", "MyDomainName--SandboxName"]),
    ("acme--.sandbox.my.salesforce.com", ["is not a valid host name"]),
    ("acme--uat--x.sandbox.my.salesforce.com", ["is missing the sandbox name"]),
    ("acme.cs42.my.salesforce.com", ["not a My Domain login host format"]),
    ("acme.free.my.salesforce.com", ["not a My Domain login host format"]),
    ("a.b.sandbox.my.salesforce.com", ["not a My Domain login host format"]),
    ("acme.sandbox.lightning.force.com", ["'acme.sandbox.lightning.force.com' is missing the sandbox name"]),
    ("acme.my.salesforce-setup.com/lightning/setup", ["Setup page host", "probably acme.my.salesforce.com"]),
    ("acme--uat.sandbox.my.salesforce-setup.com", ["Setup page host", "Setup under My Domain"]),
    ("acme.force.com", ["does not contain the org's My Domain name"]),
    ("acme.secure.force.com/portal", ["does not contain the org's My Domain name"]),
    ("acme--uat--c.sandbox.vf.force.com", ["Visualforce page host", "cannot be derived"]),
    ("acme--c.na123.visual.force.com", ["does not contain the org's My Domain name"]),
    ("acme--uat.sandbox.my.site.com", ["Experience Cloud site host", "cannot be derived"]),
    ("my domain.my.salesforce.com", ["is not a valid host name"]),
    ("acme_co.my.salesforce.com", ["'acme_co.my.salesforce.com' is not a valid host name"]),
    ("acmé.my.salesforce.com", ["is not a valid host name"]),
    ("https://", ["has no host name"]),
    ("https://acme.my.salesforce.com:99999", ["is not a valid web address"]),
]


@pytest.mark.parametrize(("text", "url", "kind", "partition"), ACCEPTED)
def test_login_host__accepted(text: str, url: str, kind: str, partition: str | None) -> None:
    login_host = normalise_login_host(text)

    assert login_host.url == url
    assert login_host.kind == kind
    assert login_host.partition == partition
    assert login_host.corrected_from is None
    assert login_host.note


@pytest.mark.parametrize(("text", "url", "partition", "corrected_from"), CORRECTED)
def test_login_host__application_host_is_corrected(
    text: str, url: str, partition: str | None, corrected_from: str
) -> None:
    login_host = normalise_login_host(text)

    assert login_host.url == url
    assert login_host.kind == "my_domain"
    assert login_host.partition == partition
    assert login_host.corrected_from == corrected_from
    assert login_host.note.startswith("Corrected the ")
    assert corrected_from in login_host.note
    assert login_host.host in login_host.note


@pytest.mark.parametrize(("text", "expected_parts"), REJECTED)
def test_login_host__rejected_with_reason(text: str, expected_parts: list[str]) -> None:
    with pytest.raises(LoginHostError) as caught:
        normalise_login_host(text)

    message = str(caught.value)
    for part in expected_parts:
        assert part in message
    assert message.endswith(".")
    assert ". " not in message.removesuffix(".")  # one sentence


def test_login_host__error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a Salesforce address"):
        normalise_login_host("example.com")


def test_login_host__user_info_not_echoed() -> None:
    with pytest.raises(LoginHostError) as caught:
        normalise_login_host("https://admin%40acme.com:S3cret-pass@acme.my.salesforce.com/")

    message = str(caught.value)
    assert "contains a user name or password" in message
    assert "'acme.my.salesforce.com'" in message
    assert "S3cret" not in message
    assert "admin" not in message


def test_login_host__long_input_is_shortened_in_message() -> None:
    text = "https://" + "a" * 200 + ".example.com/"

    with pytest.raises(LoginHostError) as caught:
        normalise_login_host(text)

    assert "a" * 100 not in str(caught.value)
    assert "..." in str(caught.value)


def test_login_host__ignored_path_is_mentioned_in_note() -> None:
    with_path = normalise_login_host("https://acme.my.salesforce.com/lightning/page/home?x=1")
    without_path = normalise_login_host("https://acme.my.salesforce.com")

    assert "Ignored the path and query" in with_path.note
    assert "Ignored" not in without_path.note


def test_login_host__practice_org_needs_allow_local() -> None:
    login_host = normalise_login_host("https://127.0.0.1:8443/", allow_local=True)

    assert login_host == LoginHost(
        url="https://127.0.0.1:8443", kind="local", note="Practice org on this computer."
    )
    assert normalise_login_host("127.0.0.1:51234", allow_local=True).url == "https://127.0.0.1:51234"


@pytest.mark.parametrize(
    ("text", "expected_part"),
    [
        ("127.0.0.1", "has no port"),
        ("http://127.0.0.1:8443", "without TLS"),
        ("https://admin@127.0.0.1:8443", "user name or password"),
        ("https://127.0.0.2:8443", "IP address"),
    ],
)
def test_login_host__practice_org_rules_with_allow_local(text: str, expected_part: str) -> None:
    with pytest.raises(LoginHostError, match=expected_part):
        normalise_login_host(text, allow_local=True)


def test_login_host__allow_local_still_accepts_salesforce_hosts() -> None:
    assert normalise_login_host("acme.my.salesforce.com", allow_local=True).kind == "my_domain"


def test_login_host__is_frozen() -> None:
    login_host = normalise_login_host("login.salesforce.com")

    with pytest.raises(dataclasses.FrozenInstanceError):
        login_host.url = "https://example.com"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("https://ACME--UAT.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
        ("https://acme.develop.my.salesforce.com:443", "https://acme.develop.my.salesforce.com"),
    ],
)
def test_instance_url__accepted(url: str, expected: str) -> None:
    assert check_instance_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected_parts"),
    [
        ("acme.my.salesforce.com", ["has no https:// scheme"]),
        ("http://acme.my.salesforce.com", ["without TLS"]),
        ("https://evil.example.com", ["'evil.example.com'", "not a Salesforce address"]),
        ("https://acme.my.salesforce.com.evil.example", ["not a Salesforce address"]),
        ("https://acme.lightning.force.com", ["application host", "https://acme.my.salesforce.com"]),
        ("https://login.salesforce.com", ["generic login host"]),
        ("https://test.salesforce.com", ["generic login host"]),
        ("https://acme.my.salesforce.com/services/data", ["path, query or fragment"]),
        ("https://acme.my.salesforce.com?next=https://evil.example", ["path, query or fragment"]),
        ("https://acme.my.salesforce.com:8443", ["port 8443"]),
        ("https://127.0.0.1:8443", ["local address"]),
        ("https://na123.salesforce.com", ["instance host"]),
    ],
)
def test_instance_url__rejected(url: str, expected_parts: list[str]) -> None:
    with pytest.raises(LoginHostError) as caught:
        check_instance_url(url)

    message = str(caught.value)
    assert message.startswith("Rejected the instance URL ")
    assert "from the token response" in message
    for part in expected_parts:
        assert part in message


def test_instance_url__practice_org_with_allow_local() -> None:
    assert check_instance_url("https://127.0.0.1:8443", allow_local=True) == "https://127.0.0.1:8443"


def test_instance_url__empty_is_rejected() -> None:
    with pytest.raises(LoginHostError, match=r"^The token response contains an empty instance URL\.$"):
        check_instance_url("  ")
