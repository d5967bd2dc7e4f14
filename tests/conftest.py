"""Test setup shared by every layer: Qt runs offscreen, files stay in temporary folders,
secrets stay in an in-memory keyring, and every org is a practice org on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from tests.memory_keyring import FailingKeyring, MemoryKeyring

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
# Real messages from public mail-parser test suites (CPython's email tests, Apache James mime4j,
# MimeKit, the Ruby mail gem, stalwart mail-parser and a public mailing-list sample), looked up in
# BACKSTORY_MAIL_CORPUS, else beside the checkout. Tests that need it skip when it is absent.
MAIL_CORPUS = Path(os.environ.get("BACKSTORY_MAIL_CORPUS", ROOT.parent / "shared" / "data" / "mail"))


@pytest.fixture
def mail_corpus() -> Path:
    """Return the folder of real test mail, or skip the test when it is not there."""
    if not MAIL_CORPUS.is_dir():
        pytest.skip(f"the real mail corpus is not available at {MAIL_CORPUS}: set "
                    "BACKSTORY_MAIL_CORPUS to its folder")
    return MAIL_CORPUS


@pytest.fixture(autouse=True)
def _private_app_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep profiles, logs and practice orgs of every test out of the user's own folders."""
    home = tmp_path_factory.mktemp("app-home")
    monkeypatch.setenv("BACKSTORY_DESKTOP_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Put keyring on a new in-memory backend for each test, never the developer's own keychain.

    Subprocesses get the same class through PYTHON_KEYRING_BACKEND, each with its own entries.
    """
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{MemoryKeyring.__module__}.{MemoryKeyring.__name__}")
    python_path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), python_path])))
    _forget_secret_store()
    yield backend
    _forget_secret_store()


@pytest.fixture
def failing_keyring(memory_keyring: MemoryKeyring) -> FailingKeyring:
    """Replace the test keyring with one that fails every call, so secrets fall back to memory."""
    backend = FailingKeyring()
    keyring.set_keyring(backend)
    _forget_secret_store()
    return backend


def _forget_secret_store() -> None:
    """Make org_sessions open a new SecretStore on the current test keyring, if it is loaded."""
    org_sessions = sys.modules.get("backstory_desktop.org_sessions")
    if org_sessions is not None:
        org_sessions.reset_secret_store()


StartOrg = Callable[[str], PracticeOrg]


@pytest.fixture
def start_org(tmp_path: Path) -> Iterator[StartOrg]:
    """Start practice orgs of given scenarios; all are stopped after the test."""
    started: list[PracticeOrg] = []

    def start(scenario: str) -> PracticeOrg:
        org = PracticeOrg(tmp_path / f"{scenario}-{len(started)}.sqlite", scenario=scenario)
        org.start()
        started.append(org)
        return org

    yield start
    for org in started:
        org.stop()


@pytest.fixture
def default_org(start_org: StartOrg) -> PracticeOrg:
    return start_org("default")


@pytest.fixture
def fresh_org(start_org: StartOrg) -> PracticeOrg:
    return start_org("fresh")


@pytest.fixture
def admin(default_org: PracticeOrg) -> OrgConnection:
    return connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.admin_username, default_org.client_id
    )
