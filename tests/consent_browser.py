"""A stand-in for the admin's browser during a sign-in to a practice org.

It is passed as ``open_browser``: it approves the consent page of the practice
org as one user, as a person clicking Approve would, then follows the redirect
to the app's loopback callback. Every authorization code it carries is kept in
``codes``, so tests can check that none reaches a log. ``served_profile`` makes
the org profile that reaches a practice org the way the app reaches a real org.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from backstory_desktop import org_sessions
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.store.settings import OrgProfile

SERVED_ALIAS = "served-practice"


def revoke_at_org(org: PracticeOrg, token: str) -> None:
    """End a refresh token at the org, with every access token issued from it."""
    response = requests.post(f"{org.base_url}/services/oauth2/revoke", data={"token": token},
                             verify=str(org.ca_bundle), timeout=30)
    assert response.status_code == 200, response.text


def refresh_with(org: PracticeOrg, refresh_token: str) -> requests.Response:
    """Try a refresh token at the org; HTTP 400 means it was revoked."""
    return requests.post(
        f"{org.base_url}/services/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": org.client_id},
        verify=str(org.ca_bundle), timeout=30,
    )


def served_profile(org: PracticeOrg, alias: str = SERVED_ALIAS) -> OrgProfile:
    """Return an unsaved "served" profile for ``org``, taking any free callback port."""
    return org_sessions.new_profile(
        alias, "served", org.base_url, org.client_id, ca_bundle=str(org.ca_bundle), callback_ports=[0]
    )


class ConsentBrowser:
    """Approves each authorize URL it is sent to as ``username``."""

    def __init__(self, ca_bundle: Path, username: str) -> None:
        self.username = username
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would replace the practice org's CA otherwise.
        self.session.trust_env = False
        self.session.verify = str(ca_bundle)
        self.opened: list[str] = []
        self.codes: list[str] = []
        self.callback_pages: list[str] = []

    def __call__(self, authorize_url: str) -> bool:
        self.opened.append(authorize_url)
        parts = urlsplit(authorize_url)
        form = {name: values[0] for name, values in parse_qs(parts.query).items()}
        form.update(username=self.username, decision="approve")
        consent = self.session.post(
            f"{parts.scheme}://{parts.netloc}{parts.path}", data=form, allow_redirects=False, timeout=30
        )
        callback_url = consent.headers["Location"]
        self.codes.extend(parse_qs(urlsplit(callback_url).query).get("code", []))
        page = self.session.get(callback_url, timeout=30)
        self.callback_pages.append(page.text)
        return True
