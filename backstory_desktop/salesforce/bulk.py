"""Upsert Tasks through a Bulk API 2.0 ingest job, and read the results of one.

Every call goes through the OrgConnection, so its session, token renewal and
headers apply: JSON calls through ``OrgConnection.request``, and the CSV upload
and result downloads through ``OrgConnection.request_raw``, because ``request``
parses every response as JSON.

A job moves through the states of "Job States" (Bulk API 2.0 Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/how_requests_are_processed.htm).
It is created (Open), gets one CSV upload, is set to UploadComplete and is polled
until JobComplete, Failed or Aborted. Then ``successfulResults`` lists ``sf__Id``,
``sf__Created`` and the uploaded columns, ``failedResults`` lists ``sf__Id``,
``sf__Error`` and the uploaded columns, and ``unprocessedrecords`` lists the uploaded
columns of rows never processed because the job failed or was aborted. Result rows
need not come in upload order (as the salesforcer R package notes for Bulk 2.0,
https://search.r-project.org/CRAN/refmans/salesforcer/html/sf_get_job_records_bulk.html),
so results are matched by key, and the keys of one job must differ.

CSV data follows "Valid CSV Record Rows" (Bulk API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_csv_valid_record_rows.htm).
Values with a comma, a line break or a double quote are quoted, with inner quotes
doubled. An empty value leaves a field as it is on update, and ``#N/A`` sets it to
null. So a field given as None or "" is sent as ``#N/A``, as a Collections upsert
would clear it, and a field that a record does not name is sent empty. A text value
that is exactly ``#N/A`` cannot be sent through Bulk API 2.0, because it clears the field.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import Cancelled, ProgressCallback
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, SignInRequired, explain

logger = logging.getLogger(__name__)

NULL_VALUE = "#N/A"
TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
# The error code of a record that a job never processed, so it was not written.
NOT_PROCESSED = "NOT_PROCESSED"
# Calls that only read (job state, results) are sent again this many times after a
# passing failure before the job is given up as in doubt.
READ_ATTEMPTS = 4
# A job is polled after 0.5 s, then after twice the last wait, up to 10 s between polls: five
# records take a handful of requests, and a long job one poll every 10 s.
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 10.0
# An abort is sent this many times when its connection drops, because an Open job left behind
# stays in the org's job list until Salesforce deletes it.
ABORT_ATTEMPTS = 3
# After an abort, the job's state is read this often until it ends, for at most this long.
ABORT_POLL_SECONDS = 0.5
ABORT_WAIT_SECONDS = 30.0
_TRANSIENT_CODES = frozenset({
    "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED",
    "READ_TIMEOUT", "CONNECTION_ERROR", "INVALID_SESSION_ID",
})
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
_FIELD_LIST = re.compile(r"--|[A-Za-z0-9_, .]*( --)?")


class Requester(Protocol):
    """The two calls of a connection that Bulk API requests use (OrgConnection and CountingRequester)."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def request_raw(self, method: str, path: str, **kwargs: Any) -> requests.Response: ...


class CountingRequester:
    """Sends requests through a connection and counts them, failed ones included, in ``requests``."""

    def __init__(self, conn: Requester) -> None:
        self.conn = conn
        self.requests = 0

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.requests += 1
        return self.conn.request(method, path, **kwargs)

    def request_raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.requests += 1
        return self.conn.request_raw(method, path, **kwargs)


@dataclass(frozen=True)
class BulkRecordResult:
    """One record's outcome in a Bulk API job.

    ``processed`` is False for a record the job never reached (it failed or was
    aborted first): nothing was written for it, and it can be sent again.
    """

    key: str
    success: bool
    created: bool
    record_id: str | None
    error_code: str | None
    message: str
    processed: bool
    fields: tuple[str, ...] = ()


class BulkJobError(Exception):
    """A Bulk API job could not be run or read to its end.

    ``job_id`` is None when no job was created. ``maybe_written`` is True once the
    job may have started writing, because it was closed or the close request got no
    response. Look its records up, or read ``job_results`` later, before sending them again.
    """

    def __init__(self, problem: SalesforceProblem, job_id: str | None, *, maybe_written: bool) -> None:
        super().__init__(problem.sentence)
        self.problem = problem
        self.job_id = job_id
        self.maybe_written = maybe_written


