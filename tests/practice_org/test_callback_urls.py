"""Registered callback URLs: the authorize request's redirect URI must match one exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from backstory_desktop.cli import build_parser
from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import https_session, pkce_pair

REGISTERED = "http://127.0.0.1:7317/callback"
ALSO_REGISTERED = "http://localhost:7318/callback"


@pytest.fixture(scope="module")
def registered_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    folder = tmp_path_factory.mktemp("callbacks")
    with PracticeOrg(folder / "practice.db", callback_urls=[REGISTERED, ALSO_REGISTERED]) as org:
        yield org


def authorize(org: PracticeOrg, http: requests.Session, redirect_uri: str, challenge: str = "c",
              *, browser: bool = False) -> requests.Response:
    headers = {"Accept": "text/html"} if browser else {}
    return http.get(f"{org.base_url}/services/oauth2/authorize", allow_redirects=False,
                    headers=headers, params={
                        "response_type": "code", "client_id": org.client_id,
                        "redirect_uri": redirect_uri, "code_challenge": challenge,
                        "state": "s1", "login_hint": org.admin_username})


def test_callback__registered_uri_is_redirected_with_code(registered_org: PracticeOrg) -> None:
    http = https_session(registered_org)
    verifier, challenge = pkce_pair()

    redirect = authorize(registered_org, http, ALSO_REGISTERED, challenge)
    location = redirect.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = http.post(f"{registered_org.base_url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": registered_org.client_id, "redirect_uri": ALSO_REGISTERED})

    assert redirect.status_code == 302
    assert location.startswith(ALSO_REGISTERED + "?")
    assert token.status_code == 200, token.text


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:7319/callback",
    "http://127.0.0.1:7317/callback/",
    "http://127.0.0.1:7317/other",
    "http://localhost:7317/callback",
    "https://127.0.0.1:7317/callback",
])
def test_callback__unregistered_uri_gets_mismatch_error(
    registered_org: PracticeOrg, redirect_uri: str
) -> None:
    response = authorize(registered_org, https_session(registered_org), redirect_uri)

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json() == {"error": "redirect_uri_mismatch",
                               "error_description": "redirect_uri must match configuration"}


def test_callback__browser_gets_mismatch_page(registered_org: PracticeOrg) -> None:
    response = authorize(registered_org, https_session(registered_org),
                         "http://127.0.0.1:9999/callback", browser=True)

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "error=redirect_uri_mismatch" in response.text


def test_callback__consent_form_mismatch_not_redirected(
    registered_org: PracticeOrg
) -> None:
    response = https_session(registered_org).post(
        f"{registered_org.base_url}/services/oauth2/authorize", allow_redirects=False, data={
            "response_type": "code", "client_id": registered_org.client_id,
            "redirect_uri": "http://127.0.0.1:9999/callback", "code_challenge": "c",
            "decision": "approve", "username": registered_org.admin_username})

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"] == "redirect_uri_mismatch"


def test_callback__token_step_needs_the_authorize_uri(registered_org: PracticeOrg) -> None:
    http = https_session(registered_org)
    verifier, challenge = pkce_pair()
    redirect = authorize(registered_org, http, REGISTERED, challenge)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]

    token = http.post(f"{registered_org.base_url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": registered_org.client_id, "redirect_uri": ALSO_REGISTERED})

    assert token.status_code == 400
    assert token.json()["error"] == "invalid_grant"


def test_callback__without_registration_any_loopback_uri_works(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as org:
        http = https_session(org)
        loopback = authorize(org, http, "http://127.0.0.1:54321/anything")
        remote = authorize(org, http, "https://app.example.com/callback")

    assert org.callback_urls is None
    assert loopback.status_code == 302
    assert remote.status_code == 400
    assert remote.json()["error"] == "redirect_uri_mismatch"


@pytest.mark.parametrize(("callback_urls", "message"), [
    ([], "empty"),
    (["http://127.0.0.1:7317/callback#part"], "fragment"),
    (["/callback"], "not an absolute URL"),
    ("http://127.0.0.1:7317/callback", "list of URLs"),
])
def test_callback__invalid_registration_is_rejected(
    tmp_path: Path, callback_urls: list[str] | str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PracticeOrg(tmp_path / "practice.db", callback_urls=callback_urls)


def test_serve_options__callback_url_repeats() -> None:
    args = build_parser().parse_args([
        "practice-org", "serve", "--callback-url", REGISTERED, "--callback-url", ALSO_REGISTERED])

    assert args.callback_urls == [REGISTERED, ALSO_REGISTERED]


def test_serve_options__no_callback_url_means_any_loopback() -> None:
    args = build_parser().parse_args(["practice-org", "serve"])

    assert args.callback_urls is None


def test_serve_options__invalid_callback_url_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["practice-org", "serve", "--callback-url", "http://x/cb#frag"])

    assert exited.value.code == 2
    assert "fragment" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="stops the server with SIGINT")
def test_serve__enforces_callback_urls(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "backstory_desktop", "practice-org", "serve",
               "--db", str(tmp_path / "practice.db"), "--callback-url", REGISTERED]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        printed = _read_until_ready(server)
        base_url = printed["Practice org"]
        http = requests.Session()
        http.trust_env = False
        http.verify = printed["CA bundle"]
        params = {"response_type": "code", "client_id": printed["OAuth client"],
                  "code_challenge": "c", "login_hint": printed["Admin username"]}
        matched = http.get(f"{base_url}/services/oauth2/authorize", allow_redirects=False,
                           params={**params, "redirect_uri": REGISTERED})
        other = http.get(f"{base_url}/services/oauth2/authorize", allow_redirects=False,
                         params={**params, "redirect_uri": "http://127.0.0.1:7318/callback"})
    finally:
        _stop(server, signal.SIGINT)

    assert printed["Callback URLs"] == REGISTERED
    assert matched.status_code == 302
    assert other.status_code == 400
    assert other.json()["error"] == "redirect_uri_mismatch"


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve__stops_cleanly_even_with_sigint_ignored(tmp_path: Path, stop_signal: int) -> None:
    database = tmp_path / "practice.db"
    command = [sys.executable, "-m", "backstory_desktop", "practice-org", "serve", "--db", str(database)]

    def ignore_interrupts() -> None:
        # As a shell does for a job it starts in the background.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              preexec_fn=ignore_interrupts)
    try:
        _read_until_ready(server)
    finally:
        output, _errors = _stop(server, stop_signal)

    assert server.returncode == 0
    assert "Stopping the practice org." in output
    with PracticeOrg(database):  # the stopped server released its database lock
        pass


def _stop(server: subprocess.Popen[str], stop_signal: int) -> tuple[str, str]:
    """Send ``stop_signal`` and wait; a server that does not stop is killed and reported."""
    server.send_signal(stop_signal)
    try:
        return server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()
        raise AssertionError(f"the practice org did not stop on signal {stop_signal}") from None


def _read_until_ready(server: subprocess.Popen[str]) -> dict[str, str]:
    """Return the "Label: value" lines the server prints before its Ctrl+C hint."""
    assert server.stdout is not None
    printed: dict[str, str] = {}
    for line in server.stdout:
        if line.startswith("Press Ctrl+C"):
            return printed
        label, _, value = line.partition(":")
        printed[label.strip()] = value.strip()
    raise AssertionError(f"the server stopped before it was ready: {printed}, "
                         f"{server.stderr.read() if server.stderr else ''}")
