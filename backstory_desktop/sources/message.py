"""Turn the bytes of one e-mail message into a MailActivity, or into a SourceProblem.

Headers are read by a small scanner of our own, so that the raw Message-ID
header is available even when Python's ``email`` package fails on the
message. The ``email`` package (``compat32`` policy, which parses lazily and
does not raise on odd ids) reads the MIME structure for the body text, and
``email.utils`` reads the addresses and the date.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
from datetime import UTC, datetime
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from backstory_desktop.core.activity import MailActivity, Participant, SourceProblem
from backstory_desktop.core.message_id import MessageIdKey, canonical_message_id

logger = logging.getLogger(__name__)

MAX_BODY_CHARACTERS = 32_000

# Errors that Python's email package is known to raise on malformed input:
# IndexError on some Message-ID shapes with policy.default, RecursionError on
# deeply nested address groups, LookupError on unknown charsets.
PARSER_ERRORS: tuple[type[BaseException], ...] = (
    RecursionError,
    IndexError,
    KeyError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    UnicodeError,
    MessageError,
)

# Headers of which at least one must be present for the bytes to count as a message.
_MAIL_HEADERS = frozenset({"from", "to", "cc", "subject", "date", "message-id"})
_HEADER_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
_BROKEN_HEADER_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e][\x20-\x39\x3b-\x7e]{0,76}:")
_COMMENT = re.compile(r"\([^()]*\)")
_SPACED_COLON = re.compile(r"\s*:\s*")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BLOCK_TAG = re.compile(r"<(br|/p|/div|/tr|/li|/h[1-6])\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")
_UTF8_BOM = b"\xef\xbb\xbf"
# C0 control characters other than tab and line feed. Line ends are made "\n" before they are removed.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f]")
# Charsets that mean plain ASCII. Mailers often keep this label on 8-bit text, so such a part with 8-bit
# bytes is decoded as if it declared no charset.
_ASCII_CHARSETS = frozenset({"us-ascii", "ascii"})
# A Message-ID longer than this is left out of a problem's reason; the plan row keeps the raw header anyway.
_MAX_SHOWN_MESSAGE_ID = 255


def is_header_line(line: bytes) -> bool:
    """Tell whether a line starts like an RFC 5322 header field ("Name: value")."""
    return _HEADER_NAME.match(line) is not None


def read_headers(data: bytes) -> list[tuple[str, str]]:
    """Return the header fields of a message as (lower-cased name, raw value) pairs.

    Values keep their folding ("\\n" followed by whitespace).
    """
    return [(name, _decode_header_bytes(value)) for name, value in _split_header(data)[0]]


def _split_header(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """Return the raw header fields and the offset where the body starts.

    The header ends at the first empty line, or at the first line that is
    neither a field nor a continuation line. A field whose name contains a
    space ("X-Some Thing: value", written by broken mailers) is skipped
    rather than ending the header.
    """
    fields: list[tuple[str, bytes]] = []
    position = 0
    skipping = False
    while position < len(data):
        end = data.find(b"\n", position)
        next_position = len(data) if end < 0 else end + 1
        line = data[position : len(data) if end < 0 else end].removesuffix(b"\r")
        if not line:
            return fields, next_position
        if line[:1] in (b" ", b"\t") and (fields or skipping):
            if not skipping:
                name, value = fields[-1]
                fields[-1] = (name, value + b"\n" + line)
        elif is_header_line(line):
            skipping = False
            name_bytes, _, value = line.partition(b":")
            fields.append((name_bytes.strip().decode("ascii").lower(), value.lstrip(b" \t")))
        elif _BROKEN_HEADER_NAME.match(line):
            skipping = True
        else:
            return fields, position
        position = next_position
    return fields, position


def remove_control_characters(text: str) -> tuple[str, int]:
    """Return the text without C0 control characters (NUL and the like) and how many were removed.

    Tab and line feed are kept. "\r\n" and "\r" line ends become "\n" and
    are not counted, so only controls that a Task's Subject or Description
    could not show are reported.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_CHARACTERS.subn("", text)


def control_characters_warning(count: int, field: str) -> str:
    """Return the warning for control characters removed from a field ("subject" or "body")."""
    noun = "character was" if count == 1 else "characters were"
    return f"{count} control {noun} removed from the {field} (such as NUL bytes)"


