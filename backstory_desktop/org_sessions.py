"""Signing in to saved orgs: profiles, refresh tokens in the OS keyring, and resumed sessions.

A profile names an org and how to reach it (store/settings.py). Signing in with
the browser stores the org's refresh token in the keyring under the profile's
alias. The access token stays in memory, inside the OrgConnection. Every token
that a refresh rotates is saved before the connection uses it, so a crash right
after a refresh never leaves only a revoked token in the keyring.

A locked keyring is not the same as a missing token: resume_session lets
SecretsLocked through and never starts a new sign-in that would replace the
saved token. A refresh token that Salesforce rejects
(invalid_grant) becomes SignInRequired, and the stored token is left as it was.
"""

from __future__ import annotations

import logging
import re
import threading
import webbrowser
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from backstory_desktop.core.jobs import check_cancel
from backstory_desktop.salesforce.api_version import API_VERSION
from backstory_desktop.salesforce.connection import (
    OrgConnection,
    connect_with_access_token,
    connect_with_browser,
    connect_with_password,
    resume_with_refresh_token,
)
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.salesforce.http import build_session
from backstory_desktop.salesforce.login_hosts import LoginHost, LoginHostError, normalise_login_host
from backstory_desktop.salesforce.oauth import TokenSet, revoke_token
from backstory_desktop.store.secrets import (
    InsecureKeyringError,
    SecretCorrupted,
    SecretsLocked,
    SecretStore,
    SecretStoreError,
)
from backstory_desktop.store.settings import (
    DEFAULT_CALLBACK_PORTS,
    PRACTICE_PROFILE_ALIAS,
    PROFILE_KINDS,
    SIGN_IN_METHODS,
    OrgProfile,
    check_alias_free,
    delete_profile,
    load_app_settings,
    save_app_settings,
    save_profile,
    validate_alias,
)

log = logging.getLogger(__name__)

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"

# The Salesforce API versions look like "64.0".
_API_VERSION_SHAPE = re.compile(r"[1-9][0-9]{1,2}\.0")
PEM_CERTIFICATE_MARKER = "-----BEGIN CERTIFICATE-----"

# The reason shown in SecretStore.storage_notice when the keyring is insecure and not allowed.
INSECURE_KEYRING_REASON = (
    "the available keyring backend is not a secure store, and the app settings do not allow one"
)

_store: SecretStore | None = None
_store_lock = threading.Lock()

# The insecure keyring backend that was not used for lack of the opt-in, as "name (why)".
_refused_backend = ""

_notices: dict[str, str] = {}
_notices_lock = threading.Lock()


# -- the secret store -------------------------------------------------------------------


def secret_store() -> SecretStore:
    """Return the process-wide SecretStore, creating it on first use.

    It honours AppSettings.allow_insecure_keyring. Without that opt-in, an insecure
    keyring backend gives an in-memory store whose storage_notice states why.
    """
    global _store
    with _store_lock:
        if _store is None:
            _store = _new_secret_store()
        return _store


def reset_secret_store() -> None:
    """Forget the process-wide SecretStore, so the next secret_store() reads the settings again.

    Secrets kept in memory by the old store are lost, and so are the token notices.
    """
    global _store, _refused_backend
    with _store_lock:
        _store = None
        _refused_backend = ""
    with _notices_lock:
        _notices.clear()


def _new_secret_store() -> SecretStore:
    global _refused_backend
    allow_insecure = load_app_settings().allow_insecure_keyring
    try:
        return SecretStore(allow_insecure=allow_insecure)
    except InsecureKeyringError as error:
        log.warning("Keeping sign-in tokens in memory: %s", error)
        _refused_backend = f"{error.backend} ({error.reason})"
        return SecretStore.in_memory(reason=INSECURE_KEYRING_REASON)


def refused_insecure_keyring() -> str:
    """Return the insecure keyring backend left unused for lack of the opt-in, or "" when none was.

    The text names the backend and why it is not secure, for the confirmation that
    lets the admin use it anyway.
    """
    secret_store()
    with _store_lock:
        return _refused_backend


