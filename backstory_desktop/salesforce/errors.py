"""Turn Salesforce and network failures into one sentence an admin can act on.

Every failure falls in one of three kinds: the admin can fix it (a permission,
a field, a setting), Salesforce refused or could not serve the request (limits,
locks, outages), or the app has a bug. The sentence states what failed and what
to do next, and ``details`` keeps the HTTP status and body, with tokens removed.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.exceptions import SalesforceError, SalesforceMoreThanOneRecord

from backstory_desktop.core.fields import InvalidFieldName
from backstory_desktop.salesforce.oauth import CallbackPortBusy, OAuthError


class ProblemKind(StrEnum):
    FIXABLE = "fixable"
    REFUSED = "refused"
    BUG = "bug"


class SalesforceProblem(Exception):
    """A failure explained: its kind, one actionable sentence, and scrubbed details."""

    def __init__(
        self,
        kind: ProblemKind,
        sentence: str,
        details: str = "",
        *,
        error_code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(sentence)
        self.kind = kind
        self.sentence = sentence
        self.details = scrub(details)
        self.error_code = error_code
        self.status = status


class SignInRequired(SalesforceProblem):
    """The sign-in ended and only a new sign-in helps: no retry will succeed.

    Raised when the refresh token is rejected (invalid_grant), when a session
    expires and there is no refresh token, and by every later call of a
    connection whose refresh already failed.
    """

    ERROR_CODE = "SIGN_IN_AGAIN"

    def __init__(
        self, where: str, reason: str, details: str = "", *, status: int | None = None
    ) -> None:
        self.where = where
        self.reason = reason
        super().__init__(
            ProblemKind.FIXABLE,
            f"The sign-in to {where} has ended ({reason}); sign in again.",
            details or reason,
            error_code=self.ERROR_CODE,
            status=status,
        )


_SECRET_PATTERNS = (
    # Salesforce access tokens and session ids: the org id, "!", then the secret.
    re.compile(r"\b00D[0-9A-Za-z]{12,15}![0-9A-Za-z._\-]+"),
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
    re.compile(
        r"(?i)(\b(?:access_token|refresh_token|code_verifier|code|sid|client_secret)"
        r"\\?[\"']?\s*[=:]\s*\\?[\"']?)[^\s\"'&,}\\]+"
    ),
)


def scrub(text: str) -> str:
    """Remove access tokens, refresh tokens, codes and session ids from ``text``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda match: match.group(1) + "[removed]", text)
        else:
            text = pattern.sub("[removed]", text)
    return text


def error_entries(content: Any) -> list[dict[str, Any]]:
    """Return the error objects of a Salesforce error body (single calls or collections)."""
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return []
    return [entry for entry in content if isinstance(entry, dict)]


def error_code_of(entry: dict[str, Any]) -> str:
    """Return an error object's code: ``errorCode`` on single calls, ``statusCode`` in collections."""
    return str(entry.get("errorCode") or entry.get("statusCode") or "")


def is_daily_limit(problem: SalesforceProblem) -> bool:
    """Tell whether Salesforce refused a call because the org's daily API requests are spent.

    No retry within minutes gets past that limit, unlike the other limits that
    REQUEST_LIMIT_EXCEEDED reports, such as concurrent long requests.
    """
    return _names_daily_limit(problem.error_code or "", problem.details)


def _names_daily_limit(code: str, message: str) -> bool:
    # Salesforce names the spent limit in the message: "TotalRequests Limit exceeded." is the
    # daily allocation, "ConcurrentPerOrgLongTxn Limit exceeded." the concurrent long requests.
    return code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in message


def matched_record_ids(content: Any) -> list[str]:
    """Return the record ids from a 300 Multiple Choices body (record URLs or objects)."""
    ids: list[str] = []
    if not isinstance(content, list):
        return ids
    for item in content:
        url = item if isinstance(item, str) else None
        if isinstance(item, dict):
            url = item.get("url") or item.get("id")
        if url:
            ids.append(str(url).rstrip("/").rsplit("/", 1)[-1])
    return ids


