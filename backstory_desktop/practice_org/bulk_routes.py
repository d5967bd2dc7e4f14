"""Bulk API 2.0: ingest jobs (insert, update, upsert, delete) and query jobs, with CSV data.

An ingest job set to UploadComplete, and a new query job (which starts as
UploadComplete), run on the next request that reads their state or results.
Until then they can be aborted, as on Salesforce. Ingest rows follow
the same rules as the REST calls (FLS, create-only fields, unique values,
several matches for one external ID). Query results are paged with the
``Sforce-Locator`` and ``Sforce-NumberOfRecords`` headers, as Salesforce does.

NOTE: the error codes of rejected job requests (INVALIDJOB, INVALIDJOBSTATE) are
Bulk API 1.0's names; Bulk API 2.0's exact error bodies were not checked.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.bulk_jobs import IngestJob, IngestResult, QueryJob
from backstory_desktop.practice_org.errors import ApiError, not_found
from backstory_desktop.practice_org.http import json_object, json_response
from backstory_desktop.practice_org.query_routes import (
    run_soql,
    shape_records,
    soql_schema_source,
)
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.soql import (
    CountAll,
    FieldRef,
    RecordShaper,
    SoqlError,
    parse_soql,
    run_query,
)
from backstory_desktop.practice_org.store import format_datetime, now_utc
from backstory_desktop.practice_org.upsert import key_in_body, upsert_by_external_id
from backstory_desktop.practice_org.writes import (
    create_record,
    delete_record,
    live_record,
    update_record,
)

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^",
               "BACKQUOTE": "`"}
_INGEST_OPERATIONS = ("insert", "update", "upsert", "delete")
_DEFAULT_PAGE = 50000
# The key under which csv.DictReader puts the values of a row longer than the header.
_EXTRA_VALUES = "\x00extra values"


# -- ingest -------------------------------------------------------------------


def create_ingest_job(session: ApiSession, request: Request) -> Response:
    body = json_object(request)
    operation = str(body.get("operation", ""))
    if operation not in _INGEST_OPERATIONS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    spec = session.sobject(str(body.get("object", "")))
    delimiter = str(body.get("columnDelimiter") or "COMMA")
    if delimiter not in _DELIMITERS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
    external_id = body.get("externalIdFieldName")
    if operation == "upsert" and not external_id:
        raise ApiError(400, "INVALIDJOB",
                       "InvalidJob : External ID was blank for Task. An External ID must be "
                       "specified for upsert.")

    job = IngestJob(
        id=session.org.bulk_jobs.new_id(), sobject=spec.name, operation=operation,
        external_id_field=str(external_id) if external_id else None,
        column_delimiter=delimiter, line_ending=str(body.get("lineEnding") or "LF"),
        created_by_id=session.user_id, created_date=format_datetime(now_utc()),
        api_version=session.version,
    )
    session.org.bulk_jobs.ingest[job.id] = job
    return json_response(_ingest_info(job), 200)


def upload_ingest_data(session: ApiSession, request: Request, job_id: str) -> Response:
    job = _ingest_job(session, job_id)
    if job.state != "Open":
        raise ApiError(409, "INVALIDJOBSTATE",
                       f"Job {job.id} is not open for uploads (state {job.state})")
    job.uploads.append(request.get_data(as_text=True))
    return Response(status=201)


def set_ingest_state(session: ApiSession, request: Request, job_id: str) -> Response:
    """Close (UploadComplete, which processes the rows) or abort an ingest job."""
    job = _ingest_job(session, job_id)
    state = str(json_object(request).get("state", ""))
    if state == "Aborted" and job.state in ("Open", "UploadComplete"):
        job.state = "Aborted"
    elif state == "UploadComplete" and job.state == "Open":
        job.state = "UploadComplete"
    else:
        raise ApiError(400, "INVALIDJOBSTATE",
                       f"Cannot change the state of job {job.id} from {job.state} to {state}")
    return json_response(_ingest_info(job))


def get_ingest_job(session: ApiSession, request: Request, job_id: str) -> Response:
    return json_response(_ingest_info(_started_ingest_job(session, job_id)))


def successful_results(session: ApiSession, request: Request, job_id: str) -> Response:
    job = _started_ingest_job(session, job_id)
    rows = [[r.record_id, "true" if r.created else "false", *_values(job, r)]
            for r in job.results if r.error is None]
    return _csv_response(["sf__Id", "sf__Created", *job.columns], rows)


def failed_results(session: ApiSession, request: Request, job_id: str) -> Response:
    job = _started_ingest_job(session, job_id)
    rows = [[r.record_id, r.error or "", *_values(job, r)] for r in job.results if r.error]
    return _csv_response(["sf__Id", "sf__Error", *job.columns], rows)


def unprocessed_records(session: ApiSession, request: Request, job_id: str) -> Response:
    job = _started_ingest_job(session, job_id)
    rows = [] if job.state != "Aborted" else [
        [row.get(column) or "" for column in job.columns] for row in _parse_rows(job)]
    return _csv_response(job.columns, rows)


def _process_ingest(session: ApiSession, job: IngestJob) -> None:
    job.state = "InProgress"
    rows = _parse_rows(job)
    job.results = [_ingest_row(session, job, row) for row in rows]
    job.state = "JobComplete"


def _parse_rows(job: IngestJob) -> list[dict[str, str]]:
    delimiter = _DELIMITERS[job.column_delimiter]
    rows: list[dict[str, str]] = []
    for upload in job.uploads:
        reader = csv.DictReader(io.StringIO(upload), delimiter=delimiter, restkey=_EXTRA_VALUES)
        if not job.columns and reader.fieldnames:
            job.columns = list(reader.fieldnames)
        rows.extend(dict(row) for row in reader)
    return rows


def _ingest_row(session: ApiSession, job: IngestJob, row: dict[str, str]) -> IngestResult:
    if _EXTRA_VALUES in row:
        # NOTE: Salesforce's error for a row with more values than header columns is not
        # documented (it may fail the whole job). The practice org fails only the row.
        extra = row.pop(_EXTRA_VALUES)
        return IngestResult(row=row, record_id="", error=(
            f"INVALID_FIELD:The row has {len(extra)} more values than the header has "
            "columns:--"))
    # An empty cell leaves a field unchanged; #N/A sets it to null.
    fields: dict[str, Any] = {k: (None if v == "#N/A" else v) for k, v in row.items() if v}
    try:
        with session.store.transaction():
            return _write_row(session, job, row, fields)
    except ApiError as error:
        reason = f"{error.error_code}:{error.message}:{','.join(error.fields or []) or '--'}"
        return IngestResult(row=row, record_id=str(fields.get("Id", "")), error=reason)


def _write_row(
    session: ApiSession, job: IngestJob, row: dict[str, str], fields: dict[str, Any]
) -> IngestResult:
    if job.operation == "insert":
        return IngestResult(row, create_record(session, job.sobject, fields).id, True)
    if job.operation == "upsert":
        assert job.external_id_field is not None
        key = key_in_body(fields, job.external_id_field)
        outcome = upsert_by_external_id(session, job.sobject, job.external_id_field, key, fields)
        if outcome.error is not None:
            raise outcome.error
        return IngestResult(row, outcome.record_id or "", outcome.created)

    record = live_record(session, job.sobject, str(fields.pop("Id", "")))
    if job.operation == "delete":
        delete_record(session, record)
    else:
        update_record(session, record, fields)
    return IngestResult(row, record.id, False)


def _values(job: IngestJob, result: IngestResult) -> list[str]:
    return [result.row.get(column, "") for column in job.columns]


def _started_ingest_job(session: ApiSession, job_id: str) -> IngestJob:
    """Return an ingest job, processing its rows first if it waits in UploadComplete."""
    job = _ingest_job(session, job_id)
    if job.state == "UploadComplete":
        _process_ingest(session, job)
    return job


def _ingest_job(session: ApiSession, job_id: str) -> IngestJob:
    job = session.org.bulk_jobs.ingest.get(job_id)
    if job is None:
        raise not_found()
    return job


def _ingest_info(job: IngestJob) -> dict[str, Any]:
    failed = sum(1 for r in job.results if r.error)
    return {
        "id": job.id, "operation": job.operation, "object": job.sobject,
        "createdById": job.created_by_id, "createdDate": job.created_date,
        "systemModstamp": job.created_date, "state": job.state,
        "externalIdFieldName": job.external_id_field, "concurrencyMode": "Parallel",
        "contentType": "CSV", "apiVersion": float(job.api_version), "jobType": "V2Ingest",
        "contentUrl": f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches",
        "lineEnding": job.line_ending, "columnDelimiter": job.column_delimiter,
        "numberRecordsProcessed": len(job.results), "numberRecordsFailed": failed,
        "retries": 0, "totalProcessingTime": 0,
    }


# -- query ----------------------------------------------------------------------


def create_query_job(session: ApiSession, request: Request) -> Response:
    """Validate a query or queryAll job and store it as UploadComplete until it is polled."""
    body = json_object(request)
    operation = str(body.get("operation", ""))
    if operation not in ("query", "queryAll"):
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    text = str(body.get("query", ""))
    columns = _query_columns(text)
    _check_query(session, text)
    target = session.find_sobject(parse_soql(text).sobject)

    def run() -> tuple[list[str], RecordShaper]:
        result = run_soql(session, text, include_hidden=operation == "queryAll",
                          defer_records=True)
        assert result.record_ids is not None and result.shape_record is not None
        return result.record_ids, result.shape_record

    job = QueryJob(
        id=session.org.bulk_jobs.new_id(), operation=operation, query=text,
        sobject=target.name if target else "",
        created_by_id=session.user_id, created_date=format_datetime(now_utc()),
        api_version=session.version, columns=columns, run=run,
    )
    session.org.bulk_jobs.query[job.id] = job
    return json_response(_query_info(job))


def _check_query(session: ApiSession, text: str) -> None:
    """Raise the REST query's error (INVALID_TYPE, INVALID_FIELD, ...) for a query that cannot run."""
    try:
        run_query(parse_soql(text), (), lambda _name, _id: None, soql_schema_source(session),
                  api_version=session.version)
    except SoqlError as error:
        raise ApiError(400, error.error_code, error.message) from None


