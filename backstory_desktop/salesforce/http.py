"""The HTTP session every Salesforce call goes through.

It trusts the CA bundle an org profile names even when ``REQUESTS_CA_BUNDLE`` or
``CURL_CA_BUNDLE`` is set, puts connect and read timeouts on every request,
identifies the client in ``Sforce-Call-Options`` and retries only requests that
are safe to repeat.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from backstory_desktop import __version__

if TYPE_CHECKING:
    from requests.sessions import _Settings

# (connect, read) in seconds. Salesforce ends a REST request after 10 minutes,
# but a query page or a 200-record upsert normally returns within seconds.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)

CLIENT_NAME = f"BackstoryDesktop/{__version__}"

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUSES = (502, 503, 504)


class IdempotentOnlyRetry(Retry):
    """A urllib3 Retry that never repeats a request whose method can change data.

    urllib3 retries connection errors for every method, so a POST or PATCH whose
    connection failed would be sent again. Here any error on such a request is
    raised at once, and the caller decides what to do.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> IdempotentOnlyRetry:
        if error is not None and (method is None or method.upper() not in IDEMPOTENT_METHODS):
            if self._is_read_error(error):
                # As urllib3 does for a read error it will not retry, so requests
                # turns it into ReadTimeout or ConnectionError as usual.
                raise error.with_traceback(_stacktrace)
            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _retry_policy() -> IdempotentOnlyRetry:
    return IdempotentOnlyRetry(
        total=3,
        connect=3,
        read=2,
        status=3,
        other=0,
        redirect=False,
        backoff_factor=0.5,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT_METHODS,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


class SalesforceSession(requests.Session):
    """A requests session with an explicit CA bundle, default timeouts and safe retries.

    ``verify`` set on this session wins over the CA bundle variables of the
    environment; requests would otherwise prefer the environment. A request
    with verification switched off raises ValueError. Proxies from the
    environment (HTTPS_PROXY, NO_PROXY) still apply.
    """

    def __init__(
        self,
        ca_bundle: Path | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle
        if ca_bundle is not None:
            self.verify = str(ca_bundle)
        self.default_timeout = timeout
        self.headers["Sforce-Call-Options"] = f"client={CLIENT_NAME}"
        adapter = HTTPAdapter(max_retries=_retry_policy())
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        try:
            return super().request(method, url, *args, **kwargs)
        except requests.exceptions.SSLError as exc:
            # Name the bundle in the error so that the message shows which CA was tried.
            exc.ca_bundle = self.effective_ca_bundle(kwargs.get("verify"))  # type: ignore[attr-defined]
            raise

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        # requests replaces verify=None/True by REQUESTS_CA_BUNDLE or
        # CURL_CA_BUNDLE before it looks at Session.verify, so a bundle named on
        # this session must be put in place first.
        if (verify is None or verify is True) and self.verify is not True:
            verify = self.verify
        if verify is False:
            raise ValueError(
                "TLS certificate verification cannot be switched off for Salesforce requests; "
                "name the CA bundle that signed the certificate instead"
            )
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def effective_ca_bundle(self, verify: Any = None) -> str:
        """Return a description of the CA bundle a request without its own ``verify`` uses."""
        if verify is not None and verify is not True:
            chosen = verify
        elif self.verify is not True:
            chosen = self.verify
        else:
            chosen = (
                os.environ.get("REQUESTS_CA_BUNDLE")
                or os.environ.get("CURL_CA_BUNDLE")
                or "the certifi bundle of requests"
            )
        if chosen is False:
            return "none (verification switched off)"
        return str(chosen)


def build_session(ca_bundle: Path | None = None) -> SalesforceSession:
    """Build the session for one org: ``ca_bundle`` is the PEM file the org profile trusts."""
    return SalesforceSession(ca_bundle)
