"""The canonical Message-ID key: one spelling for every form of an id found in real mail.

A Task's Message-ID field contains ``<local@domain>``: angle brackets, no
whitespace, no comments, RFC 2047 encoded words decoded. The same function
makes the key that is written and the key that is looked up, so a folded id,
a bare id and an id with a comment all reach the same Task.

Nothing here guesses. An id that cannot be keyed safely (empty, longer than
the field, control characters, undecodable bytes) gets no key and a
``problem`` that says why; the raw header is always kept.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.header import decode_header

# Text(255) in Salesforce; the key includes its angle brackets.
MAX_KEY_LENGTH = 255

# A line break that ends the header: not followed by a space or a tab.
_HEADER_END = re.compile(r"\r?\n(?![ \t])")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# Unicode spaces that mail clients and copy-paste put into headers.
_ODD_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]")
_WHITESPACE = re.compile(r"\s+")
# Whitespace between two characters that are neither "@", "." nor a bracket:
# removing it joins two words, which RFC 5322 CFWS never does.
_JOINING_SPACE = re.compile(r"[^\s@.<>]\s+[^\s@.<>]")
# id-left "@" id-right from RFC 5322 section 3.6.4, with non-ASCII letters allowed (RFC 6532).
_ATOM = r"[\w!#$%&'*+/=?^`{|}~.-]+"
_RFC5322_ID = re.compile(rf"^{_ATOM}@(?:{_ATOM}|\[[^\[\]\\]*\])$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class MessageIdKey:
    """A Message-ID header and the key made from it.

    ``key`` is the canonical ``<local@domain>`` or None; ``problem`` gives the
    reason there is no key; ``warnings`` list what was odd about an id that was keyed.
    """

    key: str | None
    raw: str
    problem: str | None
    warnings: tuple[str, ...] = ()


def canonical_message_id(raw: str | None) -> MessageIdKey:
    """Make the canonical key from a Message-ID header value, or give the reason there is none."""
    if raw is None:
        return MessageIdKey(key=None, raw="", problem="no Message-ID header")

    warnings: list[str] = []
    text = _header_value(raw)
    text = _decode_encoded_words(text, warnings)
    # The odd spaces are all outside ASCII.
    text = (text if text.isascii() else _ODD_SPACES.sub(" ", text)).strip()
    if not text:
        return MessageIdKey(key=None, raw=raw, problem="the Message-ID header is empty")

    text = _remove_comments(text, warnings)
    candidates = _split_ids(text, warnings)
    if not candidates:
        return MessageIdKey(
            key=None, raw=raw, problem="the Message-ID header holds no id", warnings=tuple(warnings)
        )
    if len(candidates) > 1 and "<" not in text:
        # Without brackets, "renewal-2026 at mail.example.com" may be one id with spaces or
        # several ids, so taking its first word would be a guess.
        return MessageIdKey(
            key=None,
            raw=raw,
            problem="the id has no angle brackets and contains spaces, so where it starts and ends "
            "is unclear: write it as <local@domain>",
            warnings=tuple(warnings),
        )
    if len(candidates) > 1:
        warnings.append(f"{len(candidates)} ids in one header: the first is used")

    key, problem = _key_from_id(candidates[0], warnings)
    return MessageIdKey(key=key, raw=raw, problem=problem, warnings=tuple(warnings))


def key_spellings(key: str) -> tuple[str, ...]:
    """Return the spellings other tools store for the same key: with and without brackets."""
    bare = _strip_brackets(key.strip())
    return (f"<{bare}>", bare)


def normalise_key(value: str, *, case_sensitive: bool) -> str:
    """Reduce a stored key to its comparable core: no brackets, no whitespace.

    Case is folded too unless ``case_sensitive`` is set, as it is for a
    case-sensitive Message-ID field.
    """
    core = _strip_brackets(remove_whitespace(value))
    return core if case_sensitive else core.casefold()


def remove_whitespace(value: str) -> str:
    """Remove every kind of whitespace, including non-breaking and zero-width spaces."""
    return _WHITESPACE.sub("", _ODD_SPACES.sub(" ", value))


def key_length(key: str) -> int:
    """Return the length of a key in UTF-16 code units, never fewer than Salesforce counts."""
    return len(key.encode("utf-16-le")) // 2


def _header_value(raw: str) -> str:
    """Cut the value at a line break that ends the header, then unfold it."""
    if "\n" not in raw:
        return raw
    text = _HEADER_END.split(raw, maxsplit=1)[0]
    return _FOLD.sub("", text)


def _decode_encoded_words(text: str, warnings: list[str]) -> str:
    """Decode RFC 2047 encoded words, which some mailers use even for Message-ID."""
    if not _ENCODED_WORD.search(text):
        return text
    try:
        parts = decode_header(text)
        decoded = "".join(
            part.decode(charset or "ascii", errors="replace") if isinstance(part, bytes) else part
            for part, charset in parts
        )
    except (LookupError, ValueError, AssertionError) as exc:
        warnings.append(f"the RFC 2047 encoded id could not be decoded ({exc}); it is kept as written")
        return text
    warnings.append("the id was RFC 2047 encoded")
    return decoded


def _remove_comments(text: str, warnings: list[str]) -> str:
    """Remove RFC 5322 comments "(...)", nested or not, outside quoted strings."""
    if "(" not in text:
        return text
    kept: list[str] = []
    depth = 0
    in_quotes = False
    escaped = False
    removed = False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                kept.append(char)
            continue
        if char == "\\" and (depth > 0 or in_quotes):
            escaped = True
            if depth == 0:
                kept.append(char)
            continue
        if char == '"' and depth == 0:
            in_quotes = not in_quotes
        elif not in_quotes and char == "(":
            depth += 1
            removed = True
            continue
        elif not in_quotes and char == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                # A comment separates tokens, like whitespace.
                kept.append(" ")
            continue
        if depth == 0:
            kept.append(char)
    if depth > 0:
        warnings.append("a comment in the header is not closed: the rest of the header was ignored")
    if removed:
        warnings.append("a comment was removed from the header")
    return "".join(kept).strip()


def _split_ids(text: str, warnings: list[str]) -> list[str]:
    """Return the ids in a header value, each still with its inner whitespace."""
    if "<" in text:
        return _bracketed_ids(text, warnings)

    # A bare id: CFWS may still surround "@" and ".", but a space elsewhere separates ids.
    warnings.append("the id has no angle brackets")
    joined = re.sub(r"\s*([@.])\s*", r"\1", text)
    return joined.split()


def _bracketed_ids(text: str, warnings: list[str]) -> list[str]:
    ids: list[str] = []
    outside: list[str] = []
    position = 0
    while position < len(text):
        start = text.find("<", position)
        if start < 0:
            outside.append(text[position:])
            break
        outside.append(text[position:start])
        end = text.find(">", start + 1)
        if end < 0:
            warnings.append("the id has no closing angle bracket")
            ids.append(text[start + 1 :])
            break
        ids.append(text[start + 1 : end])
        position = end + 1
    if "".join(outside).strip():
        warnings.append("text outside the angle brackets was ignored")
    return ids


def _key_from_id(candidate: str, warnings: list[str]) -> tuple[str | None, str | None]:
    """Return (key, problem) for one id written without its brackets."""
    if _JOINING_SPACE.search(candidate.strip()):
        warnings.append("whitespace inside the id was removed")
    core = _WHITESPACE.sub("", candidate)
    core = core.lstrip("<")

    if not core:
        return None, "the id is empty (<>)"
    if _CONTROL.search(core):
        return None, "the id contains control characters"
    # No ASCII character is a formatting character, a replacement character or a surrogate.
    if not core.isascii():
        invisible = sorted({f"U+{ord(char):04X}" for char in core if unicodedata.category(char) == "Cf"})
        if invisible:
            # Bidirectional overrides and joiners make a key display differently from
            # what it is, so the key would not be what the admin reads.
            return None, "the id contains invisible formatting characters (" + ", ".join(invisible) + ")"
        if "\ufffd" in core or any("\ud800" <= char <= "\udfff" for char in core):
            return None, "the id contains bytes that are not valid UTF-8"
    if "<" in core or ">" in core:
        return None, "the id contains an angle bracket inside it"

    key = f"<{core}>"
    length = key_length(key)
    if length > MAX_KEY_LENGTH:
        return None, (
            f"the id is {length} characters long with its brackets, longer than the "
            f"{MAX_KEY_LENGTH} characters the Message-ID field holds (it is not truncated)"
        )

    if "@" not in core:
        warnings.append("no @ in the id")
    elif not _RFC5322_ID.match(core):
        warnings.append("the id is not in RFC 5322 form: it is keyed exactly as written")
    if not core.isascii():
        warnings.append("the id contains non-ASCII characters")
    return key, None


def _strip_brackets(value: str) -> str:
    if value.startswith("<") and value.endswith(">") and len(value) >= 2:
        return value[1:-1]
    return value.removeprefix("<").removesuffix(">")
