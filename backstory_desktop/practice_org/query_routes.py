"""SOQL over REST: ``query`` and ``queryAll``, paged 2,000 records at a time.

``query`` hides records in the recycle bin and archived Tasks and Events;
``queryAll`` returns them. The rest of a large result is kept in memory under a
query locator and served through ``nextRecordsUrl`` (``.../query/{locator}``).
Field-level security applies: a custom field the user cannot read is an
unknown column, as in Salesforce.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.errors import ApiError
from backstory_desktop.practice_org.http import json_response
from backstory_desktop.practice_org.schema import SObjectSpec
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.soql import (
    FieldSchema,
    QueryResult,
    SObjectSchema,
    SoqlError,
    SoqlQuery,
    parse_soql,
    run_query,
)

PAGE_SIZE = 2000
_MAX_OPEN_CURSORS = 100

SchemaSource = Callable[[str], SObjectSchema | None]
RowSource = Callable[[str], Iterable[Mapping[str, object]]]


class QueryCursors:
    """Results still to be fetched, by query locator; the oldest are dropped past a limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def open(self, records: list[dict[str, Any]]) -> str:
        locator = "01g" + secrets.token_hex(8)
        with self._lock:
            self._open[locator] = records
            while len(self._open) > _MAX_OPEN_CURSORS:
                self._open.popitem(last=False)
        return locator

    def get(self, locator: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._open.get(locator)


CURSORS = QueryCursors()


def query(session: ApiSession, request: Request) -> Response:
    return _first_page(session, request, include_hidden=False)


def query_all(session: ApiSession, request: Request) -> Response:
    return _first_page(session, request, include_hidden=True)


def query_more(session: ApiSession, request: Request, locator: str) -> Response:
    """Serve the next page of a result: ``locator`` is ``{cursor}-{offset}``."""
    cursor, _, offset_text = locator.rpartition("-")
    records = CURSORS.get(cursor)
    if records is None or not offset_text.isdigit():
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return json_response(_page(session, records, len(records), cursor, int(offset_text)))


def _first_page(session: ApiSession, request: Request, *, include_hidden: bool) -> Response:
    text = request.args.get("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided.")
    result = run_soql(session, text, include_hidden=include_hidden)
    if result.is_aggregate and result.total_size > PAGE_SIZE:
        # NOTE: Salesforce cannot page aggregate results; the error code here is a best guess.
        raise ApiError(400, "MALFORMED_QUERY", "Aggregate query does not support queryMore(), "
                       "use LIMIT to restrict the results to a single batch")
    cursor = CURSORS.open(result.records) if result.total_size > PAGE_SIZE else ""
    return json_response(_page(session, result.records, result.total_size, cursor, 0))


def _page(
    session: ApiSession, records: list[dict[str, Any]], total: int, cursor: str, offset: int
) -> dict[str, Any]:
    end = offset + PAGE_SIZE
    body: dict[str, Any] = {"totalSize": total, "done": end >= len(records),
                            "records": records[offset:end]}
    if end < len(records):
        body["nextRecordsUrl"] = f"{session.version_path}/query/{cursor}-{end}"
    return body


def run_soql(session: ApiSession, text: str, *, include_hidden: bool) -> QueryResult:
    """Parse and run a query over the org's records as the session user sees them."""
    try:
        parsed = parse_soql(text)
        schema = soql_schema_source(session)
        target = schema(parsed.sobject)
        rows = [] if target is None else live_rows(session, target.name, include_hidden)
        return run_query(
            parsed, rows, _lookup(session), schema,
            subquery_rows=lambda name: live_rows(session, name, False),
            api_version=session.version,
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


def live_rows(session: ApiSession, sobject: str, include_hidden: bool) -> list[dict[str, Any]]:
    """Return an sObject's records as rows; deleted and archived ones only if requested."""
    records = session.store.records_of(sobject)
    if not include_hidden:
        records = [r for r in records if not r.is_deleted and not r.is_archived]
    return [record.as_row() for record in records]


def _lookup(session: ApiSession) -> Callable[[str, str], Mapping[str, object] | None]:
    def lookup(sobject: str, record_id: str) -> Mapping[str, object] | None:
        record = session.store.get_record(record_id)
        if record is None or record.sobject.lower() != sobject.lower():
            return None
        return record.as_row()

    return lookup


def soql_schema_source(session: ApiSession) -> SchemaSource:
    """Return the SOQL engine's view of each sObject, after this user's field-level security."""
    cache: dict[str, SObjectSchema | None] = {}

    def schema(name: str) -> SObjectSchema | None:
        if name.lower() not in cache:
            spec = session.find_sobject(name)
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
