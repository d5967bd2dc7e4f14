"""Sign-in against local programs that misbehave: idle sockets, forged callbacks, redirects.

Every server here listens on 127.0.0.1: the practice org, or a ScriptedServer
that plays a hostile or broken login host.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.practice_org.tls import ensure_tls_files
from backstory_desktop.salesforce import connection as connection_module
from backstory_desktop.salesforce.connection import (
    OrgConnection,
    connect_practice_org,
    connect_with_access_token,
    connect_with_browser,
    connect_with_password,
    resume_with_refresh_token,
)
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, SignInRequired
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.oauth import (
    LoopbackReceiver,
    OAuthError,
    TokenSet,
    refresh_tokens,
    revoke_token,
)
from backstory_desktop.salesforce.soap_login import MAX_RESPONSE_BYTES
from tests.salesforce.headless_browser import HeadlessBrowser
from tests.salesforce.local_servers import Reply, ScriptedServer

OAUTH_LOGGER = "backstory_desktop.salesforce.oauth"


def sign_in(org: PracticeOrg, browser: Callable[[str], object], **options: Any) -> OrgConnection:
    options.setdefault("callback_ports", (0,))
    options.setdefault("timeout", 30)
    options.setdefault("login_hint", org.admin_username)
    return connect_with_browser(
        org.base_url, org.client_id, ca_bundle=org.ca_bundle, open_browser=browser, **options
    )


def callback_base(authorize_url: str) -> str:
    """Return the loopback callback URL named in an authorize URL's redirect_uri."""
    return parse_qs(urlsplit(authorize_url).query)["redirect_uri"][0]


@pytest.fixture
def idle_sockets() -> Iterator[list[socket.socket]]:
    """Client sockets a test opens to the listener; closed at the end of the test."""
    opened: list[socket.socket] = []
    yield opened
    for client in opened:
        client.close()


def open_idle_connection(url: str, opened: list[socket.socket], first_bytes: bytes = b"") -> None:
    port = urlsplit(url).port
    assert port is not None
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first_bytes:
        client.sendall(first_bytes)
    opened.append(client)


def hostile_login_host(org: PracticeOrg, reply: Callable[[str, str], Reply]) -> ScriptedServer:
    """Start an HTTPS server that the practice org's CA bundle trusts and that replies with ``reply``."""
    return ScriptedServer(reply, tls_files=ensure_tls_files(org.db_path))


# -- the callback listener -----------------------------------------------------------


@pytest.mark.parametrize("first_bytes", [b"", b"GET /callback?state=x HTTP/1.1\r\n"])
def test_listener__idle_connection_does_not_block_callback(
    default_org: PracticeOrg, idle_sockets: list[socket.socket], first_bytes: bytes
) -> None:
    browser = HeadlessBrowser(default_org)

    def open_browser(url: str) -> bool:
        open_idle_connection(callback_base(url), idle_sockets, first_bytes)
        return browser(url)

    connection = sign_in(default_org, open_browser)

    assert connection.username == default_org.admin_username
    assert browser.callback_pages[0].status_code == 200


def test_listener__cancel_returns_despite_idle_connection(
    default_org: PracticeOrg, idle_sockets: list[socket.socket]
) -> None:
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def open_browser(url: str) -> bool:
        open_idle_connection(callback_base(url), idle_sockets)
        cancel.set()
        return True

    def run() -> None:
        try:
            sign_in(default_org, open_browser, cancel=cancel)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)

    assert not worker.is_alive(), "the sign-in is still blocked after Cancel"
    assert isinstance(outcome[0], Cancelled)


def test_listener__close_does_not_wait_for_idle_connection(
    idle_sockets: list[socket.socket],
) -> None:
    receiver = LoopbackReceiver(expected_state="s1")
    open_idle_connection(receiver.redirect_uri, idle_sockets)
    # A request on a second connection proves the idle one was accepted first.
    assert requests.get(f"{receiver.redirect_uri}?state=other", timeout=10).status_code == 400

    closer = threading.Thread(target=receiver.close, daemon=True)
    closer.start()
    closer.join(20)

    assert not closer.is_alive(), "close() waits for the idle connection"


# -- forged callbacks ----------------------------------------------------------------


FORGED_QUERIES = {
    "wrong state": "code=forged&state=guess",
    "no state": "code=forged",
    "error without state": "error=access_denied&error_description=Call+1-555-0100",
    "error with wrong state": "error=access_denied&error_description=Call+1-555-0100&state=guess",
    "state outside ascii": "code=forged&state=%C3%A9",
}


