"""Places where the practice org responded more leniently than Salesforce, or differently.

Each test drives the real path (simple-salesforce or requests over HTTPS) and
names the Salesforce source of the behaviour it expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from backstory_desktop.cli import build_parser
from backstory_desktop.practice_org import FaultPlan, PracticeOrg
from tests.practice_org.practice_login import REDIRECT_URI, Login, https_session, pkce_pair

FIELD = "Message_ID__c"


def tasks_with_key(client: Login, key: str) -> int:
    result = client.sf.query_all(format_soql(f"SELECT Id FROM Task WHERE {FIELD} = {{}}", key),
                                 include_deleted=True)
    return int(result["totalSize"])


@pytest.fixture
def fault_admin(admin: Login, default_org: PracticeOrg) -> Iterator[Login]:
    """The admin, with the org's fault plan switched off again after the test."""
    yield admin
    default_org.faults = FaultPlan()


def control_faults(org: PracticeOrg, client: Login, raw_body: str) -> requests.Response:
    """POST a raw fault plan body, so that JSON numbers requests would refuse can be sent."""
    return client.http.post(f"{org.base_url}/services/practice/faults", data=raw_body,
                            headers={**client.headers(), "Content-Type": "application/json"})


# -- upsert by external ID in the URL ----------------------------------------------


def test_single_upsert__unencoded_slash_in_key_is_not_found(admin: Login) -> None:
    # A key sent without format_external_id() puts a raw "/" into the path. Salesforce
    # reads it as an extra path segment, which is why simple-salesforce and jsforce users
    # send such keys as %2F.
    key = "<raw/slash@practice.example>"

    with pytest.raises(SalesforceResourceNotFound) as raised:
        admin.sf.Task.upsert(f"{FIELD}/{key}", {"Subject": "Email: raw slash"})

    assert raised.value.status == 404
    assert raised.value.content[0]["errorCode"] == "NOT_FOUND"
    assert tasks_with_key(admin, key) == 0


# -- sObject Collections upsert ------------------------------------------------------


