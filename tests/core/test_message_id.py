"""Specification of the canonical Message-ID key: every spelling of one id gives one key."""

from __future__ import annotations

import json
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.core.message_id import (
    MAX_KEY_LENGTH,
    canonical_message_id,
    key_spellings,
    normalise_key,
)
from backstory_desktop.sources.message import PARSER_ERRORS, parse_message_file, read_headers
from tests.conftest import MAIL_CORPUS

# (raw header value, expected key) for the spellings found in real mail.
SPELLINGS = [
    ("<abc123@example.com>", "<abc123@example.com>"),
    ("abc123@example.com", "<abc123@example.com>"),
    ("  <abc123@example.com>  ", "<abc123@example.com>"),
    ("\r\n <abc123@example.com>", "<abc123@example.com>"),
    ("\n\t<abc123@example.com>\n", "<abc123@example.com>"),
    ("<NMID-105-1232@communication.exa\r\n\tmple.com>", "<NMID-105-1232@communication.example.com>"),
    ("<1234   @   local(blah)  .machine .example>", "<1234@local.machine.example>"),
    ("<abc123@example.com> (sent by the list)", "<abc123@example.com>"),
    ("\u00a0<abc123@example.com>\u00a0", "<abc123@example.com>"),
    ("<abc123@example.com\u200b>", "<abc123@example.com>"),
    (
        "=?utf-8?q?=3C20230928-jag-sysctl=5Fremove=5Fempty=5Felem=5Fdrive?=\n"
        " =?utf-8?q?rs-v1-12-e59120fca9f9=40samsung=2Ecom=3E?=",
        "<20230928-jag-sysctl_remove_empty_elem_drivers-v1-12-e59120fca9f9@samsung.com>",
    ),
    ("=?us-ascii?b?PGFiYzEyM0BleGFtcGxlLmNvbT4=?=", "<abc123@example.com>"),
    ("MSG961029151201#15@server1.opensoft.com", "<MSG961029151201#15@server1.opensoft.com>"),
    ("<été.1@exämple.example>", "<été.1@exämple.example>"),
]


@pytest.mark.parametrize(("raw", "expected"), SPELLINGS)
def test_message_id__spelling_gives_canonical_key(raw: str, expected: str) -> None:
    result = canonical_message_id(raw)
    assert result.problem is None
    assert result.key == expected
    assert result.raw == raw


# Characters that mean something in a URL path, a query string or SOQL stay exactly as sent.
HOSTILE_KEYS = [
    "<a/b@x.example>",
    "<CAEA+Pe0Bx+y/Zq==@mail.gmail.com>",
    "<a#frag@x.example>",
    "<a?b=c@x.example>",
    "<a/../../../Case/500000000000001AAA#@attacker.example>",
    "<o'neil.20240101@example.com>",
    "<a_b%c@example.com>",
    "<back\\slash@example.com>",
    "<50%25off@example.com>",
]


@pytest.mark.parametrize("raw", HOSTILE_KEYS)
def test_message_id__special_characters_are_kept_exactly(raw: str) -> None:
    result = canonical_message_id(raw)
    assert result.key == raw
    assert result.problem is None


def test_message_id__bare_and_bracketed_ids_give_one_key() -> None:
    bare = canonical_message_id("faff5b13bff19cf16f0fbf46edb721e3@example.com")
    bracketed = canonical_message_id("<faff5b13bff19cf16f0fbf46edb721e3@example.com>")
    assert bare.key == bracketed.key == "<faff5b13bff19cf16f0fbf46edb721e3@example.com>"
    assert "the id has no angle brackets" in bare.warnings
    assert bracketed.warnings == ()


def test_message_id__id_without_at_is_keyed_and_flagged() -> None:
    result = canonical_message_id("3a53c9f2-1a8e-41f0-bb95-58c8029e16f0")
    assert result.key == "<3a53c9f2-1a8e-41f0-bb95-58c8029e16f0>"
    assert result.problem is None
    assert "no @ in the id" in result.warnings


def test_message_id__several_ids_use_the_first_with_warning() -> None:
    result = canonical_message_id("<first@example.com> <second@example.com>")
    assert result.key == "<first@example.com>"
    assert "2 ids in one header: the first is used" in result.warnings


def test_message_id__bare_words_not_keyed() -> None:
    result = canonical_message_id("renewal-2026 at mail.example.com")

    assert result.key is None
    assert result.problem is not None
    assert "no angle brackets and contains spaces" in result.problem


def test_message_id__square_bracket_id_is_keyed_as_written() -> None:
    # This shape makes Python's email package raise IndexError with policy.default.
    result = canonical_message_id("<[ABCDEF====@mail.example.com]>")
    assert result.key == "<[ABCDEF====@mail.example.com]>"
    assert any("not in RFC 5322 form" in warning for warning in result.warnings)


def test_message_id__absent_header_has_no_key() -> None:
    result = canonical_message_id(None)
    assert result.key is None
    assert result.problem == "no Message-ID header"
    assert result.raw == ""


