"""A custom field the user may read but not edit: describe marks it read-only, and writes are rejected."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from backstory_desktop.practice_org import PracticeOrg
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"


@pytest.fixture(scope="module")
def read_only_user(default_org: PracticeOrg, admin: Login) -> Login:
    """Log in the integration user after granting it Read without Edit on Message_ID__c."""
    user_id = admin.sf.query(
        f"SELECT Id FROM User WHERE Username = '{default_org.integration_username}'"
    )["records"][0]["Id"]
    permission_set = admin.sf.PermissionSet.create({"Name": "ReadOnlyKey", "Label": "Read Only Key"})
    for sobject in ("Task", "Event"):
        admin.sf.FieldPermissions.create({
            "ParentId": permission_set["id"], "SobjectType": sobject,
            "Field": f"{sobject}.{FIELD}", "PermissionsRead": True, "PermissionsEdit": False,
        })
    admin.sf.PermissionSetAssignment.create(
        {"AssigneeId": user_id, "PermissionSetId": permission_set["id"]}
    )
    return login(default_org, default_org.integration_username)


def described_field(user: Login, sobject: str, name: str) -> dict[str, Any]:
    fields = getattr(user.sf, sobject).describe()["fields"]
    return next(field for field in fields if field["name"] == name)


@pytest.mark.parametrize("sobject", ["Task", "Event"])
def test_describe__read_only_fls_field_is_not_createable(
    read_only_user: Login, sobject: str
) -> None:
    field = described_field(read_only_user, sobject, FIELD)

    assert field["createable"] is False
    assert field["updateable"] is False


def test_describe__read_only_fls_keeps_other_properties(read_only_user: Login) -> None:
    field = described_field(read_only_user, "Task", FIELD)

    assert field["externalId"] is True
    assert field["unique"] is True
    assert field["caseSensitive"] is True


def test_describe__read_edit_fls_field_stays_createable(default_org: PracticeOrg) -> None:
    outreach = login(default_org, "outreach@practice.backstory.example")

    field = described_field(outreach, "Task", FIELD)

    assert field["createable"] is True
    assert field["updateable"] is True


def test_describe__standard_fields_unchanged_for_read_only_user(read_only_user: Login) -> None:
    subject = described_field(read_only_user, "Task", "Subject")

    assert subject["createable"] is True
    assert subject["updateable"] is True


def test_create__read_only_fls_field_is_rejected(read_only_user: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        read_only_user.sf.Task.create({"Subject": "Email: hello", FIELD: "<ro1@example.com>"})

    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert raised.value.content[0]["fields"] == [FIELD]


def test_upsert__read_only_fls_key_field_is_rejected(read_only_user: Login) -> None:
    response = read_only_user.http.patch(
        read_only_user.url(f"sobjects/Task/{FIELD}/<ro2@example.com>"),
        headers=read_only_user.headers(), json={"Subject": "Email: hello"},
    )

    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
