"""Field values and literals of the SOQL engine: normalising, decoding, type checks.

Rows come from the practice org's store, so a value may be a Python date or
datetime, an ISO 8601 string, 0/1 for a checkbox (SQLite) or an empty string for
a blank text field. Normalising turns each into one comparable key per field type,
with None for null. Salesforce stores a blank text field as null, so "" counts as null.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from backstory_desktop.practice_org.soql_ast import (
    INVALID_FIELD,
    INVALID_QUERY_FILTER_OPERATOR,
    MALFORMED_QUERY,
    Literal,
    RelativeDate,
    SoqlError,
    located_message,
)
from backstory_desktop.practice_org.soql_schema import FieldLike, field_category

Normalizer = Callable[[object], object]

# Escape sequences from the "Quoted String Escape Sequences" page of Salesforce's SOQL
# and SOSL Reference. \% and \_ are valid only inside LIKE, \uXXXX anywhere.
_ESCAPES = {
    "n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t",
    "b": "\b", "B": "\b", "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\",
}
_ID_PATTERN = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")

# The type names Salesforce uses in "value of filter criterion" errors.
_TYPE_WORDS = {"id": "id", "boolean": "boolean", "date": "date", "datetime": "dateTime"}


def normalizer_for(field: FieldLike, *, for_sorting: bool = False) -> Normalizer:
    """Return the function that turns a stored value of ``field`` into its comparison key.

    Text keys are case-folded unless the field is case-sensitive. Sort keys of text
    are always case-folded because Salesforce sorts text case-insensitively.
    """
    category = field_category(field)
    if category == "string":
        fold = for_sorting or not field.case_sensitive
        return _fold_text if fold else _text
    if category == "id":
        return _id_key
    if category == "boolean":
        return _boolean
    if category == "number":
        return _number
    if category == "date":
        return _date
    return _datetime


def _text(value: object) -> object:
    if value is None or value == "":
        return None
    return str(value)


def _fold_text(value: object) -> object:
    if value is None or value == "":
        return None
    return str(value).casefold()


def _id_key(value: object) -> object:
    # A 15-character Id and its 18-character form name the same record, because the
    # 3-character suffix only encodes the case of the first 15.
    if value is None or value == "":
        return None
    return str(value)[:15]


def _boolean(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _number(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | Decimal | str):
        return float(value)
    return None


def _date(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _datetime(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        moment = parse_datetime_text(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_datetime_text(text: str) -> datetime:
    """Parse Salesforce's ``2024-01-01T00:00:00.000+0000`` and other ISO 8601 forms."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def output_value(field: FieldLike, value: object) -> object:
    """Return ``value`` as Salesforce's REST API shows ``field`` in JSON."""
    if value is None:
        return None
    category = field_category(field)
    if category == "string":
        return None if value == "" else value
    if category == "boolean":
        return _boolean(value)
    if category == "number" and isinstance(value, Decimal):
        return float(value)
    if category == "date" and isinstance(value, date):
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    if category == "datetime" and isinstance(value, datetime | date):
        moment = _datetime(value)
        assert isinstance(moment, datetime)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return value


