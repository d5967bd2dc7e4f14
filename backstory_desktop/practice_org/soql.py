"""The practice org's SOQL engine: parse a query, run it over plain rows.

Public API (everything else in the soql_* modules is internal)::

    parse_soql(text: str) -> SoqlQuery
        Parse one SELECT statement. Raises SoqlError("MALFORMED_QUERY", ...).
        ``query.sobject`` is the object name as written; ask the schema for its
        declared name before choosing which rows to pass to run_query.

    run_query(query: SoqlQuery | str,
              rows: Iterable[Mapping[str, object]],
              lookup: Callable[[str, str], Mapping[str, object] | None],
              schema: Callable[[str], SObjectSchema | None],
              *,
              subquery_rows: Callable[[str], Iterable[Mapping[str, object]]] | None = None,
              api_version: str = "64.0",
              now: datetime | None = None) -> QueryResult

        rows           the records of ``query.sobject`` that the caller makes visible:
                       query hides deleted and archived rows, queryAll does not. Keys are
                       field API names, matched case-insensitively.
        lookup         (object name, Id) -> the parent record, or None, for relationship
                       fields such as Owner.Name or PermissionSet.IsOwnedByProfile.
        schema         object name in any case -> SObjectSchema after field-level
                       security, or None when the object does not exist (INVALID_TYPE).
        subquery_rows  object name -> rows, for semi-joins such as
                       ``ParentId IN (SELECT PermissionSetId FROM PermissionSetAssignment ...)``.
        now            the moment TODAY, YESTERDAY, LAST_N_DAYS:n refer to (UTC days).

    run_query(..., defer_records=True) returns a record query's matches as
        ``record_ids`` (in result order, after LIMIT and OFFSET) and a
        ``shape_record`` function instead of ``records``, so that a caller paging a
        large result can shape 2,000 rows at a time. COUNT() and aggregate queries
        ignore the flag.

    QueryResult.total_size, .records, .is_aggregate
        records are shaped as Salesforce's REST query resource shows them:
        ``{"attributes": {"type": "Task", "url": "/services/data/v64.0/sobjects/Task/00T..."},
        "Id": ..., "Owner": {"attributes": {...}, "Name": ...}}``, a missing parent as None,
        field names in the schema's case. COUNT() gives total_size and no records.
        Aggregate rows have type AggregateResult and unaliased aggregates are named
        expr0, expr1, ...; Salesforce cannot page them (is_aggregate tells the caller).

    SoqlError(error_code, message): error_code is MALFORMED_QUERY, INVALID_FIELD,
        INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR (an invalid Id literal) or
        NUMBER_OUTSIDE_VALID_RANGE (OFFSET above 2,000); message has Salesforce's shape.

    SObjectSchema(name, fields, key_prefix) and FieldSchema(name, type, reference_to,
        relationship_name, case_sensitive) describe the objects. Any object with the
        same attributes and field()/relationship() methods works too (SObjectLike,
        FieldLike). Set case_sensitive only for a Unique, case-sensitive text field.

Supported: field lists with parent relationship paths, COUNT() and COUNT(field)
with aliases, WHERE with AND/OR/NOT and parentheses, = != <> < <= > >=, IN, NOT IN,
LIKE, semi-joins and anti-joins on Id fields, null, true/false, numbers, quoted
strings with SOQL escapes, dates, datetimes, TODAY, YESTERDAY, TOMORROW,
LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n, GROUP BY with HAVING, ORDER BY with
ASC/DESC and NULLS FIRST/LAST, LIMIT and OFFSET. Anything else is rejected with
MALFORMED_QUERY rather than answered wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backstory_desktop.practice_org.soql_ast import (
    INVALID_FIELD,
    INVALID_QUERY_FILTER_OPERATOR,
    INVALID_TYPE,
    MALFORMED_QUERY,
    NUMBER_OUTSIDE_VALID_RANGE,
    Aggregate,
    CountAll,
    FieldRef,
    SoqlError,
    SoqlQuery,
)
from backstory_desktop.practice_org.soql_compile import (
    CompiledQuery,
    Group,
    Hop,
    Lookup,
    ParentResolver,
    Row,
    RowSource,
    SchemaSource,
    SortKey,
    compile_query,
    count_getter,
    read_field,
)
from backstory_desktop.practice_org.soql_parser import parse_soql
from backstory_desktop.practice_org.soql_schema import (
    FieldLike,
    FieldSchema,
    SObjectLike,
    SObjectSchema,
)
from backstory_desktop.practice_org.soql_values import normalizer_for, output_value

__all__ = [
    "INVALID_FIELD",
    "INVALID_QUERY_FILTER_OPERATOR",
    "INVALID_TYPE",
    "MALFORMED_QUERY",
    "NUMBER_OUTSIDE_VALID_RANGE",
    "Aggregate",
    "CountAll",
    "FieldLike",
    "FieldRef",
    "FieldSchema",
    "QueryResult",
    "SObjectLike",
    "SObjectSchema",
    "SoqlError",
    "SoqlQuery",
    "parse_soql",
    "run_query",
]

DEFAULT_API_VERSION = "64.0"


RecordShaper = Callable[[Mapping[str, object]], dict[str, object]]


@dataclass
class QueryResult:
    """The complete result of a query, before the caller splits it into pages of 2,000.

    A deferred result has ``record_ids`` and ``shape_record`` in place of ``records``.
    """

    total_size: int
    records: list[dict[str, object]] = field(default_factory=list)
    is_aggregate: bool = False
    record_ids: list[str] | None = None
    shape_record: RecordShaper | None = None


def run_query(
    query: SoqlQuery | str,
    rows: Iterable[Mapping[str, object]],
    lookup: Lookup,
    schema: SchemaSource,
    *,
    subquery_rows: RowSource | None = None,
    api_version: str = DEFAULT_API_VERSION,
    now: datetime | None = None,
    defer_records: bool = False,
) -> QueryResult:
    """Run ``query`` over ``rows`` and shape the result as Salesforce's REST API does.

    ``rows`` is read once, so it may be a generator over a large table.
    """
    parsed = parse_soql(query) if isinstance(query, str) else query
    moment = now if now is not None else datetime.now(UTC)
    compiled = compile_query(parsed, schema, lookup, now=moment, subquery_rows=subquery_rows)

    if parsed.is_count_only:
        matched = sum(1 for row in rows if compiled.where is None or compiled.where(row))
        return QueryResult(total_size=len(range(matched)[_page_slice(parsed)]))
    if parsed.is_aggregate:
        return _run_aggregate(compiled, rows)
    if defer_records:
        return _run_deferred(compiled, rows, api_version)

    selected = [row for row in rows if compiled.where is None or compiled.where(row)]
    _sort(selected, compiled.sort_keys)
    page = selected[_page_slice(parsed)]
    shape = _build_shape(compiled)
    records = [
        _shape_record(row, compiled.root, compiled.root.name, shape, compiled.resolver, api_version)
        for row in page
    ]
    return QueryResult(total_size=len(records), records=records)


def _run_deferred(compiled: CompiledQuery, rows: Iterable[Row], api_version: str) -> QueryResult:
    """Find the matching rows' ids in result order, keeping only their sort values in memory."""
    where = compiled.where
    getters = [key.getter for key in compiled.sort_keys]
    matches = [
        (read_field(row, "Id"), tuple([getter(row) for getter in getters]))
        for row in rows
        if where is None or where(row)
    ]
    by_position = [
        SortKey(_sort_value_getter(index), key.normalize, key.descending, key.nulls_last)
        for index, key in enumerate(compiled.sort_keys)
    ]
    _sort(matches, by_position)
    page = matches[_page_slice(compiled.query)]
    shape = _build_shape(compiled)

    def shape_record(row: Mapping[str, object]) -> dict[str, object]:
        return _shape_record(row, compiled.root, compiled.root.name, shape, compiled.resolver,
                             api_version)

    record_ids = [str(record_id) for record_id, _values in page]
    return QueryResult(total_size=len(record_ids), record_ids=record_ids,
                       shape_record=shape_record)


