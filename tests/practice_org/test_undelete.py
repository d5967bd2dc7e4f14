"""SOAP undelete(), the recycle bin's 15 days and the recycle bin control, over HTTPS on 127.0.0.1."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

import pytest
import requests

from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed import OUTREACH_USERNAME
from backstory_desktop.practice_org.store import now_utc
from tests.practice_org.practice_login import API_VERSION, Login, login
from tests.practice_org.soap_requests import PARTNER, fault_of

SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"


@dataclass
class Outcome:
    id: str
    success: bool
    status_code: str
    message: str


def undelete_envelope(session_id: str, ids: list[str]) -> str:
    id_elements = "".join(f"<urn:ids>{escape(record_id)}</urn:ids>" for record_id in ids)
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com">'
        "<soapenv:Header><urn:SessionHeader>"
        f"<urn:sessionId>{escape(session_id)}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:undelete>{id_elements}</urn:undelete></soapenv:Body>"
        "</soapenv:Envelope>"
    )


def post_undelete(user: Login, ids: list[str], session_id: str | None = None) -> requests.Response:
    envelope = undelete_envelope(user.access_token if session_id is None else session_id, ids)
    return user.http.post(f"{user.org.base_url}/services/Soap/u/{API_VERSION}",
                          data=envelope.encode(),
                          headers={"Content-Type": "text/xml; charset=UTF-8",
                                   "SOAPAction": "undelete"})


def outcomes(response: requests.Response) -> list[Outcome]:
    assert response.status_code == 200, response.text
    results = ElementTree.fromstring(response.content).findall(
        f"{SOAP_ENV}Body/{PARTNER}undeleteResponse/{PARTNER}result")
    return [
        Outcome(
            id=result.findtext(f"{PARTNER}id") or "",
            success=result.findtext(f"{PARTNER}success") == "true",
            status_code=result.findtext(f"{PARTNER}errors/{PARTNER}statusCode") or "",
            message=result.findtext(f"{PARTNER}errors/{PARTNER}message") or "",
        )
        for result in results
    ]


def new_task(user: Login, subject: str) -> str:
    response = user.http.post(user.url("sobjects/Task"), json={"Subject": subject},
                              headers=user.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def deleted_task(user: Login, subject: str) -> str:
    task_id = new_task(user, subject)
    response = user.http.delete(user.url(f"sobjects/Task/{task_id}"), headers=user.headers())
    assert response.status_code == 204, response.text
    return task_id


def task_rows(user: Login, task_id: str) -> list[dict[str, object]]:
    result = user.sf.query_all(f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task_id}'",
                               include_deleted=True)
    return list(result["records"])


def empty_recycle_bin(user: Login, body: dict[str, object] | None) -> requests.Response:
    return user.http.post(f"{user.org.base_url}/services/practice/recycle-bin/empty",
                          json=body, headers=user.headers())


@pytest.fixture(scope="module")
def outreach(default_org: PracticeOrg) -> Login:
    return login(default_org, OUTREACH_USERNAME)


def test_undelete_restores_task(admin: Login) -> None:
    task_id = deleted_task(admin, "Undelete round trip")

    results = outcomes(post_undelete(admin, [task_id]))

    assert results == [Outcome(task_id, True, "", "")]
    assert task_rows(admin, task_id)[0]["IsDeleted"] is False
    response = admin.http.get(admin.url(f"sobjects/Task/{task_id}"), headers=admin.headers())
    assert response.json()["Subject"] == "Undelete round trip"


def test_undelete_results_in_request_order(admin: Login) -> None:
    live_id = new_task(admin, "Still live")
    deleted_id = deleted_task(admin, "In the recycle bin")
    unknown_id = "00T000000000000AAA"

    results = outcomes(post_undelete(admin, [live_id, deleted_id, unknown_id]))

    assert [result.id for result in results] == [live_id, deleted_id, unknown_id]
    assert results[0] == Outcome(live_id, False, "UNDELETE_FAILED", "Entity is not in the recycle bin")
    assert results[1].success
    assert results[2].status_code == "INVALID_ID_FIELD"


def test_undelete_counts_api_request(admin: Login) -> None:
    task_id = deleted_task(admin, "Counted")
    before = admin.org.request_count

    response = post_undelete(admin, [task_id])

    assert admin.org.request_count == before + 1
    current = ElementTree.fromstring(response.content).findtext(
        f"{SOAP_ENV}Header/{PARTNER}LimitInfoHeader/{PARTNER}limitInfo/{PARTNER}current")
    assert current is not None
    assert int(current) >= 1


def test_undelete_bad_session(admin: Login) -> None:
    task_id = deleted_task(admin, "Bad session")

    response = post_undelete(admin, [task_id], session_id="not-a-session")

    assert response.status_code == 500
    fault = fault_of(response)
    assert fault["faultcode"] == "sf:INVALID_SESSION_ID"
    assert fault["exceptionCode"] == "INVALID_SESSION_ID"
    assert task_rows(admin, task_id)[0]["IsDeleted"] is True


def test_undelete_over_200_ids(admin: Login) -> None:
    task_id = deleted_task(admin, "Too many ids")

    response = post_undelete(admin, [task_id] * 201)

    assert response.status_code == 500
    assert fault_of(response)["exceptionCode"] == "EXCEEDED_ID_LIMIT"
    assert task_rows(admin, task_id)[0]["IsDeleted"] is True


def test_undelete_200_ids_accepted(admin: Login) -> None:
    task_id = deleted_task(admin, "Exactly 200 ids")

    results = outcomes(post_undelete(admin, [task_id] * 200))

    assert len(results) == 200
    assert results[0].success
    assert all(result.status_code == "UNDELETE_FAILED" for result in results[1:])


def test_undelete_needs_owner_or_modify_all(admin: Login, outreach: Login) -> None:
    task_id = deleted_task(admin, "Owned by the admin")

    results = outcomes(post_undelete(outreach, [task_id]))

    assert results == [Outcome(task_id, False, "INSUFFICIENT_ACCESS_OR_READONLY",
                               "insufficient access rights on object id")]
    assert task_rows(admin, task_id)[0]["IsDeleted"] is True


def test_undelete_by_owner(outreach: Login) -> None:
    task_id = deleted_task(outreach, "Owned by the Outreach user")

    assert outcomes(post_undelete(outreach, [task_id])) == [Outcome(task_id, True, "", "")]


def test_undelete_unknown_operation(admin: Login) -> None:
    envelope = undelete_envelope(admin.access_token, []).replace("urn:undelete", "urn:emptyRecycleBin")
    response = admin.http.post(f"{admin.org.base_url}/services/Soap/u/{API_VERSION}",
                               data=envelope.encode(), headers={"Content-Type": "text/xml"})

    assert response.status_code == 500
    assert fault_of(response)["faultcode"] == "soapenv:Client"


def test_empty_recycle_bin_by_ids(admin: Login) -> None:
    purged_id = deleted_task(admin, "Purged by the control")
    kept_id = deleted_task(admin, "Kept in the recycle bin")

    response = empty_recycle_bin(admin, {"ids": [purged_id]})

    assert response.status_code == 200, response.text
    assert response.json() == {"purged": 1}
    assert task_rows(admin, purged_id) == []
    assert task_rows(admin, kept_id)[0]["IsDeleted"] is True
    assert outcomes(post_undelete(admin, [purged_id])) == [
        Outcome(purged_id, False, "UNDELETE_FAILED", "Entity is not in the recycle bin")]


def test_empty_recycle_bin_skips_live(admin: Login) -> None:
    live_id = new_task(admin, "Live, not purged")

    response = empty_recycle_bin(admin, {"ids": [live_id]})

    assert response.json() == {"purged": 0}
    assert task_rows(admin, live_id)[0]["IsDeleted"] is False


def test_empty_recycle_bin_needs_modify_all(outreach: Login) -> None:
    response = empty_recycle_bin(outreach, None)

    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS"


def test_empty_recycle_bin_rejects_bad_ids(admin: Login) -> None:
    response = empty_recycle_bin(admin, {"ids": "00T000000000000AAA"})

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"


def test_empty_whole_recycle_bin(start_org: Callable[[str], PracticeOrg]) -> None:
    # An org of its own, because this empties the recycle bin that the other tests use.
    org = start_org("default")
    user = login(org, org.admin_username)
    deleted_id = deleted_task(user, "Emptied with the rest")

    response = empty_recycle_bin(user, None)

    assert response.status_code == 200, response.text
    # The default scenario seeds one Task in the recycle bin.
    assert response.json() == {"purged": 2}
    assert task_rows(user, deleted_id) == []
    in_bin = user.sf.query_all("SELECT Id FROM Task WHERE IsDeleted = true", include_deleted=True)
    assert in_bin["totalSize"] == 0


def test_purge_after_15_days(admin: Login) -> None:
    expired_id = deleted_task(admin, "Deleted 16 days ago")
    kept_id = deleted_task(admin, "Deleted 14 days ago")
    now = now_utc()
    admin.org.store.set_deleted(expired_id, True, at=now - datetime.timedelta(days=16))
    admin.org.store.set_deleted(kept_id, True, at=now - datetime.timedelta(days=14))

    assert task_rows(admin, expired_id) == []
    assert task_rows(admin, kept_id)[0]["IsDeleted"] is True
    assert outcomes(post_undelete(admin, [expired_id, kept_id])) == [
        Outcome(expired_id, False, "UNDELETE_FAILED", "Entity is not in the recycle bin"),
        Outcome(kept_id, True, "", ""),
    ]


def test_purge_recycle_bin_clock(admin: Login) -> None:
    deleted_id = deleted_task(admin, "Purged by the clock")
    store = admin.org.store

    assert deleted_id not in admin.org.purge_recycle_bin(now_utc() + datetime.timedelta(days=14))
    purged = admin.org.purge_recycle_bin(now_utc() + datetime.timedelta(days=15, minutes=1))

    assert deleted_id in purged
    assert store.get_record(deleted_id) is None
    assert store.is_purged(deleted_id)


@pytest.mark.parametrize(("fault", "code"), [("server_unavailable_rate", "SERVER_UNAVAILABLE"),
                                             ("server_error_rate", "UNKNOWN_EXCEPTION")])
def test_undelete_fault_before_restore(admin: Login, fault: str, code: str) -> None:
    task_id = deleted_task(admin, f"Fault {code}")
    admin.org.faults = FaultPlan(**{fault: 1.0})
    try:
        response = post_undelete(admin, [task_id])
    finally:
        admin.org.faults = FaultPlan()

    assert response.status_code == 500
    assert fault_of(response)["exceptionCode"] == code
    assert task_rows(admin, task_id)[0]["IsDeleted"] is True


@pytest.mark.parametrize(("fault", "restored"), [("dropped_connection_rate", False),
                                                 ("dropped_after_commit_rate", True)])
def test_undelete_dropped_connection(admin: Login, fault: str, restored: bool) -> None:
    task_id = deleted_task(admin, f"Dropped {restored}")
    admin.org.faults = FaultPlan(**{fault: 1.0})
    try:
        with pytest.raises(requests.ConnectionError):
            post_undelete(admin, [task_id])
    finally:
        admin.org.faults = FaultPlan()

    assert task_rows(admin, task_id)[0]["IsDeleted"] is not restored


@pytest.mark.parametrize(("seed", "status", "restored"), [(4, 504, True), (1, 502, False)])
def test_undelete_gateway_page(admin: Login, seed: int, status: int, restored: bool) -> None:
    task_id = deleted_task(admin, f"Gateway {status}")
    admin.org.faults = FaultPlan(gateway_error_rate=1.0, seed=seed)
    try:
        response = post_undelete(admin, [task_id])
    finally:
        admin.org.faults = FaultPlan()

    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert task_rows(admin, task_id)[0]["IsDeleted"] is not restored


def test_undelete_expired_session_fault(admin: Login) -> None:
    task_id = deleted_task(admin, "Expired session")
    own = login(admin.org, admin.org.admin_username)
    admin.org.faults = FaultPlan(expired_session_rate=1.0)
    try:
        response = post_undelete(own, [task_id])
    finally:
        admin.org.faults = FaultPlan()

    assert fault_of(response)["exceptionCode"] == "INVALID_SESSION_ID"
    assert fault_of(post_undelete(own, [task_id]))["exceptionCode"] == "INVALID_SESSION_ID"
    assert task_rows(admin, task_id)[0]["IsDeleted"] is True


def test_undelete_row_lock_per_record(admin: Login) -> None:
    task_id = deleted_task(admin, "Locked row")
    admin.org.faults = FaultPlan(unable_to_lock_row_rate=1.0)
    try:
        results = outcomes(post_undelete(admin, [task_id]))
    finally:
        admin.org.faults = FaultPlan()

    assert [(result.id, result.success, result.status_code) for result in results] == [
        (task_id, False, "UNABLE_TO_LOCK_ROW")]
    assert task_rows(admin, task_id)[0]["IsDeleted"] is True
