"""Signing in to a saved org profile: the refresh token goes to the keyring, rotated tokens are
saved before use, and a locked keyring or a rejected token never turns into a new sign-in.

Every org is a practice org reached over HTTPS on 127.0.0.1 as a "served" profile, the way
the app reaches a real org. The keyring is the in-memory test backend.
"""

from __future__ import annotations

import os
import stat
import threading

import keyring
import pytest
from keyring.errors import NoKeyringError
from simple_salesforce.exceptions import SalesforceExpiredSession

from backstory_desktop import org_sessions
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.org_sessions import (
    remove_profile,
    resume_session,
    secret_store,
    sign_in_with_browser,
    sign_out,
    token_notice,
)
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, resume_with_refresh_token
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.store.secrets import SecretsLocked, SecretStore
from backstory_desktop.store.settings import (
    AppSettings,
    OrgProfile,
    load_app_settings,
    load_profiles,
    profiles_path,
    save_app_settings,
    save_profile,
)
from tests.consent_browser import ConsentBrowser, served_profile
from tests.memory_keyring import LockableKeyring, MemoryKeyring

ALIAS = "served-practice"


@pytest.fixture
def profile(default_org: PracticeOrg) -> OrgProfile:
    return served_profile(default_org, ALIAS)


@pytest.fixture
def browser(default_org: PracticeOrg) -> ConsentBrowser:
    return ConsentBrowser(default_org.ca_bundle, default_org.admin_username)


def sign_in(profile: OrgProfile, browser: ConsentBrowser) -> OrgConnection:
    return sign_in_with_browser(profile, secret_store(), open_browser=browser, timeout=30)


