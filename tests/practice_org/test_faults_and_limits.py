"""Injected faults and the daily API request allocation, as the product's HTTP client meets them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from backstory_desktop.cli import build_parser, fault_plan_from_args, main
from backstory_desktop.practice_org import FaultPlan, PracticeOrg
from tests.practice_org.practice_login import Login, https_session, login

FIELD = "Message_ID__c"


@pytest.fixture
def client(default_org: PracticeOrg) -> Iterator[Login]:
    yield login(default_org, default_org.admin_username)
    default_org.faults = FaultPlan()
    default_org.daily_api_limit = 15000


def upsert_collection(client: Login, keys: list[str], *, all_or_none: bool) -> list[dict[str, Any]]:
    payload = {"allOrNone": all_or_none, "records": [
        {"attributes": {"type": "Task"}, FIELD: key, "Subject": f"Email: {key}"} for key in keys]}
    results: list[dict[str, Any]] = client.sf.restful(
        f"composite/sobjects/Task/{FIELD}", method="PATCH", json=payload)
    return results


def tasks_with_subject(client: Login, subject: str) -> int:
    # queryAll, so a Task that an earlier step moved to the recycle bin still counts.
    result = client.sf.query_all(f"SELECT Id FROM Task WHERE Subject = '{subject}'",
                                 include_deleted=True)
    return int(result["totalSize"])


def control(org: PracticeOrg, access_token: str, body: dict[str, Any] | None = None
            ) -> requests.Response:
    url = f"{org.base_url}/services/practice/faults"
    headers = {"Authorization": f"Bearer {access_token}"}
    if body is None:
        return https_session(org).get(url, headers=headers)
    return https_session(org).post(url, headers=headers, json=body)


# -- whole-call faults ----------------------------------------------------------


def test_faults__server_unavailable_returns_503(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)

    response = client.http.get(client.url("limits"), headers=client.headers())

    assert response.status_code == 503
    assert response.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_faults__server_error_is_unknown_exception(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(server_error_rate=1.0)

    with pytest.raises(SalesforceGeneralError) as raised:
        client.sf.query("SELECT Id FROM User LIMIT 1")

    assert raised.value.status == 500
    (error,) = raised.value.content
    assert error["errorCode"] == "UNKNOWN_EXCEPTION"
    assert error["message"].startswith(
        "An unexpected error occurred. Please include this ErrorId if you contact support: ")


def test_faults__lock_row_hits_single_writes_only(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(unable_to_lock_row_rate=1.0)

    read = client.http.get(client.url("limits"), headers=client.headers())
    write = client.http.post(client.url("sobjects/Task"), headers=client.headers(),
                             json={"Subject": "Email: locked"})

    assert read.status_code == 200
    assert write.status_code == 400
    assert write.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    default_org.faults = FaultPlan()
    assert tasks_with_subject(client, "Email: locked") == 0


def test_faults__same_seed_fails_same_calls(client: Login, default_org: PracticeOrg) -> None:
    statuses = []
    for _run in range(2):
        default_org.faults = FaultPlan(server_unavailable_rate=0.5, seed=7)
        statuses.append([client.http.get(client.url("limits"), headers=client.headers())
                         .status_code for _ in range(12)])

    assert statuses[0] == statuses[1]
    assert set(statuses[0]) == {200, 503}


def test_faults__plan_given_at_start(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", faults=FaultPlan(server_unavailable_rate=1.0)) as org:
        client = login(org, org.admin_username)

        response = client.http.get(client.url("limits"), headers=client.headers())

    assert response.status_code == 503


# -- dropped connections ----------------------------------------------------------


def test_faults__dropped_connection_raises(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(dropped_connection_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        client.http.get(client.url("limits"), headers=client.headers())


def test_faults__drop_before_handler_writes_nothing(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(dropped_connection_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        client.sf.Task.create({"Subject": "Email: dropped before"})

    default_org.faults = FaultPlan()
    assert tasks_with_subject(client, "Email: dropped before") == 0


def test_faults__drop_after_commit_keeps_the_write(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(dropped_after_commit_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        client.sf.Task.create({"Subject": "Email: dropped after"})

    default_org.faults = FaultPlan()
    assert tasks_with_subject(client, "Email: dropped after") == 1


def test_faults__gateway_answers_with_html(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(gateway_error_rate=1.0, seed=3)
    statuses: dict[int, list[str]] = {502: [], 504: []}

    for number in range(12):
        subject = f"Email: through the gateway {number}"
        response = client.http.post(client.url("sobjects/Task"), headers=client.headers(),
                                    json={"Subject": subject})
        assert response.status_code in statuses, response.text
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.text.startswith("<html>")
        assert "Sforce-Limit-Info" not in response.headers
        statuses[response.status_code].append(subject)

    default_org.faults = FaultPlan()
    assert statuses[502]
    assert statuses[504]
    assert [tasks_with_subject(client, subject) for subject in statuses[502]] == [0] * len(statuses[502])
    assert [tasks_with_subject(client, subject) for subject in statuses[504]] == [1] * len(statuses[504])


# -- UNABLE_TO_LOCK_ROW in sObject Collections ------------------------------------


def test_faults__collection_lock_fails_drawn_records_only(
    client: Login, default_org: PracticeOrg
) -> None:
    keys = [f"<lock.{index}@faults.example>" for index in range(20)]
    default_org.faults = FaultPlan(unable_to_lock_row_rate=0.5, seed=3)

    results = upsert_collection(client, keys, all_or_none=False)

    default_org.faults = FaultPlan()
    locked = [key for key, result in zip(keys, results, strict=True) if not result["success"]]
    written = [key for key, result in zip(keys, results, strict=True) if result["success"]]
    assert locked
    assert written
    for key, result in zip(keys, results, strict=True):
        if key in locked:
            assert result["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
            assert result["id"] is None
    assert all(tasks_with_subject(client, f"Email: {key}") == 0 for key in locked)
    assert all(tasks_with_subject(client, f"Email: {key}") == 1 for key in written)


def test_faults__collection_lock_is_repeatable_with_seed(
    client: Login, default_org: PracticeOrg
) -> None:
    outcomes = []
    for run in range(2):
        keys = [f"<repeat.{run}.{index}@faults.example>" for index in range(12)]
        default_org.faults = FaultPlan(unable_to_lock_row_rate=0.4, seed=11)
        outcomes.append([result["success"]
                         for result in upsert_collection(client, keys, all_or_none=False)])

    assert outcomes[0] == outcomes[1]


def test_faults__collection_lock_all_or_none_rolls_back(
    client: Login, default_org: PracticeOrg
) -> None:
    keys = [f"<all.{index}@faults.example>" for index in range(10)]
    default_org.faults = FaultPlan(unable_to_lock_row_rate=0.3, seed=5)

    results = upsert_collection(client, keys, all_or_none=True)

    default_org.faults = FaultPlan()
    codes = {result["errors"][0]["statusCode"] for result in results}
    assert not any(result["success"] for result in results)
    assert codes == {"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK"}
    assert all(tasks_with_subject(client, f"Email: {key}") == 0 for key in keys)


# -- sessions -------------------------------------------------------------------


def test_faults__expired_session_stays_expired(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(expired_session_rate=1.0)

    with pytest.raises(SalesforceExpiredSession):
        client.sf.query("SELECT Id FROM User LIMIT 1")

    default_org.faults = FaultPlan()
    with pytest.raises(SalesforceExpiredSession):
        client.sf.query("SELECT Id FROM User LIMIT 1")


def test_faults__session_expires_after_planned_calls(
    client: Login, default_org: PracticeOrg
) -> None:
    default_org.faults = FaultPlan(session_expires_after_calls=2)
    renewed = login(default_org, default_org.admin_username)

    first = client.http.get(client.url("limits"), headers=client.headers())
    second = client.http.get(client.url("limits"), headers=client.headers())
    third = client.http.get(client.url("limits"), headers=client.headers())
    other = renewed.http.get(renewed.url("limits"), headers=renewed.headers())

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 401]
    assert third.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert other.status_code == 200


# -- limits ---------------------------------------------------------------------


def test_limits__exhausted_allocation_is_request_limit_exceeded(
    client: Login, default_org: PracticeOrg
) -> None:
    default_org.daily_api_limit = 1

    with pytest.raises(SalesforceRefusedRequest) as raised:
        client.sf.query("SELECT Id FROM User LIMIT 1")

    assert raised.value.content[0] == {"message": "TotalRequests Limit exceeded.",
                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}


def test_limits__request_beyond_concurrency_limit_is_refused(tmp_path: Path) -> None:
    plan = FaultPlan(max_concurrent_requests=1, latency_seconds=3.0)
    with PracticeOrg(tmp_path / "p.db", faults=plan) as org:
        client = login(org, org.admin_username)
        slow: list[int] = []
        worker = threading.Thread(target=lambda: slow.append(
            client.http.get(client.url("limits"), headers=client.headers()).status_code))
        worker.start()
        while org.requests_in_flight == 0 and worker.is_alive():
            threading.Event().wait(0.01)

        with pytest.raises(SalesforceRefusedRequest) as raised:
            client.sf.query("SELECT Id FROM User LIMIT 1")
        worker.join()

    assert raised.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Concurrent" in raised.value.content[0]["message"]
    assert slow == [200]


# -- the control route ------------------------------------------------------------


def test_fault_control__admin_sets_and_clears_plan(client: Login, default_org: PracticeOrg) -> None:
    set_response = control(default_org, client.access_token, {"server_error_rate": 1.0, "seed": 4})
    faulted = client.http.get(client.url("limits"), headers=client.headers())
    read_back = control(default_org, client.access_token)
    cleared = control(default_org, client.access_token, {})
    healthy = client.http.get(client.url("limits"), headers=client.headers())

    assert set_response.status_code == 200
    assert set_response.json()["server_error_rate"] == 1.0
    assert faulted.status_code == 500
    assert read_back.json() == set_response.json()
    assert default_org.faults == FaultPlan()
    assert cleared.json() == {**FaultPlan().to_json(), "daily_api_limit": 15000}
    assert healthy.status_code == 200


def test_fault_control__sets_the_daily_limit(client: Login, default_org: PracticeOrg) -> None:
    response = control(default_org, client.access_token, {"daily_api_limit": 1})
    refused = client.http.get(client.url("limits"), headers=client.headers())
    restored = control(default_org, client.access_token, {})

    assert response.json()["daily_api_limit"] == 1
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert restored.json()["daily_api_limit"] == 15000
    assert default_org.daily_api_limit == 15000


def test_fault_plan__summary_names_what_is_set() -> None:
    assert FaultPlan().summary() == "none"
    assert FaultPlan(seed=7, server_unavailable_rate=0.1).summary() == (
        "server_unavailable_rate=0.1, seed=7")


def test_fault_control__needs_modify_all_data(integration: Login, default_org: PracticeOrg) -> None:
    response = control(default_org, integration.access_token, {"server_error_rate": 1.0})

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS"
    assert default_org.faults == FaultPlan()


def test_fault_control__needs_a_session(default_org: PracticeOrg) -> None:
    response = control(default_org, "not-a-token")

    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"


@pytest.mark.parametrize("body", [{"server_error_rate": 2}, {"no_such_fault": 1},
                                  {"daily_api_limit": 0}, {"daily_api_limit": "many"},
                                  {"session_expires_after_calls": "3"},
                                  {"server_error_rate": 0.7, "server_unavailable_rate": 0.7}])
def test_fault_control__invalid_plan_is_rejected(
    client: Login, default_org: PracticeOrg, body: dict[str, Any]
) -> None:
    response = control(default_org, client.access_token, body)

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert default_org.faults == FaultPlan()


def test_fault_control__is_never_faulted(client: Login, default_org: PracticeOrg) -> None:
    default_org.faults = FaultPlan(dropped_connection_rate=1.0)

    response = control(default_org, client.access_token, {})

    assert response.status_code == 200
    assert default_org.faults == FaultPlan()


# -- command line -----------------------------------------------------------------


def test_serve_options__build_fault_plan() -> None:
    args = build_parser().parse_args([
        "practice-org", "serve", "--fault-seed", "9", "--latency", "0.5",
        "--lock-row-rate", "0.2", "--dropped-after-commit-rate", "0.1",
        "--session-calls", "50", "--max-concurrent-requests", "5", "--daily-api-limit", "100",
    ])

    plan = fault_plan_from_args(args)

    assert plan == FaultPlan(seed=9, latency_seconds=0.5, unable_to_lock_row_rate=0.2,
                             dropped_after_commit_rate=0.1, session_expires_after_calls=50,
                             max_concurrent_requests=5)
    assert args.daily_api_limit == 100


def test_fault_plan__gateway_rate_counts_toward_total() -> None:
    with pytest.raises(ValueError, match="add up to more than 1"):
        FaultPlan(gateway_error_rate=0.6, server_error_rate=0.5)


def test_serve_options__no_fault_options_means_no_faults() -> None:
    args = build_parser().parse_args(["practice-org", "serve"])

    assert fault_plan_from_args(args) == FaultPlan()
    assert args.daily_api_limit is None


def test_serve_options__rate_above_one_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["practice-org", "serve", "--server-error-rate", "1.5"])

    assert exited.value.code == 2
    assert "argument --server-error-rate: 1.5 is above the maximum of 1" in capsys.readouterr().err


def test_serve_options__rates_above_one_together_are_rejected() -> None:
    args = build_parser().parse_args(["practice-org", "serve", "--server-error-rate", "0.6",
                                      "--server-unavailable-rate", "0.6"])

    with pytest.raises(ValueError, match="add up to more than 1"):
        fault_plan_from_args(args)


def test_serve__port_in_use_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        status = main(["practice-org", "serve", "--db", str(tmp_path / "p.db"), "--port", str(port)])

    assert status == 2
    assert f"Cannot serve the practice org on port {port}" in capsys.readouterr().err
