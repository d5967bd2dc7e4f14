"""OAuth web-server flow with PKCE, refresh-token rotation and revocation at the practice org's login host."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.salesforce.connection import connect_practice_org
from tests.practice_org.practice_login import (
    API_VERSION,
    REDIRECT_URI,
    Login,
    authorize,
    https_session,
    login,
    pkce_pair,
)

# restforce spec/fixtures/refresh_error_response.json, which matches Salesforce's
# own example in Help, "OAuth 2.0 Authorization Errors".
EXPIRED_REFRESH_TOKEN = {"error": "invalid_grant", "error_description": "expired access/refresh token"}

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def token_request(org: PracticeOrg, **form: str) -> tuple[int, dict[str, Any]]:
    response = https_session(org).post(f"{org.base_url}/services/oauth2/token",
                                       data={"client_id": org.client_id, **form})
    return response.status_code, response.json()


def refresh(org: PracticeOrg, refresh_token: str) -> tuple[int, dict[str, Any]]:
    return token_request(org, grant_type="refresh_token", refresh_token=refresh_token)


def revoke(org: PracticeOrg, token: str) -> requests.Response:
    return https_session(org).post(f"{org.base_url}/services/oauth2/revoke", data={"token": token})


def salesforce(org: PracticeOrg, access_token: str) -> Salesforce:
    return Salesforce(instance_url=org.base_url, session_id=access_token,
                      session=https_session(org), version=API_VERSION)


def authorize_params(org: PracticeOrg, **overrides: str) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": org.client_id, "redirect_uri": REDIRECT_URI,
              "code_challenge": challenge, "code_challenge_method": "S256", "state": "s9",
              "login_hint": org.admin_username}
    params.update(overrides)
    return params


def open_authorize(org: PracticeOrg, params: dict[str, str], *,
                   browser: bool = False) -> requests.Response:
    headers = {"Accept": BROWSER_ACCEPT} if browser else {}
    return https_session(org).get(f"{org.base_url}/services/oauth2/authorize", params=params,
                                  headers=headers, allow_redirects=False)


def redirect_query(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)


# -- token endpoint -----------------------------------------------------------


def test_token__wrong_verifier_is_invalid_grant(default_org: PracticeOrg) -> None:
    _verifier, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    code = authorize(default_org, https_session(default_org), default_org.admin_username,
                     challenge)

    status, body = token_request(default_org, grant_type="authorization_code", code=code,
                                 code_verifier=other_verifier, redirect_uri=REDIRECT_URI)

    assert status == 400
    assert body["error"] == "invalid_grant"


def test_token__code_works_only_once(default_org: PracticeOrg) -> None:
    verifier, challenge = pkce_pair()
    code = authorize(default_org, https_session(default_org), default_org.admin_username,
                     challenge)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI}

    first, _ = token_request(default_org, **form)
    second, body = token_request(default_org, **form)

    assert first == 200
    assert second == 400
    assert body["error"] == "invalid_grant"


def test_refresh__response_names_instance_and_identity(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)

    status, body = refresh(default_org, client.refresh_token)

    assert status == 200
    assert body["instance_url"] == default_org.base_url
    assert body["id"].startswith(f"{default_org.base_url}/id/00D")
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("00D")


def test_refresh__response_is_not_cached(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)
    url = f"{default_org.base_url}/services/oauth2/token"
    form = {"client_id": default_org.client_id, "grant_type": "refresh_token"}

    renewed = https_session(default_org).post(url, data={**form, "refresh_token": client.refresh_token})
    rejected = https_session(default_org).post(url, data={**form, "refresh_token": "nope"})

    assert renewed.headers["Cache-Control"] == "no-store"
    assert rejected.headers["Cache-Control"] == "no-store"


def test_refresh__rotates_the_refresh_token(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)

    _status, first = refresh(default_org, client.refresh_token)
    reused_status, reused = refresh(default_org, client.refresh_token)
    next_status, _ = refresh(default_org, first["refresh_token"])

    assert first["refresh_token"] != client.refresh_token
    assert reused_status == 400
    assert reused == EXPIRED_REFRESH_TOKEN
    assert next_status == 200


def test_refresh__earlier_access_token_keeps_working(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)

    _status, renewed = refresh(default_org, client.refresh_token)

    assert client.sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    assert salesforce(default_org, renewed["access_token"]).query(
        "SELECT Id FROM User LIMIT 1")["totalSize"] == 1


def test_refresh__new_token_works_after_sessions_expire(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)
    default_org.expire_sessions()
    expired = client.http.get(client.url("limits"), headers=client.headers())

    _status, body = refresh(default_org, client.refresh_token)
    renewed = client.http.get(client.url("limits"),
                              headers={"Authorization": f"Bearer {body['access_token']}"})

    assert expired.status_code == 401
    assert renewed.status_code == 200


def test_refresh__unknown_token_is_invalid_grant(default_org: PracticeOrg) -> None:
    status, body = refresh(default_org, "nope")

    assert status == 400
    assert body == EXPIRED_REFRESH_TOKEN


# -- revoke endpoint ----------------------------------------------------------


def test_revoke__refresh_token_ends_its_access_tokens(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)
    _status, renewed = refresh(default_org, client.refresh_token)

    response = revoke(default_org, renewed["refresh_token"])

    assert response.status_code == 200
    with pytest.raises(SalesforceExpiredSession):
        client.sf.query("SELECT Id FROM User LIMIT 1")
    with pytest.raises(SalesforceExpiredSession):
        salesforce(default_org, renewed["access_token"]).query("SELECT Id FROM User LIMIT 1")
    assert refresh(default_org, renewed["refresh_token"]) == (400, EXPIRED_REFRESH_TOKEN)


def test_revoke__database_without_token_families(tmp_path: Path) -> None:
    database = tmp_path / "practice.db"
    with PracticeOrg(database):
        pass
    with sqlite3.connect(database) as connection:
        connection.execute("ALTER TABLE oauth_tokens DROP COLUMN family")

    with PracticeOrg(database) as org:
        client = login(org, org.admin_username)
        response = revoke(org, client.refresh_token)

        assert response.status_code == 200
        with pytest.raises(SalesforceExpiredSession):
            client.sf.query("SELECT Id FROM User LIMIT 1")


def test_revoke__access_token_ends_only_itself(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)

    response = revoke(default_org, client.access_token)
    status, renewed = refresh(default_org, client.refresh_token)

    assert response.status_code == 200
    with pytest.raises(SalesforceExpiredSession):
        client.sf.query("SELECT Id FROM User LIMIT 1")
    assert status == 200
    assert salesforce(default_org, renewed["access_token"]).query(
        "SELECT Id FROM User LIMIT 1")["totalSize"] == 1


def test_revoke__leaves_other_authorizations_alone(default_org: PracticeOrg) -> None:
    revoked = login(default_org, default_org.admin_username)
    other = login(default_org, default_org.admin_username)

    revoke(default_org, revoked.refresh_token)

    assert other.sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    assert refresh(default_org, other.refresh_token)[0] == 200


def test_revoke__get_with_token_parameter(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)

    response = https_session(default_org).get(f"{default_org.base_url}/services/oauth2/revoke",
                                              params={"token": client.refresh_token})

    assert response.status_code == 200
    assert refresh(default_org, client.refresh_token) == (400, EXPIRED_REFRESH_TOKEN)


@pytest.mark.parametrize("token", ["not-a-token", ""])
def test_revoke__unknown_token_is_invalid_token(default_org: PracticeOrg, token: str) -> None:
    response = revoke(default_org, token)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_token"


def test_revoke__used_refresh_token_is_invalid_token(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)
    refresh(default_org, client.refresh_token)

    response = revoke(default_org, client.refresh_token)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_token"


# -- authorize endpoint -------------------------------------------------------


def test_authorize__headless_login_hint_redirects_with_code(default_org: PracticeOrg) -> None:
    query = redirect_query(open_authorize(default_org, authorize_params(default_org)))

    assert query["state"] == ["s9"]
    assert query["code"][0]


def test_authorize__browser_gets_consent_page(default_org: PracticeOrg) -> None:
    response = open_authorize(default_org, authorize_params(default_org), browser=True)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<form method="post" action="/services/oauth2/authorize">' in response.text
    assert 'value="approve"' in response.text
    assert 'value="deny"' in response.text
    assert f'value="{default_org.admin_username}" checked' in response.text
    assert '<input type="hidden" name="state" value="s9">' in response.text


def test_authorize__page_lists_active_users_only(admin: Login) -> None:
    params = authorize_params(admin.org)
    del params["login_hint"]
    inactive = admin.sf.query("SELECT Username FROM User WHERE IsActive = false")["records"]
    active = admin.sf.query("SELECT Username FROM User WHERE IsActive = true")["records"]

    page = open_authorize(admin.org, params).text

    assert inactive
    assert all(f'value="{user["Username"]}"' not in page for user in inactive)
    assert all(f'value="{user["Username"]}"' in page for user in active)


def test_authorize__approve_button_issues_a_working_code(default_org: PracticeOrg) -> None:
    verifier, challenge = pkce_pair()
    form = authorize_params(default_org, code_challenge=challenge)
    del form["login_hint"]
    form.update(username=default_org.integration_username, decision="approve")

    response = https_session(default_org).post(
        f"{default_org.base_url}/services/oauth2/authorize", data=form, allow_redirects=False)
    query = redirect_query(response)
    status, tokens = token_request(default_org, grant_type="authorization_code",
                                   code=query["code"][0], code_verifier=verifier,
                                   redirect_uri=REDIRECT_URI)

    assert query["state"] == ["s9"]
    assert status == 200
    identity = https_session(default_org).get(
        tokens["id"], headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert identity["username"] == default_org.integration_username


def test_authorize__deny_button_redirects_access_denied(default_org: PracticeOrg) -> None:
    form = authorize_params(default_org, decision="deny")

    response = https_session(default_org).post(
        f"{default_org.base_url}/services/oauth2/authorize", data=form, allow_redirects=False)
    query = redirect_query(response)

    assert query["error"] == ["access_denied"]
    assert query["error_description"] == ["end-user denied authorization"]
    assert query["state"] == ["s9"]
    assert "code" not in query


def test_authorize__unknown_client_is_not_redirected(default_org: PracticeOrg) -> None:
    response = open_authorize(default_org, authorize_params(default_org, client_id="Other"))

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json() == {"error": "invalid_client_id",
                               "error_description": "client identifier invalid"}


@pytest.mark.parametrize("redirect_uri", ["https://attacker.example/cb",
                                          "http://10.0.0.1/callback"])
def test_authorize__foreign_redirect_uri_is_not_redirected(
    default_org: PracticeOrg, redirect_uri: str
) -> None:
    params = authorize_params(default_org, redirect_uri=redirect_uri)

    headless = open_authorize(default_org, params)
    browser = open_authorize(default_org, params, browser=True)

    assert headless.status_code == 400
    assert "Location" not in headless.headers
    assert headless.json()["error"] == "redirect_uri_mismatch"
    assert browser.status_code == 400
    assert "Location" not in browser.headers
    assert "redirect_uri_mismatch" in browser.text


def test_authorize__missing_redirect_uri_is_not_redirected(default_org: PracticeOrg) -> None:
    params = authorize_params(default_org)
    del params["redirect_uri"]

    response = open_authorize(default_org, params)

    assert response.status_code == 400
    assert response.json()["error"] == "redirect_uri_missing"


def test_authorize__missing_challenge_redirects_with_state(default_org: PracticeOrg) -> None:
    params = authorize_params(default_org)
    del params["code_challenge"]

    query = redirect_query(open_authorize(default_org, params))

    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s9"]


def test_authorize__token_response_type_redirects_unsupported(default_org: PracticeOrg) -> None:
    query = redirect_query(open_authorize(default_org,
                                          authorize_params(default_org, response_type="token")))

    assert query["error"] == ["unsupported_response_type"]
    assert query["state"] == ["s9"]


def test_authorize__inactive_user_is_refused(admin: Login) -> None:
    inactive = admin.sf.query("SELECT Username FROM User WHERE IsActive = false")["records"][0]

    query = redirect_query(open_authorize(
        admin.org, authorize_params(admin.org, login_hint=inactive["Username"])))

    assert query["error"] == ["inactive_user"]
    assert query["state"] == ["s9"]
    assert "code" not in query


def test_refresh__product_connection_follows_rotation(default_org: PracticeOrg) -> None:
    connection = connect_practice_org(default_org.base_url, default_org.ca_bundle,
                                      default_org.admin_username, default_org.client_id)
    first_refresh_token = connection.tokens.refresh_token

    for _round in range(2):
        default_org.expire_sessions()
        assert list(connection.query_all("SELECT Id FROM User LIMIT 1"))

    assert connection.tokens.refresh_token != first_refresh_token
    assert refresh(default_org, str(first_refresh_token)) == (400, EXPIRED_REFRESH_TOKEN)
