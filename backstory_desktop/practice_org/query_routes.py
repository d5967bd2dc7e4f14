"""SOQL over REST: ``query`` and ``queryAll``, paged 2,000 records at a time.

``query`` hides records in the recycle bin and archived Tasks and Events;
``queryAll`` returns them. Rows are read from the store in chunks, so a query
over a million Tasks holds only the matching ids. Those ids are kept in memory
under a query locator and each page of 2,000 is read and shaped when
``nextRecordsUrl`` (``.../query/{locator}``) requests it.
Field-level security applies: a custom field the user cannot read is an
unknown column, as in Salesforce. Record access applies too: Tasks and Events
the user may not read (``permissions.ActivityAccess``) are left out of every
result, counts included.

A query locator is valid only for the user who ran the query and only in the
form the org issued it, ``{cursor}-{offset}``: an unknown cursor, another
user's cursor or an offset that no ``nextRecordsUrl`` named gets
INVALID_QUERY_LOCATOR, as Salesforce answers locators it did not issue (SOAP API
Developer Guide, "QueryLocator",
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_query_querylocator.htm).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.errors import ApiError
from backstory_desktop.practice_org.http import json_response
from backstory_desktop.practice_org.permissions import ActivityAccess
from backstory_desktop.practice_org.query_cursors import QueryCursor
from backstory_desktop.practice_org.schema import SObjectSpec
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.soql import (
    FieldSchema,
    QueryResult,
    RecordShaper,
    SObjectSchema,
    SoqlError,
    SoqlQuery,
    parse_soql,
    run_query,
)
from backstory_desktop.practice_org.soql_ast import (
    And,
    Comparison,
    Condition,
    FieldRef,
    InList,
    Literal,
)
from backstory_desktop.practice_org.soql_values import LiteralChecker
from backstory_desktop.practice_org.store import Record, Store

PAGE_SIZE = 2000
# A key condition with more values than this is evaluated by a full scan.
_MAX_KEY_LOOKUPS = 1000

SchemaSource = Callable[[str], SObjectSchema | None]
RowSource = Callable[[str], Iterable[Mapping[str, object]]]




def query(session: ApiSession, request: Request) -> Response:
    return _first_page(session, request, include_hidden=False)


def query_all(session: ApiSession, request: Request) -> Response:
    return _first_page(session, request, include_hidden=True)


def query_more(session: ApiSession, request: Request, locator: str) -> Response:
    """Serve the next page of a result: ``locator`` is ``{cursor}-{offset}``."""
    cursor_id, _, offset_text = locator.rpartition("-")
    cursor = session.org.query_cursors.get(cursor_id)
    valid = (
        cursor is not None
        and cursor.user_id == session.user_id
        and offset_text.isdigit()
        and int(offset_text) in cursor.issued_offsets
    )
    if cursor is None or not valid:
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return json_response(_page(session, cursor, cursor_id, int(offset_text)))


def _first_page(session: ApiSession, request: Request, *, include_hidden: bool) -> Response:
    text = request.args.get("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided.")
    result = run_soql(session, text, include_hidden=include_hidden, defer_records=True)
    if result.is_aggregate and result.total_size > PAGE_SIZE:
        # NOTE: Salesforce cannot page aggregate results; the error code here is a best guess.
        raise ApiError(400, "MALFORMED_QUERY", "Aggregate query does not support queryMore(), "
                       "use LIMIT to restrict the results to a single batch")
    if result.record_ids is None or result.shape_record is None:
        return json_response({"totalSize": result.total_size, "done": True,
                              "records": result.records})
    cursor = QueryCursor(result.record_ids, result.shape_record, session.user_id)
    cursor_id = session.org.query_cursors.open(cursor) if result.total_size > PAGE_SIZE else ""
    return json_response(_page(session, cursor, cursor_id, 0))


def _page(session: ApiSession, cursor: QueryCursor, cursor_id: str, offset: int) -> dict[str, Any]:
    end = offset + PAGE_SIZE
    total = len(cursor.record_ids)
    body: dict[str, Any] = {"totalSize": total, "done": end >= total,
                            "records": shape_records(session.store, cursor.record_ids[offset:end],
                                                     cursor.shape_record)}
    if end < total:
        cursor.issued_offsets.add(end)
        body["nextRecordsUrl"] = f"{session.version_path}/query/{cursor_id}-{end}"
    return body


def shape_records(store: Store, record_ids: list[str],
                  shape_record: RecordShaper) -> list[dict[str, Any]]:
    """Read records by id and shape them; a record erased since the query ran is left out."""
    records = []
    for record_id in record_ids:
        record = store.get_record(record_id)
        if record is not None:
            records.append(shape_record(record.as_row()))
    return records


def run_soql(session: ApiSession, text: str, *, include_hidden: bool,
             defer_records: bool = False) -> QueryResult:
    """Parse and run a query over the org's records as the session user sees them.

    With ``defer_records`` a record query returns ids and a shaping function (see
    ``soql.run_query``); COUNT() and aggregate queries return their rows either way.
    """
    try:
        parsed = parse_soql(text)
        schema = soql_schema_source(session)
        target = schema(parsed.sobject)
        rows: Iterable[Mapping[str, object]] = ()
        if target is not None:
            keyed = _rows_by_indexed_key(session, parsed, target.name, include_hidden)
            rows = keyed if keyed is not None else scan_rows(
                session.store, target.name, include_hidden, session.activities)
        return run_query(
            parsed, rows, _lookup(session), schema,
            subquery_rows=lambda name: scan_rows(session.store, name, False,
                                                 session.activities),
            api_version=session.version, defer_records=defer_records,
        )
    except SoqlError as error:
        raise ApiError(400, error.error_code, error.message) from None


def run_parsed(
    parsed: SoqlQuery, rows: list[dict[str, Any]], schema: SchemaSource, version: str
) -> QueryResult:
    """Run a parsed query over given rows, with no parent lookups (for the Tooling API)."""
    try:
        return run_query(parsed, rows, lambda _name, _id: None, schema, api_version=version)
    except SoqlError as error:
        raise ApiError(400, error.error_code, error.message) from None


def _rows_by_indexed_key(session: ApiSession, parsed: SoqlQuery, sobject: str,
                         include_hidden: bool) -> list[dict[str, Any]] | None:
    """Read only the rows a key condition can match, through the key field's index.

    Applies when WHERE is, or is an AND of, ``Field = 'x'`` or ``Field IN ('x', ...)``
    on an External ID or Unique custom field, so that a key lookup among a million
    Tasks reads a handful of rows. The whole WHERE clause still runs over these
    rows. Returns None when a full scan is needed.
    """
    spec = session.find_sobject(sobject)
    if spec is None or parsed.where is None:
        return None
    conjuncts = parsed.where.items if isinstance(parsed.where, And) else (parsed.where,)
    for condition in conjuncts:
        lookup = _key_lookup(parsed, spec, condition)
        if lookup is None:
            continue
        field_name, values, case_sensitive = lookup
        found: dict[str, Record] = {}
        for value in values:
            for record in session.store.find_by_field(sobject, field_name, value,
                                                      case_sensitive=case_sensitive):
                found[record.id] = record
        return [
            found[record_id].as_row() for record_id in sorted(found)
            if (include_hidden or not (found[record_id].is_deleted
                                       or found[record_id].is_archived))
            and session.activities.can_read(found[record_id])
        ]
    return None


def _key_lookup(parsed: SoqlQuery, spec: SObjectSpec,
                condition: Condition) -> tuple[str, list[str], bool] | None:
    """Return (field, values, case-sensitive) when ``condition`` can use a key field's index."""
    literals: tuple[Literal, ...]
    if isinstance(condition, Comparison) and condition.operator == "=":
        left, literals = condition.left, (condition.value,)
    elif isinstance(condition, InList) and not condition.negated:
        left, literals = condition.left, condition.values
    else:
        return None
    if not isinstance(left, FieldRef) or len(left.parts) != 1 or len(literals) > _MAX_KEY_LOOKUPS:
        return None
    field = next((item for item in spec.fields if item.name.lower() == left.parts[0].lower()),
                 None)
    if field is None or not field.custom or not (field.external_id or field.unique):
        return None
    if any(literal.kind != "string" for literal in literals):
        return None
    case_sensitive = field.unique and field.case_sensitive
    checker = LiteralChecker(parsed.text)
    try:
        values = [checker.decode(literal) for literal in literals]
    except SoqlError:
        return None
    # The index folds ASCII letters only (SQLite's lower()), so a non-ASCII key that
    # SOQL compares without case goes through the full scan instead.
    if not case_sensitive and not all(value.isascii() for value in values):
        return None
    return field.name, values, case_sensitive