def explain(exc: BaseException) -> SalesforceProblem:
    """Explain ``exc`` as a SalesforceProblem; an already explained problem is returned as is."""
    if isinstance(exc, SalesforceProblem):
        return exc
    if isinstance(exc, OAuthError):
        return _explain_oauth(exc)
    if isinstance(exc, SalesforceError):
        return _explain_salesforce_error(exc)
    if isinstance(exc, requests.exceptions.RequestException):
        return _explain_network_error(exc)
    if isinstance(exc, InvalidFieldName):
        # The message names the value and the rule it breaks: the admin corrects the name.
        return SalesforceProblem(ProblemKind.FIXABLE, str(exc), f"{type(exc).__name__}: {exc}",
                                 error_code="INVALID_FIELD_NAME")
    return SalesforceProblem(
        ProblemKind.BUG,
        f"Unexpected error ({type(exc).__name__}: {exc}); the log has the details.",
        f"{type(exc).__name__}: {exc}",
    )


def _explain_oauth(exc: OAuthError) -> SalesforceProblem:
    status = f"HTTP {exc.status}: " if exc.status else ""
    details = f"{status}{exc.error}: {exc.description}"
    if exc.error == "invalid_grant":
        # The refresh token or authorization code is no longer valid at the org.
        return SignInRequired(
            "the org", f"invalid_grant: {exc.description}", details, status=exc.status
        )
    if isinstance(exc, CallbackPortBusy):
        return SalesforceProblem(
            ProblemKind.FIXABLE, exc.sentence(), details, error_code=exc.error
        )
    kind = ProblemKind.BUG if exc.error == "invalid_response" else ProblemKind.FIXABLE
    return SalesforceProblem(kind, exc.sentence(), details, error_code=exc.error, status=exc.status)


def _explain_salesforce_error(exc: SalesforceError) -> SalesforceProblem:
    details = f"HTTP {exc.status} from {_path_of(exc.url)}\n{_body_text(exc.content)}"
    if isinstance(exc, SalesforceMoreThanOneRecord) or exc.status == 300:
        ids = matched_record_ids(exc.content)
        return SalesforceProblem(
            ProblemKind.FIXABLE,
            f"The external ID matches {len(ids) or 'several'} records "
            f"({', '.join(ids) or 'ids not given'}), so nothing was written; "
            "merge or clear the duplicate keys and make the field Unique.",
            details,
            error_code="MULTIPLE_CHOICES",
            status=300,
        )
    entries = error_entries(exc.content)
    if exc.status == 401:
        # An expired or revoked session reaches here only when it was not renewed.
        return SignInRequired(
            _host_of_url(exc.url), "the session expired or was revoked", details, status=401
        )
    if entries:
        code = error_code_of(entries[0])
        message = str(entries[0].get("message", ""))
        fields = [str(name) for name in entries[0].get("fields") or []]
    else:
        code, message, fields = "", "", []
    kind, sentence = explain_error_code(code, message, fields, status=exc.status)
    return SalesforceProblem(kind, sentence, details, error_code=code or None, status=exc.status)


