"""Read, update, delete and restore Tasks by Id, 200 a call, with one outcome per Task.

Updates and deletes use sObject Collections with ``allOrNone`` false, so one
rejected Task does not stop the others (REST API Developer Guide, "Update Records
Using sObject Collections" and "Delete Records Using sObject Collections",
https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-delete.html).
The REST API has no undelete resource, so restoring from the recycle bin posts the
SOAP partner API's ``undelete()`` call (SOAP API Developer Guide, "undelete()",
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_undelete.htm),
with the OAuth access token of the REST calls as its session id. Reads use
queryAll, so Tasks in the recycle bin and archived Tasks are found too.

Each write function returns every given Id mapped to None once written, or to
Salesforce's reason ("ENTITY_IS_DELETED: entity is deleted"). A failure of a call
as a whole raises the explained SalesforceProblem, or a requests exception.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import requests
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError

from backstory_desktop.core.jobs import check_cancel
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import (
    ProblemKind,
    SalesforceProblem,
    error_code_of,
    error_entries,
    explain,
)
from backstory_desktop.salesforce.http import RETRY_STATUSES
from backstory_desktop.salesforce.soap import (
    NAMESPACES,
    PARTNER_NS,
    SOAP_ENVELOPE_NS,
    element_text,
    parse_envelope,
)
from backstory_desktop.salesforce.tasks import in_queries

logger = logging.getLogger(__name__)

# sObject Collections and SOAP undelete() take at most 200 records a call.
BATCH_SIZE = 200
# Ids per queryAll IN list; in_queries also keeps the query within the URL length limit.
IDS_PER_QUERY = 200

# Fault codes of a temporary rejection. Any other fault is for the admin to fix.
_TEMPORARY_CODES = ("SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW")
# A Salesforce record Id: 15 or 18 letters and digits.
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
# A standard or custom field's API name, such as Subject or peopleai__Created_by_PeopleAI__c.
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")

WriteOutcomes = dict[str, str | None]


def checked_ids(ids: Iterable[str]) -> list[str]:
    """Return the Ids once each, in order; raise ValueError for a value that is not a record Id."""
    unique = list(dict.fromkeys(ids))
    for record_id in unique:
        if not _RECORD_ID.fullmatch(record_id):
            raise ValueError(f"{record_id!r} is not a Salesforce record Id")
    return unique


def checked_field(name: str) -> str:
    """Return a field's API name; raise ValueError for text that cannot be one, so it never reaches SOQL."""
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a field API name")
    return name


