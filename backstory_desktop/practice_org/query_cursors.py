"""Query cursors of one practice org: the results still to be paged with ``nextRecordsUrl``.

Salesforce keeps cursors for two days and, since API version 56.0, sets no limit
on how many are open (Salesforce App Limits Cheatsheet, "API Query Cursor
Limits"). The practice org keeps them in memory, so it drops the oldest past the
limits below; a dropped cursor's locator gets INVALID_QUERY_LOCATOR.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from backstory_desktop.practice_org.soql import RecordShaper

_MAX_OPEN_CURSORS = 100
# Open cursors together keep at most this many record ids; the oldest are dropped first.
_MAX_CURSOR_IDS = 5_000_000


@dataclass(frozen=True)
class QueryCursor:
    """The ids of a query's result in order, how to shape each record, and who may page it."""

    record_ids: list[str]
    shape_record: RecordShaper
    user_id: str
    issued_offsets: set[int] = field(default_factory=set)
    """The offsets named by a ``nextRecordsUrl`` so far, the only ones accepted."""


class QueryCursors:
    """Results still to be fetched, by query locator; the oldest are dropped past the limits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, QueryCursor] = OrderedDict()

    def open(self, cursor: QueryCursor) -> str:
        locator = "01g" + secrets.token_hex(8)
        with self._lock:
            self._open[locator] = cursor
            while len(self._open) > 1 and (
                    len(self._open) > _MAX_OPEN_CURSORS
                    or sum(len(item.record_ids) for item in self._open.values()) > _MAX_CURSOR_IDS):
                self._open.popitem(last=False)
        return locator

    def get(self, locator: str) -> QueryCursor | None:
        with self._lock:
            return self._open.get(locator)