def explain_error_code(
    code: str, message: str, fields: list[str] | None = None, *, status: int | None = None
) -> tuple[ProblemKind, str]:
    """Explain one Salesforce error code and message, as found in a body or a collection result."""
    fields = fields or []
    quoted_message = f" Salesforce's message: {message}" if message else ""

    if _names_daily_limit(code, message):
        return ProblemKind.REFUSED, (
            "The org's daily API request limit is used up (REQUEST_LIMIT_EXCEEDED); "
            "try again after the rolling 24-hour window frees requests, "
            "or ask Salesforce for a higher limit."
        )
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "ConcurrentPerOrgLongTxn" in message or "concurrent" in message.lower():
            return ProblemKind.REFUSED, (
                "The org is running too many long requests at once (REQUEST_LIMIT_EXCEEDED); "
                "wait a few minutes and try again."
            )
        return ProblemKind.REFUSED, (
            "The org refused the request because one of its API limits is reached "
            f"(REQUEST_LIMIT_EXCEEDED); wait a few minutes and try again.{quoted_message}"
        )
    if code == "INVALID_SESSION_ID" or status == 401:
        return ProblemKind.FIXABLE, (
            "The Salesforce session expired or was revoked and could not be renewed; "
            "sign in to the org again."
        )
    if code == "INVALID_FIELD_FOR_INSERT_UPDATE":
        names = fields or _fields_in_message(message)
        if names == ["TaskSubtype"]:
            return ProblemKind.BUG, (
                "TaskSubtype was sent for a Task that already exists, but Salesforce lets it be "
                f"set only when a Task is created.{quoted_message}"
            )
        field_list = ", ".join(names) or "a field"
        return ProblemKind.FIXABLE, (
            f"The user may not write {field_list} (INVALID_FIELD_FOR_INSERT_UPDATE); an admin can "
            "grant Edit on the field through field-level security in a permission set."
        )
    if code == "INVALID_FIELD":
        column = re.search(r"No such column '([^']+)'", message)
        if column:
            return ProblemKind.FIXABLE, (
                f"The field {column.group(1)} does not exist or is hidden from this user by "
                "field-level security; create it or grant Read on it in a permission set."
            )
        return ProblemKind.FIXABLE, f"Salesforce rejected a field name (INVALID_FIELD).{quoted_message}"
    if code == "NOT_FOUND" and "external ID field" in message:
        return ProblemKind.FIXABLE, (
            "The upsert key field does not exist, is not marked External ID, or is hidden "
            f"from this user; check the field and its field-level security.{quoted_message}"
        )
    if code == "DUPLICATE_VALUE":
        return ProblemKind.REFUSED, (
            f"Another record already holds this unique value (DUPLICATE_VALUE).{quoted_message}"
        )
    if code == "DUPLICATE_EXTERNAL_ID":
        return ProblemKind.FIXABLE, (
            "The key matches more than one record (DUPLICATE_EXTERNAL_ID), so nothing was "
            f"written; merge the duplicates and make the field Unique.{quoted_message}"
        )
    if code in {"INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS"}:
        return ProblemKind.FIXABLE, (
            "The user lacks access to the record or operation (for upserts on a field that is "
            "not Unique, View All Data); grant it in a permission set or run as another user."
            f"{quoted_message}"
        )
    if code == "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY":
        return ProblemKind.FIXABLE, (
            "The user cannot see a record this one points to (owner, contact, lead or related "
            f"record); grant access to it or leave the reference out.{quoted_message}"
        )
    if code == "INACTIVE_OWNER_OR_USER":
        return ProblemKind.FIXABLE, (
            "The owner of the record is an inactive user; pick an active owner or reactivate "
            f"the user.{quoted_message}"
        )
    if code in {"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"}:
        return ProblemKind.FIXABLE, (
            "API access is switched off for this user or org; grant the API Enabled permission "
            f"(the org's edition must include API access).{quoted_message}"
        )
    if code == "STRING_TOO_LONG":
        return ProblemKind.REFUSED, f"A value is longer than its field allows.{quoted_message}"
    if code == "UNABLE_TO_LOCK_ROW":
        return ProblemKind.REFUSED, (
            "Salesforce could not lock a record because another process was writing it; "
            "try again in a minute."
        )
    if code in {"MALFORMED_QUERY", "INVALID_TYPE", "JSON_PARSER_ERROR", "INVALID_QUERY_LOCATOR"}:
        return ProblemKind.BUG, f"The app sent a request Salesforce could not read ({code}).{quoted_message}"
    if status == 410:
        return ProblemKind.FIXABLE, (
            "Salesforce no longer serves this API version; update the app or the org profile's "
            "API version."
        )
    if status is not None and status >= 500:
        return ProblemKind.REFUSED, (
            f"Salesforce failed to answer (HTTP {status}); try again later, and check "
            f"status.salesforce.com if it persists.{quoted_message}"
        )
    code_or_status = code or f"HTTP {status}"
    return ProblemKind.REFUSED, f"Salesforce refused the request ({code_or_status}).{quoted_message}"


