"""Group Tasks that record one e-mail more than once, by key and by likeness.

Used before the Message-ID field is made Unique (Salesforce refuses to build a
unique index while two records share a value, recycle bin included) and by the
duplicate viewer. Four kinds of group:

- EXACT: two or more Tasks hold the identical key string.
- NORMALISED: the keys differ, but only in angle brackets, whitespace or case.
  Case-only variants are listed even when the field is case-sensitive, where
  Salesforce counts them as different keys: they are still one e-mail.
- PROBABLE: at least one Task has no key, and it looks like another Task of the
  same owner and contact (WhoId): created close in time, with a similar subject
  and a matching body (see Thresholds).
- CLONES: one e-mail logged once per related record on purpose, such as once per
  Opportunity (every WhatId present and different) or once per contact (no
  WhatId, every WhoId present and different). They are labelled, not flagged.

Each record appears in at most one group, a keyless record joins at most one
key family, and two Tasks with different keys are never a probable pair.
Grouping indexes Tasks by key and by (OwnerId, WhoId) buckets sorted by
CreatedDate, and compares only Tasks within the time window of each other.
Nothing here deletes or merges.
"""

from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from backstory_desktop.core.message_id import normalise_key, remove_whitespace
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import created_timestamp, default_survivor, description_digest


class GroupKind(StrEnum):
    EXACT = "exact"
    NORMALISED = "normalised"
    PROBABLE = "probable"
    CLONES = "clones"


@dataclass(frozen=True)
class Thresholds:
    """The likeness a Task without a key needs to another Task to count as its probable duplicate."""

    window_minutes: int = 15  # created within this many minutes of each other
    subject_similarity: int = 90  # 0..100, rapidfuzz ratio of the subjects
    bodies_must_match: bool = True  # body digests equal, or one of the bodies empty

    def __post_init__(self) -> None:
        if not 0 <= self.window_minutes <= 7 * 24 * 60:
            raise ValueError(
                f"The time window of {self.window_minutes} minutes is invalid: "
                "choose from 0 to 10080 minutes (one week)."
            )
        if not 0 <= self.subject_similarity <= 100:
            raise ValueError(
                f"The subject similarity of {self.subject_similarity}% is invalid: choose from 0 to 100%."
            )

    def lines(self) -> list[str]:
        """Return the matching rules as plain sentences for the viewer and the reports."""
        minutes = "minute" if self.window_minutes == 1 else "minutes"
        lines = [
            "A Task without a key is paired with another Task of the same owner and the same "
            "contact or lead (WhoId).",
            f"The two Tasks were created within {self.window_minutes} {minutes} of each other.",
            f"Their subjects are at least {self.subject_similarity}% alike once case and punctuation "
            "are ignored.",
        ]
        if self.bodies_must_match:
            lines.append("Their bodies match once case and spacing are ignored, or one of them has no body.")
        else:
            lines.append("Their bodies are not compared.")
        lines.append("A Task logged as a call is never paired with one logged as an e-mail (TaskSubtype).")
        return lines

    @property
    def window_seconds(self) -> float:
        return self.window_minutes * 60.0


@dataclass(frozen=True)
class DuplicateGroup:
    """Tasks that record one e-mail, and a one-line reason an admin can read.

    ``key`` is the shared key for an EXACT group, the normalised key (no
    brackets, no whitespace, case folded) for a NORMALISED group, and for a
    PROBABLE or CLONES group the key of its keyed members ("" when none has a
    key). ``group_id`` is the smallest member Id, so it stays the same across
    scans while the members do. ``survivor_id`` is the Task that
    core.survivor.default_survivor would keep, and ``survivor_reason`` is the
    sentence that explains the choice.
    """

    kind: GroupKind
    key: str
    records: tuple[TaskRecord, ...]
    reason: str
    group_id: str = ""
    survivor_id: str = ""
    survivor_reason: str = ""

    @property
    def flagged(self) -> bool:
        """False for CLONES, which are logged on purpose and need no resolving."""
        return self.kind is not GroupKind.CLONES

    @property
    def subject(self) -> str:
        """The first non-empty subject among the members."""
        return next((record.subject for record in self.records if record.subject), "")

    @property
    def writers(self) -> tuple[str, ...]:
        """Who wrote the members, each named once in member order."""
        return tuple(dict.fromkeys(record.writer for record in self.records if record.writer))


