"""Turn the bytes of one e-mail message into a MailActivity, or into a SourceProblem.

Headers are read by a small scanner of our own, so that the raw Message-ID
header is available even when Python's ``email`` package fails on the
message. The ``email`` package (``compat32`` policy, which parses lazily and
does not raise on odd ids) reads the MIME structure for the body text, and
``email.utils`` reads the addresses and the date.

Three shortcuts keep a large mbox fast, each giving what the general path
gives: the header is split once per message, a message that is not
multipart is built from the split fields rather than parsed again, and
address lists of the plain forms are read with one regular expression
rather than ``getaddresses``.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
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
# A header field and its continuation lines, ending with a line feed: the name, then the value without the
# spaces after the colon and without the last line end.
_WELL_FORMED_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)\n")
_WELL_FORMED_FIELDS = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n)*")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
# Lower-cased field names by their raw bytes. Names repeat from message to message, so one lookup replaces a
# decode and a lower() per field. The size limit keeps hostile mail with endless new names from growing it.
_FIELD_NAMES: dict[bytes, str] = {}
_MAX_FIELD_NAMES = 4096
# A header field of a MIME part and the run of such fields, as the email parser's header lines: the name,
# then the rest of the field with its line ends.
_PART_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):([^\n]*\n(?:[ \t][^\n]*\n)*)")
_PART_FIELDS = re.compile(r"(?:[\x21-\x39\x3b-\x7e]+:[^\n]*\n(?:[ \t][^\n]*\n)*)*")
# The end of a delimiter line after its boundary: "--" on the closing delimiter, then spaces or tabs.
_DELIMITER_REST = re.compile(r"(--)?[ \t]*\r?$", re.MULTILINE)
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
_CONTROL_BYTES = bytes(range(0x20)).translate(None, b"\t\n")
# Charsets that mean plain ASCII. Mailers often keep this label on 8-bit text, so such a part with 8-bit
# bytes is decoded as if it declared no charset.
_ASCII_CHARSETS = frozenset({"us-ascii", "ascii"})
# An atom of an address as email.utils.getaddresses reads one: no specials, spaces or control characters.
# Unicode spaces are left out too, because getaddresses drops an atom that str.strip() empties.
_ADDRESS_ATOM = r"[^\s\x00-\x1f\x7f()<>@,:;.\"\[\]\\]+"
_ADDRESS = rf"{_ADDRESS_ATOM}(?:\.{_ADDRESS_ATOM})*@{_ADDRESS_ATOM}(?:\.{_ADDRESS_ATOM})*"
# A display name: atoms, which may contain dots, quoted strings without quotes, backslashes or controls
# inside, and spaces or tabs. Each character can match only one branch, so no other split of the name
# could match: the runs are taken possessively, which saves the regex engine a step per character and
# cannot backtrack exponentially on a hostile header.
_NAME_ATOM = r"[^\s\x00-\x1f\x7f()<>@,:;\"\[\]\\]"
_NAME_QUOTED = r"\"[^\"\\\x00-\x08\x0a-\x1f\x7f]*\""
# One entry of an address list and the comma after it.
_SIMPLE_ADDRESS = re.compile(
    rf"[ \t]*(?:({_ADDRESS})|((?:{_NAME_ATOM}++|{_NAME_QUOTED}|[ \t]++)*+)<({_ADDRESS})>)[ \t]*(?:,|\Z)"
)
_NAME_TOKEN = re.compile(rf"\"([^\"]*)\"|({_NAME_ATOM}+)")
# A Message-ID longer than this is left out of a problem's reason; the plan row keeps the raw header anyway.
_MAX_SHOWN_MESSAGE_ID = 255


def is_header_line(line: bytes) -> bool:
    """Tell whether a line starts like an RFC 5322 header field ("Name: value")."""
    return _HEADER_NAME.match(line) is not None


def read_headers(data: bytes) -> list[tuple[str, str]]:
    """Return the header fields of a message as (lower-cased name, raw value) pairs.

    Values keep their folding ("\\n" followed by whitespace).
    """
    return [(name, _decode_header_bytes(value)) for name, value in split_header(data)[0]]


def split_header(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """Return the raw header fields, as (lower-cased name, value) pairs, and the offset where the body starts.

    The header ends at the first empty line, or at the first line that is
    neither a field nor a continuation line. A field whose name contains a
    space ("X-Some Thing: value", written by broken mailers) is skipped
    rather than ending the header. Folded values keep their folding, with
    "\\n" as the line end.
    """
    limit = _header_limit(data)
    # The leading run of well-formed fields, most of any header, is split by one search. The line loop
    # below reads the rest (the empty line at least), applying every rule.
    run = _WELL_FORMED_FIELDS.match(data, 0, limit)
    position = 0 if run is None else run.end()
    found = _WELL_FORMED_FIELD.findall(data, 0, position)
    if data.find(b"\r", 0, position) < 0:
        fields = [(_FIELD_NAMES.get(name) or _field_name(name), value) for name, value in found]
    else:
        fields = [(_field_name(name), _without_carriage_returns(value)) for name, value in found]

    # The lines of the last field while it is being unfolded, joined once the field ends.
    folded: list[bytes] = []
    skipping = False
    for raw_line in data[position:limit].split(b"\n"):
        next_position = position + len(raw_line) + 1
        line = raw_line.removesuffix(b"\r")
        if not line:
            _close_folded(fields, folded)
            return fields, min(next_position, len(data))
        if line[:1] in (b" ", b"\t") and (fields or skipping):
            if not skipping:
                if not folded:
                    folded.append(fields[-1][1])
                folded.append(line)
        elif _HEADER_NAME.match(line) is not None:
            _close_folded(fields, folded)
            skipping = False
            name_bytes, _, value = line.partition(b":")
            fields.append((name_bytes.strip().decode("ascii").lower(), value.lstrip(b" \t")))
        elif _BROKEN_HEADER_NAME.match(line):
            _close_folded(fields, folded)
            skipping = True
        else:
            _close_folded(fields, folded)
            return fields, position
        position = next_position
    _close_folded(fields, folded)
    return fields, min(position, len(data))


def _field_name(name: bytes) -> str:
    """Return a field name lower-cased, keeping it in ``_FIELD_NAMES`` while that has room."""
    lowered = name.decode("ascii").lower()
    if len(_FIELD_NAMES) < _MAX_FIELD_NAMES:
        _FIELD_NAMES[name] = lowered
    return lowered


def _without_carriage_returns(value: bytes) -> bytes:
    """Remove the carriage return of each "\\r\\n" line end and a final one, as split_header's loop does."""
    return value.replace(b"\r\n", b"\n").removesuffix(b"\r")


