"""The non-unique scenario: an External ID that is not Unique, with two Tasks on one key."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import format_external_id
from simple_salesforce.exceptions import SalesforceMoreThanOneRecord

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"


@pytest.fixture(scope="module")
def admin(non_unique_org: PracticeOrg) -> Login:
    return login(non_unique_org, non_unique_org.admin_username)


@pytest.fixture(scope="module")
def shared_key(admin: Login) -> tuple[str, list[str]]:
    rows = admin.sf.query(f"SELECT Id, {FIELD} FROM Task WHERE {FIELD} != null")["records"]
    by_key: dict[str, list[str]] = {}
    for row in rows:
        by_key.setdefault(row[FIELD], []).append(row["Id"])
    shared = [(key, ids) for key, ids in by_key.items() if len(ids) == 2]
    assert len(shared) == 1
    return shared[0]


def upsert(client: Login, key: str) -> Any:
    payload = {"records": [{"attributes": {"type": "Task"}, FIELD: key, "Subject": "x"}]}
    return client.sf.restful(f"composite/sobjects/Task/{FIELD}", method="PATCH", json=payload)


def test_describe__field_is_external_id_not_unique(admin: Login) -> None:
    field = {f["name"]: f for f in admin.sf.Task.describe()["fields"]}[FIELD]

    assert field["externalId"] is True
    assert field["unique"] is False
    assert field["caseSensitive"] is False


def test_single_upsert__two_matches_returns_300(
    admin: Login, shared_key: tuple[str, list[str]]
) -> None:
    key, ids = shared_key

    with pytest.raises(SalesforceMoreThanOneRecord) as raised:
        admin.sf.Task.upsert(format_external_id(FIELD, key), {"Subject": "x"})

    assert raised.value.status == 300
    assert sorted(raised.value.content) == sorted(
        f"/services/data/v64.0/sobjects/Task/{record_id}" for record_id in ids)


def test_collections_upsert__two_matches_is_duplicate_external_id(
    admin: Login, shared_key: tuple[str, list[str]]
) -> None:
    results = upsert(admin, shared_key[0])

    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert "matched 2 records" in results[0]["errors"][0]["message"]


def test_collections_upsert__needs_view_all_data(non_unique_org: PracticeOrg) -> None:
    outreach = login(non_unique_org, "outreach@practice.backstory.example")

    results = upsert(outreach, "<new@practice.example>")

    assert results[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_tooling__making_field_unique_fails_while_duplicates_exist(admin: Login) -> None:
    field_id = admin.sf.toolingexecute(
        "query/?q=SELECT+Id+FROM+CustomField+WHERE+DeveloperName='Message_ID'")["records"][0]["Id"]

    response = admin.http.patch(admin.url(f"tooling/sobjects/CustomField/{field_id}"),
                                headers=admin.headers(),
                                json={"Metadata": {"unique": True, "caseSensitive": True}})

    assert response.status_code == 400
    assert "Duplicate value found when building unique index" in response.json()[0]["message"]
