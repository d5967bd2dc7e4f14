"""Password sign-in (SOAP login) and pasted access tokens against the practice org, and SOAP parsing."""

from __future__ import annotations

import pytest
import requests

from backstory_desktop.practice_org import PRACTICE_PASSWORD
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import (
    connect_practice_org,
    connect_with_access_token,
    connect_with_password,
)
from backstory_desktop.salesforce.errors import ProblemKind, SalesforceProblem, SignInRequired
from backstory_desktop.salesforce.soap_login import login_envelope, soap_login


def sign_in_with_password(org: PracticeOrg, **options: str) -> object:
    password = options.pop("password", PRACTICE_PASSWORD)
    token = options.pop("security_token", org.security_token(org.admin_username))
    return connect_with_password(
        org.base_url, org.admin_username, password, token, ca_bundle=org.ca_bundle, **options
    )


def test_password__signs_in_with_identity(default_org: PracticeOrg) -> None:
    connection = connect_with_password(
        default_org.base_url,
        default_org.admin_username,
        PRACTICE_PASSWORD,
        default_org.security_token(default_org.admin_username),
        ca_bundle=default_org.ca_bundle,
    )

    assert connection.username == default_org.admin_username
    assert connection.user_id.startswith("005")
    assert connection.org_id.startswith("00D")
    assert connection.display_name
    assert connection.instance_url == default_org.base_url
    assert connection.tokens.refresh_token is None
    assert next(connection.query_all("SELECT Id FROM User LIMIT 1"))["Id"].startswith("005")


def test_password__wrong_password_is_invalid_login(default_org: PracticeOrg) -> None:
    with pytest.raises(SalesforceProblem) as raised:
        sign_in_with_password(default_org, password="not-the-password")

    assert raised.value.error_code == "INVALID_LOGIN"
    assert raised.value.kind is ProblemKind.FIXABLE
    assert "Invalid username, password, security token" in raised.value.sentence
    assert "not-the-password" not in raised.value.details


def test_password__missing_security_token_is_invalid_login(default_org: PracticeOrg) -> None:
    with pytest.raises(SalesforceProblem) as raised:
        sign_in_with_password(default_org, security_token="")
    assert raised.value.error_code == "INVALID_LOGIN"


def test_password__api_65_says_use_the_browser(default_org: PracticeOrg) -> None:
    with pytest.raises(SalesforceProblem) as raised:
        sign_in_with_password(default_org, api_version="65.0")

    assert raised.value.kind is ProblemKind.FIXABLE
    assert "not available from API version 65.0" in raised.value.sentence
    assert "sign in with the browser" in raised.value.sentence


def test_password__disabled_soap_login_keeps_salesforce_fault(default_org: PracticeOrg) -> None:
    default_org.soap_login_enabled = False
    try:
        with pytest.raises(SalesforceProblem) as raised:
            sign_in_with_password(default_org)
    finally:
        default_org.soap_login_enabled = True

    assert raised.value.error_code
    assert "Salesforce's message:" in raised.value.sentence
    assert "sign in with the browser" in raised.value.sentence


def test_password__expired_session_needs_sign_in(default_org: PracticeOrg) -> None:
    connection = connect_with_password(
        default_org.base_url,
        default_org.admin_username,
        PRACTICE_PASSWORD,
        default_org.security_token(default_org.admin_username),
        ca_bundle=default_org.ca_bundle,
    )
    default_org.expire_sessions()

    with pytest.raises(SignInRequired) as raised:
        connection.request("GET", "limits/")

    assert "password sign-in" in raised.value.sentence
    assert raised.value.error_code == "SIGN_IN_AGAIN"


def test_access_token__identity_from_userinfo(default_org: PracticeOrg) -> None:
    signed_in = connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.integration_username, default_org.client_id
    )

    connection = connect_with_access_token(
        default_org.base_url + "/", f" {signed_in.tokens.access_token} ", ca_bundle=default_org.ca_bundle
    )

    assert connection.username == default_org.integration_username
    assert connection.user_id == signed_in.user_id
    assert connection.org_id == signed_in.org_id
    assert connection.display_name
    assert connection.tokens.refresh_token is None
    assert next(connection.query_all("SELECT Id FROM User LIMIT 1"))["Id"].startswith("005")


def test_access_token__invalid_token_needs_sign_in(default_org: PracticeOrg) -> None:
    with pytest.raises(SignInRequired) as raised:
        connect_with_access_token(
            default_org.base_url, "00D000000000001!not-a-token", ca_bundle=default_org.ca_bundle
        )
    assert "access token is invalid" in raised.value.sentence
    assert "not-a-token" not in raised.value.sentence


def test_access_token__plain_http_instance_rejected() -> None:
    with pytest.raises(ValueError, match="must use https"):
        connect_with_access_token("http://127.0.0.1:1", "00Dx!token")


def test_access_token__revoke_ends_token(default_org: PracticeOrg) -> None:
    signed_in = connect_practice_org(
        default_org.base_url, default_org.ca_bundle, default_org.admin_username, default_org.client_id
    )
    connection = connect_with_access_token(
        default_org.base_url, signed_in.tokens.access_token, ca_bundle=default_org.ca_bundle
    )

    connection.revoke()

    with pytest.raises(SignInRequired):
        connect_with_access_token(
            default_org.base_url, signed_in.tokens.access_token, ca_bundle=default_org.ca_bundle
        )


def _fake_response(body: str, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode("utf-8")
    response._content_consumed = True
    response.encoding = "utf-8"
    return response


class _CannedSession(requests.Session):
    """A session that returns one canned SOAP body for every POST, to feed the parser hostile input."""

    def __init__(self, body: str, status: int = 200) -> None:
        super().__init__()
        self.body = body
        self.status = status
        self.sent: list[bytes] = []

    def post(self, url: str | bytes, data: object = None, **kwargs: object) -> requests.Response:  # type: ignore[override]
        assert isinstance(data, bytes)
        self.sent.append(data)
        return _fake_response(self.body, self.status)


ENTITY_EXPANSION = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soapenv:Body>&lol2;</soapenv:Body></soapenv:Envelope>"
)


def test_soap_parse__document_type_declaration_rejected() -> None:
    session = _CannedSession(ENTITY_EXPANSION)
    with pytest.raises(SalesforceProblem) as raised:
        soap_login(session, "https://login.example.invalid", "u", "p", "t", api_version="64.0")
    assert raised.value.kind is ProblemKind.BUG
    assert "document type declaration" in raised.value.sentence


def test_soap_parse__html_body_explained() -> None:
    session = _CannedSession("<html><body>Maintenance</body", status=503)
    with pytest.raises(SalesforceProblem) as raised:
        soap_login(session, "https://login.example.invalid", "u", "p", "t", api_version="64.0")
    assert "HTTP 503" in raised.value.sentence


def test_soap_parse__plain_http_server_url_rejected() -> None:
    body = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
        "<serverUrl>http://evil.example/services/Soap/u/64.0</serverUrl>"
        "<sessionId>00Dx!secret</sessionId><userId>005x</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    with pytest.raises(SalesforceProblem) as raised:
        soap_login(_CannedSession(body), "https://login.example.invalid", "u", "p", "t", api_version="64.0")
    assert "not an https URL" in raised.value.sentence
    assert "secret" not in raised.value.sentence


def test_soap_envelope__values_escaped() -> None:
    envelope = login_envelope("a<b>@example.com", "p&ss</urn:password>")
    assert "a&lt;b&gt;@example.com" in envelope
    assert "p&amp;ss&lt;/urn:password&gt;" in envelope
