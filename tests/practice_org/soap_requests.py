"""SOAP login() requests to a practice org and readers for its responses, shared by the tests."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

import requests

from backstory_desktop.practice_org import PRACTICE_PASSWORD, PracticeOrg
from tests.practice_org.practice_login import API_VERSION

PARTNER = "{urn:partner.soap.sforce.com}"
FAULT = "{urn:fault.partner.soap.sforce.com}"


def login_envelope(username: str, password: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8" ?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login>'
        f"<urn:username>{escape(username)}</urn:username>"
        f"<urn:password>{escape(password)}</urn:password>"
        "</urn:login></soapenv:Body></soapenv:Envelope>"
    )


def post_login(org: PracticeOrg, http: requests.Session, username: str, password: str,
               version: str = API_VERSION) -> requests.Response:
    return http.post(f"{org.base_url}/services/Soap/u/{version}",
                     data=login_envelope(username, password).encode(),
                     headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"})


def full_password(org: PracticeOrg, username: str) -> str:
    return PRACTICE_PASSWORD + org.security_token(username)


def fault_of(response: requests.Response) -> dict[str, str]:
    """Return the fault's faultcode, faultstring, exceptionCode and exceptionMessage."""
    fault = ElementTree.fromstring(response.content).find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body/"
        "{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault is not None, response.text
    return {
        "faultcode": fault.findtext("faultcode") or "",
        "faultstring": fault.findtext("faultstring") or "",
        "exceptionCode": fault.findtext(f"detail/*/{FAULT}exceptionCode") or "",
        "exceptionMessage": fault.findtext(f"detail/*/{FAULT}exceptionMessage") or "",
    }


def login_result(response: requests.Response) -> ElementTree.Element:
    result = ElementTree.fromstring(response.content).find(
        f"{{http://schemas.xmlsoap.org/soap/envelope/}}Body/{PARTNER}loginResponse/{PARTNER}result")
    assert result is not None, response.text
    return result