def group_duplicates(
    records: Iterable[TaskRecord],
    *,
    case_sensitive: bool,
    thresholds: Thresholds = Thresholds(),
    tool_user_ids: Collection[str] = (),
) -> list[DuplicateGroup]:
    """Group Tasks that hold one key, or look like one e-mail when some of them have no key.

    ``case_sensitive`` is how the Message-ID field is defined. It changes the
    reason given for case-only variants, not which records are grouped.
    ``tool_user_ids`` are the User Ids of the cadence tools' users, for the
    default survivor. Groups come sorted by key, then group Id, and the keyless
    groups last, by subject, then group Id. Records in an EXACT or NORMALISED
    group come by key, then Id, and in other groups by CreatedDate, then Id.
    """
    tasks = list(records)
    tool_users = frozenset(tool_user_ids)
    with _garbage_collection_paused():
        grouping = _Grouping(tasks)
        grouping.add_key_families()
        grouping.add_probable_pairs(thresholds)
        groups = [
            _make_group(members, grouping, case_sensitive=case_sensitive, tool_user_ids=tool_users)
            for members in grouping.components()
        ]
    # Only keyless groups need their subject to sort; reading it for every group is slow.
    groups.sort(key=lambda group: (group.key == "", group.key, "" if group.key else group.subject,
                                   group.group_id))
    return groups


@contextlib.contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while grouping, and restore its state after.

    Grouping a million Tasks allocates millions of small objects, and each
    allocation burst makes the collector walk every live object, the Tasks
    included: on a 2-core test machine that more than doubled the time to group
    1,000,000 Tasks. Grouping builds no reference cycles, so nothing is left
    for the collector to find later.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- finding the groups -------------------------------------------------------------



@dataclass
class _Pair:
    """A probable pair of Tasks (by index), ranked so that the closest pairs are joined first."""

    same_contact: bool
    seconds_apart: float
    similarity: float
    first: int
    second: int


class _Grouping:
    """Union-find over the Tasks, where a component contains at most one key family.

    A component's root is a keyed Task whenever the component contains one, so the
    family of a component is the family of its root.
    """

    def __init__(self, tasks: list[TaskRecord]) -> None:
        self.tasks = tasks
        self.parent = list(range(len(tasks)))
        self.family_of: list[str | None] = [None] * len(tasks)
        self.min_similarity: dict[int, float] = {}
        self.touched: set[int] = set()

    def find(self, index: int) -> int:
        parent = self.parent
        root = index
        while parent[root] != root:
            root = parent[root]
        while parent[index] != root:
            parent[index], index = root, parent[index]
        return root

    def family(self, index: int) -> str | None:
        """Return the key family of the component that contains a Task, or None when it has none."""
        return self.family_of[self.find(index)]

    def union(self, first: int, second: int, similarity: float | None = None) -> bool:
        """Join two components unless that would put two key families into one group."""
        root_a, root_b = self.find(first), self.find(second)
        if root_a == root_b:
            return False
        family_a, family_b = self.family_of[root_a], self.family_of[root_b]
        if family_a is not None and family_b is not None and family_a != family_b:
            return False
        if family_a is None and family_b is not None:
            root_a, root_b = root_b, root_a
        self.parent[root_b] = root_a
        scores = [score for score in (self.min_similarity.pop(root_b, None),
                                      self.min_similarity.get(root_a), similarity) if score is not None]
        if scores:
            self.min_similarity[root_a] = min(scores)
        self.touched.add(first)
        self.touched.add(second)
        return True

    def add_key_families(self) -> None:
        """Join the Tasks whose keys are equal once brackets, whitespace and case are ignored."""
        first_of_family: dict[str, int] = {}
        family_of = self.family_of
        for index, task in enumerate(self.tasks):
            key = task.key
            if key is None:
                continue
            # The fast path of _key_family, inlined because it runs once per keyed Task.
            if key.isascii() and key.isprintable() and " " not in key:
                family = key[1:-1] if len(key) >= 2 and key[0] == "<" and key[-1] == ">" else (
                    key.removeprefix("<").removesuffix(">"))
                family = family.lower()
            else:
                family = normalise_key(key, case_sensitive=False)
            if not family:
                continue
            family_of[index] = family
            first = first_of_family.setdefault(family, index)
            if first != index:
                self.union(first, index)

    def add_probable_pairs(self, thresholds: Thresholds) -> None:
        """Join keyless Tasks to the Tasks they look like, closest pairs first."""
        keyless = [index for index, family in enumerate(self.family_of) if family is None]
        if not keyless:
            return
        pairs = _probable_pairs(self.tasks, keyless, self.family_of, thresholds)
        pairs.sort(key=lambda pair: (not pair.same_contact, pair.seconds_apart, -pair.similarity,
                                     self.tasks[pair.first].id, self.tasks[pair.second].id))
        for pair in pairs:
            self.union(pair.first, pair.second, pair.similarity)

    def components(self) -> list[list[int]]:
        """Return the components of two or more Tasks, as lists of indexes."""
        members: dict[int, list[int]] = defaultdict(list)
        for index in self.touched:
            members[self.find(index)].append(index)
        return [indexes for indexes in members.values() if len(indexes) > 1]