def allow_insecure_keyring() -> SecretStore:
    """Record the admin's opt-in to an insecure keyring backend and return a store that uses it.

    Tokens kept in memory by the old store are not carried over, so the next sign-in
    saves its token in the newly allowed backend.
    """
    settings = load_app_settings()
    settings.allow_insecure_keyring = True
    save_app_settings(settings)
    log.warning("The admin allowed an insecure keyring backend for sign-in tokens")
    reset_secret_store()
    return secret_store()


def token_notice(alias: str) -> str:
    """Return one sentence for the UI when the latest refresh token of ``alias`` could not be saved.

    Returns "" when the latest token was saved, or nothing was tried yet.
    """
    with _notices_lock:
        return _notices.get(alias, "")


def _set_notice(alias: str, notice: str) -> None:
    with _notices_lock:
        if notice:
            _notices[alias] = notice
        else:
            _notices.pop(alias, None)


def _token_saver(profile: OrgProfile, secrets: SecretStore) -> Callable[[TokenSet], None]:
    """Return the on_tokens_refreshed callback that saves each new refresh token of ``profile``.

    A token that cannot be saved is reported through token_notice and the log, and the
    connection keeps working with it until the app closes.
    """
    alias = profile.alias
    last_saved: list[str] = []

    def save(tokens: TokenSet) -> None:
        refresh_token = tokens.refresh_token
        if not refresh_token or refresh_token in last_saved:
            return
        was_persistent = secrets.persistent
        try:
            secrets.save(alias, refresh_token)
        except SecretStoreError as error:
            log.warning("Could not save the new refresh token of %s: %s", alias, error)
            cause = "is locked" if isinstance(error, SecretsLocked) else "failed (the log has the details)"
            _set_notice(
                alias,
                f"The sign-in to {alias} could not be saved because the keyring {cause}, so you will "
                "need to sign in again after restarting the app.",
            )
            return
        last_saved[:] = [refresh_token]
        if was_persistent and not secrets.persistent:
            # The store fell back to memory because the keyring failed mid-run.
            _set_notice(
                alias,
                f"The keyring stopped working, so the sign-in to {alias} is kept in memory only and "
                "you will need to sign in again after restarting the app.",
            )
            return
        _set_notice(alias, "")

    return save


def _saved_token_reader(alias: str, secrets: SecretStore) -> Callable[[], str | None]:
    """Return the saved_refresh_token hook of a connection: the refresh token now saved for ``alias``.

    Another process (such as `diagnose --org`) may have rotated the token the connection
    holds, and then the saved one is the one that still works. A keyring that cannot be
    read counts as no saved token.
    """

    def load() -> str | None:
        try:
            return secrets.load(alias)
        except SecretStoreError as error:
            log.warning("Could not read the saved refresh token of %s: %s", alias, error)
            return None

    return load


# -- profiles ------------------------------------------------------------------------------


def new_profile(
    alias: str,
    kind: str,
    login_host: str,
    client_id: str,
    *,
    api_version: str = "",
    ca_bundle: str = "",
    callback_ports: Sequence[int] | None = None,
    sign_in_method: str = "browser",
    taken_aliases: Collection[str] = (),
) -> OrgProfile:
    """Check what an admin typed for a new or edited profile and return the profile, unsaved.

    ``login_host`` may be empty for production and sandbox orgs (login.salesforce.com and
    test.salesforce.com). ``taken_aliases`` are the aliases of other saved profiles; the
    alias may equal none of them, nor "practice", in any letter case. Raises ValueError
    with one sentence naming the problem.
    """
    alias = validate_alias(alias.strip())
    if kind not in PROFILE_KINDS:
        raise ValueError(f"The kind {kind!r} is unknown, so pick one of {', '.join(PROFILE_KINDS)}.")
    if alias == PRACTICE_PROFILE_ALIAS and kind != "practice":
        raise ValueError(
            f"The alias {alias} belongs to the built-in practice org, so choose another alias."
        )
    if alias in taken_aliases:
        raise ValueError(f"An org profile named {alias} exists already, so choose another alias.")
    check_alias_free(alias, taken_aliases)
    if sign_in_method not in SIGN_IN_METHODS:
        raise ValueError(
            f"The sign-in method {sign_in_method!r} is unknown, so pick one of "
            f"{', '.join(SIGN_IN_METHODS)}."
        )

    client_id = client_id.strip()
    if sign_in_method == "browser" and not client_id:
        raise ValueError(
            "The consumer key is empty, so copy it from the external client app's OAuth settings "
            "in Salesforce Setup."
        )
    return OrgProfile(
        alias=alias,
        kind=kind,
        login_host=_login_host_for(kind, login_host.strip()),
        client_id=client_id,
        api_version=_checked_api_version(api_version.strip()),
        ca_bundle=_checked_ca_bundle(ca_bundle.strip()),
        callback_ports=_checked_callback_ports(kind, callback_ports),
        sign_in_method=sign_in_method,
    )


