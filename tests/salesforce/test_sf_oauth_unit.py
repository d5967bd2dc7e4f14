"""OAuth pieces that need no server: PKCE values, the authorize URL, the callback check."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from backstory_desktop.salesforce.oauth import (
    CallbackPortBusy,
    LoopbackReceiver,
    OAuthError,
    TokenSet,
    _token_set,
    authorize_url,
    code_from_redirect,
    new_pkce,
    open_loopback_receiver,
    s256_challenge,
)


def test_pkce__verifier_is_43_to_128_unreserved_characters() -> None:
    verifier = new_pkce().verifier
    assert 43 <= len(verifier) <= 128
    assert re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier)


def test_pkce__challenge_is_s256_of_the_verifier() -> None:
    pkce = new_pkce()
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert pkce.challenge == expected


def test_pkce__rfc7636_example_challenge() -> None:
    # Appendix B of RFC 7636.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce__each_sign_in_gets_new_secrets() -> None:
    first, second = new_pkce(), new_pkce()
    assert first.verifier != second.verifier
    assert first.state != second.state


def test_pkce__repr_hides_verifier_and_state() -> None:
    pkce = new_pkce()
    assert pkce.verifier not in repr(pkce)
    assert pkce.state not in repr(pkce)


def test_authorize_url__carries_challenge_state_and_hint() -> None:
    pkce = new_pkce()
    url = authorize_url(
        "https://127.0.0.1:8443",
        "BackstoryDesktopPractice",
        "http://127.0.0.1/callback",
        pkce,
        login_hint="admin@practice.backstory.example",
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://127.0.0.1:8443/services/oauth2/authorize"
    )
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["BackstoryDesktopPractice"]
    assert query["redirect_uri"] == ["http://127.0.0.1/callback"]
    assert query["code_challenge"] == [pkce.challenge]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [pkce.state]
    assert query["login_hint"] == ["admin@practice.backstory.example"]
    assert "code_verifier" not in query


def test_authorize_url__bare_host_gets_https() -> None:
    url = authorize_url("login.salesforce.com", "id", "http://127.0.0.1/cb", new_pkce())
    assert url.startswith("https://login.salesforce.com/services/oauth2/authorize?")


def test_authorize_url__plain_http_host_rejected() -> None:
    with pytest.raises(ValueError):
        authorize_url("http://login.salesforce.com", "id", "http://127.0.0.1/cb", new_pkce())


def test_callback__code_returned_when_state_matches() -> None:
    location = "http://127.0.0.1/callback?code=aPrx123%3D%3D&state=abc"
    assert code_from_redirect(location, "abc") == "aPrx123=="


def test_callback__other_state_rejected() -> None:
    with pytest.raises(OAuthError) as raised:
        code_from_redirect("http://127.0.0.1/callback?code=x&state=forged", "abc")
    assert raised.value.error == "state_mismatch"


def test_callback__missing_state_rejected() -> None:
    with pytest.raises(OAuthError) as raised:
        code_from_redirect("http://127.0.0.1/callback?code=x", "abc")
    assert raised.value.error == "state_mismatch"


def test_callback__error_parameter_raised() -> None:
    location = "http://127.0.0.1/callback?error=access_denied&error_description=end-user+denied&state=abc"
    with pytest.raises(OAuthError) as raised:
        code_from_redirect(location, "abc")
    assert raised.value.error == "access_denied"
    assert raised.value.description == "end-user denied"


def test_oauth_error__invalid_grant_says_sign_in_again() -> None:
    error = OAuthError("invalid_grant", "expired access/refresh token", status=400)
    assert "invalid_grant" in str(error)
    assert "sign in to the org again" in str(error)


def test_token_set__repr_hides_tokens() -> None:
    tokens = TokenSet("00Dx!secret-access", "secret-refresh", "https://x", "https://x/id/1/2", "1")
    assert "secret" not in repr(tokens)


def test_loopback__callback_code_returned() -> None:
    with LoopbackReceiver() as receiver:
        assert receiver.redirect_uri.startswith("http://localhost:")
        response = requests.get(f"{receiver.redirect_uri}?code=c0de&state=s1", timeout=5)
        assert response.status_code == 200
        assert "you can close this tab" in response.text
        assert receiver.wait_for_code("s1", timeout=5) == "c0de"


def test_loopback__forged_state_rejected() -> None:
    with LoopbackReceiver() as receiver:
        requests.get(f"{receiver.redirect_uri}?code=c0de&state=forged", timeout=5)
        with pytest.raises(OAuthError) as raised:
            receiver.wait_for_code("s1", timeout=5)
    assert raised.value.error == "state_mismatch"


def test_loopback__other_path_not_a_callback() -> None:
    with LoopbackReceiver() as receiver:
        base = receiver.redirect_uri.rsplit("/", 1)[0]
        assert requests.get(f"{base}/favicon.ico", timeout=5).status_code == 404
        with pytest.raises(OAuthError) as raised:
            receiver.wait_for_code("s1", timeout=0.5)
    assert raised.value.error == "timeout"


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("instance_url", "http://acme.my.salesforce.com"),
        ("instance_url", "https://user@acme.my.salesforce.com"),
        ("id", "http://login.salesforce.com/id/00D/005"),
        ("instance_url", "acme.my.salesforce.com"),
    ],
)
def test_token_response__non_https_address_rejected(name: str, address: str) -> None:
    payload = {
        "access_token": "00Dx!token",
        "instance_url": "https://acme.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00D/005",
    }
    payload[name] = address

    with pytest.raises(OAuthError) as raised:
        _token_set(payload, fallback_refresh_token=None)

    assert raised.value.error == "invalid_response"
    assert name in raised.value.description


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_loopback__redirect_uri_names_localhost() -> None:
    with open_loopback_receiver((0,), expected_state="abc") as receiver:
        assert receiver.redirect_uri == f"http://localhost:{receiver.port}/callback"


@pytest.mark.parametrize("address", ["127.0.0.1", "[::1]"])
def test_loopback__callback_arrives_on_either_localhost_address(address: str) -> None:
    if address == "[::1]" and not _has_ipv6_loopback():
        pytest.skip("this computer has no IPv6 loopback, so localhost is 127.0.0.1 alone")
    with open_loopback_receiver((0,), expected_state="abc") as receiver:
        answer = requests.get(f"http://{address}:{receiver.port}/callback?code=c1&state=abc", timeout=5)

        assert answer.status_code == 200
        assert receiver.wait_for_code(timeout=5) == "c1"


def test_loopback__port_taken_on_ipv6_counts_as_busy() -> None:
    if not _has_ipv6_loopback():
        pytest.skip("this computer has no IPv6 loopback")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as other_program:
        other_program.bind(("::1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip("the same port is taken on 127.0.0.1 too")

        with pytest.raises(CallbackPortBusy):
            open_loopback_receiver((port,), expected_state="abc")
