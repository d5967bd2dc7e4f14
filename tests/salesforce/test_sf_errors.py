"""Error explanations from recorded Salesforce response bodies.

The bodies are real responses as published: restforce's spec/fixtures
(MIT, github.com/restforce/restforce) and error bodies users pasted into public
GitHub threads (cited at each body). Each response goes through
simple-salesforce's own exception routing, as in production.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from simple_salesforce.util import exception_handler

from backstory_desktop.salesforce.errors import (
    ProblemKind,
    SalesforceProblem,
    explain,
    explain_error_code,
    is_daily_limit,
    matched_record_ids,
    scrub,
)
from backstory_desktop.salesforce.oauth import OAuthError

URL = "https://example.my.salesforce.com/services/data/v64.0/composite/sobjects/Task/Message_ID__c"


def salesforce_exception(status: int, body: Any) -> Exception:
    """Return the exception simple-salesforce raises for a response with this status and body."""
    response = requests.Response()
    response.status_code = status
    response.url = URL
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    try:
        exception_handler(response, name="test")
    except Exception as exc:
        return exc
    raise AssertionError("exception_handler did not raise")


# restforce spec/fixtures/sobject/upsert_multiple_error_response.json
MULTIPLE_CHOICES = [
    "/services/data/v23.0/sobjects/Whizbang/foo",
    "/services/data/v23.0/sobjects/Whizbang/bar",
]
# An HTTP 300 body for an external ID shared by two Contacts, as quoted in a
# public go-salesforce pull request (github.com/k-capehart/go-salesforce).
MULTIPLE_CHOICES_CONTACTS = [
    "/services/data/v60.0/sobjects/Contact/003Dn00000srto9IAA",
    "/services/data/v60.0/sobjects/Contact/003Dn00000srtA8IAI",
]
# A Salesforce response to an insert whose unique external ID already exists,
# as quoted in a public go-salesforce bug report (github.com/k-capehart/go-salesforce).
DUPLICATE_VALUE = [
    {
        "message": "duplicate value found: NozzleAccountId__c duplicates value on record with id: "
        "001Vr00000m4eGCIAY",
        "errorCode": "DUPLICATE_VALUE",
        "fields": [],
    }
]
# restforce spec/fixtures/expired_session_response.json
EXPIRED_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
# restforce spec/fixtures/sobject/upsert_error_response.json
EXTERNAL_ID_NOT_FOUND = [
    {
        "message": "Provided external ID field does not exist or is not accessible: Namez",
        "errorCode": "NOT_FOUND",
    }
]
# restforce spec/fixtures/sobject/write_error_response.json
NO_SUCH_COLUMN = [{"message": "No such column 'foo' on sobject of type Bar", "errorCode": "INVALID_FIELD"}]


def test_explain__daily_limit_says_wait_for_the_window() -> None:
    exc = salesforce_exception(
        403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    )
    problem = explain(exc)
    assert problem.kind is ProblemKind.REFUSED
    assert "daily API request limit is used up" in problem.sentence
    assert "try again after" in problem.sentence
    assert problem.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert problem.status == 403


def test_explain__concurrent_limit_says_back_off() -> None:
    exc = salesforce_exception(
        403,
        [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    problem = explain(exc)
    assert problem.kind is ProblemKind.REFUSED
    assert "too many long requests at once" in problem.sentence


def test_daily_limit__only_total_requests() -> None:
    daily = explain(salesforce_exception(
        403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    ))
    concurrent = explain(salesforce_exception(
        403, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    ))
    other = explain(salesforce_exception(
        403, [{"message": "Some other Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    ))

    assert is_daily_limit(daily)
    assert not is_daily_limit(concurrent)
    assert not is_daily_limit(other)
    assert "daily" not in other.sentence
    assert "Some other Limit exceeded." in other.sentence


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        (MULTIPLE_CHOICES, ["foo", "bar"]),
        (MULTIPLE_CHOICES_CONTACTS, ["003Dn00000srto9IAA", "003Dn00000srtA8IAI"]),
    ],
)
def test_explain__multiple_choices_lists_the_matched_ids(body: list[str], ids: list[str]) -> None:
    problem = explain(salesforce_exception(300, body))
    assert problem.kind is ProblemKind.FIXABLE
    assert problem.status == 300
    assert "nothing was written" in problem.sentence
    for record_id in ids:
        assert record_id in problem.sentence


def test_matched_ids__objects_with_urls_also_parsed() -> None:
    body = [{"url": "/services/data/v64.0/sobjects/Task/00T000000000001AAA"}]
    assert matched_record_ids(body) == ["00T000000000001AAA"]


def test_explain__field_not_writable_names_field_and_fls() -> None:
    body = [
        {
            "message": "Unable to create/update fields: Message_ID__c. Please check the security "
            "settings of this field and verify that it is read/write for your profile or "
            "permission set.",
            "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
        }
    ]
    problem = explain(salesforce_exception(400, body))
    assert problem.kind is ProblemKind.FIXABLE
    assert "Message_ID__c" in problem.sentence
    assert "field-level security" in problem.sentence


def test_explain__task_subtype_on_update_is_a_bug() -> None:
    kind, sentence = explain_error_code(
        "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: TaskSubtype.", []
    )
    assert kind is ProblemKind.BUG
    assert "only when a Task is created" in sentence


def test_explain__duplicate_value_keeps_the_record_id() -> None:
    problem = explain(salesforce_exception(400, DUPLICATE_VALUE))
    assert problem.kind is ProblemKind.REFUSED
    assert "001Vr00000m4eGCIAY" in problem.sentence


def test_explain__expired_session_says_sign_in_again() -> None:
    problem = explain(salesforce_exception(401, EXPIRED_SESSION))
    assert problem.kind is ProblemKind.FIXABLE
    assert "sign in again" in problem.sentence


def test_explain__expired_session_with_html_body() -> None:
    problem = explain(salesforce_exception(401, "<html><body>Session expired</body></html>"))
    assert "sign in again" in problem.sentence
    assert "<html>" in problem.details


def test_explain__unknown_external_id_field() -> None:
    problem = explain(salesforce_exception(404, EXTERNAL_ID_NOT_FOUND))
    assert problem.kind is ProblemKind.FIXABLE
    assert "External ID" in problem.sentence
    assert "Namez" in problem.sentence


def test_explain__no_such_column_names_the_field() -> None:
    problem = explain(salesforce_exception(400, NO_SUCH_COLUMN))
    assert problem.kind is ProblemKind.FIXABLE
    assert "The field foo does not exist or is hidden" in problem.sentence


def test_explain__server_error_is_refused_with_status() -> None:
    problem = explain(salesforce_exception(503, "Service Unavailable"))
    assert problem.kind is ProblemKind.REFUSED
    assert "HTTP 503" in problem.sentence


def test_explain__details_keep_status_and_body() -> None:
    problem = explain(salesforce_exception(400, DUPLICATE_VALUE))
    assert "HTTP 400" in problem.details
    assert "DUPLICATE_VALUE" in problem.details


def test_explain__details_never_carry_tokens() -> None:
    body = [
        {
            "message": "Authorization: Bearer 00D000000000001!AQ8Asecret.token "
            "access_token=abc123secret refresh_token: \"rt-secret\"",
            "errorCode": "UNKNOWN_EXCEPTION",
        }
    ]
    problem = explain(salesforce_exception(500, body))
    assert "secret" not in problem.details
    assert "[removed]" in problem.details


def test_scrub__keeps_error_codes() -> None:
    text = '{"errorCode":"INVALID_GRANT","statusCode":"DUPLICATE_VALUE"}'
    assert scrub(text) == text


def test_explain__invalid_grant_from_the_token_endpoint() -> None:
    # restforce spec/fixtures/refresh_error_response.json
    error = OAuthError("invalid_grant", "expired access/refresh token", status=400)
    problem = explain(error)
    assert problem.kind is ProblemKind.FIXABLE
    assert "invalid_grant" in problem.sentence
    assert "sign in again" in problem.sentence


def _request_error(
    kind: type[requests.RequestException],
    method: str = "GET",
    path: str = "/services/data/",
) -> requests.RequestException:
    request = requests.Request(method, f"https://example.my.salesforce.com{path}").prepare()
    return kind("failed", request=request)


def test_explain__connect_timeout_names_the_host() -> None:
    problem = explain(_request_error(requests.exceptions.ConnectTimeout))
    assert problem.kind is ProblemKind.REFUSED
    assert "Connecting to example.my.salesforce.com timed out" in problem.sentence


def test_explain__read_timeout_leaves_write_unknown() -> None:
    error = _request_error(
        requests.exceptions.ReadTimeout, "PATCH", "/services/data/v64.0/composite/sobjects/Task/Message_ID__c"
    )
    problem = explain(error)
    assert "unknown whether a write was applied" in problem.sentence


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/services/data/v64.0/query"),
        ("POST", "/services/oauth2/token"),
        ("POST", "/services/oauth2/revoke"),
        ("POST", "/services/Soap/u/64.0"),
    ],
)
def test_explain__read_timeout_without_a_write(method: str, path: str) -> None:
    problem = explain(_request_error(requests.exceptions.ReadTimeout, method, path))
    assert "did not answer in time; try again later" in problem.sentence
    assert "write" not in problem.sentence


def test_explain__certificate_error_names_the_ca_bundle() -> None:
    error = _request_error(requests.exceptions.SSLError)
    error.ca_bundle = "/home/admin/proxy-ca.pem"  # type: ignore[attr-defined]
    problem = explain(error)
    assert problem.kind is ProblemKind.FIXABLE
    assert "/home/admin/proxy-ca.pem" in problem.sentence
    assert problem.error_code == "CERTIFICATE_VERIFY_FAILED"


def test_explain__problem_passes_through() -> None:
    problem = SalesforceProblem(ProblemKind.FIXABLE, "Grant it.")
    assert explain(problem) is problem


def test_explain__other_exception_is_a_bug() -> None:
    problem = explain(KeyError("records"))
    assert problem.kind is ProblemKind.BUG