def _login_host_for(kind: str, text: str) -> str:
    """Return the login host URL for a profile of ``kind``, or raise ValueError."""
    if not text:
        return _default_login_host(kind)
    return checked_login_host(kind, text).url


def _default_login_host(kind: str) -> str:
    if kind == "production":
        return PRODUCTION_LOGIN_URL
    if kind == "sandbox":
        return SANDBOX_LOGIN_URL
    if kind == "practice":
        return ""
    if kind == "mydomain":
        raise ValueError("The My Domain is empty, so type it, such as mycompany.my.salesforce.com.")
    raise ValueError(
        "The login host is empty, so type the served practice org's address, such as "
        "https://127.0.0.1:8443."
    )



def checked_login_host(kind: str, text: str) -> LoginHost:
    """Normalise a login host typed for a profile of ``kind`` and check that it fits the kind.

    The profile dialog's live line and its Save both use this, so they never disagree.
    Raises ValueError with one sentence naming the problem and what to type.
    """
    local_allowed = kind in ("served", "practice")
    try:
        host = normalise_login_host(text.strip(), allow_local=local_allowed)
    except LoginHostError as error:
        if local_allowed:
            # The general message advises a Salesforce login host, which is wrong for this kind.
            raise ValueError(
                f"{text.strip()} is not the address of a practice org served on this computer, so "
                "type the https://127.0.0.1:PORT address that 'backstory-desktop practice-org serve' "
                "printed."
            ) from None
        raise ValueError(str(error)) from None
    _check_kind_matches_host(kind, host)
    return host


def _check_kind_matches_host(kind: str, host: LoginHost) -> None:
    if kind in ("served", "practice"):
        if host.kind != "local":
            raise ValueError(
                f"{host.host} is a Salesforce address, but a practice org is served on this computer, "
                "so type its https://127.0.0.1:PORT address or pick another kind."
            )
        return
    sandbox_host = host.kind == "sandbox" or host.partition == "sandbox"
    if kind == "production" and sandbox_host:
        raise ValueError(
            f"{host.host} is a sandbox login host, so pick the kind sandbox for this profile."
        )
    if kind == "sandbox" and not sandbox_host:
        raise ValueError(
            f"{host.host} is not a sandbox login host, so type test.salesforce.com or the "
            "sandbox's My Domain, such as mycompany--uat.sandbox.my.salesforce.com."
        )
    if kind == "mydomain" and host.kind != "my_domain":
        raise ValueError(
            f"{host.host} is not a My Domain, so type the org's My Domain, such as "
            "mycompany.my.salesforce.com, or pick the kind production or sandbox."
        )


def _checked_api_version(text: str) -> str:
    if text.isdigit():
        # Admins often type "64" for API version 64.0.
        text = f"{text}.0"
    if text and not _API_VERSION_SHAPE.fullmatch(text):
        raise ValueError(
            f"The API version {text!r} is not a Salesforce API version, so type one such as "
            f"{API_VERSION} or leave it empty."
        )
    return text


def _checked_ca_bundle(text: str) -> str:
    if text and not Path(text).expanduser().is_file():
        raise ValueError(
            f"The CA bundle {text} is not a file, so name the PEM file of the certificate authority "
            "or leave it empty."
        )
    if text and not _contains_pem_certificate(Path(text).expanduser()):
        raise ValueError(
            f"The CA bundle {text} contains no PEM certificate (a '{PEM_CERTIFICATE_MARKER}' block), so "
            "choose the certificate authority's .pem file."
        )
    return str(Path(text).expanduser()) if text else ""


