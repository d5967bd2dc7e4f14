"""Partner SOAP API envelopes: their namespaces, a parser that rejects any DTD, and text lookup."""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.etree import ElementTree

SOAP_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
# Prefixes for ElementTree paths such as "soapenv:Body/sf:loginResponse".
NAMESPACES = {"soapenv": SOAP_ENVELOPE_NS, "sf": PARTNER_NS, "fault": FAULT_NS}

_DOCTYPE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_envelope(text: str, status: int, malformed: Callable[[str], Exception]) -> ElementTree.Element:
    """Parse the SOAP response body ``text``, received with HTTP ``status``, rejecting any DTD.

    A SOAP 1.1 message must not contain a document type declaration (W3C Note
    "Simple Object Access Protocol (SOAP) 1.1"). Without one no entity can be
    declared, so entity expansion attacks have nothing to expand. Raises the
    exception ``malformed`` builds from a phrase naming what is wrong.
    """
    if _DOCTYPE.search(text):
        raise malformed("a response with a document type declaration")
    try:
        return ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise malformed(f"HTTP {status} with a body that is not XML ({error})") from error


def element_text(element: ElementTree.Element, path: str) -> str:
    """Return the stripped text at ``path`` below ``element``, or "" when there is none."""
    found = element.find(path, NAMESPACES)
    return (found.text or "").strip() if found is not None else ""
