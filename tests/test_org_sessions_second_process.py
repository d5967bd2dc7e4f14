"""Sign-out with a locked keyring, and a refresh token rotated by another process.

A second process that resumes the same profile (such as `diagnose --org`) rotates the
refresh token and saves the new one. The app's open connection then contains a revoked
refresh token, and must pick up the saved one instead of asking for a new sign-in.
Every org is a practice org reached over HTTPS on 127.0.0.1 as a "served" profile.
"""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession

from backstory_desktop.cli import main
from backstory_desktop.diagnostics import resume_for_diagnostics
from backstory_desktop.org_sessions import (
    remove_profile,
    resume_session,
    sign_in_with_browser,
    sign_out,
)
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import resume_with_refresh_token
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.store.secrets import SecretsLocked, SecretStore
from backstory_desktop.store.settings import OrgProfile, load_profiles, profiles_path
from tests.consent_browser import ConsentBrowser, served_profile
from tests.memory_keyring import LockableKeyring, MemoryKeyring

ALIAS = "served-practice"


@pytest.fixture
def profile(default_org: PracticeOrg) -> OrgProfile:
    return served_profile(default_org, ALIAS)


@pytest.fixture
def browser(default_org: PracticeOrg) -> ConsentBrowser:
    return ConsentBrowser(default_org.ca_bundle, default_org.admin_username)


def _refresh_token_works(org: PracticeOrg, refresh_token: str) -> bool:
    try:
        resume_with_refresh_token(org.base_url, org.client_id, refresh_token, ca_bundle=org.ca_bundle)
    except SignInRequired:
        return False
    return True


# -- a token rotated by another process ------------------------------------------------------


def test_rotation_elsewhere__browser_connection_recovers(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg, memory_keyring: MemoryKeyring
) -> None:
    app_connection = sign_in_with_browser(profile, SecretStore(), open_browser=browser, timeout=30)
    # A second process: its own SecretStore over the same keyring, resuming the same profile.
    other_connection = resume_session(profile, SecretStore())
    assert other_connection.tokens.refresh_token != app_connection.tokens.refresh_token
    default_org.expire_sessions()

    rows = list(app_connection.query_all("SELECT Id FROM User"))

    assert rows
    assert len(browser.opened) == 1
    assert SecretStore().load(ALIAS) == app_connection.tokens.refresh_token


def test_rotation_elsewhere__resumed_connection_recovers(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    sign_in_with_browser(profile, SecretStore(), open_browser=browser, timeout=30)
    app_connection = resume_session(profile, SecretStore())
    resume_session(profile, SecretStore())
    default_org.expire_sessions()

    rows = list(app_connection.query_all("SELECT Id FROM User"))

    assert rows
    assert SecretStore().load(ALIAS) == app_connection.tokens.refresh_token


def test_rotation_elsewhere__locked_keyring_asks_for_sign_in(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend = LockableKeyring()
    profile = served_profile(default_org, ALIAS)
    app_connection = sign_in_with_browser(
        profile, SecretStore(backend=backend), open_browser=browser, timeout=30
    )
    resume_session(profile, SecretStore(backend=backend))
    backend.locked = True
    default_org.expire_sessions()

    # The keyring cannot be read, so the saved token counts as missing: no loop, no crash.
    with pytest.raises(SignInRequired):
        list(app_connection.query_all("SELECT Id FROM User"))


# -- diagnose is read-only ------------------------------------------------------------------------


def test_resume__save_profile_false_leaves_file(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    sign_in_with_browser(profile, SecretStore(), open_browser=browser, timeout=30)
    stored = load_profiles()[ALIAS]
    stored.username = ""
    profile_file = profiles_path()
    before = profile_file.stat()

    connection = resume_session(stored, SecretStore(), save_profile=False)

    assert connection.username == default_org.admin_username
    assert stored.username == default_org.admin_username
    after = profile_file.stat()
    # Every save replaces the file with a new one, so the same inode means no save.
    assert after.st_ino == before.st_ino
    assert after.st_mtime_ns == before.st_mtime_ns


def test_diagnostics_resume__leaves_profiles_file(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    sign_in_with_browser(profile, SecretStore(), open_browser=browser, timeout=30)
    stored = load_profiles()[ALIAS]
    profile_file = profiles_path()
    before = profile_file.stat()

    connection, problem = resume_for_diagnostics(stored)

    assert problem == ""
    assert connection is not None
    after = profile_file.stat()
    assert after.st_ino == before.st_ino
    assert after.st_mtime_ns == before.st_mtime_ns


# -- signing out with a locked keyring ----------------------------------------------------------


def _locked_sign_in(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> tuple[LockableKeyring, SecretStore, OrgProfile]:
    backend = LockableKeyring()
    store = SecretStore(backend=backend)
    profile = served_profile(default_org, ALIAS)
    return backend, store, profile


def test_sign_out__locked_keyring_still_revokes_connection(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend, store, profile = _locked_sign_in(default_org, browser)
    connection = sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    refresh_token = connection.tokens.refresh_token
    backend.locked = True

    with pytest.raises(SecretsLocked) as raised:
        sign_out(profile, store, connection=connection)

    message = str(raised.value)
    assert "could not be deleted" in message
    assert "was revoked" in message
    assert "unlock the keyring and sign out again" in message
    assert "No new sign-in is needed" not in message
    assert refresh_token is not None
    assert not _refresh_token_works(default_org, refresh_token)
    with pytest.raises(SalesforceExpiredSession):
        connection.sf.query("SELECT Id FROM User")
    backend.locked = False
    # The saved entry is still there, for a second sign-out to delete.
    assert store.load(ALIAS) == refresh_token


def test_sign_out__locked_keyring_without_connection(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend, store, profile = _locked_sign_in(default_org, browser)
    sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    backend.locked = True

    with pytest.raises(SecretsLocked) as raised:
        sign_out(profile, store)

    message = str(raised.value)
    assert "could not be revoked or deleted" in message
    assert "unlock the keyring and sign out again" in message
    assert "No new sign-in is needed" not in message


def test_sign_out__delete_fails_after_revoking(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend, store, profile = _locked_sign_in(default_org, browser)
    sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    refresh_token = store.load(ALIAS)
    assert refresh_token is not None
    original_delete = backend.delete_password

    def locked_delete(service: str, username: str) -> None:
        backend.locked = True
        original_delete(service, username)

    backend.delete_password = locked_delete  # type: ignore[method-assign]

    with pytest.raises(SecretsLocked) as raised:
        sign_out(profile, store)

    assert "was revoked, but the saved sign-in could not be deleted" in str(raised.value)
    assert not _refresh_token_works(default_org, refresh_token)


def test_remove_profile__locked_keyring_revokes_and_keeps_profile(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend, store, profile = _locked_sign_in(default_org, browser)
    connection = sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    refresh_token = connection.tokens.refresh_token
    backend.locked = True

    with pytest.raises(SecretsLocked):
        remove_profile(profile, store, connection=connection)

    assert refresh_token is not None
    assert not _refresh_token_works(default_org, refresh_token)
    assert ALIAS in load_profiles()


def test_diagnose_org_command__leaves_profiles_file(
    profile: OrgProfile, browser: ConsentBrowser, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_in_with_browser(profile, SecretStore(), open_browser=browser, timeout=30)
    profile_file = profiles_path()
    before = profile_file.stat()

    status = main(["diagnose", "--org", ALIAS])

    assert status == 0
    assert "daily API requests" in capsys.readouterr().out
    after = profile_file.stat()
    assert after.st_ino == before.st_ino
    assert after.st_mtime_ns == before.st_mtime_ns