def _contains_pem_certificate(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            # A CA bundle with every public CA is about 250 KB; the first certificate comes early.
            head = file.read(1_000_000)
    except OSError as error:
        raise ValueError(
            f"The CA bundle {path} cannot be read ({error.strerror}), so choose another file."
        ) from None
    return PEM_CERTIFICATE_MARKER.encode("ascii") in head


def _checked_callback_ports(kind: str, ports: Sequence[int] | None) -> list[int]:
    if ports is None:
        return list(DEFAULT_CALLBACK_PORTS)
    checked = [int(port) for port in ports]
    if not checked:
        raise ValueError(
            "No callback port is given, so add the port of each callback URL registered for the app, "
            f"such as {DEFAULT_CALLBACK_PORTS[0]}."
        )
    for port in checked:
        if port == 0 and kind not in ("served", "practice"):
            raise ValueError(
                "The callback port 0 (any free port) works only with a practice org, because "
                "Salesforce accepts only the callback URLs registered for the app, so list their ports."
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"The callback port {port} is outside the TCP port range 1 to 65535.")
    if len(set(checked)) != len(checked):
        raise ValueError("A callback port is listed twice, so list each port once.")
    return checked


def remove_profile(
    profile: OrgProfile, secrets: SecretStore, *, connection: OrgConnection | None = None
) -> None:
    """Sign out of ``profile``, delete it from the profiles file, and forget it as the last profile.

    ``connection`` is the profile's open connection, if any, and is revoked first. When
    sign_out raises, the profile stays, so that the admin can sign out again.
    """
    sign_out(profile, secrets, connection=connection)
    delete_profile(profile.alias)
    settings = load_app_settings()
    if settings.last_profile == profile.alias:
        settings.last_profile = ""
        save_app_settings(settings)


# -- signing in ------------------------------------------------------------------------------


def sign_in_with_browser(
    profile: OrgProfile,
    secrets: SecretStore,
    *,
    open_browser: Callable[[str], object] = webbrowser.open,
    timeout: float = 300.0,
    cancel: threading.Event | None = None,
    on_waiting: Callable[[str], None] | None = None,
) -> OrgConnection:
    """Sign in through the browser, store the refresh token, and save the profile.

    The refresh token is saved under ``profile.alias`` before this returns, and each
    token a later refresh rotates is saved before it is used. A token the keyring
    cannot take is reported by token_notice; the connection works regardless.
    """
    save_tokens = _token_saver(profile, secrets)
    connection = connect_with_browser(
        profile.login_host,
        profile.client_id,
        ca_bundle=_ca_bundle_path(profile),
        open_browser=open_browser,
        callback_ports=tuple(profile.callback_ports),
        timeout=timeout,
        cancel=cancel,
        api_version=_api_version(profile),
        on_tokens_refreshed=save_tokens,
        on_waiting=on_waiting,
        saved_refresh_token=_saved_token_reader(profile.alias, secrets),
    )
    save_tokens(connection.tokens)
    _record_connection(profile, connection)
    log.info("Signed in to %s with the browser as %s", profile.alias, connection.username)
    return connection


def resume_session(
    profile: OrgProfile,
    secrets: SecretStore,
    *,
    cancel: threading.Event | None = None,
    save_profile: bool = True,
) -> OrgConnection:
    """Open a connection with the saved refresh token of ``profile``; never opens a browser.

    The org's address, user and API version are copied to ``profile``, and saved to the
    profiles file unless ``save_profile`` is False (for read-only callers such as diagnose).
    Rotated refresh tokens are saved to the keyring either way.

    Raises SignInRequired when no token is saved, the saved one is damaged, or Salesforce
    rejects it (the stored token is left in place). Raises SecretsLocked when the keyring is
    locked: the token may still be there, so this is not a reason to sign in again.
    """
    check_cancel(cancel)
    where = _where(profile)
    try:
        refresh_token = secrets.load(profile.alias)
    except SecretCorrupted as error:
        raise SignInRequired(where, "the saved sign-in is damaged", str(error)) from error
    if refresh_token is None:
        raise SignInRequired(where, "no sign-in is saved on this computer")

    connection = resume_with_refresh_token(
        profile.login_host,
        profile.client_id,
        refresh_token,
        ca_bundle=_ca_bundle_path(profile),
        api_version=_api_version(profile),
        on_tokens_refreshed=_token_saver(profile, secrets),
        saved_refresh_token=_saved_token_reader(profile.alias, secrets),
    )
    check_cancel(cancel)
    _record_connection(profile, connection, save=save_profile)
    log.info("Resumed the session of %s as %s", profile.alias, connection.username)
    return connection


def sign_in_with_password(
    profile: OrgProfile, username: str, password: str, security_token: str
) -> OrgConnection:
    """Sign in with a username, password and security token (SOAP login); nothing is stored.

    The session cannot be renewed, so SignInRequired follows once it expires.
    """
    connection = connect_with_password(
        profile.login_host,
        username,
        password,
        security_token,
        ca_bundle=_ca_bundle_path(profile),
        api_version=_api_version(profile),
    )
    _record_connection(profile, connection)
    log.info("Signed in to %s with a password as %s", profile.alias, connection.username)
    return connection


def sign_in_with_access_token(profile: OrgProfile, instance_url: str, access_token: str) -> OrgConnection:
    """Use an access token pasted by the admin for this run only; nothing is stored."""
    connection = connect_with_access_token(
        instance_url.strip(),
        access_token.strip(),
        ca_bundle=_ca_bundle_path(profile),
        api_version=_api_version(profile),
    )
    _record_connection(profile, connection)
    log.info("Signed in to %s with an access token as %s", profile.alias, connection.username)
    return connection


def sign_out(
    profile: OrgProfile, secrets: SecretStore, *, connection: OrgConnection | None = None
) -> None:
    """Revoke the sign-in of ``profile`` at its login host (best effort) and delete the saved token.

    ``connection``, when given, is revoked first, which ends its access and refresh tokens
    even when the keyring cannot be read. Raises SecretsLocked when the keyring is locked
    and SecretStoreError when it fails, each saying that the saved token was not deleted.
    """
    if connection is not None:
        connection.revoke()
    try:
        refresh_token = secrets.load(profile.alias)
    except SecretCorrupted:
        refresh_token = None
    except SecretStoreError as error:
        raise _sign_out_incomplete(profile, error, revoked=connection is not None) from error

    revoked_already = connection is not None and connection.tokens.refresh_token == refresh_token
    if refresh_token and profile.login_host and not revoked_already:
        _revoke_quietly(profile, refresh_token)
    try:
        secrets.delete(profile.alias)
    except SecretStoreError as error:
        revoked = connection is not None or bool(refresh_token and profile.login_host)
        raise _sign_out_incomplete(profile, error, revoked=revoked) from error
    _set_notice(profile.alias, "")
    log.info("Signed out of %s", profile.alias)


def _sign_out_incomplete(profile: OrgProfile, error: SecretStoreError, *, revoked: bool) -> SecretStoreError:
    """Return the error for a sign-out whose saved token could not be read or deleted."""
    log.warning("Signing out of %s left its saved token in place: %s", profile.alias, error)
    locked = isinstance(error, SecretsLocked)
    if locked:
        cause = "the keyring is locked or did not respond"
    else:
        cause = "the keyring failed (the log has the details)"
    if revoked:
        outcome = f"The sign-in of {profile.alias} was revoked, but the saved sign-in could not be deleted"
    else:
        outcome = f"The saved sign-in of {profile.alias} could not be revoked or deleted"
    message = f"{outcome} because {cause}, so unlock the keyring and sign out again."
    return SecretsLocked(message) if locked else SecretStoreError(message)


def _revoke_quietly(profile: OrgProfile, refresh_token: str) -> None:
    session = build_session(_ca_bundle_path(profile))
    try:
        revoke_token(session, profile.login_host, refresh_token)
    except ValueError as error:
        # revoke_token logs request failures itself; a login host it cannot use raises ValueError.
        log.warning("Could not revoke the sign-in of %s: %s", profile.alias, error)
    finally:
        session.close()


def _record_connection(profile: OrgProfile, connection: OrgConnection, *, save: bool = True) -> None:
    """Copy the org's address, the user and the API version to the profile, and save it if ``save``."""
    profile.instance_url = connection.instance_url
    profile.username = connection.username
    profile.api_version = connection.api_version
    if save:
        save_profile(profile)


def _ca_bundle_path(profile: OrgProfile) -> Path | None:
    return Path(profile.ca_bundle) if profile.ca_bundle else None


def _api_version(profile: OrgProfile) -> str:
    return profile.api_version or API_VERSION


def _where(profile: OrgProfile) -> str:
    address = profile.instance_url or profile.login_host
    return f"{profile.alias} ({address})" if address else profile.alias
