"""No token, authorization code or PKCE verifier reaches the log file during a whole org session.

The flow is the one an admin goes through. It signs in with the browser to an org
reached over HTTPS (a served practice org) and runs queries. Sessions expire and are
renewed with a rotated refresh token, the enablement steps run with a sync, and the
session is resumed, diagnosed and signed out. The practice org and the stand-in browser run in this
process, so their request logs (werkzeug, urllib3) reach the same file and carry
the authorization code in URLs: the scrubber must mask those too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from backstory_desktop import enablement, org_sessions
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.diagnostics import collect_diagnostics
from backstory_desktop.logging_setup import LOG_FILE_NAME, configure_logging, scrub_secrets
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce import connection as connection_module
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.oauth import Pkce
from backstory_desktop.store.paths import log_dir
from backstory_desktop.store.settings import load_profiles
from tests.consent_browser import ConsentBrowser, served_profile
from tests.memory_keyring import MemoryKeyring

ALIAS = "served-practice"


@pytest.fixture
def log_file() -> Iterator[str]:
    """Log to the app's daily file at DEBUG, as `--verbose` does; yield its path and undo it after."""
    root = logging.getLogger()
    handlers_before, level_before = list(root.handlers), root.level
    configure_logging(verbose=True)
    yield str(log_dir() / LOG_FILE_NAME)
    for handler in root.handlers:
        if handler not in handlers_before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level_before)


@pytest.fixture
def pkce_values(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the code verifier of every browser sign-in in this test.

    The state is left out: it travels in the URLs the browser shows, so it is no secret.
    """
    seen: list[str] = []
    make_pkce = connection_module.new_pkce

    def recording_new_pkce() -> Pkce:
        pkce = make_pkce()
        seen.append(pkce.verifier)
        return pkce

    monkeypatch.setattr(connection_module, "new_pkce", recording_new_pkce)
    return seen


def _read_log(path: str) -> str:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == path:
            handler.flush()
    with open(path, encoding="utf-8") as log_text:
        return log_text.read()


def _run_enablement(connection: OrgConnection, org: PracticeOrg) -> enablement.EnablementRun:
    """Run the enablement steps the rehearsal runs, on an already open connection."""
    run = enablement.EnablementRun(load_profiles()[ALIAS])
    assert enablement.use_connection(run, connection).status is StepStatus.PASSED
    enablement.check_field(run)
    assert run.field_state is not None
    if not run.field_state.exists:
        enablement.create_field(run, case_sensitive=True)
    enablement.check_integration_user(run, org.integration_username)
    # A session that expires in the middle of the work is renewed with a rotated token.
    org.expire_sessions()
    enablement.plan_sync(run, sample_mailbox_path())
    enablement.apply_sync(run)
    enablement.scan_conflicts(run)
    return run


def test_log_file__whole_session_has_no_secret(
    log_file: str,
    pkce_values: list[str],
    start_org: Callable[[str], PracticeOrg],
    memory_keyring: MemoryKeyring,
) -> None:
    org = start_org("fresh")
    profile = served_profile(org, ALIAS)
    browser = ConsentBrowser(org.ca_bundle, org.admin_username)
    access_tokens: list[str] = []

    connection = org_sessions.sign_in_with_browser(
        profile, org_sessions.secret_store(), open_browser=browser, timeout=30
    )
    access_tokens.append(connection.tokens.access_token)
    assert list(connection.query_all("SELECT Id, Username FROM User"))
    connection.describe("Task")

    org.expire_sessions()
    assert list(connection.query_all("SELECT Id FROM Task LIMIT 5"))
    access_tokens.append(connection.tokens.access_token)

    run = _run_enablement(connection, org)
    access_tokens.append(connection.tokens.access_token)
    assert run.sync_result is not None
    assert run.sync_result.created > 0

    resumed = org_sessions.resume_session(load_profiles()[ALIAS], org_sessions.secret_store())
    access_tokens.append(resumed.tokens.access_token)
    collect_diagnostics(resumed, alias=ALIAS)
    org_sessions.sign_out(profile, org_sessions.secret_store(), connection=resumed)

    text = _read_log(log_file)
    refresh_tokens = [value for value in memory_keyring.writes if not value.startswith("{")]
    secrets = {
        "access token": access_tokens,
        "refresh token": refresh_tokens,
        "authorization code": browser.codes,
        "PKCE code verifier": pkce_values,
    }
    # The flow really ran: two sign-ins' worth of rotations, and the org's request log was written.
    assert len(set(refresh_tokens)) >= 4
    assert len(set(access_tokens)) == 4
    assert len(browser.codes) == 1
    assert f"Signed in to {ALIAS}" in text
    assert "code=[hidden]" in text
    for kind, values in secrets.items():
        for value in values:
            assert value not in text, f"a {kind} is in the log file"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('"GET /callback?code=aPrx7Q-_9a%3D%3D&state=s1 HTTP/1.1" 200', "aPrx7Q-_9a%3D%3D"),
        ("POST /services/oauth2/revoke?token=5Aep861abc HTTP/1.1", "5Aep861abc"),
        ("grant_type=refresh_token&refresh_token=5Aep861xyz-_.&client_id=x", "5Aep861xyz-_."),
        ('{"access_token": "00D000000000001!AQ-x_y.z", "instance_url": "x"}', "00D000000000001!AQ-x_y.z"),
        ("session 00D000000000001!AQ4-part-after-dash expired", "part-after-dash"),
        ("refreshing with 5Aep861TzFakeRefreshTokenValue-x", "5Aep861TzFakeRefreshTokenValue-x"),
        ("Cookie: sid=00D5e0000ABCDEF;", "00D5e0000ABCDEF"),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ],
)
def test_scrub_secrets__masks(line: str, secret: str) -> None:
    assert secret not in scrub_secrets(line)


@pytest.mark.parametrize(
    "line",
    [
        "HTTP status code: 401",
        "errorCode=INVALID_SESSION_ID",
        "Signed in to acme-prod as admin@acme.example",
        "GET /services/data/v64.0/query?q=SELECT+Id+FROM+Task HTTP/1.1",
    ],
)
def test_scrub_secrets__keeps_ordinary_text(line: str) -> None:
    assert scrub_secrets(line) == line


def test_log_file__traceback_text_is_scrubbed(log_file: str) -> None:
    secret = "00D000000000001!AQ4TracebackSecret"
    logger = logging.getLogger("backstory_desktop.tests")

    try:
        raise RuntimeError(f"request failed with session {secret}")
    except RuntimeError:
        logger.exception("the request failed")

    text = _read_log(log_file)
    assert "RuntimeError: request failed with session [hidden]" in text
    assert secret not in text
