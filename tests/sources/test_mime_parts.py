"""Specification of the multipart reader: the parts Python's email parser (``compat32``) builds, or none.

Well-formed multipart messages are split by the reader itself, and anything
unusual is left to ``BytesParser``. Either way the message tree must be the
parser's: the same parts, header fields and undecoded payloads.
"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser

import pytest

from backstory_desktop.sources.message import _mime_message, _mime_parts, _rebuild_message, split_header

ALTERNATIVE = (
    b"Content-Type: multipart/alternative; boundary=\"alt\"\n\n"
    b"--alt\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    b"Gr\xc3\xbc\xc3\x9fe\n\n"
    b"--alt\nContent-Type: text/html\n\n<p>Hi</p>\n--alt--\n"
)

# Multipart messages that the reader splits itself.
WELL_FORMED = [
    ALTERNATIVE,
    ALTERNATIVE.replace(b"\n", b"\r\n"),
    ALTERNATIVE.removesuffix(b"\n"),
    b"Content-Type: multipart/mixed; boundary=out\n\npreamble\n\n--out \t\n"
    b"Content-Type: multipart/alternative;\n boundary=\"in\"\n\n--in\n\nno header\n--in\nContent-Type:\n"
    b"  text/html\n\n<b>x</b>\n\n--in--\ninner epilogue\n--out\nContent-Disposition: attachment\n"
    b"Content-Type: text/plain\n\nattached\n--out-- \nepilogue\n--out\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n--b\n"
    b"Content-Type: text/plain\n\n\n--b--",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n"
    b"From: a@example.com\nContent-Type: multipart/alternative; boundary=c\n\n--c\n\ninner\n--c--\n\n"
    b"--b\nContent-Type: message/rfc822\n\nSubject: plain\n\nforwarded\n\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=\"a.b+c\"\n\n--a.bbc\n--a.b+c\n\ndot and plus\n--a.b+c--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno closing delimiter\n--b\n\nlast part\n\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno closing delimiter, no last line end",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=c\n\n"
    b"--c\n\ninner part without a closing delimiter\n\n--b\n\nouter part\n--b--\n",
]

# Multipart messages with something unusual, left to BytesParser.
UNUSUAL = [
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\ntwo delimiters in a row\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b--\n\nclosed before it opened\n--b\n\nx\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=\"b\n c\"\n\n--b\n c\n\nline end in the boundary\n--b\n c--\n",
    b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: digest\n\nentry\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nno empty line\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX Broken: name\n\nbody\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=\"b--\"\n\n"
    b"--b--\n\nx\n--b----\n--b--\n",
    b"Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n"
    b"Reporting-MTA: dns; x\n\nAction: failed\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n"
    b"From a@example.com Sat Jan  3 01:05:34 2004\nSubject: x\n\nbody\n--b--\n",
    b"Content-Type: multipart/mixed\n\nno boundary\n",
    # Nested deeper than the reader goes: twelve multipart levels, and twelve forwarded messages.
    b"".join(b"Content-Type: multipart/mixed; boundary=L%02d\n\n--L%02d\n" % (level, level)
             for level in range(12)) + b"\ninnermost\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
    + b"Content-Type: message/rfc822\n\n" * 12 + b"Subject: innermost\n\nbody\n--b--\n",
]

# The parser ends a line at a lone carriage return, so a body with one is left to it before any splitting.
LONE_CARRIAGE_RETURN = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nlone\rcarriage return\n--b--\n"


def _tree(message: Message) -> list[tuple[list[tuple[str, str]], bool, object]]:
    """Return each part's header fields, whether it is multipart, and its payload when that is text."""
    return [
        (part.items(), part.is_multipart(), None if part.is_multipart() else part.get_payload())
        for part in message.walk()
    ]


def _parsed_and_built(data: bytes) -> tuple[Message, Message]:
    fields, body_start = split_header(data)
    parsed = BytesParser(policy=policy.compat32).parsebytes(_rebuild_message(data, fields, body_start))
    return parsed, _mime_message(data, fields, body_start)


@pytest.mark.parametrize("data", [*WELL_FORMED, *UNUSUAL, LONE_CARRIAGE_RETURN])
def test_parts__as_email_parser(data: bytes) -> None:
    parsed, built = _parsed_and_built(data)

    # The reader keeps only the Content-* fields of the top-level message.
    assert built.items() == [(name, value) for name, value in parsed.items() if name.startswith("content-")]
    assert _tree(built)[1:] == _tree(parsed)[1:]


def fast_parts(data: bytes) -> list[Message | str] | None:
    """Return the parts the fast MIME reader makes of a message, or None if it leaves it to the parser."""
    fields, body_start = split_header(data)
    message = Message()
    for name, value in fields:
        message[name] = value.decode("ascii", "surrogateescape")
    return _mime_parts(message, data[body_start:].decode("ascii", "surrogateescape"), ())


@pytest.mark.parametrize("data", WELL_FORMED)
def test_parts__well_formed_split(data: bytes) -> None:
    parts = fast_parts(data)

    assert parts is not None


@pytest.mark.parametrize("data", UNUSUAL)
def test_parts__unusual_left_to_parser(data: bytes) -> None:
    parts = fast_parts(data)

    assert parts is None
