"""Syntax tree and errors of the practice org's SOQL engine.

`soql_parser` builds these nodes from query text, `soql_compile` turns them into
Python predicates and getters. Every node keeps the position of its first token so
that errors can point at it the way Salesforce does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
INVALID_QUERY_FILTER_OPERATOR = "INVALID_QUERY_FILTER_OPERATOR"
NUMBER_OUTSIDE_VALID_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"


class SoqlError(Exception):
    """A query Salesforce would reject, with its error code and message.

    ``message`` has Salesforce's shape: for errors tied to a place in the query it
    starts with a newline, the query line, a caret under the offending token and
    ``ERROR at Row:R:Column:C``, then the reason on the last line.
    """

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class Position:
    """Line and column (both 1-based) of a token in the query text."""

    line: int
    column: int


def located_message(text: str, position: Position, reason: str) -> str:
    """Format ``reason`` as Salesforce does: the query line, a caret, the row and column."""
    lines = text.splitlines() or [""]
    line_index = min(max(position.line, 1), len(lines)) - 1
    line = lines[line_index]
    caret_index = max(position.column - 1, 0)

    # Salesforce shows a window of a long line around the error, cut at spaces.
    start = 0
    if caret_index > 60:
        start = line.rfind(" ", 0, caret_index - 40) + 1
    end = len(line)
    if end - caret_index > 80:
        cut = line.find(" ", caret_index + 60)
        end = cut if cut != -1 else end
    snippet = line[start:end]
    caret = " " * (caret_index - start) + "^"
    return f"\n{snippet}\n{caret}\nERROR at Row:{position.line}:Column:{position.column}\n{reason}"


@dataclass(frozen=True)
class FieldRef:
    """A field path as written: ``Subject``, ``Owner.Name``, ``Owner.Profile.Name``."""

    parts: tuple[str, ...]
    position: Position

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class CountAll:
    """``COUNT()``: the query returns only ``totalSize``."""

    position: Position


@dataclass(frozen=True)
class Aggregate:
    """``COUNT(field)`` with its optional alias, the only aggregate function supported."""

    function: str
    field: FieldRef
    alias: str | None
    position: Position

    @property
    def text(self) -> str:
        return f"{self.function}({self.field.text})"


SelectItem = FieldRef | CountAll | Aggregate
Operand = FieldRef | Aggregate


@dataclass(frozen=True)
class RelativeDate:
    """A date literal such as ``TODAY`` or ``LAST_N_DAYS:30`` (``n`` is None without a number)."""

    name: str
    n: int | None


LiteralValue = str | Decimal | bool | date | datetime | RelativeDate | None


@dataclass(frozen=True)
class Literal:
    """A value in a condition.

    ``kind`` is one of string, number, null, boolean, date, datetime, date_literal.
    A string keeps its source text between the quotes, escapes undecoded, because
    ``\\%`` and ``\\_`` are valid only inside LIKE.
    """

    kind: str
    value: LiteralValue
    position: Position


@dataclass(frozen=True)
class Comparison:
    """``operand op value`` for =, !=, <, <=, > and >= (``<>`` is stored as ``!=``)."""

    left: Operand
    operator: str
    value: Literal


@dataclass(frozen=True)
class Like:
    left: Operand
    pattern: Literal


@dataclass(frozen=True)
class InList:
    left: Operand
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class SemiJoin:
    """``field [NOT] IN (SELECT field FROM object ...)``."""

    left: Operand
    query: SoqlQuery
    negated: bool


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Comparison | Like | InList | SemiJoin | And | Or | Not


@dataclass(frozen=True)
class OrderItem:
    target: Operand
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class SoqlQuery:
    """One parsed SELECT statement, with ``sobject`` spelled as in the query text."""

    text: str
    sobject: str
    sobject_position: Position
    fields: tuple[SelectItem, ...]
    where: Condition | None = None
    group_by: tuple[FieldRef, ...] = ()
    having: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count_only(self) -> bool:
        return any(isinstance(item, CountAll) for item in self.fields)

    @property
    def is_aggregate(self) -> bool:
        """True for GROUP BY queries and for queries that select ``COUNT(field)``."""
        return bool(self.group_by) or any(isinstance(item, Aggregate) for item in self.fields)
