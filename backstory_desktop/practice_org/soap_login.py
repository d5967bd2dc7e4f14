"""SOAP API ``login()`` on the partner endpoint, ``POST /services/Soap/u/<version>``.

The same endpoint serves ``undelete()`` (see ``soap_undelete``). The application
reads the envelope with ``read_operation`` and dispatches on the operation element.

Every seeded user's password is ``PRACTICE_PASSWORD``. As in an org that does
not trust the caller's IP address, login() takes the password followed by the
user's security token. ``security_token`` derives the token from a key kept in
the database, so a token stays the same for the life of the file.

NOTE: the order of the checks (API version, org setting, then credentials), the
fault type of API_CURRENTLY_DISABLED and the texts of the ``soapenv:Client``
faults are guesses. Salesforce documents none of them.

The session id in a successful ``loginResponse`` is an access token of the
practice org: it works as a Bearer token on every REST route, and
``PracticeOrg.expire_sessions()`` or ``/services/oauth2/revoke`` ends it.

Faults are SOAP 1.1 faults with HTTP status 500, in the shape Salesforce sends
them: ``faultcode`` ``sf:<CODE>``, ``faultstring`` ``<CODE>: <message>`` and a
``detail`` element carrying ``exceptionCode`` and ``exceptionMessage``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org import oauth_tokens
from backstory_desktop.practice_org.data_routes import served_versions
from backstory_desktop.practice_org.permissions import access_for_user
from backstory_desktop.practice_org.session import OrgState
from backstory_desktop.practice_org.store import Record, Store, TokenGrant

logger = logging.getLogger(__name__)

PRACTICE_PASSWORD = "Practice-Password-1"
"""The password of every practice org user. SOAP login() takes it followed by the security token."""

ORGANIZATION_NAME = "Backstory Practice Org"

# login() is not available in API version 65.0 and later ("Platform SOAP API login()
# Retirement", Salesforce Help article 005132110).
FIRST_VERSION_WITHOUT_LOGIN = 65

# The client id recorded for sessions that SOAP login() starts, which no OAuth client uses.
SOAP_LOGIN_CLIENT = "soap-login"

SESSION_SECONDS_VALID = int(oauth_tokens.ACCESS_TOKEN_LIFETIME.total_seconds())

SOAP_ENVELOPE_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NAMESPACE = "urn:partner.soap.sforce.com"
FAULT_NAMESPACE = "urn:fault.partner.soap.sforce.com"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
LOGIN_OPERATION = f"{{{PARTNER_NAMESPACE}}}login"

# A login() envelope is well under a kilobyte and an undelete() of 200 ids about 10 KB,
# so a larger body is not read.
MAX_REQUEST_BYTES = 64 * 1024

SECURITY_TOKEN_LENGTH = 24
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_TOKEN_KEY_META = "security_token_key"

_VERSION = re.compile(r"^\d+\.\d$")

INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."
# NOTE: the two INVALID_OPERATION messages below are unconfirmed, because Salesforce's
# documentation quotes neither. They are the texts that users of client libraries report
# in public bug reports (forcedotcom/wsc for API 65.0, OpenFn/adaptors for a disabled login()).
LOGIN_DISABLED_MESSAGE = ("SOAP API login() is disabled by default in this org. Contact the org "
                          "administrator to enable SOAP API login().")


def login_not_available_message(version: str) -> str:
    return (f"The SOAP Login operation is not available in the API version specified ({version}). "
            "Refer to the documentation for supported versions.")


@dataclass
class SoapFault(Exception):
    """A SOAP fault: Salesforce's exception code and message, and the fault type in ``detail``.

    A ``client`` fault is one the SOAP layer raises before any Salesforce operation
    runs. It has the standard ``soapenv:Client`` code and no ``detail`` element.
    """

    code: str
    message: str
    fault_type: str = "UnexpectedErrorFault"
    client: bool = False

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")


@dataclass(frozen=True)
class LoginRequest:
    """The credentials of a ``login()`` call."""

    username: str
    password: str


def security_token(store: Store, username: str) -> str:
    """Return the user's security token: 24 letters and digits derived from the database's key.

    Runs inside a store transaction, because the key is created on first use.
    """
    key = store.get_meta(_TOKEN_KEY_META)
    if key is None:
        key = secrets.token_hex(32)
        store.set_meta(_TOKEN_KEY_META, key)
    digest = hmac.new(key.encode(), username.lower().encode("utf-8"), hashlib.sha256).digest()
    return "".join(_TOKEN_ALPHABET[byte % len(_TOKEN_ALPHABET)]
                   for byte in digest[:SECURITY_TOKEN_LENGTH])


def login(org: OrgState, request: Request, version: str) -> Response:
    """``POST /services/Soap/u/<version>``: check the credentials and start a session."""
    try:
        check_version(version)
        return login_operation(org, read_operation(request), version)
    except SoapFault as fault:
        logger.info("SOAP login rejected: %s", fault.code)
        return fault_response(fault)


def login_operation(org: OrgState, operation: ElementTree.Element, version: str) -> Response:
    """Run a parsed ``login()`` operation whose API version has been checked."""
    try:
        user = _logged_in_user(org, login_request_from(operation), version)
    except SoapFault as fault:
        logger.info("SOAP login rejected: %s", fault.code)
        return fault_response(fault)

    session_id = oauth_tokens.issue_access_token(org.store, TokenGrant(user.id, SOAP_LOGIN_CLIENT))
    logger.info("SOAP login: session started for user %s", user.id)
    return xml_response(_login_response(org, version, user, session_id), 200)


def check_version(version: str) -> None:
    """Raise UNSUPPORTED_API_VERSION for a version in the URL that the org does not serve."""
    if not _VERSION.match(version) or version not in served_versions():
        raise SoapFault("UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL")


def _logged_in_user(org: OrgState, credentials: LoginRequest, version: str) -> Record:
    """Return the user whose credentials the request carries, or raise the fault Salesforce sends."""
    # The version and the org setting are checked before the credentials, so these
    # faults reveal nothing about the user.
    if int(version.split(".")[0]) >= FIRST_VERSION_WITHOUT_LOGIN:
        raise SoapFault("INVALID_OPERATION", login_not_available_message(version))
    if not org.soap_login_enabled:
        raise SoapFault("INVALID_OPERATION", LOGIN_DISABLED_MESSAGE)

    user = _user_with_password(org, credentials)
    access = access_for_user(org.store, user.id)
    # API access needs API Enabled (SOAP API Developer Guide, "Implementation Considerations").
    if access is None or not access.has("PermissionsApiEnabled"):
        raise SoapFault("API_CURRENTLY_DISABLED", "API is disabled for this User", "LoginFault")
    return user


def _user_with_password(org: OrgState, credentials: LoginRequest) -> Record:
    """Return the active user the username names if the password matches, else raise INVALID_LOGIN.

    Salesforce sends the same fault for an unknown user, a wrong password or token and
    an inactive user, so the fault does not reveal which check failed.
    """
    matches = org.store.find_by_field("User", "Username", credentials.username,
                                      case_sensitive=False)
    user = matches[0] if credentials.username and matches else None
    username = str(user.fields.get("Username", "")) if user is not None else credentials.username
    expected = PRACTICE_PASSWORD + security_token(org.store, username)
    password_matches = hmac.compare_digest(credentials.password.encode("utf-8"),
                                           expected.encode("utf-8"))
    if user is None or not password_matches or user.fields.get("IsActive") is False:
        raise SoapFault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE, "LoginFault")
    return user


def parse_login_request(request: Request) -> LoginRequest:
    """Read the username and password of a partner WSDL ``login()`` envelope.

    Raises a client fault for a body that is not such an envelope. A missing
    username or password element counts as empty, so it fails as INVALID_LOGIN.
    """
    return login_request_from(read_operation(request))


def read_operation(request: Request) -> ElementTree.Element:
    """Parse a SOAP 1.1 envelope and return the operation element in its Body.

    Raises a client fault for a body that is too large, not well-formed or not an envelope.
    """
    return operation_element(read_envelope(request))


def read_envelope(request: Request) -> ElementTree.Element:
    """Parse the request body as XML, or raise a client fault."""
    body = request.stream.read(MAX_REQUEST_BYTES + 1)
    if len(body) > MAX_REQUEST_BYTES:
        raise SoapFault("Client", "The request body is too large for a SOAP call.", client=True)
    # A document type declaration could define entities, and no SOAP message needs one.
    if b"<!DOCTYPE" in body.upper():
        raise SoapFault("Client", "A SOAP message must not contain a document type declaration.",
                        client=True)
    try:
        envelope = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise SoapFault("Client", f"The request is not well-formed XML: {error}.",
                        client=True) from None
    return envelope


def login_request_from(operation: ElementTree.Element) -> LoginRequest:
    """Return the credentials of a ``login`` operation element, or raise a client fault for another."""
    if operation.tag != LOGIN_OPERATION:
        raise unknown_operation(operation)
    return LoginRequest(
        username=(operation.findtext(f"{{{PARTNER_NAMESPACE}}}username") or "").strip(),
        password=operation.findtext(f"{{{PARTNER_NAMESPACE}}}password") or "",
    )


def unknown_operation(operation: ElementTree.Element) -> SoapFault:
    """Return the client fault for an operation the practice org does not serve."""
    return SoapFault("Client", f"No operation available for request {operation.tag}, please "
                     "check the WSDL for the service.", client=True)


def operation_element(envelope: ElementTree.Element) -> ElementTree.Element:
    """Return the first element in the envelope's Body, or raise a client fault."""
    if envelope.tag != f"{{{SOAP_ENVELOPE_NAMESPACE}}}Envelope":
        raise SoapFault("Client", "The request is not a SOAP 1.1 envelope.", client=True)
    body = envelope.find(f"{{{SOAP_ENVELOPE_NAMESPACE}}}Body")
    if body is None or len(body) == 0:
        raise SoapFault("Client", "The SOAP envelope has no operation in its Body.", client=True)
    return body[0]


