"""Filters, sort keys and counts of duplicate groups for the duplicate viewer, without Qt.

The viewer shows up to hundreds of thousands of groups. What it reads of a group
(its writers' sources, owners, dates, the text searched) is computed once per
scan as ``GroupFacts``, so filtering and sorting touch no record.

A writer label (core.survivor.writer_label) starts with the cadence tool's name
for a tool user's Task ("Outreach (jane@x.example)"), is "Backstory" for a Task
only Backstory wrote, and is the creator's name otherwise. ``writer_source``
reads it back as a source: a tool's name, Backstory, or OTHER_WRITERS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.survivor import BACKSTORY

OTHER_WRITERS = "Other users"

# The viewer's columns, in order. Status is the model's own, not a fact of the group.
KIND, KEY, TASKS, WRITERS, OWNER, NEWEST, STATUS, REASON = range(8)
COLUMN_TITLES = ("Kind", "Key or subject", "Tasks", "Written by", "Owner", "Newest", "Status", "Reason")

# The sort and listing order of kinds: the surest duplicates first, the clones last.
KIND_ORDER = {GroupKind.EXACT: 0, GroupKind.NORMALISED: 1, GroupKind.PROBABLE: 2, GroupKind.CLONES: 3}


@dataclass(frozen=True)
class GroupFilter:
    """The viewer's filters, where an empty value lets every group through.

    ``tool`` is a source as ``writer_source`` names it. ``date_from`` and
    ``date_to`` are ISO dates (``2026-11-03``), both included: a group passes
    when the span from its oldest to its newest created Task overlaps them.
    ``text`` is searched, case folded, in the key and the subject.
    """

    kinds: frozenset[GroupKind] = frozenset()
    tool: str = ""
    owner: str = ""
    date_from: str = ""
    date_to: str = ""
    text: str = ""
    include_clones: bool = True


@dataclass(frozen=True, slots=True)
class GroupFacts:
    """The values of one group that the filters, the sort and the columns read."""

    sources: frozenset[str]
    # The writers' sources, with other users by name, each once in member order.
    writers: str
    owners: frozenset[str]
    owner: str
    oldest: str
    newest: str
    search_text: str


def writer_source(writer: str, tools: Collection[str]) -> str:
    """Return the source of a writer label: one of ``tools``, BACKSTORY or OTHER_WRITERS."""
    return _writer_source(writer, tuple(tools))


# A scan has few distinct writer labels and many Tasks, so each label is read once.
@lru_cache(maxsize=4096)
def _writer_source(writer: str, tools: tuple[str, ...]) -> str:
    for tool in tools:
        if writer == tool or writer.startswith((f"{tool} (", f"{tool},")):
            return tool
    return BACKSTORY if writer == BACKSTORY else OTHER_WRITERS


def shown_key(group: DuplicateGroup) -> str:
    """Return the key of a group, or for a keyless group its subject after "(no key)"."""
    return group.key if group.key else f"(no key) {group.subject}"


def group_facts(group: DuplicateGroup, tools: Collection[str] = ()) -> GroupFacts:
    """Compute the facts of one group. ``tools`` are the cadence tools whose users wrote Tasks."""
    tools = tuple(tools)
    sources = [_writer_source(record.writer, tools) for record in group.records]
    # A tool's or Backstory's name is enough in a column, but another user is named in full.
    writers = _distinct(label if source == OTHER_WRITERS else source
                        for label, source in zip((record.writer for record in group.records), sources,
                                                 strict=True) if label)
    owners = _distinct(record.owner_name or record.owner_id or "" for record in group.records)
    owners = [owner for owner in owners if owner]
    created = sorted(record.created_date for record in group.records if record.created_date)
    return GroupFacts(
        sources=frozenset(sources),
        writers=", ".join(writers),
        owners=frozenset(owners),
        owner=", ".join(owners),
        oldest=created[0] if created else "",
        newest=created[-1] if created else "",
        search_text=f"{group.key}\n{group.subject}".casefold(),
    )


def _distinct(values: Iterable[str]) -> list[str]:
    """Return the values without repeats, in their first order."""
    return list(dict.fromkeys(values))


def matches(group: DuplicateGroup, f: GroupFilter, *, tools: Collection[str] = (),
            facts: GroupFacts | None = None) -> bool:
    """Return True when the filter lets a group through. Passing ``facts`` saves computing them again."""
    if group.kind is GroupKind.CLONES and not f.include_clones:
        return False
    if f.kinds and group.kind not in f.kinds:
        return False
    if not (f.tool or f.owner or f.date_from or f.date_to or f.text):
        return True
    if facts is None:
        facts = group_facts(group, tools)
    if f.tool and f.tool not in facts.sources:
        return False
    if f.owner and f.owner not in facts.owners:
        return False
    # Created dates are ISO strings, so the first ten characters compare as dates.
    if f.date_from and facts.newest[:10] < f.date_from:
        return False
    if f.date_to and (not facts.oldest or facts.oldest[:10] > f.date_to):
        return False
    return not f.text or f.text.casefold() in facts.search_text


def sort_keys(group: DuplicateGroup, facts: GroupFacts | None = None) -> tuple[object, ...]:
    """Return one sort key per column (COLUMN_TITLES), with "" for Status, which the model sorts itself."""
    if facts is None:
        facts = group_facts(group)
    return (
        KIND_ORDER.get(group.kind, len(KIND_ORDER)),
        shown_key(group).casefold(),
        len(group.records),
        facts.writers.casefold(),
        facts.owner.casefold(),
        facts.newest,
        "",
        group.reason.casefold(),
    )


def counts_by_tool(groups: Iterable[DuplicateGroup], tools: Collection[str] = ()) -> dict[str, int]:
    """Count the groups with a Task from each source, largest first. A group counts once per source."""
    tools = tuple(tools)
    counts: Counter[str] = Counter()
    for group in groups:
        counts.update({_writer_source(record.writer, tools) for record in group.records})
    return by_count(counts)


def by_count(counts: Counter[str]) -> dict[str, int]:
    """Return counts largest first, equal counts by name, so charts and lists keep one order."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def counts_by_kind(groups: Iterable[DuplicateGroup]) -> dict[str, int]:
    """Count the groups of each kind, every kind listed in KIND_ORDER's order, zeros included."""
    counts = Counter(group.kind for group in groups)
    return {kind.value: counts.get(kind, 0) for kind in sorted(GroupKind, key=KIND_ORDER.__getitem__)}


def counts_by_month(groups: Iterable[DuplicateGroup]) -> dict[str, int]:
    """Count the groups by the month ("2026-11") their newest Task was created, oldest month first.

    A group whose Tasks have no created date is left out.
    """
    counts: Counter[str] = Counter()
    for group in groups:
        newest = max((record.created_date for record in group.records), default="")
        if newest:
            counts[newest[:7]] += 1
    return dict(sorted(counts.items()))
