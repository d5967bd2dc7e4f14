"""Username, password and security token sign-in through the SOAP API's ``login()`` call.

simple-salesforce sends this call only to ``https://{domain}.salesforce.com``,
so a practice org on 127.0.0.1 or a login host given as a URL cannot use it.
This module posts the partner API ``login()`` envelope itself to
``<login host>/services/Soap/u/<API version>`` and reads the LoginResult
(``sessionId``, ``serverUrl``, ``userId`` and ``userInfo``) or the SOAP fault.

Salesforce is retiring this call: it is unavailable from API version 65.0,
disabled by default in orgs created from Winter '26 and retired in Summer '27
(SOAP API Developer Guide, "login()",
https://developer.salesforce.com/docs/platform/api/guide/sforce-api-calls-login.html).
The session it returns cannot be renewed, because there is no refresh token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import requests

from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, explain
from backstory_desktop.salesforce.oauth import login_base_url, redirect_target
from backstory_desktop.salesforce.soap import (
    NAMESPACES,
    PARTNER_NS,
    SOAP_ENVELOPE_NS,
    element_text,
    parse_envelope,
)

logger = logging.getLogger(__name__)

# SOAP login() is not available from API version 65.0 (SOAP API Developer Guide, "login()").
FIRST_VERSION_WITHOUT_SOAP_LOGIN = (65, 0)

# A SOAP 1.1 response is far smaller than this; a larger body is not parsed.
MAX_RESPONSE_BYTES = 1_000_000


@dataclass(frozen=True)
class SoapLoginResult:
    """The parts of a LoginResult the app uses; ``repr`` hides the session id."""

    session_id: str = field(repr=False)
    server_url: str
    user_id: str
    organization_id: str
    username: str
    display_name: str

    @property
    def instance_url(self) -> str:
        """``https://host`` of ``serverUrl``, where the REST API of the session is served."""
        parts = urlsplit(self.server_url)
        return f"{parts.scheme}://{parts.netloc}"

    def identity(self) -> dict[str, str]:
        """Return the user and org as the identity URL names them."""
        return {
            "user_id": self.user_id,
            "organization_id": self.organization_id,
            "username": self.username,
            "display_name": self.display_name,
        }


def login_envelope(username: str, password_and_token: str) -> str:
    """Return the partner API ``login()`` request envelope, with both values XML-escaped."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}" xmlns:urn="{PARTNER_NS}">'
        "<soapenv:Body><urn:login>"
        f"<urn:username>{escape(username)}</urn:username>"
        f"<urn:password>{escape(password_and_token)}</urn:password>"
        "</urn:login></soapenv:Body></soapenv:Envelope>"
    )


def soap_login(
    session: requests.Session,
    login_host: str,
    username: str,
    password: str,
    security_token: str,
    *,
    api_version: str,
) -> SoapLoginResult:
    """Sign in with ``login()`` and return the session id, server URL, user and org.

    The security token is appended to the password, as the call expects; leave it
    empty when the org trusts this computer's IP address. Raises SalesforceProblem
    with Salesforce's fault code (INVALID_LOGIN, UNSUPPORTED_API_VERSION, ...) and
    message, or the explained network error.
    """
    url = f"{login_base_url(login_host)}/services/Soap/u/{api_version}"
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "login"}
    body = login_envelope(username, password + security_token).encode("utf-8")
    try:
        # A redirect is not followed, because requests would post the password
        # again to the new address. stream=True lets the size limit stop the download.
        response = session.post(url, data=body, headers=headers, allow_redirects=False, stream=True)
        with response:
            if response.is_redirect:
                raise _redirected(response)
            content = _read_limited(response)
    except requests.RequestException as exc:
        raise explain(exc) from exc

    text = content.decode(response.encoding or "utf-8", errors="replace")
    root = parse_envelope(text, response.status_code, _malformed)
    fault = root.find("soapenv:Body/soapenv:Fault", NAMESPACES)
    if fault is not None:
        raise _fault_problem(fault, response.status_code, api_version)
    result = root.find("soapenv:Body/sf:loginResponse/sf:result", NAMESPACES)
    if result is None or response.status_code != 200:
        raise _malformed(f"HTTP {response.status_code} without a loginResponse result")
    login_result = _login_result(result)
    logger.info("Signed in with SOAP login() as user %s of org %s",
                login_result.user_id, login_result.organization_id)
    return login_result


def _read_limited(response: requests.Response) -> bytes:
    """Read the body of a streamed response, stopping once it exceeds MAX_RESPONSE_BYTES."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _malformed(f"a response of {int(declared)} bytes, more than a login returns")
    content = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        content += chunk
        if len(content) > MAX_RESPONSE_BYTES:
            raise _malformed(f"a response of more than {MAX_RESPONSE_BYTES} bytes, more than a login returns")
    return bytes(content)