def _header_limit(data: bytes) -> int:
    """Return an offset at or past the end of the first empty line, so the body is not split into lines."""
    limit = len(data)
    for blank_line in (b"\n\n", b"\n\r\n"):
        found = data.find(blank_line, 0, limit)
        if found >= 0:
            limit = found + len(blank_line)
    return limit


def _close_folded(fields: list[tuple[str, bytes]], folded: list[bytes]) -> None:
    """Replace the value of the last field by its joined lines when it was folded."""
    if folded:
        fields[-1] = (fields[-1][0], b"\n".join(folded))
        folded.clear()


def remove_control_characters(text: str) -> tuple[str, int]:
    """Return the text without C0 control characters (NUL and the like) and how many were removed.

    Tab and line feed are kept. "\r\n" and "\r" line ends become "\n" and
    are not counted, so only controls that a Task's Subject or Description
    could not show are reported.
    """
    # Control characters are ASCII bytes, which UTF-8 uses for nothing else, and bytes.translate finds them
    # faster than a regular expression. "\r" is among them, so text with a line end to replace is not
    # returned here.
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded.translate(None, _CONTROL_BYTES)) == len(encoded):
        return text, 0
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


def _mime_message(data: bytes, fields: list[tuple[str, bytes]], body_start: int) -> Message:
    """Return the message as Python's email parser (``compat32``) reads it, malformed header lines left out.

    The top-level message keeps only its Content-* fields, because the body
    text reads no others there. A message that is not multipart and not
    message/* is built here from those fields in order and the body as one
    string, which is what the parser builds for such a message. Other
    messages are parsed with ``BytesParser``. A header value that contains a
    carriage return, which the parser reads as a line end, can move the
    parser's end of the header, so then every field is parsed with the body.
    """
    # The values are cut from the header, so a header without a carriage return gives none.
    if data.find(b"\r", 0, body_start) >= 0 and any(b"\r" in value for _, value in fields):
        return BytesParser(policy=policy.compat32).parsebytes(_rebuild_message(data, fields, body_start))

    content_fields = [(name, value) for name, value in fields if name.startswith("content-")]
    message = Message(policy=policy.compat32)
    for name, value in content_fields:
        # BytesParser decodes the message as ASCII with surrogate escapes, so 8-bit bytes round-trip.
        message[name] = value.decode("ascii", "surrogateescape")
    maintype = message.get_content_maintype()
    if maintype == "multipart":
        text = data[body_start:].decode("ascii", "surrogateescape")
        # The parser ends a line at a lone carriage return too; text without one splits as it does.
        if "\r" not in text or text.count("\r") == text.count("\r\n"):
            parts = _mime_parts(message, text, ())
            if parts is not None:
                message.set_payload(parts)
                return message
    if maintype in ("multipart", "message"):
        return BytesParser(policy=policy.compat32).parsebytes(
            _rebuild_message(data, content_fields, body_start)
        )
    message.set_payload(data[body_start:].decode("ascii", "surrogateescape"))
    return message


