"""Log in to a practice org the way the product does: OAuth PKCE over HTTPS, then simple-salesforce."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from simple_salesforce import Salesforce

from backstory_desktop.practice_org import PracticeOrg

API_VERSION = "64.0"
REDIRECT_URI = "http://127.0.0.1/callback"


@dataclass
class Login:
    """An authorised session of one practice org user."""

    org: PracticeOrg
    http: requests.Session
    access_token: str
    refresh_token: str
    sf: Salesforce

    def url(self, path: str) -> str:
        return f"{self.org.base_url}/services/data/v{API_VERSION}/{path}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def https_session(org: PracticeOrg) -> requests.Session:
    """Return a session that trusts only the practice org's CA.

    ``trust_env`` is off because REQUESTS_CA_BUNDLE in the environment would
    otherwise replace ``Session.verify``.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = str(org.ca_bundle)
    return session


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(org: PracticeOrg, http: requests.Session, username: str, challenge: str) -> str:
    """Run the authorize step and return the code from the redirect."""
    response = http.get(f"{org.base_url}/services/oauth2/authorize", allow_redirects=False,
                        params={"response_type": "code", "client_id": org.client_id,
                                "redirect_uri": REDIRECT_URI, "code_challenge": challenge,
                                "code_challenge_method": "S256", "state": "s1",
                                "login_hint": username})
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def login(org: PracticeOrg, username: str) -> Login:
    http = https_session(org)
    verifier, challenge = pkce_pair()
    code = authorize(org, http, username, challenge)
    response = http.post(f"{org.base_url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": org.client_id, "redirect_uri": REDIRECT_URI,
    })
    assert response.status_code == 200, response.text
    tokens = response.json()
    sf = Salesforce(instance_url=tokens["instance_url"], session_id=tokens["access_token"],
                    session=http, version=API_VERSION)
    return Login(org, http, tokens["access_token"], tokens["refresh_token"], sf)
