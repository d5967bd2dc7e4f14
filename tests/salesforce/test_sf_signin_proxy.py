"""Proxies named by HTTPS_PROXY carry the sign-in and API calls, and TLS is still verified end to end."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import requests

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import connect_practice_org, connect_with_browser
from backstory_desktop.salesforce.errors import explain
from backstory_desktop.salesforce.http import build_session
from tests.salesforce.headless_browser import HeadlessBrowser

BUFFER_BYTES = 65536


class ConnectTunnel:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that tunnels only to 127.0.0.1.

    It records each CONNECT target, so a test can tell that a request went
    through it. The TLS handshake passes through untouched.
    """

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        # accept() wakes up now and then to see whether the tunnel is closing.
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._stopping.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(BUFFER_BYTES)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host != "127.0.0.1":
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.targets.append(target)
            with socket.create_connection((host, int(port)), timeout=30) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        while not self._stopping.is_set():
            readable, _, _ = select.select(list(peers), [], [], 0.2)
            for source in readable:
                try:
                    data = source.recv(BUFFER_BYTES)
                    if data:
                        peers[source].sendall(data)
                except ConnectionError:
                    data = b""  # a peer that rejects the TLS handshake may reset the connection
                if not data:
                    return


@pytest.fixture
def tunnel(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectTunnel]:
    """A CONNECT proxy set in HTTPS_PROXY, with NO_PROXY cleared so 127.0.0.1 uses it."""
    proxy = ConnectTunnel()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    try:
        yield proxy
    finally:
        proxy.close()


def org_target(org: PracticeOrg) -> str:
    return org.base_url.removeprefix("https://")


def test_proxy__sign_in_and_query_go_through_it(default_org: PracticeOrg, tunnel: ConnectTunnel) -> None:
    connection = connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.admin_username, default_org.client_id
    )
    rows = list(connection.query_all("SELECT Id FROM User"))

    assert rows
    assert connection.username == default_org.admin_username
    assert org_target(default_org) in tunnel.targets


def test_proxy__browser_sign_in_uses_it(
    default_org: PracticeOrg, tunnel: ConnectTunnel
) -> None:
    connection = connect_with_browser(
        default_org.base_url,
        default_org.client_id,
        ca_bundle=default_org.ca_bundle,
        open_browser=HeadlessBrowser(default_org),
        callback_ports=(0,),
        login_hint=default_org.admin_username,
        timeout=30,
    )

    assert connection.username == default_org.admin_username
    # The headless browser ignores proxies, so every tunnel here is the app's own.
    assert tunnel.targets
    assert set(tunnel.targets) == {org_target(default_org)}


def test_proxy__tls_still_verified_through_tunnel(default_org: PracticeOrg, tunnel: ConnectTunnel) -> None:
    session = build_session(Path(certifi.where()))

    with pytest.raises(requests.exceptions.SSLError) as raised:
        session.get(f"{default_org.base_url}/services/data/")

    assert org_target(default_org) in tunnel.targets
    assert explain(raised.value).error_code == "CERTIFICATE_VERIFY_FAILED"
    assert session.verify == certifi.where()


def test_proxy__refusing_proxy_is_explained(
    default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.closing(socket.create_server(("127.0.0.1", 0))) as silent:
        port = silent.getsockname()[1]
    # Nothing listens on the port any more, so the proxy connection is refused.
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    session = build_session(default_org.ca_bundle)

    with pytest.raises(requests.exceptions.ProxyError) as raised:
        session.get(f"{default_org.base_url}/services/data/")

    problem = explain(raised.value)
    assert problem.error_code == "PROXY_ERROR"
    assert "HTTPS_PROXY" in problem.sentence


def test_session__verification_cannot_be_switched_off(
    default_org: PracticeOrg, tunnel: ConnectTunnel
) -> None:
    session = build_session(default_org.ca_bundle)
    with pytest.raises(ValueError, match="cannot be switched off"):
        session.get(f"{default_org.base_url}/services/data/", verify=False)

    session.verify = False
    with pytest.raises(ValueError, match="cannot be switched off"):
        session.get(f"{default_org.base_url}/services/data/")

    assert tunnel.targets == []
