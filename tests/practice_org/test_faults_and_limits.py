"""Injected faults and the daily API request allocation, as the product's HTTP client meets them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from backstory_desktop.practice_org import FaultPlan, PracticeOrg
from tests.practice_org.practice_login import Login, login


@pytest.fixture
def client(default_org: PracticeOrg) -> Iterator[Login]:
    yield login(default_org, default_org.admin_username)
    default_org.faults = FaultPlan()
    default_org.daily_api_limit = 15000


def test_faults__server_unavailable_returns_503(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)

    response = client.http.get(client.url("limits"), headers=client.headers())

    assert response.status_code == 503
    assert response.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_faults__lock_row_hits_writes_only(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(unable_to_lock_row_rate=1.0)

    read = client.http.get(client.url("limits"), headers=client.headers())
    write = client.http.post(client.url("sobjects/Task"), headers=client.headers(),
                             json={"Subject": "Email: locked"})

    assert read.status_code == 200
    assert write.status_code == 400
    assert write.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"


def test_faults__dropped_connection_raises(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(dropped_connection_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        client.http.get(client.url("limits"), headers=client.headers())


def test_faults__same_seed_fails_same_calls(client: Login, default_org: PracticeOrg) -> None:
    statuses = []
    for _run in range(2):
        default_org.faults = FaultPlan(server_unavailable_rate=0.5, seed=7)
        statuses.append([client.http.get(client.url("limits"), headers=client.headers())
                         .status_code for _ in range(12)])

    assert statuses[0] == statuses[1]
    assert set(statuses[0]) == {200, 503}


def test_limits__exhausted_allocation_is_request_limit_exceeded(
    client: Login, default_org: PracticeOrg
) -> None:
    default_org.daily_api_limit = 1

    response = client.http.get(client.url("limits"), headers=client.headers())

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
