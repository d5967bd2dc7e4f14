"""Specification of the fast paths of mail reading: header splitting, plain addresses, single-part bodies.

Each fast path must give what the general path gives: the line rules of the
header scanner, ``email.utils.getaddresses``, and Python's email parser.
The mbox reader must find the same messages whatever its buffer size.
"""

from __future__ import annotations

import random
import re
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.sources import mbox
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.sources.message import (
    _mime_message,
    _rebuild_message,
    remove_control_characters,
    simple_addresses,
    split_header,
)

# Header bytes, then the fields and the body offset that the line-by-line rules give.
HEADER_CASES = [
    (
        b"Subject: plain\nTo: a@example.com\n\nbody\n",
        [("subject", b"plain"), ("to", b"a@example.com")],
        34,
    ),
    (
        b"Subject: folded\n  second line\n\tthird\nTo: a@example.com\n\nbody",
        [("subject", b"folded\n  second line\n\tthird"), ("to", b"a@example.com")],
        56,
    ),
    (
        b"Subject: crlf\r\n  folded\r\nTo: a@example.com\r\n\r\nbody\r\n",
        [("subject", b"crlf\n  folded"), ("to", b"a@example.com")],
        46,
    ),
    (b"Subject:\n  empty first line\n\nbody", [("subject", b"\n  empty first line")], 29),
    (b"X-Broken Name: skipped\n  its continuation\nSubject: kept\n\nbody", [("subject", b"kept")], 57),
    (b"Subject: stops here\nnot a header line\nTo: a@example.com\n\n", [("subject", b"stops here")], 20),
    (
        b"Subject: inner\rcarriage return\nTo: a@example.com\n\n",
        [("subject", b"inner\rcarriage return"), ("to", b"a@example.com")],
        50,
    ),
    (b"Subject: no body and no line end", [("subject", b"no body and no line end")], 32),
    (b"Subject: spaces before blank\n   \n\nbody", [("subject", b"spaces before blank\n   ")], 34),
    (b"\nSubject: after a blank first line\n", [], 1),
    (b" continuation first\nSubject: x\n\n", [], 0),
    (
        b"Subject : space before colon\nSubject:\ttab\n\r\nbody",
        [("subject", b"space before colon"), ("subject", b"tab")],
        44,
    ),
    (b"Subject: folded at end\n  last", [("subject", b"folded at end\n  last")], 29),
]


@pytest.mark.parametrize(("data", "fields", "body_start"), HEADER_CASES)
def test_split_header__line_rules(data: bytes, fields: list[tuple[str, bytes]], body_start: int) -> None:
    split_fields, split_body_start = split_header(data)

    assert split_fields == fields
    assert split_body_start == body_start


ADDRESS_CASES = [
    "ann@example.com",
    "Ann Lee <ann@example.com>",
    '"Lee, Ann" <ann@example.com>, bob@example.org',
    '"" <ann@example.com>',
    "Ann\t Q.  Lee<ann@example.com>  ,  <bob@example.org>",
    '"ann@example.com" <ann@example.com>',
    "=?utf-8?q?J=C3=B6rg?= <jorg@example.com>",
    "Zoë <zoe@exämple.com>",
    "ann@example.com,",
    "",
]

FALLBACK_CASES = [
    "ann@example.com (Ann Lee)",
    "undisclosed-recipients:;",
    'Ann "\\"quoted\\"" <ann@example.com>',
    "ann@example.com, , bob@example.org",
    "ann@example.com, ",
    "Ann <ann@[192.0.2.1]>",
    "ann",
    "Ann\xa0Lee <ann@example.com>",
    "Ann <ann@example.com> trailing",
]


@pytest.mark.parametrize("value", ADDRESS_CASES)
def test_simple_addresses__as_getaddresses(value: str) -> None:
    assert simple_addresses([value]) == getaddresses([value])


@pytest.mark.parametrize("value", FALLBACK_CASES)
def test_simple_addresses__other_forms_fall_back(value: str) -> None:
    assert simple_addresses([value]) is None


def test_simple_addresses__several_values_joined() -> None:
    values = ["Ann <ann@example.com>", "bob@example.org, Carla <carla@example.net>"]

    assert simple_addresses(values) == getaddresses(values)


def test_simple_addresses__random_lists_as_getaddresses() -> None:
    pieces = [
        "a", "b", ".", "@", '"', " ", "\t", "<", ">", ",", "x.y", "é", "\xa0", "=?u?q?a?=", "(", ")",
        "\\", ";", ":", "[", "]", "\x01", "@d.e", "Na me", '"q, r"', '""',
    ]
    generator = random.Random(20240105)
    compared = 0
    for _ in range(20_000):
        value = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 12)))
        simple = simple_addresses([value])
        if simple is None:
            continue
        compared += 1
        assert simple == getaddresses([value]), value
    # Enough random values take the fast path for the comparison to mean something.
    assert compared > 1_000