def get_query_job(session: ApiSession, request: Request, job_id: str) -> Response:
    return json_response(_query_info(_started_query_job(session, job_id)))


def set_query_state(session: ApiSession, request: Request, job_id: str) -> Response:
    """Abort a query job that has not run yet (Salesforce: UploadComplete or InProgress only)."""
    # Salesforce's "Abort a Query Job" (Bulk API 2.0 Developer Guide): only the state
    # Aborted may be set, and only on a job in UploadComplete or InProgress.
    job = _query_job(session, job_id)
    state = str(json_object(request).get("state", ""))
    if state != "Aborted" or job.state not in ("UploadComplete", "InProgress"):
        raise ApiError(400, "INVALIDJOBSTATE",
                       f"Cannot change the state of job {job.id} from {job.state} to {state}")
    job.state = "Aborted"
    job.run = None
    return json_response(_query_info(job))


def query_results(session: ApiSession, request: Request, job_id: str) -> Response:
    """Return one page of a query job's CSV, with the locator of the next page."""
    job = _query_job(session, job_id)
    if session.version != job.api_version:
        # Results must be requested in the job's API version, or Salesforce returns 409
        # (Bulk API 2.0 Developer Guide, "Get Parallel Results for a Query Job").
        # NOTE: the 409 body is not documented.
        raise ApiError(409, "INVALIDJOB",
                       f"InvalidJob : Job {job.id} was created in API version "
                       f"{job.api_version}; request its results in that version")
    job = _started_query_job(session, job_id)
    if job.state != "JobComplete" or job.shape_record is None:
        raise ApiError(400, "INVALIDJOBSTATE",
                       f"Job {job.id} has no results because its state is {job.state}")
    start = _query_parameter(request, "locator", 0)
    size = _query_parameter(request, "maxRecords", _DEFAULT_PAGE)
    page_ids = job.record_ids[start:start + size]
    records = shape_records(session.store, page_ids, job.shape_record)
    rows = [[_csv_value(_path_value(record, column)) for column in job.columns]
            for record in records]
    end = start + len(page_ids)
    response = _csv_response(job.columns, rows)
    response.headers["Sforce-Locator"] = str(end) if end < len(job.record_ids) else "null"
    response.headers["Sforce-NumberOfRecords"] = str(len(rows))
    return response


