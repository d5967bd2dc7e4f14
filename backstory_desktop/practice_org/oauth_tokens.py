"""OAuth access and refresh tokens of the practice org: issue, look up, rotate and revoke.

Every approved authorization starts a token family: its refresh token, each
refresh token that replaces it on a refresh (rotation), and every access token
issued from any of them. Revoking a refresh token ends the whole family, as
Salesforce revokes a refresh token "and any associated access tokens" (Mobile
SDK Developer Guide, "Revoking OAuth Tokens"). The store keeps each token's
family beside its hash. A token saved before families existed has the empty
family, which the store gives every such token, so it is treated as a family of
its own: revoking it ends only itself, and rotating it starts a new family.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import replace

from backstory_desktop.practice_org.store import Store, TokenGrant, hash_secret, now_utc

ACCESS_TOKEN_LIFETIME = datetime.timedelta(hours=2)

ACCESS = "access"
REFRESH = "refresh"


def start_family(grant: TokenGrant) -> TokenGrant:
    """Return the grant of a new token family, for one approved authorization."""
    return replace(grant, family=secrets.token_hex(8))


def issue_refresh_token(store: Store, grant: TokenGrant) -> str:
    token = f"5Aep{secrets.token_urlsafe(48)}"
    store.save_token(token, REFRESH, grant, None)
    return token


def issue_access_token(store: Store, grant: TokenGrant) -> str:
    # Salesforce access tokens start with the 15-character org id and "!".
    token = f"{store.org_id[:15]}!{secrets.token_urlsafe(64)}"
    store.save_token(token, ACCESS, grant, now_utc() + ACCESS_TOKEN_LIFETIME)
    return token


def find_token(store: Store, token: str, kind: str) -> TokenGrant | None:
    """Return the grant of a live token of the given kind, or None if unknown, expired or revoked."""
    return store.find_token(token, kind)


def rotate_refresh_token(store: Store, token: str) -> tuple[TokenGrant, str] | None:
    """Replace a live refresh token with a new one of the same family, or return None if it is not live.

    The used token stops working at once, as with Salesforce's refresh token
    rotation, while access tokens already issued keep working until they expire.
    """
    grant = store.find_token(token, REFRESH)
    if grant is None:
        return None
    store.revoke_token(token)
    if not grant.family:
        grant = start_family(grant)
    return grant, issue_refresh_token(store, grant)


def revoke(store: Store, token: str) -> bool:
    """Revoke an access token, or a refresh token with its whole family. Return False for a token not live."""
    refresh = store.find_token(token, REFRESH)
    if refresh is not None and not refresh.family:
        # NOTE: the access tokens issued from a token without a family cannot be
        # distinguished from other users' tokens, so they keep working until they expire.
        store.revoke_token(token)
        return True
    if refresh is not None:
        store.revoke_family(refresh.family)
        return True
    if store.find_token(token, ACCESS) is not None:
        store.revoke_token(token)
        return True
    return False


def access_token_key(token: str) -> str:
    """Return the hash that identifies an access token in counters, never the token itself."""
    return hash_secret(token)
