"""Read every Task of an org for the duplicate scan, keyless, deleted and archived ones included.

Small orgs are read through REST queryAll, page after page (``nextRecordsUrl``).
Large orgs are read through a Bulk API 2.0 queryAll job, whose CSV results come
in sets named by the ``Sforce-Locator`` header ("Get Results for a Query Job",
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm).
Both stream, so only one page of raw rows is in memory at a time, and each
Task stores only a digest of its body (see core.survivor.description_digest),
never the body itself.

The Bulk API job runs through OrgConnection.request and request_raw rather than
simple-salesforce's ``bulk2`` generator, so that every call renews an expired
session, and so that a cancel aborts the job while it still runs.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, check_cancel, no_progress
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import description_digest, writer_label
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem
from backstory_desktop.salesforce.tasks import TASK_QUERY_FIELDS

logger = logging.getLogger(__name__)

# Above this many Tasks (deleted and archived included) a scan reads through a Bulk API 2.0
# job, because REST returns at most 2,000 records a call, so a million Tasks would take 500 calls.
BULK_SCAN_THRESHOLD: int = 200_000
# Records per Bulk API result set; Salesforce may return fewer ("Get Results for a Query Job").
BULK_PAGE_SIZE = 50_000
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 10.0
# Tries per result set. A download that fails with a network error (requests.RequestException)
# is retried with the same locator, which stays valid while the job exists.
RESULT_ATTEMPTS = 3
_JOB_ENDED = frozenset({"JobComplete", "Failed", "Aborted"})


def count_tasks(conn: OrgConnection) -> int:
    """Return how many Tasks the org contains, deleted and archived ones included (queryAll)."""
    page = next(conn.query_pages("SELECT COUNT() FROM Task", include_deleted=True))
    return int(page.get("totalSize") or 0)


def scan_all_tasks(
    conn: OrgConnection,
    field: str,
    *,
    flag_field: str | None,
    tools_by_user_id: Mapping[str, str] | None = None,
    use_bulk: bool | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> Iterator[TaskRecord]:
    """Yield every Task of the org, with a body digest in place of the body and who wrote it.

    ``field`` is the Message-ID field's API name and ``flag_field`` the
    "Created by Backstory" checkbox (None when it is not usable).
    ``tools_by_user_id`` maps each cadence tool user's Id to its label (see
    core.survivor.writer_label). ``use_bulk`` None reads through a Bulk API 2.0
    job when the org contains more than BULK_SCAN_THRESHOLD Tasks, else through
    REST. Raises Cancelled when ``cancel`` is set, checked at every page, and
    InvalidFieldName when a field name is not a valid API name.
    """
    field = validate_field_api_name(field)
    if flag_field:
        flag_field = validate_field_api_name(flag_field, allow_namespace=True)
    fields = [TASK_QUERY_FIELDS[0], field, *TASK_QUERY_FIELDS[1:]]
    if flag_field:
        fields.append(flag_field)
    soql = f"SELECT {', '.join(fields)} FROM Task"
    builder = _RecordBuilder(field, flag_field, tools_by_user_id or {})

    total = 0
    if use_bulk is None:
        total = count_tasks(conn)
        use_bulk = total > BULK_SCAN_THRESHOLD
    rows = _bulk_rows(conn, soql, total, progress, cancel) if use_bulk else _rest_rows(
        conn, soql, progress, cancel)
    done = 0
    for row in rows:
        yield builder.record(row)
        done += 1
    logger.info("Scanned %d Tasks through %s", done, "a Bulk API 2.0 job" if use_bulk else "REST queryAll")


# -- REST ---------------------------------------------------------------------------


def _rest_rows(
    conn: OrgConnection, soql: str, progress: ProgressCallback, cancel: threading.Event | None
) -> Iterator[dict[str, Any]]:
    done = 0
    check_cancel(cancel)
    for page in conn.query_pages(soql, include_deleted=True):
        check_cancel(cancel)
        total = int(page.get("totalSize") or 0)
        records: list[dict[str, Any]] = page.get("records", [])
        yield from records
        done += len(records)
        progress(done, total, f"Read {done:,} of {total:,} Tasks")


# -- Bulk API 2.0 -------------------------------------------------------------------


def _bulk_rows(
    conn: OrgConnection,
    soql: str,
    total: int,
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> Iterator[dict[str, Any]]:
    """Run a queryAll job and yield its rows as REST-shaped dicts, one result set at a time."""
    check_cancel(cancel)
    job = conn.request("POST", "jobs/query", json={
        "operation": "queryAll", "query": soql, "contentType": "CSV",
        "columnDelimiter": "COMMA", "lineEnding": "LF",
    })
    job_id = str(job["id"])
    logger.info("Started Bulk API queryAll job %s to read every Task", job_id)
    info = _wait_for_query_job(conn, job_id, total, progress, cancel)
    total = int(info.get("numberRecordsProcessed") or total)

    done = 0
    locator = ""
    while True:
        check_cancel(cancel)
        text, locator = _result_set(conn, job_id, locator)
        for row in csv.DictReader(io.StringIO(text)):
            yield _nested(row)
            done += 1
        progress(done, total, f"Read {done:,} of {total:,} Tasks")
        if not locator:
            return


def _wait_for_query_job(
    conn: OrgConnection,
    job_id: str,
    total: int,
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> dict[str, Any]:
    """Poll a query job until it ends, and return its info when it completes.

    Aborts the job and raises Cancelled when ``cancel`` is set. Raises
    SalesforceProblem when the job fails or is aborted.
    """
    interval = FIRST_POLL_SECONDS
    while True:
        if cancel is not None and cancel.is_set():
            _abort_quietly(conn, job_id)
            raise Cancelled("cancelled by the user")
        info: dict[str, Any] = conn.request("GET", f"jobs/query/{job_id}")
        state = str(info.get("state", ""))
        progress(0, total, f"Salesforce is preparing the Tasks (Bulk API job {state})")
        if state == "JobComplete":
            return info
        if state in _JOB_ENDED:
            message = str(info.get("errorMessage") or state)
            raise SalesforceProblem(
                ProblemKind.REFUSED,
                f"The Bulk API job {job_id} that reads the Tasks ended as {state} ({message}). "
                "Scan again, and if it fails again, fix the cause that Salesforce gives.",
                str(info)[:2000],
            )
        if cancel is None:
            time.sleep(interval)
        else:
            cancel.wait(interval)
        interval = min(MAX_POLL_SECONDS, interval * 2)


def _abort_quietly(conn: OrgConnection, job_id: str) -> None:
    """Abort a query job, and log instead of raising when that fails.

    A job that ended before the abort cannot be aborted, which is fine here.
    """
    try:
        conn.request("PATCH", f"jobs/query/{job_id}", json={"state": "Aborted"})
        logger.info("Aborted Bulk API job %s because the scan was cancelled", job_id)
    except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
        logger.info("Aborting Bulk API job %s failed: %s", job_id, error)


def _result_set(conn: OrgConnection, job_id: str, locator: str) -> tuple[str, str]:
    """Download one result set and return its CSV text and the next locator ("" after the last set)."""
    params: dict[str, str | int] = {"maxRecords": BULK_PAGE_SIZE}
    if locator:
        params["locator"] = locator
    for attempt in range(1, RESULT_ATTEMPTS + 1):
        try:
            response = conn.request_raw("GET", f"jobs/query/{job_id}/results", params=params)
            break
        except requests.RequestException as error:
            if attempt == RESULT_ATTEMPTS:
                raise
            logger.info("Reading results of Bulk API job %s failed (%s), so trying again", job_id, error)
            time.sleep(FIRST_POLL_SECONDS * attempt)
    following = response.headers.get("Sforce-Locator", "")
    return response.content.decode("utf-8"), "" if following == "null" else following


def _nested(row: Mapping[str, str]) -> dict[str, Any]:
    """Turn a CSV row into the shape of a REST row: "" to None, "Owner.Name" to {"Owner": {"Name": ...}}.

    Checkboxes stay the strings "true" and "false", which _true reads.
    """
    result: dict[str, Any] = {}
    for column, text in row.items():
        value = text if text != "" else None
        parent, _, child = column.partition(".")
        if child:
            result.setdefault(parent, {})[child] = value
        else:
            result[column] = value
    return result


# -- building the records -----------------------------------------------------------


class _RecordBuilder:
    """Builder of TaskRecords that shares one string object for each repeated User Id, name and label.

    A million Tasks are typically written by a few hundred users, so sharing those
    strings saves an estimated hundred bytes or so per Task.
    """

    def __init__(self, field: str, flag_field: str | None, tools_by_user_id: Mapping[str, str]) -> None:
        self.field = field
        self.flag_field = flag_field
        self.tools_by_user_id = tools_by_user_id
        self._shared: dict[str, str] = {}

    def _share(self, value: object) -> str:
        text = "" if value is None else str(value)
        return self._shared.setdefault(text, text)

    def _share_optional(self, value: object) -> str | None:
        return None if value is None or value == "" else self._share(value)

    def record(self, row: Mapping[str, Any]) -> TaskRecord:
        owner = row.get("Owner") or {}
        creator = row.get("CreatedBy") or {}
        key = row.get(self.field)
        flag = bool(self.flag_field and _true(row.get(self.flag_field)))
        created_by_id = self._share_optional(row.get("CreatedById"))
        created_by_name = self._share(creator.get("Name"))
        return TaskRecord(
            id=str(row["Id"]),
            key=None if key is None or key == "" else str(key),
            subject=str(row.get("Subject") or ""),
            who_id=row.get("WhoId") or None,
            what_id=row.get("WhatId") or None,
            owner_id=self._share_optional(row.get("OwnerId")),
            owner_name=self._share(owner.get("Name")),
            created_by_id=created_by_id,
            created_by_name=created_by_name,
            created_date=str(row.get("CreatedDate") or ""),
            activity_date=row.get("ActivityDate") or None,
            subtype=self._share_optional(row.get("TaskSubtype")),
            created_by_backstory=flag,
            is_deleted=_true(row.get("IsDeleted")),
            is_archived=_true(row.get("IsArchived")),
            description_digest=description_digest(row.get("Description")),
            writer=self._share(writer_label(created_by_id, created_by_name, flag, self.tools_by_user_id)),
        )


def _true(value: object) -> bool:
    return value is True or value == "true"