def _query_parameter(request: Request, name: str, default: int) -> int:
    text = request.args.get(name) or ""
    if not text:
        return default
    if not text.isdigit() or (name == "maxRecords" and int(text) == 0):
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid {name}: {text}")
    return int(text)


def _started_query_job(session: ApiSession, job_id: str) -> QueryJob:
    """Return a query job, running it first if it is still waiting."""
    job = _query_job(session, job_id)
    if job.run is not None:
        run, job.run = job.run, None
        job.state = "InProgress"
        job.record_ids, job.shape_record = run()
        job.state = "JobComplete"
    return job


def _query_columns(text: str) -> list[str]:
    """Return the CSV columns of a query, or raise for what Bulk API 2.0 queries reject."""
    try:
        parsed = parse_soql(text)
    except SoqlError as error:
        raise ApiError(400, error.error_code, error.message) from None
    unsupported = parsed.group_by or parsed.offset is not None or any(
        not isinstance(item, FieldRef) or isinstance(item, CountAll) for item in parsed.fields)
    if unsupported:
        raise ApiError(400, "INVALIDJOB", "InvalidJob : Bulk API 2.0 queries do not support "
                       "GROUP BY, OFFSET, COUNT() or other aggregate functions")
    return [item.text for item in parsed.fields if isinstance(item, FieldRef)]


def _path_value(record: dict[str, Any], column: str) -> Any:
    value: Any = record
    for part in column.split("."):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_job(session: ApiSession, job_id: str) -> QueryJob:
    job = session.org.bulk_jobs.query.get(job_id)
    if job is None:
        raise not_found()
    return job


def _query_info(job: QueryJob) -> dict[str, Any]:
    return {
        "id": job.id, "operation": job.operation, "object": job.sobject,
        "createdById": job.created_by_id, "createdDate": job.created_date,
        "systemModstamp": job.created_date, "state": job.state, "concurrencyMode": "Parallel",
        "contentType": "CSV", "apiVersion": float(job.api_version), "jobType": "V2Query",
        "lineEnding": "LF", "columnDelimiter": "COMMA",
        "numberRecordsProcessed": len(job.record_ids), "retries": 0, "totalProcessingTime": 0,
    }


def _csv_response(columns: list[str], rows: list[list[str]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return Response(buffer.getvalue(), mimetype="text/csv")
