"""OAuth 2.0 web-server flow with PKCE, token refresh and revocation at the practice org's login host.

There are no passwords. In a browser (no ``login_hint``, or an Accept header
that names text/html) the authorize endpoint shows a page that lists the active
users with Approve and Deny buttons. A client that sends ``login_hint`` and no
text/html, as the product's headless sign-in and the tests do, is approved at
once for that user.

Without registered callback URLs any ``http`` loopback redirect URI is accepted.
With them (``PracticeOrg(callback_urls=...)``) the redirect URI must equal one of
them exactly, as it must match an app's callback URL in Salesforce.

Errors follow Salesforce's web-server flow: an unknown client id or a missing or
invalid redirect URI gets its error response here and is never redirected (an
HTML page for a browser, JSON ``{"error", "error_description"}`` otherwise). Any later error is
sent to the redirect URI with ``error``, ``error_description`` and the request's
``state``. The codes and descriptions are those of Salesforce's authorize URL
error list (Help, "OAuth 2.0 Authorization Errors"), e.g. ``access_denied`` /
"end-user denied authorization".

Codes and tokens are random and stored only as hashes. The token step checks
the PKCE verifier (S256) and the redirect URI. Every refresh rotates the
refresh token (see ``oauth_tokens``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import html
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org import oauth_tokens
from backstory_desktop.practice_org.errors import OAuthError
from backstory_desktop.practice_org.http import json_response
from backstory_desktop.practice_org.session import OrgState
from backstory_desktop.practice_org.store import Record, TokenGrant, now_utc

logger = logging.getLogger(__name__)

CODE_LIFETIME = datetime.timedelta(minutes=15)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

# The authorize request parameters the consent page carries over to its form.
_FLOW_PARAMETERS = ("response_type", "client_id", "redirect_uri", "code_challenge",
                    "code_challenge_method", "state", "scope")

APPROVE = "approve"
DENY = "deny"


class _PageError(OAuthError):
    """An authorize error shown to the user agent instead of being redirected."""


@dataclass(frozen=True)
class _AuthorizeRequest:
    """A checked authorize request: where to send the result and the PKCE challenge."""

    redirect_uri: str
    challenge: str
    state: str | None


def oauth_error_response(error: OAuthError) -> Response:
    response = json_response({"error": error.error, "error_description": error.description},
                             error.status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _token_response(body: dict[str, str]) -> Response:
    # RFC 6749, section 5.1: token responses must not be cached.
    response = json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def authorize(org: OrgState, request: Request) -> Response:
    """``GET /services/oauth2/authorize``: show the consent page, or approve a headless login_hint."""
    params = request.args
    checked = _checked_or_error(org, request, params)
    if isinstance(checked, Response):
        return checked

    login_hint = params.get("login_hint", "")
    if not login_hint or _wants_html(request):
        return _consent_page(org, params, login_hint)
    return _approve(org, checked, login_hint)


def decide(org: OrgState, request: Request) -> Response:
    """``POST /services/oauth2/authorize``: the consent page's Approve or Deny button."""
    form = request.form
    checked = _checked_or_error(org, request, form)
    if isinstance(checked, Response):
        return checked

    if form.get("decision") != APPROVE:
        logger.info("Authorization denied at the consent page")
        return _redirect(checked.redirect_uri, {
            "error": "access_denied", "error_description": "end-user denied authorization",
            "state": checked.state})
    return _approve(org, checked, form.get("username", ""))


def _checked_or_error(
    org: OrgState, request: Request, params: Mapping[str, str]
) -> _AuthorizeRequest | Response:
    """Return the checked request, or the error page or error redirect to send instead."""
    try:
        return _check_authorize_request(org, params)
    except _PageError as error:
        return _error_page(request, error)
    except OAuthError as error:
        return _redirect_error(params, error)