@pytest.mark.parametrize("raw", ["", "   ", "\r\n \t"])
def test_message_id__empty_header_has_no_key(raw: str) -> None:
    result = canonical_message_id(raw)
    assert result.key is None
    assert result.problem == "the Message-ID header is empty"
    assert result.raw == raw


def test_message_id__empty_brackets_have_no_key() -> None:
    result = canonical_message_id("<>")
    assert result.key is None
    assert result.problem == "the id is empty (<>)"


def test_message_id__key_of_exactly_255_characters_is_kept() -> None:
    local = "a" * (MAX_KEY_LENGTH - len("<@x.example>"))
    result = canonical_message_id(f"<{local}@x.example>")
    assert result.key is not None
    assert len(result.key) == MAX_KEY_LENGTH


def test_message_id__overlong_id_is_never_truncated() -> None:
    local = "a" * (MAX_KEY_LENGTH - len("<@x.example>") + 1)
    raw = f"<{local}@x.example>"
    result = canonical_message_id(raw)
    assert result.key is None
    assert result.problem is not None
    assert "256 characters" in result.problem
    assert "not truncated" in result.problem
    assert result.raw == raw


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("<a\x00b@example.com>", "the id contains control characters"),
        ("<caf\ufffd@example.com>", "the id contains bytes that are not valid UTF-8"),
        ("<a<b@example.com>", "the id contains an angle bracket inside it"),
    ],
)
def test_message_id__unsafe_id_has_problem_and_raw(raw: str, problem: str) -> None:
    result = canonical_message_id(raw)
    assert result.key is None
    assert result.problem == problem
    assert result.raw == raw


def test_message_id__space_inside_id_is_removed_with_warning() -> None:
    result = canonical_message_id("<with space@x.example>")
    assert result.key == "<withspace@x.example>"
    assert "whitespace inside the id was removed" in result.warnings


def test_key_spellings__bracketed_and_bare() -> None:
    assert key_spellings("<x@y.example>") == ("<x@y.example>", "x@y.example")
    assert key_spellings("x@y.example") == ("<x@y.example>", "x@y.example")


def test_normalise_key__brackets_whitespace_and_case() -> None:
    assert normalise_key(" <ABC123@Example.COM> ", case_sensitive=False) == "abc123@example.com"
    assert normalise_key(" <ABC123@Example.COM> ", case_sensitive=True) == "ABC123@Example.COM"
    assert normalise_key("abc123@example.com", case_sensitive=True) == "abc123@example.com"


def test_normalise_key__case_only_variants() -> None:
    upper = "<ABC123@EXAMPLE.COM>"
    lower = "<abc123@example.com>"
    assert normalise_key(upper, case_sensitive=False) == normalise_key(lower, case_sensitive=False)
    assert normalise_key(upper, case_sensitive=True) != normalise_key(lower, case_sensitive=True)


def _without_cfws(value: str) -> str:
    return re.sub(r"\s+", "", re.sub(r"\([^()]*\)", "", value))


def _stalwart_vectors() -> list[dict[str, object]]:
    path = MAIL_CORPUS / "stalwart-mail-parser" / "id.json"
    if not path.is_file():
        return []
    vectors: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return vectors


@pytest.mark.skipif(
    not (MAIL_CORPUS / "stalwart-mail-parser" / "id.json").is_file(),
    reason="the stalwart mail-parser id vectors are not available",
)
@pytest.mark.parametrize("vector", _stalwart_vectors(), ids=lambda vector: repr(vector["header"]))
def test_message_id__stalwart_vectors(vector: dict[str, object]) -> None:
    # The vectors list the ids a parser should find; our key is the first, without CFWS.
    header = vector["header"]
    expected = vector["expected"]
    assert isinstance(header, str)
    result = canonical_message_id(header)
    if expected is None:
        assert result.key is None
        assert result.problem is not None
        return
    assert isinstance(expected, list)
    assert result.key == f"<{_without_cfws(expected[0])}>"
    if len(expected) > 1:
        assert f"{len(expected)} ids in one header: the first is used" in result.warnings


@pytest.mark.parametrize("invisible", ["\u202e", "\u200d", "\u2060", "\u00ad", "\u200e"])
def test_message_id__invisible_formatting_character_is_not_keyed(invisible: str) -> None:
    result = canonical_message_id(f"<abc{invisible}def@example.com>")

    assert result.key is None
    assert result.problem is not None
    assert f"U+{ord(invisible):04X}" in result.problem


# The same header read by our scanner and by Python's email package gives one key.

