"""Upserts by external ID against the default scenario, through simple-salesforce over HTTPS."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from simple_salesforce import format_external_id, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"


def upsert(client: Login, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    payload = {"allOrNone": all_or_none,
               "records": [{"attributes": {"type": "Task"}, **record} for record in records]}
    return client.sf.restful(f"composite/sobjects/Task/{FIELD}", method="PATCH", json=payload)


def task_with_key(client: Login, key: str) -> dict[str, Any]:
    result = client.sf.query(format_soql(
        "SELECT Id, Subject, TaskSubtype FROM Task WHERE Message_ID__c = {}", key))
    assert result["totalSize"] == 1
    return dict(result["records"][0])


@pytest.fixture(scope="module")
def outreach(default_org: PracticeOrg) -> Login:
    return login(default_org, "outreach@practice.backstory.example")


@pytest.fixture(scope="module")
def logged_key(admin: Login) -> str:
    result = admin.sf.query(
        "SELECT Message_ID__c FROM Task WHERE Message_ID__c LIKE '<%' ORDER BY Id LIMIT 1")
    return str(result["records"][0][FIELD])


def test_collections_upsert__existing_key_is_update(admin: Login, logged_key: str) -> None:
    before = task_with_key(admin, logged_key)

    results = upsert(admin, [{FIELD: logged_key, "Subject": "Email: updated by upsert"}])

    assert results[0]["success"] is True
    assert results[0]["created"] is False
    assert results[0]["id"] == before["Id"]
    assert task_with_key(admin, logged_key)["Subject"] == "Email: updated by upsert"


def test_collections_upsert__new_key_is_create(admin: Login) -> None:
    key = "<new-key-1@practice.example>"

    results = upsert(admin, [{FIELD: key, "Subject": "Email: hello", "TaskSubtype": "Email"}])

    assert results[0]["success"] is True
    assert results[0]["created"] is True
    assert task_with_key(admin, key)["TaskSubtype"] == "Email"


def test_collections_upsert__task_subtype_on_update_fails(admin: Login, logged_key: str) -> None:
    results = upsert(admin, [{FIELD: logged_key, "TaskSubtype": "Call"}])

    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert "TaskSubtype" in results[0]["errors"][0]["fields"]


def test_collections_upsert__all_or_none_rolls_back(admin: Login, logged_key: str) -> None:
    key = "<rolled-back@practice.example>"

    results = upsert(admin, [{FIELD: key, "Subject": "Email: kept?"},
                             {FIELD: logged_key, "TaskSubtype": "Call"}], all_or_none=True)

    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    found = admin.sf.query(format_soql("SELECT Id FROM Task WHERE Message_ID__c = {}", key))
    assert found["totalSize"] == 0


def test_collections_upsert__field_without_edit_is_rejected(outreach: Login) -> None:
    results = upsert(outreach, [{FIELD: "<flag@practice.example>",
                                 "peopleai__Created_by_PeopleAI__c": True}])

    error = results[0]["errors"][0]
    assert error["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["fields"] == ["peopleai__Created_by_PeopleAI__c"]


def test_collections_upsert__more_than_200_records_is_rejected(admin: Login) -> None:
    records = [{FIELD: f"<bulk-{n}@practice.example>"} for n in range(201)]

    with pytest.raises(SalesforceMalformedRequest) as raised:
        upsert(admin, records)

    assert raised.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_collections_upsert__field_not_external_id_is_rejected(admin: Login) -> None:
    payload = {"records": [{"attributes": {"type": "Task"}, "Subject": "x"}]}

    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.restful("composite/sobjects/Task/Subject", method="PATCH", json=payload)

    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_create__unique_value_clash_is_duplicate_value(admin: Login, logged_key: str) -> None:
    existing = task_with_key(admin, logged_key)

    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.Task.create({FIELD: logged_key, "Subject": "Email: again"})

    error = raised.value.content[0]
    assert error["errorCode"] == "DUPLICATE_VALUE"
    assert error["message"] == (
        f"duplicate value found: {FIELD} duplicates value on record with id: {existing['Id']}")


def test_upsert__key_of_recycled_task_is_duplicate_value(admin: Login) -> None:
    recycled = admin.sf.query_all(
        "SELECT Id, Message_ID__c FROM Task WHERE IsDeleted = true AND Message_ID__c != null",
        include_deleted=True)["records"][0]

    results = upsert(admin, [{FIELD: recycled[FIELD], "Subject": "Email: back"}])

    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"


def test_single_upsert__key_with_slash_is_kept_whole(admin: Login) -> None:
    key = "<CAEA+Pe0Bx+y/Zq==@mail.example>"

    status = admin.sf.Task.upsert(format_external_id(FIELD, key), {"Subject": "Email: slash"})
    again = admin.sf.Task.upsert(format_external_id(FIELD, key), {"Subject": "Email: slash 2"},
                                 raw_response=True)

    assert status == 201
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert task_with_key(admin, key)["Subject"] == "Email: slash 2"


def test_upsert__case_only_variant_is_a_different_key(admin: Login) -> None:
    rows = admin.sf.query(
        "SELECT Message_ID__c FROM Task WHERE Message_ID__c != null ORDER BY Id")["records"]
    keys = {row[FIELD] for row in rows}
    folded = Counter(key.casefold() for key in keys)
    variants = [key for key in keys if folded[key.casefold()] > 1]

    assert variants, "the default scenario contains a case-only key pair"
    results = upsert(admin, [{FIELD: variants[0], "Subject": "Email: case"}])
    assert results[0]["created"] is False
