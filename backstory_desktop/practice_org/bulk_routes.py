"""Bulk API 2.0: ingest jobs (insert, update, upsert, delete) and query jobs, with CSV data.

An ingest job set to UploadComplete processes one batch of rows (10,000, as
Salesforce's batches) each time its state is read, and the rest when its results
are read. A new query job (which starts as UploadComplete) runs on the next request
that reads its state or results. Until they end, jobs can be aborted, as on Salesforce. Ingest rows follow
the same rules as the REST calls (FLS, create-only fields, unique values,
several matches for one external ID). An unknown header column fails the
whole ingest job instead, with an ``errorMessage``. Query results are paged with the
``Sforce-Locator`` and ``Sforce-NumberOfRecords`` headers, as Salesforce does.

NOTE: the error codes of rejected job requests (INVALIDJOB, INVALIDJOBSTATE) are
Bulk API 1.0's names; Bulk API 2.0's exact error bodies were not checked.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.bulk_jobs import (
    COLUMN_DELIMITERS,
    LINE_ENDINGS,
    CsvRow,
    IngestJob,
    IngestResult,
    QueryJob,
    read_csv,
)
from backstory_desktop.practice_org.errors import ApiError, not_found
from backstory_desktop.practice_org.http import json_object, json_response
from backstory_desktop.practice_org.permissions import access_for_user
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
from backstory_desktop.practice_org.upsert import (
    external_id_field,
    key_in_body,
    upsert_by_external_id,
)
from backstory_desktop.practice_org.writes import (
    create_record,
    delete_record,
    live_record,
    update_record,
)

logger = logging.getLogger(__name__)
_INGEST_OPERATIONS = ("insert", "update", "upsert", "delete")
_DEFAULT_PAGE = 50000


# -- ingest -------------------------------------------------------------------


def create_ingest_job(session: ApiSession, request: Request) -> Response:
    body = json_object(request)
    operation = str(body.get("operation", ""))
    if operation not in _INGEST_OPERATIONS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    spec = session.sobject(str(body.get("object", "")))
    delimiter = str(body.get("columnDelimiter") or "COMMA")
    if delimiter not in COLUMN_DELIMITERS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
    line_ending = str(body.get("lineEnding") or "LF")
    if line_ending not in LINE_ENDINGS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid line ending: {line_ending}")
    external_id = str(body.get("externalIdFieldName") or "")
    if operation == "upsert":
        external_id = _upsert_key_field(session, spec.name, external_id)

    job = IngestJob(
        id=session.org.bulk_jobs.new_id(), sobject=spec.name, operation=operation,
        external_id_field=external_id or None,
        column_delimiter=delimiter, line_ending=line_ending,
        created_by_id=session.user_id, created_date=format_datetime(now_utc()),
        api_version=session.version,
    )
    session.org.bulk_jobs.ingest[job.id] = job
    return json_response(_ingest_info(job), 200)


def _upsert_key_field(session: ApiSession, sobject: str, field_name: str) -> str:
    """Return the API name of an upsert job's key field, or reject the job as Salesforce does."""
    if not field_name:
        raise ApiError(400, "INVALIDJOB",
                       f"InvalidJob : External ID was blank for {sobject}. An External ID must "
                       "be specified for upsert.")
    # An upsert key must be an External ID or idLookup field ("upsert()", SOAP API Developer
    # Guide: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_upsert.htm).
    # Bulk API 2.0 rejects a job with any other key when it is created, before any row.
    # NOTE: the message follows a published Bulk API 2.0 walkthrough because the guide does
    # not print it.
    try:
        return external_id_field(session, sobject, field_name).name
    except ApiError:
        raise ApiError(400, "INVALIDJOB",
                       f"InvalidJob : Field name provided, {field_name} does not match an "
                       f"External ID for {sobject}") from None


def upload_ingest_data(session: ApiSession, request: Request, job_id: str) -> Response:
    job = _ingest_job(session, job_id)
    _check_job_owner(session, job)
    if job.state != "Open":
        raise ApiError(409, "INVALIDJOBSTATE",
                       f"Job {job.id} is not open for uploads (state {job.state})")
    if job.uploads:
        # NOTE: "Upload Job Data" in the Bulk API 2.0 guide describes one CSV file per job
        # but not what a second PUT returns. BULK_API_ERROR follows a published walkthrough,
        # and the 400 status is a guess.
        raise ApiError(400, "BULK_API_ERROR",
                       f"Found multiple contents for job: <{job.id}>. Close, abort or delete "
                       "this job, then create a new job and upload its data only once.")
    job.uploads.append(request.get_data(as_text=True))
    return Response(status=201)