class BulkCancelled(Cancelled):
    """The admin cancelled a Bulk API upsert; the job was aborted and its results read.

    ``results`` has one entry per record in the given order; those with
    ``processed`` False were not written.
    """

    def __init__(self, job_id: str | None, results: list[BulkRecordResult]) -> None:
        super().__init__("cancelled by the user")
        self.job_id = job_id
        self.results = results


# -- CSV ----------------------------------------------------------------------------


def job_csv(field: str, records: Sequence[dict[str, Any]]) -> str:
    """Return the records as the CSV of an LF ingest job, the key ``field`` first.

    Columns are the fields of all records in order of first use. None and "" become
    ``#N/A`` (clear the field); a field a record does not name stays empty (unchanged).
    """
    columns = [field]
    seen = {field}
    for record in records:
        for name in record:
            if name not in seen and name != "attributes":
                seen.add(name)
                columns.append(name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record, name) for name in columns])
    return buffer.getvalue()


def _cell(record: dict[str, Any], name: str) -> str:
    if name not in record:
        return ""
    value = record[name]
    if value is None or value == "":
        return NULL_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rows(text: str) -> list[dict[str, str]]:
    # Result files are RFC 4180 CSV with LF line endings; an empty body means no rows.
    return list(csv.DictReader(io.StringIO(text, newline="")))


def split_error(text: str) -> tuple[str | None, str, tuple[str, ...]]:
    """Split an ``sf__Error`` value ("CODE:message:fields") into the code, the message and the fields.

    The field list is comma-separated and may end in " --", or be only "--" when no field is named.
    """
    code, separator, rest = text.partition(":")
    if not separator or not _ERROR_CODE.fullmatch(code):
        return None, text.strip(), ()
    message, separator, fields = rest.rpartition(":")
    if separator and _FIELD_LIST.fullmatch(fields):
        names = fields.strip().removesuffix("--").split(",")
        return code, message.strip(), tuple(name.strip() for name in names if name.strip())
    return code, rest.strip(), ()


# -- HTTP ---------------------------------------------------------------------------


def _problem(exc: BaseException) -> SalesforceProblem:
    return exc if isinstance(exc, SalesforceProblem) else explain(exc)


def _is_transient(problem: SalesforceProblem) -> bool:
    if isinstance(problem, SignInRequired):
        return False
    return problem.error_code in _TRANSIENT_CODES or (problem.status or 0) >= 500


_FAILURES = (SalesforceError, SalesforceProblem, requests.RequestException)