# Levels of multipart and message/* parts read without the parser. Each level copies its part's
# text, so deeper mail, rare in practice, goes to BytesParser, whose memory does not grow with depth.
MAX_SPLIT_DEPTH = 8


def _mime_parts(message: Message, text: str, outer: tuple[str, ...], depth: int = 0,
                ) -> list[Message | str] | None:
    """Return the parts of a multipart message as Python's email parser (``compat32``) builds them.

    Only the common, well-formed layout is read. Its boundary cannot be
    mistaken for an enclosing one. A delimiter line comes before the first
    part, and no two delimiter lines follow each other. A closing delimiter
    ends the parts, or else the end of the text does. Each part's header fields are "Name: value" lines that
    end at an empty line. Parts that are multipart, and messages in
    message/* parts, are read the same way.

    Return None for anything else, and for multipart/digest (whose parts
    default to message/rfc822) and message/delivery-status, so that the
    caller parses the message with ``BytesParser``. As in the parser (RFC
    2046 section 5.1.1), the line end before a delimiter line belongs to
    the delimiter.
    """
    boundary = message.get_boundary()
    if depth >= MAX_SPLIT_DEPTH or not boundary or message.get_content_type() == "multipart/digest":
        return None
    # The parser matches a delimiter within one line, so a boundary with a line end in it matches none.
    if "\n" in boundary or "\r" in boundary:
        return None
    for enclosing in outer:
        if boundary.startswith(enclosing) and not boundary[len(enclosing) :].strip(" \t-"):
            return None
    delimiters = _delimiters(text, boundary)
    closing = next((index for index, (_, _, closes) in enumerate(delimiters) if closes), None)
    if closing is None:
        # Without a closing delimiter, the parser ends the last part at the end of the text.
        closing = len(delimiters)
        delimiters.append((len(text), len(text), True))
    if closing == 0:
        return None
    # A list of Message or str, as Message.set_payload is typed.
    parts: list[Message | str] = []
    for (_, opening_end, _), (following_start, _, _) in itertools.pairwise(delimiters[: closing + 1]):
        part_text = text[opening_end + 1 : following_start]
        if not part_text:
            return None
        part = _mime_part(part_text, (*outer, boundary), depth + 1)
        if part is None:
            return None
        parts.append(part)
    return parts


def _mime_part(text: str, outer: tuple[str, ...], depth: int) -> Message | None:
    """Return one part of a multipart body (its lines up to the next delimiter) as the parser builds it.

    The message in the body of a message/* part is read by this function too.
    """
    header = _PART_FIELDS.match(text)
    header_end = 0 if header is None else header.end()
    if text.startswith("\n", header_end):
        body_start = header_end + 1
    elif text.startswith("\r\n", header_end):
        body_start = header_end + 2
    else:
        return None
    part = Message(policy=policy.compat32)
    for name, value in _PART_FIELD.findall(text, 0, header_end):
        # The parser's compat32 header_source_parse: spaces after the colon and line ends at the end removed.
        part.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    maintype = part.get_content_maintype()
    body = text[body_start:]
    if maintype == "message":
        # The parser reads the body of a message/* part other than message/delivery-status as one message.
        # It removes the line end before the next delimiter from the last message it made, the innermost.
        if part.get_content_type() == "message/delivery-status":
            return None
        if depth >= MAX_SPLIT_DEPTH:
            return None
        enclosed = _mime_part(body, outer, depth + 1)
        if enclosed is None:
            return None
        part.set_payload([enclosed])
    elif maintype == "multipart":
        parts = _mime_parts(part, body, outer, depth)
        if parts is None:
            return None
        part.set_payload(parts)
    else:
        part.set_payload(body.removesuffix("\n").removesuffix("\r") if body.endswith("\n") else body)
    return part


