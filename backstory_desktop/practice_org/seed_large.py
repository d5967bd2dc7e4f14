"""The ``large`` scenario: the default org's users and people, and only generated Tasks.

The Message-ID field is External ID but not Unique (as in ``non-unique``), so
the generated Tasks can hold every kind of duplicate a key scan must find:

- exact copies of another Task's key;
- the same key with and without angle brackets;
- the same key in another letter case.

With ``exact_share``, ``normalised_share`` and ``probable_share`` set, the share
of each kind is chosen instead, and every duplicate copies its original's
subject, owner and WhoId. The kinds are exact copies, normalised variants
(other brackets, other case, or surrounding whitespace) and probable
duplicates. A probable duplicate has no key and is created two seconds after
its original by the SalesLoft user, as a second cadence tool logging the same
e-mail would. Without chosen shares, a duplicate keeps its own row's subject,
owner and WhoId.

A share of the Tasks is archived (closed, ActivityDate over 365 days ago) and a
smaller share sits in the recycle bin, so ``query`` and ``queryAll`` differ.
The same options and the same ``now`` give the same records and ids.

The Tasks are written with one ``executemany`` in the seeding transaction,
which is what makes a million of them affordable.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backstory_desktop.practice_org.seed import (
    FLAG_FIELD,
    MESSAGE_ID_FIELD,
    OUTREACH_USERNAME,
    SALESLOFT_USERNAME,
    seed_org,
)
from backstory_desktop.practice_org.store import Record, Store, now_utc

logger = logging.getLogger(__name__)

LARGE_SCENARIO = "large"
DEFAULT_TASKS = 100_000
DEFAULT_DUPLICATE_SHARE = 0.05
DEFAULT_RANDOM_SEED = 1

# One generated Task in ARCHIVED_EVERY is archived, and one in DELETED_EVERY is in the recycle bin.
ARCHIVED_EVERY = 50
DELETED_EVERY = 200

# The kinds of duplicate, drawn with equal weight for each duplicate row.
DUPLICATE_KINDS = ("exact", "brackets", "case")
# The spellings of a normalised duplicate, drawn with equal weight when shares are chosen.
NORMALISED_KINDS = ("brackets", "case", "whitespace")
PROBABLE_KIND = "probable"
# A probable duplicate is created this many seconds after the Task it copies.
PROBABLE_DELAY_SECONDS = 2


@dataclass(frozen=True)
class GeneratedRow:
    """One generated Task's key (None for a probable duplicate), duplicate kind and source row.

    ``source`` is the row's own index for an original, else the index of the
    original it repeats.
    """

    key: str | None
    kind: str | None
    source: int

@dataclass(frozen=True)
class LargeScenario:
    """How many Tasks the large scenario generates and which share of them are duplicates.

    ``duplicate_share`` is the share of Tasks whose key repeats an earlier Task's
    key (exactly, with the other bracket spelling, or in another case), from 0 to 1.
    ``random_seed`` fixes which rows are duplicates and of which kind.
    ``exact_share``, ``normalised_share`` and ``probable_share`` (each 0 to 1,
    together at most 1) replace ``duplicate_share`` when any of them is set; the
    ones left unset count as 0.
    """

    tasks: int = DEFAULT_TASKS
    duplicate_share: float = DEFAULT_DUPLICATE_SHARE
    random_seed: int = DEFAULT_RANDOM_SEED
    exact_share: float | None = None
    normalised_share: float | None = None
    probable_share: float | None = None

    def __post_init__(self) -> None:
        self._check_size()
        for name in ("exact_share", "normalised_share", "probable_share"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1, not {value!r}")
        if self.chosen_shares and sum(self.shares().values()) > 1:
            raise ValueError(f"the exact, normalised and probable shares add up to more than 1 "
                             f"({sum(self.shares().values()):g}): lower one of them")

    @property
    def chosen_shares(self) -> bool:
        """Whether the shares of each kind are chosen, rather than ``duplicate_share``."""
        return any(share is not None for share in
                   (self.exact_share, self.normalised_share, self.probable_share))

    def shares(self) -> dict[str, float]:
        """Return the chosen share of each kind: exact, normalised, probable."""
        return {"exact": self.exact_share or 0.0, "normalised": self.normalised_share or 0.0,
                PROBABLE_KIND: self.probable_share or 0.0}

    def kind_counts(self) -> dict[str, int]:
        """Return how many rows of each chosen kind are generated (empty without chosen shares).

        The total stays below ``tasks``, because the first Task is always an original.
        """
        if not self.chosen_shares or self.tasks < 2:
            return {}
        counts: dict[str, int] = {}
        room = self.tasks - 1
        for kind, share in self.shares().items():
            counts[kind] = min(round(self.tasks * share), room)
            room -= counts[kind]
        return counts

    def _check_size(self) -> None:
        if isinstance(self.tasks, bool) or not isinstance(self.tasks, int):
            raise ValueError(f"the large scenario needs a whole number of Tasks, not {self.tasks!r}")
        if isinstance(self.duplicate_share, bool) or not isinstance(self.duplicate_share, int | float):
            raise ValueError(f"the duplicate share must be a number from 0 to 1, not "
                             f"{self.duplicate_share!r}")
        if self.tasks < 0:
            raise ValueError(f"the large scenario needs 0 or more Tasks, not {self.tasks}")
        if not 0.0 <= self.duplicate_share <= 1.0:
            raise ValueError(f"the duplicate share must be between 0 and 1, not "
                             f"{self.duplicate_share}")

    @property
    def duplicate_tasks(self) -> int:
        """The number of generated Tasks that repeat an earlier one."""
        if self.tasks == 0:
            return 0
        if self.chosen_shares:
            return sum(self.kind_counts().values())
        return min(round(self.tasks * self.duplicate_share), self.tasks - 1)


def seed_large_org(store: Store, mailbox: Path, options: LargeScenario, *,
                   now: datetime.datetime | None = None) -> None:
    """Seed the default org's users and people, then add the generated Tasks, in one transaction."""
    moment = now or now_utc()
    started = time.perf_counter()
    with store.transaction():
        seed_org(store, LARGE_SCENARIO, mailbox, now=moment)
        store.set_meta("large_tasks", str(options.tasks))
        store.set_meta("large_duplicate_share", str(options.duplicate_share))
        store.set_meta("large_random_seed", str(options.random_seed))
        if options.chosen_shares:
            store.set_meta("large_shares", ",".join(
                f"{kind}={share:g}" for kind, share in options.shares().items()))
        _insert_generated_tasks(store, options, moment)
    logger.info("Generated %d Tasks (%d duplicates) in %.1f s", options.tasks,
                options.duplicate_tasks, time.perf_counter() - started)


