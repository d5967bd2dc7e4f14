"""The practice org's WSGI application: URL routing, authentication and API usage.

Every call under ``/services/data/vXX.X/`` needs a Bearer access token of an
active user with API Enabled, counts against the daily API request allocation
and carries ``Sforce-Limit-Info: api-usage=N/LIMIT``. A handler runs inside one
database transaction, so a rejected request leaves nothing half written.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org import (
    bulk_routes,
    composite_routes,
    data_routes,
    oauth_routes,
    query_routes,
    tooling_routes,
)
from backstory_desktop.practice_org.errors import ApiError, OAuthError, invalid_session, not_found
from backstory_desktop.practice_org.faults import Fault, fault_error
from backstory_desktop.practice_org.http import error_response, json_response
from backstory_desktop.practice_org.ids import ORG_ID
from backstory_desktop.practice_org.permissions import SessionAccess, access_for_user
from backstory_desktop.practice_org.session import ApiSession, OrgState

logger = logging.getLogger(__name__)

_BEARER = re.compile(r"^(?:Bearer|OAuth)\s+(\S+)$", re.IGNORECASE)

OAUTH = "oauth"
PUBLIC = "public"
IDENTITY = "identity"
API = "api"


class _VersionConverter(BaseConverter):
    regex = r"\d+\.\d"


def _api_rules() -> list[tuple[str, list[str], Callable[..., Response]]]:
    return [
        ("/", ["GET"], data_routes.resources),
        ("/limits", ["GET"], data_routes.limits),
        ("/sobjects", ["GET"], data_routes.describe_global),
        ("/sobjects/<sobject>", ["GET"], data_routes.sobject_info),
        ("/sobjects/<sobject>", ["POST"], data_routes.create),
        ("/sobjects/<sobject>/describe", ["GET"], data_routes.describe),
        ("/sobjects/<sobject>/<record_id>", ["GET"], data_routes.get_row),
        ("/sobjects/<sobject>/<record_id>", ["PATCH"], data_routes.update),
        ("/sobjects/<sobject>/<record_id>", ["DELETE"], data_routes.delete),
        ("/sobjects/<sobject>/<field>/<path:value>", ["PATCH"], data_routes.upsert),
        ("/query", ["GET"], query_routes.query),
        ("/queryAll", ["GET"], query_routes.query_all),
        ("/query/<locator>", ["GET"], query_routes.query_more),
        ("/queryAll/<locator>", ["GET"], query_routes.query_more),
        ("/composite/sobjects", ["POST"], composite_routes.create_collection),
        ("/composite/sobjects", ["PATCH"], composite_routes.update_collection),
        ("/composite/sobjects", ["DELETE"], composite_routes.delete_collection),
        ("/composite/sobjects/<sobject>/<field>", ["PATCH"], composite_routes.upsert_collection),
        ("/jobs/ingest", ["POST"], bulk_routes.create_ingest_job),
        ("/jobs/ingest/<job_id>", ["GET"], bulk_routes.get_ingest_job),
        ("/jobs/ingest/<job_id>", ["PATCH"], bulk_routes.set_ingest_state),
        ("/jobs/ingest/<job_id>/batches", ["PUT"], bulk_routes.upload_ingest_data),
        ("/jobs/ingest/<job_id>/successfulResults", ["GET"], bulk_routes.successful_results),
        ("/jobs/ingest/<job_id>/failedResults", ["GET"], bulk_routes.failed_results),
        ("/jobs/ingest/<job_id>/unprocessedrecords", ["GET"], bulk_routes.unprocessed_records),
        ("/jobs/query", ["POST"], bulk_routes.create_query_job),
        ("/jobs/query/<job_id>", ["GET"], bulk_routes.get_query_job),
        ("/jobs/query/<job_id>/results", ["GET"], bulk_routes.query_results),
        ("/tooling/query", ["GET"], tooling_routes.tooling_query),
        ("/tooling/sobjects/CustomField", ["POST"], tooling_routes.create_custom_field),
        ("/tooling/sobjects/CustomField/<record_id>", ["GET"], tooling_routes.get_custom_field),
        ("/tooling/sobjects/CustomField/<record_id>", ["PATCH"],
         tooling_routes.update_custom_field),
    ]


def build_url_map() -> Map:
    """Return the routes of the practice org, each endpoint a (kind, handler) pair."""
    rules = [
        Rule("/services/oauth2/authorize", methods=["GET"],
             endpoint=(OAUTH, oauth_routes.authorize)),
        Rule("/services/oauth2/token", methods=["POST"], endpoint=(OAUTH, oauth_routes.token)),
        Rule("/services/data/", methods=["GET"], endpoint=(PUBLIC, data_routes.versions)),
        Rule("/id/<org_id>/<user_id>", methods=["GET"], endpoint=(IDENTITY, None)),
    ]
    prefix = "/services/data/v<version:version>"
    rules += [
        Rule(prefix + path, methods=methods, endpoint=(API, handler))
        for path, methods, handler in _api_rules()
    ]
    return Map(rules, converters={"version": _VersionConverter}, strict_slashes=False,
               merge_slashes=False)


class PracticeOrgApp:
    """The WSGI callable that serves one practice org."""

    def __init__(self, org: OrgState) -> None:
        self.org = org
        self.url_map = build_url_map()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:
            # A bug in the practice org reaches the client as Salesforce's 500 body.
            logger.exception("Practice org failed on %s %s", request.method, request.path)
            response = error_response(ApiError(
                500, "UNKNOWN_EXCEPTION", "An unexpected error occurred in the practice org."))
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            (kind, handler), args = adapter.match()
        except NotFound:
            return error_response(not_found())
        except MethodNotAllowed as exc:
            allowed = ",".join(sorted(exc.valid_methods or []))
            return error_response(ApiError(
                405, "METHOD_NOT_ALLOWED",
                f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"))

        if kind == OAUTH:
            return self._oauth_call(handler, request)
        if kind == PUBLIC:
            return handler(self.org, request)  # type: ignore[no-any-return]
        if kind == IDENTITY:
            return self._identity_call(request, **args)
        return self._api_call(handler, request, dict(args))

    def _oauth_call(self, handler: Callable[..., Response], request: Request) -> Response:
        try:
            with self.org.store.transaction():
                return handler(self.org, request)
        except OAuthError as error:
            logger.info("OAuth request rejected: %s (%s)", error.error, error.description)
            return oauth_routes.oauth_error_response(error)

    def _identity_call(self, request: Request, org_id: str, user_id: str) -> Response:
        try:
            access = self._authenticate(request)
        except ApiError as error:
            return error_response(error)
        if org_id[:15] != ORG_ID[:15] or user_id[:15] != access.user_id[:15]:
            return Response("Bad_Id", status=403, mimetype="text/plain")
        return json_response(identity_body(self.org, access))

    def _api_call(
        self, handler: Callable[..., Response], request: Request, args: dict[str, Any]
    ) -> Response:
        version = args.pop("version")
        try:
            if version not in data_routes.served_versions():
                raise not_found()
            access = self._authenticate(request)
            if not access.has("PermissionsApiEnabled"):
                raise ApiError(403, "API_DISABLED_FOR_ORG",
                               "The REST API is not enabled for this Organization.")
        except ApiError as error:
            logger.info("API request to %s rejected: %s", handler.__name__, error.error_code)
            return error_response(error)

        used = self._count_request()
        try:
            if used > self.org.daily_api_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self._inject_fault(request)
            with self.org.store.transaction():
                response = handler(ApiSession(self.org, access, version), request, **args)
        except ApiError as error:
            logger.info("API request to %s by user %s failed: %s", handler.__name__,
                        access.user_id, error.error_code)
            response = error_response(error)
        response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{self.org.daily_api_limit}"
        return response

    def _inject_fault(self, request: Request) -> None:
        """Wait for the planned latency, then raise or act out the fault drawn for this call."""
        plan = self.org.faults.plan
        if plan.latency_seconds > 0:
            time.sleep(plan.latency_seconds)
        fault = self.org.faults.draw(request.method)
        if fault is None:
            return
        logger.info("Injecting %s into an API call", fault.value)
        if fault is Fault.DROPPED_CONNECTION:
            _drop_connection(request)
        raise fault_error(fault)

    def _authenticate(self, request: Request) -> SessionAccess:
        match = _BEARER.match(request.headers.get("Authorization", ""))
        grant = None if match is None else self.org.store.find_token(match.group(1), "access")
        if grant is None:
            raise invalid_session()
        access = access_for_user(self.org.store, grant.user_id)
        if access is None or access.user.fields.get("IsActive") is False:
            raise invalid_session()
        return access

    def _count_request(self) -> int:
        with self.org.store.lock:
            self.org.requests_since_start += 1
        return self.org.store.count_api_request()


def _drop_connection(request: Request) -> None:
    """Close the client's socket without a response, as a lost connection looks to it."""
    connection = request.environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


def identity_body(org: OrgState, access: SessionAccess) -> dict[str, Any]:
    """Return the identity service's response body for the token's user."""
    user = access.user.fields
    urls = {
        name: f"{org.base_url}/services/data/v{{version}}/{path}"
        for name, path in (("rest", ""), ("sobjects", "sobjects/"), ("query", "query/"),
                           ("tooling_rest", "tooling/"), ("limits", "limits"))
    }
    return {
        "id": f"{org.base_url}/id/{ORG_ID}/{access.user_id}",
        "asserted_user": True,
        "user_id": access.user_id,
        "organization_id": ORG_ID,
        "username": user.get("Username"),
        "nick_name": str(user.get("Username", "")).split("@")[0],
        "display_name": user.get("Name"),
        "email": user.get("Email"),
        "first_name": user.get("FirstName"),
        "last_name": user.get("LastName"),
        "active": user.get("IsActive") is not False,
        "user_type": "STANDARD",
        "urls": urls,
    }
