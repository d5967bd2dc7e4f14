"""Setup data behind View Setup and Configuration, allOrNone values, and the daily limit's bound.

In the default scenario the outreach user (Standard User) and the integration user (View All
Data) lack View Setup and Configuration. The admin has it through Modify All Data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from backstory_desktop.cli import build_parser
from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, https_session, login

OUTREACH = "outreach@practice.backstory.example"
PERMISSION_OBJECTS = ("Profile", "PermissionSet", "PermissionSetAssignment",
                      "PermissionSetGroup", "PermissionSetGroupComponent",
                      "MutingPermissionSet", "FieldPermissions")
MAX_DAILY_API_LIMIT = 10**9


@pytest.fixture(scope="module")
def outreach(default_org: PracticeOrg) -> Login:
    return login(default_org, OUTREACH)


def refused(call: Any) -> SalesforceRefusedRequest:
    with pytest.raises(SalesforceRefusedRequest) as raised:
        call()
    return raised.value


def set_daily_limit(org: PracticeOrg, admin: Login, value: object) -> requests.Response:
    return https_session(org).post(f"{org.base_url}/services/practice/faults",
                                   headers=admin.headers(), json={"daily_api_limit": value})


# -- limits and record counts ----------------------------------------------------------


@pytest.mark.parametrize("user", ["outreach", "integration"])
def test_limits__need_view_setup(request: pytest.FixtureRequest, user: str) -> None:
    client: Login = request.getfixturevalue(user)

    error = refused(client.sf.limits)

    assert error.status == 403
    assert error.content[0]["errorCode"] == "INSUFFICIENT_ACCESS"
    assert "View Setup and Configuration" in error.content[0]["message"]


def test_limits__admin_reads_them(admin: Login) -> None:
    limits = admin.sf.limits()

    assert limits["DailyApiRequests"]["Max"] == 15000


def test_record_count__needs_view_setup(outreach: Login) -> None:
    error = refused(lambda: outreach.sf.restful("limits/recordCount",
                                                params={"sObjects": "Task"}))

    assert error.status == 403
    assert error.content[0]["errorCode"] == "INSUFFICIENT_ACCESS"


def test_record_count__leaves_out_recycle_bin(admin: Login) -> None:
    created = [admin.sf.Contact.create({"LastName": f"Counted {n}"})["id"] for n in range(2)]

    def contacts() -> int:
        counts = admin.sf.restful("limits/recordCount", params={"sObjects": "Contact"})
        return int(counts["sObjects"][0]["count"])

    before = contacts()
    admin.sf.Contact.delete(created[0])
    after = contacts()

    assert after == before - 1


def test_view_setup__permission_set_grant_opens_setup_data(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "p.db", scenario="default") as org:
        admin = login(org, org.admin_username)
        outreach = login(org, OUTREACH)
        outreach_set = admin.sf.query(
            "SELECT Id FROM PermissionSet WHERE Name = 'Outreach_Integration'"
        )["records"][0]["Id"]
        admin.sf.PermissionSet.update(outreach_set, {"PermissionsViewSetup": True})

        limits = outreach.sf.limits()
        own_count = outreach.sf.restful("limits/recordCount", params={"sObjects": "Task"})
        org_count = admin.sf.restful("limits/recordCount", params={"sObjects": "Task"})
        visible_tasks = outreach.sf.query("SELECT COUNT() FROM Task")["totalSize"]
        described = outreach.sf.PermissionSet.describe()
        listed = {entry["name"] for entry in outreach.sf.describe()["sobjects"]}

    assert limits["DailyApiRequests"]["Max"] == 15000
    # Record counts are org-wide: the user's own share of Tasks does not change them.
    assert own_count == org_count
    assert own_count["sObjects"][0]["count"] > visible_tasks
    assert described["name"] == "PermissionSet"
    assert set(PERMISSION_OBJECTS) <= listed


# -- describe --------------------------------------------------------------------------


def test_describe_global__leaves_out_permission_objects(admin: Login, outreach: Login) -> None:
    listed = {entry["name"] for entry in outreach.sf.describe()["sobjects"]}
    listed_for_admin = {entry["name"] for entry in admin.sf.describe()["sobjects"]}

    assert "Task" in listed
    assert not listed & set(PERMISSION_OBJECTS)
    assert set(PERMISSION_OBJECTS) <= listed_for_admin


@pytest.mark.parametrize("sobject", PERMISSION_OBJECTS)
def test_describe__permission_object_is_not_found(outreach: Login, sobject: str) -> None:
    with pytest.raises(SalesforceResourceNotFound) as raised:
        getattr(outreach.sf, sobject).describe()

    assert raised.value.content[0]["errorCode"] == "NOT_FOUND"


def test_sobject_info__permission_object_is_not_found(outreach: Login) -> None:
    with pytest.raises(SalesforceResourceNotFound) as raised:
        outreach.sf.PermissionSetAssignment.metadata()

    assert raised.value.content[0]["errorCode"] == "NOT_FOUND"


def test_describe__view_all_data_is_not_enough(integration: Login) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        integration.sf.FieldPermissions.describe()


# -- Tooling API -----------------------------------------------------------------------


def test_tooling_create__needs_modify_all_data(outreach: Login) -> None:
    body = {"FullName": "Activity.Outreach_Key__c",
            "Metadata": {"type": "Text", "label": "Outreach Key", "length": 80}}

    with pytest.raises(SalesforceMalformedRequest) as raised:
        outreach.sf.toolingexecute("sobjects/CustomField", method="POST", data=body)

    assert raised.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


# -- allOrNone as a JSON string ---------------------------------------------------------


def create_contacts(admin: Login, all_or_none: object, last_names: list[str | None]) -> Any:
    records = [{"attributes": {"type": "Contact"},
                **({"LastName": name} if name is not None else {})} for name in last_names]
    return admin.sf.restful("composite/sobjects", method="POST",
                            json={"allOrNone": all_or_none, "records": records})


def contacts_named(admin: Login, last_name: str) -> int:
    soql = f"SELECT COUNT() FROM Contact WHERE LastName = '{last_name}'"
    return int(admin.sf.query(soql)["totalSize"])


def test_collections__all_or_none_string_false_keeps_successes(admin: Login) -> None:
    results = create_contacts(admin, "false", ["Kept false", None])

    assert results[0]["success"] is True
    assert results[1]["success"] is False
    assert contacts_named(admin, "Kept false") == 1


def test_collections__all_or_none_null_means_false(admin: Login) -> None:
    results = create_contacts(admin, None, ["Kept null", None])

    assert results[0]["success"] is True
    assert contacts_named(admin, "Kept null") == 1


def test_collections__all_or_none_string_true_rolls_back(admin: Login) -> None:
    results = create_contacts(admin, "TRUE", ["Rolled back true", None])

    assert results[0]["success"] is False
    assert contacts_named(admin, "Rolled back true") == 0


@pytest.mark.parametrize("value", [1, "yes", ["true"]])
def test_collections__all_or_none_non_boolean_is_parser_error(admin: Login, value: object) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        create_contacts(admin, value, ["Never written"])

    assert raised.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert contacts_named(admin, "Never written") == 0


def test_composite__all_or_none_string_false_keeps_successes(admin: Login) -> None:
    base = "/services/data/v64.0/sobjects/Contact"
    request = {"allOrNone": "false", "compositeRequest": [
        {"method": "POST", "url": base, "referenceId": "kept", "body": {"LastName": "Composite kept"}},
        {"method": "POST", "url": base, "referenceId": "failed", "body": {}},
    ]}

    result = admin.sf.restful("composite", method="POST", json=request)

    statuses = [entry["httpStatusCode"] for entry in result["compositeResponse"]]
    assert statuses[0] == 201
    assert statuses[1] == 400
    assert contacts_named(admin, "Composite kept") == 1


# -- daily API limit bound --------------------------------------------------------------


def test_fault_control__daily_limit_above_maximum_is_rejected(
    default_org: PracticeOrg, admin: Login
) -> None:
    response = set_daily_limit(default_org, admin, 10**40)

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD"
    assert str(MAX_DAILY_API_LIMIT) in response.json()[0]["message"]
    assert default_org.daily_api_limit == 15000


def test_fault_control__daily_limit_at_maximum_is_accepted(
    default_org: PracticeOrg, admin: Login
) -> None:
    try:
        response = set_daily_limit(default_org, admin, MAX_DAILY_API_LIMIT)

        assert response.status_code == 200
        assert response.json()["daily_api_limit"] == MAX_DAILY_API_LIMIT
    finally:
        set_daily_limit(default_org, admin, 15000)


def test_serve_options__daily_limit_above_maximum_is_rejected(
    capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["practice-org", "serve", "--daily-api-limit",
                                   str(MAX_DAILY_API_LIMIT + 1)])

    assert exited.value.code == 2
    assert f"is above the maximum of {MAX_DAILY_API_LIMIT}" in capsys.readouterr().err


def test_serve_options__daily_limit_at_maximum_is_accepted() -> None:
    args = build_parser().parse_args(["practice-org", "serve", "--daily-api-limit",
                                      str(MAX_DAILY_API_LIMIT)])

    assert args.daily_api_limit == MAX_DAILY_API_LIMIT