def cleaned_text(text: str, field: str, warnings: list[str]) -> str:
    """Return the text without control characters, adding a warning to ``warnings`` when any were removed."""
    cleaned, count = remove_control_characters(text)
    if count:
        warnings.append(control_characters_warning(count, field))
    return cleaned


def _rebuild_message(data: bytes) -> bytes:
    """Return the message with malformed header lines left out, for Python's email parser."""
    fields, body_start = _split_header(data)
    header = b"".join(
        name.encode("ascii") + b": " + value + b"\n"
        for name, value in fields
    )
    return header + b"\n" + data[body_start:]


def parse_message_file(data: bytes, source_ref: str) -> MailActivity | SourceProblem:
    """Read a file that contains one message (.eml, Maildir), as ``parse_message`` does.

    A byte order mark and an mbox "From " line before the header, which some
    tools write into single-message files, are skipped.
    """
    data = data.removeprefix(_UTF8_BOM)
    if data.startswith(b"From "):
        first_line_end = data.find(b"\n")
        data = b"" if first_line_end < 0 else data[first_line_end + 1 :]
    return parse_message(data, source_ref)


def parse_message(data: bytes, source_ref: str) -> MailActivity | SourceProblem:
    """Read one message; a message Python's email package cannot read becomes a SourceProblem."""
    headers = read_headers(data)
    message_ids = [value for name, value in headers if name == "message-id"]
    raw_message_id = message_ids[0] if message_ids else None

    if not any(name in _MAIL_HEADERS for name, _ in headers):
        return SourceProblem(
            source_ref=source_ref,
            reason="no mail headers (From, To, Subject, Date or Message-ID): "
            "this is a fragment, not a message",
            raw_header=raw_message_id,
        )

    try:
        return _build_activity(data, headers, message_ids, source_ref)
    except NestedAddressGroups as exc:
        problem = SourceProblem(
            source_ref=source_ref,
            reason=f"the {_message_named(raw_message_id)} could not be read because its {exc.header} "
            "header nests too deeply (address groups inside groups) for Python's email parser, so log this "
            "e-mail by hand or remove the broken addresses from the file",
            raw_header=raw_message_id,
        )
    except PARSER_ERRORS as exc:
        problem = SourceProblem(
            source_ref=source_ref,
            reason=f"the {_message_named(raw_message_id)} could not be read ({_describe_error(exc)})",
            raw_header=raw_message_id,
        )
    # The warning on stderr uses the plan row's words, so it reads the same as the plan.
    logger.warning("%s: %s", problem.source_ref, problem.reason)
    return problem


class NestedAddressGroups(Exception):
    """An address header that Python's ``getaddresses`` cannot read without a RecursionError."""

    def __init__(self, header: str) -> None:
        super().__init__(f"the {header} header nests address groups too deeply")
        self.header = header


def _message_named(raw_message_id: str | None) -> str:
    """Return "message" followed by its Message-ID when the header is plain enough to show in one line."""
    plain = _unfold(raw_message_id or "").strip()
    if not plain or len(plain) > _MAX_SHOWN_MESSAGE_ID or not plain.isprintable():
        return "message"
    return f"message {plain}"


def _build_activity(
    data: bytes, headers: list[tuple[str, str]], message_ids: list[str], source_ref: str
) -> MailActivity:
    message_id = canonical_message_id(message_ids[0] if message_ids else None)
    if len(message_ids) > 1:
        message_id = dataclasses.replace(
            message_id,
            warnings=(
                *message_id.warnings,
                f"{len(message_ids)} Message-ID headers: the first is used",
            ),
        )

    senders = _header_participants(headers, "from")
    recipients = _header_participants(headers, "to") + _header_participants(headers, "cc")
    message = BytesParser(policy=policy.compat32).parsebytes(_rebuild_message(data))
    warnings: list[str] = []
    body_text = cleaned_text(_body_text(message, warnings), "body", warnings)
    subject = cleaned_text(_decode_words(_first(headers, "subject") or ""), "subject", warnings)
    return MailActivity(
        source_ref=source_ref,
        message_id=with_warnings(message_id, warnings),
        subject=subject,
        sender=senders[0] if senders else None,
        recipients=tuple(recipients),
        sent_at=parse_mail_date(_first(headers, "date")),
        body_text=body_text,
    )