def test_sign_in__stores_refresh_token_under_alias(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    connection = sign_in(profile, browser)

    assert connection.username == default_org.admin_username
    assert connection.tokens.refresh_token
    assert secret_store().load(ALIAS) == connection.tokens.refresh_token
    assert len(browser.opened) == 1


def test_sign_in__fills_and_saves_the_profile(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    connection = sign_in(profile, browser)

    saved = load_profiles()[ALIAS]
    assert saved.instance_url == default_org.base_url
    assert saved.username == default_org.admin_username
    assert saved.api_version == connection.api_version
    assert saved.login_host == default_org.base_url
    assert saved.kind == "served"


def test_sign_in__profile_file_has_no_token(
    profile: OrgProfile, browser: ConsentBrowser
) -> None:
    connection = sign_in(profile, browser)
    text = profiles_path().read_text(encoding="utf-8")

    assert connection.tokens.access_token not in text
    assert connection.tokens.refresh_token is not None
    assert connection.tokens.refresh_token not in text
    for code in browser.codes:
        assert code not in text
    if os.name == "posix":
        assert stat.S_IMODE(profiles_path().stat().st_mode) == 0o600


def test_sign_in__on_waiting_gets_browser_link(
    profile: OrgProfile, browser: ConsentBrowser
) -> None:
    links: list[str] = []

    sign_in_with_browser(profile, secret_store(), open_browser=browser, timeout=30, on_waiting=links.append)

    assert links == browser.opened
    assert "code_challenge_method=S256" in links[0]


def test_sign_in__cancel_stores_nothing(profile: OrgProfile, memory_keyring: MemoryKeyring) -> None:
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(Cancelled):
        sign_in_with_browser(profile, secret_store(), open_browser=lambda url: True, cancel=cancel)

    assert memory_keyring.entries == {}
    assert ALIAS not in load_profiles()


def test_refresh__rotated_token_stored_before_use(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg, memory_keyring: MemoryKeyring
) -> None:
    connection = sign_in(profile, browser)
    first_refresh_token = connection.tokens.refresh_token
    requests_when_saved: list[int] = []
    original_set_password = memory_keyring.set_password

    def recording_set_password(service: str, username: str, password: str) -> None:
        requests_when_saved.append(default_org.request_count)
        original_set_password(service, username, password)

    memory_keyring.set_password = recording_set_password  # type: ignore[method-assign]
    default_org.expire_sessions()

    rows = list(connection.query_all("SELECT Id FROM User"))
    requests_after_query = default_org.request_count

    assert rows
    assert connection.tokens.refresh_token != first_refresh_token
    assert secret_store().load(ALIAS) == connection.tokens.refresh_token
    assert requests_when_saved
    # The replayed query reached the org after the new token was written to the keyring.
    assert max(requests_when_saved) < requests_after_query, (requests_when_saved, requests_after_query)


def test_refresh__unsaved_token_sets_notice(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend = LockableKeyring()
    store = SecretStore(backend=backend)
    profile = served_profile(default_org, ALIAS)
    connection = sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    backend.locked = True
    default_org.expire_sessions()

    rows = list(connection.query_all("SELECT Id FROM User"))

    assert rows
    assert "could not be saved" in token_notice(ALIAS)
    assert "sign in again after restarting" in token_notice(ALIAS)
    backend.locked = False
    list(connection.query_all("SELECT Id FROM User"))
    default_org.expire_sessions()
    list(connection.query_all("SELECT Id FROM User"))
    assert token_notice(ALIAS) == ""
    assert store.load(ALIAS) == connection.tokens.refresh_token


def test_sign_in__locked_keyring_sets_notice(default_org: PracticeOrg, browser: ConsentBrowser) -> None:
    backend = LockableKeyring()
    store = SecretStore(backend=backend)
    profile = served_profile(default_org, ALIAS)
    backend.locked = True

    connection = sign_in_with_browser(profile, store, open_browser=browser, timeout=30)

    assert list(connection.query_all("SELECT Id FROM User"))
    assert "could not be saved because the keyring is locked" in token_notice(ALIAS)
    assert backend.entries == {}


def test_resume__opens_without_browser(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    sign_in(profile, browser)
    saved_before = secret_store().load(ALIAS)

    resumed = resume_session(load_profiles()[ALIAS], secret_store())

    assert resumed.username == default_org.admin_username
    assert len(browser.opened) == 1
    assert resumed.tokens.refresh_token != saved_before
    assert secret_store().load(ALIAS) == resumed.tokens.refresh_token
    assert list(resumed.query_all("SELECT Id FROM User"))


def test_resume__works_after_store_restart(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    sign_in(profile, browser)
    org_sessions.reset_secret_store()

    resumed = resume_session(load_profiles()[ALIAS], secret_store())

    assert resumed.username == default_org.admin_username


def test_resume__missing_token_needs_sign_in(profile: OrgProfile) -> None:
    with pytest.raises(SignInRequired) as raised:
        resume_session(profile, secret_store())

    assert ALIAS in raised.value.sentence
    assert "sign in again" in raised.value.sentence


def test_resume__locked_keyring_keeps_token(
    default_org: PracticeOrg, browser: ConsentBrowser
) -> None:
    backend = LockableKeyring()
    store = SecretStore(backend=backend)
    profile = served_profile(default_org, ALIAS)
    sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    entries_before = dict(backend.entries)
    backend.locked = True

    with pytest.raises(SecretsLocked):
        resume_session(profile, store)

    backend.locked = False
    assert backend.entries == entries_before
    assert len(browser.opened) == 1
    # The token kept through the locked period still opens the org.
    assert resume_session(profile, store).username == default_org.admin_username


def test_resume__rejected_token_stays_stored(
    profile: OrgProfile, browser: ConsentBrowser, memory_keyring: MemoryKeyring
) -> None:
    connection = sign_in(profile, browser)
    saved = secret_store().load(ALIAS)
    # Revoking the refresh token at the org makes the next refresh invalid_grant.
    connection.revoke()
    entries_before = dict(memory_keyring.entries)

    with pytest.raises(SignInRequired) as raised:
        resume_session(profile, secret_store())

    assert "invalid_grant" in raised.value.sentence
    assert memory_keyring.entries == entries_before
    assert secret_store().load(ALIAS) == saved
    assert len(browser.opened) == 1


def test_resume__damaged_token_needs_sign_in(
    profile: OrgProfile, browser: ConsentBrowser, memory_keyring: MemoryKeyring
) -> None:
    sign_in(profile, browser)
    for key in memory_keyring.entries:
        if "#part-" in key[1]:
            memory_keyring.entries[key] = "altered"

    with pytest.raises(SignInRequired) as raised:
        resume_session(profile, secret_store())

    assert "damaged" in raised.value.sentence


def test_resume__cancel_before_start_touches_nothing(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    sign_in(profile, browser)
    saved = secret_store().load(ALIAS)
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(Cancelled):
        resume_session(profile, secret_store(), cancel=cancel)

    assert secret_store().load(ALIAS) == saved


def test_sign_out__revokes_and_deletes_token(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg, memory_keyring: MemoryKeyring
) -> None:
    sign_in(profile, browser)
    refresh_token = secret_store().load(ALIAS)
    assert refresh_token is not None

    sign_out(profile, secret_store())

    assert secret_store().load(ALIAS) is None
    assert memory_keyring.entries == {}
    with pytest.raises(SignInRequired):
        resume_with_refresh_token(
            default_org.base_url, default_org.client_id, refresh_token, ca_bundle=default_org.ca_bundle
        )


def test_sign_out__ends_the_open_connection(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    connection = sign_in(profile, browser)
    access_token = connection.tokens.access_token

    sign_out(profile, secret_store(), connection=connection)

    with pytest.raises(SignInRequired):
        list(connection.query_all("SELECT Id FROM User"))
    # The org itself no longer accepts the access token.
    assert connection.sf.session_id == access_token
    with pytest.raises(SalesforceExpiredSession):
        connection.sf.query("SELECT Id FROM User")


def test_sign_out__locked_keyring_raises(default_org: PracticeOrg, browser: ConsentBrowser) -> None:
    backend = LockableKeyring()
    store = SecretStore(backend=backend)
    profile = served_profile(default_org, ALIAS)
    sign_in_with_browser(profile, store, open_browser=browser, timeout=30)
    backend.locked = True

    with pytest.raises(SecretsLocked):
        sign_out(profile, store)

    backend.locked = False
    assert store.load(ALIAS) is not None


def test_sign_out__without_token_does_nothing(profile: OrgProfile) -> None:
    sign_out(profile, secret_store())

    assert secret_store().load(ALIAS) is None


def test_remove_profile__deletes_profile_token_and_last_choice(
    profile: OrgProfile, browser: ConsentBrowser, memory_keyring: MemoryKeyring
) -> None:
    sign_in(profile, browser)
    save_profile(OrgProfile(alias="other"))
    save_app_settings(AppSettings(last_profile=ALIAS))

    remove_profile(profile, secret_store())

    assert list(load_profiles()) == ["other"]
    assert memory_keyring.entries == {}
    assert load_app_settings().last_profile == ""


def test_failing_keyring__token_kept_in_memory(
    failing_keyring: MemoryKeyring, profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    connection = sign_in(profile, browser)

    assert not secret_store().persistent
    assert "kept in memory" in secret_store().storage_notice
    assert failing_keyring.entries == {}
    resumed = resume_session(profile, secret_store())
    assert resumed.username == default_org.admin_username
    assert connection.username == default_org.admin_username


def test_secret_store__is_one_per_process() -> None:
    assert secret_store() is secret_store()


class _LowPriorityKeyring(MemoryKeyring):
    priority = 0.5  # type: ignore[assignment]


def test_secret_store__insecure_backend_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("keyring.get_keyring", _LowPriorityKeyring)

    store = secret_store()

    assert not store.persistent
    assert "not a secure store" in store.storage_notice
    assert "kept in memory" in store.storage_notice


def test_secret_store__refused_backend_logs_the_real_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("keyring.get_keyring", _LowPriorityKeyring)

    secret_store()

    messages = [record.getMessage() for record in caplog.records]
    assert any("not a secure store" in message for message in messages)
    assert not any("found no recommended backend" in message for message in messages)


def test_secret_store__names_refused_insecure_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("keyring.get_keyring", _LowPriorityKeyring)

    refused = org_sessions.refused_insecure_keyring()

    assert "_LowPriorityKeyring (priority 0.5)" in refused
    assert "below" in refused


def test_secret_store__secure_backend_refuses_nothing() -> None:
    assert org_sessions.refused_insecure_keyring() == ""


def test_allow_insecure_keyring__saves_opt_in_and_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _LowPriorityKeyring()
    monkeypatch.setattr("keyring.get_keyring", lambda: backend)
    assert not secret_store().persistent

    store = org_sessions.allow_insecure_keyring()
    store.save(ALIAS, "5Aep-test-token")

    assert store is secret_store()
    assert store.persistent
    assert load_app_settings().allow_insecure_keyring
    assert org_sessions.refused_insecure_keyring() == ""
    assert "5Aep-test-token" in backend.values()


def test_secret_store__insecure_backend_after_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _LowPriorityKeyring()
    monkeypatch.setattr("keyring.get_keyring", lambda: backend)
    save_app_settings(AppSettings(allow_insecure_keyring=True))

    store = secret_store()
    store.save(ALIAS, "5Aep-test-token")

    assert store.persistent
    assert "not a secure store" in store.storage_notice
    assert "5Aep-test-token" in backend.values()


class _StoppingKeyring(MemoryKeyring):
    """Works until ``stopped`` is set, then raises NoKeyringError, as when the keyring daemon exits."""

    stopped = False

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.stopped:
            raise NoKeyringError("the keyring daemon is gone (test keyring)")
        super().set_password(service, username, password)

    def get_password(self, service: str, username: str) -> str | None:
        if self.stopped:
            raise NoKeyringError("the keyring daemon is gone (test keyring)")
        return super().get_password(service, username)


def test_keyring_stopping_mid_run__notice_says_memory_only(
    profile: OrgProfile, browser: ConsentBrowser, default_org: PracticeOrg
) -> None:
    backend = _StoppingKeyring()
    keyring.set_keyring(backend)
    org_sessions.reset_secret_store()
    connection = sign_in(profile, browser)
    assert token_notice(ALIAS) == ""

    backend.stopped = True
    default_org.expire_sessions()
    connection.describe("Task")

    assert not secret_store().persistent
    assert "kept in memory only" in token_notice(ALIAS)
    assert secret_store().load(ALIAS) == connection.tokens.refresh_token