# Network failures by requests exception, most specific first (ProxyError and
# ConnectTimeout are kinds of ConnectionError): kind, sentence, error code.
_NETWORK_PROBLEMS: tuple[tuple[type[Exception], ProblemKind, str, str], ...] = (
    (requests.exceptions.ProxyError, ProblemKind.FIXABLE,
     "The proxy refused or failed the connection to {host}; check the HTTPS_PROXY "
     "and NO_PROXY settings.", "PROXY_ERROR"),
    (requests.exceptions.ConnectTimeout, ProblemKind.REFUSED,
     "Connecting to {host} timed out; check the network connection and try again.",
     "CONNECT_TIMEOUT"),
    (requests.exceptions.ReadTimeout, ProblemKind.REFUSED,
     "{host} accepted the request but did not answer in time, so it is unknown whether "
     "a write was applied; look the records up before sending them again.", "READ_TIMEOUT"),
    (requests.exceptions.ConnectionError, ProblemKind.REFUSED,
     "The connection to {host} failed; check the network connection and the org's "
     "address, then try again.", "CONNECTION_ERROR"),
)


def _explain_network_error(exc: requests.exceptions.RequestException) -> SalesforceProblem:
    host = _host_of(exc)
    details = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, requests.exceptions.SSLError):
        bundle = getattr(exc, "ca_bundle", None) or "the default CA bundle"
        return SalesforceProblem(
            ProblemKind.FIXABLE,
            f"The certificate of {host} could not be verified with the CA bundle {bundle}; "
            "name the CA that signed it (for example your proxy's) in the org profile.",
            details,
            error_code="CERTIFICATE_VERIFY_FAILED",
        )
    if isinstance(exc, requests.exceptions.ReadTimeout) and not _may_have_written(exc):
        return SalesforceProblem(
            ProblemKind.REFUSED,
            f"{host} accepted the request but did not answer in time; try again later.",
            details,
            error_code="READ_TIMEOUT",
        )
    for kind_of_error, kind, sentence, error_code in _NETWORK_PROBLEMS:
        if isinstance(exc, kind_of_error):
            return SalesforceProblem(kind, sentence.format(host=host), details, error_code=error_code)
    return SalesforceProblem(
        ProblemKind.BUG,
        f"The request to {host} failed ({type(exc).__name__}); the log has the details.",
        details,
    )


# Endpoints whose POST signs in or out but writes no record.
_SIGN_IN_PATHS = ("/services/oauth2/token", "/services/oauth2/revoke", "/services/Soap/u/")


def _may_have_written(exc: requests.exceptions.RequestException) -> bool:
    """Tell whether the timed-out request could have changed records in the org."""
    request = exc.request
    if request is None or request.method is None:
        return True
    if request.method.upper() in ("GET", "HEAD"):
        return False
    path = urlsplit(request.url or "").path
    return not any(marker in path for marker in _SIGN_IN_PATHS)


def _fields_in_message(message: str) -> list[str]:
    match = re.search(r"Unable to create/update fields:\s*([^.]+)", message)
    if not match:
        return []
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


def _host_of(exc: requests.exceptions.RequestException) -> str:
    request = exc.request
    url = getattr(request, "url", None) if request is not None else None
    if url:
        return urlsplit(str(url)).netloc or "the server"
    return "the server"


def _host_of_url(url: str) -> str:
    return urlsplit(url).netloc or "the org"


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}" if parts.netloc else url


def _body_text(content: Any) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")[:4000]
    if isinstance(content, str):
        return content[:4000]
    return json.dumps(content, ensure_ascii=False)[:4000]