def _redirected(response: requests.Response) -> SalesforceProblem:
    target = redirect_target(response)
    logger.warning("SOAP login() failed: HTTP %s redirect to %s, not followed", response.status_code, target)
    return SalesforceProblem(
        ProblemKind.FIXABLE,
        f"The password sign-in got HTTP {response.status_code}, a redirect to {target}, which "
        "is not followed because it would send the password to another address; check the "
        "login host, or sign in with the browser.",
        f"HTTP {response.status_code} redirect to {target}",
        error_code="redirect",
        status=response.status_code,
    )


def _fault_problem(fault: ElementTree.Element, status: int, api_version: str) -> SalesforceProblem:
    """Explain a SOAP fault by its exception code, such as INVALID_LOGIN."""
    code = element_text(fault, "detail/*/fault:exceptionCode") or element_text(fault, "faultcode")
    code = code.split(":", 1)[-1]
    message = element_text(fault, "detail/*/fault:exceptionMessage") or element_text(fault, "faultstring")
    if message.startswith(f"{code}: "):
        message = message[len(code) + 2:]
    logger.warning("SOAP login() failed: %s", code)
    return SalesforceProblem(
        _fault_kind(code),
        _fault_sentence(code, message, api_version),
        f"HTTP {status}: {code}: {message}",
        error_code=code or None,
        status=status,
    )


def _fault_kind(code: str) -> ProblemKind:
    if code in {"SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "LOGIN_DURING_RESTRICTED_DOMAIN"}:
        return ProblemKind.REFUSED
    return ProblemKind.FIXABLE


def _fault_sentence(code: str, message: str, api_version: str) -> str:
    quoted = f" Salesforce's message: {message}" if message else ""
    if code == "INVALID_LOGIN":
        return (
            "Salesforce rejected the username, password or security token (INVALID_LOGIN); "
            "check them and the security token field (the current token is in the reset email "
            f"from Salesforce), or sign in with the browser.{quoted}"
        )
    if _version_key(api_version) >= FIRST_VERSION_WITHOUT_SOAP_LOGIN:
        return (
            f"Salesforce rejected the password sign-in at API version {api_version} "
            f"({code or 'no fault code'}), and SOAP login() is not available from API "
            f"version 65.0; sign in with the browser.{quoted}"
        )
    return (
        f"Salesforce rejected the password sign-in ({code or 'no fault code'}); sign in "
        f"with the browser instead, or ask an admin to allow SOAP API login.{quoted}"
    )


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def _login_result(result: ElementTree.Element) -> SoapLoginResult:
    session_id = element_text(result, "sf:sessionId")
    server_url = element_text(result, "sf:serverUrl")
    if not session_id or not server_url:
        raise _malformed("a loginResponse without sessionId or serverUrl")
    if urlsplit(server_url).scheme != "https" or not urlsplit(server_url).netloc:
        raise _malformed(f"a serverUrl that is not an https URL ({server_url})")
    return SoapLoginResult(
        session_id=session_id,
        server_url=server_url,
        user_id=element_text(result, "sf:userId"),
        organization_id=element_text(result, "sf:userInfo/sf:organizationId"),
        username=element_text(result, "sf:userInfo/sf:userName"),
        display_name=element_text(result, "sf:userInfo/sf:userFullName"),
    )


def _malformed(what: str) -> SalesforceProblem:
    return SalesforceProblem(
        ProblemKind.BUG,
        f"The password sign-in got {what}, which is not a SOAP login() answer; "
        "check the login host, or sign in with the browser.",
        what,
        error_code="invalid_response",
    )