def _delimiters(text: str, boundary: str) -> list[tuple[int, int, bool]]:
    """Return the delimiter lines of a boundary: where each starts, where its line end starts, if it closes.

    A delimiter line is "--", the boundary, "--" on the closing one, then
    spaces or tabs, as the parser's pattern for each line.
    """
    separator = "--" + boundary
    found: list[tuple[int, int, bool]] = []
    start = text.find(separator)
    while start >= 0:
        if start == 0 or text[start - 1] == "\n":
            rest = _DELIMITER_REST.match(text, start + len(separator))
            if rest is not None:
                found.append((start, rest.end(), rest.group(1) is not None))
        start = text.find(separator, start + len(separator))
    return found


def _rebuild_message(data: bytes, fields: list[tuple[str, bytes]], body_start: int) -> bytes:
    """Return the message with malformed header lines left out, for Python's email parser."""
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
    fields, body_start = split_header(data)
    return parse_split_message(data, fields, body_start, source_ref)


def parse_split_message(
    data: bytes, fields: list[tuple[str, bytes]], body_start: int, source_ref: str
) -> MailActivity | SourceProblem:
    """Read one message whose header ``split_header`` has already split, as ``parse_message`` does."""
    headers = [(name, _decode_header_bytes(value)) for name, value in fields if name in _MAIL_HEADERS]
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
        return _build_activity(data, (fields, body_start), headers, message_ids, source_ref)
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
    data: bytes,
    split: tuple[list[tuple[str, bytes]], int],
    headers: list[tuple[str, str]],
    message_ids: list[str],
    source_ref: str,
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
    message = _mime_message(data, *split)
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
    return _FOLDING.sub("", value) if "\n" in value else value


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
    unfolded = [_unfold(value) for value in values]
    addresses = simple_addresses(unfolded)
    if addresses is None:
        return _distinct_participants(getaddresses(unfolded))
    seen: set[str] = set()
    participants: list[Participant] = []
    for name, address in addresses:
        # simple_addresses reads only "local@domain" with atoms on both sides and no spaces, which
        # _distinct_participants checks for, and names without line ends, which _decode_words unfolds.
        email = address.lower()
        if email in seen:
            continue
        seen.add(email)
        display_name = _decode_words(name) if "=?" in name else name.strip()
        participants.append(Participant(name=display_name, email=email))
    return participants


def _distinct_participants(addresses: list[tuple[str, str]]) -> list[Participant]:
    """Return the addresses with an "@" between a local part and a domain, each address once."""
    seen: set[str] = set()
    participants: list[Participant] = []
    for name, address in addresses:
        email = address.strip().lower()
        local, _, domain = email.rpartition("@")
        if not local or not domain or email in seen:
            continue
        seen.add(email)
        participants.append(Participant(name=_decode_words(name) if name else "", email=email))
    return participants


def simple_addresses(values: list[str]) -> list[tuple[str, str]] | None:
    """Read address lists of the plain forms "local@domain" and "Name <local@domain>", as getaddresses does.

    The name may be made of atoms and quoted strings without backslashes.
    Return None when any entry has another form (comments, groups, domain
    literals, escapes, empty entries, control characters), so that
    ``email.utils.getaddresses`` reads the values instead. getaddresses
    reads one character at a time, which made it the largest cost of an
    mbox import, and most address headers have only these forms.

    NOTE: the tests compare it with getaddresses of Python 3.11. Later
    versions parse strictly by default, which is expected to leave these
    forms unchanged, but that has not been run.
    """
    addresses: list[tuple[str, str]] = []
    # getaddresses joins the values with ", " too, so both read the same entries.
    joined = ", ".join(values)
    position = 0
    while position < len(joined):
        match = _SIMPLE_ADDRESS.match(joined, position)
        if match is None:
            return None
        bare, name, routed = match.groups()
        if bare is not None:
            addresses.append(("", bare))
        elif '"' not in name:
            # Without quoted strings, the only spaces in the name are the spaces and tabs between atoms.
            addresses.append((" ".join(name.split()), routed))
        else:
            # getaddresses joins the atoms and quoted strings of a name with one space. findall returns ""
            # for the group that did not match, so "quoted or atom" is the token, even for "".
            words = [quoted or atom for quoted, atom in _NAME_TOKEN.findall(name)]
            addresses.append((" ".join(words), routed))
        position = match.end()
    return addresses


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
