"""OAuth 2.0 web-server flow with PKCE (RFC 7636) for an installed app.

simple-salesforce has no PKCE, authorization-code or refresh-token flow, so the
app runs them itself and hands the access token and instance URL to
simple-salesforce. Tokens never reach a log or an exception message.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import html
import logging
import secrets
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from backstory_desktop.core.jobs import check_cancel

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = "api refresh_token"

# The loopback ports whose callback URLs (http://localhost:<port>/callback) the
# setup guide lists for registration with the app, tried in this order.
DEFAULT_CALLBACK_PORTS = (7317, 7318, 7319)
CALLBACK_PATH = "/callback"
# The host of the callback URL, as in the Salesforce CLI's registered
# http://localhost:1717/OauthRedirect (sfdx-core, src/webOAuthServer.ts). The
# listener binds both addresses localhost resolves to, 127.0.0.1 and ::1.
# NOTE: users of other tools report that the External Client App form rejects
# plain http for an IP address such as 127.0.0.1; not confirmed in a real org.
CALLBACK_HOST = "localhost"

# Seconds a connection to the callback listener may stay silent before it is
# dropped, so that an idle or half-sent request cannot hold the listener.
CALLBACK_READ_TIMEOUT = 5.0

# OAuth errors from the token endpoint that mean the refresh token or the app's
# access is gone for good, so only a new sign-in helps. Codes from RFC 6749
# section 5.2 and Salesforce Help, "OAuth 2.0 Authorization Errors".
GRANT_ENDED_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client_id",
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "inactive_user",
        "inactive_org",
        "invalid_app_access",
    }
)

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
        if self.error == "timeout":
            return f"The sign-in timed out ({self.description}); start it again."
        return f"The sign-in failed ({self.error}: {self.description}); start it again."


class CallbackPortBusy(OAuthError):
    """None of the registered callback ports could be opened on localhost."""

    def __init__(self, ports: Sequence[int]) -> None:
        self.ports = tuple(ports)
        listed = ", ".join(str(port) for port in self.ports)
        super().__init__("port_in_use", f"ports tried on localhost: {listed}")

    def sentence(self) -> str:
        listed = ", ".join(str(port) for port in self.ports)
        if len(self.ports) == 1:
            ports_in_use, program = f"callback port {listed} on localhost is", "the program using it"
        else:
            ports_in_use, program = f"callback ports {listed} on localhost are", "a program using them"
        return (
            f"The sign-in cannot receive Salesforce's answer because {ports_in_use} in use; "
            f"close {program}, or register another "
            f"callback URL (http://{CALLBACK_HOST}:<port>/callback) with the app and add its port "
            "to the org profile."
        )


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

    Raises OAuthError when the callback carries a state other than the one this
    sign-in sent (a forged or stale callback), an error, or no code. The state is
    checked first, so an error from a forged callback is never believed.
    """
    query = parse_qs(urlsplit(location).query)
    if not _carries_state(location, expected_state):
        raise OAuthError("state_mismatch", "the callback's state is missing or different")
    if "error" in query:
        raise OAuthError(query["error"][0], query.get("error_description", [""])[0])
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
    # A redirect is not followed, because requests would send the form, with its
    # code or refresh token, again to wherever the Location header points.
    response = session.post(
        url, data=form, headers={"Accept": "application/json"}, allow_redirects=False
    )
    if response.is_redirect:
        logger.warning(
            "Token request (%s) failed: HTTP %s redirect, not followed",
            form["grant_type"],
            response.status_code,
        )
        raise OAuthError(
            "invalid_response",
            f"HTTP {response.status_code} redirect from the token endpoint to "
            f"{redirect_target(response)}, which is not followed because it would send "
            "the credentials to another address",
            status=response.status_code,
        )
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
    for name in ("instance_url", "id"):
        # The access token is sent to both addresses, so neither may be plain http.
        address = urlsplit(str(payload[name]))
        if address.scheme != "https" or not address.hostname or address.username is not None:
            raise OAuthError(
                "invalid_response", f"the token response's {name} is not an https address: {payload[name]}"
            )
    return TokenSet(
        access_token=str(payload["access_token"]),
        refresh_token=str(payload.get("refresh_token") or fallback_refresh_token or "") or None,
        instance_url=str(payload["instance_url"]).rstrip("/"),
        id_url=str(payload["id"]),
        issued_at=str(payload.get("issued_at", "")),
    )


def redirect_uri_for(port: int, path: str = CALLBACK_PATH) -> str:
    """Return the loopback callback URL for ``port``, as registered with the app."""
    return f"http://{CALLBACK_HOST}:{port}{path}"