def _check_authorize_request(org: OrgState, params: Mapping[str, str]) -> _AuthorizeRequest:
    """Check an authorize request. Faults that must not be redirected raise _PageError."""
    if params.get("client_id", "") != org.client_id:
        raise _PageError("invalid_client_id", "client identifier invalid")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise _PageError("redirect_uri_missing", "redirect_uri not provided")
    if not _is_registered_callback(org, redirect_uri):
        raise _PageError("redirect_uri_mismatch", "redirect_uri must match configuration")

    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response type not supported")
    challenge = params.get("code_challenge")
    if not challenge:
        raise OAuthError("invalid_request", "missing required code challenge")
    if params.get("code_challenge_method", "S256") != "S256":
        raise OAuthError("invalid_request",
                         "invalid code challenge method: only S256 is supported")
    return _AuthorizeRequest(redirect_uri, challenge, params.get("state"))


def _approve(org: OrgState, checked: _AuthorizeRequest, username: str) -> Response:
    """Issue an authorization code for an active user and redirect with it."""
    user = find_user_by_username(org, username)
    if user is None:
        return _redirect(checked.redirect_uri, {
            "error": "access_denied", "error_description": "user not found",
            "state": checked.state})
    if user.fields.get("IsActive") is False:
        return _redirect(checked.redirect_uri, {
            "error": "inactive_user", "error_description": "user is inactive",
            "state": checked.state})

    code = secrets.token_urlsafe(32)
    grant = TokenGrant(user.id, org.client_id)
    org.store.save_code(code, grant, checked.redirect_uri, checked.challenge,
                        now_utc() + CODE_LIFETIME)
    logger.info("Authorization code issued for user %s", user.id)
    return _redirect(checked.redirect_uri, {"code": code, "state": checked.state})


def token(org: OrgState, request: Request) -> Response:
    """``POST /services/oauth2/token``: exchange an authorization code or a refresh token."""
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

    family = oauth_tokens.start_family(grant)
    body = _token_body(org, family)
    body["refresh_token"] = oauth_tokens.issue_refresh_token(org.store, family)
    return _token_response(body)


def _refresh(org: OrgState, request: Request) -> Response:
    """Issue an access token and a new refresh token. The refresh token sent stops working.

    An unknown, used or revoked refresh token gets the body Salesforce sends,
    {"error":"invalid_grant","error_description":"expired access/refresh token"}
    (Help, "OAuth 2.0 Authorization Errors", refresh token flow example).
    """
    rotated = oauth_tokens.rotate_refresh_token(org.store, request.form.get("refresh_token", ""))
    if rotated is None:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    grant, new_refresh_token = rotated
    _check_user_active(org, grant.user_id)
    body = _token_body(org, grant)
    body["refresh_token"] = new_refresh_token
    return _token_response(body)


def revoke(org: OrgState, request: Request) -> Response:
    """``POST /services/oauth2/revoke`` (form ``token``) or ``GET ...?token=``.

    A refresh token is revoked with every access token of its family, an
    access token on its own. Salesforce returns 200 on success and 400 with
    ``invalid_token`` or ``unsupported_token_type`` otherwise (Mobile SDK
    Developer Guide, "Revoking OAuth Tokens"; Help, "Revoke OAuth Tokens").
    """
    token_value = request.form.get("token") or request.args.get("token") or ""
    if not oauth_tokens.revoke(org.store, token_value):
        # NOTE: the documentation names the error codes but not their descriptions.
        raise OAuthError("invalid_token", "Token was invalid")
    logger.info("OAuth token revoked")
    return Response(status=200)


def _token_body(org: OrgState, grant: TokenGrant) -> dict[str, str]:
    access_token = oauth_tokens.issue_access_token(org.store, grant)
    identity_url = f"{org.base_url}/id/{org.store.org_id}/{grant.user_id}"
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


def _check_client(org: OrgState, client_id: str) -> None:
    if client_id != org.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")


