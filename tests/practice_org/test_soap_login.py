"""SOAP login() at /services/Soap/u/<version>: the loginResponse, each fault, and the session it starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin

from backstory_desktop.practice_org import PRACTICE_PASSWORD, PracticeOrg
from tests.practice_org.practice_login import API_VERSION, https_session, login
from tests.practice_org.soap_requests import (
    PARTNER,
    fault_of,
    full_password,
    login_envelope,
    login_result,
    post_login,
)

INVALID_LOGIN_TEXT = "Invalid username, password, security token; or user locked out."

@pytest.fixture(scope="module")
def soap_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    with PracticeOrg(tmp_path_factory.mktemp("soap") / "practice.db") as org:
        yield org


@pytest.fixture(scope="module")
def http(soap_org: PracticeOrg) -> requests.Session:
    return https_session(soap_org)


def test_soap_login__returns_login_result(soap_org: PracticeOrg, http: requests.Session) -> None:
    username = soap_org.admin_username

    response = post_login(soap_org, http, username, full_password(soap_org, username))

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/xml")
    result = login_result(response)
    assert result.findtext(f"{PARTNER}passwordExpired") == "false"
    assert result.findtext(f"{PARTNER}sandbox") == "false"
    assert result.findtext(f"{PARTNER}serverUrl") == (
        f"{soap_org.base_url}/services/Soap/u/{API_VERSION}/{soap_org.org_id[:15]}")
    assert result.findtext(f"{PARTNER}metadataServerUrl") == (
        f"{soap_org.base_url}/services/Soap/m/{API_VERSION}/{soap_org.org_id[:15]}")
    assert (result.findtext(f"{PARTNER}sessionId") or "").startswith(f"{soap_org.org_id[:15]}!")
    assert (result.findtext(f"{PARTNER}userId") or "").startswith("005")


def test_soap_login__user_info_names_user_and_org(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    username = soap_org.integration_username

    result = login_result(post_login(soap_org, http, username, full_password(soap_org, username)))
    info = result.find(f"{PARTNER}userInfo")

    assert info is not None
    assert info.findtext(f"{PARTNER}userName") == username
    assert info.findtext(f"{PARTNER}userFullName") == "Backstory Integration"
    assert info.findtext(f"{PARTNER}userEmail") == username
    assert info.findtext(f"{PARTNER}organizationId") == soap_org.org_id
    assert info.findtext(f"{PARTNER}userId") == result.findtext(f"{PARTNER}userId")
    assert info.findtext(f"{PARTNER}sessionSecondsValid") == "7200"
    assert (info.findtext(f"{PARTNER}profileId") or "").startswith("00e")


def test_soap_login__simple_salesforce_session_works_on_rest(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    session_id, instance = SalesforceLogin(
        username=soap_org.admin_username, password=PRACTICE_PASSWORD,
        security_token=soap_org.security_token(soap_org.admin_username),
        scratch_url=soap_org.base_url, session=http, sf_version=API_VERSION)
    sf = Salesforce(instance=instance, session_id=session_id, session=http, version=API_VERSION)

    users = sf.query(f"SELECT Username FROM User WHERE Username = '{soap_org.admin_username}'")

    assert instance == soap_org.base_url.removeprefix("https://")
    assert users["totalSize"] == 1


def test_soap_login__username_is_case_insensitive(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    username = soap_org.admin_username

    response = post_login(soap_org, http, username.upper(), full_password(soap_org, username))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", ["wrong token", "no token", "wrong password", "unknown user"])
def test_soap_login__bad_credentials_are_invalid_login(
    soap_org: PracticeOrg, http: requests.Session, case: str
) -> None:
    username = soap_org.admin_username
    token = soap_org.security_token(username)
    username, password = {
        "wrong token": (username, PRACTICE_PASSWORD + token[::-1]),
        "no token": (username, PRACTICE_PASSWORD),
        "wrong password": (username, "not-the-password" + token),
        "unknown user": ("nobody@practice.backstory.example", PRACTICE_PASSWORD + token),
    }[case]

    response = post_login(soap_org, http, username, password)
    fault = fault_of(response)

    assert response.status_code == 500
    assert fault["faultcode"] == "sf:INVALID_LOGIN"
    assert fault["faultstring"] == f"INVALID_LOGIN: {INVALID_LOGIN_TEXT}"
    assert fault["exceptionCode"] == "INVALID_LOGIN"
    assert fault["exceptionMessage"] == INVALID_LOGIN_TEXT


def test_soap_login__inactive_user_is_invalid_login(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    admin = login(soap_org, soap_org.admin_username)
    inactive = admin.sf.query(
        "SELECT Username FROM User WHERE IsActive = false LIMIT 1")["records"][0]["Username"]

    response = post_login(soap_org, http, inactive, full_password(soap_org, inactive))

    assert response.status_code == 500
    assert fault_of(response)["exceptionCode"] == "INVALID_LOGIN"


def test_soap_login__simple_salesforce_reports_fault(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        SalesforceLogin(username=soap_org.admin_username, password=PRACTICE_PASSWORD,
                        security_token="wrong", scratch_url=soap_org.base_url, session=http,
                        sf_version=API_VERSION)

    assert failed.value.code == "INVALID_LOGIN"
    assert failed.value.auth_message == INVALID_LOGIN_TEXT


@pytest.mark.parametrize("version", ["65.0", "66.0"])
def test_soap_login__unavailable_from_api_65(
    soap_org: PracticeOrg, http: requests.Session, version: str
) -> None:
    username = soap_org.admin_username

    response = post_login(soap_org, http, username, full_password(soap_org, username), version)
    fault = fault_of(response)

    assert response.status_code == 500
    assert fault["exceptionCode"] == "INVALID_OPERATION"
    assert fault["exceptionMessage"] == (
        f"The SOAP Login operation is not available in the API version specified ({version}). "
        "Refer to the documentation for supported versions.")


@pytest.mark.parametrize("version", ["20.0", "99.0", "latest"])
def test_soap_login__unknown_version_is_unsupported(
    soap_org: PracticeOrg, http: requests.Session, version: str
) -> None:
    username = soap_org.admin_username

    response = post_login(soap_org, http, username, full_password(soap_org, username), version)
    fault = fault_of(response)

    assert response.status_code == 500
    assert fault["faultcode"] == "sf:UNSUPPORTED_API_VERSION"
    assert fault["exceptionMessage"] == "Invalid Api version specified on URL"


@pytest.mark.parametrize("body", [
    b"not xml",
    b"<login/>",
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body/></soapenv:Envelope>",
    b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
])
def test_soap_login__malformed_envelope_is_client_fault(
    soap_org: PracticeOrg, http: requests.Session, body: bytes
) -> None:
    response = http.post(f"{soap_org.base_url}/services/Soap/u/{API_VERSION}", data=body,
                         headers={"Content-Type": "text/xml", "SOAPAction": "login"})

    assert response.status_code == 500
    assert fault_of(response)["faultcode"] == "soapenv:Client"


def test_soap_login__other_operation_is_client_fault(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    envelope = login_envelope("a", "b").replace("urn:login", "urn:query")

    response = http.post(f"{soap_org.base_url}/services/Soap/u/{API_VERSION}", data=envelope,
                         headers={"Content-Type": "text/xml", "SOAPAction": "query"})
    fault = fault_of(response)

    assert response.status_code == 500
    assert fault["faultcode"] == "soapenv:Client"
    assert "{urn:partner.soap.sforce.com}query" in fault["faultstring"]


def test_soap_login__disabled_org_refuses(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db", soap_login_enabled=False) as org:
        username = org.admin_username
        response = post_login(org, https_session(org), username, full_password(org, username))

    fault = fault_of(response)
    assert response.status_code == 500
    assert fault["faultcode"] == "sf:INVALID_OPERATION"
    assert fault["exceptionMessage"] == (
        "SOAP API login() is disabled by default in this org. Contact the org administrator "
        "to enable SOAP API login().")


def test_soap_login__can_be_switched_off_while_running(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as org:
        http = https_session(org)
        username = org.admin_username
        before = post_login(org, http, username, full_password(org, username))
        org.soap_login_enabled = False
        after = post_login(org, http, username, full_password(org, username))

    assert before.status_code == 200
    assert after.status_code == 500
    assert fault_of(after)["exceptionCode"] == "INVALID_OPERATION"


def test_soap_login__user_without_api_enabled_is_refused(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as org:
        admin = login(org, org.admin_username)
        rep = admin.sf.query(
            "SELECT Username FROM User WHERE IsActive = true AND Profile.Name = 'Standard User' "
            "AND Username LIKE '%.practice' LIMIT 1")["records"][0]["Username"]
        profile_set = admin.sf.query(
            "SELECT Id FROM PermissionSet WHERE Profile.Name = 'Standard User'")["records"][0]["Id"]
        allowed = post_login(org, admin.http, rep, full_password(org, rep))
        admin.sf.PermissionSet.update(profile_set, {"PermissionsApiEnabled": False})
        refused = post_login(org, admin.http, rep, full_password(org, rep))

    fault = fault_of(refused)
    assert allowed.status_code == 200
    assert refused.status_code == 500
    assert fault["exceptionCode"] == "API_CURRENTLY_DISABLED"
    assert fault["exceptionMessage"] == "API is disabled for this User"


def test_soap_session__ends_with_expire_sessions(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as org:
        http = https_session(org)
        username = org.admin_username
        session_id = login_result(post_login(org, http, username, full_password(org, username))
                                  ).findtext(f"{PARTNER}sessionId")
        limits = f"{org.base_url}/services/data/v{API_VERSION}/limits"
        headers = {"Authorization": f"Bearer {session_id}"}
        before = http.get(limits, headers=headers)
        org.expire_sessions()
        after = http.get(limits, headers=headers)

    assert before.status_code == 200
    assert after.status_code == 401
    assert after.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_soap_session__revoke_ends_it(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "practice.db") as org:
        http = https_session(org)
        username = org.admin_username
        session_id = login_result(post_login(org, http, username, full_password(org, username))
                                  ).findtext(f"{PARTNER}sessionId")
        revoked = http.post(f"{org.base_url}/services/oauth2/revoke", data={"token": session_id})
        after = http.get(f"{org.base_url}/services/data/v{API_VERSION}/limits",
                         headers={"Authorization": f"Bearer {session_id}"})

    assert revoked.status_code == 200
    assert after.status_code == 401


def test_security_token__same_after_restart(tmp_path: Path) -> None:
    database = tmp_path / "practice.db"
    with PracticeOrg(database) as org:
        first = org.security_token(org.admin_username)
        integration = org.security_token(org.integration_username)
    with PracticeOrg(database) as org:
        again = org.security_token(org.admin_username)
        response = post_login(org, https_session(org), org.admin_username,
                              PRACTICE_PASSWORD + first)

    assert again == first
    assert integration != first
    assert len(first) == 24
    assert first.isalnum()
    assert response.status_code == 200


def test_security_token__differs_between_databases(tmp_path: Path) -> None:
    with PracticeOrg(tmp_path / "one.db") as org:
        one = org.security_token(org.admin_username)
    with PracticeOrg(tmp_path / "two.db") as org:
        two = org.security_token(org.admin_username)

    assert one != two


def test_security_token__unknown_user_is_an_error(soap_org: PracticeOrg) -> None:
    with pytest.raises(ValueError, match="no user"):
        soap_org.security_token("nobody@practice.backstory.example")


def test_soap_login__is_not_counted_as_api_request(
    soap_org: PracticeOrg, http: requests.Session
) -> None:
    username = soap_org.admin_username
    before = soap_org.request_count

    post_login(soap_org, http, username, full_password(soap_org, username))

    assert soap_org.request_count == before
