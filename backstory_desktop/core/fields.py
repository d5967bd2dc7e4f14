"""Check custom field API names the admin types before they reach Salesforce.

A custom field name is letters, digits and single underscores, starts with a
letter, does not end with an underscore, is at most 40 characters long, and
ends in ``__c``. A managed package's field carries its namespace in front:
``peopleai__Created_by_PeopleAI__c``.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FIELD_NAME_LENGTH = 40  # characters before "__c"
MAX_NAMESPACE_LENGTH = 15
CUSTOM_SUFFIX = "__c"


class InvalidFieldName(ValueError):
    """A field API name breaks Salesforce's naming rules; the message names the rule and the position."""


@dataclass(frozen=True)
class FieldName:
    """A valid custom field API name split into its parts."""

    namespace: str | None  # "peopleai", or None for a field of the org itself
    developer_name: str  # "Message_ID": without namespace and "__c"

    @property
    def api_name(self) -> str:
        prefix = f"{self.namespace}__" if self.namespace else ""
        return f"{prefix}{self.developer_name}{CUSTOM_SUFFIX}"


def validate_field_api_name(name: str, *, allow_namespace: bool = False) -> str:
    """Return the field's API name with ``__c``; ``Message_ID`` becomes ``Message_ID__c``.

    ``allow_namespace`` accepts a managed package's field such as
    ``peopleai__Created_by_PeopleAI__c``. Raises InvalidFieldName naming the fault.
    """
    return parse_field_api_name(name, allow_namespace=allow_namespace).api_name


def parse_field_api_name(name: str, *, allow_namespace: bool = False) -> FieldName:
    """Split a custom field API name into namespace and developer name, checking both."""
    text = name.strip()
    if not text:
        raise InvalidFieldName("The field API name is empty; enter a name such as Message_ID__c.")
    if "." in text:
        sobject, _dot, field_name = text.rpartition(".")
        example = field_name or "Message_ID__c"
        raise InvalidFieldName(
            f"{text!r} names the object {sobject!r} too; enter the field's name without the object, "
            f"such as {example}."
        )

    base = text[: -len(CUSTOM_SUFFIX)] if text.lower().endswith(CUSTOM_SUFFIX) else text
    namespace: str | None = None
    offset = 0
    if allow_namespace and "__" in base:
        namespace, developer_name = base.split("__", 1)
        _check_part(text, namespace, 0, "namespace prefix", MAX_NAMESPACE_LENGTH)
        offset = len(namespace) + 2
    else:
        developer_name = base
    _check_part(text, developer_name, offset, "field name", MAX_FIELD_NAME_LENGTH)
    return FieldName(namespace=namespace, developer_name=developer_name)


def _check_part(full: str, part: str, offset: int, part_label: str, max_length: int) -> None:
    """Check one part of the name; positions in messages count from 1 in ``full``."""
    if not part:
        raise InvalidFieldName(f"{full!r} has an empty {part_label}.")
    if not (part[0].isascii() and part[0].isalpha()):
        raise InvalidFieldName(
            f"{full!r} must start its {part_label} with a letter, not {part[0]!r} "
            f"(position {offset + 1})."
        )
    for index, char in enumerate(part):
        position = offset + index + 1
        if char == "_":
            if index + 1 < len(part) and part[index + 1] == "_":
                raise InvalidFieldName(
                    f"{full!r} has two underscores in a row at position {position}; "
                    "a field name may use single underscores only."
                )
            continue
        if not (char.isascii() and char.isalnum()):
            raise InvalidFieldName(
                f"{full!r} contains {char!r} at position {position}; only letters, digits "
                "and single underscores are allowed."
            )
    if part.endswith("_"):
        raise InvalidFieldName(
            f"{full!r} ends its {part_label} with an underscore (position {offset + len(part)})."
        )
    if len(part) > max_length:
        raise InvalidFieldName(
            f"{full!r} has a {part_label} of {len(part)} characters; the limit is {max_length}."
        )