def _sort_value_getter(index: int) -> Callable[[tuple[object, tuple[object, ...]]], object]:
    def value(match: tuple[object, tuple[object, ...]]) -> object:
        return match[1][index]

    return value


def _page_slice(query: SoqlQuery) -> slice:
    start = query.offset or 0
    stop = None if query.limit is None else start + query.limit
    return slice(start, stop)


def _sort(items: list[Any], keys: list[SortKey]) -> None:
    """Sort in place by several keys, with nulls first unless NULLS LAST is given."""
    for key in reversed(keys):
        null_rank = 1 if key.descending != key.nulls_last else 0

        def sort_key(item: object, key: SortKey = key, null_rank: int = null_rank) -> tuple[
                int, object]:
            value = key.normalize(key.getter(item))
            if value is None:
                return (null_rank, None)
            return (1 - null_rank, value)

        items.sort(key=sort_key, reverse=key.descending)


# Record shaping


@dataclass
class _FieldEntry:
    name: str


@dataclass
class _ParentEntry:
    key: str
    hop: Hop
    shape: _Shape


@dataclass
class _Shape:
    entries: list[_FieldEntry | _ParentEntry] = field(default_factory=list)

    def parent(self, hop: Hop) -> _Shape:
        key = hop.reference.relationship_name or hop.reference.name
        for entry in self.entries:
            if isinstance(entry, _ParentEntry) and entry.key.lower() == key.lower():
                return entry.shape
        child = _Shape()
        self.entries.append(_ParentEntry(key, hop, child))
        return child

    def add_field(self, name: str) -> None:
        if not any(isinstance(entry, _FieldEntry) and entry.name.lower() == name.lower()
                   for entry in self.entries):
            self.entries.append(_FieldEntry(name))