BARE_ID = "faff5b13bff19cf16f0fbf46edb721e3@example.com"
CASE_HEADERS = [
    # An id folded onto its own line, and an id folded inside its domain.
    (b"Message-ID:\r\n <abc123@example.com>\r\n", "<abc123@example.com>"),
    (
        b"Message-ID: <NMID-105-1232@communication.exa\r\n\tmple.com>\r\n",
        "<NMID-105-1232@communication.example.com>",
    ),
    # A bare id, a bracketed id and an id without "@" (accepted and flagged).
    (b"Message-ID: faff5b13bff19cf16f0fbf46edb721e3@example.com\n", f"<{BARE_ID}>"),
    (b"Message-ID: <faff5b13bff19cf16f0fbf46edb721e3@example.com>\n", f"<{BARE_ID}>"),
    (b"Message-ID: 3a53c9f2-1a8e-41f0-bb95-58c8029e16f0\n", "<3a53c9f2-1a8e-41f0-bb95-58c8029e16f0>"),
    # An encoded-word id split over two lines.
    (
        b"Message-Id: =?utf-8?q?=3C20230928-jag-sysctl=5Fremove=5Fempty=5Felem=5Fdrive?=\n"
        b" =?utf-8?q?rs-v1-12-e59120fca9f9=40samsung=2Ecom=3E?=\n",
        "<20230928-jag-sysctl_remove_empty_elem_drivers-v1-12-e59120fca9f9@samsung.com>",
    ),
]


FOLDED_INSIDE_ID = {CASE_HEADERS[1][0]}


def _message(header: bytes) -> bytes:
    return b"From: a@example.com\r\nSubject: s\r\n" + header + b"\r\nbody\r\n"


@pytest.mark.parametrize(("header", "expected"), CASE_HEADERS)
def test_message_id__scanner_and_email_package_agree(header: bytes, expected: str) -> None:
    data = _message(header)
    scanned = [value for name, value in read_headers(data) if name == "message-id"]
    compat = BytesParser(policy=policy.compat32).parsebytes(data)["Message-ID"]
    modern = BytesParser(policy=policy.default).parsebytes(data)["Message-ID"]

    assert canonical_message_id(scanned[0]).key == expected
    assert canonical_message_id(str(compat)).key == expected
    if header in FOLDED_INSIDE_ID:
        # policy.default parses the id and drops what follows a fold inside it (with a defect);
        # compat32 and our scanner keep the raw text.
        assert modern.defects
        assert canonical_message_id(str(modern)).key != expected
    else:
        assert canonical_message_id(str(modern)).key == expected


def test_message_id__square_brackets_break_default_policy() -> None:
    data = _message(b"Message-ID: <[ABCDEF====@mail.example.com]>\n")
    scanned = [value for name, value in read_headers(data) if name == "message-id"]
    compat = BytesParser(policy=policy.compat32).parsebytes(data)["Message-ID"]

    with pytest.raises(IndexError):
        str(BytesParser(policy=policy.default).parsebytes(data)["Message-ID"])
    assert canonical_message_id(scanned[0]).key == "<[ABCDEF====@mail.example.com]>"
    assert canonical_message_id(str(compat)).key == "<[ABCDEF====@mail.example.com]>"


def test_message_id__bare_and_bracketed_share_spellings() -> None:
    bare = canonical_message_id("faff5b13bff19cf16f0fbf46edb721e3@example.com").key
    bracketed = canonical_message_id("<faff5b13bff19cf16f0fbf46edb721e3@example.com>").key
    assert bare is not None
    assert bracketed is not None
    assert key_spellings(bare) == key_spellings(bracketed)
    assert normalise_key(bare, case_sensitive=True) == normalise_key(
        "faff5b13bff19cf16f0fbf46edb721e3@example.com", case_sensitive=True
    )


def _corpus_message_files() -> list[Path]:
    if not MAIL_CORPUS.is_dir():
        return []
    suffixes = {".eml", ".msg", ".txt"}
    return sorted(
        path
        for path in MAIL_CORPUS.rglob("*")
        if path.is_file() and path.suffix in suffixes and ".mbox" not in path.name
    )


@pytest.mark.skipif(not MAIL_CORPUS.is_dir(), reason="the real mail corpus is not available")
def test_message_id__corpus_keys_agree_with_email_package() -> None:
    checked = 0
    for path in _corpus_message_files():
        data = path.read_bytes()
        activity = parse_message_file(data, path.name)
        if isinstance(activity, MailActivity):
            ours = activity.message_id.key
        else:
            ours = canonical_message_id(activity.raw_header).key if activity.raw_header else None
        body_start = data.find(b"\n") + 1 if data.startswith(b"From ") else 0

        compat = BytesParser(policy=policy.compat32).parsebytes(data[body_start:])
        compat_ids = compat.get_all("Message-ID") or []
        if not compat_ids or compat.defects:
            continue
        assert ours == canonical_message_id(str(compat_ids[0])).key, path.name

        try:
            modern = BytesParser(policy=policy.default).parsebytes(data[body_start:])
            header = modern["Message-ID"]
            value = None if header is None or header.defects else str(header)
        except PARSER_ERRORS:
            value = None
        if value is not None:
            assert ours == canonical_message_id(value).key, path.name
        checked += 1
    assert checked >= 250