def set_ingest_state(session: ApiSession, request: Request, job_id: str) -> Response:
    """Close (UploadComplete, which processes the rows) or abort an ingest job."""
    job = _ingest_job(session, job_id)
    _check_job_owner(session, job)
    state = str(json_object(request).get("state", ""))
    # A job can be aborted until it ends ("Close or Abort a Job", Bulk API 2.0 Developer
    # Guide); rows not processed by then stay unprocessed.
    if state == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
        job.state = "Aborted"
    elif state == "UploadComplete" and job.state == "Open":
        job.state = "UploadComplete"
    else:
        raise ApiError(400, "INVALIDJOBSTATE",
                       f"Cannot change the state of job {job.id} from {job.state} to {state}")
    return json_response(_ingest_info(job))


def _check_job_owner(session: ApiSession, job: IngestJob | QueryJob) -> None:
    """Raise unless the user created the job or may manage other users' data integrations.

    Salesforce lets the job's creator, or a user with "Manage Data Integrations", abort
    a job ("Job States", Bulk API 2.0 Developer Guide:
    https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_bulk_v2/bulk_api_2_job_states.htm).
    Reading a job's information stays open to every API user, as "Get All Jobs" lists all
    jobs in the org. A query job's results are held to the same rule as aborting it,
    because they hold the records its creator may read.
    """
    if job.created_by_id == session.user_id:
        return
    # NOTE: the practice org has no Manage Data Integrations flag, so Modify All Data is
    # accepted instead. Salesforce's status and errorCode for this rejection are not documented.
    if session.access.has("PermissionsManageDataIntegrations"):
        return
    if session.access.has("PermissionsModifyAllData"):
        return
    raise ApiError(403, "INSUFFICIENT_ACCESS_OR_READONLY",
                   f"Job {job.id} was created by another user. Only its creator or a user "
                   "with Manage Data Integrations can change it or read its query results.")


def get_ingest_job(session: ApiSession, request: Request, job_id: str) -> Response:
    """Return the job's information, processing one more batch of its rows first."""
    return json_response(_ingest_info(_started_ingest_job(session, job_id, to_end=False)))


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
    """Return the rows of a Failed or Aborted job that were never written.

    "Get Job Unprocessed Record Results" (Bulk API 2.0 Developer Guide:
    https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_job_unprocessed_results.htm)
    lists the uploaded columns only, without sf__ columns.
    """
    job = _started_ingest_job(session, job_id)
    if job.state not in ("Aborted", "Failed"):
        return _csv_response(job.columns, [])
    if not job.rows:
        job.rows = _read_rows(job)
    return _csv_response(job.columns, [row.values for row in job.rows[job.next_row:]])


def _process_ingest(session: ApiSession, job: IngestJob, *, to_end: bool) -> None:
    """Process the next batch of a closed job's rows, or all that are left when ``to_end``."""
    if job.state == "UploadComplete":
        job.state = "InProgress"
        job.rows = _read_rows(job)
        failure = _job_failure(session, job)
        if failure is not None:
            job.state = "Failed"
            job.error_message = failure
            logger.info("Bulk ingest job %s failed before writing rows: %s", job.id, failure)
            return
        job.repeated_keys = _repeated_key_rows(session, job, job.rows)
    while job.state == "InProgress":
        end = min(len(job.rows), job.next_row + max(1, session.org.bulk_jobs.batch_size))
        for index in range(job.next_row, end):
            job.results.append(_ingest_row(session, job, job.rows[index], index in job.repeated_keys))
        job.next_row = end
        if end >= len(job.rows):
            job.state = "JobComplete"
        elif not to_end:
            return


def _read_rows(job: IngestJob) -> list[CsvRow]:
    """Return the data rows of the job's upload and set ``job.columns`` from its header."""
    if not job.uploads:
        return []
    rows = read_csv(job.uploads[0], COLUMN_DELIMITERS[job.column_delimiter],
                    LINE_ENDINGS[job.line_ending])
    if rows:
        job.columns = rows[0].values
    return rows[1:]