def _login_response(org: OrgState, version: str, user: Record, session_id: str) -> str:
    """Return the ``loginResponse`` envelope, with its elements in the order Salesforce sends them."""
    fields = user.fields
    org_id = org.store.org_id
    org_id_15 = org_id[:15]
    user_info = "".join([
        element("accessibilityMode", "false"),
        element("currencySymbol", "$"),
        element("orgAttachmentFileSizeLimit", "5242880"),
        element("orgDefaultCurrencyIsoCode", "USD"),
        element("orgDisallowHtmlAttachments", "false"),
        element("orgHasPersonAccounts", "false"),
        element("organizationId", org_id),
        element("organizationMultiCurrency", "false"),
        element("organizationName", ORGANIZATION_NAME),
        element("profileId", fields.get("ProfileId")),
        element("roleId", None),
        element("sessionSecondsValid", str(SESSION_SECONDS_VALID)),
        element("userDefaultCurrencyIsoCode", None),
        element("userEmail", fields.get("Email")),
        element("userFullName", fields.get("Name")),
        element("userId", user.id),
        element("userLanguage", "en_US"),
        element("userLocale", "en_US"),
        element("userName", fields.get("Username")),
        element("userTimeZone", fields.get("TimeZoneSidKey") or "GMT"),
        element("userType", fields.get("UserType") or "Standard"),
        element("userUiSkin", "Theme3"),
    ])
    result = "".join([
        element("metadataServerUrl", f"{org.base_url}/services/Soap/m/{version}/{org_id_15}"),
        element("passwordExpired", "false"),
        element("sandbox", "false"),
        element("serverUrl", f"{org.base_url}/services/Soap/u/{version}/{org_id_15}"),
        element("sessionId", session_id),
        element("userId", user.id),
        f"<userInfo>{user_info}</userInfo>",
    ])
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NAMESPACE}" '
        f'xmlns="{PARTNER_NAMESPACE}" xmlns:xsi="{XSI_NAMESPACE}">'
        f"<soapenv:Body><loginResponse><result>{result}</result></loginResponse></soapenv:Body>"
        "</soapenv:Envelope>"
    )


def element(name: str, value: object) -> str:
    if value is None:
        return f'<{name} xsi:nil="true"/>'
    return f"<{name}>{escape(str(value))}</{name}>"


def fault_response(fault: SoapFault) -> Response:
    """Return a fault envelope with HTTP status 500, as SOAP 1.1 prescribes for faults."""
    if fault.client:
        code = "soapenv:Client"
        detail = ""
        fault_string = escape(fault.message)
    else:
        code = f"sf:{fault.code}"
        fault_string = escape(f"{fault.code}: {fault.message}")
        detail = (
            f'<detail><sf:{fault.fault_type} xsi:type="sf:{fault.fault_type}">'
            f"<sf:exceptionCode>{escape(fault.code)}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{escape(fault.message)}</sf:exceptionMessage>"
            f"</sf:{fault.fault_type}></detail>"
        )
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NAMESPACE}" '
        f'xmlns:sf="{FAULT_NAMESPACE}" xmlns:xsi="{XSI_NAMESPACE}">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>"
        f"<faultstring>{fault_string}</faultstring>{detail}</soapenv:Fault></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    return xml_response(envelope, 500)


def xml_response(envelope: str, status: int) -> Response:
    return Response(envelope, status=status, content_type="text/xml;charset=UTF-8")