def _insert_generated_tasks(store: Store, options: LargeScenario, now: datetime.datetime) -> None:
    owners = [record.id for record in store.records_of("User")
              if record.fields.get("IsActive") and record.fields.get("ProfileId")]
    people: list[str | None] = [
        record.id for record in (*store.records_of("Contact"), *store.records_of("Lead"))]
    users = {record.fields.get("Username"): record.id for record in store.records_of("User")}
    creators = _Creators(outreach=users[OUTREACH_USERNAME],
                         second_tool=users.get(SALESLOFT_USERNAME, users[OUTREACH_USERNAME]))
    ids = store.reserve_ids("Task", options.tasks)
    store.insert_many(_task_records(options, now, ids, owners, people or [None], creators))


@dataclass(frozen=True)
class _Creators:
    outreach: str
    second_tool: str


def generated_keys(options: LargeScenario) -> Iterator[tuple[str | None, str | None]]:
    """Yield each generated Task's key and, for a duplicate, the kind of duplicate it is."""
    for row in generated_rows(options):
        yield row.key, row.kind


def generated_rows(options: LargeScenario) -> Iterator[GeneratedRow]:
    """Yield each generated Task's key, duplicate kind and source row, the same for the same options."""
    if options.chosen_shares:
        yield from _rows_of_chosen_shares(options)
        return
    rng = random.Random(options.random_seed)
    duplicate_rows = set(rng.sample(range(1, options.tasks), options.duplicate_tasks)) \
        if options.tasks > 1 else set()
    originals: list[tuple[int, str]] = []
    for index in range(options.tasks):
        if index in duplicate_rows:
            source, source_key = originals[rng.randrange(len(originals))]
            kind = DUPLICATE_KINDS[rng.randrange(len(DUPLICATE_KINDS))]
            yield GeneratedRow(_duplicate_spelling(source_key, kind), kind, source)
            continue
        key = _original_key(index, rng)
        originals.append((index, key))
        yield GeneratedRow(key, None, index)


