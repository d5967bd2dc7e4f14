"""One signed-in connection to an org, built on simple-salesforce and our own session.

The connection pins the API version, checks that the org serves it, renews the
access token once with the refresh token when Salesforce returns
INVALID_SESSION_ID, and replays the request that failed.
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.oauth import (
    LoopbackReceiver,
    OAuthError,
    Pkce,
    TokenSet,
    authorize_url,
    code_from_redirect,
    exchange_code,
    new_pkce,
    refresh_tokens,
)

logger = logging.getLogger(__name__)

API_VERSION = "64.0"

PRACTICE_REDIRECT_URI = "http://127.0.0.1/callback"

T = TypeVar("T")


class OrgConnection:
    """A signed-in connection: simple-salesforce object, our session and who we are.

    ``on_tokens_refreshed`` is called with the new TokenSet after a refresh, so the
    caller can store a rotated refresh token.
    """

    def __init__(
        self,
        session: requests.Session,
        tokens: TokenSet,
        *,
        login_host: str,
        client_id: str,
        api_version: str = API_VERSION,
        on_tokens_refreshed: Callable[[TokenSet], None] | None = None,
    ) -> None:
        self.session = session
        self.login_host = login_host
        self.client_id = client_id
        self.api_version = api_version
        self.on_tokens_refreshed = on_tokens_refreshed
        self._tokens = tokens
        self._refresh_lock = threading.Lock()
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

    def _build_salesforce(self) -> Salesforce:
        return Salesforce(
            instance_url=self._tokens.instance_url,
            session_id=self._tokens.access_token,
            session=self.session,
            version=self.api_version,
            object_pairs_hook=dict,
        )

    # -- opening -----------------------------------------------------------------

    def open(self) -> OrgConnection:
        """Read who we are from the identity URL and check the pinned API version."""
        self._load_identity()
        self.check_api_version()
        logger.info(
            "Connected to org %s as %s (user %s, API %s)",
            self.org_id,
            self.username,
            self.user_id,
            self.api_version,
        )
        return self

    def _load_identity(self) -> None:
        def fetch() -> dict[str, Any]:
            response = self.session.get(
                self._tokens.id_url,
                headers={"Authorization": f"Bearer {self._tokens.access_token}"},
            )
            if response.status_code == 401 or response.status_code == 403:
                raise SalesforceExpiredSession(
                    self._tokens.id_url, response.status_code, "identity", _json_or_text(response)
                )
            response.raise_for_status()
            identity = response.json()
            if not isinstance(identity, dict):
                raise SalesforceProblem(
                    ProblemKind.BUG, "The identity URL did not return a JSON object."
                )
            return identity

        identity = self._with_refresh(fetch)
        self.user_id = str(identity.get("user_id", ""))
        self.org_id = str(identity.get("organization_id", ""))
        self.username = str(identity.get("username", ""))
        self.display_name = str(identity.get("display_name", ""))

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

    # -- session renewal -------------------------------------------------------------

    def _with_refresh(self, call: Callable[[], T]) -> T:
        token_used = self._tokens.access_token
        try:
            return call()
        except SalesforceExpiredSession:
            if not self._tokens.refresh_token:
                raise
            logger.info("Session of %s expired; renewing it once", self.username or "the user")
            self._refresh(token_used)
        return call()

    def _refresh(self, token_used: str) -> None:
        with self._refresh_lock:
            if self._tokens.access_token != token_used:
                return  # another thread renewed it already
            refresh_token = self._tokens.refresh_token
            assert refresh_token is not None
            try:
                tokens = refresh_tokens(self.session, self.login_host, self.client_id, refresh_token)
            except OAuthError as exc:
                logger.warning("Renewing the session of %s failed: %s", self.username, exc.error)
                raise explain(exc) from exc
            self._tokens = tokens
            self.instance_url = tokens.instance_url
            self.sf = self._build_salesforce()
        if self.on_tokens_refreshed is not None:
            self.on_tokens_refreshed(tokens)


def open_connection(
    session: requests.Session,
    tokens: TokenSet,
    *,
    login_host: str,
    client_id: str,
    api_version: str = API_VERSION,
    on_tokens_refreshed: Callable[[TokenSet], None] | None = None,
) -> OrgConnection:
    """Build an OrgConnection from tokens, read the identity and check the API version."""
    connection = OrgConnection(
        session,
        tokens,
        login_host=login_host,
        client_id=client_id,
        api_version=api_version,
        on_tokens_refreshed=on_tokens_refreshed,
    )
    return connection.open()


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
    port: int = 0,
    login_hint: str | None = None,
    timeout: float = 300.0,
    cancel: threading.Event | None = None,
    api_version: str = API_VERSION,
    on_tokens_refreshed: Callable[[TokenSet], None] | None = None,
) -> OrgConnection:
    """Sign in through the browser: PKCE web-server flow with a loopback callback.

    ``port`` must match the callback URL registered for the app
    (``http://127.0.0.1:<port>/callback``); 0 picks a free port, which only the
    practice org accepts.
    """
    session = build_session(ca_bundle)
    pkce = new_pkce()
    with LoopbackReceiver(port=port) as receiver:
        redirect_uri = receiver.redirect_uri
        open_browser(authorize_url(login_host, client_id, redirect_uri, pkce, login_hint=login_hint))
        code = receiver.wait_for_code(pkce.state, timeout=timeout, cancel=cancel)
    tokens = exchange_code(session, login_host, client_id, redirect_uri, code, pkce.verifier)
    return open_connection(
        session,
        tokens,
        login_host=login_host,
        client_id=client_id,
        api_version=api_version,
        on_tokens_refreshed=on_tokens_refreshed,
    )


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
