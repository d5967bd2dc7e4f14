"""Parse SOQL text into the syntax tree of `soql_ast` with a lark LALR grammar.

Keywords are case-insensitive. A keyword is recognised only where a whole word
matches it, so fields such as ``FirstName`` or objects such as ``Group`` stay
names. SOQL has no operator precedence between AND and OR: mixing them without
parentheses is a syntax error in Salesforce, and the grammar rejects it too.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from backstory_desktop.practice_org.soql_ast import (
    MALFORMED_QUERY,
    Aggregate,
    And,
    Comparison,
    Condition,
    CountAll,
    FieldRef,
    InList,
    Like,
    Literal,
    Not,
    Operand,
    Or,
    OrderItem,
    Position,
    RelativeDate,
    SelectItem,
    SemiJoin,
    SoqlError,
    SoqlQuery,
    located_message,
)

_GRAMMAR = r"""
start: query

query: _SELECT select_list _FROM NAME where_clause? group_clause? order_clause? limit_clause? offset_clause?

select_list: select_item ("," select_item)*
?select_item: field_ref
            | count_all
            | aggregate
count_all: COUNT "(" ")"
aggregate: aggregate_expr NAME?
aggregate_expr: COUNT "(" field_ref ")"
field_ref: NAME ("." NAME)*

where_clause: _WHERE condition
group_clause: _GROUP _BY field_ref ("," field_ref)* having_clause?
having_clause: _HAVING condition
order_clause: _ORDER _BY order_item ("," order_item)*
order_item: operand direction? nulls?
direction: ASC | DESC
nulls: _NULLS (FIRST | LAST)
limit_clause: _LIMIT NUMBER
offset_clause: _OFFSET NUMBER

?condition: unit
          | unit (_AND unit)+ -> and_condition
          | unit (_OR unit)+ -> or_condition
?unit: _NOT unit -> not_condition
     | "(" condition ")"
     | comparison
comparison: operand COMP_OP value -> compare
          | operand _LIKE value -> like
          | operand _IN "(" value ("," value)* ")" -> in_list
          | operand _NOT _IN "(" value ("," value)* ")" -> not_in_list
          | operand _IN "(" query ")" -> semi_join
          | operand _NOT _IN "(" query ")" -> anti_join
?operand: field_ref
        | aggregate_expr

?value: STRING | NUMBER | DATE | DATETIME | NULL | TRUE | FALSE | date_literal
date_literal: NAME (":" NUMBER)?

_SELECT: "SELECT"i
_FROM: "FROM"i
_WHERE: "WHERE"i
_GROUP: "GROUP"i
_BY: "BY"i
_HAVING: "HAVING"i
_ORDER: "ORDER"i
_NULLS: "NULLS"i
_LIMIT: "LIMIT"i
_OFFSET: "OFFSET"i
// The operators that follow a field are matched as whole words only: where they are
// expected no name is, so "INCLUDES" would otherwise read as IN followed by "CLUDES".
_AND.5: /AND(?![A-Za-z0-9_])/i
_OR.5: /OR(?![A-Za-z0-9_])/i
_NOT.5: /NOT(?![A-Za-z0-9_])/i
_IN.5: /IN(?![A-Za-z0-9_])/i
_LIKE.5: /LIKE(?![A-Za-z0-9_])/i
COUNT: "COUNT"i
ASC: "ASC"i
DESC: "DESC"i
FIRST: "FIRST"i
LAST: "LAST"i
NULL: "NULL"i
TRUE: "TRUE"i
FALSE: "FALSE"i

COMP_OP: /<>|<=|>=|!=|=|<|>/
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})/i
DATE.3: /\d{4}-\d{2}-\d{2}/
NUMBER.2: /[+-]?(\d+(\.\d*)?|\.\d+)/
STRING: /'(?:[^'\\]|\\.)*'/s
NAME: /[A-Za-z_][A-Za-z0-9_]*/

