"""API usage counting, latency, Collections update, text length and the PKCE method.

Each rule is driven through simple-salesforce where the client can express the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest

from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.faults import MAX_LATENCY_SECONDS, FaultPlan
from backstory_desktop.practice_org.session import ServedRequests
from tests.practice_org.practice_login import (
    REDIRECT_URI,
    Login,
    authorize,
    https_session,
    login,
    pkce_pair,
)


def api_usage(client: Login) -> tuple[int, int]:
    """Return (used, allocation) from the Sforce-Limit-Info header of the client's last call."""
    usage = client.sf.api_usage["api-usage"]
    return usage.used, usage.total


def test_rule__each_call_counts_once(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)

        admin.sf.query("SELECT Id FROM User LIMIT 1")
        first_used, allocation = api_usage(admin)
        admin.sf.query("SELECT Id FROM User LIMIT 1")
        second_used, _ = api_usage(admin)
        limits = admin.sf.limits()
        limits_used, _ = api_usage(admin)

        assert allocation == org.daily_api_limit
        assert second_used == first_used + 1
        assert limits_used == second_used + 1
        assert limits["DailyApiRequests"]["Max"] == allocation
        assert limits["DailyApiRequests"]["Remaining"] == allocation - limits_used


def test_rule__daily_limit_allows_exactly_n_calls(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)
        admin.sf.query("SELECT Id FROM User LIMIT 1")
        used, _ = api_usage(admin)
        org.daily_api_limit = used + 2

        admin.sf.query("SELECT Id FROM User LIMIT 1")
        admin.sf.query("SELECT Id FROM User LIMIT 1")
        with pytest.raises(SalesforceRefusedRequest) as raised:
            admin.sf.query("SELECT Id FROM User LIMIT 1")

        assert raised.value.status == 403
        assert raised.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_rule__latency_holds_each_call_until_stop(tmp_path: Path) -> None:
    org = PracticeOrg(tmp_path / "p.db", scenario="fresh")
    org.start()
    try:
        admin = login(org, org.admin_username)
        org.faults = FaultPlan(latency_seconds=MAX_LATENCY_SECONDS)
        calls = [call_in_thread(org, admin, "limits"),
                 call_in_thread(org, admin, "query?q=SELECT+Id+FROM+User+LIMIT+1")]
        wait_until(lambda: org.requests_in_flight == 2 or not all(call.is_alive() for call, _ in calls))
        in_flight = org.requests_in_flight
    finally:
        org.stop()
    for call, _ in calls:
        call.join(timeout=30)

    assert in_flight == 2
    # Stopping ends the latency at once, as a server going down would.
    assert [answer for _, answer in calls] == [[(503, "SERVER_UNAVAILABLE")]] * 2


def test_stop__waits_for_requests_being_served() -> None:
    served = ServedRequests()
    assert served.begin()
    stopper = threading.Thread(target=lambda: left.append(served.stop(timeout=30)), daemon=True)
    left: list[int] = []
    stopper.start()
    wait_until(lambda: served.stopping)
    waiting = stopper.is_alive()
    served.end()
    stopper.join(timeout=30)

    assert waiting
    assert left == [0]


def test_stop__turns_later_requests_away() -> None:
    served = ServedRequests()
    served.stop(timeout=0)

    assert not served.begin()


def test_stop__reports_requests_still_served() -> None:
    served = ServedRequests()
    served.begin()

    assert served.stop(timeout=0) == 1


def call_in_thread(org: PracticeOrg, client: Login, path: str) -> tuple[threading.Thread, list[Any]]:
    """Start a GET of an API path on its own connection.

    Return the thread and the list to which it appends (status, errorCode).
    """
    answer: list[Any] = []

    def call() -> None:
        response = https_session(org).get(client.url(path), headers=client.headers())
        body = response.json()
        answer.append((response.status_code, body[0]["errorCode"] if isinstance(body, list) else None))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, answer


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def update_live_and_deleted(admin: Login, all_or_none: bool) -> tuple[str, list[Any]]:
    """Update a live Task and a deleted one in one Collections call; return the live id and results."""
    task_id = admin.sf.Task.create({"Subject": "Email: before"})["id"]
    gone_id = admin.sf.Task.create({"Subject": "Email: deleted"})["id"]
    admin.sf.Task.delete(gone_id)

    results = admin.sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": all_or_none,
        "records": [
            {"attributes": {"type": "Task"}, "id": task_id, "Subject": "Email: after"},
            {"attributes": {"type": "Task"}, "id": gone_id, "Subject": "Email: after"},
        ]})
    return task_id, results


def test_rule__collections_update_all_or_none_rolls_back(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)

        task_id, results = update_live_and_deleted(admin, all_or_none=True)

        assert results[0]["success"] is False
        assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        assert results[1]["success"] is False
        assert admin.sf.Task.get(task_id)["Subject"] == "Email: before"


def test_rule__collections_update_partial_success(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="fresh") as org:
        admin = login(org, org.admin_username)

        task_id, results = update_live_and_deleted(admin, all_or_none=False)

        assert results[0] == {"id": task_id, "success": True, "errors": []}
        assert results[1]["success"] is False
        assert admin.sf.Task.get(task_id)["Subject"] == "Email: after"


def test_rule__long_subject_is_string_too_long(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.Task.create({"Subject": "x" * 256})

    error = raised.value.content[0]
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["fields"] == ["Subject"]


def test_rule__subject_at_max_length_is_stored(admin: Login) -> None:
    subject = "y" * 255

    task_id = admin.sf.Task.create({"Subject": subject})["id"]

    assert admin.sf.Task.get(task_id)["Subject"] == subject


# OAuth endpoints are not part of simple-salesforce, so these tests use requests.


def test_rule__plain_challenge_method_is_rejected(default_org: PracticeOrg) -> None:
    verifier, _challenge = pkce_pair()

    response = https_session(default_org).get(
        f"{default_org.base_url}/services/oauth2/authorize", allow_redirects=False,
        params={"response_type": "code", "client_id": default_org.client_id,
                "redirect_uri": REDIRECT_URI, "code_challenge": verifier,
                "code_challenge_method": "plain", "state": "s7",
                "login_hint": default_org.admin_username})

    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s7"]
    assert "code" not in query


def test_rule__token_without_verifier_is_invalid_grant(default_org: PracticeOrg) -> None:
    http = https_session(default_org)
    _verifier, challenge = pkce_pair()
    code = authorize(default_org, http, default_org.admin_username, challenge)

    response = http.post(f"{default_org.base_url}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": default_org.client_id,
        "redirect_uri": REDIRECT_URI})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
