"""What the SOQL engine needs to know about an sObject: its fields and relationships.

The engine reads schemas through the `SObjectLike` and `FieldLike` protocols, so
the practice org can pass its own describe metadata. `SObjectSchema` and
`FieldSchema` are small ready-made implementations. The caller filters fields by
field-level security first, so that a hidden field is unknown to SOQL
(INVALID_FIELD), as it is in Salesforce.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Protocol

ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})


class FieldLike(Protocol):
    """A field as describe reports it (DescribeFieldResult names)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def reference_to(self) -> tuple[str, ...]: ...
    @property
    def relationship_name(self) -> str | None: ...
    @property
    def case_sensitive(self) -> bool: ...


class SObjectLike(Protocol):
    """An sObject: its declared name, Id prefix and fields by name or relationship."""

    @property
    def name(self) -> str: ...
    @property
    def key_prefix(self) -> str | None: ...
    def field(self, name: str) -> FieldLike | None: ...
    def relationship(self, name: str) -> FieldLike | None: ...


def field_category(field: FieldLike) -> str:
    """Return the comparison family of a field: string, id, boolean, number, date, datetime.

    Every type not listed here (textarea, email, picklist, url, ...) compares as text.
    """
    if field.type in ID_TYPES:
        return "id"
    if field.type in NUMBER_TYPES:
        return "number"
    if field.type in ("boolean", "date", "datetime"):
        return field.type
    return "string"


@dataclass(frozen=True)
class FieldSchema:
    """One field, as `FieldLike` describes it.

    ``type`` is the DescribeFieldResult type (id, reference, string, picklist,
    boolean, int, double, date, datetime, ...). A reference field names its parent
    objects in ``reference_to`` (several for a polymorphic field such as WhoId) and
    its relationship in ``relationship_name`` (``Owner`` for ``OwnerId``).
    ``case_sensitive`` is true only for a Unique, case-sensitive text field: SOQL
    compares such a field case-sensitively and every other text field case-insensitively
    (SOQL and SOSL Reference, "Comparison Operators").
    """

    name: str
    type: str = "string"
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    case_sensitive: bool = False


@dataclass
class SObjectSchema:
    """The fields of one sObject visible to the session user.

    ``name`` is the API name in its declared case (``Task``). ``key_prefix`` is the
    3-character Id prefix (``00T``) that tells which object a polymorphic reference
    points at.
    """

    name: str
    fields: tuple[FieldSchema, ...]
    key_prefix: str | None = None
    _by_name: dict[str, FieldSchema] = dataclass_field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldSchema] = dataclass_field(init=False, repr=False,
                                                               compare=False)

    def __post_init__(self) -> None:
        self._by_name = {item.name.lower(): item for item in self.fields}
        self._by_relationship = {
            item.relationship_name.lower(): item
            for item in self.fields
            if item.relationship_name and item.reference_to
        }

    def field(self, name: str) -> FieldSchema | None:
        """Return the field called ``name`` in any letter case, or None."""
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> FieldSchema | None:
        """Return the reference field whose relationship is called ``name``, or None."""
        return self._by_relationship.get(name.lower())
