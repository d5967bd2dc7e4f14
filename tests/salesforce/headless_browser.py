"""A stand-in for the admin's web browser in sign-in tests.

The practice org approves at once an authorize request that names
``login_hint`` and does not ask for HTML. So the "browser" GETs the authorize
URL without following the redirect. Then it GETs the redirect's Location on the
loopback listener as a browser would, after an optional edit of that URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from backstory_desktop.practice_org.server import PracticeOrg

CallbackEdit = Callable[[str], str]


def replace_query_value(url: str, name: str, value: str) -> str:
    """Return ``url`` with the query parameter ``name`` set to ``value``."""
    parts = urlsplit(url)
    query = [(key, value if key == name else old) for key, old in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class HeadlessBrowser:
    """Opens authorize URLs at a practice org and delivers the callback to the loopback."""

    org: PracticeOrg
    edit_callback: CallbackEdit | None = None
    callbacks_per_sign_in: int = 1
    opened: list[str] = field(default_factory=list)
    callback_pages: list[requests.Response] = field(default_factory=list)

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        with requests.Session() as org_http:
            org_http.trust_env = False
            org_http.verify = str(self.org.ca_bundle)
            authorize = org_http.get(url, allow_redirects=False, timeout=30)
        assert authorize.status_code == 302, authorize.text
        location = authorize.headers["Location"]
        if self.edit_callback is not None:
            location = self.edit_callback(location)
        with requests.Session() as loopback:
            # Proxy variables of a test must not reach the loopback listener.
            loopback.trust_env = False
            for _ in range(self.callbacks_per_sign_in):
                self.callback_pages.append(loopback.get(location, timeout=30))
        return True
