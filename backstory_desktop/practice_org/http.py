"""Small HTTP helpers shared by the practice org's route modules."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.errors import ApiError


def json_response(body: Any, status: int = 200) -> Response:
    # Salesforce names the charset: "application/json;charset=UTF-8".
    return Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8")


def error_response(error: ApiError) -> Response:
    return json_response(error.rest_body(), error.status)


def json_body(request: Request) -> Any:
    """Return the parsed JSON request body, or raise Salesforce's JSON_PARSER_ERROR."""
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character at [line:{exc.lineno}, "
                       f"column:{exc.colno}]") from None


def json_object(request: Request) -> dict[str, Any]:
    """Return the request body, which must be a JSON object."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR",
                       "Cannot deserialize instance of the record from the request body: "
                       "a JSON object was expected")
    return body


def all_or_none_flag(body: dict[str, Any]) -> bool:
    """Return the ``allOrNone`` flag of a Composite or sObject Collections body (default false).

    The JSON strings "true" and "false" (any case) count as the booleans, and null as
    false. Other values raise JSON_PARSER_ERROR.
    """
    # NOTE: whether Salesforce coerces the strings "true" and "false" here, as it does for
    # checkbox field values, is unconfirmed. No document or recorded response shows it.
    value = body.get("allOrNone")
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(400, "JSON_PARSER_ERROR",
                   f"Cannot deserialize allOrNone: {json.dumps(value)} is not a boolean. "
                   "Send true or false.")