%ignore /\s+/
"""


@functools.cache
def soql_parser() -> Lark:
    """Build the LALR parser of the grammar on first use; later calls return the same parser."""
    # Building it takes longer than importing lark, so the practice org's first query pays for it
    # instead of every import. Lark's LALR parser keeps no state between parse() calls, so the
    # server's threads share it.
    return Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)


# The unquoted date literals that soql_values implements. Others are rejected at parse time.
RELATIVE_DATES_WITHOUT_N = frozenset({"TODAY", "YESTERDAY", "TOMORROW"})
RELATIVE_DATES_WITH_N = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"})


def parse_soql(text: str) -> SoqlQuery:
    """Parse one SOQL SELECT statement; raise SoqlError(MALFORMED_QUERY) on a syntax error."""
    try:
        tree = soql_parser().parse(text)
    except UnexpectedToken as exc:
        raise _syntax_error(text, exc) from None
    except UnexpectedCharacters as exc:
        reason = f"unexpected token: '{exc.char}'"
        position = Position(exc.line, exc.column)
        raise SoqlError(MALFORMED_QUERY, located_message(text, position, reason)) from None
    except UnexpectedInput as exc:
        raise SoqlError(MALFORMED_QUERY, f"unexpected token: {exc}") from None

    builder = _TreeBuilder(text)
    return builder.query(_child_tree(tree, 0))


def _syntax_error(text: str, exc: UnexpectedToken) -> SoqlError:
    token = exc.token
    if token.type == "$END":
        lines = text.splitlines() or [""]
        position = Position(len(lines), len(lines[-1]) + 1)
        reason = "unexpected token: <EOF>"
    else:
        position = Position(token.line or 1, token.column or 1)
        reason = f"unexpected token: '{token.value}'"
    return SoqlError(MALFORMED_QUERY, located_message(text, position, reason))


def _child_tree(tree: Tree[Token], index: int) -> Tree[Token]:
    child = tree.children[index]
    assert isinstance(child, Tree)
    return child


def _position(token: Token) -> Position:
    return Position(token.line or 1, token.column or 1)


class _TreeBuilder:
    """Turns the lark parse tree into `soql_ast` nodes, checking what the grammar cannot."""

    def __init__(self, text: str) -> None:
        self._text = text

    def error(self, position: Position, reason: str) -> SoqlError:
        return SoqlError(MALFORMED_QUERY, located_message(self._text, position, reason))

    def query(self, tree: Tree[Token]) -> SoqlQuery:
        select_list = _child_tree(tree, 0)
        name = tree.children[1]
        assert isinstance(name, Token)
        fields = tuple(self.select_item(child) for child in select_list.children)
        self.check_select_list(fields)

        where: Condition | None = None
        group_by: tuple[FieldRef, ...] = ()
        having: Condition | None = None
        order_by: tuple[OrderItem, ...] = ()
        limit: int | None = None
        offset: int | None = None
        for clause in tree.children[2:]:
            assert isinstance(clause, Tree)
            if clause.data == "where_clause":
                where = self.condition(clause.children[0])
            elif clause.data == "group_clause":
                group_by, having = self.group_clause(clause)
            elif clause.data == "order_clause":
                order_by = tuple(self.order_item(_child_tree(clause, i))
                                 for i in range(len(clause.children)))
            elif clause.data == "limit_clause":
                limit = self.integer(clause.children[0])
            elif clause.data == "offset_clause":
                offset = self.integer(clause.children[0])

        return SoqlQuery(
            text=self._text,
            sobject=str(name),
            sobject_position=_position(name),
            fields=fields,
            where=where,
            group_by=group_by,
            having=having,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )

    def check_select_list(self, fields: tuple[SelectItem, ...]) -> None:
        if len(fields) > 1:
            for item in fields:
                if isinstance(item, CountAll):
                    raise self.error(item.position,
                                     "COUNT() must be the only element in the SELECT list")
        seen: set[str] = set()
        for item in fields:
            if isinstance(item, FieldRef):
                key = item.text.lower()
                if key in seen:
                    raise self.error(item.position, f"duplicate field selected: {item.text}")
                seen.add(key)

    def select_item(self, node: Tree[Token] | Token) -> SelectItem:
        assert isinstance(node, Tree)
        if node.data == "field_ref":
            return self.field_ref(node)
        if node.data == "count_all":
            token = node.children[0]
            assert isinstance(token, Token)
            return CountAll(_position(token))
        expression = self.aggregate_expr(_child_tree(node, 0))
        alias = str(node.children[1]) if len(node.children) > 1 else None
        return Aggregate(expression.function, expression.field, alias, expression.position)

    def aggregate_expr(self, node: Tree[Token]) -> Aggregate:
        token = node.children[0]
        assert isinstance(token, Token)
        return Aggregate("COUNT", self.field_ref(_child_tree(node, 1)), None, _position(token))

    def field_ref(self, node: Tree[Token]) -> FieldRef:
        tokens = [child for child in node.children if isinstance(child, Token)]
        return FieldRef(tuple(str(token) for token in tokens), _position(tokens[0]))

    def operand(self, node: Tree[Token] | Token) -> Operand:
        assert isinstance(node, Tree)
        if node.data == "aggregate_expr":
            return self.aggregate_expr(node)
        return self.field_ref(node)

    def group_clause(self, node: Tree[Token]) -> tuple[tuple[FieldRef, ...], Condition | None]:
        fields: list[FieldRef] = []
        having: Condition | None = None
        for child in node.children:
            assert isinstance(child, Tree)
            if child.data == "having_clause":
                having = self.condition(child.children[0])
            else:
                fields.append(self.field_ref(child))
        return tuple(fields), having

    def order_item(self, node: Tree[Token]) -> OrderItem:
        target = self.operand(node.children[0])
        descending = False
        nulls_last = False
        for child in node.children[1:]:
            assert isinstance(child, Tree)
            keyword = child.children[0]
            assert isinstance(keyword, Token)
            if child.data == "direction":
                descending = keyword.type == "DESC"
            else:
                nulls_last = keyword.type == "LAST"
        return OrderItem(target, descending, nulls_last)

    def integer(self, node: Tree[Token] | Token) -> int:
        assert isinstance(node, Token)
        if not str(node).isdigit():
            raise self.error(_position(node), f"unexpected token: '{node}'")
        return int(str(node))

    def condition(self, node: Tree[Token] | Token) -> Condition:
        assert isinstance(node, Tree)
        kind = node.data
        if kind == "and_condition":
            return And(tuple(self.condition(child) for child in node.children))
        if kind == "or_condition":
            return Or(tuple(self.condition(child) for child in node.children))
        if kind == "not_condition":
            return Not(self.condition(node.children[0]))

        left = self.operand(node.children[0])
        if kind == "compare":
            operator = str(node.children[1])
            value = self.literal(node.children[2])
            return Comparison(left, "!=" if operator == "<>" else operator, value)
        if kind == "like":
            return Like(left, self.literal(node.children[1]))
        if kind in ("in_list", "not_in_list"):
            values = tuple(self.literal(child) for child in node.children[1:])
            return InList(left, values, negated=kind == "not_in_list")
        subquery = self.query(_child_tree(node, 1))
        return SemiJoin(left, subquery, negated=kind == "anti_join")

    def literal(self, node: Tree[Token] | Token) -> Literal:
        if isinstance(node, Tree):
            return self.relative_date(node)
        position = _position(node)
        raw = str(node)
        kind = node.type
        if kind == "STRING":
            return Literal("string", raw[1:-1], position)
        if kind == "NUMBER":
            try:
                return Literal("number", Decimal(raw), position)
            except InvalidOperation:
                raise self.error(position, f"unexpected token: '{raw}'") from None
        if kind == "NULL":
            return Literal("null", None, position)
        if kind in ("TRUE", "FALSE"):
            return Literal("boolean", kind == "TRUE", position)
        if kind == "DATE":
            return Literal("date", self.parse_date(raw, position), position)
        return Literal("datetime", self.parse_datetime(raw, position), position)

    def relative_date(self, node: Tree[Token]) -> Literal:
        name_token = node.children[0]
        assert isinstance(name_token, Token)
        position = _position(name_token)
        name = str(name_token).upper()
        if len(node.children) == 1 and name in RELATIVE_DATES_WITHOUT_N:
            return Literal("date_literal", RelativeDate(name, None), position)
        if len(node.children) == 2 and name in RELATIVE_DATES_WITH_N:
            number = node.children[1]
            assert isinstance(number, Token)
            return Literal("date_literal", RelativeDate(name, self.integer(number)), position)
        # NOTE: Salesforce supports more date literals (THIS_WEEK, LAST_MONTH, ...).
        # The practice org rejects them rather than guess their ranges.
        raise self.error(position, f"unexpected token: '{name_token}'")

    def parse_date(self, raw: str, position: Position) -> date:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise self.error(position, f"unexpected token: '{raw}'") from None

    def parse_datetime(self, raw: str, position: Position) -> datetime:
        text = raw.upper()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self.error(position, f"unexpected token: '{raw}'") from None