class LiteralChecker:
    """Checks that literals fit the field they are compared with, as Salesforce does."""

    def __init__(self, text: str) -> None:
        self._text = text

    def error(self, code: str, literal: Literal, reason: str) -> SoqlError:
        return SoqlError(code, located_message(self._text, literal.position, reason))

    def key(self, field: FieldLike, label: str, literal: Literal) -> object:
        """Return the comparison key of a literal compared with ``field``, or None for null."""
        if literal.kind == "null":
            return None
        category = field_category(field)
        if category in ("string", "id"):
            if literal.kind != "string":
                raise self.type_error(field, label, literal)
            text = self.decode(literal)
            if category == "id":
                return self.id_key(text, literal)
            return normalizer_for(field)(text)
        if category == "boolean" and literal.kind == "boolean":
            return literal.value
        if category == "number" and literal.kind == "number":
            assert isinstance(literal.value, Decimal)
            return float(literal.value)
        if category == "date" and literal.kind == "date":
            return literal.value
        if category == "datetime" and literal.kind == "datetime":
            return _datetime(literal.value)
        raise self.type_error(field, label, literal)

    def id_key(self, text: str, literal: Literal) -> str:
        if not _ID_PATTERN.fullmatch(text):
            raise self.error(INVALID_QUERY_FILTER_OPERATOR, literal, f"invalid ID field: {text}")
        return text[:15]

    def type_error(self, field: FieldLike, label: str, literal: Literal) -> SoqlError:
        category = field_category(field)
        if category == "string":
            reason = (f"value of filter criterion for field '{label}' must be of type string "
                      "and should be enclosed in quotes")
        elif category == "id":
            reason = (f"value of filter criterion for field '{label}' must be of type id "
                      "and should be enclosed in quotes")
        else:
            if category == "number":
                word = "integer" if field.type in ("int", "long") else "double"
            else:
                word = _TYPE_WORDS[category]
            reason = (f"value of filter criterion for field '{label}' must be of type {word} "
                      "and should not be enclosed in quotes")
        return self.error(INVALID_FIELD, literal, reason)

    def decode(self, literal: Literal) -> str:
        """Decode the escape sequences of a string literal outside LIKE."""
        pieces = self._split_escapes(literal, like=False)
        return "".join(piece for _, piece in pieces)

    def like_pattern(self, literal: Literal, *, case_sensitive: bool) -> re.Pattern[str]:
        """Compile a LIKE pattern: % is any run of characters, _ one character."""
        if literal.kind != "string":
            raise self.error(MALFORMED_QUERY, literal,
                             "LIKE needs a quoted string value")
        parts: list[str] = []
        for escaped, piece in self._split_escapes(literal, like=True):
            if escaped:
                parts.append(re.escape(piece))
            elif piece == "%":
                parts.append(".*")
            elif piece == "_":
                parts.append(".")
            else:
                parts.append(re.escape(piece))
        flags = re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE
        return re.compile("".join(parts), flags)

    def _split_escapes(self, literal: Literal, *, like: bool) -> list[tuple[bool, str]]:
        """Split a raw string into (escaped, character) pairs, rejecting unknown escapes."""
        raw = literal.value
        assert isinstance(raw, str)
        pieces: list[tuple[bool, str]] = []
        index = 0
        while index < len(raw):
            char = raw[index]
            if char != "\\":
                pieces.append((False, char))
                index += 1
                continue
            following = raw[index + 1: index + 2]
            if following in _ESCAPES:
                pieces.append((True, _ESCAPES[following]))
                index += 2
            elif like and following in ("%", "_"):
                pieces.append((True, following))
                index += 2
            elif following == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", raw[index + 2: index + 6]):
                pieces.append((True, chr(int(raw[index + 2: index + 6], 16))))
                index += 6
            else:
                sequence = raw[index: index + 2]
                raise self.error(
                    MALFORMED_QUERY, literal,
                    f"Invalid string literal '{raw}'. Illegal character sequence "
                    f"'{sequence}' in string literal.",
                )
        return pieces

    def date_range(self, field: FieldLike, label: str, literal: Literal,
                   now: datetime) -> tuple[object, object]:
        """Return the half-open [start, end) range of a date literal in the field's type."""
        category = field_category(field)
        if category not in ("date", "datetime"):
            raise self.type_error(field, label, literal)
        relative = literal.value
        assert isinstance(relative, RelativeDate)
        start, end = relative_date_range(relative, now.astimezone(UTC).date())
        if category == "date":
            return start, end
        return (datetime.combine(start, time(), tzinfo=UTC),
                datetime.combine(end, time(), tzinfo=UTC))


def relative_date_range(relative: RelativeDate, today: date) -> tuple[date, date]:
    """Return [first day, day after the last) of a date literal, relative to ``today``.

    Ranges follow Salesforce's "Date Formats and Date Literals" page: LAST_N_DAYS:n
    covers today and the n days before it, NEXT_N_DAYS:n the n days after today.
    Days are UTC days because the practice org's users have no time zone of their own.
    """
    day = timedelta(days=1)
    n = relative.n or 0
    if relative.name == "TODAY":
        return today, today + day
    if relative.name == "YESTERDAY":
        return today - day, today
    if relative.name == "TOMORROW":
        return today + day, today + 2 * day
    if relative.name == "LAST_N_DAYS":
        return today - n * day, today + day
    if relative.name == "NEXT_N_DAYS":
        return today + day, today + (n + 1) * day
    # N_DAYS_AGO:n is the single day n days before today.
    return today - n * day, today - (n - 1) * day