def _rows_of_chosen_shares(options: LargeScenario) -> Iterator[GeneratedRow]:
    rng = random.Random(options.random_seed)
    counts = options.kind_counts()
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    rng.shuffle(kinds)
    duplicate_rows = dict(zip(sorted(rng.sample(range(1, options.tasks), len(kinds))), kinds,
                              strict=True)) if kinds else {}
    originals: list[tuple[int, str]] = []
    for index in range(options.tasks):
        kind = duplicate_rows.get(index)
        if kind is None:
            key = _original_key(index, rng)
            originals.append((index, key))
            yield GeneratedRow(key, None, index)
            continue
        source, source_key = originals[rng.randrange(len(originals))]
        if kind == PROBABLE_KIND:
            yield GeneratedRow(None, kind, source)
        elif kind == "exact":
            yield GeneratedRow(source_key, kind, source)
        else:
            spelling = NORMALISED_KINDS[rng.randrange(len(NORMALISED_KINDS))]
            yield GeneratedRow(_duplicate_spelling(source_key, spelling), spelling, source)


def _original_key(index: int, rng: random.Random) -> str:
    bare = f"{index:08x}.{rng.getrandbits(40):010x}@mail.large.practice.example"
    # Half the original keys carry angle brackets, as cadence tools differ on them.
    return f"<{bare}>" if index % 2 == 0 else bare


def _duplicate_spelling(key: str, kind: str) -> str:
    if kind == "exact":
        return key
    if kind == "brackets":
        return key[1:-1] if key.startswith("<") else f"<{key}>"
    if kind == "whitespace":
        return f" {key} "
    return key.upper()


def _task_records(options: LargeScenario, now: datetime.datetime, ids: Iterator[str],
                  owners: list[str], people: list[str | None], creators: _Creators) -> Iterator[Record]:
    days = _DayStamps(now)
    for index, (row, record_id) in enumerate(zip(generated_rows(options), ids, strict=True)):
        probable = row.kind == PROBABLE_KIND
        # A probable duplicate is live and copies its source's subject, people and day. With
        # chosen shares, every duplicate is the same e-mail: it copies the subject and people.
        template = row.source if probable else index
        email = row.source if options.chosen_shares else index
        archived = _archived(template)
        deleted = not probable and not archived and index % DELETED_EVERY == DELETED_EVERY - 2
        day = days.iso_date(_days_ago(template))
        seconds = template % 86_400
        if probable:
            seconds += PROBABLE_DELAY_SECONDS if seconds < 86_400 - PROBABLE_DELAY_SECONDS \
                else -PROBABLE_DELAY_SECONDS
        hours, rest = divmod(seconds, 3600)
        stamp = f"{day}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000+0000"
        fields = {
            "Subject": f"Email: generated message {email}",
            "WhoId": people[email % len(people)],
            "OwnerId": owners[email % len(owners)],
            "Status": "Completed",
            "IsClosed": True,
            "Priority": "Normal",
            "ActivityDate": day,
            "TaskSubtype": "Email",
            FLAG_FIELD: False,
            MESSAGE_ID_FIELD: row.key,
        }
        creator = creators.second_tool if probable else creators.outreach
        yield Record(record_id, "Task", fields, is_deleted=deleted, is_archived=archived and not probable,
                     created_date=stamp, last_modified_date=stamp, created_by_id=creator,
                     last_modified_by_id=creator)


def _archived(index: int) -> bool:
    return index % ARCHIVED_EVERY == ARCHIVED_EVERY - 1


def _days_ago(index: int) -> int:
    """Return a row's age: archived Tasks are 400 to 699 days old, past Salesforce's
    365-day archive age, and the others 1 to 360 days old."""
    return 400 + index % 300 if _archived(index) else 1 + index % 360


class _DayStamps:
    """ISO dates of the days before ``now``, computed once per day."""

    def __init__(self, now: datetime.datetime) -> None:
        self._today = now.astimezone(datetime.UTC).date()
        self._cache: dict[int, str] = {}

    def iso_date(self, days_ago: int) -> str:
        text = self._cache.get(days_ago)
        if text is None:
            text = (self._today - datetime.timedelta(days=days_ago)).isoformat()
            self._cache[days_ago] = text
        return text
