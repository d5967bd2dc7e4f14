"""Upsert by external ID, shared by the single-record and the sObject Collections calls.

Matching follows the key field's case rule: case-insensitive only for a Unique
field that treats "ABC" and "abc" as duplicates, case-sensitive otherwise.
Records in the recycle bin never match. A key that matches several records
writes nothing: the single call returns 300, a collection result fails with
DUPLICATE_EXTERNAL_ID. A non-unique key needs View All Data, as Salesforce's
REST API guide states for upserts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backstory_desktop.practice_org.errors import ApiError, not_writable
from backstory_desktop.practice_org.schema import FieldSpec
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.writes import create_record, update_record


@dataclass
class UpsertResult:
    """The outcome of one record's upsert: written, rejected, or matched several records."""

    record_id: str | None = None
    created: bool = False
    matches: list[str] = field(default_factory=list)
    error: ApiError | None = None

    @property
    def success(self) -> bool:
        return self.error is None and self.record_id is not None


def external_id_field(session: ApiSession, sobject: str, field_name: str) -> FieldSpec:
    """Return the key field of an upsert, or raise the error that rejects the whole call."""
    spec = session.sobject(sobject)
    key_field = spec.field(field_name)
    if key_field is None:
        raise ApiError(404, "NOT_FOUND",
                       f"Provided external ID field does not exist or is not accessible: "
                       f"{field_name}")
    # Standard objects also take any field whose describe marks it idLookup, such as
    # Contact.Email (SOAP API Developer Guide, "upsert()", Usage).
    if not (key_field.external_id or key_field.id_lookup or key_field.name == "Id"):
        raise ApiError(400, "INVALID_FIELD",
                       f"Field name provided, {key_field.name} is not an External ID or indexed "
                       f"field for {spec.name}", [key_field.name])
    return key_field


def key_in_body(body: dict[str, Any], field_name: str) -> str:
    """Return the external ID value stored under ``field_name`` in any letter case.

    Field names in REST bodies and CSV headers match case-insensitively, as they do
    when a record is created. A missing or empty value is returned as "".
    """
    value = body.get(field_name)
    if value is None:
        lowered = field_name.lower()
        value = next((item for name, item in body.items()
                      if isinstance(name, str) and name.lower() == lowered), None)
    return "" if value is None or value is False else str(value)


def matching_ids(session: ApiSession, sobject: str, key_field: FieldSpec, key: str) -> list[str]:
    """Return the ids of live records (archived ones included) whose key equals ``key``."""
    # NOTE: whether Salesforce matches archived Tasks on upsert is not documented. The
    # practice org matches them, so a Unique key never creates a second record for them.
    case_insensitive = key_field.unique and not key_field.case_sensitive
    found = session.store.find_by_field(
        sobject, key_field.name, key, case_sensitive=not case_insensitive
    )
    return [record.id for record in found if not record.is_deleted]


def upsert_by_external_id(
    session: ApiSession,
    sobject: str,
    field_name: str,
    key: str,
    body: dict[str, Any],
) -> UpsertResult:
    """Create or update the record whose ``field_name`` equals ``key``.

    Whole-call errors (unknown field, field not External ID) are raised; errors
    of this one record are returned in the result.
    """
    key_field = external_id_field(session, sobject, field_name)
    try:
        _check_key_access(session, sobject, key_field)
        return _upsert_one(session, sobject, key_field, key, body)
    except ApiError as error:
        return UpsertResult(error=error)


def _check_key_access(session: ApiSession, sobject: str, key_field: FieldSpec) -> None:
    if key_field.custom and not session.access.can_edit_field(sobject, key_field.name):
        raise not_writable(key_field.name, sobject)
    # NOTE: the View All Data rule is documented for External ID fields only, so the
    # practice org does not apply it to a standard idLookup field such as Email.
    needs_view_all = key_field.external_id and not key_field.unique
    # Modify All Data counts as well, because Salesforce enables View All Data with it, as
    # record access (permissions.ActivityAccess) already assumes.
    if needs_view_all and not session.activities.sees_everything:
        raise ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY",
                       f"Upserting by {key_field.name}, an External ID field that is not Unique, "
                       f"requires the View All Data permission")


def _upsert_one(
    session: ApiSession,
    sobject: str,
    key_field: FieldSpec,
    key: str,
    body: dict[str, Any],
) -> UpsertResult:
    if not key:
        raise ApiError(400, "MISSING_ARGUMENT", f"{key_field.name} not specified",
                       [key_field.name])
    matches = matching_ids(session, sobject, key_field, key)
    if len(matches) > 1:
        error = ApiError(300, "DUPLICATE_EXTERNAL_ID",
                         f"The value of external ID field {key_field.name} matched "
                         f"{len(matches)} records: {', '.join(matches)}", [key_field.name])
        return UpsertResult(matches=matches, error=error)

    fields = {k: v for k, v in body.items() if k.lower() != key_field.name.lower()}
    if not matches:
        record = create_record(session, sobject, {**fields, key_field.name: key})
        return UpsertResult(record_id=record.id, created=True)

    existing = session.store.get_record(matches[0])
    assert existing is not None
    update_record(session, existing, fields)
    return UpsertResult(record_id=existing.id, created=False)
