"""The practice org's WSGI application: URL routing, authentication and API usage.

Every call under ``/services/data/vXX.X/`` needs a Bearer access token of an
active user with API Enabled, counts against the daily API request allocation
and carries ``Sforce-Limit-Info: api-usage=N/LIMIT``. A handler runs inside one
database transaction, so a rejected request leaves nothing half written.

Injected faults (see ``faults``) act on these API calls only: the concurrency
limit and latency first, then the call's drawn fault before the handler runs,
or a dropped connection (or a load balancer's 504 page) after it has committed.
``/services/practice/faults`` reads and sets the fault plan of a running org.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org import (
    bulk_routes,
    composite_request_routes,
    composite_routes,
    data_routes,
    oauth_routes,
    oauth_tokens,
    query_routes,
    soap_login,
    soap_undelete,
    tooling_routes,
    userinfo,
)
from backstory_desktop.practice_org.errors import ApiError, OAuthError, invalid_session, not_found
from backstory_desktop.practice_org.faults import Fault, FaultInjector, FaultPlan, fault_error, gateway_page
from backstory_desktop.practice_org.http import error_response, json_object, json_response
from backstory_desktop.practice_org.ids import to_id18
from backstory_desktop.practice_org.permissions import SessionAccess, access_for_user
from backstory_desktop.practice_org.session import (
    DAILY_API_REQUEST_LIMIT,
    MAX_DAILY_API_LIMIT,
    ApiSession,
    OrgState,
)

logger = logging.getLogger(__name__)

_BEARER = re.compile(r"^(?:Bearer|OAuth)\s+(\S+)$", re.IGNORECASE)

OAUTH = "oauth"
PUBLIC = "public"
IDENTITY = "identity"
API = "api"
FAULT_CONTROL = "fault_control"
SOAP = "soap"
USERINFO = "userinfo"
RECYCLE_BIN_CONTROL = "recycle_bin_control"

# Writes of one record, which an UNABLE_TO_LOCK_ROW fault fails as a whole.
# sObject Collections draw the fault per record instead (composite_routes).
_SINGLE_RECORD_WRITES = frozenset({
    data_routes.create, data_routes.update, data_routes.delete, data_routes.upsert,
})


# Faults acted out after the handler has committed its write.
_FAULTS_AFTER_COMMIT = frozenset({Fault.DROPPED_AFTER_COMMIT, Fault.GATEWAY_TIMEOUT})


class _GatewayAnswer(Exception):
    """A load balancer's error page sent in place of the org's response."""

    def __init__(self, fault: Fault) -> None:
        status, page = gateway_page(fault)
        super().__init__(f"HTTP {status} from the load balancer")
        self.response = Response(page, status=status, mimetype="text/html")


class _VersionConverter(BaseConverter):
    regex = r"\d+\.\d"


def _api_rules() -> list[tuple[str, list[str], Callable[..., Response]]]:
    return [
        ("/", ["GET"], data_routes.resources),
        ("/limits", ["GET"], data_routes.limits),
        ("/limits/recordCount", ["GET"], data_routes.record_count),
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
        ("/composite", ["POST"], composite_request_routes.composite),
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
        # simple-salesforce 1.12 requests unprocessedRecords, and Salesforce documents unprocessedrecords.
        ("/jobs/ingest/<job_id>/unprocessedRecords", ["GET"], bulk_routes.unprocessed_records),
        ("/jobs/query", ["POST"], bulk_routes.create_query_job),
        ("/jobs/query/<job_id>", ["GET"], bulk_routes.get_query_job),
        ("/jobs/query/<job_id>", ["PATCH"], bulk_routes.set_query_state),
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
        Rule("/services/oauth2/authorize", methods=["POST"], endpoint=(OAUTH, oauth_routes.decide)),
        Rule("/services/oauth2/token", methods=["POST"], endpoint=(OAUTH, oauth_routes.token)),
        Rule("/services/oauth2/revoke", methods=["GET", "POST"],
             endpoint=(OAUTH, oauth_routes.revoke)),
        Rule("/services/oauth2/userinfo", methods=["GET", "POST"],
             endpoint=(USERINFO, userinfo.userinfo)),
        Rule("/services/Soap/u/<version>", methods=["POST"], endpoint=(SOAP, None)),
        Rule("/services/practice/faults", methods=["GET", "POST"], endpoint=(FAULT_CONTROL, None)),
        Rule("/services/practice/recycle-bin/empty", methods=["POST"],
             endpoint=(RECYCLE_BIN_CONTROL, None)),
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
        org.route_api_call = self.route_api_call

    def route_api_call(
        self, environ: dict[str, Any]
    ) -> tuple[Callable[..., Response], dict[str, Any]] | None:
        """Return the REST handler and path arguments for an environ, or None if it names none."""
        try:
            (kind, handler), args = self.url_map.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed):
            return None
        return (handler, dict(args)) if kind == API else None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if not self.org.served.begin():
            return _stopping_response()(environ, start_response)
        try:
            response = self.dispatch(request)
        except ConnectionAbortedError:
            # An injected dropped connection: werkzeug closes the socket without a response.
            raise
        except Exception:
            # A bug in the practice org reaches the client as Salesforce's 500 body.
            logger.exception("Practice org failed on %s %s", request.method, request.path)
            response = error_response(ApiError(
                500, "UNKNOWN_EXCEPTION", "An unexpected error occurred in the practice org."))
        finally:
            self.org.served.end()
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
        if kind == SOAP:
            return self._soap_call(request, **args)
        if kind == USERINFO:
            # Like OAuth calls, userinfo is neither counted against the API allocation nor faulted.
            with self.org.store.transaction():
                return handler(self.org, request, **args)  # type: ignore[no-any-return]
        if kind == PUBLIC:
            return handler(self.org, request)  # type: ignore[no-any-return]
        if kind == IDENTITY:
            return self._identity_call(request, **args)
        if kind == FAULT_CONTROL:
            return self._fault_control_call(request)
        if kind == RECYCLE_BIN_CONTROL:
            return self._recycle_bin_control_call(request)
        return self._api_call(handler, request, dict(args))

    def _soap_call(self, request: Request, version: str) -> Response:
        """Serve the partner SOAP endpoint, dispatching on the operation element in the Body.

        login() is neither counted against the API allocation nor faulted, like OAuth
        calls. undelete() counts as an API request (see ``soap_undelete``).
        """
        try:
            soap_login.check_version(version)
            envelope = soap_login.read_envelope(request)
            operation = soap_login.operation_element(envelope)
        except soap_login.SoapFault as fault:
            logger.info("SOAP request rejected: %s", fault.code)
            return soap_login.fault_response(fault)
        if operation.tag == soap_login.LOGIN_OPERATION:
            with self.org.store.transaction():
                return soap_login.login_operation(self.org, operation, version)
        if operation.tag == soap_undelete.UNDELETE_OPERATION:
            return soap_undelete.undelete_call(self.org, envelope, operation, self._count_request,
                                               around=partial(self._soap_with_faults, request),
                                               row_lock=self._row_lock)
        logger.info("SOAP request for an unknown operation %s", operation.tag)
        return soap_login.fault_response(soap_login.unknown_operation(operation))

    def _soap_with_faults(self, request: Request, session_id: str,
                          operation: Callable[[], Response]) -> Response:
        """Run a SOAP operation acting out the fault drawn for the call, like ``_run_with_faults`` for REST.

        A fault with a Salesforce code is raised as the SOAP fault of that code.
        """
        faults = self.org.faults
        try:
            with faults.in_flight():
                self._wait_latency(faults)
                # UNABLE_TO_LOCK_ROW is drawn per record instead (``_row_lock``).
                fault = faults.draw(single_record_write=False)
                if fault is not None:
                    logger.info("Injecting %s into a SOAP call", fault.value)
                if fault is Fault.DROPPED_CONNECTION:
                    _drop_connection(request)
                if fault is Fault.EXPIRED_SESSION:
                    self._end_session(session_id)
                if fault is Fault.BAD_GATEWAY:
                    return _GatewayAnswer(fault).response
                if fault is not None and fault not in _FAULTS_AFTER_COMMIT:
                    raise fault_error(fault, faults)
                response = operation()
                if fault is Fault.DROPPED_AFTER_COMMIT:
                    _drop_connection(request)
                if fault is Fault.GATEWAY_TIMEOUT:
                    return _GatewayAnswer(fault).response
                return response
        except ApiError as error:
            message = (soap_undelete.INVALID_SESSION_MESSAGE if error.error_code == "INVALID_SESSION_ID"
                       else error.message)
            raise soap_login.SoapFault(error.error_code, message) from error

    def _row_lock(self, record_id: str) -> ApiError | None:
        """Return UNABLE_TO_LOCK_ROW for a record of a SOAP write at the plan's rate, else None."""
        try:
            self.org.faults.inject_row_lock({"Id": record_id})
        except ApiError as error:
            return error
        return None

    def _oauth_call(self, handler: Callable[..., Response], request: Request) -> Response:
        try:
            with self.org.store.transaction():
                return handler(self.org, request)
        except OAuthError as error:
            logger.info("OAuth request rejected: %s (%s)", error.error, error.description)
            return oauth_routes.oauth_error_response(error)

    def _identity_call(self, request: Request, org_id: str, user_id: str) -> Response:
        try:
            _token, access = self._authenticate(request)
        except ApiError as error:
            return error_response(error)
        if org_id[:15] != self.org.store.org_id[:15] or user_id[:15] != access.user_id[:15]:
            return Response("Bad_Id", status=403, mimetype="text/plain")
        return json_response(identity_body(self.org, access))

    def _api_call(
        self, handler: Callable[..., Response], request: Request, args: dict[str, Any]
    ) -> Response:
        version = args.pop("version")
        faults = self.org.faults
        try:
            if version not in data_routes.served_versions():
                raise not_found()
            token, access = self._authenticate(request)
            # API access needs the API Enabled permission (SOAP API Developer Guide,
            # "Implementation Considerations").
            if not access.has("PermissionsApiEnabled"):
                raise ApiError(403, "API_DISABLED_FOR_ORG",
                               "The REST API is not enabled for this Organization.")
            self._count_session_call(faults, token)
        except ApiError as error:
            logger.info("API request to %s rejected: %s", handler.__name__, error.error_code)
            return error_response(error)

        # Every call counts against the daily allocation and reports it in Sforce-Limit-Info;
        # once it is spent, calls get 403 REQUEST_LIMIT_EXCEEDED (REST API Developer Guide,
        # "API Usage Information Header" and "Status Codes and Error Responses").
        used = self._count_request()
        self.org.store.purge_recycle_bin()
        try:
            if used > self.org.daily_api_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            with faults.in_flight():
                response = self._run_with_faults(
                    faults, handler, request, token, ApiSession(self.org, access, version), args)
        except _GatewayAnswer as answer:
            # The load balancer's page carries none of Salesforce's headers.
            return answer.response
        except ApiError as error:
            logger.info("API request to %s by user %s failed: %s", handler.__name__,
                        access.user_id, error.error_code)
            response = error_response(error)
        response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{self.org.daily_api_limit}"
        return response

    def _run_with_faults(
        self, faults: FaultInjector, handler: Callable[..., Response], request: Request,
        token: str, session: ApiSession, args: dict[str, Any],
    ) -> Response:
        """Run a handler in one transaction, acting out the fault drawn for the call around it."""
        self._wait_latency(faults)
        fault = faults.draw(single_record_write=handler in _SINGLE_RECORD_WRITES)
        if fault is not None:
            logger.info("Injecting %s into an API call to %s", fault.value, handler.__name__)
        if fault is Fault.DROPPED_CONNECTION:
            _drop_connection(request)
        if fault is Fault.EXPIRED_SESSION:
            self._end_session(token)
        if fault is Fault.BAD_GATEWAY:
            raise _GatewayAnswer(fault)
        if fault is not None and fault not in _FAULTS_AFTER_COMMIT:
            raise fault_error(fault, faults)

        with self.org.store.transaction():
            response = handler(session, request, **args)
        if fault is Fault.DROPPED_AFTER_COMMIT:
            _drop_connection(request)
        if fault is Fault.GATEWAY_TIMEOUT:
            raise _GatewayAnswer(fault)
        return response

    def _wait_latency(self, faults: FaultInjector) -> None:
        """Wait the plan's latency, or raise SERVER_UNAVAILABLE if the org starts stopping meanwhile."""
        latency = faults.plan.latency_seconds
        if latency > 0 and not self.org.served.wait_latency(latency):
            raise fault_error(Fault.SERVER_UNAVAILABLE, faults)

    def _count_session_call(self, faults: FaultInjector, token: str) -> None:
        """Count a call against the token's planned number of calls, ending the session after the last."""
        try:
            faults.count_session_call(oauth_tokens.access_token_key(token))
        except ApiError:
            self._end_session(token)
            raise

    def _end_session(self, token: str) -> None:
        with self.org.store.transaction():
            oauth_tokens.revoke(self.org.store, token)

    def _fault_control_call(self, request: Request) -> Response:
        """``GET`` or ``POST /services/practice/faults``: read or replace the fault plan.

        The request and response bodies are the FaultPlan's fields plus ``daily_api_limit``.
        A POST replaces all of them, so a field left out takes its default. Only a
        user with Modify All Data may call it. The call is neither counted nor
        faulted, so a plan can always be switched off.
        """
        try:
            _token, access = self._authenticate(request)
            if not access.has("PermissionsModifyAllData"):
                raise ApiError(403, "INSUFFICIENT_ACCESS",
                               "Reading or setting faults needs the Modify All Data permission.")
            if request.method == "POST":
                body = json_object(request)
                daily_api_limit = _daily_api_limit(body.pop("daily_api_limit", DAILY_API_REQUEST_LIMIT))
                self.org.faults = FaultInjector(_fault_plan(body))
                self.org.daily_api_limit = daily_api_limit
                logger.info("Fault plan set by user %s: %s, daily API limit %d", access.user_id,
                            self.org.faults.plan.summary(), daily_api_limit)
        except ApiError as error:
            logger.info("Fault plan request rejected: %s (%s)", error.error_code, error.message)
            return error_response(error)
        return json_response({**self.org.faults.plan.to_json(),
                              "daily_api_limit": self.org.daily_api_limit})

    def _recycle_bin_control_call(self, request: Request) -> Response:
        """``POST /services/practice/recycle-bin/empty``: purge records from the recycle bin.

        The body ``{"ids": [...]}`` names the records to purge; an empty body or one
        without ``ids`` purges the whole recycle bin. Ids of records that are not in it
        are skipped. Returns ``{"purged": N}``. Only a user with Modify All Data may
        call it, and the call is neither counted nor faulted. Salesforce has no such
        resource: an admin empties the recycle bin in Setup or with emptyRecycleBin().
        """
        try:
            _token, access = self._authenticate(request)
            if not access.has("PermissionsModifyAllData"):
                raise ApiError(403, "INSUFFICIENT_ACCESS",
                               "Emptying the recycle bin needs the Modify All Data permission.")
            ids = _recycle_bin_ids(json_object(request) if request.get_data() else {})
            purged = self.org.store.empty_recycle_bin(ids)
        except ApiError as error:
            logger.info("Recycle bin request rejected: %s (%s)", error.error_code, error.message)
            return error_response(error)
        logger.info("Recycle bin emptied by user %s: %d records purged", access.user_id, purged)
        return json_response({"purged": purged})

    def _authenticate(self, request: Request) -> tuple[str, SessionAccess]:
        """Return the request's access token and its user's access, or raise INVALID_SESSION_ID."""
        match = _BEARER.match(request.headers.get("Authorization", ""))
        if match is None:
            raise invalid_session()
        token = match.group(1)
        found = oauth_tokens.find_token(self.org.store, token, oauth_tokens.ACCESS)
        if found is None:
            raise invalid_session()
        access = access_for_user(self.org.store, found.user_id)
        if access is None or access.user.fields.get("IsActive") is False:
            raise invalid_session()
        return token, access

    def _count_request(self) -> int:
        with self.org.store.lock:
            self.org.requests_since_start += 1
        return self.org.store.count_api_request()


