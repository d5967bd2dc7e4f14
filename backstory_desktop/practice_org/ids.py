"""Salesforce record ids for the practice org: a 3-character key prefix, a
12-character sequence and the 3-character case-safe checksum.

The checksum makes the 18-character id case-insensitive: each of the three
5-character chunks of the 15-character id contributes one character whose
value is a bit mask of the upper-case letters in that chunk.
"""

from __future__ import annotations

import secrets
import string

KEY_PREFIXES: dict[str, str] = {
    "User": "005",
    "Profile": "00e",
    "PermissionSet": "0PS",
    "PermissionSetAssignment": "0Pa",
    "FieldPermissions": "01k",
    "PermissionSetGroup": "0PG",
    # NOTE: the two prefixes below are not confirmed against a real org.
    "PermissionSetGroupComponent": "0PH",
    "MutingPermissionSet": "0QM",
    "Task": "00T",
    "Event": "00U",
    "Contact": "003",
    "Lead": "00Q",
    "Account": "001",
    "Opportunity": "006",
    "CustomField": "00N",
}

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_CHECKSUM_ALPHABET = string.ascii_uppercase + "012345"
_SEQUENCE_LENGTH = 12


def checksum_suffix(id15: str) -> str:
    """Return the 3-character suffix that turns a 15-character id into 18 characters."""
    suffix = ""
    for start in (0, 5, 10):
        chunk = id15[start : start + 5]
        mask = sum(1 << bit for bit, char in enumerate(chunk) if char.isupper())
        suffix += _CHECKSUM_ALPHABET[mask]
    return suffix


def make_id(prefix: str, sequence: int) -> str:
    """Build the 18-character id for the given key prefix and sequence number."""
    digits = ""
    while sequence:
        sequence, remainder = divmod(sequence, 62)
        digits = _BASE62[remainder] + digits
    id15 = prefix + digits.rjust(_SEQUENCE_LENGTH, "0")
    return id15 + checksum_suffix(id15)


ORG_ID_PREFIX = "00D"

# The organization Id of every practice org database seeded before each got an Id of its own.
UNRECORDED_ORG_ID = make_id(ORG_ID_PREFIX, 1)


def random_org_id() -> str:
    """Draw a new organization Id, as Salesforce gives each org its own.

    Sequences 0 and 1 are never drawn, so a new Id never equals ``UNRECORDED_ORG_ID``.
    """
    return make_id(ORG_ID_PREFIX, 2 + secrets.randbelow(62**_SEQUENCE_LENGTH - 2))


def sobject_for_id(record_id: str) -> str | None:
    """Return the sObject name an id belongs to, from its key prefix."""
    prefix = record_id[:3]
    for sobject, known in KEY_PREFIXES.items():
        if known == prefix:
            return sobject
    return None


def to_id18(record_id: str) -> str:
    """Return the 18-character form of a 15- or 18-character id (other input unchanged)."""
    if len(record_id) == 15:
        return record_id + checksum_suffix(record_id)
    return record_id