def _read(job_id: str, call: Callable[[], Any], wait_seconds: float) -> Any:
    """Run a read-only call, sending it again after passing failures."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return call()
        except _FAILURES as exc:
            problem = _problem(exc)
            if attempt == READ_ATTEMPTS or not _is_transient(problem):
                raise BulkJobError(problem, job_id, maybe_written=True) from exc
            logger.info("Reading Bulk API job %s failed (%s); trying again", job_id, problem.error_code)
            _pause(wait_seconds * attempt, None)
    raise AssertionError("unreachable")


def _pause(seconds: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        time.sleep(seconds)
    else:
        cancel.wait(seconds)


def job_info(conn: Requester, job_id: str) -> dict[str, Any]:
    """Return the job information of an ingest job (state, record counts, errorMessage)."""
    info = conn.request("GET", f"jobs/ingest/{job_id}")
    if not isinstance(info, dict):
        raise BulkJobError(SalesforceProblem(
            ProblemKind.BUG, f"Salesforce returned no job information for Bulk API job {job_id}; "
            "try again later.", repr(info)[:2000]), job_id, maybe_written=True)
    return info


def job_state(conn: Requester, job_id: str) -> str:
    """Return the state of an ingest job: Open, UploadComplete, InProgress, JobComplete, Failed or Aborted."""
    return str(job_info(conn, job_id).get("state", ""))


def abort_job(conn: Requester, job_id: str) -> str:
    """Abort a job that has not finished and return its state afterwards.

    A job that finished before the abort arrived keeps its state, because Salesforce
    rejects the abort, and that state is returned.
    """
    try:
        info = conn.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "Aborted"})
    except (SalesforceError, SalesforceProblem) as exc:
        logger.info("Aborting Bulk API job %s was rejected: %s", job_id, _problem(exc).details)
        return job_state(conn, job_id)
    return str(info.get("state", "")) if isinstance(info, dict) else job_state(conn, job_id)


# -- running a job ------------------------------------------------------------------


def bulk_upsert(
    conn: Requester,
    field: str,
    records: Sequence[dict[str, Any]],
    *,
    on_job_created: Callable[[str], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    poll_seconds: float = FIRST_POLL_SECONDS,
) -> list[BulkRecordResult]:
    """Upsert Task records by ``field`` in one Bulk API 2.0 job; one result per record, in order.

    Each record carries its key under ``field``, and no two records may share a
    key (Salesforce fails every copy of a key repeated in a job). ``on_job_created``
    gets the job id before any data is uploaded. Raises BulkCancelled when ``cancel``
    is set (the job is aborted first and its results read) and BulkJobError when the
    job cannot be run or its results do not account for every record.
    """
    field = validate_field_api_name(field)
    if not records:
        return []
    keys = [_key_of(record, field, index) for index, record in enumerate(records)]
    if len(set(keys)) != len(keys):
        raise ValueError("two records share a key; send them in separate Bulk API jobs")
    if cancel is not None and cancel.is_set():
        raise BulkCancelled(None, [_unprocessed(key, "Cancelled before the job was created.")
                                   for key in keys])

    data = job_csv(field, records)
    job_id = _create_job(conn, field)
    if on_job_created is not None:
        on_job_created(job_id)
    if progress is not None:
        progress(0, len(records), f"Uploading {len(records)} Tasks to Bulk API job {job_id}")
    _upload(conn, job_id, data, cancel, keys)
    _close(conn, job_id)
    info = wait_for_job(conn, job_id, total=len(records), progress=progress, cancel=cancel,
                        poll_seconds=poll_seconds)
    results = _ordered(job_id, keys, _job_results(conn, job_id, field, info, len(records), poll_seconds))
    if cancel is not None and cancel.is_set():
        raise BulkCancelled(job_id, results)
    failed = sum(1 for result in results if not result.success)
    logger.info("Bulk API job %s upserted %d Tasks by %s: %d not written", job_id, len(records),
                field, failed)
    return results


def _key_of(record: dict[str, Any], field: str, index: int) -> str:
    key = record.get(field)
    if not isinstance(key, str) or not key:
        raise ValueError(f"record {index} has no {field} value to upsert by")
    return key


def _unprocessed(key: str, message: str) -> BulkRecordResult:
    return BulkRecordResult(key, False, False, None, NOT_PROCESSED, message, False)


def _create_job(conn: Requester, field: str) -> str:
    # An LF, comma-separated CSV job, to match the data that job_csv writes.
    body = {"object": "Task", "operation": "upsert", "externalIdFieldName": field,
            "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}
    try:
        info = conn.request("POST", "jobs/ingest", json=body)
    except _FAILURES as exc:
        raise BulkJobError(_problem(exc), None, maybe_written=False) from exc
    if not isinstance(info, dict) or not info.get("id"):
        raise BulkJobError(SalesforceProblem(
            ProblemKind.BUG, "Salesforce did not return the id of the new Bulk API job; try again.",
            repr(info)[:2000]), None, maybe_written=False)
    job_id = str(info["id"])
    logger.info("Created Bulk API job %s to upsert Tasks by %s", job_id, field)
    return job_id


def _upload(
    conn: Requester, job_id: str, data: str, cancel: threading.Event | None, keys: list[str]
) -> None:
    if cancel is not None and cancel.is_set():
        _abort_quietly(conn, job_id)
        raise BulkCancelled(job_id, [_unprocessed(key, "Cancelled before the upload.") for key in keys])
    try:
        conn.request_raw("PUT", f"jobs/ingest/{job_id}/batches", data=data.encode("utf-8"),
                         headers={"Content-Type": "text/csv"})
    except _FAILURES as exc:
        # An Open job writes nothing, so it is aborted and nothing is in doubt.
        _abort_quietly(conn, job_id)
        raise BulkJobError(_problem(exc), job_id, maybe_written=False) from exc
    if cancel is not None and cancel.is_set():
        # Cancelled during the upload: the job is still Open, so aborting it means nothing is written.
        _abort_quietly(conn, job_id)
        raise BulkCancelled(job_id, [_unprocessed(key, "Cancelled before the job was closed.")
                                     for key in keys])


def _close(conn: Requester, job_id: str) -> None:
    try:
        conn.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        return
    except _FAILURES as exc:
        problem = _problem(exc)
        error = exc
    # The close request may have arrived although no response came back, so read the job's state.
    try:
        state = job_state(conn, job_id)
    except (*_FAILURES, BulkJobError):
        raise BulkJobError(problem, job_id, maybe_written=True) from error
    if state == "Open":
        _abort_quietly(conn, job_id)
        raise BulkJobError(problem, job_id, maybe_written=False) from error
    logger.info("Closing Bulk API job %s failed without a response, but its state is %s", job_id, state)


def _abort_quietly(conn: Requester, job_id: str) -> None:
    """Abort a job, sending the abort again when its connection drops or the server fails."""
    for attempt in range(1, ABORT_ATTEMPTS + 1):
        try:
            abort_job(conn, job_id)
            return
        except (*_FAILURES, BulkJobError) as exc:
            problem = exc.problem if isinstance(exc, BulkJobError) else _problem(exc)
            if attempt < ABORT_ATTEMPTS and _is_transient(problem):
                _pause(ABORT_POLL_SECONDS * attempt, None)
                continue
            logger.warning("Bulk API job %s could not be aborted: %s %s", job_id, problem.sentence,
                           problem.details)
            return


def wait_for_job(
    conn: Requester,
    job_id: str,
    *,
    total: int = 0,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    poll_seconds: float = FIRST_POLL_SECONDS,
) -> dict[str, Any]:
    """Poll a closed job until it ends, and return its last job information.

    The wait between polls doubles from ``poll_seconds`` up to at most 10 seconds. When
    ``cancel`` is set the job is aborted and the wait goes on until the abort has
    taken effect (a job that finished first keeps its results).
    """
    interval = poll_seconds
    abort_deadline: float | None = None
    while True:
        if cancel is not None and cancel.is_set() and abort_deadline is None:
            abort_deadline = time.monotonic() + ABORT_WAIT_SECONDS
            logger.info("Aborting Bulk API job %s because the admin cancelled", job_id)
            _read(job_id, lambda: abort_job(conn, job_id), poll_seconds)
        info: dict[str, Any] = _read(job_id, lambda: job_info(conn, job_id), poll_seconds)
        state = str(info.get("state", ""))
        if progress is not None:
            done = int(info.get("numberRecordsProcessed") or 0)
            progress(done, total, f"Salesforce processed {done} of {total} Tasks (job {state})")
        if state in TERMINAL_STATES:
            return info
        if state == "Open":
            raise BulkJobError(SalesforceProblem(
                ProblemKind.BUG, f"Bulk API job {job_id} is still open, so it will never run; "
                "its records were not written and can be sent again.", str(info)[:2000]),
                job_id, maybe_written=False)
        if abort_deadline is None:
            _pause(interval, cancel)
            interval = min(max(poll_seconds, MAX_POLL_SECONDS), interval * 2)
            continue
        if time.monotonic() > abort_deadline:
            raise BulkJobError(SalesforceProblem(
                ProblemKind.REFUSED, f"Bulk API job {job_id} was aborted but still runs (state "
                f"{state}); read its results later before sending its records again.", str(info)[:2000]),
                job_id, maybe_written=True)
        _pause(min(poll_seconds, ABORT_POLL_SECONDS), None)


def job_results(conn: Requester, job_id: str, field: str) -> list[BulkRecordResult]:
    """Return the results of a job that has ended, for example one started by an earlier process.

    Rows come in the order Salesforce lists them: written, failed, then unprocessed.
    Raises BulkJobError when the job has not ended yet (see ``wait_for_job``), or its
    result files and its counts disagree.
    """
    field = validate_field_api_name(field)
    info = _read(job_id, lambda: job_info(conn, job_id), 1.0)
    state = str(info.get("state", ""))
    if state not in TERMINAL_STATES:
        raise BulkJobError(SalesforceProblem(
            ProblemKind.REFUSED, f"Bulk API job {job_id} has not ended yet (state {state}); "
            "wait for it before reading its results.", str(info)[:2000]), job_id,
            maybe_written=state != "Open")
    return _job_results(conn, job_id, field, info, None, 1.0)


def _job_results(
    conn: Requester, job_id: str, field: str, info: dict[str, Any], submitted: int | None,
    wait_seconds: float,
) -> list[BulkRecordResult]:
    base = f"jobs/ingest/{job_id}"

    def text_of(resource: str) -> str:
        response = _read(job_id, lambda: conn.request_raw("GET", f"{base}/{resource}"), wait_seconds)
        return bytes(response.content).decode("utf-8-sig")

    written = _rows(text_of("successfulResults"))
    failed = _rows(text_of("failedResults"))
    unprocessed = _rows(text_of("unprocessedrecords"))
    check_counts(job_id, info, submitted, written=len(written), failed=len(failed),
                 unprocessed=len(unprocessed))

    reason = _unprocessed_reason(info)
    results = [_written(row, field) for row in written]
    results += [_failed(row, field) for row in failed]
    results += [_unprocessed(row.get(field, ""), reason) for row in unprocessed]
    return results


def check_counts(
    job_id: str, info: dict[str, Any], submitted: int | None, *, written: int, failed: int,
    unprocessed: int,
) -> None:
    """Check that the result files account for every uploaded row and agree with the job's counts.

    Uploaded rows must equal written + failed + unprocessed rows. In a JobComplete
    job, numberRecordsProcessed counts written and failed rows, as a job logged with
    4 processed and 4 failed shows (https://github.com/omniphx/forrest/issues/233).
    The counts are not compared for a Failed or Aborted job, because Salesforce does
    not update them when a whole batch fails (https://github.com/forcedotcom/dataloader/pull/1033).
    """
    processed = int(info.get("numberRecordsProcessed") or 0)
    failed_count = int(info.get("numberRecordsFailed") or 0)
    problems = []
    if submitted is not None and written + failed + unprocessed != submitted:
        problems.append(f"{submitted} rows were uploaded, but the results list {written} written, "
                        f"{failed} failed and {unprocessed} unprocessed")
    complete = info.get("state") == "JobComplete"
    if complete and (processed != written + failed or failed_count != failed):
        problems.append(f"the job counts {processed} processed and {failed_count} failed rows, but "
                        f"its result files list {written} written and {failed} failed")
    if problems:
        raise BulkJobError(SalesforceProblem(
            ProblemKind.BUG, f"The results of Bulk API job {job_id} do not account for every record; "
            "look the records up before sending them again.", "; ".join(problems),
            error_code="BULK_RESULTS_INCOMPLETE"), job_id, maybe_written=True)


def _unprocessed_reason(info: dict[str, Any]) -> str:
    state = str(info.get("state", ""))
    if state == "Aborted":
        return "The Bulk API job was aborted before this record was processed; it was not written."
    error = str(info.get("errorMessage") or "no reason given")
    return f"The Bulk API job failed before this record was processed ({error}); it was not written."


def _written(row: dict[str, str], field: str) -> BulkRecordResult:
    created = row.get("sf__Created", "").lower() == "true"
    return BulkRecordResult(row.get(field, ""), True, created, row.get("sf__Id") or None, None, "", True)


def _failed(row: dict[str, str], field: str) -> BulkRecordResult:
    code, message, fields = split_error(row.get("sf__Error", ""))
    return BulkRecordResult(row.get(field, ""), False, False, row.get("sf__Id") or None, code,
                            message, True, fields)


def _ordered(job_id: str, keys: Iterable[str], results: list[BulkRecordResult]) -> list[BulkRecordResult]:
    """Put results in the order of ``keys``; a key without exactly one result is an error."""
    by_key: dict[str, BulkRecordResult] = {}
    repeated: set[str] = set()
    for result in results:
        if result.key in by_key:
            repeated.add(result.key)
        by_key[result.key] = result
    ordered: list[BulkRecordResult] = []
    missing: list[str] = []
    for key in keys:
        found = by_key.get(key)
        if found is None:
            missing.append(key)
        else:
            ordered.append(found)
    if missing or repeated:
        details = f"keys without a result: {missing[:5]}; keys with several: {sorted(repeated)[:5]}"
        raise BulkJobError(SalesforceProblem(
            ProblemKind.BUG, "The results of a Bulk API job do not match the records sent; "
            "look the records up before sending them again.", details,
            error_code="BULK_RESULTS_INCOMPLETE"), job_id, maybe_written=True)
    return ordered
