"""Find the values that keep the Message-ID field from being made Unique.

The field is defined on Activity, so Task and Event records share one unique
index, and Salesforce refuses to build it while two records hold the same
value, deleted (recycle bin) and archived activities included. A
case-insensitive unique field also counts values that differ only in letter
case as the same. The scan reads both objects through queryAll and groups the
values on the client; it changes nothing. The same rows show the values too
long for the Text(255) a field of another type is changed to.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
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
    cut_to: int | None = None,
    filterable: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[UniqueBlocker]:
    """Return every group of Tasks and Events that would stop ``field`` from being made Unique.

    ``case_sensitive`` is the field's planned case rule: without it, values
    that differ only in letter case collide. ``cut_to`` compares only the first
    that many characters, for a field whose new type stores no more. A field
    that is not ``filterable`` (a long text area) is read whole, because SOQL
    cannot filter it. Groups come in the order their first value was read.
    Raises Cancelled when ``cancel`` is set.
    """
    field = validate_field_api_name(field)
    activities = read_keyed_activities(conn, field, filterable=filterable, progress=progress, cancel=cancel)
    return unique_blockers_among(activities, field, case_sensitive=case_sensitive, cut_to=cut_to)


def find_long_values(
    conn: OrgConnection,
    field: str,
    max_length: int,
    *,
    filterable: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[KeyedActivity]:
    """Return the Tasks and Events whose value is longer than ``max_length`` characters.

    Recycle bin and archive are included, as for Unique. Raises Cancelled when
    ``cancel`` is set.
    """
    field = validate_field_api_name(field)
    activities = read_keyed_activities(conn, field, filterable=filterable, progress=progress, cancel=cancel)
    return long_values_among(activities, field, max_length)


def read_keyed_activities(
    conn: OrgConnection,
    field: str,
    *,
    filterable: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[KeyedActivity]:
    """Read every Task and Event with a value in ``field``, recycle bin and archive included.

    A field that is not ``filterable`` (a long text area) is read whole, so its
    rows are read once and given to both unique_blockers_among and
    long_values_among. Raises Cancelled when ``cancel`` is set.
    """
    field = validate_field_api_name(field)
    return list(_keyed_activities(conn, field, filterable, progress, cancel))


def unique_blockers_among(
    activities: Iterable[KeyedActivity], field: str, *, case_sensitive: bool, cut_to: int | None = None
) -> list[UniqueBlocker]:
    """Group ``activities`` by the value the unique index would hold, as find_unique_blockers does."""
    by_value: dict[str, list[KeyedActivity]] = defaultdict(list)
    for activity in activities:
        value = activity.value[:cut_to] if cut_to is not None else activity.value
        index_key = value if case_sensitive else value.casefold()
        by_value[index_key].append(activity)
    blockers = [
        UniqueBlocker(records[0].value, tuple(records))
        for records in by_value.values()
        if len(records) > 1
    ]
    logger.info("Found %d values of %s held by more than one activity", len(blockers), field)
    return blockers


def long_values_among(
    activities: Iterable[KeyedActivity], field: str, max_length: int
) -> list[KeyedActivity]:
    """Return the ``activities`` whose value is longer than ``max_length`` characters."""
    long_values = [activity for activity in activities if len(activity.value) > max_length]
    logger.info("Found %d values of %s longer than %d characters", len(long_values), field, max_length)
    return long_values


def _keyed_activities(
    conn: OrgConnection, field: str, filterable: bool, progress: ProgressCallback,
    cancel: threading.Event | None,
) -> Iterator[KeyedActivity]:
    done = 0
    where = f" WHERE {field} != null" if filterable else ""
    for sobject in ACTIVITY_OBJECTS:
        soql = f"SELECT Id, {field}, IsDeleted, IsArchived FROM {sobject}{where}"
        for page in conn.query_pages(soql, include_deleted=True):
            check_cancel(cancel)
            for row in page.get("records", []):
                if row.get(field) in (None, ""):
                    continue
                yield KeyedActivity(
                    sobject,
                    str(row["Id"]),
                    str(row[field]),
                    bool(row.get("IsDeleted")),
                    bool(row.get("IsArchived")),
                )
                done += 1
            progress(done, 0, f"Read {done} activities with a {field} value")
