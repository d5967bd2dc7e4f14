"""OAuth 2.0 web-server flow with PKCE (RFC 7636) for an installed app.

simple-salesforce has no PKCE, authorization-code or refresh-token flow, so the
app runs them itself and hands the access token and instance URL to
simple-salesforce. Tokens never reach a log or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from backstory_desktop.core.jobs import check_cancel

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = "api refresh_token"

# RFC 7636 section 4.1: the code verifier is 43 to 128 characters long.
VERIFIER_BYTES = 64  # 86 characters once base64url-encoded


class OAuthError(Exception):
    """An OAuth endpoint rejected a request, or its response could not be used.

    ``error`` is the OAuth error code (``invalid_grant``, ``invalid_client_id``,
    ``state_mismatch``, ...) and ``description`` the server's explanation.
    """

    def __init__(self, error: str, description: str, *, status: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(self.sentence())

    def sentence(self) -> str:
        """Return one sentence that states what failed and what to do next."""
        if self.error == "invalid_grant":
            return (
                f"Salesforce rejected the sign-in (invalid_grant: {self.description}); "
                "sign in to the org again."
            )
        if self.error in {"invalid_client_id", "invalid_client"}:
            return (
                f"Salesforce does not know this app's client id ({self.error}: "
                f"{self.description}); check the client id in the org profile."
            )
        if self.error == "redirect_uri_mismatch":
            return (
                f"Salesforce rejected the callback address ({self.description}); "
                "add it to the app's callback URLs in Salesforce."
            )
        if self.error == "state_mismatch":
            return (
                "The sign-in answer did not carry the state this app sent, so it was "
                "ignored; start the sign-in again."
            )
        return f"The sign-in failed ({self.error}: {self.description}); start it again."


@dataclass(frozen=True)
class Pkce:
    """The per-sign-in secrets: code verifier, its S256 challenge, and the state value."""

    verifier: str = field(repr=False)
    challenge: str
    state: str = field(repr=False)


@dataclass(frozen=True)
class TokenSet:
    """Tokens and addresses from a token response; ``repr`` hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    instance_url: str
    id_url: str
    issued_at: str


def s256_challenge(verifier: str) -> str:
    """Return the PKCE S256 code challenge: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    """Make a fresh code verifier, its challenge and a state value for one sign-in."""
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    return Pkce(verifier=verifier, challenge=s256_challenge(verifier), state=secrets.token_urlsafe(32))


def login_base_url(login_host: str) -> str:
    """Return ``https://host`` for a login host given with or without a scheme."""
    host = login_host.strip().rstrip("/")
    if "://" not in host:
        host = "https://" + host
    scheme = urlsplit(host).scheme
    if scheme != "https":
        raise ValueError(f"the login host must use https, not {scheme}: {login_host}")
    return host


def authorize_url(
    login_host: str,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    *,
    login_hint: str | None = None,
    scope: str = DEFAULT_SCOPE,
) -> str:
    """Build the authorize URL that starts the web-server flow with an S256 challenge."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": pkce.state,
        "scope": scope,
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{login_base_url(login_host)}/services/oauth2/authorize?{urlencode(params)}"


def code_from_redirect(location: str, expected_state: str) -> str:
    """Return the authorization code from the callback URL after checking its state.

    Raises OAuthError when the callback carries an error, no code, or a state
    other than the one this sign-in sent (a forged or stale callback).
    """
    query = parse_qs(urlsplit(location).query)
    if "error" in query:
        raise OAuthError(query["error"][0], query.get("error_description", [""])[0])
    states = query.get("state", [])
    if len(states) != 1 or not secrets.compare_digest(states[0], expected_state):
        raise OAuthError("state_mismatch", "the callback's state is missing or different")
    codes = query.get("code", [])
    if len(codes) != 1 or not codes[0]:
        raise OAuthError("invalid_response", "the callback carries no authorization code")
    return codes[0]


def exchange_code(
    session: requests.Session,
    login_host: str,
    client_id: str,
    redirect_uri: str,
    code: str,
    verifier: str,
) -> TokenSet:
    """Exchange an authorization code and its PKCE verifier for tokens."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
    }
    payload = _post_token(session, login_host, form)
    return _token_set(payload, fallback_refresh_token=None)


def refresh_tokens(
    session: requests.Session, login_host: str, client_id: str, refresh_token: str
) -> TokenSet:
    """Get a new access token with the refresh-token grant.

    With refresh-token rotation the response carries a new refresh token, which
    replaces the old one; otherwise the old refresh token stays valid and is kept.
    """
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    payload = _post_token(session, login_host, form)
    return _token_set(payload, fallback_refresh_token=refresh_token)


def _post_token(session: requests.Session, login_host: str, form: dict[str, str]) -> dict[str, Any]:
    url = f"{login_base_url(login_host)}/services/oauth2/token"
    response = session.post(url, data=form, headers={"Accept": "application/json"})
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code != 200 or not isinstance(payload, dict):
        error, description = "invalid_response", f"HTTP {response.status_code} from the token endpoint"
        if isinstance(payload, dict) and "error" in payload:
            error = str(payload["error"])
            description = str(payload.get("error_description", ""))
        logger.warning("Token request (%s) failed: %s", form["grant_type"], error)
        raise OAuthError(error, description, status=response.status_code)
    return payload


def _token_set(payload: dict[str, Any], *, fallback_refresh_token: str | None) -> TokenSet:
    missing = [name for name in ("access_token", "instance_url", "id") if not payload.get(name)]
    if missing:
        raise OAuthError("invalid_response", f"the token response lacks {', '.join(missing)}")
    return TokenSet(
        access_token=str(payload["access_token"]),
        refresh_token=str(payload.get("refresh_token") or fallback_refresh_token or "") or None,
        instance_url=str(payload["instance_url"]).rstrip("/"),
        id_url=str(payload["id"]),
        issued_at=str(payload.get("issued_at", "")),
    )


class LoopbackReceiver:
    """A one-shot HTTP listener on 127.0.0.1 that receives the OAuth callback.

    The browser is sent to the authorize URL with ``redirect_uri`` pointing here;
    Salesforce redirects the browser back with the code and state. Use it as a
    context manager so that the socket is closed.
    """

    def __init__(self, *, port: int = 0, path: str = "/callback") -> None:
        self.path = path
        self._received: str | None = None
        self._done = threading.Event()
        receiver = self

        class CallbackHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path != receiver.path:
                    self.send_error(404)
                    return
                receiver._received = self.path
                receiver._done.set()
                body = _CALLBACK_PAGE.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # The callback URL carries the authorization code, so it is not logged.
                pass

        self._server = HTTPServer(("127.0.0.1", port), CallbackHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        """The callback address to register with the app and send in the authorize URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def wait_for_code(
        self, expected_state: str, *, timeout: float = 300.0, cancel: threading.Event | None = None
    ) -> str:
        """Wait for the callback and return its code after checking the state.

        Raises OAuthError (``timeout``) when no callback arrives in ``timeout``
        seconds, and ``Cancelled`` when ``cancel`` is set first.
        """
        waited = 0.0
        while not self._done.wait(0.2):
            check_cancel(cancel)
            waited += 0.2
            if waited >= timeout:
                raise OAuthError("timeout", f"no sign-in callback within {timeout:.0f} seconds")
        assert self._received is not None
        return code_from_redirect(self._received, expected_state)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_CALLBACK_PAGE = (
    "<!doctype html><html><head><title>Backstory Desktop</title></head><body>"
    "<p>Sign-in received. You can close this window and return to Backstory Desktop.</p>"
    "</body></html>"
)