def _batches(values: Sequence[Any], size: int = BATCH_SIZE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- reading -----------------------------------------------------------------------


def read_tasks(conn: OrgConnection, ids: Iterable[str], fields: Sequence[str], *,
               cancel: threading.Event | None = None) -> dict[str, dict[str, object]]:
    """Read ``fields`` of the Tasks with ``ids`` through queryAll, by Id.

    Id, IsDeleted and IsArchived are always read. A Task the org no longer contains
    (purged from the recycle bin, or never there) is missing from the result.
    Raises Cancelled when ``cancel`` is set between queries.
    """
    requested = checked_ids(ids)
    names = ["Id", "IsDeleted", "IsArchived"]
    names += [checked_field(name) for name in fields if name not in names]
    names = list(dict.fromkeys(names))
    found: dict[str, dict[str, object]] = {}
    by_id15 = {record_id[:15]: record_id for record_id in requested}
    prefix = f"SELECT {', '.join(names)} FROM Task WHERE Id"
    for soql in in_queries(prefix, [[record_id] for record_id in requested], max_groups=IDS_PER_QUERY):
        check_cancel(cancel)
        for row in conn.query_all(soql, include_deleted=True):
            stored_id = str(row["Id"])
            # The caller's spelling of the Id (15 or 18 characters) is the key it looks up.
            found[by_id15.get(stored_id[:15], stored_id)] = dict(row)
    logger.info("Read %d of %d Tasks by Id", len(found), len(requested))
    return found


# -- updating and deleting -----------------------------------------------------------


def update_tasks(conn: OrgConnection, rows: Sequence[Mapping[str, object]]) -> WriteOutcomes:
    """Update Tasks through sObject Collections; each row names its Task by ``Id``.

    A value of None sets the field to null. Returns each Id's error, or None once updated.
    """
    outcomes: WriteOutcomes = {}
    prepared = [_update_row(row) for row in rows]
    for batch in _batches(prepared):
        body = {"allOrNone": False, "records": list(batch)}
        results = conn.request("PATCH", "composite/sobjects", json=body)
        ids = [str(row["Id"]) for row in batch]
        outcomes.update(_collection_outcomes(ids, results, "update"))
    _log_outcomes("Updated", outcomes)
    return outcomes


def _update_row(row: Mapping[str, object]) -> dict[str, object]:
    record_id = checked_ids([str(row.get("Id") or "")])[0]
    values = {checked_field(name): value
              for name, value in row.items() if name not in ("Id", "attributes")}
    return {"attributes": {"type": "Task"}, "Id": record_id, **values}


def delete_tasks(conn: OrgConnection, ids: Iterable[str]) -> WriteOutcomes:
    """Delete Tasks through sObject Collections; they go to the recycle bin (RECYCLE_BIN_DAYS).

    Returns each Id's error, or None once deleted.
    """
    outcomes: WriteOutcomes = {}
    for batch in _batches(checked_ids(ids)):
        # allOrNone is a URL parameter of the Collections DELETE, unlike the other Collections calls.
        params = {"ids": ",".join(batch), "allOrNone": "false"}
        results = conn.request("DELETE", "composite/sobjects", params=params)
        outcomes.update(_collection_outcomes(list(batch), results, "delete"))
    _log_outcomes("Deleted", outcomes)
    return outcomes


def _collection_outcomes(ids: Sequence[str], results: Any, verb: str) -> WriteOutcomes:
    """Read a Collections response, one result per Id in request order."""
    if not isinstance(results, list) or len(results) != len(ids):
        raise SalesforceProblem(
            ProblemKind.BUG,
            f"Salesforce returned a result list that does not match the {len(ids)} Tasks sent to {verb}; "
            "read the Tasks again before trying once more.",
            f"sent {len(ids)} Ids, received: {results!r}"[:4000],
        )
    outcomes: WriteOutcomes = {}
    for record_id, result in zip(ids, results, strict=True):
        if isinstance(result, dict) and result.get("success"):
            outcomes[record_id] = None
        else:
            outcomes[record_id] = _reason(error_entries(result.get("errors") if isinstance(result, dict)
                                                        else None))
    return outcomes


def _reason(errors: Sequence[Mapping[str, Any]]) -> str:
    if not errors:
        return "UNKNOWN_ERROR: Salesforce gave no reason"
    return "; ".join(f"{error_code_of(dict(error))}: {error.get('message', '')}" for error in errors)


def _log_outcomes(verb: str, outcomes: WriteOutcomes) -> None:
    failed = sum(1 for reason in outcomes.values() if reason is not None)
    logger.info("%s %d Tasks, %d failed", verb, len(outcomes) - failed, failed)


# -- restoring from the recycle bin -------------------------------------------------------


def undelete_envelope(session_id: str, ids: Sequence[str]) -> str:
    """Return the partner API ``undelete()`` request envelope for at most 200 Ids."""
    id_elements = "".join(f"<urn:ids>{escape(record_id)}</urn:ids>" for record_id in ids)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}" xmlns:urn="{PARTNER_NS}">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{escape(session_id)}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:undelete>{id_elements}</urn:undelete></soapenv:Body></soapenv:Envelope>"
    )


