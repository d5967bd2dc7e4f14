"""sObject Collections: create, update, upsert and delete up to 200 records a call.

Results come back in request order, one per record, with HTTP 200 even when
records fail; each error carries ``statusCode`` (not ``errorCode``). With
``allOrNone`` one failure rolls every record back and the others report
ALL_OR_NONE_OPERATION_ROLLED_BACK (REST API Developer Guide, "sObject Collections"
and "Upsert Multiple Records Using an External ID").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.errors import ApiError
from backstory_desktop.practice_org.http import all_or_none_flag, json_object, json_response
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.upsert import (
    UpsertResult,
    external_id_field,
    key_in_body,
    upsert_by_external_id,
)
from backstory_desktop.practice_org.writes import (
    create_record,
    delete_record,
    live_record,
    update_record,
)

MAX_RECORDS = 200

RecordWrite = Callable[[int, dict[str, Any]], UpsertResult]


class _RollBack(Exception):
    """Raised inside the request's savepoint to undo an allOrNone call."""


def upsert_collection(session: ApiSession, request: Request, sobject: str, field: str) -> Response:
    """``PATCH composite/sobjects/{sobject}/{field}``: upsert each record by the key in its body."""
    spec = session.sobject(sobject)
    body = json_object(request)
    records = _records(body)
    key_field = external_id_field(session, spec.name, field)

    keys = [key_in_body(record, key_field.name) for record in records]
    repeated = _repeated_keys(keys, case_sensitive=key_field.case_sensitive or not key_field.unique)

    def write(index: int, record: dict[str, Any]) -> UpsertResult:
        _check_type(record, spec.name)
        if _fold(keys[index], key_field.case_sensitive or not key_field.unique) in repeated:
            # Every record that repeats a key of the same request fails, and none is written,
            # as the SOAP upsert() reference states. No Salesforce page shows the code and
            # message for sObject Collections, so they follow what data-sync tools parse
            # (for example Castled's Salesforce error parser).
            raise ApiError(400, "DUPLICATE_VALUE",
                           f"Duplicate external id specified: {keys[index]}", [key_field.name])
        result = upsert_by_external_id(session, spec.name, key_field.name, keys[index], record)
        if result.error is not None:
            raise result.error
        return result

    return _run_collection(session, records, all_or_none_flag(body), write, with_created=True)


def create_collection(session: ApiSession, request: Request) -> Response:
    """``POST composite/sobjects``: create each record of the body's ``records``."""
    body = json_object(request)

    def write(index: int, record: dict[str, Any]) -> UpsertResult:
        sobject = _record_type(record)
        if "id" in {key.lower() for key in record}:
            raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        created = create_record(session, sobject, record)
        return UpsertResult(record_id=created.id, created=True)

    records = _records(body)
    return _run_collection(session, records, all_or_none_flag(body), write)


def update_collection(session: ApiSession, request: Request) -> Response:
    """``PATCH composite/sobjects``: update each record named by its ``Id``."""
    body = json_object(request)

    def write(index: int, record: dict[str, Any]) -> UpsertResult:
        sobject = _record_type(record)
        fields = {k: v for k, v in record.items() if k.lower() != "id"}
        record_id = str(record.get("Id") or record.get("id") or "")
        if not record_id:
            raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        update_record(session, live_record(session, sobject, record_id), fields)
        return UpsertResult(record_id=record_id)

    records = _records(body)
    return _run_collection(session, records, all_or_none_flag(body), write)


def delete_collection(session: ApiSession, request: Request) -> Response:
    """``DELETE composite/sobjects?ids=...&allOrNone=...``: delete each record by id."""
    ids = [item for item in request.args.get("ids", "").split(",") if item]
    if len(ids) > MAX_RECORDS:
        raise _too_many()

    def write(index: int, record: dict[str, Any]) -> UpsertResult:
        found = session.store.get_record(str(record["Id"]))
        if found is None or found.is_deleted:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        delete_record(session, live_record(session, found.sobject, found.id))
        return UpsertResult(record_id=found.id)

    all_or_none = request.args.get("allOrNone", "false").lower() == "true"
    return _run_collection(session, [{"Id": item} for item in ids], all_or_none, write)


def _run_collection(
    session: ApiSession,
    records: list[dict[str, Any]],
    all_or_none: bool,
    write: RecordWrite,
    *,
    with_created: bool = False,
) -> Response:
    """Write each record in its own savepoint and collect one result per record."""
    outcomes: list[UpsertResult] = []
    try:
        with session.store.transaction():
            for index, record in enumerate(records):
                outcomes.append(_write_one(session, index, record, write))
            if all_or_none and any(outcome.error for outcome in outcomes):
                raise _RollBack
    except _RollBack:
        outcomes = [_rolled_back(outcome) for outcome in outcomes]
    return json_response([_result_body(outcome, with_created) for outcome in outcomes])


def _write_one(
    session: ApiSession, index: int, record: dict[str, Any], write: RecordWrite
) -> UpsertResult:
    try:
        with session.store.transaction():
            session.org.faults.inject_row_lock(record)
            return write(index, record)
    except ApiError as error:
        return UpsertResult(error=error)


def _rolled_back(outcome: UpsertResult) -> UpsertResult:
    if outcome.error is not None:
        return UpsertResult(error=outcome.error)
    return UpsertResult(error=ApiError(
        400, "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using "
        "AllOrNone header",
    ))


def _result_body(outcome: UpsertResult, with_created: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": outcome.record_id if outcome.error is None else None,
                            "success": outcome.error is None}
    body["errors"] = [] if outcome.error is None else [outcome.error.collection_error()]
    if with_created:
        body["created"] = outcome.created if outcome.error is None else False
    return body


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must hold a records array")
    if len(records) > MAX_RECORDS:
        raise _too_many()
    return records


def _too_many() -> ApiError:
    return ApiError(400, "EXCEEDED_ID_LIMIT",
                    f"record limit reached. cannot submit more than {MAX_RECORDS} records "
                    f"into this call")


def _record_type(record: dict[str, Any]) -> str:
    attributes = record.get("attributes")
    sobject = attributes.get("type") if isinstance(attributes, dict) else None
    if not sobject:
        raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
    return str(sobject)


def _check_type(record: dict[str, Any], sobject: str) -> None:
    attributes = record.get("attributes")
    declared = attributes.get("type") if isinstance(attributes, dict) else None
    if declared is not None and str(declared).lower() != sobject.lower():
        raise ApiError(400, "INVALID_TYPE",
                       f"The record type {declared} does not match the sObject {sobject} "
                       f"named in the URL")


def _fold(key: str, case_sensitive: bool) -> str:
    # The same rule as the Bulk route: Salesforce documents only that "ABC123" matches "abc123".
    return key if case_sensitive else key.lower()


def _repeated_keys(keys: list[str], *, case_sensitive: bool) -> set[str]:
    counts = Counter(_fold(key, case_sensitive) for key in keys if key)
    return {key for key, count in counts.items() if count > 1}
