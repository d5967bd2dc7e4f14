"""Compile a parsed SOQL query against the org's schema into Python callables.

Field paths are resolved once (INVALID_FIELD, INVALID_TYPE), literals are checked
and decoded once, and the WHERE and HAVING clauses become plain predicates, so a
query over 100,000 Tasks does no parsing per row.

Null handling follows SOQL, not SQL: ``field != value`` and ``NOT IN`` are true
for a null field, every other comparison with a null field is false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from backstory_desktop.practice_org.soql_ast import (
    INVALID_FIELD,
    INVALID_TYPE,
    MALFORMED_QUERY,
    NUMBER_OUTSIDE_VALID_RANGE,
    Aggregate,
    And,
    Comparison,
    Condition,
    FieldRef,
    InList,
    Like,
    Not,
    Operand,
    Or,
    Position,
    SemiJoin,
    SoqlError,
    SoqlQuery,
    located_message,
)
from backstory_desktop.practice_org.soql_schema import (
    FieldLike,
    FieldSchema,
    SObjectLike,
    field_category,
)
from backstory_desktop.practice_org.soql_values import LiteralChecker, normalizer_for

Row = Mapping[str, object]
Lookup = Callable[[str, str], Mapping[str, object] | None]
SchemaSource = Callable[[str], SObjectLike | None]
RowSource = Callable[[str], Iterable[Mapping[str, object]]]
# Getters and predicates take a row (a Mapping) or a Group. They are typed Any because
# an isinstance check per row costs more than the lookup itself.
Getter = Callable[[Any], object]
Predicate = Callable[[Any], bool]
_T = TypeVar("_T")

# Salesforce rejects an OFFSET above 2,000 (SOQL and SOSL Reference, "OFFSET").
MAX_OFFSET = 2000
_COUNT_FIELD = FieldSchema("expr", type="int")
_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def read_field(row: Row, name: str) -> object:
    """Return ``row[name]``, matching the key case-insensitively when it is not exact."""
    try:
        return row[name]
    except KeyError:
        lowered = name.lower()
        for key, value in row.items():
            if key.lower() == lowered:
                return value
        return None


class ParentResolver:
    """Fetches parent records through ``lookup``, cached for one query run."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._cache: dict[tuple[str, str], Row | None] = {}

    def parent(self, targets: tuple[SObjectLike, ...],
               parent_id: object) -> tuple[SObjectLike, Row] | None:
        if parent_id is None or parent_id == "":
            return None
        text = str(parent_id)
        target = targets[0]
        if len(targets) > 1:
            matches = [item for item in targets if item.key_prefix and text.startswith(item.key_prefix)]
            if not matches:
                return None
            target = matches[0]
        key = (target.name, text)
        if key not in self._cache:
            self._cache[key] = self._lookup(target.name, text)
        record = self._cache[key]
        return None if record is None else (target, record)


@dataclass(frozen=True)
class Hop:
    """One relationship step of a field path: the reference field and its parent objects."""

    reference: FieldLike
    targets: tuple[SObjectLike, ...]

    @property
    def polymorphic(self) -> bool:
        """True when the field may point at several objects, even ones this org lacks."""
        return len(self.reference.reference_to) > 1


@dataclass(frozen=True)
class ResolvedField:
    """A field path checked against the schema, with a getter from a row of the root object."""

    ref: FieldRef
    field: FieldLike
    hops: tuple[Hop, ...]
    getter: Getter


@dataclass
class Group:
    """Rows sharing one GROUP BY key, with aggregate values computed on demand."""

    values: tuple[object, ...]
    rows: list[Row] = field(default_factory=list)
    aggregates: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledOperand:
    getter: Getter
    field: FieldLike
    label: str


@dataclass(frozen=True)
class SortKey:
    getter: Getter
    normalize: Callable[[object], object]
    descending: bool
    nulls_last: bool


@dataclass
class CompiledQuery:
    """Everything `soql.run_query` needs to evaluate one query."""

    query: SoqlQuery
    root: SObjectLike
    where: Predicate | None
    selected: list[ResolvedField]
    group_fields: list[ResolvedField]
    group_normalizers: list[Callable[[object], object]]
    aggregates: list[tuple[str, Aggregate, ResolvedField]]
    having: Predicate | None
    sort_keys: list[SortKey]
    resolver: ParentResolver
    # Every COUNT(field) of SELECT, HAVING and ORDER BY by its lower-case text, counted
    # while the rows are grouped so that a group need not keep its rows.
    counted: dict[str, ResolvedField] = field(default_factory=dict)


