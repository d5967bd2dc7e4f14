"""Test setup shared by every layer: Qt runs offscreen, files stay in temporary folders,
and every org is a practice org on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _private_app_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep profiles, logs and practice orgs of every test out of the user's own folders."""
    home = tmp_path_factory.mktemp("app-home")
    monkeypatch.setenv("BACKSTORY_DESKTOP_HOME", str(home))
    return home


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