def undelete_tasks(conn: OrgConnection, ids: Iterable[str]) -> WriteOutcomes:
    """Restore Tasks from the recycle bin through SOAP ``undelete()``, 200 a call.

    Returns each Id's error, or None once restored. A Task purged from the recycle
    bin (after RECYCLE_BIN_DAYS, or emptied) cannot be restored and gets Salesforce's reason.
    An expired session is renewed once, as for the REST calls.
    """
    outcomes: WriteOutcomes = {}
    for batch in _batches(checked_ids(ids)):
        outcomes.update(_undelete_with_refresh(conn, batch))
    _log_outcomes("Restored", outcomes)
    return outcomes


def _undelete_with_refresh(conn: OrgConnection, ids: Sequence[str]) -> WriteOutcomes:
    return conn.call_with_refresh(lambda: _undelete_batch(conn, ids))


def _undelete_batch(conn: OrgConnection, ids: Sequence[str]) -> WriteOutcomes:
    """Send one undelete() call of at most 200 Ids and return each Id's error, or None once restored."""
    url = f"{conn.instance_url}/services/Soap/u/{conn.api_version}"
    body = undelete_envelope(conn.tokens.access_token, ids).encode("utf-8")
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "undelete"}
    try:
        response = conn.session.post(url, data=body, headers=headers, allow_redirects=False)
    except requests.RequestException as error:
        raise explain(error) from error

    if response.status_code in RETRY_STATUSES and not response.content.lstrip().startswith(b"<?xml"):
        # A load balancer's page, not Salesforce's response: a 504 may come after the restore was done.
        raise explain(SalesforceGeneralError(url, response.status_code, "undelete", response.content))

    text = response.content.decode(response.encoding or "utf-8", errors="replace")
    root = parse_envelope(text, response.status_code, _malformed)
    fault = root.find("soapenv:Body/soapenv:Fault", NAMESPACES)
    if fault is not None:
        raise _fault(fault, response, url)
    results = root.findall("soapenv:Body/sf:undeleteResponse/sf:result", NAMESPACES)
    if response.status_code != 200 or len(results) != len(ids):
        raise _malformed(f"HTTP {response.status_code} with {len(results)} results for {len(ids)} Ids")

    outcomes: WriteOutcomes = {}
    # Results come in request order; a failed one may carry no Id, so they are matched by position.
    for record_id, result in zip(ids, results, strict=True):
        if element_text(result, "sf:success") == "true":
            outcomes[record_id] = None
        else:
            errors = [
                {"statusCode": element_text(error, "sf:statusCode"),
                 "message": element_text(error, "sf:message")}
                for error in result.findall("sf:errors", NAMESPACES)
            ]
            outcomes[record_id] = _reason(errors)
    return outcomes


def _fault(fault: ElementTree.Element, response: requests.Response, url: str) -> Exception:
    code = (element_text(fault, "detail/*/fault:exceptionCode")
            or element_text(fault, "faultcode")).split(":", 1)[-1]
    message = element_text(fault, "faultstring")
    if code == "INVALID_SESSION_ID":
        # Raised as simple-salesforce does for REST, so that call_with_refresh renews the session once.
        return SalesforceExpiredSession(url, response.status_code, "undelete", message.encode("utf-8"))
    logger.warning("SOAP undelete() failed: %s", code)
    return SalesforceProblem(
        ProblemKind.REFUSED if code in _TEMPORARY_CODES else ProblemKind.FIXABLE,
        f"Salesforce rejected the restore from the recycle bin ({code or 'no fault code'}: {message}); "
        "check that the signed-in user may delete these Tasks, then try again.",
        f"HTTP {response.status_code}: {code}: {message}",
        error_code=code or None,
        status=response.status_code,
    )


def _malformed(what: str) -> SalesforceProblem:
    return SalesforceProblem(
        ProblemKind.BUG,
        f"The restore from the recycle bin got {what}, which is not a SOAP undelete() answer; "
        "check the org's address, then try again.",
        what,
        error_code="invalid_response",
    )