SINGLE_PART_MESSAGES = [
    b"Subject: plain\n\nHello.\n",
    b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe\n",
    b"Content-Type: text/plain; charset=latin-1\n\n8-bit \xe9 without a line end",
    b"Content-Type: text/html\nContent-Transfer-Encoding: base64\n\nPGI+Qm9sZDwvYj4=\n",
    b"Content-Transfer-Encoding: quoted-printable\nContent-Type: TEXT/PLAIN\n\nsoft=\nbreak =C3=A9\r\n",
    b"Content-Type: text/plain\nContent-Type: text/html\n\nfirst header wins\n",
    b"Content-Disposition: attachment; filename=a.txt\n\nattached\n",
    b"Subject: carriage\rreturn in a header\nContent-Type: text/plain\n\nbody\n",
    b"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain\n--b--\n",
    b"Content-Type: message/rfc822\n\nSubject: inner\n\ninner body\n",
]


@pytest.mark.parametrize("data", SINGLE_PART_MESSAGES)
def test_mime_message__as_email_parser(data: bytes) -> None:
    fields, body_start = split_header(data)
    parsed = BytesParser(policy=policy.compat32).parsebytes(_rebuild_message(data, fields, body_start))

    built = _mime_message(data, fields, body_start)

    parsed_content = [(name, value) for name, value in parsed.items() if name.startswith("content-")]
    built_content = [(name, value) for name, value in built.items() if name.startswith("content-")]
    assert built_content == parsed_content
    assert [part.get_content_type() for part in built.walk()] == [
        part.get_content_type() for part in parsed.walk()
    ]
    assert [part.get_payload(decode=True) for part in built.walk()] == [
        part.get_payload(decode=True) for part in parsed.walk()
    ]


CONTROL_CASES = [
    "plain text\twith a tab\nand a line\n",
    "Gr\u00fc\u00dfe \u2028 and \u0085, which are not C0 controls",
    "crlf\r\nline ends\r\n",
    "lone\rcarriage return",
    "NUL\x00 and escape\x1b",
    "caf\u00e9\x0bvertical tab",
    "surrogate escape \udce9\x07 bell",
    "",
]


@pytest.mark.parametrize("text", CONTROL_CASES)
def test_control_characters__as_pattern(text: str) -> None:
    # The general path: line ends made "\n", then every C0 control but tab and line feed removed.
    expected = re.subn(r"[\x00-\x08\x0b-\x1f]", "", text.replace("\r\n", "\n").replace("\r", "\n"))

    assert remove_control_characters(text) == expected


SEPARATOR = b"From sender@example.com Sat Jan  3 01:05:34 2004\n"

# Messages with every rule of the splitter near each other, every line shorter than 64 bytes.
MAILBOX_PARTS = [
    SEPARATOR,
    b"From: Ann <ann@example.com>\nSubject: folded\n  subject line\nMessage-ID: <one@x.example>\n\n",
    b"Hello.\n>From the quoted line.\nFrom here on, we agree.\n",
    # Read from any byte but the line's first, this line would start with a separator.
    b"Seen: From a@b.example Sat Jan  3 01:05:34 2004\nNote: a header-like line\n\n",
    SEPARATOR,
    b"From: Bob <bob@example.com>\r\nMessage-ID:\r\n <two@x.example>\r\n\r\nCRLF body\r\n\r\n",
    SEPARATOR,
    b"From: Carla <carla@example.com>\nMessage-ID: <three@x.example>\nContent-Length: 63\n\n",
    b"From nobody@example.com Sat Jan  3 01:05:34 2004\nnot a header\n\n",
    SEPARATOR,
    b"From: Dan <dan@example.com>\nMessage-ID: <counted@x.example>\nContent-Length: 44\n\n",
    b">From quoted in a counted body\nsecond line\n\n",
    SEPARATOR,
    b"From: Dan <dan@example.com>\nMessage-ID: <four@x.example>\n   \n",
    b"From someone@example.com Sat Jan  3 01:05:34 2004\nbody, not a separator\n\n",
    b"From -\nFrom: Eve <eve@example.com>\nMessage-ID: <five@x.example>\n\nlast line without end",
]


def test_mbox__buffer_size_keeps_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rules.mbox"
    path.write_bytes(b"".join(MAILBOX_PARTS))
    expected = list(read_mbox(path))
    assert len(expected) == 6

    # With reads of 64 bytes and more, lines, folded headers, "From " lines and counted bodies cross buffer
    # ends at many offsets. No line is longer than 64 bytes, so none is read in chunks.
    monkeypatch.setattr(mbox, "_MAX_CHUNK_BYTES", 64)
    for block_bytes in range(64, 400):
        monkeypatch.setattr(mbox, "_BLOCK_BYTES", block_bytes)
        assert list(read_mbox(path)) == expected, block_bytes


def test_mbox__separator_after_long_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The body line is read in two chunks, and the separator line right after it starts a message.
    monkeypatch.setattr(mbox, "_MAX_CHUNK_BYTES", 64)
    path = tmp_path / "long-line.mbox"
    path.write_bytes(
        SEPARATOR
        + b"From: Ann <ann@example.com>\nMessage-ID: <long@x.example>\n\n"
        + b"x" * 100
        + b"\n"
        + SEPARATOR
        + b"From: Bob <bob@example.com>\nMessage-ID: <after@x.example>\n\nHello.\n"
    )

    keys = [item.message_id.key for item in read_mbox(path) if isinstance(item, MailActivity)]

    assert keys == ["<long@x.example>", "<after@x.example>"]
