"""REST data API: versions, resources, limits, describe and sObject rows.

Paths and bodies follow Salesforce's REST API developer guide: a create returns
201 ``{id, success, errors}``, an update or delete returns 204, an upsert by
external ID returns 201 (created), 200 ``{..., created: false}`` (updated) or
300 with the URLs of every matching record.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.describe import describe_sobject, sobject_summary
from backstory_desktop.practice_org.describe_defaults import complete_describe, global_entry
from backstory_desktop.practice_org.errors import ApiError, not_found
from backstory_desktop.practice_org.http import json_object, json_response
from backstory_desktop.practice_org.schema import STANDARD_OBJECTS, canonical_sobject_name
from backstory_desktop.practice_org.session import ApiSession, OrgState
from backstory_desktop.practice_org.upsert import UpsertResult, upsert_by_external_id
from backstory_desktop.practice_org.writes import (
    create_record,
    delete_record,
    live_record,
    readable_record,
    update_record,
)

LOWEST_VERSION = 31
HIGHEST_VERSION = 66
_SEASONS = ("Winter", "Spring", "Summer")


def served_versions() -> list[str]:
    return [f"{major}.0" for major in range(LOWEST_VERSION, HIGHEST_VERSION + 1)]


def _release_label(major: int) -> str:
    # Three releases a year: v60.0 was Spring '24, v61.0 Summer '24, v62.0 Winter '25.
    offset = major - 60
    season = _SEASONS[(offset + 1) % 3]
    year = 24 + (offset + 1) // 3
    return f"{season} '{year:02d}"


def versions(org: OrgState, request: Request) -> Response:
    """List the API versions served, as ``GET /services/data/`` does.

    The entries have Salesforce's keys, label, url and version (REST API Developer
    Guide, "Versions"), and the call needs no session.
    """
    body = [
        {"label": _release_label(int(float(v))), "url": f"/services/data/v{v}", "version": v}
        for v in served_versions()
    ]
    return json_response(body)


def resources(session: ApiSession, request: Request) -> Response:
    base = session.version_path
    names = ("tooling", "query", "queryAll", "sobjects", "limits", "composite")
    return json_response({name: f"{base}/{name}" for name in names})


def limits(session: ApiSession, request: Request) -> Response:
    """``GET limits``: the org's allocations, for users with View Setup and Configuration.

    Permission rule: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
    """
    session.require_view_setup("Limits")
    used = session.store.api_requests_today()
    maximum = session.org.daily_api_limit
    return json_response({
        "DailyApiRequests": {"Max": maximum, "Remaining": max(maximum - used, 0)},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
    })


def record_count(session: ApiSession, request: Request) -> Response:
    """``GET limits/recordCount?sObjects=A,B``: the number of records of each object.

    Objects without records are left out, and without ``sObjects`` every object with
    records is listed, as recorded Salesforce responses show. The counts are org-wide,
    whatever records the user can see, and leave out records in the recycle bin and
    archived records. The resource needs View Setup and Configuration (REST API guide,
    https://developer.salesforce.com/docs/platform/api-rest/guide/resources-record-count.html).
    """
    # NOTE: Salesforce's counts are a cached snapshot refreshed at varying intervals;
    # these are exact at the time of the request.
    session.require_view_setup("Record Count")
    requested = [name.strip() for name in request.args.get("sObjects", "").split(",")
                 if name.strip()]
    names = [canonical_sobject_name(name) for name in requested] if requested \
        else list(STANDARD_OBJECTS)
    counts = []
    for name in filter(None, names):
        count = sum(1 for _ in session.store.iter_records(name, include_hidden=False))
        if count:
            counts.append({"count": count, "name": name})
    return json_response({"sObjects": counts})


def describe_global(session: ApiSession, request: Request) -> Response:
    """``GET sobjects``: the summary of each object available to the user, or 304 if unchanged.

    Salesforce lists "the objects available in your org and available to the logged-in
    user" (https://developer.salesforce.com/docs/platform/api-rest/guide/dome-describeglobal.html),
    so the permission objects are left out for a user without View Setup and Configuration.
    """
    def body() -> Response:
        summaries = [global_entry(sobject_summary(spec, session.version_path))
                     for spec in STANDARD_OBJECTS.values()
                     if session.can_read_object(spec.name)]
        return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": summaries})

    return _unless_unchanged(session, request, body)


def describe(session: ApiSession, request: Request, sobject: str) -> Response:
    """``GET sobjects/{sobject}/describe``, or 304 if unchanged since If-Modified-Since."""
    # A permission object the user may not read is 404 NOT_FOUND, as a user without View
    # Setup and Configuration reports for a describe
    # (https://github.com/tprouvot/Salesforce-Inspector-reloaded/issues/1310).
    spec = session.readable_sobject(sobject)

    def body() -> Response:
        described = describe_sobject(spec, session.version_path, session.access.can_edit_field)
        return json_response(complete_describe(described, spec, session.version_path))

    return _unless_unchanged(session, request, body)


def _unless_unchanged(
    session: ApiSession, request: Request, build: Callable[[], Response]
) -> Response:
    """Return 304 with no body if the metadata is unchanged since If-Modified-Since.

    Salesforce's REST API guide ("Describe Global", "sObject Describe") counts changes
    to permissions and profiles as metadata changes as well as changes to objects.
    """
    changed = _metadata_changed(session)
    since = request.if_modified_since
    if changed is not None and since is not None and changed <= since:
        response = Response(status=304)
    else:
        response = build()
    if changed is not None:
        response.last_modified = changed
        response.set_etag(hashlib.sha256(changed.isoformat().encode()).hexdigest()[:8])
    return response


_PERMISSION_OBJECTS = ("Profile", "PermissionSet", "PermissionSetAssignment",
                       "FieldPermissions", "PermissionSetGroup", "PermissionSetGroupComponent",
                       "MutingPermissionSet")


def _metadata_changed(session: ApiSession) -> datetime.datetime | None:
    """Return when a custom field was created or a permission record last changed."""
    # NOTE: a Tooling API update of a custom field and a deleted permission record do not
    # move this date.
    stamps = [definition.created_date for definition in session.store.custom_fields()]
    for sobject in _PERMISSION_OBJECTS:
        stamps += [record.last_modified_date for record in session.store.records_of(sobject)]
    moments = [_parse_datetime(stamp) for stamp in stamps if stamp]
    return max(moments).replace(microsecond=0) if moments else None


def _parse_datetime(stamp: str) -> datetime.datetime:
    """Parse Salesforce's ``2026-01-31T09:30:00.000+0000`` dateTime format."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")


def sobject_info(session: ApiSession, request: Request, sobject: str) -> Response:
    spec = session.readable_sobject(sobject)
    return json_response({
        "objectDescribe": sobject_summary(spec, session.version_path), "recentItems": [],
    })


def create(session: ApiSession, request: Request, sobject: str) -> Response:
    spec = session.sobject(sobject)
    record = create_record(session, spec.name, json_object(request))
    response = json_response({"id": record.id, "success": True, "errors": []}, 201)
    response.headers["Location"] = session.record_url(spec.name, record.id)
    return response


def get_row(session: ApiSession, request: Request, sobject: str, record_id: str) -> Response:
    spec = session.readable_sobject(sobject)
    record = readable_record(session, spec.name, record_id)
    return json_response(visible_row(session, spec.name, record.as_row(), request.args.get("fields")))


def update(session: ApiSession, request: Request, sobject: str, record_id: str) -> Response:
    spec = session.sobject(sobject)
    record = live_record(session, spec.name, record_id)
    update_record(session, record, json_object(request))
    return Response(status=204)


def delete(session: ApiSession, request: Request, sobject: str, record_id: str) -> Response:
    spec = session.sobject(sobject)
    delete_record(session, live_record(session, spec.name, record_id))
    return Response(status=204)


def upsert(
    session: ApiSession, request: Request, sobject: str, field: str, value: str
) -> Response:
    """Upsert one record by external ID; the key comes from the URL, the fields from the body."""
    spec = session.sobject(sobject)
    key = _path_value(request, value)
    body = json_object(request)
    result = upsert_by_external_id(session, spec.name, field, key, body)
    return _upsert_response(session, spec.name, result)


def _upsert_response(session: ApiSession, sobject: str, result: UpsertResult) -> Response:
    # Several matches get HTTP 300 with the matching records' URLs and write nothing (REST API
    # Developer Guide, "Upsert Records Using sObject Rows by External ID").
    if result.matches and len(result.matches) > 1:
        urls = [session.record_url(sobject, record_id) for record_id in result.matches]
        return json_response(urls, 300)
    if result.error is not None:
        raise result.error
    body: dict[str, Any] = {"id": result.record_id, "success": True, "errors": [],
                            "created": result.created}
    return json_response(body, 201 if result.created else 200)


def _path_value(request: Request, decoded: str) -> str:
    """Return the external ID value exactly as sent, with ``%2F`` kept apart from ``/``.

    The WSGI path is already percent-decoded, so the raw request URI is decoded
    again here, one segment at a time, when the server provides it. A raw ``/``
    inside the value makes an extra path segment, for which Salesforce returns
    404 NOT_FOUND, so client libraries send such keys as ``%2F`` (simple-salesforce,
    jsforce). One trailing ``/`` is allowed.
    """
    raw_uri = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if not raw_uri:
        return decoded
    raw_path = raw_uri.split("?", 1)[0]
    marker = "/sobjects/"
    tail = raw_path[raw_path.index(marker) + len(marker):] if marker in raw_path else ""
    segments = tail.split("/")
    if len(segments) > 3 and any(segments[3:]):
        raise not_found()
    return unquote(segments[2]) if len(segments) >= 3 else decoded


def visible_row(
    session: ApiSession, sobject: str, row: dict[str, Any], fields: str | None
) -> dict[str, Any]:
    """Return a record as the user may read it, with ``attributes`` first."""
    spec = session.sobject(sobject)
    requested = [name.strip() for name in fields.split(",")] if fields else None
    result: dict[str, Any] = {
        "attributes": {"type": spec.name, "url": session.record_url(spec.name, row["Id"])}
    }
    for field in spec.fields:
        if requested is None or field.name.lower() in (w.lower() for w in requested):
            result[field.name] = row.get(field.name)
    if requested:
        unknown = [w for w in requested if spec.field(w) is None]
        if unknown:
            raise ApiError(400, "INVALID_FIELD",
                           f"No such column '{unknown[0]}' on sobject of type {spec.name}")
    return result
