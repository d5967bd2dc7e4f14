"""One signed-in connection to an org, built on simple-salesforce and our own session.

The connection pins the API version, checks that the org serves it, renews the
access token once with the refresh token when Salesforce returns
INVALID_SESSION_ID, and replays the request that failed. When the renewal is
rejected the sign-in has ended: that call and every later one raise
SignInRequired without trying again.

Ways to sign in: the browser (OAuth web-server flow with PKCE and a loopback
callback), a saved refresh token, a username with password and security token
(SOAP ``login()``, retiring), or a pasted access token.
"""

from __future__ import annotations

import logging
import re
import threading
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import SFBulk2Handler
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from backstory_desktop.salesforce.api_version import API_VERSION
from backstory_desktop.salesforce.errors import (
    ProblemKind,
    SalesforceProblem,
    SignInRequired,
    explain,
)
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.oauth import (
    DEFAULT_CALLBACK_PORTS,
    GRANT_ENDED_ERRORS,
    OAuthError,
    Pkce,
    TokenSet,
    authorize_url,
    code_from_redirect,
    exchange_code,
    login_base_url,
    new_pkce,
    open_loopback_receiver,
    refresh_tokens,
    revoke_token,
)
from backstory_desktop.salesforce.soap_login import soap_login

logger = logging.getLogger(__name__)

PRACTICE_REDIRECT_URI = "http://127.0.0.1/callback"

T = TypeVar("T")


TokensRefreshed = Callable[[TokenSet], None]

# Returns the refresh token saved for this org now (None when there is none).
# Another process that renewed the same sign-in may have rotated it.
SavedRefreshToken = Callable[[], "str | None"]

# One DNS label of a host name (RFC 1123), of which an instance URL's host consists.
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class DailyApiRequests:
    """The org's daily API request allocation and use; ``source`` names where the figures came from."""

    used: int
    max: int
    source: str  # "limits" or "Sforce-Limit-Info"

    @property
    def remaining(self) -> int:
        """Requests left in the rolling 24 hours."""
        return self.max - self.used