def revoke_token(session: requests.Session, login_host: str, token: str) -> None:
    """Revoke a refresh token (with its access tokens) or an access token at the login host.

    Signing out must go on when revoking fails, so failures are logged, not raised.
    """
    url = f"{login_base_url(login_host)}/services/oauth2/revoke"
    try:
        response = session.post(url, data={"token": token}, allow_redirects=False)
    except requests.RequestException as exc:
        logger.warning("Revoking the token at %s failed: %s", login_host, type(exc).__name__)
        return
    if response.is_redirect:
        logger.warning(
            "Revoking the token at %s failed: HTTP %s redirect to %s, not followed",
            login_host,
            response.status_code,
            redirect_target(response),
        )
        return
    if response.status_code != 200:
        logger.warning(
            "Revoking the token at %s failed: HTTP %s %s",
            login_host,
            response.status_code,
            _oauth_error_code(response),
        )
        return
    logger.info("Token revoked at %s", login_host)


def redirect_target(response: requests.Response) -> str:
    """Return the scheme and host of a redirect's Location, for messages (no path or query)."""
    target = urlsplit(response.headers.get("Location", ""))
    if not target.netloc:
        return "another address"
    return f"{target.scheme}://{target.hostname or ''}" + (f":{target.port}" if target.port else "")


def _oauth_error_code(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return ""
    return str(payload.get("error", "")) if isinstance(payload, dict) else ""


# Errors that mean a port cannot be used by us now: another program listens on it,
# or (Windows) the port lies in a range the system reserved.
_PORT_UNAVAILABLE_ERRNOS = frozenset({errno.EADDRINUSE, errno.EACCES, 10013, 10048})


class _LoopbackServer(ThreadingHTTPServer):
    # SO_REUSEADDR lets a second socket bind a port that a program already listens on
    # under Windows, so a busy port would look free there.
    allow_reuse_address = sys.platform != "win32"
    # Each connection gets its own daemon thread, so a stuck one neither delays the
    # real callback nor holds up close() (which must not join handler threads).
    daemon_threads = True
    block_on_close = False


class _LoopbackServerV6(_LoopbackServer):
    address_family = socket.AF_INET6


# Errors that mean this computer has no IPv6 loopback, so localhost can only be 127.0.0.1.
_NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})