def scan_rows(store: Store, sobject: str, include_hidden: bool,
              activities: ActivityAccess | None = None) -> Iterator[dict[str, Any]]:
    """Yield an sObject's records as rows in id order, deleted and archived ones only if asked.

    With ``activities``, Tasks and Events the user may not read are left out.
    """
    for record in store.iter_records(sobject, include_hidden=include_hidden):
        if activities is None or activities.can_read(record):
            yield record.as_row()


def _lookup(session: ApiSession) -> Callable[[str, str], Mapping[str, object] | None]:
    def lookup(sobject: str, record_id: str) -> Mapping[str, object] | None:
        record = session.store.get_record(record_id)
        if record is None or record.sobject.lower() != sobject.lower():
            return None
        if not session.activities.can_read(record):
            return None
        return record.as_row()

    return lookup


def soql_schema_source(session: ApiSession) -> SchemaSource:
    """Return the SOQL engine's view of each sObject, after this user's field-level security.

    A permission object the user may not read (``ApiSession.can_read_object``) is unknown.
    """
    cache: dict[str, SObjectSchema | None] = {}

    def schema(name: str) -> SObjectSchema | None:
        if name.lower() not in cache:
            # NOTE: the object reference names the permission a read of a permission object
            # needs but not the error. The practice org returns INVALID_TYPE, as for an
            # unknown object, which is what Salesforce returns for an object the user cannot
            # access. That error is not confirmed for these objects.
            spec = session.find_sobject(name) if session.can_read_object(name) else None
            cache[name.lower()] = None if spec is None else to_soql_schema(spec)
        return cache[name.lower()]

    return schema


def to_soql_schema(spec: SObjectSpec) -> SObjectSchema:
    fields = tuple(
        FieldSchema(
            name=field.name,
            type=field.type,
            reference_to=field.reference_to,
            relationship_name=field.relationship_name,
            # SOQL compares a text field case-sensitively only when it is Unique and
            # case-sensitive; every other text comparison ignores case.
            case_sensitive=field.unique and field.case_sensitive,
        )
        for field in spec.fields
    )
    return SObjectSchema(spec.name, fields, spec.key_prefix)
