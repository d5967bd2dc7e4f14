"""Bulk API 2.0 jobs of the practice org, kept in memory while the server runs."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from backstory_desktop.practice_org.ids import make_id
from backstory_desktop.practice_org.soql import RecordShaper

# Bulk API 2.0 job ids start with 750 in Salesforce.
JOB_ID_PREFIX = "750"


@dataclass
class IngestResult:
    """One CSV row's outcome: the record id, whether it was created, or the error."""

    row: dict[str, str]
    record_id: str = ""
    created: bool = False
    error: str | None = None


@dataclass
class IngestJob:
    """An ingest job: its settings, the uploaded CSV and, once processed, one result per row."""

    id: str
    sobject: str
    operation: str
    external_id_field: str | None
    column_delimiter: str
    line_ending: str
    created_by_id: str
    created_date: str
    api_version: str
    state: str = "Open"
    uploads: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    results: list[IngestResult] = field(default_factory=list)


@dataclass
class QueryJob:
    """A query job: its SOQL, CSV columns and, once run, the ids of the records it found.

    The job starts as UploadComplete and runs the first time its state or results are
    read, so that it can be aborted in between as on Salesforce. ``run`` is set until then.
    """

    id: str
    operation: str
    query: str
    sobject: str
    created_by_id: str
    created_date: str
    api_version: str
    columns: list[str]
    state: str = "UploadComplete"
    run: Callable[[], tuple[list[str], RecordShaper]] | None = None
    record_ids: list[str] = field(default_factory=list)
    shape_record: RecordShaper | None = None


class BulkJobs:
    """The jobs of one practice org, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self.ingest: dict[str, IngestJob] = {}
        self.query: dict[str, QueryJob] = {}

    def new_id(self) -> str:
        with self._lock:
            return make_id(JOB_ID_PREFIX, next(self._sequence))
