"""SOAP API ``undelete()`` on the partner endpoint, ``POST /services/Soap/u/<version>``.

Request, in namespace ``urn:partner.soap.sforce.com``::

    <soapenv:Header><urn:SessionHeader><urn:sessionId>TOKEN</urn:sessionId></urn:SessionHeader>
    </soapenv:Header>
    <soapenv:Body><urn:undelete><urn:ids>ID</urn:ids>...</urn:undelete></soapenv:Body>

Response: ``undeleteResponse`` with one ``result`` per requested id, in request
order, each with ``id`` and ``success`` and, on failure, ``errors`` carrying
``message`` and ``statusCode``. The call is ``UndeleteResult[] = connection.undelete(ID[] ids)``
(https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_undelete.htm),
and UndeleteResult has the fields ``id``, ``success`` and ``errors``
(https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_undelete_undeleteresult.htm).
The elements are written in the order of the partner WSDL's types (errors, id, success).

The session id is an access token of the practice org, the same one REST takes
as a Bearer token. The call counts against the daily API request allocation as
a REST call does, and the response's ``LimitInfoHeader`` reports the count.
Injected faults (``faults``) act on undelete() as on a REST call, through the
``around`` and ``row_lock`` hooks the app passes. A fault drawn before the
restore returns the SOAP fault of its code (UNKNOWN_EXCEPTION,
SERVER_UNAVAILABLE, INVALID_SESSION_ID), drops the connection or returns a
gateway page. A fault drawn after the restore commits drops the connection or
returns a gateway page, so the client cannot know that the records were restored.
UNABLE_TO_LOCK_ROW is drawn for each record, as for sObject Collections, so the
drawn records fail in their results and the others are restored.

Rights: the practice org lets a user restore a record they own, or any record
with Modify All Data. Salesforce requires delete rights on the record, as its
sharing model grants them, and the practice org does not model sharing.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from backstory_desktop.practice_org import oauth_tokens
from backstory_desktop.practice_org.errors import ApiError
from backstory_desktop.practice_org.permissions import SessionAccess, access_for_user
from backstory_desktop.practice_org.session import OrgState
from backstory_desktop.practice_org.soap_login import (
    PARTNER_NAMESPACE,
    SOAP_ENVELOPE_NAMESPACE,
    XSI_NAMESPACE,
    SoapFault,
    fault_response,
    xml_response,
)
from backstory_desktop.practice_org.store import Record
from backstory_desktop.practice_org.writes import undelete_each

logger = logging.getLogger(__name__)

UNDELETE_OPERATION = f"{{{PARTNER_NAMESPACE}}}undelete"

# NOTE: the SOAP API limits create(), update() and delete() to 200 records a call
# ("SOAP API Call Limits" in the Salesforce App Limits Cheatsheet). The practice org
# applies the same limit to undelete(). The fault code is a guess: Salesforce
# documents EXCEEDED_ID_LIMIT for getDeleted() only.
MAX_UNDELETE_IDS = 200

INVALID_SESSION_MESSAGE = "Invalid Session ID found in SessionHeader: Illegal Session"


@dataclass(frozen=True)
class UndeleteRequest:
    """The session id and record ids of an ``undelete()`` call."""

    session_id: str
    ids: list[str]


@dataclass(frozen=True)
class UndeleteResult:
    """One record's outcome: its id, and the error when it was not restored."""

    id: str
    error: ApiError | None = None


def parse_undelete_request(envelope: ElementTree.Element,
                           operation: ElementTree.Element) -> UndeleteRequest:
    """Read the SessionHeader's session id and the ids of an ``undelete`` operation."""
    session_id = envelope.findtext(
        f"{{{SOAP_ENVELOPE_NAMESPACE}}}Header/{{{PARTNER_NAMESPACE}}}SessionHeader/"
        f"{{{PARTNER_NAMESPACE}}}sessionId") or ""
    ids = [(element.text or "").strip()
           for element in operation.findall(f"{{{PARTNER_NAMESPACE}}}ids")]
    return UndeleteRequest(session_id.strip(), ids)


def session_access(org: OrgState, session_id: str) -> SessionAccess:
    """Return the access of the session's active, API-enabled user, or raise the fault Salesforce sends."""
    found = oauth_tokens.find_token(org.store, session_id, oauth_tokens.ACCESS) if session_id else None
    access = None if found is None else access_for_user(org.store, found.user_id)
    if access is None or access.user.fields.get("IsActive") is False:
        raise SoapFault("INVALID_SESSION_ID", INVALID_SESSION_MESSAGE)
    # API access needs API Enabled (SOAP API Developer Guide, "Implementation Considerations").
    if not access.has("PermissionsApiEnabled"):
        raise SoapFault("API_CURRENTLY_DISABLED", "API is disabled for this User")
    return access


