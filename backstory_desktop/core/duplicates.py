"""Group Tasks that record one e-mail more than once, by key and by likeness.

Used before the Message-ID field is made Unique (Salesforce refuses to build a
unique index while two records share a value, recycle bin included) and by the
duplicate viewer. Four kinds of group:

- EXACT: two or more Tasks hold the identical key string.
- NORMALISED: the keys differ, but only in angle brackets, whitespace or case.
  On a case-sensitive field Salesforce counts case-only variants as different
  keys, and on a case-insensitive field it may count keys that differ beyond
  ASCII case as different (Unicode folding, such as "ß" and "SS"). Such a
  group is shown as a possible duplicate but not flagged. A key that is only
  brackets or whitespace, such as "<>", groups with the identical key only.
- PROBABLE: at least one Task has no key, and it looks like another Task of the
  same owner and contact (WhoId): created close in time, with a similar subject
  and a matching body (see Thresholds). Two Tasks without a key need the same
  body, so that ordinary calls and to-dos with one subject are not paired. A
  Task without a key in the recycle bin blocks nothing and joins no group.
- CLONES: one e-mail logged once per related record on purpose, such as once per
  Opportunity (every WhatId present and different) or once per contact (no
  WhatId, every WhoId present and different). They are labelled, not flagged.
  Clones are one e-mail: they share one key, or, without a key, have the same
  subject and the same body.

A set of Tasks found by key or likeness is split by related record (WhatId, or
WhoId when no Task has a WhatId): Tasks on one related record are duplicates,
and the Tasks alone on their related record that are one e-mail are clones, so
resolving a group never deletes the copy kept on another Opportunity or contact.

Each record appears in at most one group, a keyless record joins at most one
key family, and two Tasks with different keys are never a probable pair. A
probable group never spans more CreatedDate than the time window. Grouping
indexes Tasks by key and by (OwnerId, WhoId) buckets sorted by CreatedDate, and
compares only Tasks within the time window of each other. Nothing here deletes
or merges.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from backstory_desktop.core.message_id import normalise_key, remove_whitespace
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import created_timestamp, default_survivor, description_digest

# Normalised keys contain no whitespace, so a family that starts with a space is a junk key's.
_JUNK_FAMILY_MARK = " "


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
            lines.append("Their bodies are not compared when one of them has a key.")
        lines.append("Two Tasks without a key are paired only when they have the same body.")
        lines.append("A group spans no more than the time window from its first Task to its last.")
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
    sentence that explains the choice. ``case_only`` marks a NORMALISED group
    whose keys Salesforce counts or may count as different: on a
    case-sensitive field keys that differ only in case, and on a
    case-insensitive field keys that differ beyond ASCII case, such as "ß" and
    "SS" (the Unique option reads "Treat 'ABC' and 'abc' as duplicate values").
    """

    kind: GroupKind
    key: str
    records: tuple[TaskRecord, ...]
    reason: str
    group_id: str = ""
    survivor_id: str = ""
    survivor_reason: str = ""
    case_only: bool = False

    @cached_property
    def flagged(self) -> bool:
        """Tell whether the group is a duplicate to resolve.

        False for CLONES, which are logged on purpose, and for keys that Salesforce
        counts or may count as different (``case_only``). Also False for a group with
        at most one Task outside the recycle bin whose Tasks in the recycle bin have no
        key, because those block nothing and a resolution leaves them behind.
        Computed once per group, because the viewer reads it for every shown group
        after each sort and filter, and the group's fields never change.
        """
        if self.kind is GroupKind.CLONES or self.case_only:
            return False
        live = sum(1 for record in self.records if not record.is_deleted)
        return live > 1 or any(record.is_deleted and record.key for record in self.records)

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
    """Group Tasks that share one key, or look like one e-mail when some of them have no key.

    ``case_sensitive`` is how the Message-ID field is defined. It decides
    whether case-only variants are flagged, not which records are grouped.
    ``tool_user_ids`` are the User Ids of the cadence tools' users, for the
    default survivor. Groups come sorted by key, then group Id, and the keyless
    groups last, by subject, then group Id. Records in an EXACT or NORMALISED
    group come by key, then Id, and in other groups by CreatedDate, then Id.
    """
    tasks = list(records)
    tool_users = frozenset(tool_user_ids)
    with garbage_collection_paused():
        grouping = _Grouping(tasks, thresholds)
        grouping.add_key_families()
        grouping.add_probable_pairs()
        groups = [
            group
            for members in grouping.components()
            for group in _make_groups(members, grouping, case_sensitive=case_sensitive,
                                      tool_user_ids=tool_users)
        ]
    # Only keyless groups need their subject to sort, and reading it for every group is slow.
    groups.sort(key=lambda group: (group.key == "", group.key, "" if group.key else group.subject,
                                   group.group_id))
    return groups


