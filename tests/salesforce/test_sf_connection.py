"""Signing in to the practice org and using the connection, over HTTPS on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import certifi
import pytest
import requests

from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import (
    API_VERSION,
    PRACTICE_REDIRECT_URI,
    OrgConnection,
    authorize_with_login_hint,
    connect_practice_org,
    connect_with_browser,
    open_connection,
)
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.oauth import OAuthError, TokenSet, exchange_code, new_pkce


def connect_practice(org: PracticeOrg, username: str) -> OrgConnection:
    """Sign in to ``org`` as ``username`` through the PKCE flow."""
    return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)


def test_connect__pkce_flow_signs_in_the_hinted_user(default_org: PracticeOrg) -> None:
    conn = connect_practice(default_org, default_org.admin_username)
    assert conn.username == default_org.admin_username
    assert conn.user_id.startswith("005")
    assert conn.org_id.startswith("00D")
    assert conn.instance_url == default_org.base_url
    assert conn.api_version == API_VERSION
    assert conn.tokens.refresh_token


def test_connect__browser_flow_with_loopback_callback(default_org: PracticeOrg) -> None:
    browser = build_session(default_org.ca_bundle)
    visited: list[str] = []

    def open_browser(url: str) -> None:
        visited.append(url)
        # Follows the 302 to the loopback listener, as a browser would.
        browser.get(url).raise_for_status()

    conn = connect_with_browser(
        default_org.base_url,
        default_org.client_id,
        ca_bundle=default_org.ca_bundle,
        open_browser=open_browser,
        callback_ports=(0,),
        login_hint=default_org.integration_username,
        timeout=30,
    )

    assert conn.username == default_org.integration_username
    assert len(visited) == 1
    assert "code_challenge_method=S256" in visited[0]


def test_connect__browser_flow_cancelled(default_org: PracticeOrg) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        connect_with_browser(
            default_org.base_url,
            default_org.client_id,
            ca_bundle=default_org.ca_bundle,
            open_browser=lambda url: None,
            callback_ports=(0,),
            cancel=cancel,
        )


def test_connect__wrong_verifier_is_invalid_grant(default_org: PracticeOrg) -> None:
    session = build_session(default_org.ca_bundle)
    pkce = new_pkce()
    code = authorize_with_login_hint(
        session,
        default_org.base_url,
        default_org.client_id,
        PRACTICE_REDIRECT_URI,
        pkce,
        default_org.admin_username,
    )
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            session,
            default_org.base_url,
            default_org.client_id,
            PRACTICE_REDIRECT_URI,
            code,
            new_pkce().verifier,
        )
    assert raised.value.error == "invalid_grant"
    problem = explain(raised.value)
    assert problem.kind is ProblemKind.FIXABLE
    assert "invalid_grant" in problem.sentence
    assert "sign in again" in problem.sentence


def test_connect__unknown_client_id_rejected(default_org: PracticeOrg) -> None:
    session = build_session(default_org.ca_bundle)
    with pytest.raises(OAuthError) as raised:
        authorize_with_login_hint(
            session,
            default_org.base_url,
            "NoSuchClient",
            PRACTICE_REDIRECT_URI,
            new_pkce(),
            default_org.admin_username,
        )
    assert raised.value.error == "invalid_client_id"


def test_connect__ca_bundle_variables_do_not_override_profile(
    default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())

    conn = connect_practice(default_org, default_org.admin_username)

    assert conn.username == default_org.admin_username
    assert next(conn.query_all("SELECT Id FROM User LIMIT 1"))["Id"].startswith("005")


def test_connect__plain_session_fails_with_those_variables(
    default_org: PracticeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control for the test above: requests alone lets the variable win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    session = requests.Session()
    session.verify = str(default_org.ca_bundle)
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{default_org.base_url}/services/data/", timeout=10)


def test_connect__certificate_error_names_the_bundle(default_org: PracticeOrg) -> None:
    session = build_session(Path(certifi.where()))
    with pytest.raises(requests.exceptions.SSLError) as raised:
        session.get(f"{default_org.base_url}/services/data/")
    problem = explain(raised.value)
    assert problem.error_code == "CERTIFICATE_VERIFY_FAILED"
    assert certifi.where() in problem.sentence


def test_connect__unserved_api_version_explained(default_org: PracticeOrg) -> None:
    conn = connect_practice(default_org, default_org.admin_username)
    pinned = OrgConnection(
        conn.session,
        conn.tokens,
        login_host=default_org.base_url,
        client_id=default_org.client_id,
        api_version="99.0",
    )
    with pytest.raises(SalesforceProblem) as raised:
        pinned.open()
    assert raised.value.kind is ProblemKind.FIXABLE
    assert "does not serve API version 99.0" in raised.value.sentence
    assert "66.0" in raised.value.sentence


def test_connection__expired_token_refreshed_once(default_org: PracticeOrg) -> None:
    conn = connect_practice(default_org, default_org.admin_username)
    stale = TokenSet(
        access_token="00D000000000001!revoked",
        refresh_token=conn.tokens.refresh_token,
        instance_url=conn.tokens.instance_url,
        id_url=conn.tokens.id_url,
        issued_at=conn.tokens.issued_at,
    )
    refreshed: list[TokenSet] = []
    stale_conn = open_connection(
        build_session(default_org.ca_bundle),
        stale,
        login_host=default_org.base_url,
        client_id=default_org.client_id,
        on_tokens_refreshed=refreshed.append,
    )

    rows = list(stale_conn.query_all("SELECT Id FROM User"))

    assert rows
    assert len(refreshed) == 1
    assert stale_conn.tokens.access_token != "00D000000000001!revoked"
    assert stale_conn.username == default_org.admin_username


def test_connection__failed_refresh_says_sign_in_again(default_org: PracticeOrg) -> None:
    conn = connect_practice(default_org, default_org.admin_username)
    stale = TokenSet(
        access_token="00D000000000001!revoked",
        refresh_token="5Aep-not-a-refresh-token",
        instance_url=conn.tokens.instance_url,
        id_url=conn.tokens.id_url,
        issued_at="",
    )
    stale_conn = OrgConnection(
        build_session(default_org.ca_bundle),
        stale,
        login_host=default_org.base_url,
        client_id=default_org.client_id,
    )
    with pytest.raises(SalesforceProblem) as raised:
        stale_conn.request("GET", "limits/")
    assert "invalid_grant" in raised.value.sentence
    assert "sign in again" in raised.value.sentence


def test_connection__request_and_limits(admin: OrgConnection) -> None:
    limits = admin.limits()
    assert limits["DailyApiRequests"]["Max"] > 0
    assert admin.api_usage is not None
    used, total = admin.api_usage
    assert 0 < used <= total


def test_connection__query_all_pages_and_strips_attributes(admin: OrgConnection) -> None:
    pages = list(admin.query_pages("SELECT Id, Owner.Name FROM Task", include_deleted=True))
    total = pages[0]["totalSize"]
    rows = list(admin.query_all("SELECT Id, Owner.Name FROM Task", include_deleted=True))
    assert len(rows) == total
    assert all("attributes" not in row for row in rows)
    assert all("attributes" not in (row.get("Owner") or {}) for row in rows)


def test_connection__tooling_query(admin: OrgConnection) -> None:
    rows = admin.tooling_query(
        "SELECT Id, DeveloperName FROM CustomField WHERE TableEnumOrId = 'Activity'"
    )
    assert "Message_ID" in {row["DeveloperName"] for row in rows}


def test_connection__logs_never_carry_tokens(
    default_org: PracticeOrg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = connect_practice(default_org, default_org.admin_username)
    list(conn.query_all("SELECT Id FROM User"))
    assert conn.tokens.access_token not in caplog.text
    assert conn.tokens.refresh_token is not None
    assert conn.tokens.refresh_token not in caplog.text
    assert default_org.admin_username in caplog.text
