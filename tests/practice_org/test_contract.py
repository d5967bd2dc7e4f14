"""Contract tests: the practice org's responses have the shape of recorded Salesforce responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import format_external_id
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import REDIRECT_URI, Login, https_session, login

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def admin(non_unique_org: PracticeOrg) -> Login:
    return login(non_unique_org, non_unique_org.admin_username)


def test_describe__field_entries_have_recorded_keys(admin: Login) -> None:
    expected = recorded("sobject_describe_success_response.json")

    described = admin.sf.Task.describe()

    assert set(expected) - set(described) == set()
    assert set(expected["fields"][0]) - set(described["fields"][0]) == set()


def test_create__success_body_matches_recording(admin: Login) -> None:
    expected = recorded("create_success_response.json")

    created = admin.sf.Contact.create({"LastName": "Contract"})

    assert set(created) == set(expected)
    assert created["success"] is True
    assert created["errors"] == []


def test_upsert_300__body_is_array_of_record_urls(admin: Login) -> None:
    expected = recorded("upsert_multiple_error_response.json")
    rows = admin.sf.query("SELECT Message_ID__c FROM Task WHERE Message_ID__c != null")["records"]
    keys = [row["Message_ID__c"] for row in rows]
    shared = next(key for key in keys if keys.count(key) == 2)

    response = admin.http.patch(
        admin.url("sobjects/Task/" + format_external_id("Message_ID__c", shared)),
        headers=admin.headers(), json={"Subject": "x"})

    assert response.status_code == 300
    assert all(isinstance(url, str) for url in expected)
    assert all(url.startswith("/services/data/v64.0/sobjects/Task/00T") for url in
               response.json())


def test_query__page_has_recorded_keys(admin: Login) -> None:
    expected = recorded("query_paginated_first_page_response.json")

    page = admin.sf.query("SELECT Id FROM Task LIMIT 1")

    assert set(expected) - {"nextRecordsUrl"} == set(page)
    assert set(expected["records"][0]["attributes"]) == set(page["records"][0]["attributes"])


def test_errors__unknown_field_matches_recording(admin: Login) -> None:
    expected = recorded("write_error_response.json")[0]

    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.Task.create({"foo": "bar"})

    error = raised.value.content[0]
    assert error["errorCode"] == expected["errorCode"]
    assert error["message"] == "No such column 'foo' on sobject of type Task"


def test_errors__duplicate_value_matches_recording(admin: Login) -> None:
    expected = recorded("duplicate_value_error_response.json")[0]
    username = admin.sf.query("SELECT Username FROM User LIMIT 1")["records"][0]["Username"]

    response = admin.http.post(admin.url("sobjects/User"), headers=admin.headers(), json={
        "Username": username, "LastName": "Twin", "Email": "twin@example.com",
        "Alias": "twin", "ProfileId": admin.sf.query(
            "SELECT Id FROM Profile LIMIT 1")["records"][0]["Id"]})

    assert response.status_code == 400
    assert set(response.json()[0]) == set(expected)
    assert response.json()[0]["errorCode"] == expected["errorCode"]
    assert response.json()[0]["message"].startswith("duplicate value found: Username duplicates")


def test_errors__expired_session_matches_recording(admin: Login) -> None:
    expected = recorded("expired_session_response.json")

    response = admin.http.get(admin.url("limits"), headers={"Authorization": "Bearer gone"})

    assert response.status_code == 401
    assert response.json() == expected


def test_oauth__token_bodies_have_recorded_keys(admin: Login) -> None:
    success = recorded("auth_success_response.json")
    failure = recorded("refresh_error_response.json")
    http = https_session(admin.org)
    token_url = f"{admin.org.base_url}/services/oauth2/token"

    renewed = http.post(token_url, data={"grant_type": "refresh_token",
                                         "client_id": admin.org.client_id,
                                         "refresh_token": admin.refresh_token})
    rejected = http.post(token_url, data={"grant_type": "refresh_token",
                                          "client_id": admin.org.client_id,
                                          "refresh_token": "expired", "redirect_uri": REDIRECT_URI})

    assert set(success) - set(renewed.json()) == set()
    assert rejected.status_code == 400
    assert rejected.json() == failure


def test_versions__entries_have_recorded_keys(admin: Login) -> None:
    expected = recorded("services_data_success_response.json")

    versions = https_session(admin.org).get(f"{admin.org.base_url}/services/data/").json()

    assert all(set(entry) == set(expected[0]) for entry in versions)
