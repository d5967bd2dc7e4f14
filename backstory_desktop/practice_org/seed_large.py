"""The ``large`` scenario: the default org's users and people, and only generated Tasks.

The Message-ID field is External ID but not Unique (as in ``non-unique``), so
the generated Tasks can hold every kind of duplicate a key scan must find:

- exact copies of another Task's key;
- the same key with and without angle brackets;
- the same key in another letter case.

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

@dataclass(frozen=True)
class LargeScenario:
    """How many Tasks the large scenario generates and which share of them are duplicates.

    ``duplicate_share`` is the share of Tasks whose key repeats an earlier Task's
    key (exactly, with the other bracket spelling, or in another case), from 0 to 1.
    ``random_seed`` fixes which rows are duplicates and of which kind.
    """

    tasks: int = DEFAULT_TASKS
    duplicate_share: float = DEFAULT_DUPLICATE_SHARE
    random_seed: int = DEFAULT_RANDOM_SEED

    def __post_init__(self) -> None:
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
        """The number of generated Tasks whose key repeats an earlier one."""
        if self.tasks == 0:
            return 0
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
        _insert_generated_tasks(store, options, moment)
    logger.info("Generated %d Tasks (%d duplicates) in %.1f s", options.tasks,
                options.duplicate_tasks, time.perf_counter() - started)


def _insert_generated_tasks(store: Store, options: LargeScenario, now: datetime.datetime) -> None:
    owners = [record.id for record in store.records_of("User")
              if record.fields.get("IsActive") and record.fields.get("ProfileId")]
    people: list[str | None] = [
        record.id for record in (*store.records_of("Contact"), *store.records_of("Lead"))]
    creator = next(record.id for record in store.records_of("User")
                   if record.fields.get("Username") == OUTREACH_USERNAME)
    ids = store.reserve_ids("Task", options.tasks)
    store.insert_many(_task_records(options, now, ids, owners, people or [None], creator))


def generated_keys(options: LargeScenario) -> Iterator[tuple[str, str | None]]:
    """Yield each generated Task's key and, for a duplicate, the kind of duplicate it is."""
    rng = random.Random(options.random_seed)
    duplicate_rows = set(rng.sample(range(1, options.tasks), options.duplicate_tasks)) \
        if options.tasks > 1 else set()
    originals: list[str] = []
    for index in range(options.tasks):
        if index in duplicate_rows:
            source = originals[rng.randrange(len(originals))]
            kind = DUPLICATE_KINDS[rng.randrange(len(DUPLICATE_KINDS))]
            yield _duplicate_spelling(source, kind), kind
            continue
        bare = f"{index:08x}.{rng.getrandbits(40):010x}@mail.large.practice.example"
        # Half the original keys carry angle brackets, as cadence tools differ on them.
        key = f"<{bare}>" if index % 2 == 0 else bare
        originals.append(key)
        yield key, None


def _duplicate_spelling(key: str, kind: str) -> str:
    if kind == "exact":
        return key
    if kind == "brackets":
        return key[1:-1] if key.startswith("<") else f"<{key}>"
    return key.upper()


def _task_records(options: LargeScenario, now: datetime.datetime, ids: Iterator[str],
                  owners: list[str], people: list[str | None], creator: str) -> Iterator[Record]:
    days = _DayStamps(now)
    for index, ((key, _kind), record_id) in enumerate(zip(generated_keys(options), ids, strict=True)):
        archived = index % ARCHIVED_EVERY == ARCHIVED_EVERY - 1
        deleted = not archived and index % DELETED_EVERY == DELETED_EVERY - 2
        # Archived Tasks are closed and 400 to 699 days old, past Salesforce's 365-day archive
        # age. The others are 1 to 360 days old.
        days_ago = 400 + index % 300 if archived else 1 + index % 360
        day = days.iso_date(days_ago)
        hours, rest = divmod(index % 86_400, 3600)
        stamp = f"{day}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000+0000"
        fields = {
            "Subject": f"Email: generated message {index}",
            "WhoId": people[index % len(people)],
            "OwnerId": owners[index % len(owners)],
            "Status": "Completed",
            "IsClosed": True,
            "Priority": "Normal",
            "ActivityDate": day,
            "TaskSubtype": "Email",
            FLAG_FIELD: False,
            MESSAGE_ID_FIELD: key,
        }
        yield Record(record_id, "Task", fields, is_deleted=deleted, is_archived=archived,
                     created_date=stamp, last_modified_date=stamp, created_by_id=creator,
                     last_modified_by_id=creator)


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
