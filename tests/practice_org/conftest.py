"""Practice orgs for the tests, one per scenario and test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.seed import DUPLICATES_SCENARIO, READY_SCENARIO
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from tests.practice_org.practice_login import Login, login


def _start(tmp_path_factory: pytest.TempPathFactory, scenario: str) -> Iterator[PracticeOrg]:
    folder: Path = tmp_path_factory.mktemp(scenario)
    with PracticeOrg(folder / "practice.db", scenario=scenario) as org:
        yield org


@pytest.fixture(scope="module")
def default_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    yield from _start(tmp_path_factory, "default")


@pytest.fixture(scope="module")
def non_unique_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    yield from _start(tmp_path_factory, "non-unique")


@pytest.fixture(scope="module")
def fresh_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    yield from _start(tmp_path_factory, "fresh")


@pytest.fixture(scope="module")
def duplicates_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    yield from _start(tmp_path_factory, DUPLICATES_SCENARIO)


@pytest.fixture(scope="module")
def ready_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    yield from _start(tmp_path_factory, READY_SCENARIO)


def admin_connection(org: PracticeOrg) -> OrgConnection:
    """Connect to a practice org as its admin, through OrgConnection and simple-salesforce."""
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


@pytest.fixture(scope="module")
def admin(default_org: PracticeOrg) -> Login:
    return login(default_org, default_org.admin_username)


@pytest.fixture(scope="module")
def integration(default_org: PracticeOrg) -> Login:
    return login(default_org, default_org.integration_username)
