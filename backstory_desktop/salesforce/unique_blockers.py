"""Find the values that keep the Message-ID field from being made Unique.

The field is defined on Activity, so Task and Event records share one unique
index, and Salesforce refuses to build it while two records hold the same
value, deleted (recycle bin) and archived activities included. A
case-insensitive unique field also counts values that differ only in letter
case as the same. The scan reads both objects through queryAll and groups the
values on the client; it changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback, check_cancel, no_progress
from backstory_desktop.salesforce.connection import OrgConnection

logger = logging.getLogger(__name__)

ACTIVITY_OBJECTS = ("Task", "Event")


@dataclass(frozen=True)
class KeyedActivity:
    """One Task or Event with a value in the field."""

    sobject: str  # "Task" or "Event"
    record_id: str
    value: str
    deleted: bool  # in the recycle bin
    archived: bool


@dataclass(frozen=True)
class UniqueBlocker:
    """Activities whose values would collide in the unique index; ``value`` is the first one read."""

    value: str
    records: tuple[KeyedActivity, ...]


def find_unique_blockers(
    conn: OrgConnection,
    field: str,
    *,
    case_sensitive: bool,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[UniqueBlocker]:
    """Return every group of Tasks and Events that would stop ``field`` from being made Unique.

    ``case_sensitive`` is the field's planned case rule: without it, values
    that differ only in letter case collide. Groups come in the order their
    first value was read. Raises Cancelled when ``cancel`` is set.
    """
    field = validate_field_api_name(field)
    by_value: dict[str, list[KeyedActivity]] = defaultdict(list)
    for activity in _keyed_activities(conn, field, progress, cancel):
        index_key = activity.value if case_sensitive else activity.value.casefold()
        by_value[index_key].append(activity)
    blockers = [
        UniqueBlocker(records[0].value, tuple(records))
        for records in by_value.values()
        if len(records) > 1
    ]
    logger.info("Found %d values of %s held by more than one activity", len(blockers), field)
    return blockers


def _keyed_activities(
    conn: OrgConnection, field: str, progress: ProgressCallback, cancel: threading.Event | None
) -> Iterator[KeyedActivity]:
    done = 0
    for sobject in ACTIVITY_OBJECTS:
        soql = f"SELECT Id, {field}, IsDeleted, IsArchived FROM {sobject} WHERE {field} != null"
        for page in conn.query_pages(soql, include_deleted=True):
            check_cancel(cancel)
            for row in page.get("records", []):
                yield KeyedActivity(
                    sobject,
                    str(row["Id"]),
                    str(row[field]),
                    bool(row.get("IsDeleted")),
                    bool(row.get("IsArchived")),
                )
                done += 1
            progress(done, 0, f"Read {done} activities with a {field} value")
