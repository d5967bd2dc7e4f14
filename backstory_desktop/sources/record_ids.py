"""Salesforce record Ids named by a source: checked and written in their 18-character form.

A record Id is 15 case-sensitive characters. The 18-character form adds a
3-character checksum that encodes which of the 15 are upper case, so that
case-insensitive tools such as spreadsheets keep it usable. The first 3 characters
are the key prefix of the object: 003 Contact, 00Q Lead, 005 User.
"""

from __future__ import annotations

import re

CONTACT_PREFIX = "003"
LEAD_PREFIX = "00Q"
USER_PREFIX = "005"

_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum_suffix(id15: str) -> str:
    """Return the 3 checksum characters of a 15-character Id."""
    suffix = ""
    for start in (0, 5, 10):
        chunk = id15[start : start + 5]
        bits = sum(1 << position for position, char in enumerate(chunk) if "A" <= char <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def record_id_18(value: str, prefixes: tuple[str, ...], label: str) -> tuple[str | None, str | None]:
    """Return (18-character Id, None), or (None, the reason the value is not a usable Id).

    ``prefixes`` are the key prefixes accepted; ``label`` names the column in
    the reason, for example "WhoId".
    """
    text = value.strip()
    if not _ID.match(text):
        return None, f"{label} {text!r} is not a Salesforce record Id (15 or 18 letters and digits)"
    if text[:3] not in prefixes:
        return None, f"{label} {text} has the key prefix {text[:3]}, not {' or '.join(prefixes)}"
    expected = checksum_suffix(text[:15])
    if len(text) == 18 and text[15:].upper() != expected:
        return None, (
            f"{label} {text} has a wrong checksum in its last 3 characters (expected {expected}): "
            "export the Id again, or give its 15-character form"
        )
    return text[:15] + expected, None