def _key_family(key: str) -> str:
    """Return normalise_key(key, case_sensitive=False), with a fast path for plain ASCII keys."""
    if key.isascii() and key.isprintable() and " " not in key:
        if len(key) >= 2 and key[0] == "<" and key[-1] == ">":
            return key[1:-1].lower()
        return key.removeprefix("<").removesuffix(">").lower()
    return normalise_key(key, case_sensitive=False)


def _probable_pairs(
    tasks: list[TaskRecord], keyless: list[int], family_of: list[str | None], thresholds: Thresholds
) -> list[_Pair]:
    """Find probable pairs: one Task at least has no key, and both are alike by the thresholds.

    Two indexes are searched. Tasks of one owner and one WhoId may be duplicates
    or clones (different WhatIds). Tasks of one owner and one body but different
    WhoIds are searched too, so that an e-mail logged once per contact is found;
    such a pair counts only when it looks like a clone. Only buckets that a
    keyless Task opened take in keyed Tasks, so a scan with few keyless Tasks
    builds few buckets.
    """
    by_contact: dict[tuple[str | None, str | None], list[int]] = {}
    by_body: dict[tuple[str | None, str], list[int]] = {}
    for index in keyless:
        task = tasks[index]
        by_contact.setdefault((task.owner_id, task.who_id), []).append(index)
        digest = _digest(task)
        if digest:
            by_body.setdefault((task.owner_id, digest), []).append(index)
    # A Task's WhoId and body digest are looked up in sets first: cheaper than building a
    # tuple for each of a million keyed Tasks.
    contact_ids = {who_id for _owner, who_id in by_contact}
    body_digests = {digest for _owner, digest in by_body}
    for index, task in enumerate(tasks):
        if family_of[index] is None:
            continue
        if task.who_id in contact_ids:
            bucket = by_contact.get((task.owner_id, task.who_id))
            if bucket is not None:
                bucket.append(index)
        digest = task.description_digest or _digest(task)
        if digest in body_digests:
            body_bucket = by_body.get((task.owner_id, digest))
            if body_bucket is not None:
                body_bucket.append(index)

    matcher = _Matcher(tasks, family_of, thresholds)
    pairs: list[_Pair] = []
    for bucket in by_contact.values():
        if len(bucket) > 1:
            pairs.extend(matcher.pairs_in(bucket, same_contact=True))
    for bucket in by_body.values():
        if len(bucket) > 1:
            pairs.extend(matcher.pairs_in(bucket, same_contact=False))
    return pairs


