"""OAuth 2.0 web-server flow with PKCE, as the practice org's login host serves it.

There are no passwords: ``login_hint`` names the user who approves the request
(or, without it, the authorize page lists the active users to pick from).
Codes and tokens are random, stored only as hashes, and checked as Salesforce
checks them: the PKCE verifier (S256) and the redirect URI at the token step.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import html
import logging
import secrets
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.errors import OAuthError
from backstory_desktop.practice_org.http import json_response
from backstory_desktop.practice_org.ids import ORG_ID
from backstory_desktop.practice_org.session import OrgState
from backstory_desktop.practice_org.store import Record, TokenGrant, now_utc

logger = logging.getLogger(__name__)

ACCESS_TOKEN_LIFETIME = datetime.timedelta(hours=2)
CODE_LIFETIME = datetime.timedelta(minutes=15)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def oauth_error_response(error: OAuthError) -> Response:
    return json_response({"error": error.error, "error_description": error.description},
                         error.status)


def authorize(org: OrgState, request: Request) -> Response:
    """Approve an authorization request for the ``login_hint`` user and redirect with a code."""
    params = request.args
    _check_client(org, params.get("client_id", ""))
    redirect_uri = params.get("redirect_uri", "")
    _check_redirect_uri(redirect_uri)
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response type not supported")
    challenge = _code_challenge(params.get("code_challenge"), params.get("code_challenge_method"))

    login_hint = params.get("login_hint")
    if not login_hint:
        return _user_picker(org, request)
    user = find_user_by_username(org, login_hint)
    state = params.get("state")
    if user is None or user.fields.get("IsActive") is False:
        reason = "user not found" if user is None else "user is inactive"
        return _redirect(redirect_uri, {"error": "access_denied", "error_description": reason,
                                        "state": state})

    code = secrets.token_urlsafe(32)
    grant = TokenGrant(user.id, org.client_id)
    org.store.save_code(code, grant, redirect_uri, challenge, now_utc() + CODE_LIFETIME)
    logger.info("Authorization code issued for user %s", user.id)
    return _redirect(redirect_uri, {"code": code, "state": state})


def token(org: OrgState, request: Request) -> Response:
    """Exchange an authorization code or a refresh token for an access token."""
    form = request.form
    _check_client(org, form.get("client_id", ""))
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(org, request)
    if grant_type == "refresh_token":
        return _refresh(org, request)
    raise OAuthError("unsupported_grant_type", "grant type not supported")


def _exchange_code(org: OrgState, request: Request) -> Response:
    form = request.form
    code_grant = org.store.take_code(form.get("code", ""))
    if code_grant is None:
        raise OAuthError("invalid_grant", "invalid authorization code")
    grant, redirect_uri, challenge = code_grant
    if form.get("redirect_uri") != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri must match configuration")
    if not hmac.compare_digest(s256_challenge(form.get("code_verifier", "")), challenge):
        raise OAuthError("invalid_grant", "invalid code verifier")
    _check_user_active(org, grant.user_id)

    refresh_token = f"5Aep{secrets.token_urlsafe(48)}"
    org.store.save_token(refresh_token, "refresh", grant, None)
    body = _issue_access_token(org, grant)
    body["refresh_token"] = refresh_token
    return json_response(body)


def _refresh(org: OrgState, request: Request) -> Response:
    grant = org.store.find_token(request.form.get("refresh_token", ""), "refresh")
    if grant is None:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    _check_user_active(org, grant.user_id)
    return json_response(_issue_access_token(org, grant))


def _issue_access_token(org: OrgState, grant: TokenGrant) -> dict[str, str]:
    access_token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(64)}"
    org.store.save_token(access_token, "access", grant, now_utc() + ACCESS_TOKEN_LIFETIME)
    identity_url = f"{org.base_url}/id/{ORG_ID}/{grant.user_id}"
    issued_at = str(int(now_utc().timestamp() * 1000))
    logger.info("Access token issued for user %s", grant.user_id)
    return {
        "access_token": access_token,
        "signature": _signature(org, identity_url + issued_at),
        "scope": "refresh_token api id",
        "instance_url": org.base_url,
        "id": identity_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }


def _signature(org: OrgState, message: str) -> str:
    key = (org.store.get_meta("signing_key") or "practice").encode()
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def s256_challenge(verifier: str) -> str:
    """Return the PKCE S256 challenge of a verifier (RFC 7636, section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _code_challenge(challenge: str | None, method: str | None) -> str:
    if not challenge:
        raise OAuthError("invalid_request", "missing required code challenge")
    if (method or "S256") != "S256":
        raise OAuthError("invalid_request", "invalid code challenge method: only S256 is supported")
    return challenge


def _check_client(org: OrgState, client_id: str) -> None:
    if client_id != org.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")


def _check_redirect_uri(redirect_uri: str) -> None:
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS:
        raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")


def _check_user_active(org: OrgState, user_id: str) -> None:
    user = org.store.get_record(user_id)
    if user is None or user.fields.get("IsActive") is False:
        raise OAuthError("invalid_grant", "inactive user")


def find_user_by_username(org: OrgState, username: str) -> Record | None:
    matches = org.store.find_by_field("User", "Username", username, case_sensitive=False)
    return matches[0] if matches else None


def _redirect(redirect_uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})


def _user_picker(org: OrgState, request: Request) -> Response:
    """Return a page that lists the active users, each linking back here with its login_hint."""
    items = []
    for user in org.store.records_of("User"):
        if user.fields.get("IsActive") is False:
            continue
        username = str(user.fields.get("Username", ""))
        query = urlencode({**request.args.to_dict(), "login_hint": username})
        items.append(f'<li><a href="?{html.escape(query)}">{html.escape(username)}</a></li>')
    page = (
        "<!doctype html><html><head><title>Practice org login</title></head><body>"
        "<h1>Log in to the practice org as</h1><ul>" + "".join(items) + "</ul></body></html>"
    )
    return Response(page, mimetype="text/html")
