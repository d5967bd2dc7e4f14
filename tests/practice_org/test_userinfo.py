"""GET /services/oauth2/userinfo: the UserInfo body for OAuth and SOAP sessions, and 403 for bad tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import REDIRECT_URI, https_session, login, pkce_pair
from tests.practice_org.soap_requests import PARTNER, full_password, login_result, post_login


@pytest.fixture(scope="module")
def info_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    with PracticeOrg(tmp_path_factory.mktemp("userinfo") / "practice.db") as org:
        yield org


def userinfo_url(org: PracticeOrg) -> str:
    return f"{org.base_url}/services/oauth2/userinfo"


def oauth_tokens(org: PracticeOrg, http: requests.Session, username: str) -> dict[str, str]:
    """Run the PKCE flow and return the token response body."""
    verifier, challenge = pkce_pair()
    redirect = http.get(f"{org.base_url}/services/oauth2/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": org.client_id, "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge, "login_hint": username})
    code = redirect.headers["Location"].split("code=", 1)[1].split("&", 1)[0]
    response = http.post(f"{org.base_url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": org.client_id, "redirect_uri": REDIRECT_URI})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def soap_session_id(org: PracticeOrg, http: requests.Session, username: str) -> str:
    response = post_login(org, http, username, full_password(org, username))
    session_id = login_result(response).findtext(f"{PARTNER}sessionId")
    assert session_id
    return session_id


def test_userinfo__oauth_token_gives_user_fields(info_org: PracticeOrg) -> None:
    http = https_session(info_org)
    tokens = oauth_tokens(info_org, http, info_org.admin_username)

    response = http.get(userinfo_url(info_org),
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
    body = response.json()

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert body["sub"] == tokens["id"]
    assert body["user_id"] == tokens["id"].rsplit("/", 1)[1]
    assert body["organization_id"] == info_org.org_id
    assert body["preferred_username"] == info_org.admin_username
    assert body["name"] == "Practice Admin"
    assert body["given_name"] == "Practice"
    assert body["family_name"] == "Admin"
    assert body["email"] == info_org.admin_username
    assert body["email_verified"] is True
    assert body["zoneinfo"] == "Europe/London"
    assert body["active"] is True
    assert body["urls"]["rest"] == f"{info_org.base_url}/services/data/v{{version}}/"
    partner = f"{info_org.base_url}/services/Soap/u/{{version}}/{info_org.org_id[:15]}"
    assert body["urls"]["partner"] == partner


def test_userinfo__soap_session_names_same_user(info_org: PracticeOrg) -> None:
    http = https_session(info_org)
    username = info_org.integration_username
    session_id = soap_session_id(info_org, http, username)
    oauth_id = oauth_tokens(info_org, http, username)["id"]

    response = http.get(userinfo_url(info_org), headers={"Authorization": f"Bearer {session_id}"})
    body = response.json()

    assert response.status_code == 200
    assert body["sub"] == oauth_id
    assert body["preferred_username"] == username
    assert body["name"] == "Backstory Integration"
    assert body["organization_id"] == info_org.org_id


def test_userinfo__token_in_parameter_is_accepted(info_org: PracticeOrg) -> None:
    http = https_session(info_org)
    token = oauth_tokens(info_org, http, info_org.admin_username)["access_token"]

    response = http.get(userinfo_url(info_org), params={"oauth_token": token})

    assert response.status_code == 200
    assert response.json()["preferred_username"] == info_org.admin_username


def test_userinfo__post_is_accepted(info_org: PracticeOrg) -> None:
    http = https_session(info_org)
    token = oauth_tokens(info_org, http, info_org.admin_username)["access_token"]

    response = http.post(userinfo_url(info_org), headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


def test_userinfo__unknown_token_is_403(info_org: PracticeOrg) -> None:
    response = https_session(info_org).get(
        userinfo_url(info_org), headers={"Authorization": "Bearer 00D000000000001!not-a-token"})

    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "Bad_OAuth_Token"


def test_userinfo__refresh_token_is_403(info_org: PracticeOrg) -> None:
    http = https_session(info_org)
    refresh_token = oauth_tokens(info_org, http, info_org.admin_username)["refresh_token"]

    response = http.get(userinfo_url(info_org), headers={"Authorization": f"Bearer {refresh_token}"})

    assert response.status_code == 403
    assert response.text == "Bad_OAuth_Token"


def test_userinfo__missing_token_is_403(info_org: PracticeOrg) -> None:
    response = https_session(info_org).get(userinfo_url(info_org))

    assert response.status_code == 403
    assert response.text == "Missing_OAuth_Token"


def test_userinfo__expired_sessions_are_403(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as org:
        http = https_session(org)
        oauth_token = login(org, org.admin_username).access_token
        session_id = soap_session_id(org, http, org.admin_username)
        org.expire_sessions()
        responses = [http.get(userinfo_url(org), headers={"Authorization": f"Bearer {token}"})
                     for token in (oauth_token, session_id)]

    assert [response.status_code for response in responses] == [403, 403]
    assert [response.text for response in responses] == ["Bad_OAuth_Token"] * 2


def test_userinfo__is_not_counted_as_api_request(info_org: PracticeOrg) -> None:
    http = https_session(info_org)
    token = oauth_tokens(info_org, http, info_org.admin_username)["access_token"]
    before = info_org.request_count

    http.get(userinfo_url(info_org), headers={"Authorization": f"Bearer {token}"})

    assert info_org.request_count == before