class _Matcher:
    """Compare Tasks within one bucket, inside the time window only."""

    def __init__(
        self, tasks: list[TaskRecord], family_of: list[str | None], thresholds: Thresholds
    ) -> None:
        self.tasks = tasks
        self.family_of = family_of
        self.thresholds = thresholds
        self.times: dict[int, float] = {}
        self.subjects: dict[int, str] = {}

    def pairs_in(self, bucket: list[int], *, same_contact: bool) -> list[_Pair]:
        tasks = self.tasks
        timed = sorted((self._time(index), tasks[index].id, index) for index in bucket)
        while timed and timed[-1][0] == float("inf"):
            timed.pop()  # no readable CreatedDate
        window = self.thresholds.window_seconds
        pairs: list[_Pair] = []
        for position, (seconds, _id, first) in enumerate(timed):
            for later in range(position + 1, len(timed)):
                later_seconds, _later_id, second = timed[later]
                apart = later_seconds - seconds
                if apart > window:
                    break
                similarity = self._similarity(first, second, same_contact=same_contact)
                if similarity is not None:
                    pairs.append(_Pair(same_contact, apart, similarity, first, second))
        return pairs

    def _similarity(self, first: int, second: int, *, same_contact: bool) -> float | None:
        """Return how alike two Tasks' subjects are, or None when they are no probable pair."""
        if self.family_of[first] is not None and self.family_of[second] is not None:
            return None  # two keyed Tasks: their keys decide
        one, other = self.tasks[first], self.tasks[second]
        if not same_contact and not _clone_like(one, other):
            return None
        if one.subtype and other.subtype and one.subtype != other.subtype:
            return None
        digest_one, digest_other = _digest(one), _digest(other)
        if not (one.subject or other.subject or digest_one or digest_other):
            return None  # nothing to compare
        if self.thresholds.bodies_must_match and digest_one and digest_other and digest_one != digest_other:
            return None
        # With score_cutoff, rapidfuzz returns 0 for a ratio below the cutoff.
        similarity = float(fuzz.ratio(self._subject(first), self._subject(second),
                                      score_cutoff=self.thresholds.subject_similarity))
        return None if similarity < self.thresholds.subject_similarity else similarity

    def _time(self, index: int) -> float:
        seconds = self.times.get(index)
        if seconds is None:
            seconds = self.times[index] = created_timestamp(self.tasks[index].created_date)
        return seconds

    def _subject(self, index: int) -> str:
        subject = self.subjects.get(index)
        if subject is None:
            subject = self.subjects[index] = default_process(self.tasks[index].subject)
        return subject


def _digest(task: TaskRecord) -> str:
    if task.description_digest:
        return task.description_digest
    return description_digest(task.description) if task.description else ""


def _clone_like(one: TaskRecord, other: TaskRecord) -> bool:
    """Return True when two Tasks are the same e-mail logged for two different related records."""
    if one.what_id and other.what_id:
        return one.what_id != other.what_id
    if one.what_id or other.what_id:
        return False
    return bool(one.who_id and other.who_id and one.who_id != other.who_id)


def is_clone_set(records: Sequence[TaskRecord]) -> bool:
    """Return True when every Task has a different WhatId, or none has one and every WhoId differs.

    A mix of Tasks with and without a WhatId is a duplicate, not a clone set.
    """
    what_ids = [record.what_id for record in records]
    if all(what_ids):
        return len(set(what_ids)) == len(what_ids)
    if any(what_ids):
        return False
    who_ids = [record.who_id for record in records]
    return all(who_ids) and len(set(who_ids)) == len(who_ids)


# -- describing a group -------------------------------------------------------------


