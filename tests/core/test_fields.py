"""Field API names: what Salesforce accepts for a custom field, and where a bad one fails."""

from __future__ import annotations

import pytest

from backstory_desktop.core.fields import (
    InvalidFieldName,
    parse_field_api_name,
    validate_field_api_name,
)


@pytest.mark.parametrize(
    ("typed", "api_name"),
    [
        ("Message_ID__c", "Message_ID__c"),
        ("Message_ID", "Message_ID__c"),
        ("  Message_ID  ", "Message_ID__c"),
        ("Message_ID__C", "Message_ID__c"),
        ("M", "M__c"),
        ("Msg2", "Msg2__c"),
        ("A" * 40, "A" * 40 + "__c"),
    ],
)
def test_field_name__valid_names_get_the_custom_suffix(typed: str, api_name: str) -> None:
    assert validate_field_api_name(typed) == api_name


@pytest.mark.parametrize(
    ("typed", "fault"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1Message_ID", "start its field name with a letter, not '1' (position 1)"),
        ("_Message_ID", "start its field name with a letter, not '_'"),
        ("Message__ID", "two underscores in a row at position 8"),
        ("Message_ID_", "ends its field name with an underscore (position 11)"),
        ("Message_ID___c", "ends its field name with an underscore"),
        ("Message-ID", "contains '-' at position 8"),
        ("Message ID", "contains ' ' at position 8"),
        ("Méssage_ID", "contains 'é' at position 2"),
        ("A" * 41, "41 characters; the limit is 40"),
        ("Message_ID__r", "two underscores in a row at position 11"),
    ],
)
def test_field_name__invalid_names_say_what_and_where(typed: str, fault: str) -> None:
    with pytest.raises(InvalidFieldName) as raised:
        validate_field_api_name(typed)
    assert fault in str(raised.value)


def test_field_name__namespace_rejected_for_the_key_field() -> None:
    with pytest.raises(InvalidFieldName) as raised:
        validate_field_api_name("peopleai__Created_by_PeopleAI__c")
    assert "two underscores in a row at position 9" in str(raised.value)


def test_field_name__namespace_allowed_for_the_flag_field() -> None:
    name = "peopleai__Created_by_PeopleAI__c"
    assert validate_field_api_name(name, allow_namespace=True) == name


def test_field_name__namespace_and_developer_name_split() -> None:
    parsed = parse_field_api_name("peopleai__Created_by_PeopleAI__c", allow_namespace=True)
    assert parsed.namespace == "peopleai"
    assert parsed.developer_name == "Created_by_PeopleAI"


def test_field_name__unmanaged_field_has_no_namespace() -> None:
    parsed = parse_field_api_name("Message_ID__c", allow_namespace=True)
    assert parsed.namespace is None
    assert parsed.developer_name == "Message_ID"


def test_field_name__bad_namespace_names_the_namespace() -> None:
    with pytest.raises(InvalidFieldName) as raised:
        validate_field_api_name("9ai__Flag__c", allow_namespace=True)
    assert "namespace prefix" in str(raised.value)


def test_field_name__error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_field_api_name("Bad Name")


@pytest.mark.parametrize(
    ("typed", "advice"),
    [
        ("Task.Message_ID__c", "names the object 'Task' too; enter the field's name without the object, "
                               "such as Message_ID__c."),
        ("Activity.Message_ID", "such as Message_ID."),
        ("Task.", "such as Message_ID__c."),
    ],
)
def test_field_name__object_prefix_asks_for_the_field_alone(typed: str, advice: str) -> None:
    with pytest.raises(InvalidFieldName) as error:
        validate_field_api_name(typed)

    assert advice in str(error.value)