def _is_registered_callback(org: OrgState, redirect_uri: str) -> bool:
    """Return True for a redirect URI the app accepts: any loopback URI, or one registered exactly.

    Salesforce requires the redirect URI to match one of the app's callback URLs. The
    practice org compares whole strings, so a different port, path or trailing slash
    is a mismatch.
    """
    if org.callback_urls is None:
        return _is_loopback_uri(redirect_uri)
    return redirect_uri in org.callback_urls


def _is_loopback_uri(redirect_uri: str) -> bool:
    # A redirection endpoint must not carry a fragment (RFC 6749, section 3.1.2), and the
    # practice org would append the code after it, where the client never reads it.
    parts = urlsplit(redirect_uri)
    return (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            and "#" not in redirect_uri)


def _check_user_active(org: OrgState, user_id: str) -> None:
    user = org.store.get_record(user_id)
    if user is None or user.fields.get("IsActive") is False:
        raise OAuthError("invalid_grant", "inactive user")


def find_user_by_username(org: OrgState, username: str) -> Record | None:
    if not username:
        return None
    matches = org.store.find_by_field("User", "Username", username, case_sensitive=False)
    return matches[0] if matches else None


def _wants_html(request: Request) -> bool:
    """Tell a browser, whose Accept header names text/html, from an HTTP library sending */*."""
    return "text/html" in request.headers.get("Accept", "")


def _redirect(redirect_uri: str, params: Mapping[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})


def _redirect_error(params: Mapping[str, str], error: OAuthError) -> Response:
    logger.info("Authorization request rejected: %s (%s)", error.error, error.description)
    return _redirect(params.get("redirect_uri", ""), {
        "error": error.error, "error_description": error.description,
        "state": params.get("state")})


def _error_page(request: Request, error: OAuthError) -> Response:
    """Return the response to an authorize error that is not redirected: HTML for a browser, else JSON."""
    logger.info("Authorization request rejected without a redirect: %s", error.error)
    if not _wants_html(request):
        return oauth_error_response(error)
    body = (
        "<h1>Authorization failed</h1>"
        f"<p>error={html.escape(error.error)}&amp;error_description="
        f"{html.escape(error.description)}</p>"
    )
    return _page(body, status=error.status)


def _consent_page(org: OrgState, params: Mapping[str, str], login_hint: str) -> Response:
    """Return the page that lets a person pick a user and approve or deny the app."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _FLOW_PARAMETERS if name in params
    )
    choices = []
    for user in org.store.records_of("User"):
        if user.fields.get("IsActive") is False:
            continue
        username = str(user.fields.get("Username", ""))
        name = str(user.fields.get("Name") or "")
        checked = " checked" if username.lower() == login_hint.lower() else ""
        choices.append(
            f'<li><label><input type="radio" name="username" value="{html.escape(username)}"'
            f"{checked} required> {html.escape(name)} <small>{html.escape(username)}</small>"
            "</label></li>"
        )
    body = (
        "<h1>Allow access to the practice org?</h1>"
        f"<p>The app <b>{html.escape(org.client_id)}</b> asks to access the practice org "
        "as the user you choose.</p>"
        '<form method="post" action="/services/oauth2/authorize">'
        f"{hidden}<ul>{''.join(choices)}</ul>"
        f'<button type="submit" name="decision" value="{APPROVE}">Approve</button> '
        f'<button type="submit" name="decision" value="{DENY}" formnovalidate>Deny</button>'
        "</form>"
    )
    return _page(body)


_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.4}"
    "ul{list-style:none;padding:0;max-height:60vh;overflow-y:auto;border:1px solid #ccc;"
    "border-radius:4px}"
    "li label{display:block;padding:.4rem .6rem;cursor:pointer}"
    "li:nth-child(odd){background:#f6f6f6}small{color:#555;margin-left:.4rem}"
    "button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem}"
)


def _page(body: str, *, status: int = 200) -> Response:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Practice org login</title><style>{_PAGE_STYLE}</style></head><body>"
        + body + "</body></html>"
    )
    return Response(page, status=status, mimetype="text/html")