def _stopping_response() -> Response:
    """Return the 503 response to a request that arrives while the org is stopping."""
    return error_response(ApiError(503, "SERVER_UNAVAILABLE", "The practice org is stopping."))


def _drop_connection(request: Request) -> None:
    """Close the client's socket and end the request without a response.

    Raises ConnectionAbortedError, which werkzeug takes for a connection the
    client dropped: it sends nothing and logs nothing.
    """
    connection = request.environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("connection dropped by an injected fault")


def _recycle_bin_ids(body: dict[str, Any]) -> list[str] | None:
    """Return the ids a recycle bin request names, or None for the whole recycle bin."""
    ids = body.get("ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise ApiError(400, "INVALID_FIELD",
                       f"ids must be a list of record ids, not {ids!r}: send {{\"ids\": [\"00T...\"]}}")
    return [to_id18(item) for item in ids]


def _daily_api_limit(value: object) -> int:
    if (isinstance(value, bool) or not isinstance(value, int)
            or not 1 <= value <= MAX_DAILY_API_LIMIT):
        raise ApiError(400, "INVALID_FIELD",
                       f"daily_api_limit must be a whole number from 1 to {MAX_DAILY_API_LIMIT}, "
                       f"not {value!r}")
    return value


def _fault_plan(body: dict[str, Any]) -> FaultPlan:
    try:
        return FaultPlan.from_json(body)
    except ValueError as error:
        raise ApiError(400, "INVALID_FIELD", str(error)) from None


def identity_body(org: OrgState, access: SessionAccess) -> dict[str, Any]:
    """Return the identity service's response body for the token's user."""
    user = access.user.fields
    urls = {
        name: f"{org.base_url}/services/data/v{{version}}/{path}"
        for name, path in (("rest", ""), ("sobjects", "sobjects/"), ("query", "query/"),
                           ("tooling_rest", "tooling/"), ("limits", "limits"))
    }
    org_id = org.store.org_id
    return {
        "id": f"{org.base_url}/id/{org_id}/{access.user_id}",
        "asserted_user": True,
        "user_id": access.user_id,
        "organization_id": org_id,
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
