"""Session renewal against the practice org.

Covers rotation, storing tokens before use, failed refresh, expiry mid-work and bulk2.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession

from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import (
    OrgConnection,
    connect_practice_org,
    resume_with_refresh_token,
)
from backstory_desktop.salesforce.errors import ProblemKind, SignInRequired
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.oauth import OAuthError, TokenSet, refresh_tokens, revoke_token

PRACTICE_SERVER_LOGGER = "backstory_desktop.practice_org.server"
TOKEN_REQUEST = "POST /services/oauth2/token"


def connect(org: PracticeOrg, **options: object) -> OrgConnection:
    connection = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
    for name, value in options.items():
        setattr(connection, name, value)
    return connection


def token_requests(caplog: pytest.LogCaptureFixture) -> int:
    """Count the token endpoint requests the practice org served, from its request log."""
    return sum(
        1
        for record in caplog.records
        if record.name == PRACTICE_SERVER_LOGGER and record.getMessage().startswith(TOKEN_REQUEST)
    )


@pytest.fixture
def org_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=PRACTICE_SERVER_LOGGER)
    return caplog


def test_refresh__rotated_token_replaces_the_old_one(default_org: PracticeOrg) -> None:
    stored: list[TokenSet] = []
    connection = connect(default_org, on_tokens_refreshed=stored.append)
    first_refresh_token = connection.tokens.refresh_token
    assert first_refresh_token

    default_org.expire_sessions()
    assert connection.limits()["DailyApiRequests"]["Max"] > 0

    assert len(stored) == 1
    assert stored[0].refresh_token
    assert stored[0].refresh_token != first_refresh_token
    assert connection.tokens.refresh_token == stored[0].refresh_token
    with pytest.raises(OAuthError) as raised:
        refresh_tokens(
            build_session(default_org.ca_bundle),
            default_org.base_url,
            default_org.client_id,
            first_refresh_token,
        )
    assert raised.value.error == "invalid_grant"


def test_refresh__tokens_stored_before_new_token_is_used(default_org: PracticeOrg) -> None:
    seen_at_callback: list[tuple[bool, int]] = []
    connection = connect(default_org)

    def store(tokens: TokenSet) -> None:
        in_use = connection.tokens.access_token == tokens.access_token
        seen_at_callback.append((in_use, default_org.request_count))

    connection.on_tokens_refreshed = store
    default_org.expire_sessions()
    connection.request("GET", "limits/")

    assert len(seen_at_callback) == 1
    in_use, requests_at_callback = seen_at_callback[0]
    assert in_use is False
    # Only the replayed request reached the org after the callback.
    assert default_org.request_count == requests_at_callback + 1


def test_refresh__failing_callback_does_not_stop_the_replay(
    default_org: PracticeOrg, caplog: pytest.LogCaptureFixture
) -> None:
    def store(tokens: TokenSet) -> None:
        raise OSError("keyring unavailable")

    connection = connect(default_org, on_tokens_refreshed=store)
    default_org.expire_sessions()
    caplog.set_level(logging.WARNING, logger="backstory_desktop.salesforce.connection")

    assert connection.limits()["DailyApiRequests"]["Max"] > 0
    assert "Storing the renewed tokens failed" in caplog.text
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_refresh__sf_rebuilt_with_new_session(default_org: PracticeOrg) -> None:
    connection = connect(default_org)
    old_sf = connection.sf
    default_org.expire_sessions()

    connection.request("GET", "limits/")

    assert connection.sf is not old_sf
    assert connection.sf.session_id == connection.tokens.access_token


def test_refresh__revoked_token_needs_sign_in_once(
    default_org: PracticeOrg, org_log: pytest.LogCaptureFixture
) -> None:
    connection = connect(default_org)
    refresh_token = connection.tokens.refresh_token
    assert refresh_token
    revoke_token(connection.session, default_org.base_url, refresh_token)
    tokens_before = token_requests(org_log)

    with pytest.raises(SignInRequired) as first:
        connection.request("GET", "limits/")
    api_calls_after_first = default_org.request_count
    with pytest.raises(SignInRequired) as second:
        connection.request("GET", "limits/")

    assert token_requests(org_log) == tokens_before + 1
    assert default_org.request_count == api_calls_after_first
    assert first.value.kind is ProblemKind.FIXABLE
    assert first.value.error_code == "SIGN_IN_AGAIN"
    assert "invalid_grant" in first.value.sentence
    assert default_org.admin_username in first.value.sentence
    assert first.value.sentence.endswith("sign in again.")
    assert second.value.error_code == "SIGN_IN_AGAIN"


def test_refresh__expired_without_refresh_token_needs_sign_in(
    default_org: PracticeOrg, org_log: pytest.LogCaptureFixture
) -> None:
    signed_in = connect(default_org)
    tokens = TokenSet(
        access_token=signed_in.tokens.access_token,
        refresh_token=None,
        instance_url=signed_in.tokens.instance_url,
        id_url=signed_in.tokens.id_url,
        issued_at="",
    )
    connection = OrgConnection(
        build_session(default_org.ca_bundle),
        tokens,
        login_host=default_org.base_url,
        client_id=default_org.client_id,
    )
    default_org.expire_sessions()
    tokens_before = token_requests(org_log)

    with pytest.raises(SignInRequired) as raised:
        connection.request("GET", "limits/")

    assert "no refresh token" in raised.value.sentence
    assert token_requests(org_log) == tokens_before


def test_refresh__expiry_between_query_pages_continues(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "large.sqlite", scenario="large", tasks=2100) as org:
        stored: list[TokenSet] = []
        connection = connect(org, on_tokens_refreshed=stored.append)
        pages = connection.query_pages("SELECT Id FROM Task")

        first = next(pages)
        org.expire_sessions()
        rest = list(pages)

    assert first["done"] is False
    assert rest
    assert len(stored) == 1
    ids = [row["Id"] for page in [first, *rest] for row in page["records"]]
    assert len(ids) == first["totalSize"]
    assert len(set(ids)) == len(ids)


def test_refresh__session_expiring_after_calls_renews_each_time(default_org: PracticeOrg) -> None:
    stored: list[TokenSet] = []
    connection = connect(default_org, on_tokens_refreshed=stored.append)
    default_org.faults = FaultPlan(session_expires_after_calls=2)
    try:
        rows = [connection.request("GET", "limits/") for _ in range(5)]
    finally:
        default_org.faults = FaultPlan()

    assert len(rows) == 5
    assert len(stored) >= 2
    refresh_tokens_seen = [tokens.refresh_token for tokens in stored]
    assert len(set(refresh_tokens_seen)) == len(refresh_tokens_seen)


def test_bulk2__after_refresh_uses_new_token(default_org: PracticeOrg) -> None:
    connection = connect(default_org)
    handler_before = connection.bulk2
    default_org.expire_sessions()
    connection.request("GET", "limits/")

    csv_pages = list(connection.bulk2.User.query("SELECT Id FROM User"))

    assert csv_pages
    assert csv_pages[0].startswith('"Id"')
    with pytest.raises(SalesforceExpiredSession):
        list(handler_before.User.query("SELECT Id FROM User"))


def test_bulk2__expired_session_renewed_through_call_with_refresh(default_org: PracticeOrg) -> None:
    stored: list[TokenSet] = []
    connection = connect(default_org, on_tokens_refreshed=stored.append)
    default_org.expire_sessions()

    csv_pages = connection.call_with_refresh(
        lambda: list(connection.bulk2.User.query("SELECT Id FROM User"))
    )

    assert csv_pages[0].startswith('"Id"')
    assert len(stored) == 1


def test_resume__stores_first_tokens_before_use(default_org: PracticeOrg) -> None:
    refresh_token = connect(default_org).tokens.refresh_token
    assert refresh_token
    stored: list[TokenSet] = []

    connection = resume_with_refresh_token(
        default_org.base_url,
        default_org.client_id,
        refresh_token,
        ca_bundle=default_org.ca_bundle,
        on_tokens_refreshed=stored.append,
    )

    assert connection.username == default_org.admin_username
    assert len(stored) == 1
    assert stored[0].refresh_token == connection.tokens.refresh_token
    assert stored[0].refresh_token != refresh_token


def test_resume__revoked_token_needs_sign_in(default_org: PracticeOrg) -> None:
    refresh_token = connect(default_org).tokens.refresh_token
    assert refresh_token
    revoke_token(build_session(default_org.ca_bundle), default_org.base_url, refresh_token)

    with pytest.raises(SignInRequired) as raised:
        resume_with_refresh_token(
            default_org.base_url,
            default_org.client_id,
            refresh_token,
            ca_bundle=default_org.ca_bundle,
        )

    assert raised.value.error_code == "SIGN_IN_AGAIN"
    assert "invalid_grant" in raised.value.sentence


def test_revoke__ends_the_sign_in(
    default_org: PracticeOrg, org_log: pytest.LogCaptureFixture
) -> None:
    connection = connect(default_org)
    refresh_token = connection.tokens.refresh_token
    assert refresh_token

    connection.revoke()

    with pytest.raises(SignInRequired) as raised:
        connection.request("GET", "limits/")
    assert "signed out" in raised.value.sentence
    with pytest.raises(OAuthError) as refused:
        refresh_tokens(
            build_session(default_org.ca_bundle), default_org.base_url, default_org.client_id, refresh_token
        )
    assert refused.value.error == "invalid_grant"


def test_revoke_token__failure_is_logged_not_raised(
    default_org: PracticeOrg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backstory_desktop.salesforce.oauth")

    revoke_token(build_session(default_org.ca_bundle), default_org.base_url, "5Aep-not-a-token")

    assert "invalid_token" in caplog.text
    assert "5Aep-not-a-token" not in caplog.text
