"""Replay recorded Salesforce requests against a practice org and compare the responses.

A cassette is replayed in order against a new practice org, as the admin. Record ids
in a recorded request are mapped to the practice org's. A recorded write returned
ids, and the practice org's response to the same write returned its own ids in the
same places. A request that names a record the recording did not create, or that
``NOT_REPLAYED`` lists, is not sent; the reason is kept with it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.practice_org.contract.cassettes import Interaction
from tests.practice_org.contract.describes import describe_differences, global_differences
from tests.practice_org.contract.shapes import shape_differences
from tests.practice_org.practice_login import API_VERSION, Login

# Requests the practice org does not serve, each with the reason. The patterns match
# "METHOD /path?query" of a recorded request.
NOT_REPLAYED: dict[str, str] = {
    r"/sobjects/Organization/": "the practice org has no Organization object, and the product "
                                "does not read it",
    r"FROM\+RecordType|FROM%20RecordType": "the practice org defines no record types",
    r"%28select\+Name\+from\+Opportunities%29": "SOQL parent-to-child subqueries are not "
                                                "supported by the practice org",
    r"sobjects/Campaign/": "the practice org has no Campaign object",
    r"BillingCity|AssistantName|TotalOpportunityQuantity": "the query names standard fields "
                                                           "the practice org does not define",
}

_RECORD_ID = re.compile(r"\b0[0-9A-Za-z]{2}[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?\b")
_RECORDED_VERSION = re.compile(r"/services/data/v(?:xx|\d+)\.0")
_DESCRIBE = re.compile(r"^/services/data/v[^/]+/sobjects/(\w+)/describe/?$")
_GLOBAL_DESCRIBE = re.compile(r"^/services/data/v[^/]+/sobjects/?$")
_COMPOSITE = re.compile(r"^/services/data/v[^/]+/composite/?$")


@dataclass
class Outcome:
    """What happened to one recorded interaction."""

    source: str
    request: str
    skipped: str | None = None
    differences: list[str] = field(default_factory=list)


@dataclass
class Replayer:
    """Replays interactions in order against one practice org, mapping record ids."""

    login: Login
    id_map: dict[str, str] = field(default_factory=dict)
    compared: set[tuple[str, str, str]] = field(default_factory=set)

    def replay(self, interaction: Interaction) -> Outcome:
        request = f"{interaction.method} {interaction.path}"
        outcome = Outcome(interaction.source, request)
        outcome.skipped = self._reason_to_skip(interaction)
        if outcome.skipped is not None:
            return outcome

        path = self._mapped(_RECORDED_VERSION.sub(f"/services/data/v{API_VERSION}",
                                                  interaction.path))
        body = None if interaction.request_body is None else self._mapped(
            _RECORDED_VERSION.sub(f"/services/data/v{API_VERSION}", interaction.request_body))
        if body is not None and _COMPOSITE.match(interaction.route):
            body = self._with_schema_dates(body, interaction.response_json())
        response = self.login.http.request(
            interaction.method, self.login.org.base_url + path,
            headers={**self.login.headers(), "Content-Type": "application/json"}, data=body)
        differences = self._differences(interaction, response.status_code,
                                        response.headers.get("Content-Type"), response.text)
        outcome.differences += [f"{interaction.route}: {difference}" for difference in differences]
        if not differences and interaction.method in ("POST", "PATCH"):
            self._learn_ids(interaction.response_json(), json.loads(response.text or "null"))
        return outcome

    def _reason_to_skip(self, interaction: Interaction) -> str | None:
        request = f"{interaction.method} {interaction.path}"
        if interaction.status >= 500:
            return ("a 5xx the recording's authors wrote in by hand; the fault injection tests "
                    "cover server errors")
        if interaction.request_body and not _is_json(interaction.request_body):
            return "the recorded request body is not valid JSON (the cassette was edited by hand)"
        for pattern, reason in NOT_REPLAYED.items():
            if re.search(pattern, f"{request} {interaction.request_body or ''}"):
                return reason
        key = (interaction.method, interaction.path, interaction.request_body or "")
        if interaction.method == "GET" and _DESCRIBE.match(interaction.route) and key in self.compared:
            return "the same describe was compared earlier in this cassette"
        self.compared.add(key)
        unknown = [found for found in _RECORD_ID.findall(request + (interaction.request_body or ""))
                   if found not in self.id_map and not found.startswith(("012", "00D"))]
        if unknown:
            return f"names record {unknown[0]}, which the recording did not create"
        return None

    def _with_schema_dates(self, body: str, recorded: Any) -> str:
        """Send the practice org's schema date as If-Modified-Since where Salesforce sent 304.

        A recorded If-Modified-Since date is the date of the copy the client held. Where
        the recording contains a 304, that copy was current, so the replay sends the
        practice org's current Last-Modified date instead.
        """
        request = json.loads(body)
        results = recorded.get("compositeResponse", []) if isinstance(recorded, dict) else []
        for subrequest, result in zip(request.get("compositeRequest", []), results, strict=False):
            headers = subrequest.get("httpHeaders") or {}
            if result.get("httpStatusCode") == 304 and "If-Modified-Since" in headers:
                headers["If-Modified-Since"] = self._schema_date(subrequest["url"])
        return json.dumps(request)

    def _schema_date(self, url: str) -> str:
        path = _RECORDED_VERSION.sub(f"/services/data/v{API_VERSION}", urlsplit(url).path)
        response = self.login.http.get(self.login.org.base_url + path,
                                       headers=self.login.headers())
        return str(response.headers.get("Last-Modified", ""))

    def _mapped(self, text: str) -> str:
        return _RECORD_ID.sub(lambda match: self.id_map.get(match.group(0), match.group(0)), text)

    def _differences(
        self, interaction: Interaction, status: int, content_type: str | None, text: str
    ) -> list[str]:
        if status != interaction.status:
            return [f"status: recorded {interaction.status}, practice org {status}: {text[:300]}"]
        differences = _content_type_differences(interaction, content_type)
        if not interaction.response_body.strip():
            return differences + ([] if not text.strip() else ["body: recorded none"])
        recorded, actual = interaction.response_json(), json.loads(text)
        described = _DESCRIBE.match(interaction.route)
        if interaction.method == "GET" and described:
            return differences + describe_differences(recorded, actual)
        if interaction.method == "GET" and _GLOBAL_DESCRIBE.match(interaction.route):
            return differences + global_differences(recorded, actual)
        if interaction.method == "POST" and _COMPOSITE.match(interaction.route):
            return differences + _composite_differences(interaction.request_json(), recorded,
                                                        actual)
        return differences + shape_differences(recorded, actual)

    def _learn_ids(self, recorded: Any, actual: Any) -> None:
        """Map the ids a recorded write returned to those the practice org returned."""
        if isinstance(recorded, list) and isinstance(actual, list):
            for recorded_item, actual_item in zip(recorded, actual, strict=False):
                self._learn_ids(recorded_item, actual_item)
        elif isinstance(recorded, dict) and isinstance(actual, dict):
            if isinstance(recorded.get("id"), str) and isinstance(actual.get("id"), str):
                self.id_map[recorded["id"]] = actual["id"]
                self.id_map[recorded["id"][:15]] = actual["id"][:15]
            for key in ("body", "compositeResponse"):
                self._learn_ids(recorded.get(key), actual.get(key))


def _content_type_differences(interaction: Interaction, content_type: str | None) -> list[str]:
    """Compare Content-Type headers, media type and charset, ignoring case and spaces."""
    if interaction.content_type is None or not interaction.response_body.strip():
        return []
    recorded = _normalised_content_type(interaction.content_type)
    actual = _normalised_content_type(content_type or "")
    if recorded != actual:
        return [f"Content-Type: recorded {recorded}, practice org {actual or 'none'}"]
    return []


def _normalised_content_type(value: str) -> str:
    return ";".join(part.strip().lower() for part in value.split(";"))


def _composite_differences(request: Any, recorded: Any, actual: Any) -> list[str]:
    """Compare a composite response; a describe subrequest's body as a describe."""
    differences = shape_differences({**recorded, "compositeResponse": []},
                                    {**actual, "compositeResponse": []})
    subrequests = request["compositeRequest"]
    pairs = zip(subrequests, recorded["compositeResponse"], actual["compositeResponse"],
                strict=False)
    if len(actual["compositeResponse"]) != len(subrequests):
        differences.append(f"$.compositeResponse: {len(subrequests)} subrequests, "
                           f"{len(actual['compositeResponse'])} results")
    for index, (subrequest, recorded_result, actual_result) in enumerate(pairs):
        where = f"$.compositeResponse[{index}]"
        differences += shape_differences({**recorded_result, "body": None},
                                         {**actual_result, "body": None}, where)
        if recorded_result["httpStatusCode"] != actual_result["httpStatusCode"]:
            differences.append(f"{where}.httpStatusCode: recorded "
                               f"{recorded_result['httpStatusCode']}, practice org "
                               f"{actual_result['httpStatusCode']}")
        elif _DESCRIBE.match(subrequest["url"]) and recorded_result["body"] is not None:
            differences += [f"{where}.body{difference[1:]}" for difference in
                            describe_differences(recorded_result["body"], actual_result["body"])]
        else:
            differences += shape_differences(recorded_result["body"], actual_result["body"],
                                             f"{where}.body")
    return differences


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True