def _make_group(
    indexes: list[int], grouping: _Grouping, *, case_sensitive: bool, tool_user_ids: Collection[str]
) -> DuplicateGroup:
    records = tuple(grouping.tasks[index] for index in indexes)
    family = grouping.family(indexes[0]) or ""
    keyless = sum(1 for index in indexes if grouping.family_of[index] is None)
    if keyless:
        ordered = tuple(sorted(records, key=_by_created))
        similarity = grouping.min_similarity.get(grouping.find(indexes[0]), 100.0)
        kind, key, reason = _likeness_group(ordered, family, keyless, similarity)
    else:
        ordered = tuple(sorted(records, key=lambda record: (record.key or "", record.id)))
        kind, key, reason = _key_group(ordered, family, case_sensitive=case_sensitive)
    survivor, survivor_reason = default_survivor(ordered, tool_user_ids)
    return DuplicateGroup(
        kind=kind,
        key=key,
        records=ordered,
        reason=reason + _bin_note(ordered) + _writers_note(ordered),
        group_id=min(record.id for record in ordered),
        survivor_id=survivor.id,
        survivor_reason=survivor_reason,
    )


def _by_created(record: TaskRecord) -> tuple[float, str]:
    return created_timestamp(record.created_date), record.id


def _key_group(
    records: tuple[TaskRecord, ...], family: str, *, case_sensitive: bool
) -> tuple[GroupKind, str, str]:
    keys = {record.key or "" for record in records}
    if is_clone_set(records):
        key = next(iter(keys)) if len(keys) == 1 else family
        return GroupKind.CLONES, key, _clones_reason(records) + (
            "; they hold one key, so the Message-ID field cannot be Unique until all but one lose it"
        )
    if len(keys) == 1:
        return GroupKind.EXACT, next(iter(keys)), f"{len(records)} Tasks hold the same key"

    differences = _differences(keys)
    reason = f"{len(records)} Tasks hold keys that differ only in {_join_words(differences)}"
    if "case" in differences and case_sensitive:
        reason += " (the field is case-sensitive, so Salesforce treats them as different keys)"
    identical = _largest_identical_share(records)
    if identical > 1:
        reason += f"; {identical} of them hold the identical key"
    return GroupKind.NORMALISED, family, reason


def _likeness_group(
    records: tuple[TaskRecord, ...], family: str, keyless: int, similarity: float
) -> tuple[GroupKind, str, str]:
    keys = {record.key for record in records if record.key is not None}
    key = next(iter(keys)) if len(keys) == 1 else family
    if is_clone_set(records):
        return GroupKind.CLONES, key, _clones_reason(records)
    times = [created_timestamp(record.created_date) for record in records]
    contacts = {record.who_id for record in records}
    parts = [
        "the same owner" + (" and contact" if len(contacts) == 1 and None not in contacts else ""),
        f"created within {_duration(max(times) - min(times))}",
        f"subjects at least {similarity:.0f}% alike",
    ]
    digests = [_digest(record) for record in records]
    bodies = set(digests) - {""}
    if len(bodies) == 1:
        parts.append("the same body" if all(digests) else "the same body where there is one")
    no_key = "none has a key" if keyless == len(records) else (
        "one has no key" if keyless == 1 else f"{keyless} have no key")
    reason = f"{len(records)} Tasks look like one e-mail logged more than once ({no_key}): {', '.join(parts)}"
    return GroupKind.PROBABLE, key, reason


def _clones_reason(records: tuple[TaskRecord, ...]) -> str:
    if all(record.what_id for record in records):
        related = f"{len(records)} different related records (WhatId)"
    else:
        related = f"{len(records)} different contacts or leads (WhoId)"
    return (f"{len(records)} Tasks are one e-mail logged once for each of {related}, as cadence tools "
            "do on purpose, so they are not flagged as duplicates")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} second" + ("" if whole == 1 else "s")
    minutes = round(whole / 60)
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


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


def _join_words(words: Sequence[str]) -> str:
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


def _writers_note(records: tuple[TaskRecord, ...]) -> str:
    """Name who wrote the Tasks, when the scan knew it."""
    writers = list(dict.fromkeys(record.writer for record in records if record.writer))
    if not writers:
        return ""
    if len(writers) == 1:
        return f"; all written by {writers[0]}"
    return f"; written by {_join_words(writers)}"
