"""Group Tasks that hold the same Message-ID key, or keys that differ only in spelling.

Used before the Message-ID field is made Unique (Salesforce refuses to build a
unique index while two records share a value, recycle bin included) and by the
duplicate viewer. Two kinds of group:

- EXACT: two or more Tasks hold the identical key string.
- NORMALISED: the keys differ, but only in angle brackets, whitespace or case.
  Case-only variants are listed even when the field is case-sensitive, where
  Salesforce counts them as different keys: they are still one e-mail.

Each record appears in at most one group. Nothing here deletes or merges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from backstory_desktop.core.message_id import normalise_key, remove_whitespace
from backstory_desktop.core.records import TaskRecord


class GroupKind(StrEnum):
    EXACT = "exact"
    NORMALISED = "normalised"


@dataclass(frozen=True)
class DuplicateGroup:
    """Tasks that hold one key, and a one-line reason an admin can read.

    ``key`` is the shared key for an EXACT group and the normalised key (no
    brackets, no whitespace, case folded) for a NORMALISED group.
    """

    kind: GroupKind
    key: str
    records: tuple[TaskRecord, ...]
    reason: str


def group_duplicates(records: Iterable[TaskRecord], *, case_sensitive: bool) -> list[DuplicateGroup]:
    """Group Tasks whose Message-ID keys are equal or equal once normalised.

    ``case_sensitive`` is how the Message-ID field is defined. It changes the
    reason given for case-only variants, not which records are grouped.
    Groups come sorted by key; records in a group by key, then Id.
    """
    families: dict[str, list[TaskRecord]] = defaultdict(list)
    for record in records:
        if record.key is None:
            continue
        family = normalise_key(record.key, case_sensitive=False)
        if family:
            families[family].append(record)

    groups: list[DuplicateGroup] = []
    for family, members in families.items():
        if len(members) < 2:
            continue
        ordered = tuple(sorted(members, key=lambda record: (record.key or "", record.id)))
        groups.append(_make_group(family, ordered, case_sensitive=case_sensitive))
    groups.sort(key=lambda group: (group.key, group.kind.value))
    return groups


def _make_group(
    family: str, records: tuple[TaskRecord, ...], *, case_sensitive: bool
) -> DuplicateGroup:
    keys = {record.key or "" for record in records}
    if len(keys) == 1:
        reason = f"{len(records)} Tasks hold the same key"
        return DuplicateGroup(
            kind=GroupKind.EXACT,
            key=next(iter(keys)),
            records=records,
            reason=reason + _bin_note(records),
        )

    differences = _differences(keys)
    reason = f"{len(records)} Tasks hold keys that differ only in {_join_words(differences)}"
    if "case" in differences and case_sensitive:
        reason += " (the field is case-sensitive, so Salesforce treats them as different keys)"
    identical = _largest_identical_share(records)
    if identical > 1:
        reason += f"; {identical} of them hold the identical key"
    return DuplicateGroup(
        kind=GroupKind.NORMALISED,
        key=family,
        records=records,
        reason=reason + _bin_note(records),
    )


def _differences(keys: set[str]) -> list[str]:
    """Name what sets the keys apart: angle brackets, whitespace, case (in that order)."""
    differences: list[str] = []
    without_whitespace = {remove_whitespace(key).casefold() for key in keys}
    if len(without_whitespace) > 1:
        differences.append("angle brackets")
    without_brackets = {_strip_brackets(key).casefold() for key in keys}
    if len(without_brackets) > 1:
        differences.append("whitespace")
    case_kept = {normalise_key(key, case_sensitive=True) for key in keys}
    if len(case_kept) > 1:
        differences.append("case")
    return differences


def _strip_brackets(value: str) -> str:
    """Remove the angle brackets of a key but keep any whitespace around them."""
    core = value.strip()
    leading = value[: len(value) - len(value.lstrip())]
    trailing = value[len(value.rstrip()) :]
    return leading + core.removeprefix("<").removesuffix(">") + trailing


def _join_words(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _largest_identical_share(records: tuple[TaskRecord, ...]) -> int:
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.key or ""] += 1
    return max(counts.values())


def _bin_note(records: tuple[TaskRecord, ...]) -> str:
    """Say how many records are in the recycle bin or archived, where an admin may not look."""
    notes: list[str] = []
    deleted = sum(1 for record in records if record.is_deleted)
    archived = sum(1 for record in records if record.is_archived and not record.is_deleted)
    if deleted:
        notes.append(
            "one of them is in the recycle bin"
            if deleted == 1
            else f"{deleted} of them are in the recycle bin"
        )
    if archived:
        notes.append(
            "one of them is archived" if archived == 1 else f"{archived} of them are archived"
        )
    return "; " + " and ".join(notes) if notes else ""
