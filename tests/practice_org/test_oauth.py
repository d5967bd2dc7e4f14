"""OAuth web-server flow with PKCE against the practice org's login host."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import (
    REDIRECT_URI,
    Login,
    authorize,
    https_session,
    login,
    pkce_pair,
)


def token_request(org: PracticeOrg, **form: str) -> tuple[int, dict[str, str]]:
    response = https_session(org).post(f"{org.base_url}/services/oauth2/token",
                                       data={"client_id": org.client_id, **form})
    return response.status_code, response.json()


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


def test_token__response_names_instance_and_identity(admin: Login) -> None:
    status, body = token_request(admin.org, grant_type="refresh_token",
                                 refresh_token=admin.refresh_token)

    assert status == 200
    assert body["instance_url"] == admin.org.base_url
    assert body["id"].startswith(f"{admin.org.base_url}/id/00D")
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body


def test_refresh__new_token_works_after_sessions_expire(default_org: PracticeOrg) -> None:
    client = login(default_org, default_org.admin_username)
    default_org.expire_sessions()
    expired = client.http.get(client.url("limits"), headers=client.headers())

    _status, body = token_request(default_org, grant_type="refresh_token",
                                  refresh_token=client.refresh_token)
    renewed = client.http.get(client.url("limits"),
                              headers={"Authorization": f"Bearer {body['access_token']}"})

    assert expired.status_code == 401
    assert renewed.status_code == 200


def test_refresh__unknown_token_is_invalid_grant(default_org: PracticeOrg) -> None:
    status, body = token_request(default_org, grant_type="refresh_token", refresh_token="nope")

    assert status == 400
    assert body == {"error": "invalid_grant", "error_description": "expired access/refresh token"}


def test_authorize__unknown_client_is_rejected(default_org: PracticeOrg) -> None:
    response = https_session(default_org).get(
        f"{default_org.base_url}/services/oauth2/authorize", allow_redirects=False,
        params={"response_type": "code", "client_id": "Other", "redirect_uri": REDIRECT_URI,
                "code_challenge": "abc", "login_hint": default_org.admin_username})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_id"


def test_authorize__inactive_user_is_denied(default_org: PracticeOrg) -> None:
    admin = login(default_org, default_org.admin_username)
    inactive = admin.sf.query("SELECT Username FROM User WHERE IsActive = false")["records"][0]
    _verifier, challenge = pkce_pair()

    response = admin.http.get(
        f"{default_org.base_url}/services/oauth2/authorize", allow_redirects=False,
        params={"response_type": "code", "client_id": default_org.client_id,
                "redirect_uri": REDIRECT_URI, "code_challenge": challenge, "state": "s2",
                "login_hint": inactive["Username"]})

    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s2"]