def check_id_count(ids: Sequence[str]) -> None:
    """Raise EXCEEDED_ID_LIMIT for more than MAX_UNDELETE_IDS ids, or INVALID_ID_FIELD for none."""
    if len(ids) > MAX_UNDELETE_IDS:
        raise SoapFault("EXCEEDED_ID_LIMIT",
                        f"record limit reached. cannot submit more than {MAX_UNDELETE_IDS} "
                        f"records into this call, not {len(ids)}")
    if not ids:
        raise SoapFault("INVALID_ID_FIELD",
                        "The undelete() call has no ids: send at least one urn:ids element.")


def run_undelete(org: OrgState, access: SessionAccess, ids: Sequence[str],
                 row_lock: Callable[[str], ApiError | None] | None = None) -> list[UndeleteResult]:
    """Restore the records in one transaction; return each id's outcome in request order.

    ``row_lock`` returns the error of a record that could not be locked, or None.
    """

    def may_undelete(record: Record) -> bool:
        return (access.has("PermissionsModifyAllData")
                or record.fields.get("OwnerId") == access.user_id)

    locks = [row_lock(record_id) if row_lock is not None else None for record_id in ids]
    free = [record_id for record_id, lock in zip(ids, locks, strict=True) if lock is None]
    with org.store.transaction():
        unlocked = iter(undelete_each(org.store, free, may_undelete=may_undelete))
    outcomes = [(record_id, lock) if lock is not None else next(unlocked)
                for record_id, lock in zip(ids, locks, strict=True)]
    restored = sum(1 for _record_id, error in outcomes if error is None)
    logger.info("SOAP undelete by user %s: %d of %d records restored", access.user_id,
                restored, len(outcomes))
    return [UndeleteResult(record_id, error) for record_id, error in outcomes]


def undelete_call(org: OrgState, envelope: ElementTree.Element, operation: ElementTree.Element,
                  count_request: Callable[[], int],
                  around: Callable[[str, Callable[[], Response]], Response] | None = None,
                  row_lock: Callable[[str], ApiError | None] | None = None) -> Response:
    """Serve a parsed ``undelete`` operation: check the session, count the call, restore the records.

    ``count_request`` counts the call against the daily allocation and returns the
    number used today. ``around`` runs the restore, given the session id and a
    function that restores and returns the response, and the app injects faults there.
    ``around`` may raise SoapFault, which is returned as a SOAP fault response.
    ``row_lock`` returns the error of a record that could not be locked, or None.
    """
    try:
        request = parse_undelete_request(envelope, operation)
        access = session_access(org, request.session_id)
        used = count_request()
        if used > org.daily_api_limit:
            raise SoapFault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        check_id_count(request.ids)
    except SoapFault as fault:
        logger.info("SOAP undelete rejected: %s", fault.code)
        return fault_response(fault)

    def restore() -> Response:
        results = run_undelete(org, access, request.ids, row_lock)
        return xml_response(undelete_response(results, used=used, limit=org.daily_api_limit), 200)

    try:
        return restore() if around is None else around(request.session_id, restore)
    except SoapFault as fault:
        logger.info("SOAP undelete failed: %s", fault.code)
        return fault_response(fault)


def undelete_response(results: Sequence[UndeleteResult], *, used: int, limit: int) -> str:
    """Return the ``undeleteResponse`` envelope with a LimitInfoHeader."""
    body = "".join(_result_element(result) for result in results)
    limit_info = (
        "<LimitInfoHeader><limitInfo>"
        f"<current>{used}</current><limit>{limit}</limit><type>API REQUESTS</type>"
        "</limitInfo></LimitInfoHeader>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NAMESPACE}" '
        f'xmlns="{PARTNER_NAMESPACE}" xmlns:xsi="{XSI_NAMESPACE}">'
        f"<soapenv:Header>{limit_info}</soapenv:Header>"
        f"<soapenv:Body><undeleteResponse>{body}</undeleteResponse></soapenv:Body>"
        "</soapenv:Envelope>"
    )


def _result_element(result: UndeleteResult) -> str:
    # NOTE: the Apex UndeleteResult leaves the id empty when the undelete failed. The
    # practice org echoes the requested id in every result, so match results by position.
    record_id = f"<id>{escape(result.id)}</id>"
    if result.error is None:
        return f"<result>{record_id}<success>true</success></result>"
    errors = (f"<errors><message>{escape(result.error.message)}</message>"
              f"<statusCode>{escape(result.error.error_code)}</statusCode></errors>")
    return f"<result>{errors}{record_id}<success>false</success></result>"
