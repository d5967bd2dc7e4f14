"""Describe and SOQL as the session user sees them: field-level security, archive, recycle bin."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.practice_org.practice_login import Login

FIELD = "Message_ID__c"


def custom_fields(client: Login) -> dict[str, dict[str, object]]:
    return {f["name"]: f for f in client.sf.Task.describe()["fields"] if f["custom"]}


def test_describe__field_without_fls_is_absent(integration: Login) -> None:
    fields = custom_fields(integration)

    assert FIELD not in fields
    assert "peopleai__Created_by_PeopleAI__c" in fields


def test_describe__admin_sees_field_properties(admin: Login) -> None:
    field = custom_fields(admin)[FIELD]

    assert field["type"] == "string"
    assert field["length"] == 255
    assert field["unique"] is True
    assert field["externalId"] is True
    assert field["caseSensitive"] is True


def test_describe__task_subtype_is_create_only(admin: Login) -> None:
    fields = {f["name"]: f for f in admin.sf.Task.describe()["fields"]}

    assert fields["TaskSubtype"]["createable"] is True
    assert fields["TaskSubtype"]["updateable"] is False
    assert "Call" in [value["value"] for value in fields["TaskSubtype"]["picklistValues"]]
    assert fields["Description"]["length"] == 32000


def test_query__field_without_fls_is_no_such_column(integration: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        integration.sf.query(f"SELECT Id, {FIELD} FROM Task")

    error = raised.value.content[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert f"No such column '{FIELD}'" in error["message"]


def test_create__field_without_fls_is_rejected(integration: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        integration.sf.Task.create({"Subject": "Email: x", FIELD: "<x@y>"})

    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_query_all__returns_archived_and_deleted_rows(admin: Login) -> None:
    soql = "SELECT Id, IsDeleted, IsArchived FROM Task WHERE IsDeleted = true OR IsArchived = true"

    visible = admin.sf.query(soql)
    everything = admin.sf.query_all(soql, include_deleted=True)

    assert visible["totalSize"] == 0
    assert any(row["IsArchived"] for row in everything["records"])
    assert any(row["IsDeleted"] for row in everything["records"])


def test_delete__moves_task_to_recycle_bin(admin: Login) -> None:
    task_id = admin.sf.Task.create({"Subject": "Email: to delete"})["id"]

    admin.sf.Task.delete(task_id)

    soql = f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task_id}'"
    assert admin.sf.query(soql)["totalSize"] == 0
    assert admin.sf.query_all(soql, include_deleted=True)["records"][0]["IsDeleted"] is True


def test_query__pages_of_2000_with_next_records_url(admin: Login) -> None:
    for batch in range(11):
        records = [{"attributes": {"type": "Contact"}, "LastName": f"Paging {batch}-{n}"}
                   for n in range(200)]
        results = admin.sf.restful("composite/sobjects", method="POST",
                                   json={"allOrNone": True, "records": records})
        assert all(result["success"] for result in results)

    soql = "SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Paging %'"
    first = admin.sf.query(soql)
    rows = list(admin.sf.query_all_iter(soql))

    assert first["totalSize"] == 2200
    assert first["done"] is False
    assert len(first["records"]) == 2000
    assert "/query/" in first["nextRecordsUrl"]
    assert len({row["Id"] for row in rows}) == 2200


def test_query__malformed_query_is_rejected(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.query("SELECT FROM Task")

    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_api__bad_token_is_invalid_session_id(admin: Login) -> None:
    response = admin.http.get(admin.url("limits"), headers={"Authorization": "Bearer nope"})

    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_api__responses_carry_limit_info(admin: Login) -> None:
    response = admin.http.get(admin.url("limits"), headers=admin.headers())

    assert response.status_code == 200
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert response.headers["Sforce-Limit-Info"].endswith("/15000")
    assert response.json()["DailyApiRequests"]["Max"] == 15000


def test_api__versions_list_includes_pinned_version(admin: Login) -> None:
    response = requests.get(f"{admin.org.base_url}/services/data/",
                            verify=str(admin.org.ca_bundle))

    assert {"label": "Summer '25", "url": "/services/data/v64.0", "version": "64.0"} in (
        response.json())


def test_identity__returns_the_token_user(admin: Login) -> None:
    tokens_user = admin.sf.query(
        "SELECT Id FROM User WHERE Username = 'admin@practice.backstory.example'")
    user_id = tokens_user["records"][0]["Id"]
    org_id = admin.org.org_id

    response = admin.http.get(f"{admin.org.base_url}/id/{org_id}/{user_id}",
                              headers=admin.headers())

    assert response.json()["username"] == "admin@practice.backstory.example"
    assert response.json()["organization_id"] == org_id
