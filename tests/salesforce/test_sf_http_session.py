"""The HTTP session: CA bundle over the environment, timeouts, client header, safe retries.

A recording transport adapter replaces the network here, and the practice org
tests repeat the CA bundle case over real TLS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

from backstory_desktop import __version__
from backstory_desktop.salesforce.http import (
    DEFAULT_TIMEOUT,
    IdempotentOnlyRetry,
    build_session,
)

BUNDLE = Path("/opt/profile/practice-ca.pem")


class RecordingAdapter(BaseAdapter):
    """A transport that records what requests passes to it and returns 200."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append({"request": request, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


def recording_session(ca_bundle: Path | None) -> tuple[requests.Session, RecordingAdapter]:
    session = build_session(ca_bundle)
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    return session, adapter


@pytest.fixture
def ca_variables(monkeypatch: pytest.MonkeyPatch) -> str:
    other = "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other)
    monkeypatch.setenv("CURL_CA_BUNDLE", other)
    return other


def test_session__profile_bundle_wins_over_environment(ca_variables: str) -> None:
    session, adapter = recording_session(BUNDLE)
    session.get("https://127.0.0.1:1/services/data/")
    assert adapter.sent[0]["verify"] == str(BUNDLE)


def test_session__plain_requests_would_use_the_environment(ca_variables: str) -> None:
    # The behaviour the session corrects: requests prefers the variables.
    session = requests.Session()
    session.verify = str(BUNDLE)
    settings = session.merge_environment_settings("https://127.0.0.1:1/", {}, None, None, None)
    assert settings["verify"] == ca_variables


def test_session__without_profile_bundle_environment_applies(ca_variables: str) -> None:
    session, adapter = recording_session(None)
    session.get("https://127.0.0.1:1/services/data/")
    assert adapter.sent[0]["verify"] == ca_variables


def test_session__call_verify_wins_over_profile(ca_variables: str) -> None:
    session, adapter = recording_session(BUNDLE)
    session.get("https://127.0.0.1:1/", verify="/tmp/other.pem")
    assert adapter.sent[0]["verify"] == "/tmp/other.pem"


def test_session__environment_proxies_kept(
    ca_variables: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session, adapter = recording_session(BUNDLE)
    session.get("https://login.salesforce.com/services/data/")
    assert adapter.sent[0]["proxies"]["https"] == "http://proxy.corp.example:3128"
    assert adapter.sent[0]["verify"] == str(BUNDLE)


def test_session__default_timeouts_on_every_request() -> None:
    session, adapter = recording_session(None)
    session.get("https://127.0.0.1:1/a")
    session.post("https://127.0.0.1:1/b", json={})
    session.request("PATCH", "https://127.0.0.1:1/c", timeout=None)
    assert [sent["timeout"] for sent in adapter.sent] == [DEFAULT_TIMEOUT] * 3


def test_session__call_timeout_kept() -> None:
    session, adapter = recording_session(None)
    session.get("https://127.0.0.1:1/a", timeout=(1, 2))
    assert adapter.sent[0]["timeout"] == (1, 2)


def test_session__client_header_names_the_app() -> None:
    session, adapter = recording_session(None)
    session.get("https://127.0.0.1:1/a", headers={"Authorization": "Bearer x"})
    headers = adapter.sent[0]["request"].headers
    assert headers["Sforce-Call-Options"] == f"client=BackstoryDesktop/{__version__}"
    assert headers["Authorization"] == "Bearer x"


def test_session__retries_configured_for_get_and_head_only() -> None:
    session = build_session()
    retry = session.get_adapter("https://127.0.0.1/").max_retries
    assert isinstance(retry, IdempotentOnlyRetry)
    assert set(retry.allowed_methods or ()) == {"GET", "HEAD"}
    assert set(retry.status_forcelist or ()) == {502, 503, 504}


def test_retry__gateway_error_retried_for_get_not_patch() -> None:
    retry = build_session().get_adapter("https://127.0.0.1/").max_retries
    assert retry.is_retry("GET", 503)
    assert not retry.is_retry("PATCH", 503)
    assert not retry.is_retry("POST", 502)
    assert not retry.is_retry("GET", 500)


def _connection_error() -> NewConnectionError:
    return NewConnectionError(None, "connection refused")  # type: ignore[arg-type]


def test_retry__connection_error_retried_for_get() -> None:
    retry = build_session().get_adapter("https://127.0.0.1/").max_retries
    following = retry.increment("GET", "/x", error=_connection_error())
    assert following.connect == retry.connect - 1


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_retry__connection_error_not_retried_for_writes(method: str) -> None:
    retry = build_session().get_adapter("https://127.0.0.1/").max_retries
    with pytest.raises(MaxRetryError):
        retry.increment(method, "/x", error=_connection_error())


def test_retry__read_timeout_on_patch_raised_as_is() -> None:
    retry = build_session().get_adapter("https://127.0.0.1/").max_retries
    error = ReadTimeoutError(None, "/x", "read timed out")  # type: ignore[arg-type]
    with pytest.raises(ReadTimeoutError):
        retry.increment("PATCH", "/x", error=error)