def with_warnings(message_id: MessageIdKey, warnings: list[str]) -> MessageIdKey:
    """Return the key with warnings about its message added; the plan shows them on the message's row."""
    if not warnings:
        return message_id
    return dataclasses.replace(message_id, warnings=(*message_id.warnings, *warnings))


def _decode_header_bytes(value: bytes) -> str:
    """Decode raw header bytes: UTF-8 (RFC 6532), else Windows-1252 as old mailers wrote."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", errors="replace")


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for field, value in headers if field == name]


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    values = _values(headers, name)
    return values[0] if values else None


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; text that cannot be decoded is kept as written."""
    unfolded = _unfold(value).strip()
    if "=?" not in unfolded:
        return unfolded
    try:
        return str(make_header(decode_header(unfolded)))
    except (LookupError, ValueError, UnicodeError, AssertionError):
        return unfolded


def _header_participants(headers: list[tuple[str, str]], name: str) -> list[Participant]:
    """Read the addresses of one header; raise NestedAddressGroups in place of a RecursionError."""
    try:
        return participants(_values(headers, name))
    except RecursionError:
        raise NestedAddressGroups(name.title()) from None


def participants(values: list[str]) -> list[Participant]:
    """Read addresses; entries without an "@" (groups, broken pieces) are skipped.

    A RecursionError from getaddresses on pathologically nested groups is
    left to the caller, which reports the whole message.
    """
    seen: set[str] = set()
    participants: list[Participant] = []
    for name, address in getaddresses([_unfold(value) for value in values]):
        email = address.strip().lower()
        local, _, domain = email.rpartition("@")
        if not local or not domain or email in seen:
            continue
        seen.add(email)
        participants.append(Participant(name=_decode_words(name), email=email))
    return participants


def parse_mail_date(value: str | None) -> datetime | None:
    """Return the Date header as an aware datetime; "-0000" and no zone are read as UTC."""
    if not value or not value.strip():
        return None
    # Obsolete syntax allows comments and spaces inside the time ("09(comment):   55  :  06").
    text = _COMMENT.sub(" ", _unfold(value))
    text = _SPACED_COLON.sub(":", text).strip()
    try:
        parsed = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _body_text(message: Message, warnings: list[str]) -> str:
    """Return the first inline text/plain part, else the first text/html part as plain text.

    A note about how the body was decoded is added to ``warnings``.
    """
    plain: str | None = None
    markup: str | None = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if str(part.get("Content-Disposition") or "").strip().lower().startswith("attachment"):
            continue
        subtype = part.get_content_subtype()
        if subtype == "plain" and plain is None:
            plain = _part_text(part, warnings)
        elif subtype == "html" and markup is None:
            markup = _part_text(part, warnings)
    if plain is not None and plain.strip():
        text = plain
    elif markup is not None:
        text = html_to_text(markup)
    else:
        text = plain or ""
    return text.strip()[:MAX_BODY_CHARACTERS]


def _part_text(part: Message, warnings: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset()
    if charset is None or (charset in _ASCII_CHARSETS and not payload.isascii()):
        return _decode_undeclared(payload, "declares no charset", warnings)
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return _decode_undeclared(payload, f"declares the unknown charset {charset!r}", warnings)


def _decode_undeclared(payload: bytes, charset_note: str, warnings: list[str]) -> str:
    """Decode a body without a usable charset as the headers are: UTF-8, else Windows-1252."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        warnings.append(f"the body {charset_note} and is not UTF-8: it was read as Windows-1252")
        return payload.decode("cp1252", errors="replace")


def html_to_text(markup: str) -> str:
    """Strip HTML to readable text; good enough for a Task description, not a renderer."""
    text = _SCRIPT_OR_STYLE.sub(" ", markup)
    text = _BLOCK_TAG.sub("\n", text)
    text = html.unescape(_TAG.sub(" ", text))
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", text)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "its structure nests too deeply for Python's email parser"
    detail = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {detail[:200]}" if detail else name