def _build_shape(compiled: CompiledQuery) -> _Shape:
    """Nest the selected paths by relationship: Owner.Name and Owner.Email share one Owner."""
    root = _Shape()
    for resolved in compiled.selected:
        node = root
        for hop in resolved.hops:
            node = node.parent(hop)
        node.add_field(resolved.field.name)
    return root


def _shape_record(row: Row, sobject: SObjectLike, type_name: str, shape: _Shape,
                  resolver: ParentResolver, api_version: str) -> dict[str, object]:
    record_id = read_field(row, "Id")
    url = f"/services/data/v{api_version}/sobjects/{sobject.name}/{record_id}"
    record: dict[str, object] = {"attributes": {"type": type_name, "url": url}}
    for entry in shape.entries:
        if isinstance(entry, _FieldEntry):
            declared = sobject.field(entry.name)
            # A polymorphic parent (a Contact or a Lead behind WhoId) may lack a field
            # that another of its object types has, and the record then shows null.
            record[entry.name] = (None if declared is None
                                  else output_value(declared, read_field(row, declared.name)))
            continue
        found = resolver.parent(entry.hop.targets, read_field(row, entry.hop.reference.name))
        if found is None:
            record[entry.key] = None
            continue
        target, parent_row = found
        # Salesforce types a polymorphic parent as "Name", the object behind such lookups.
        parent_type = "Name" if entry.hop.polymorphic else target.name
        record[entry.key] = _shape_record(parent_row, target, parent_type, entry.shape, resolver,
                                          api_version)
    return record


# Aggregate queries


def _run_aggregate(compiled: CompiledQuery, rows: Iterable[Row]) -> QueryResult:
    groups = _group_rows(compiled, rows)
    _sort(groups, compiled.sort_keys)
    page = groups[_page_slice(compiled.query)]
    records = [_aggregate_record(compiled, group) for group in page]
    return QueryResult(total_size=len(records), records=records, is_aggregate=True)


def _group_rows(compiled: CompiledQuery, rows: Iterable[Row]) -> list[Group]:
    """Split matching rows by the GROUP BY key, count each COUNT(field) and apply HAVING.

    Without GROUP BY all rows form one group. While rows are read, each group is a
    list of its first values and its counts, not its rows, so that grouping a
    million Tasks keeps one short list per distinct key.
    """
    where = compiled.where
    counters = [
        (resolved.getter, normalizer_for(resolved.field))
        for resolved in compiled.counted.values()
    ]
    getters = [item.getter for item in compiled.group_fields]
    pairs = list(zip(getters, compiled.group_normalizers, strict=True))
    # Each entry is [group values, count 1, count 2, ...] in the order of compiled.counted.
    tallies: dict[tuple[object, ...], list[Any]] = {}
    if not compiled.group_fields:
        tallies[()] = [(), *([0] * len(counters))]
    for row in rows:
        if where is not None and not where(row):
            continue
        values = tuple([getter(row) for getter in getters])
        key = tuple([normalize(value) for (_, normalize), value in zip(pairs, values, strict=True)])
        tally = tallies.get(key)
        if tally is None:
            # NOTE: a case-insensitive text field groups 'ABC' and 'abc' together, as
            # Salesforce compares such fields. The first value seen names the group.
            tally = [values, *([0] * len(counters))]
            tallies[key] = tally
        for position, (getter, normalize) in enumerate(counters, start=1):
            if normalize(getter(row)) is not None:
                tally[position] += 1

    names = list(compiled.counted)
    groups = []
    for tally in tallies.values():
        group = Group(values=tally[0], aggregates=dict(zip(names, tally[1:], strict=True)))
        if compiled.having is None or compiled.having(group):
            groups.append(group)
    return groups


def _aggregate_record(compiled: CompiledQuery, group: Group) -> dict[str, object]:
    record: dict[str, object] = {"attributes": {"type": "AggregateResult"}}
    grouped = {item.ref.text.lower(): index for index, item in enumerate(compiled.group_fields)}
    counts = {
        id(aggregate): (name, count_getter(aggregate.text.lower(), resolved))
        for name, aggregate, resolved in compiled.aggregates
    }
    for item in compiled.query.fields:
        if isinstance(item, FieldRef):
            index = grouped[item.text.lower()]
            resolved = compiled.group_fields[index]
            record[resolved.field.name] = output_value(resolved.field, group.values[index])
        elif isinstance(item, Aggregate):
            name, count = counts[id(item)]
            record[name] = count(group)
    return record