class LoopbackReceiver:
    """A one-shot HTTP listener on localhost (127.0.0.1 and ::1) that receives the OAuth callback.

    The browser is sent to the authorize URL with ``redirect_uri`` pointing here;
    Salesforce redirects the browser back with the code and state. With
    ``expected_state`` set, a callback with a missing or different state gets a
    failure page and is ignored, because any local program or web page can send
    one. The receiver keeps waiting for the real callback. Only the first callback
    with the right state counts: it gets a success page, or a failure page when it
    carries an error. Without ``expected_state`` the first callback counts, and
    ``wait_for_code`` checks its state. Use it as a context manager so that the
    socket is closed.
    """

    def __init__(
        self, *, port: int = 0, path: str = CALLBACK_PATH, expected_state: str | None = None
    ) -> None:
        self.path = path
        self.expected_state = expected_state
        self._received: str | None = None
        self._done = threading.Event()
        self._first_callback = threading.Lock()
        handler = self._handler_class()
        self._server = _LoopbackServer(("127.0.0.1", port), handler)
        self._servers = [self._server]
        try:
            # A browser may resolve localhost to ::1 first. Another program on ::1 at this
            # port would receive the callback, so that port counts as busy.
            self._servers.append(_LoopbackServerV6(("::1", self.port), handler))
        except OSError as exc:
            if exc.errno not in _NO_IPV6_ERRNOS:
                self._server.server_close()
                raise
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="oauth-callback", daemon=True).start()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class CallbackHandler(BaseHTTPRequestHandler):
            # StreamRequestHandler sets this timeout on the socket, so handle_one_request
            # drops a connection that sends nothing, or only part of a request line.
            timeout = CALLBACK_READ_TIMEOUT

            def do_GET(self) -> None:
                if urlsplit(self.path).path != receiver.path:
                    self.send_error(404)
                    return
                status, page = receiver._take_callback(self.path)
                body = page.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # The callback URL carries the authorization code, so it is not logged.
                pass

        return CallbackHandler

    def _take_callback(self, path: str) -> tuple[int, str]:
        """Keep the first callback with the right state and return the HTTP status and page to send."""
        if self.expected_state is not None and not _carries_state(path, self.expected_state):
            # The query may carry a code, so the log names only the port.
            logger.warning(
                "Ignored a sign-in callback on port %s without this sign-in's state", self.port
            )
            return 400, failure_page(IGNORED_CALLBACK_REASON)
        with self._first_callback:
            if self._done.is_set():
                return 409, failure_page("This sign-in already received its answer.")
            self._received = path
            self._done.set()
        if self.expected_state is None:
            query = parse_qs(urlsplit(path).query)
            if "error" in query:
                error = OAuthError(query["error"][0], query.get("error_description", [""])[0])
                return 200, failure_page(error.sentence())
            return 200, SUCCESS_PAGE
        try:
            code_from_redirect(path, self.expected_state)
        except OAuthError as exc:
            return 200, failure_page(exc.sentence())
        return 200, SUCCESS_PAGE


    @property
    def port(self) -> int:
        """The port this receiver listens on."""
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        """The callback address to register with the app and send in the authorize URL."""
        return redirect_uri_for(self.port, self.path)

    def wait_for_code(
        self,
        expected_state: str | None = None,
        *,
        timeout: float = 300.0,
        cancel: threading.Event | None = None,
    ) -> str:
        """Wait for the callback and return its code after checking the state.

        ``expected_state`` defaults to the one the receiver was opened with. Raises
        OAuthError (``timeout``) when no callback arrives in ``timeout`` seconds,
        ``Cancelled`` when ``cancel`` is set first, and OAuthError for a callback
        that carries an error or a different state.
        """
        state = expected_state if expected_state is not None else self.expected_state
        if state is None:
            raise ValueError("wait_for_code needs the state that the authorize URL carried")
        waited = 0.0
        while not self._done.wait(0.2):
            check_cancel(cancel)
            waited += 0.2
            if waited >= timeout:
                raise OAuthError(
                    "timeout",
                    f"no sign-in reached {self.redirect_uri} within {timeout:.0f} seconds, and if "
                    "the browser shows redirect_uri_mismatch, this address is not among the app's "
                    "callback URLs in Salesforce",
                )
        assert self._received is not None
        return code_from_redirect(self._received, state)

    def close(self) -> None:
        """Stop listening and close the port.

        Handler threads are not joined. A handler waiting on a silent connection
        ends by itself after CALLBACK_READ_TIMEOUT seconds.
        """
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _carries_state(url: str, expected_state: str) -> bool:
    """Return whether the callback URL carries exactly one state, equal to ``expected_state``."""
    states = parse_qs(urlsplit(url).query).get("state", [])
    # Compared as bytes, because compare_digest rejects str with characters outside ASCII.
    return len(states) == 1 and secrets.compare_digest(
        states[0].encode("utf-8"), expected_state.encode("utf-8")
    )


def open_loopback_receiver(
    ports: Sequence[int], *, expected_state: str | None = None, path: str = CALLBACK_PATH
) -> LoopbackReceiver:
    """Open a LoopbackReceiver on the first free port of ``ports``, tried in order.

    Port 0 takes any free port, which only the practice org accepts because a real
    org's app lists exact callback URLs. Raises CallbackPortBusy naming every port
    tried when none is free.
    """
    if not ports:
        raise ValueError("no callback port given: add at least one registered callback port")
    for port in ports:
        try:
            receiver = LoopbackReceiver(port=port, path=path, expected_state=expected_state)
        except OSError as exc:
            if exc.errno not in _PORT_UNAVAILABLE_ERRNOS:
                raise
            logger.info("Callback port %s on localhost is in use; trying the next one", port)
            continue
        logger.info("Waiting for the sign-in callback on port %s", receiver.port)
        return receiver
    logger.warning("No callback port free: %s", ", ".join(str(port) for port in ports))
    raise CallbackPortBusy(ports)


def _page(heading: str, text: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Backstory Desktop sign-in</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;"
        "padding:0 1rem;line-height:1.4}</style></head><body>"
        f"<h1>{html.escape(heading)}</h1><p>{html.escape(text)}</p></body></html>"
    )


# The app still exchanges the code after this page, so the page does not claim success.
SUCCESS_PAGE = _page(
    "Sign-in received",
    "Backstory Desktop received the sign-in and is finishing it. Return to the app to see the "
    "result; you can close this tab.",
)


IGNORED_CALLBACK_REASON = "This sign-in answer did not carry the state this app sent, so it was ignored."


def failure_page(reason: str) -> str:
    """Return the page that reports a failed sign-in with its reason and points the user back to the app."""
    return _page("Sign-in failed", f"{reason} Return to Backstory Desktop to try again.")
