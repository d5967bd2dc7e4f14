"""Browser sign-in against the practice org: callback ports, PKCE, state, pages, timeout, cancel."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce import connection as connection_module
from backstory_desktop.salesforce.connection import OrgConnection, connect_with_browser
from backstory_desktop.salesforce.errors import ProblemKind, explain
from backstory_desktop.salesforce.oauth import (
    DEFAULT_CALLBACK_PORTS,
    CallbackPortBusy,
    OAuthError,
    Pkce,
    new_pkce,
    open_loopback_receiver,
)
from tests.salesforce.headless_browser import HeadlessBrowser, replace_query_value


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.fixture
def second_busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sign_in(org: PracticeOrg, browser: Callable[[str], object], **options: Any) -> OrgConnection:
    """Sign in to ``org`` as its admin through ``browser``, on any free port by default."""
    options.setdefault("callback_ports", (0,))
    options.setdefault("timeout", 30)
    options.setdefault("login_hint", org.admin_username)
    return connect_with_browser(
        org.base_url, org.client_id, ca_bundle=org.ca_bundle, open_browser=browser, **options
    )


def test_browser_sign_in__success_page_and_user(default_org: PracticeOrg) -> None:
    browser = HeadlessBrowser(default_org)
    connection = connect_with_browser(
        default_org.base_url,
        default_org.client_id,
        ca_bundle=default_org.ca_bundle,
        open_browser=browser,
        callback_ports=(0,),
        login_hint=default_org.admin_username,
        timeout=30,
    )

    assert connection.username == default_org.admin_username
    assert connection.tokens.refresh_token
    page = browser.callback_pages[0]
    assert page.status_code == 200
    assert "Return to the app to see the result; you can close this tab." in page.text


def test_browser_sign_in__link_before_browser(default_org: PracticeOrg) -> None:
    events: list[tuple[str, str]] = []
    browser = HeadlessBrowser(default_org)

    def open_browser(url: str) -> bool:
        events.append(("browser", url))
        return browser(url)

    connect_with_browser(
        default_org.base_url,
        default_org.client_id,
        ca_bundle=default_org.ca_bundle,
        open_browser=open_browser,
        callback_ports=(0,),
        login_hint=default_org.admin_username,
        timeout=30,
        on_waiting=lambda url: events.append(("waiting", url)),
    )

    assert [kind for kind, _ in events] == ["waiting", "browser"]
    assert events[0][1] == events[1][1]
    assert "code_challenge_method=S256" in events[0][1]


def test_browser_sign_in__wrong_verifier_is_invalid_grant(
    default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pkce_with_another_verifier() -> Pkce:
        sent, unrelated = new_pkce(), new_pkce()
        return Pkce(verifier=unrelated.verifier, challenge=sent.challenge, state=sent.state)

    monkeypatch.setattr(connection_module, "new_pkce", pkce_with_another_verifier)

    with pytest.raises(OAuthError) as raised:
        sign_in(default_org, HeadlessBrowser(default_org))

    assert raised.value.error == "invalid_grant"
    assert raised.value.description == "invalid code verifier"
    assert explain(raised.value).error_code == "SIGN_IN_AGAIN"


def test_browser_sign_in__state_mismatch_shows_failure_page(default_org: PracticeOrg) -> None:
    browser = HeadlessBrowser(
        default_org, edit_callback=lambda url: replace_query_value(url, "state", "forged")
    )

    # The callback with the wrong state is ignored, so the sign-in waits until its timeout.
    with pytest.raises(OAuthError) as raised:
        sign_in(default_org, browser, timeout=0.5)

    assert raised.value.error == "timeout"
    page = browser.callback_pages[0]
    assert page.status_code == 400
    assert "Sign-in failed" in page.text
    assert "did not carry the state this app sent" in page.text
    assert "Return to Backstory Desktop" in page.text
    assert "Sign-in received" not in page.text


def test_browser_sign_in__error_callback_shows_failure_page(default_org: PracticeOrg) -> None:
    browser = HeadlessBrowser(default_org)

    with pytest.raises(OAuthError) as raised:
        sign_in(default_org, browser, login_hint="nobody@example.invalid")

    assert raised.value.error == "access_denied"
    page = browser.callback_pages[0]
    assert "Sign-in failed" in page.text
    assert "access_denied" in page.text


def test_browser_sign_in__only_first_callback_counts(default_org: PracticeOrg) -> None:
    browser = HeadlessBrowser(default_org, callbacks_per_sign_in=2)

    connection = sign_in(default_org, browser)

    assert connection.username == default_org.admin_username
    first, second = browser.callback_pages
    assert first.status_code == 200
    assert second.status_code == 409
    assert "already received its answer" in second.text


def test_browser_sign_in__busy_port_skipped(
    default_org: PracticeOrg, busy_port: int
) -> None:
    next_port = free_port()
    links: list[str] = []

    connection = sign_in(
        default_org,
        HeadlessBrowser(default_org),
        callback_ports=(busy_port, next_port),
        on_waiting=links.append,
    )

    assert connection.username == default_org.admin_username
    assert f"localhost%3A{next_port}%2Fcallback" in links[0]
    assert f"localhost%3A{busy_port}" not in links[0]


def test_browser_sign_in__all_ports_busy_names_them(
    default_org: PracticeOrg, busy_port: int, second_busy_port: int
) -> None:
    browser = HeadlessBrowser(default_org)

    with pytest.raises(CallbackPortBusy) as raised:
        sign_in(default_org, browser, callback_ports=(busy_port, second_busy_port))

    assert raised.value.error == "port_in_use"
    assert raised.value.ports == (busy_port, second_busy_port)
    message = str(raised.value)
    assert f"{busy_port}, {second_busy_port}" in message
    assert "close a program using them" in message
    assert "register another callback URL" in message
    assert browser.opened == []
    problem = explain(raised.value)
    assert problem.kind is ProblemKind.FIXABLE
    assert problem.error_code == "port_in_use"


def test_loopback__default_ports_are_the_registered_ones() -> None:
    assert DEFAULT_CALLBACK_PORTS == (7317, 7318, 7319)
    with pytest.raises(ValueError):
        open_loopback_receiver(())


def test_browser_sign_in__timeout(default_org: PracticeOrg) -> None:
    with pytest.raises(OAuthError) as raised:
        sign_in(default_org, lambda url: True, timeout=0.4)
    assert raised.value.error == "timeout"
    assert "timed out" in str(raised.value)


def test_browser_sign_in__cancel_while_waiting(default_org: PracticeOrg) -> None:
    cancel = threading.Event()
    opened = threading.Event()

    def open_browser(url: str) -> bool:
        opened.set()
        return True

    def cancel_once_waiting() -> None:
        opened.wait(30)
        cancel.set()

    canceller = threading.Thread(target=cancel_once_waiting)
    canceller.start()
    try:
        with pytest.raises(Cancelled):
            sign_in(default_org, open_browser, cancel=cancel)
    finally:
        canceller.join()


def test_browser_sign_in__listener_closed_afterwards(default_org: PracticeOrg) -> None:
    links: list[str] = []
    port = free_port()
    sign_in(default_org, HeadlessBrowser(default_org), callback_ports=(port,), on_waiting=links.append)

    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/callback", timeout=5)


def test_browser_sign_in__old_port_keyword_still_works(default_org: PracticeOrg) -> None:
    port = free_port()
    links: list[str] = []

    connection = connect_with_browser(
        default_org.base_url,
        default_org.client_id,
        ca_bundle=default_org.ca_bundle,
        open_browser=HeadlessBrowser(default_org),
        port=port,
        login_hint=default_org.admin_username,
        timeout=30,
        on_waiting=links.append,
    )

    assert connection.username == default_org.admin_username
    assert f"localhost%3A{port}%2Fcallback" in links[0]


def test_browser_sign_in__registered_urls_next_port(tmp_path: Path, busy_port: int) -> None:
    next_port = free_port()
    registered = [f"http://localhost:{port}/callback" for port in (busy_port, next_port)]
    with PracticeOrg(tmp_path / "registered.sqlite", callback_urls=registered) as org:
        connection = sign_in(org, HeadlessBrowser(org), callback_ports=(busy_port, next_port))

    assert connection.username == org.admin_username


def test_browser_sign_in__unregistered_port_gets_no_callback(tmp_path: Path) -> None:
    registered = [f"http://localhost:{free_port()}/callback"]
    other_port = free_port()
    answers: list[requests.Response] = []

    def open_browser(url: str) -> bool:
        with requests.Session() as http:
            http.trust_env = False
            answers.append(http.get(url, allow_redirects=False, verify=str(org.ca_bundle), timeout=30))
        return True

    org = PracticeOrg(tmp_path / "registered.sqlite", callback_urls=registered)
    with org, pytest.raises(OAuthError) as raised:
        sign_in(org, open_browser, callback_ports=(other_port,), timeout=0.4)

    assert raised.value.error == "timeout"
    assert answers[0].status_code != 302
    assert answers[0].json()["error"] == "redirect_uri_mismatch"