def _job_failure(session: ApiSession, job: IngestJob) -> str | None:
    """Return the errorMessage that fails the whole job, or None if its rows can be written.

    A header name that is not a field of the object fails the job before any row is
    written, with state Failed and errorMessage "InvalidBatch : Field name not found :
    <name>", as a client logged from a Bulk API 2.0 job
    (https://github.com/amp-labs/connectors/pull/118). That includes a first column that
    starts with a UTF-8 byte order mark, which Salesforce keeps in the name
    (https://github.com/forcedotcom/cli/issues/720), and a last column that ends with CR
    when a CRLF file is uploaded to an LF job.

    NOTE: "Prepare CSV Files" (Bulk API 2.0 Developer Guide) states only that each header
    must be a field's API name and that files must be UTF-8.
    """
    spec = session.sobject(job.sobject)
    for column in job.columns:
        # Relationship columns (Owner.Username) name a field of another object.
        if "." not in column and spec.field(column) is None:
            return f"InvalidBatch : Field name not found : {column}"
    return None


def _repeated_key_rows(session: ApiSession, job: IngestJob, rows: list[CsvRow]) -> set[int]:
    """Return the indexes of upsert rows whose external ID value another row also has.

    Salesforce fails every such row with "Duplicate external id specified" and writes
    none of them, instead of creating the record and then updating it (SOAP API
    Developer Guide, "upsert()":
    https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_upsert.htm).
    Keys are compared by the field's case rule, as upsert matching is.
    """
    if job.operation != "upsert" or job.external_id_field is None:
        return set()
    key_field = external_id_field(session, job.sobject, job.external_id_field)
    case_sensitive = key_field.case_sensitive or not key_field.unique
    keys = [key_in_body(_row_values(job, row), key_field.name) for row in rows]
    folded = [key if case_sensitive else key.lower() for key in keys]
    counts = Counter(key for key in folded if key)
    return {index for index, key in enumerate(folded) if key and counts[key] > 1}


def _row_values(job: IngestJob, row: CsvRow) -> dict[str, str]:
    return dict(zip(job.columns, row.values, strict=False))


def _ingest_row(
    session: ApiSession, job: IngestJob, csv_row: CsvRow, repeated_key: bool
) -> IngestResult:
    row = _row_values(job, csv_row)
    if csv_row.error is not None:
        # NOTE: "Prepare CSV Files" states that a badly quoted value fails its row but does
        # not give the error code. INVALID_FIELD is the practice org's choice.
        return IngestResult(row=row, error=f"INVALID_FIELD:{csv_row.error}:--")
    if len(csv_row.values) > len(job.columns):
        # NOTE: Salesforce's error for a row with more values than header columns is not
        # documented (it may fail the whole job). The practice org fails only the row.
        extra = len(csv_row.values) - len(job.columns)
        return IngestResult(row=row, error=(
            f"INVALID_FIELD:The row has {extra} more values than the header has columns:--"))
    if repeated_key:
        assert job.external_id_field is not None
        key = key_in_body(row, job.external_id_field)
        return IngestResult(row=row, error=(
            f"DUPLICATE_VALUE:Duplicate external id specified: {key}:{job.external_id_field}"))

    # An empty cell leaves a field unchanged; #N/A sets it to null.
    fields: dict[str, Any] = {k: (None if v == "#N/A" else v) for k, v in row.items() if v}
    try:
        # A row the injected UNABLE_TO_LOCK_ROW fault draws fails alone, as a locked
        # record fails its row of a Bulk API job.
        session.org.faults.inject_row_lock(fields)
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


def _started_ingest_job(session: ApiSession, job_id: str, *, to_end: bool = True) -> IngestJob:
    """Return an ingest job, processing its rows first if it waits in UploadComplete or InProgress.

    Reading the job's information processes one batch; reading its results processes the rest.
    """
    job = _ingest_job(session, job_id)
    if job.state in ("UploadComplete", "InProgress"):
        _process_ingest(_creator_session(session, job), job, to_end=to_end)
    return job


def _creator_session(session: ApiSession, job: IngestJob) -> ApiSession:
    """Return a session of the job's creator, so that the rows are written with the creator's
    access and not with that of the user whose request happens to process the job."""
    if job.created_by_id == session.user_id:
        return session
    access = access_for_user(session.store, job.created_by_id)
    if access is None:
        raise not_found()
    return ApiSession(session.org, access, session.version)


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
        **({"errorMessage": job.error_message} if job.error_message else {}),
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
    _check_job_owner(session, job)
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
    # NOTE: the Bulk API 2.0 guide does not say whether another user may read a query
    # job's results. The practice org refuses, so that no path shows a user Tasks that
    # their own record access hides.
    _check_job_owner(session, job)
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
