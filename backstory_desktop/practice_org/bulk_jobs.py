"""Bulk API 2.0 jobs of the practice org, kept in memory while the server runs, and the
strict CSV reader of ingest job data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from backstory_desktop.practice_org.ids import make_id
from backstory_desktop.practice_org.soql import RecordShaper
from backstory_desktop.practice_org.store import Store

# Bulk API 2.0 job ids start with 750 in Salesforce.
JOB_ID_PREFIX = "750"

# The columnDelimiter and lineEnding values of a job ("Prepare CSV Files", Bulk API 2.0
# Developer Guide: https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_prepare_csv.htm).
COLUMN_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^",
                     "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


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
    # Set when the whole job fails (state Failed), for example on an unknown column.
    error_message: str | None = None
    # The data rows once processing started, the indexes of rows whose upsert key repeats,
    # and the first row not processed yet: rows from there on are unprocessed if the job
    # is aborted.
    rows: list[CsvRow] = field(default_factory=list)
    repeated_keys: set[int] = field(default_factory=set)
    next_row: int = 0


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


# Salesforce processes an ingest job's data in batches of 10,000 records ("Understanding
# Bulk API 2.0 Ingest", Bulk API 2.0 Developer Guide:
# https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_bulk_v2/datafiles_understanding_bulk2_ingest.htm).
INGEST_BATCH_SIZE = 10_000


class BulkJobs:
    """The jobs of one practice org, by id.

    The jobs live in memory, so after a restart reading an old one returns NOT_FOUND,
    as for a job Salesforce has deleted. Their ids come from a sequence kept in the
    database file, so no id is given to a second job, not even after a restart.

    ``batch_size`` is the number of an ingest job's rows that each read of its state
    processes, so a larger job stays InProgress over several reads and can be aborted
    part way. Tests lower it to see that with a few rows.
    """

    def __init__(self, store: Store, batch_size: int = INGEST_BATCH_SIZE) -> None:
        self.batch_size = batch_size
        self._store = store
        self.ingest: dict[str, IngestJob] = {}
        self.query: dict[str, QueryJob] = {}

    def new_id(self) -> str:
        return make_id(JOB_ID_PREFIX, self._store.next_sequence(JOB_ID_PREFIX))


@dataclass
class CsvRow:
    """One record of uploaded CSV data: its values, or why the row cannot be read."""

    values: list[str]
    error: str | None = None


def read_csv(text: str, delimiter: str, line_ending: str) -> list[CsvRow]:
    """Split job data into rows the way Bulk API 2.0 documents it.

    Only the job's own line ending ends a record, so a CR before LF in an LF job
    stays in the last value, and a lone LF in a CRLF job stays in its value.
    Values are not trimmed. A double quote that opens or closes a value may not
    have other characters (spaces included) next to it outside the quotes, or
    the row fails ("Prepare CSV Files", Bulk API 2.0 Developer Guide). Empty
    lines are skipped.
    """
    rows: list[CsvRow] = []
    values: list[str] = []
    value: list[str] = []
    error: str | None = None
    in_quotes = False
    after_quotes = False
    index = 0

    while index < len(text):
        char = text[index]
        if in_quotes:
            if char == '"' and text.startswith('""', index):
                value.append('"')
                index += 2
                continue
            if char == '"':
                in_quotes, after_quotes = False, True
            else:
                value.append(char)
            index += 1
            continue

        if text.startswith(line_ending, index) or char == delimiter:
            values.append("".join(value))
            value, after_quotes = [], False
            if char == delimiter:
                index += 1
                continue
            index += len(line_ending)
            if values != [""] or error is not None:
                rows.append(CsvRow(values, error))
            values, error = [], None
            continue

        if after_quotes or (char == '"' and value):
            # Characters after a closing quote, or a quote after other characters.
            error = error or _QUOTE_ERROR
        if char == '"' and not value and not after_quotes:
            in_quotes = True
        else:
            value.append(char)
        index += 1

    if in_quotes:
        error = error or "A quoted value has no closing double quote"
    if value or values or after_quotes:
        values.append("".join(value))
        rows.append(CsvRow(values, error))
    return rows


_QUOTE_ERROR = ("A double quote must be the first and last character of a value, with no "
                "spaces or other characters outside the quotes")