def test_collections_upsert__key_field_name_in_any_case_is_read(admin: Login) -> None:
    # Field names in REST request bodies match case-insensitively: the practice org
    # creates a Task from {"subject": ..., "message_id__c": ...} as Salesforce does,
    # so the Collections upsert must find its key under the same spelling.
    key = "<lower-case-field@practice.example>"
    payload = {"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, FIELD.lower(): key, "Subject": "Email: lower case"}]}

    results = admin.sf.restful(f"composite/sobjects/Task/{FIELD}", method="PATCH", json=payload)

    assert results[0]["success"] is True, results
    assert results[0]["created"] is True
    assert tasks_with_key(admin, key) == 1


# -- Bulk API 2.0 -------------------------------------------------------------------


def create_ingest_job(client: Login) -> str:
    response = client.http.post(client.url("jobs/ingest"), headers=client.headers(), json={
        "object": "Task", "operation": "upsert", "externalIdFieldName": FIELD,
        "contentType": "CSV", "lineEnding": "LF"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_bulk_ingest__row_with_extra_values_ends_the_job(admin: Login) -> None:
    job_id = create_ingest_job(admin)
    data = (f"{FIELD},Subject\n"
            "<bulk-even@practice.example>,Email: even row\n"
            "<bulk-ragged@practice.example>,Email: ragged row,one value too many\n")

    uploaded = admin.http.put(admin.url(f"jobs/ingest/{job_id}/batches"), data=data.encode(),
                              headers={**admin.headers(), "Content-Type": "text/csv"})
    closed = admin.http.patch(admin.url(f"jobs/ingest/{job_id}"), headers=admin.headers(),
                              json={"state": "UploadComplete"})
    polled = admin.http.get(admin.url(f"jobs/ingest/{job_id}"), headers=admin.headers())
    failed = admin.http.get(admin.url(f"jobs/ingest/{job_id}/failedResults"),
                            headers=admin.headers())

    assert uploaded.status_code == 201
    assert closed.status_code == 200
    assert polled.status_code == 200, polled.text
    assert polled.json()["state"] in ("JobComplete", "Failed")
    assert failed.status_code == 200
    assert tasks_with_key(admin, "<bulk-ragged@practice.example>") == 0


def test_bulk_query__results_need_the_job_api_version(admin: Login) -> None:
    # Query results must be requested in the API version the job was created in, or the
    # call gets 409 (Bulk API 2.0 Developer Guide, "Get Parallel Results for a Query Job").
    created = admin.http.post(admin.url("jobs/query"), headers=admin.headers(), json={
        "operation": "query", "query": "SELECT Id FROM Task"})
    job_id = created.json()["id"]
    same_version = admin.url(f"jobs/query/{job_id}/results")
    other_version = same_version.replace("/v64.0/", "/v63.0/")

    refused = admin.http.get(other_version, headers=admin.headers())
    served = admin.http.get(same_version, headers=admin.headers())

    assert refused.status_code == 409, refused.text
    assert served.status_code == 200
    assert served.text.splitlines()[0] == '"Id"'


# -- fault plans ----------------------------------------------------------------------


@pytest.mark.parametrize("raw_body", ['{"latency_seconds": Infinity}',
                                      '{"latency_seconds": NaN}',
                                      '{"latency_seconds": 1e400}'])
def test_fault_control__non_finite_latency_is_rejected(
    fault_admin: Login, default_org: PracticeOrg, raw_body: str
) -> None:
    response = control_faults(default_org, fault_admin, raw_body)

    assert response.status_code == 400, response.text
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert default_org.faults == FaultPlan()


@pytest.mark.parametrize("raw_body", ['{"seed": 1e400}',
                                      '{"session_expires_after_calls": 1e400}'])
def test_fault_control__overflowing_whole_number_is_rejected(
    fault_admin: Login, default_org: PracticeOrg, raw_body: str
) -> None:
    response = control_faults(default_org, fault_admin, raw_body)

    assert response.status_code == 400, response.text
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert default_org.faults == FaultPlan()


def test_fault_plan__latency_beyond_request_timeout_is_rejected() -> None:
    # Salesforce ends a REST request after 10 minutes, so no call waits longer.
    with pytest.raises(ValueError, match="latency_seconds"):
        FaultPlan(latency_seconds=601)


@pytest.mark.parametrize(("latency", "message"), [
    ("inf", "inf is above the maximum of 600"),
    ("601", "601 is above the maximum of 600"),
    ("nan", "'nan' is not a number of seconds"),
    ("-1", "-1 is below 0"),
])
def test_serve_options__latency_out_of_range_is_rejected(
    capsys: pytest.CaptureFixture[str], latency: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["practice-org", "serve", "--latency", latency])

    assert exited.value.code == 2
    assert f"argument --latency: {message}" in capsys.readouterr().err


# -- OAuth ------------------------------------------------------------------------------


def test_authorize__redirect_uri_with_fragment_is_not_redirected(default_org: PracticeOrg) -> None:
    # RFC 6749, section 3.1.2: the redirection endpoint URI must not include a fragment,
    # and Salesforce compares redirect_uri with the app's callback URLs.
    _verifier, challenge = pkce_pair()
    params: dict[str, Any] = {
        "response_type": "code", "client_id": default_org.client_id,
        "redirect_uri": f"{REDIRECT_URI}#fragment", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": "s1",
        "login_hint": default_org.admin_username,
    }

    response = https_session(default_org).get(f"{default_org.base_url}/services/oauth2/authorize",
                                               params=params, allow_redirects=False)

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"] == "redirect_uri_mismatch"


# -- Composite --------------------------------------------------------------------------------


def test_composite_upsert__unencoded_slash_in_key_is_not_found(admin: Login) -> None:
    key = "<composite/slash@practice.example>"
    request = {"compositeRequest": [{
        "method": "PATCH", "referenceId": "upsert",
        "url": f"/services/data/v64.0/sobjects/Task/{FIELD}/{key}",
        "body": {"Subject": "Email: composite raw slash"}}]}

    response = admin.sf.restful("composite", method="POST", json=request)
    result = response["compositeResponse"][0]

    assert result["httpStatusCode"] == 404, result
    assert tasks_with_key(admin, key) == 0


def test_composite__more_than_five_queries_are_rejected(admin: Login) -> None:
    # Of a Composite call's 25 subrequests, at most 5 may be queries or sObject Collections
    # (REST API Developer Guide, "Send Multiple Requests Using Composite").
    query = "/services/data/v64.0/query?q=SELECT+Id+FROM+Task+LIMIT+1"
    five = [{"method": "GET", "url": query, "referenceId": f"q{index}"} for index in range(5)]
    sixth = {"method": "GET", "url": query, "referenceId": "q5"}

    accepted = admin.http.post(admin.url("composite"), headers=admin.headers(),
                               json={"compositeRequest": five})
    refused = admin.http.post(admin.url("composite"), headers=admin.headers(),
                              json={"compositeRequest": [*five, sixth]})

    assert accepted.status_code == 200
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "LIMIT_EXCEEDED"


# -- permission objects ------------------------------------------------------------------


def test_permission_set__api_name_is_unique(admin: Login) -> None:
    # PermissionSet.Name is the permission set's API name, so a second set with the same
    # name, in any letter case, is rejected instead of standing beside the first.
    first = admin.sf.PermissionSet.create({"Name": "Backstory_Least_Privilege",
                                           "Label": "Backstory Least Privilege"})

    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.PermissionSet.create({"Name": "backstory_least_privilege",
                                       "Label": "Backstory Least Privilege again"})
    named = admin.sf.query(
        "SELECT Id FROM PermissionSet WHERE Name = 'Backstory_Least_Privilege'")["records"]

    assert raised.value.status == 400
    assert [row["Id"] for row in named] == [first["id"]]


# -- SOQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize("soql", [
    "SELECT COUNT(Id) c, COUNT(Subject) c FROM Task",
    "SELECT Status, COUNT(Id) status FROM Task GROUP BY Status",
])
def test_soql__repeated_aggregate_alias_is_malformed(admin: Login, soql: str) -> None:
    # Two columns of one AggregateResult row cannot share a name, and returning one of
    # them would silently drop the other count.
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.query(soql)

    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"