@contextlib.contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block, and restore its state after.

    Building many small objects at once (grouping a million Tasks, preparing the
    viewer's facts of 100,000 groups) makes the collector walk every live object
    after each allocation burst. That slows the work down a lot, and it holds the
    GIL, so the GUI thread stalls too. Use it only for code that builds no
    reference cycles, since those wait until the collector runs again.
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
    """A probable pair of Tasks (by index), ranked so that the closest pairs are joined first.

    ``first`` was created at ``start`` (seconds since the epoch), ``second`` no earlier.
    """

    same_contact: bool
    seconds_apart: float
    similarity: float
    first: int
    second: int
    start: float


class _Grouping:
    """Union-find over the Tasks, where a component contains at most one key family.

    A component's root is a keyed Task whenever the component contains one, so the
    family of a component is the family of its root.
    """

    def __init__(self, tasks: list[TaskRecord], thresholds: Thresholds) -> None:
        self.tasks = tasks
        self.thresholds = thresholds
        self.parent = list(range(len(tasks)))
        self.family_of: list[str | None] = [None] * len(tasks)
        self.min_similarity: dict[int, float] = {}
        self.touched: set[int] = set()
        # The first and last CreatedDate of the Tasks joined by probable pairs, by component root.
        self.span: dict[int, tuple[float, float]] = {}

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
            if not key:
                continue
            family = _key_family(key) or _junk_family(key)
            family_of[index] = family
            first = first_of_family.setdefault(family, index)
            if first != index:
                self.union(first, index)

    def add_probable_pairs(self) -> None:
        """Join keyless Tasks to the Tasks they look like, closest pairs first."""
        # A keyless Task in the recycle bin blocks nothing, and a resolution leaves such Tasks behind.
        tasks = self.tasks
        keyless = [index for index, family in enumerate(self.family_of)
                   if family is None and not tasks[index].is_deleted]
        if not keyless:
            return
        thresholds = self.thresholds
        pairs = _probable_pairs(self.tasks, keyless, self.family_of, thresholds)
        pairs.sort(key=lambda pair: (not pair.same_contact, pair.seconds_apart, -pair.similarity,
                                     self.tasks[pair.first].id, self.tasks[pair.second].id))
        window = thresholds.window_seconds
        for pair in pairs:
            self.join_pair(pair, window)

    def join_pair(self, pair: _Pair, window: float) -> None:
        """Join a probable pair unless the joined group would span more CreatedDate than the window.

        Without this limit, Tasks logged every ten minutes would chain into one
        group that spans hours. NOTE: the span counts only the Tasks joined by
        pairs, so a keyless copy of a key family member logged far from the
        first pair is left out of the group rather than joined.
        """
        root_a, root_b = self.find(pair.first), self.find(pair.second)
        if root_a == root_b:
            return
        low, high = pair.start, pair.start + pair.seconds_apart
        for root in (root_a, root_b):
            span = self.span.get(root)
            if span is not None:
                low, high = min(low, span[0]), max(high, span[1])
        if high - low > window or not self.union(pair.first, pair.second, pair.similarity):
            return
        self.span.pop(root_a, None)
        self.span.pop(root_b, None)
        self.span[self.find(pair.first)] = (low, high)

    def components(self) -> list[list[int]]:
        """Return the components of two or more Tasks, as lists of indexes."""
        members: dict[int, list[int]] = defaultdict(list)
        for index in self.touched:
            members[self.find(index)].append(index)
        return [indexes for indexes in members.values() if len(indexes) > 1]


def _junk_family(key: str) -> str:
    """Return the family of a key that is only brackets or whitespace, such as "<>".

    Such a key has no id to normalise, but Salesforce's unique index still
    counts two Tasks that hold it. Its family is the key without surrounding
    whitespace behind a leading space, which no normalised key contains, so it
    joins no key family of a real id.
    """
    return _JUNK_FAMILY_MARK + (key.strip() or key)


def _shown_family(family: str) -> str:
    """Return a key family as the viewer shows it: a junk family without its mark."""
    return family.removeprefix(_JUNK_FAMILY_MARK)


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
    WhoIds are searched too, so that an e-mail logged once per contact is found.
    Such a pair counts only when it looks like a clone. Only buckets that a
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
    # A Task's WhoId and body digest are looked up in sets first, because that is cheaper
    # than building a tuple for each of a million keyed Tasks.
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
                    pairs.append(_Pair(same_contact, apart, similarity, first, second, seconds))
        return pairs

    def _similarity(self, first: int, second: int, *, same_contact: bool) -> float | None:
        """Return how alike two Tasks' subjects are, or None when they are no probable pair."""
        first_keyless, second_keyless = self.family_of[first] is None, self.family_of[second] is None
        if not (first_keyless or second_keyless):
            return None  # two keyed Tasks: their keys decide
        one, other = self.tasks[first], self.tasks[second]
        if not same_contact and not _clone_like(one, other):
            return None
        if one.subtype and other.subtype and one.subtype != other.subtype:
            return None
        digest_one, digest_other = _digest(one), _digest(other)
        if not (one.subject or other.subject or digest_one or digest_other):
            return None  # nothing to compare
        if first_keyless and second_keyless and (not digest_one or digest_one != digest_other):
            return None  # calls and to-dos often share a subject, so two keyless Tasks need one body
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


# -- describing a group -------------------------------------------------------------


def _make_groups(
    indexes: list[int], grouping: _Grouping, *, case_sensitive: bool, tool_user_ids: Collection[str]
) -> list[DuplicateGroup]:
    """Describe one component: split by related record into duplicates and clones."""
    parts = _related_parts(indexes, grouping.tasks)
    if len(parts) == 1:
        return [_make_group(indexes, grouping, case_sensitive=case_sensitive, tool_user_ids=tool_user_ids)]
    emails = _Emails(indexes, grouping)
    groups = [
        _make_group(part, grouping, case_sensitive=case_sensitive, tool_user_ids=tool_user_ids,
                    elsewhere=emails.elsewhere(part))
        for part in parts
        if len(part) > 1
    ]
    groups.extend(
        _make_group(clones, grouping, case_sensitive=case_sensitive, tool_user_ids=tool_user_ids, clones=True)
        for clones in emails.clone_sets([part[0] for part in parts if len(part) == 1])
    )
    return groups


class _Emails:
    """The e-mail each Task of a component records, which separates clones from unrelated Tasks.

    Tasks are one e-mail when they share one key (once normalised). A Task without
    a key is one e-mail with another Task that has the same subject (case and
    punctuation ignored) and the same body, and when that Task is keyed, the keyless
    Task counts under its key. A keyless Task without a body is one e-mail with no other.
    """

    def __init__(self, indexes: list[int], grouping: _Grouping) -> None:
        tasks, family_of = grouping.tasks, grouping.family_of
        keyed_bodies: dict[tuple[str, str], str] = {}
        for index in indexes:
            family = family_of[index]
            if family is not None:
                keyed_bodies.setdefault(_subject_and_body(tasks[index]), family)
        self.identity: dict[int, tuple[str, ...]] = {}
        for index in indexes:
            family = family_of[index]
            if family is not None:
                self.identity[index] = ("key", family)
                continue
            subject_body = _subject_and_body(tasks[index])
            if not subject_body[1]:
                self.identity[index] = ("alone", str(index))
            elif subject_body in keyed_bodies:
                self.identity[index] = ("key", keyed_bodies[subject_body])
            else:
                self.identity[index] = ("subject and body", *subject_body)
        self.tasks_per_email = Counter(self.identity.values())

    def elsewhere(self, part: list[int]) -> int:
        """Count the Tasks outside ``part`` that are one e-mail with a Task of it."""
        inside = Counter(self.identity[index] for index in part)
        return sum(self.tasks_per_email[identity] - count for identity, count in inside.items())

    def clone_sets(self, alone: list[int]) -> list[list[int]]:
        """Split the Tasks alone on their related record into sets of one e-mail, two Tasks or more."""
        sets: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for index in alone:
            sets[self.identity[index]].append(index)
        return [members for members in sets.values() if len(members) > 1]


def _subject_and_body(task: TaskRecord) -> tuple[str, str]:
    """Return what makes a Task's e-mail without its key: the subject for comparing and the body digest."""
    return default_process(task.subject), _digest(task)


def _related_parts(indexes: list[int], tasks: list[TaskRecord]) -> list[list[int]]:
    """Split Tasks by related record: WhatId, or WhoId when none of them has a WhatId.

    Tasks without a WhatId stay with the Tasks of the one WhatId when there is
    only one, because a mix of Tasks with and without a WhatId is a duplicate, not
    a clone. The same applies to Tasks without a WhoId when no Task has a WhatId.
    """
    what_ids = {tasks[index].what_id for index in indexes if tasks[index].what_id}
    if len(what_ids) > 1:
        related = [tasks[index].what_id or f"who:{tasks[index].who_id or ''}" for index in indexes]
    elif what_ids:
        return [indexes]
    else:
        who_ids = {tasks[index].who_id for index in indexes if tasks[index].who_id}
        if len(who_ids) <= 1:
            return [indexes]
        related = [tasks[index].who_id or "" for index in indexes]
    parts: dict[str, list[int]] = defaultdict(list)
    for index, record_related in zip(indexes, related, strict=True):
        parts[record_related].append(index)
    return list(parts.values())


def _make_group(
    indexes: list[int],
    grouping: _Grouping,
    *,
    case_sensitive: bool,
    tool_user_ids: Collection[str],
    clones: bool = False,
    elsewhere: int = 0,
) -> DuplicateGroup:
    """Describe a group; ``elsewhere`` counts the Tasks of one e-mail left out on other related records."""
    records = tuple(grouping.tasks[index] for index in indexes)
    family = next((family for index in indexes if (family := grouping.family_of[index]) is not None), "")
    keyless = sum(1 for index in indexes if grouping.family_of[index] is None)
    keys = {record.key for record in records if record.key}
    case_only = False
    if keyless:
        ordered = tuple(sorted(records, key=_by_created))
    else:
        ordered = tuple(sorted(records, key=lambda record: (record.key or "", record.id)))
    if clones:
        kind, key = GroupKind.CLONES, next(iter(keys)) if len(keys) == 1 else _shown_family(family)
        reason = _clones_reason(ordered, len(records) - keyless)
    elif keyless:
        similarity = grouping.min_similarity.get(grouping.find(indexes[0]), 100.0)
        kind, key, reason = _likeness_group(ordered, family, keyless, similarity,
                                            grouping.thresholds.subject_similarity)
    else:
        kind, key, reason, case_only = _key_group(ordered, family, case_sensitive=case_sensitive)
    if elsewhere:
        if elsewhere == 1:
            reason += "; one more Task logs the same e-mail on another related record and is kept apart"
        else:
            reason += (f"; {elsewhere} more Tasks log the same e-mail on other related records and are "
                       "kept apart")
    survivor, survivor_reason = default_survivor(ordered, tool_user_ids)
    return DuplicateGroup(
        kind=kind,
        key=key,
        records=ordered,
        reason=reason + _bin_note(ordered) + _writers_note(ordered),
        group_id=min(record.id for record in ordered),
        survivor_id=survivor.id,
        survivor_reason=survivor_reason,
        case_only=case_only,
    )


def _by_created(record: TaskRecord) -> tuple[float, str]:
    return created_timestamp(record.created_date), record.id


def _key_group(
    records: tuple[TaskRecord, ...], family: str, *, case_sensitive: bool
) -> tuple[GroupKind, str, str, bool]:
    """Return the kind, key, reason and ``case_only`` flag of a group of keyed Tasks.

    The flag is True when Salesforce may count the keys as different (see DuplicateGroup.case_only).
    """
    keys = {record.key or "" for record in records}
    if len(keys) == 1:
        return GroupKind.EXACT, next(iter(keys)), f"{len(records)} Tasks hold the same key", False

    case_kept = [normalise_key(record.key or "", case_sensitive=True) for record in records]
    ascii_folded = {_ascii_lower(key) for key in case_kept}
    differences = _differences(keys)
    if len(ascii_folded) > 1:
        # Some keys are one only once letters beyond ASCII are folded, such as "ß" and "SS".
        differences = [_UNICODE_CASE if difference == "case" else difference for difference in differences]
    reason = f"{len(records)} Tasks hold keys that differ only in {_join_words(differences)}"
    # On a case-sensitive field Salesforce counts keys that differ in case as different keys, so
    # such Tasks do not block each other.
    if case_sensitive:
        case_only = len(set(case_kept)) == len(records)
        if case_only:
            reason += ("; the field is case-sensitive, so Salesforce treats them as different keys, and "
                       "they are shown as possible duplicates but not flagged")
        elif "case" in differences or _UNICODE_CASE in differences:
            reason += " (the field is case-sensitive, so Salesforce treats them as different keys)"
    else:
        # The Unique option reads "Treat 'ABC' and 'abc' as duplicate values" and does not mention
        # letters beyond ASCII (Kelvin sign, "ß"), so such keys may not block each other.
        case_only = len(ascii_folded) == len(records)
        if case_only:
            reason = (f"{len(records)} Tasks hold keys that differ in {_join_words(differences)}, which "
                      "Salesforce may count as different keys, so they are shown as possible duplicates "
                      "but not flagged")
    identical = _largest_identical_share(records)
    if identical > 1:
        reason += f"; {identical} of them hold the identical key"
    return GroupKind.NORMALISED, _shown_family(family), reason, case_only


_UNICODE_CASE = "case or Unicode folding"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(value: str) -> str:
    """Fold only the ASCII letters A to Z, the case rule Salesforce documents."""
    return value.translate(_ASCII_LOWER)


def _likeness_group(
    records: tuple[TaskRecord, ...], family: str, keyless: int, similarity: float, least: int
) -> tuple[GroupKind, str, str]:
    """Return the kind, key and reason of a group with keyless Tasks.

    ``similarity`` is the lowest likeness of the subjects paired, and ``least``
    the minimum likeness the matching rules require.
    """
    keys = {record.key for record in records if record.key}
    key = next(iter(keys)) if len(keys) == 1 else _shown_family(family)
    times = [created_timestamp(record.created_date) for record in records]
    contacts = {record.who_id for record in records}
    parts = [
        "the same owner" + (" and contact" if len(contacts) == 1 and None not in contacts else ""),
        f"created within {_duration(max(times) - min(times))}",
        _subjects_phrase(similarity, least),
    ]
    digests = [_digest(record) for record in records]
    bodies = set(digests) - {""}
    if len(bodies) == 1:
        parts.append("the same body" if all(digests) else "the same body where there is one")
    no_key = "none has a key" if keyless == len(records) else (
        "one has no key" if keyless == 1 else f"{keyless} have no key")
    reason = f"{len(records)} Tasks look like one e-mail logged more than once ({no_key}): {', '.join(parts)}"
    return GroupKind.PROBABLE, key, reason


def _subjects_phrase(similarity: float, least: int) -> str:
    """Describe how alike the subjects are, such as "subjects 93% alike (the rule asks at least 90%)"."""
    if similarity >= 100:
        return "identical subjects"
    # Subjects that are not identical never read as 100% alike.
    return f"subjects {min(round(similarity), 99)}% alike (the rule asks at least {least}%)"


def _clones_reason(records: tuple[TaskRecord, ...], keyed: int) -> str:
    if all(record.what_id for record in records):
        related = f"{len(records)} different related records (WhatId)"
    elif any(record.what_id for record in records):
        related = f"{len(records)} different related records (WhatId or WhoId)"
    else:
        related = f"{len(records)} different contacts or leads (WhoId)"
    reason = (f"{len(records)} Tasks are one e-mail logged once for each of {related}, as cadence tools "
              "do on purpose, so they are not flagged as duplicates")
    if keyed > 1:
        reason += "; they hold one key, so the Message-ID field cannot be Unique until all but one lose it"
    return reason


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
    """Name who wrote the Tasks, when the scan read their writers."""
    writers = list(dict.fromkeys(record.writer for record in records if record.writer))
    if not writers:
        return ""
    if len(writers) == 1:
        return f"; all written by {writers[0]}"
    return f"; written by {_join_words(writers)}"