class OrgConnection:
    """A signed-in connection: simple-salesforce object, our session and who we are.

    ``on_tokens_refreshed`` is called with the new TokenSet after each refresh and
    before the new access token is used, so the caller stores a rotated refresh
    token before anything else can fail. An exception it raises is logged as a
    warning and the connection goes on.

    ``saved_refresh_token`` returns the refresh token saved for this org. When
    the org rejects the connection's refresh token with invalid_grant and the saved
    one differs (another process renewed the sign-in and rotated it), the refresh
    is tried once more with the saved one before the sign-in ends.
    """

    def __init__(
        self,
        session: requests.Session,
        tokens: TokenSet,
        *,
        login_host: str,
        client_id: str,
        api_version: str = API_VERSION,
        on_tokens_refreshed: TokensRefreshed | None = None,
        saved_refresh_token: SavedRefreshToken | None = None,
    ) -> None:
        self.session = session
        self.login_host = login_host
        self.client_id = client_id
        self.api_version = api_version
        self.on_tokens_refreshed = on_tokens_refreshed
        self.saved_refresh_token = saved_refresh_token
        self._tokens = tokens
        self._refresh_lock = threading.Lock()
        # Why the sign-in ended (a refresh was rejected, or sign-out), once it has.
        self._ended_reason: str | None = None
        # The reason SignInRequired gives when the session expires without a refresh token.
        self.no_refresh_reason = "the session expired, and this sign-in has no refresh token to renew it"
        self.sf = self._build_salesforce()
        self.instance_url = tokens.instance_url
        self.user_id = ""
        self.org_id = ""
        self.username = ""
        self.display_name = ""

    def __repr__(self) -> str:
        return f"OrgConnection(org_id={self.org_id!r}, username={self.username!r})"

    @property
    def tokens(self) -> TokenSet:
        """The current tokens (after any refresh)."""
        return self._tokens

    @property
    def bulk2(self) -> SFBulk2Handler:
        """The Bulk API 2.0 handler of the current session.

        simple-salesforce builds the handler with the access token of the moment,
        so fetch it again after a refresh instead of keeping it.
        """
        handler = self.sf.bulk2
        assert isinstance(handler, SFBulk2Handler)
        return handler

    @property
    def where(self) -> str:
        """The user and host this connection signs in to, for messages."""
        host = _host_name(self.login_host)
        return f"{self.username} at {host}" if self.username else host

    def _build_salesforce(self) -> Salesforce:
        return Salesforce(
            instance_url=self._tokens.instance_url,
            session_id=self._tokens.access_token,
            session=self.session,
            version=self.api_version,
            object_pairs_hook=dict,
        )

    # -- opening -----------------------------------------------------------------

    def open(self, identity: dict[str, Any] | None = None) -> OrgConnection:
        """Read who we are and check the pinned API version.

        ``identity`` (user_id, organization_id, username, display_name) is used as
        given when the sign-in already returned it. Otherwise it comes from the
        identity URL of the token response or, without one, from
        ``/services/oauth2/userinfo`` of the instance.
        """
        if identity is None:
            identity = self._with_refresh(self._fetch_identity)
        self._set_identity(identity)
        self.check_api_version()
        logger.info(
            "Connected to org %s as %s (user %s, API %s)",
            self.org_id,
            self.username,
            self.user_id,
            self.api_version,
        )
        return self

    def _fetch_identity(self) -> dict[str, Any]:
        url = self._tokens.id_url or f"{self.instance_url}/services/oauth2/userinfo"
        response = self.session.get(
            url, headers={"Authorization": f"Bearer {self._tokens.access_token}"}
        )
        if response.status_code == 401 or response.status_code == 403:
            raise SalesforceExpiredSession(
                url, response.status_code, "identity", _json_or_text(response)
            )
        response.raise_for_status()
        identity = response.json()
        if not isinstance(identity, dict):
            raise SalesforceProblem(ProblemKind.BUG, f"{url} did not return a JSON object.")
        return identity

    def _set_identity(self, identity: dict[str, Any]) -> None:
        # The identity URL names the user "username"; userinfo (OpenID Connect)
        # names them "preferred_username" and the display name "name".
        self.user_id = str(identity.get("user_id", ""))
        self.org_id = str(identity.get("organization_id", ""))
        self.username = str(identity.get("username") or identity.get("preferred_username") or "")
        self.display_name = str(identity.get("display_name") or identity.get("name") or "")

    def offered_api_versions(self) -> list[str]:
        """Return the API versions the org serves, from ``/services/data/``."""
        response = self.session.get(f"{self.instance_url}/services/data/")
        response.raise_for_status()
        return [str(entry.get("version")) for entry in response.json() if isinstance(entry, dict)]

    def check_api_version(self) -> None:
        """Raise a SalesforceProblem when the org does not serve the pinned API version."""
        try:
            offered = self.offered_api_versions()
        except requests.RequestException as exc:
            raise explain(exc) from exc
        if self.api_version in offered:
            return
        newest = max(offered, key=_version_key) if offered else "none"
        raise SalesforceProblem(
            ProblemKind.FIXABLE,
            f"The org does not serve API version {self.api_version} (its newest is {newest}); "
            "update the org profile's API version or use an app release made for this org.",
            f"offered versions: {', '.join(offered)}",
            error_code="API_VERSION_NOT_OFFERED",
        )

    # -- calls ---------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a REST request to ``path`` under ``/services/data/vXX.X/`` and return its JSON.

        Returns None for 204 No Content. Errors are simple-salesforce exceptions;
        an expired session is renewed once and the same request sent again.
        """
        return self._with_refresh(lambda: self.sf.restful(path, method=method, **kwargs))

    def request_raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a REST request to ``path`` under ``/services/data/vXX.X/`` and return the response.

        For bodies and responses that are not JSON, such as Bulk API 2.0 CSV data.
        Errors and session renewal work as in ``request``.
        """
        # self.sf is read on each attempt: a renewed session comes with a new client.
        return self._with_refresh(
            lambda: self.sf._call_salesforce(method, self.sf.base_url + path, name=path, **kwargs)
        )

    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Yield each page of a query result (``totalSize``, ``done``, ``records``).

        ``include_deleted`` uses queryAll, which also returns deleted and archived rows.
        """
        page: dict[str, Any] = self._with_refresh(
            lambda: self.sf.query(soql, include_deleted=include_deleted)
        )
        while True:
            yield page
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self._query_more(next_url)

    def _query_more(self, next_url: str) -> dict[str, Any]:
        page: dict[str, Any] = self._with_refresh(
            lambda: self.sf.query_more(next_url, identifier_is_url=True)
        )
        return page

    def query_all(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Yield every record of a query, page after page, without ``attributes``."""
        for page in self.query_pages(soql, include_deleted=include_deleted):
            for record in page.get("records", []):
                yield _without_attributes(record)

    def tooling_query(self, soql: str) -> list[dict[str, Any]]:
        """Run a Tooling API query and return all its records."""
        page: dict[str, Any] = self.request("GET", "tooling/query/", params={"q": soql})
        records = list(page.get("records", []))
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            next_url = page["nextRecordsUrl"]
            page = self._query_more(next_url)
            records.extend(page.get("records", []))
        return [_without_attributes(record) for record in records]

    def describe(self, sobject: str) -> dict[str, Any]:
        """Return the describe result of ``sobject`` as this user sees it (FLS applied)."""
        result: dict[str, Any] = self.request("GET", f"sobjects/{sobject}/describe")
        return result

    def limits(self) -> dict[str, Any]:
        """Return the org's limits (DailyApiRequests and others)."""
        result: dict[str, Any] = self.request("GET", "limits/")
        return result

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """Daily API requests (used, limit) from the last ``Sforce-Limit-Info`` header, if any."""
        usage = self.sf.api_usage.get("api-usage")
        if usage is None:
            return None
        return (int(usage.used), int(usage.total))

    def daily_api_requests(self) -> DailyApiRequests | None:
        """Return the org's daily API requests, or None when neither source can be read.

        The limits resource needs View Setup and Configuration. Without it, the figures
        come from the ``Sforce-Limit-Info`` header of this connection's last API call.
        If it has made none yet, one request for the API's resource list supplies it.
        Raises SignInRequired when the sign-in has ended, and SalesforceProblem
        (REQUEST_LIMIT_EXCEEDED) when the org refuses calls because a limit is spent.
        """
        try:
            entry = self.limits()["DailyApiRequests"]
            maximum, remaining = int(entry["Max"]), int(entry["Remaining"])
        except SignInRequired:
            raise
        except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
            _raise_if_limit_exceeded(error)
            logger.info(
                "Limits resource not available, so the last call's API usage is used: %s",
                explain(error).sentence,
            )
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("The limits resource has no readable DailyApiRequests entry: %r", error)
        else:
            return DailyApiRequests(maximum - remaining, maximum, "limits")

        if self.api_usage is None:
            try:
                self.request("GET", "")
            except SignInRequired:
                raise
            except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
                _raise_if_limit_exceeded(error)
                logger.info("The API usage could not be read either: %s", explain(error).sentence)
                return None
        usage = self.api_usage
        if usage is None:
            return None
        return DailyApiRequests(usage[0], usage[1], "Sforce-Limit-Info")

    # -- session renewal -------------------------------------------------------------

    def call_with_refresh(self, call: Callable[[], T]) -> T:
        """Run ``call``; after an expired session renew it once and run ``call`` again.

        For work the connection does not wrap itself, such as ``bulk2`` calls: the
        call must read ``self.sf`` or ``self.bulk2`` inside, and be safe to send
        twice. Raises SignInRequired when the session cannot be renewed.
        """
        return self._with_refresh(call)

    def _with_refresh(self, call: Callable[[], T]) -> T:
        if self._ended_reason is not None:
            raise SignInRequired(self.where, self._ended_reason)
        token_used = self._tokens.access_token
        try:
            return call()
        except SalesforceExpiredSession:
            logger.info("Session of %s expired; renewing it once", self.username or "the user")
            self._refresh(token_used)
        try:
            return call()
        except SalesforceExpiredSession as exc:
            # No second renewal, so that two quick expiries cannot start a loop. The
            # sign-in itself still works, so this is not SignInRequired.
            logger.warning("Session of %s expired again right after renewal", self.username or "the user")
            raise SalesforceProblem(
                ProblemKind.REFUSED,
                f"The session of {self.where} expired again right after it was renewed; "
                "try again.",
                f"HTTP {exc.status} from {urlsplit(exc.url).path}",
                error_code="INVALID_SESSION_ID",
                status=exc.status,
            ) from exc

    def _refresh(self, token_used: str) -> None:
        with self._refresh_lock:
            if self._ended_reason is not None:
                raise SignInRequired(self.where, self._ended_reason)
            if self._tokens.access_token != token_used:
                return  # another thread renewed it already
            refresh_token = self._tokens.refresh_token
            if not refresh_token:
                self._end_sign_in(self.no_refresh_reason)
            try:
                tokens = _refresh_with_saved_token(
                    self.session,
                    self.login_host,
                    self.client_id,
                    refresh_token,
                    self.saved_refresh_token,
                )
            except OAuthError as exc:
                logger.warning("Renewing the session of %s failed: %s", self.username, exc.error)
                if exc.error not in GRANT_ENDED_ERRORS:
                    # An unreadable response (a captive portal's page, an outage) or a
                    # passing error leaves the grant valid, so a later call tries the
                    # refresh again.
                    raise SalesforceProblem(
                        ProblemKind.REFUSED,
                        f"Renewing the session of {self.where} failed ({exc.error}: "
                        f"{exc.description}); check the network connection and try again.",
                        explain(exc).details,
                        error_code=exc.error,
                        status=exc.status,
                    ) from exc
                self._end_sign_in(f"{exc.error}: {exc.description}", exc)
            # The old refresh token may already be void (rotation), so the caller
            # stores the new one before the new access token is used.
            _report_tokens(self.on_tokens_refreshed, tokens)
            self._use_tokens(tokens)
        logger.info("Session of %s renewed", self.username or "the user")

    def _use_tokens(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self.instance_url = tokens.instance_url
        # A new Salesforce object, so that sf.bulk2 and sf.mdapi use the new token too.
        self.sf = self._build_salesforce()

    def _end_sign_in(self, reason: str, cause: BaseException | None = None) -> NoReturn:
        """Record that the sign-in ended and raise SignInRequired."""
        self._ended_reason = reason
        raise SignInRequired(self.where, reason) from cause

    # -- sign-out --------------------------------------------------------------------

    def revoke(self) -> None:
        """Revoke this sign-in at the login host: the refresh token, or else the access token.

        Revoking a refresh token also ends the access tokens issued from it. A
        failure is logged, not raised, and the connection is ended either way.
        """
        token = self._tokens.refresh_token or self._tokens.access_token
        revoke_token(self.session, self.login_host, token)
        self._ended_reason = "signed out"


def _refresh_with_saved_token(
    session: requests.Session,
    login_host: str,
    client_id: str,
    refresh_token: str,
    saved_refresh_token: SavedRefreshToken | None,
) -> TokenSet:
    """Run the refresh-token grant; after invalid_grant, retry once with a newer saved token."""
    try:
        return refresh_tokens(session, login_host, client_id, refresh_token)
    except OAuthError as exc:
        if exc.error != "invalid_grant" or saved_refresh_token is None:
            raise
        try:
            saved = saved_refresh_token()
        except Exception:
            logger.warning("Reading the saved refresh token failed", exc_info=True)
            raise exc from None
        if not saved or saved == refresh_token:
            raise
    logger.info("The saved refresh token differs from the rejected one; renewing with it")
    return refresh_tokens(session, login_host, client_id, saved)


def _raise_if_limit_exceeded(error: Exception) -> None:
    """Raise the explained problem when the org refused the call because its API limit is spent."""
    problem = explain(error)
    if problem.error_code == "REQUEST_LIMIT_EXCEEDED":
        raise problem from error


def _report_tokens(on_tokens_refreshed: TokensRefreshed | None, tokens: TokenSet) -> None:
    """Hand new tokens to the caller; a failure there is logged and does not stop the work."""
    if on_tokens_refreshed is None:
        return
    try:
        on_tokens_refreshed(tokens)
    except Exception:
        logger.warning("Storing the renewed tokens failed", exc_info=True)


def open_connection(
    session: requests.Session,
    tokens: TokenSet,
    *,
    login_host: str,
    client_id: str,
    api_version: str = API_VERSION,
    on_tokens_refreshed: TokensRefreshed | None = None,
    saved_refresh_token: SavedRefreshToken | None = None,
    revoke_on_failure: bool = False,
) -> OrgConnection:
    """Build an OrgConnection from tokens, read the identity and check the API version.

    ``revoke_on_failure`` is for tokens from a fresh code exchange: the caller stores
    the new refresh token only once this returns, so if opening fails the tokens are
    revoked, or they would stay valid at the org with no way to sign them out.
    """
    connection = OrgConnection(
        session,
        tokens,
        login_host=login_host,
        client_id=client_id,
        api_version=api_version,
        on_tokens_refreshed=on_tokens_refreshed,
        saved_refresh_token=saved_refresh_token,
    )
    if not revoke_on_failure:
        return connection.open()
    try:
        return connection.open()
    except BaseException:
        logger.warning("Opening the new connection failed; revoking its tokens")
        # connection.tokens, not tokens, because open() may have renewed and rotated them.
        current = connection.tokens
        revoke_token(session, login_host, current.refresh_token or current.access_token)
        raise


def authorize_with_login_hint(
    session: requests.Session,
    base_url: str,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    username: str,
) -> str:
    """Approve a sign-in at the practice org without a browser and return the code.

    The practice org approves the user named in ``login_hint`` and redirects at
    once; the redirect is read, not followed, and its state checked.
    """
    url = authorize_url(base_url, client_id, redirect_uri, pkce, login_hint=username)
    response = session.get(url, allow_redirects=False)
    if response.status_code not in (302, 303):
        payload = _json_or_text(response)
        if isinstance(payload, dict) and "error" in payload:
            raise OAuthError(
                str(payload["error"]),
                str(payload.get("error_description", "")),
                status=response.status_code,
            )
        raise OAuthError(
            "invalid_response",
            f"HTTP {response.status_code} from the authorize endpoint",
            status=response.status_code,
        )
    return code_from_redirect(response.headers.get("Location", ""), pkce.state)


def connect_practice_org(
    base_url: str,
    ca_bundle: Path,
    username: str,
    client_id: str,
    *,
    redirect_uri: str = PRACTICE_REDIRECT_URI,
    api_version: str = API_VERSION,
) -> OrgConnection:
    """Sign in to the practice org through the real PKCE web-server flow."""
    session = build_session(ca_bundle)
    pkce = new_pkce()
    code = authorize_with_login_hint(session, base_url, client_id, redirect_uri, pkce, username)
    tokens = exchange_code(session, base_url, client_id, redirect_uri, code, pkce.verifier)
    return open_connection(
        session, tokens, login_host=base_url, client_id=client_id, api_version=api_version
    )


def connect_with_browser(
    login_host: str,
    client_id: str,
    *,
    ca_bundle: Path | None = None,
    open_browser: Callable[[str], object] = webbrowser.open,
    callback_ports: Sequence[int] = DEFAULT_CALLBACK_PORTS,
    login_hint: str | None = None,
    timeout: float = 300.0,
    cancel: threading.Event | None = None,
    api_version: str = API_VERSION,
    on_tokens_refreshed: TokensRefreshed | None = None,
    on_waiting: Callable[[str], object] | None = None,
    port: int | None = None,
    saved_refresh_token: SavedRefreshToken | None = None,
) -> OrgConnection:
    """Sign in through the browser: PKCE web-server flow with a loopback callback.

    The callback listens on the first free port of ``callback_ports``; each must
    match a callback URL registered for the app (``http://localhost:<port>/callback``),
    and 0 picks any free port, which only the practice org accepts. ``port`` is the
    older spelling of ``callback_ports=(port,)``. ``on_waiting(authorize_url)`` is
    called once the listener is up, before the browser opens, so the app can offer
    the link for copying.

    A callback without this sign-in's state gets a failure page and is ignored.
    When reading the identity or checking the API version fails after the code
    exchange, the new tokens are revoked before the error is raised.

    Raises CallbackPortBusy when no port is free, OAuthError when the callback
    carries an error or no callback arrives in ``timeout`` seconds, and Cancelled
    when ``cancel`` is set while waiting.
    """
    if port is not None:
        callback_ports = (port,)
    session = build_session(ca_bundle)
    pkce = new_pkce()
    with open_loopback_receiver(callback_ports, expected_state=pkce.state) as receiver:
        redirect_uri = receiver.redirect_uri
        url = authorize_url(login_host, client_id, redirect_uri, pkce, login_hint=login_hint)
        if on_waiting is not None:
            on_waiting(url)
        if open_browser(url) is False:
            logger.warning("No web browser could be opened; the sign-in link must be opened by hand")
        code = receiver.wait_for_code(pkce.state, timeout=timeout, cancel=cancel)
    tokens = exchange_code(session, login_host, client_id, redirect_uri, code, pkce.verifier)
    return open_connection(
        session,
        tokens,
        login_host=login_host,
        client_id=client_id,
        api_version=api_version,
        on_tokens_refreshed=on_tokens_refreshed,
        saved_refresh_token=saved_refresh_token,
        revoke_on_failure=True,
    )


def resume_with_refresh_token(
    login_host: str,
    client_id: str,
    refresh_token: str,
    *,
    ca_bundle: Path | None = None,
    api_version: str = API_VERSION,
    on_tokens_refreshed: TokensRefreshed | None = None,
    saved_refresh_token: SavedRefreshToken | None = None,
) -> OrgConnection:
    """Open a connection from a saved refresh token, without a browser.

    ``on_tokens_refreshed`` gets this first TokenSet too, before its access token
    is used, because with rotation the saved refresh token is already void.
    ``saved_refresh_token`` serves as in OrgConnection, for this first refresh too.
    Raises SignInRequired when the org rejects the refresh token (invalid_grant),
    and OAuthError for other token endpoint errors.
    """
    session = build_session(ca_bundle)
    try:
        tokens = _refresh_with_saved_token(
            session, login_host, client_id, refresh_token, saved_refresh_token
        )
    except OAuthError as exc:
        if exc.error != "invalid_grant":
            raise
        raise SignInRequired(_host_name(login_host), f"{exc.error}: {exc.description}") from exc
    _report_tokens(on_tokens_refreshed, tokens)
    return open_connection(
        session,
        tokens,
        login_host=login_host,
        client_id=client_id,
        api_version=api_version,
        on_tokens_refreshed=on_tokens_refreshed,
        saved_refresh_token=saved_refresh_token,
    )


def connect_with_password(
    login_host: str,
    username: str,
    password: str,
    security_token: str,
    *,
    ca_bundle: Path | None = None,
    api_version: str = API_VERSION,
) -> OrgConnection:
    """Sign in with username, password and security token through SOAP ``login()``.

    Salesforce retires this sign-in (not available from API version 65.0). The
    session has no refresh token, so once it expires calls raise SignInRequired.
    Raises SalesforceProblem with Salesforce's fault code, such as INVALID_LOGIN.
    """
    session = build_session(ca_bundle)
    result = soap_login(
        session, login_host, username, password, security_token, api_version=api_version
    )
    tokens = TokenSet(
        access_token=result.session_id,
        refresh_token=None,
        instance_url=result.instance_url,
        id_url="",
        issued_at="",
    )
    connection = OrgConnection(
        session, tokens, login_host=login_host, client_id="", api_version=api_version
    )
    connection.no_refresh_reason = "the password sign-in's session expired and cannot be renewed"
    return connection.open(result.identity())


def connect_with_access_token(
    instance_url: str,
    access_token: str,
    *,
    ca_bundle: Path | None = None,
    api_version: str = API_VERSION,
) -> OrgConnection:
    """Open a one-off connection with an access token pasted by the admin.

    Who the token belongs to comes from ``<instance_url>/services/oauth2/userinfo``.
    Nothing can renew the token: once it expires calls raise SignInRequired, and
    so does opening with a token that is already invalid.

    The instance URL is checked before any request, so a token pasted into the
    wrong field never goes out as a host name. Whitespace anywhere in the token
    (a line break from copying a wrapped line) is removed, because Salesforce
    access tokens contain none. Raises ValueError for an unusable instance URL
    or an empty token.
    """
    base_url = _checked_instance_url(instance_url)
    token = "".join(access_token.split())
    if not token:
        raise ValueError("The access token is empty; paste the whole token.")
    session = build_session(ca_bundle)
    tokens = TokenSet(
        access_token=token,
        refresh_token=None,
        instance_url=base_url,
        id_url="",
        issued_at="",
    )
    connection = OrgConnection(
        session, tokens, login_host=base_url, client_id="", api_version=api_version
    )
    connection.no_refresh_reason = "the access token is invalid, expired or revoked, and cannot be renewed"
    return connection.open()


_PASTE_INSTANCE_URL = "paste the org's address, such as https://mycompany.my.salesforce.com."


def _checked_instance_url(instance_url: str) -> str:
    """Return ``https://host[:port]`` of a pasted instance URL, or raise ValueError.

    The URL must use https and contain only a host name (with an optional port):
    no user name, path, query or fragment. The message never repeats the text,
    because it may be a token pasted into the wrong field.
    """
    text = instance_url.strip().rstrip("/")
    if not text:
        raise ValueError(f"The instance URL is empty; {_PASTE_INSTANCE_URL}")
    if any(character.isspace() for character in text):
        raise ValueError(f"The instance URL contains spaces; {_PASTE_INSTANCE_URL}")
    base_url = login_base_url(text)  # raises ValueError for a scheme other than https
    parts = urlsplit(base_url)
    try:
        _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(f"The instance URL has an invalid port; {_PASTE_INSTANCE_URL}") from None
    host = parts.hostname or ""
    labels = host.removesuffix(".").split(".")
    if (
        parts.username is not None
        or not host
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
    ):
        raise ValueError(
            f"The instance URL is not a host name (is it the access token?); {_PASTE_INSTANCE_URL}"
        )
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"The instance URL has a path or query after the host; {_PASTE_INSTANCE_URL}")
    return base_url


def _host_name(login_host: str) -> str:
    """Return ``host[:port]`` of a login host given with or without a scheme."""
    address = login_host.strip()
    return urlsplit(address if "://" in address else f"https://{address}").netloc or address


def _without_attributes(record: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in record.items():
        if name == "attributes":
            continue
        cleaned[name] = _without_attributes(value) if isinstance(value, dict) else value
    return cleaned


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)