@pytest.mark.parametrize("query", FORGED_QUERIES.values(), ids=FORGED_QUERIES.keys())
def test_listener__forged_callback_ignored(
    default_org: PracticeOrg, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    caplog.set_level(logging.WARNING, logger=OAUTH_LOGGER)
    browser = HeadlessBrowser(default_org)
    forged_pages: list[requests.Response] = []

    def open_browser(url: str) -> bool:
        forged_pages.append(requests.get(f"{callback_base(url)}?{query}", timeout=10))
        return browser(url)

    connection = sign_in(default_org, open_browser)

    assert connection.username == default_org.admin_username
    forged = forged_pages[0]
    assert forged.status_code == 400
    assert "did not carry the state this app sent" in forged.text
    assert "1-555-0100" not in forged.text
    assert browser.callback_pages[0].status_code == 200
    assert "Sign-in received" in browser.callback_pages[0].text
    warnings = [record.getMessage() for record in caplog.records if record.name == OAUTH_LOGGER]
    assert len(warnings) == 1
    assert "Ignored a sign-in callback" in warnings[0]
    assert "forged" not in warnings[0]
    assert "guess" not in warnings[0]


def test_listener__second_valid_callback_still_409(default_org: PracticeOrg) -> None:
    browser = HeadlessBrowser(default_org, callbacks_per_sign_in=2)

    sign_in(default_org, browser)

    assert [page.status_code for page in browser.callback_pages] == [200, 409]


# -- revoking a sign-in that could not be opened -------------------------------------


def test_browser_sign_in__failure_after_exchange_revokes_token(
    default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued: list[TokenSet] = []
    real_exchange = connection_module.exchange_code

    def recording_exchange(*args: Any) -> TokenSet:
        tokens = real_exchange(*args)
        issued.append(tokens)
        return tokens

    monkeypatch.setattr(connection_module, "exchange_code", recording_exchange)

    with pytest.raises(SalesforceProblem) as raised:
        sign_in(default_org, HeadlessBrowser(default_org), api_version="99.0")

    assert raised.value.error_code == "API_VERSION_NOT_OFFERED"
    refresh_token = issued[0].refresh_token
    assert refresh_token
    with pytest.raises(OAuthError) as refused:
        refresh_tokens(
            build_session(default_org.ca_bundle), default_org.base_url, default_org.client_id, refresh_token
        )
    assert refused.value.error == "invalid_grant"


# -- redirects on credential POSTs -----------------------------------------------------


@pytest.fixture
def plain_target() -> Iterator[ScriptedServer]:
    """A plain-HTTP server that records whatever a followed redirect would send it."""
    with ScriptedServer(lambda method, path: Reply(200, {"Content-Length": "0"})) as server:
        yield server


def redirecting_host(org: PracticeOrg, target: ScriptedServer) -> ScriptedServer:
    return hostile_login_host(
        org, lambda method, path: Reply(307, {"Location": f"{target.base_url}{path}", "Content-Length": "0"})
    )


def test_token_post__redirect_not_followed(default_org: PracticeOrg, plain_target: ScriptedServer) -> None:
    with redirecting_host(default_org, plain_target) as hostile, pytest.raises(OAuthError) as raised:
        refresh_tokens(build_session(default_org.ca_bundle), hostile.base_url, "client", "secret-refresh")

    assert raised.value.status == 307
    assert "HTTP 307 redirect" in raised.value.description
    assert "not followed" in raised.value.description
    assert plain_target.received == []


def test_revoke_post__redirect_not_followed(
    default_org: PracticeOrg, plain_target: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with redirecting_host(default_org, plain_target) as hostile:
        revoke_token(build_session(default_org.ca_bundle), hostile.base_url, "secret-refresh")

    assert plain_target.received == []
    assert "HTTP 307 redirect" in caplog.text
    assert "secret-refresh" not in caplog.text


def test_soap_login__redirect_not_followed(default_org: PracticeOrg, plain_target: ScriptedServer) -> None:
    with redirecting_host(default_org, plain_target) as hostile, pytest.raises(SalesforceProblem) as raised:
        connect_with_password(
            hostile.base_url, "admin", "secret-password", "tok", ca_bundle=default_org.ca_bundle
        )

    assert raised.value.status == 307
    assert "HTTP 307" in raised.value.sentence
    assert "redirect" in raised.value.sentence
    assert "secret-password" not in raised.value.sentence
    assert plain_target.received == []


# -- SOAP response size --------------------------------------------------------------


SOAP_BODY_BYTES = 64 * MAX_RESPONSE_BYTES


def endless_soap_body() -> Iterator[bytes]:
    chunk = b"<x>" + b"a" * (64 * 1024) + b"</x>"
    sent = 0
    while sent < SOAP_BODY_BYTES:
        yield chunk
        sent += len(chunk)


def test_soap_login__oversized_response_not_downloaded(default_org: PracticeOrg) -> None:
    # Without Content-Length the body ends when the server closes, so its size is known only by reading.
    with hostile_login_host(
        default_org, lambda method, path: Reply(200, {"Content-Type": "text/xml"}, endless_soap_body())
    ) as hostile, pytest.raises(SalesforceProblem) as raised:
        connect_with_password(hostile.base_url, "u", "p", "t", ca_bundle=default_org.ca_bundle)

    assert f"more than {MAX_RESPONSE_BYTES} bytes" in raised.value.sentence
    # Socket buffers let the server get some megabytes ahead, never the whole body.
    assert hostile.bytes_sent < SOAP_BODY_BYTES // 4


def test_soap_login__declared_oversized_response_rejected(default_org: PracticeOrg) -> None:
    declared = {"Content-Type": "text/xml", "Content-Length": str(SOAP_BODY_BYTES)}
    with hostile_login_host(
        default_org, lambda method, path: Reply(200, declared, endless_soap_body())
    ) as hostile, pytest.raises(SalesforceProblem) as raised:
        connect_with_password(hostile.base_url, "u", "p", "t", ca_bundle=default_org.ca_bundle)

    assert f"a response of {SOAP_BODY_BYTES} bytes" in raised.value.sentence


# -- pasted access token and instance URL ------------------------------------------------


@pytest.fixture
def proxy_listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A listener set as the HTTPS proxy, so that any request the test makes lands here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        address = f"http://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setenv("HTTPS_PROXY", address)
        monkeypatch.setenv("https_proxy", address)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        yield listener


def no_connection_arrived(listener: socket.socket) -> bool:
    try:
        client, _ = listener.accept()
    except BlockingIOError:
        return True
    client.close()
    return False


@pytest.mark.parametrize(
    "instance_url",
    [
        "00D000000000001!AQ0AQFakeTokenValue.abc",
        "https://00D000000000001!AQ0AQFakeTokenValue",
        "https://acme.my.salesforce.com/services/data",
        "https://acme.my.salesforce.com?x=1",
        "https://acme my.salesforce.com",
        "https://user@acme.my.salesforce.com",
        "   ",
    ],
)
def test_access_token__bad_instance_url_rejected_before_request(
    proxy_listener: socket.socket, instance_url: str
) -> None:
    with pytest.raises(ValueError) as raised:
        connect_with_access_token(instance_url, "00D000000000001!AQ0AQFakeTokenValue")

    assert "instance URL" in str(raised.value)
    assert "FakeTokenValue" not in str(raised.value)
    assert no_connection_arrived(proxy_listener)


def test_access_token__line_breaks_removed(default_org: PracticeOrg) -> None:
    signed_in = connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.admin_username, default_org.client_id
    )
    token = signed_in.tokens.access_token
    pasted = f" {token[:20]}\r\n{token[20:40]}\n {token[40:]}\n"

    connection = connect_with_access_token(default_org.base_url, pasted, ca_bundle=default_org.ca_bundle)

    assert connection.tokens.access_token == token
    assert connection.username == default_org.admin_username


def test_access_token__only_whitespace_rejected() -> None:
    with pytest.raises(ValueError, match="access token is empty"):
        connect_with_access_token("https://acme.my.salesforce.com", " \n ")


# -- refresh failures ----------------------------------------------------------------


def connect_admin(org: PracticeOrg) -> OrgConnection:
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


@pytest.mark.parametrize(
    "answer",
    [
        Reply(200, {"Content-Type": "text/html"}, [b"<html><body>Sign in to the hotel Wi-Fi</body></html>"]),
        Reply(302, {"Location": "http://portal.example.invalid/login", "Content-Length": "0"}),
        Reply(429, {"Content-Type": "application/json"}, [b'{"error": "rate_limit_exceeded"}']),
    ],
    ids=["html page", "portal redirect", "rate limited"],
)
def test_refresh__unreadable_answer_keeps_connection(default_org: PracticeOrg, answer: Reply) -> None:
    connection = connect_admin(default_org)
    real_login_host = connection.login_host
    default_org.expire_sessions()

    with hostile_login_host(default_org, lambda method, path: answer) as portal:
        connection.login_host = portal.base_url
        with pytest.raises(SalesforceProblem) as raised:
            connection.limits()

    assert not isinstance(raised.value, SignInRequired)
    assert raised.value.kind is ProblemKind.REFUSED
    assert "try again" in raised.value.sentence
    connection.login_host = real_login_host
    assert connection.limits()["DailyApiRequests"]["Max"] > 0


@pytest.mark.parametrize("error", ["inactive_user", "invalid_client_id", "unauthorized_client"])
def test_refresh__grant_gone_ends_sign_in(default_org: PracticeOrg, error: str) -> None:
    connection = connect_admin(default_org)
    default_org.expire_sessions()
    body = f'{{"error": "{error}", "error_description": "gone"}}'.encode()

    with hostile_login_host(
        default_org, lambda method, path: Reply(400, {"Content-Type": "application/json"}, [body])
    ) as host:
        connection.login_host = host.base_url
        with pytest.raises(SignInRequired) as raised:
            connection.limits()

    assert error in raised.value.sentence
    with pytest.raises(SignInRequired):
        connection.limits()


def test_refresh__saved_token_from_another_process_used(default_org: PracticeOrg) -> None:
    connection = connect_admin(default_org)
    original = connection.tokens.refresh_token
    assert original
    # Another process (such as `diagnose --org`) resumes the same sign-in and rotates the token.
    other = resume_with_refresh_token(
        default_org.base_url, default_org.client_id, original, ca_bundle=default_org.ca_bundle
    )
    rotated = other.tokens.refresh_token
    assert rotated and rotated != original
    stored: list[TokenSet] = []
    connection.saved_refresh_token = lambda: rotated
    connection.on_tokens_refreshed = stored.append
    default_org.expire_sessions()

    assert connection.limits()["DailyApiRequests"]["Max"] > 0

    assert len(stored) == 1
    assert stored[0].refresh_token not in (None, original)


def test_refresh__same_saved_token_ends_sign_in(default_org: PracticeOrg) -> None:
    connection = connect_admin(default_org)
    original = connection.tokens.refresh_token
    assert original
    resume_with_refresh_token(
        default_org.base_url, default_org.client_id, original, ca_bundle=default_org.ca_bundle
    )
    connection.saved_refresh_token = lambda: original
    default_org.expire_sessions()

    with pytest.raises(SignInRequired) as raised:
        connection.limits()

    assert "invalid_grant" in raised.value.sentence


def test_resume__saved_token_hook_passed_through(default_org: PracticeOrg) -> None:
    first = connect_admin(default_org)
    original = first.tokens.refresh_token
    assert original
    rotated = resume_with_refresh_token(
        default_org.base_url, default_org.client_id, original, ca_bundle=default_org.ca_bundle
    ).tokens.refresh_token
    assert rotated

    resumed = resume_with_refresh_token(
        default_org.base_url,
        default_org.client_id,
        original,
        ca_bundle=default_org.ca_bundle,
        saved_refresh_token=lambda: rotated,
    )

    assert resumed.username == default_org.admin_username
    assert resumed.saved_refresh_token is not None


def test_refresh__replay_expiring_again_retryable(default_org: PracticeOrg) -> None:
    connection = connect_admin(default_org)
    default_org.faults = FaultPlan(expired_session_rate=1.0)

    with pytest.raises(SalesforceProblem) as raised:
        connection.limits()

    assert not isinstance(raised.value, SignInRequired)
    assert raised.value.kind is ProblemKind.REFUSED
    assert "expired again right after it was renewed" in raised.value.sentence
    assert "try again" in raised.value.sentence
    default_org.faults = FaultPlan()
    assert connection.limits()["DailyApiRequests"]["Max"] > 0


def test_browser_sign_in__saved_token_hook_kept(default_org: PracticeOrg) -> None:
    connection = sign_in(default_org, HeadlessBrowser(default_org), saved_refresh_token=lambda: None)

    assert connection.saved_refresh_token is not None