class QueryCompiler:
    """Compiles one query, or a semi-join sub-select when ``nested`` is true."""

    def __init__(self, query: SoqlQuery, schema: SchemaSource, resolver: ParentResolver, *,
                 now: datetime, subquery_rows: RowSource | None, nested: bool = False) -> None:
        self.query = query
        self.schema = schema
        self.resolver = resolver
        self.now = now
        self.subquery_rows = subquery_rows
        self.nested = nested
        self.literals = LiteralChecker(query.text)
        self.counted: dict[str, ResolvedField] = {}
        root = schema(query.sobject)
        if root is None:
            raise self.error(
                INVALID_TYPE, query.sobject_position,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        self.root = root

    def error(self, code: str, position: Position, reason: str) -> SoqlError:
        return SoqlError(code, located_message(self.query.text, position, reason))

    # Field paths

    def resolve(self, ref: FieldRef) -> ResolvedField:
        current: tuple[SObjectLike, ...] = (self.root,)
        hops: list[Hop] = []
        for part in ref.parts[:-1]:
            reference = _first(item.relationship(part) for item in current)
            targets = tuple(_known(self.schema, reference.reference_to)) if reference else ()
            if reference is None or not targets:
                raise self.error(
                    INVALID_FIELD, ref.position,
                    f"Didn't understand relationship '{part}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                )
            hops.append(Hop(reference, targets))
            current = targets

        name = ref.parts[-1]
        final = _first(item.field(name) for item in current)
        if final is None:
            entity = current[0].name if len(current) == 1 else "Name"
            raise self.error(
                INVALID_FIELD, ref.position,
                f"No such column '{name}' on entity '{entity}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        return ResolvedField(ref, final, tuple(hops), self._path_getter(tuple(hops), name))

    def _path_getter(self, hops: tuple[Hop, ...], name: str) -> Getter:
        def read_own(row: Row) -> object:
            return read_field(row, name)

        getter: Getter = read_own
        for hop in reversed(hops):
            getter = self._hop_getter(hop, getter)
        return getter

    def _hop_getter(self, hop: Hop, inner: Getter) -> Getter:
        resolver = self.resolver
        reference_name = hop.reference.name

        def read_through_parent(row: Row) -> object:
            found = resolver.parent(hop.targets, read_field(row, reference_name))
            return None if found is None else inner(found[1])

        return read_through_parent

    # Conditions

    def where_predicate(self) -> Predicate | None:
        if self.query.where is None:
            return None
        return self.condition(self.query.where, self.row_operand)

    def row_operand(self, operand: Operand) -> CompiledOperand:
        if isinstance(operand, Aggregate):
            raise self.error(MALFORMED_QUERY, operand.position,
                             f"{operand.text} is not allowed here: aggregate functions are "
                             "allowed only in the SELECT, HAVING and ORDER BY clauses of an "
                             "aggregate query")
        resolved = self.resolve(operand)
        return CompiledOperand(resolved.getter, resolved.field, operand.text)

    def condition(self, node: Condition,
                  operand: Callable[[Operand], CompiledOperand]) -> Predicate:
        if isinstance(node, And):
            parts = [self.condition(item, operand) for item in node.items]
            return lambda context: all(part(context) for part in parts)
        if isinstance(node, Or):
            parts = [self.condition(item, operand) for item in node.items]
            return lambda context: any(part(context) for part in parts)
        if isinstance(node, Not):
            inner = self.condition(node.item, operand)
            return lambda context: not inner(context)
        if isinstance(node, Comparison):
            return self.comparison(node, operand(node.left))
        if isinstance(node, Like):
            return self.like(node, operand(node.left))
        if isinstance(node, InList):
            return self.in_list(node, operand(node.left))
        return self.semi_join(node, operand(node.left))

    def comparison(self, node: Comparison, compiled: CompiledOperand) -> Predicate:
        getter = compiled.getter
        normalize = normalizer_for(compiled.field)
        op = node.operator
        literal = node.value

        if literal.kind == "date_literal":
            start, end = self.literals.date_range(compiled.field, compiled.label, literal, self.now)
            return _range_predicate(getter, normalize, op, start, end)

        if literal.kind == "null" and op not in ("=", "!="):
            raise self.error(MALFORMED_QUERY, literal.position,
                             f"unexpected token: 'null' after operator '{op}'")
        if field_category(compiled.field) == "boolean" and op not in ("=", "!="):
            raise self.error(MALFORMED_QUERY, literal.position,
                             f"operator '{op}' is not supported on boolean field {compiled.label}")
        target = self.literals.key(compiled.field, compiled.label, literal)

        if op == "=":
            return lambda context: normalize(getter(context)) == target
        if op == "!=":
            return lambda context: normalize(getter(context)) != target
        compare = _ORDERING[op]

        def ordered(context: object) -> bool:
            value = normalize(getter(context))
            return value is not None and bool(compare(value, target))

        return ordered

    def like(self, node: Like, compiled: CompiledOperand) -> Predicate:
        if field_category(compiled.field) != "string":
            raise self.error(MALFORMED_QUERY, node.pattern.position,
                             f"LIKE is supported only on text fields, not on {compiled.label}")
        pattern = self.literals.like_pattern(node.pattern,
                                             case_sensitive=compiled.field.case_sensitive)
        getter = compiled.getter

        def matches(context: object) -> bool:
            value = getter(context)
            return value is not None and value != "" and pattern.fullmatch(str(value)) is not None

        return matches

    def in_list(self, node: InList, compiled: CompiledOperand) -> Predicate:
        for literal in node.values:
            if literal.kind == "date_literal":
                raise self.error(MALFORMED_QUERY, literal.position,
                                 "date literals are not supported inside IN")
        keys = {self.literals.key(compiled.field, compiled.label, item) for item in node.values}
        return _membership(compiled.getter, normalizer_for(compiled.field), keys, node.negated)

    def semi_join(self, node: SemiJoin, compiled: CompiledOperand) -> Predicate:
        position = node.query.sobject_position
        if self.nested:
            raise self.error(MALFORMED_QUERY, position,
                             "Nesting of semi join sub-selects is not supported")
        if field_category(compiled.field) != "id":
            raise self.error(MALFORMED_QUERY, position,
                             f"semi join sub-selects need an Id or reference field, "
                             f"not {compiled.label}")
        if self.subquery_rows is None:
            raise self.error(MALFORMED_QUERY, position,
                             "semi join sub-selects are not available for this query")
        ids = self.subquery_ids(node.query, self.subquery_rows)
        return _membership(compiled.getter, normalizer_for(compiled.field), ids, node.negated)

    def subquery_ids(self, query: SoqlQuery, rows: RowSource) -> set[object]:
        inner = QueryCompiler(query, self.schema, self.resolver, now=self.now,
                              subquery_rows=None, nested=True)
        fields = query.fields
        if (len(fields) != 1 or not isinstance(fields[0], FieldRef) or query.group_by
                or query.order_by or query.limit is not None or query.offset is not None):
            raise self.error(MALFORMED_QUERY, query.sobject_position,
                             "a semi join sub-select must select one Id or reference field "
                             "and may only have a WHERE clause")
        selected = inner.resolve(fields[0])
        if field_category(selected.field) != "id":
            raise self.error(MALFORMED_QUERY, fields[0].position,
                             f"a semi join sub-select must select an Id or reference field, "
                             f"not {fields[0].text}")
        predicate = inner.where_predicate()
        normalize = normalizer_for(selected.field)
        ids: set[object] = set()
        for row in rows(inner.root.name):
            if predicate is None or predicate(row):
                ids.add(normalize(selected.getter(row)))
        ids.discard(None)
        return ids

    # Whole query

    def compile(self) -> CompiledQuery:
        query = self.query
        if query.offset is not None and query.offset > MAX_OFFSET:
            raise SoqlError(NUMBER_OUTSIDE_VALID_RANGE,
                            f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        where = self.where_predicate()
        if query.is_count_only:
            return self._count_only(where)
        if query.is_aggregate:
            return self._aggregate(where)

        selected = [self.resolve(item) for item in query.fields if isinstance(item, FieldRef)]
        sort_keys = []
        for item in query.order_by:
            compiled = self.row_operand(item.target)
            sort_keys.append(SortKey(compiled.getter,
                                     normalizer_for(compiled.field, for_sorting=True),
                                     item.descending, item.nulls_last))
        return CompiledQuery(query, self.root, where, selected, [], [], [], None, sort_keys,
                             self.resolver)

    def _count_only(self, where: Predicate | None) -> CompiledQuery:
        query = self.query
        if query.group_by or query.order_by:
            clause = query.group_by[0].position if query.group_by else query.sobject_position
            raise self.error(MALFORMED_QUERY, clause,
                             "COUNT() is supported only without GROUP BY and ORDER BY")
        return CompiledQuery(query, self.root, where, [], [], [], [], None, [], self.resolver)

    def _aggregate(self, where: Predicate | None) -> CompiledQuery:
        query = self.query
        group_fields = [self.resolve(item) for item in query.group_by]
        grouped = {item.text.lower(): index for index, item in enumerate(query.group_by)}

        unnamed = 0
        aggregates: list[tuple[str, Aggregate, ResolvedField]] = []
        # Each column of an AggregateResult row needs its own name, so an alias may not
        # repeat another alias, an exprN name or a grouped field's name.
        names = {resolved.field.name.lower() for resolved in group_fields}
        for item in query.fields:
            if isinstance(item, Aggregate):
                name = item.alias
                if name is None:
                    name = f"expr{unnamed}"
                    unnamed += 1
                if name.lower() in names:
                    raise self.error(MALFORMED_QUERY, item.position, f"duplicate alias: {name}")
                names.add(name.lower())
                resolved = self.resolve(item.field)
                self.counted[item.text.lower()] = resolved
                aggregates.append((name, item, resolved))
            elif isinstance(item, FieldRef) and item.text.lower() not in grouped:
                raise self.error(MALFORMED_QUERY, item.position,
                                 f"Field must be grouped or aggregated: {item.text}")

        def group_operand(operand: Operand) -> CompiledOperand:
            if isinstance(operand, Aggregate):
                return CompiledOperand(self._aggregate_getter(operand), _COUNT_FIELD,
                                       operand.text)
            index = grouped.get(operand.text.lower())
            if index is None:
                raise self.error(MALFORMED_QUERY, operand.position,
                                 f"Field must be grouped or aggregated: {operand.text}")
            resolved = group_fields[index]
            return CompiledOperand(_group_value_getter(index), resolved.field, operand.text)

        having = self.condition(query.having, group_operand) if query.having else None
        sort_keys = []
        for order in query.order_by:
            compiled = group_operand(order.target)
            sort_keys.append(SortKey(compiled.getter,
                                     normalizer_for(compiled.field, for_sorting=True),
                                     order.descending, order.nulls_last))
        normalizers = [normalizer_for(item.field) for item in group_fields]
        return CompiledQuery(query, self.root, where, [], group_fields, normalizers, aggregates,
                             having, sort_keys, self.resolver, dict(self.counted))

    def _aggregate_getter(self, aggregate: Aggregate) -> Getter:
        resolved = self.resolve(aggregate.field)
        self.counted[aggregate.text.lower()] = resolved
        return count_getter(aggregate.text.lower(), resolved)


def count_getter(cache_key: str, resolved: ResolvedField) -> Getter:
    """Return a getter of COUNT(field) over a Group: the rows where the field is not null.

    The count is taken from ``group.aggregates`` when grouping filled it in, and
    counted over ``group.rows`` otherwise.
    """
    normalize = normalizer_for(resolved.field)
    getter = resolved.getter

    def count(group: Group) -> object:
        if cache_key not in group.aggregates:
            group.aggregates[cache_key] = sum(
                1 for row in group.rows if normalize(getter(row)) is not None
            )
        return group.aggregates[cache_key]

    return count


def _group_value_getter(index: int) -> Getter:
    def value(group: Group) -> object:
        return group.values[index]

    return value


def _membership(getter: Getter, normalize: Callable[[object], object], keys: set[object],
                negated: bool) -> Predicate:
    if negated:
        return lambda context: normalize(getter(context)) not in keys
    return lambda context: normalize(getter(context)) in keys


def _range_predicate(getter: Getter, normalize: Callable[[object], object], op: str,
                     start: object, end: object) -> Predicate:
    def in_range(context: object) -> bool:
        value = normalize(getter(context))
        if value is None:
            return op == "!="
        inside_start = bool(value >= start)  # type: ignore[operator]
        before_end = bool(value < end)  # type: ignore[operator]
        if op == "=":
            return inside_start and before_end
        if op == "!=":
            return not (inside_start and before_end)
        if op == "<":
            return not inside_start
        if op == "<=":
            return before_end
        if op == ">":
            return not before_end
        return inside_start

    return in_range


def _first(items: Iterable[_T | None]) -> _T | None:
    for item in items:
        if item is not None:
            return item
    return None


def _known(schema: SchemaSource, names: tuple[str, ...]) -> Iterable[SObjectLike]:
    for name in names:
        found = schema(name)
        if found is not None:
            yield found


def compile_query(query: SoqlQuery, schema: SchemaSource, lookup: Lookup, *, now: datetime,
                  subquery_rows: RowSource | None) -> CompiledQuery:
    """Resolve and check ``query`` against ``schema``; raise SoqlError as Salesforce would."""
    resolver = ParentResolver(lookup)
    compiler = QueryCompiler(query, schema, resolver, now=now, subquery_rows=subquery_rows)
    return compiler.compile()

