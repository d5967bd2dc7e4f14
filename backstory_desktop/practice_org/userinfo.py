"""The OpenID Connect UserInfo endpoint, ``GET`` or ``POST /services/oauth2/userinfo``.

It accepts any live access token of the practice org, an OAuth access token or a
session id from SOAP ``login()``, in the Authorization header (``Bearer`` or
``OAuth``) or in the ``oauth_token`` parameter. The body has the keys of
Salesforce's response (Help, "Query for User Information"): the OpenID Connect
claims, the user and org ids and the API URLs.

A missing, unknown, expired or revoked token, or a token of an inactive user,
gets HTTP 403 with a one-word plain text body, where the data API returns 401
INVALID_SESSION_ID. The Salesforce Mobile SDK relies on that 403 for an invalid
token (forcedotcom/SalesforceMobileSDK-Android pull request 2430).
"""

from __future__ import annotations

import datetime
import logging
import re
import zoneinfo
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org import oauth_tokens
from backstory_desktop.practice_org.http import json_response
from backstory_desktop.practice_org.session import OrgState
from backstory_desktop.practice_org.store import Record, now_utc, parse_datetime

logger = logging.getLogger(__name__)

_AUTHORIZATION = re.compile(r"^(?:Bearer|OAuth)\s+(\S+)$", re.IGNORECASE)

BAD_TOKEN = "Bad_OAuth_Token"
# NOTE: the text Salesforce sends for a request without any token is unconfirmed.
MISSING_TOKEN = "Missing_OAuth_Token"


def userinfo(org: OrgState, request: Request) -> Response:
    """Return the token user's UserInfo, or 403 for a missing or invalid token."""
    token = _request_token(request)
    if not token:
        return _forbidden(MISSING_TOKEN)
    grant = oauth_tokens.find_token(org.store, token, oauth_tokens.ACCESS)
    user = org.store.get_record(grant.user_id) if grant is not None else None
    if user is None or user.sobject != "User" or user.fields.get("IsActive") is False:
        return _forbidden(BAD_TOKEN)
    return json_response(userinfo_body(org, user))


def _request_token(request: Request) -> str:
    match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
    if match is not None:
        return match.group(1)
    return request.values.get("oauth_token", "")


def _forbidden(text: str) -> Response:
    logger.info("UserInfo request rejected: %s", text)
    return Response(text, status=403, mimetype="text/plain")


def userinfo_body(org: OrgState, user: Record) -> dict[str, Any]:
    """Return the UserInfo response body for a user, with Salesforce's keys."""
    fields = user.fields
    username = str(fields.get("Username") or "")
    time_zone = str(fields.get("TimeZoneSidKey") or "GMT")
    picture = f"{org.base_url}/profilephoto/005/F"
    org_id = org.store.org_id
    return {
        "sub": f"{org.base_url}/id/{org_id}/{user.id}",
        "user_id": user.id,
        "organization_id": org_id,
        "preferred_username": username,
        "nickname": username.split("@")[0],
        "name": fields.get("Name"),
        "email": fields.get("Email"),
        "email_verified": True,
        "given_name": fields.get("FirstName"),
        "family_name": fields.get("LastName"),
        "zoneinfo": time_zone,
        "photos": {"picture": picture, "thumbnail": f"{org.base_url}/profilephoto/005/T"},
        "profile": f"{org.base_url}/{user.id}",
        "picture": picture,
        "address": {},
        "is_salesforce_integration_user": False,
        "urls": _api_urls(org, user.id),
        "active": True,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": _utc_offset_milliseconds(time_zone),
        "updated_at": _updated_at(user),
        "is_app_installed": True,
    }


def _api_urls(org: OrgState, user_id: str) -> dict[str, str]:
    """Return the API URLs of the response, with ``{version}`` left for the caller to fill in.

    The practice org serves the partner (login() only), rest, sobjects, query and
    tooling_rest URLs. The others are listed because Salesforce lists them, and return 404.
    """
    org_id_15 = org.store.org_id[:15]
    data = f"{org.base_url}/services/data/v{{version}}"
    return {
        "enterprise": f"{org.base_url}/services/Soap/c/{{version}}/{org_id_15}",
        "metadata": f"{org.base_url}/services/Soap/m/{{version}}/{org_id_15}",
        "partner": f"{org.base_url}/services/Soap/u/{{version}}/{org_id_15}",
        "rest": f"{data}/",
        "sobjects": f"{data}/sobjects/",
        "search": f"{data}/search/",
        "query": f"{data}/query/",
        "recent": f"{data}/recent/",
        "tooling_soap": f"{org.base_url}/services/Soap/T/{{version}}/{org_id_15}",
        "tooling_rest": f"{data}/tooling/",
        "profile": f"{org.base_url}/{user_id}",
        "feeds": f"{data}/chatter/feeds",
        "groups": f"{data}/chatter/groups",
        "users": f"{data}/chatter/users",
        "feed_items": f"{data}/chatter/feed-items",
        "feed_elements": f"{data}/chatter/feed-elements",
        "custom_domain": org.base_url,
    }


def _utc_offset_milliseconds(time_zone: str) -> int:
    """Return the time zone's current offset from UTC in milliseconds, as ``utcOffset`` gives it."""
    try:
        offset = now_utc().astimezone(zoneinfo.ZoneInfo(time_zone)).utcoffset()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # NOTE: without a time zone database (Windows without the tzdata package)
        # every zone reads as UTC.
        return 0
    return int(offset.total_seconds() * 1000) if offset is not None else 0


def _updated_at(user: Record) -> str | None:
    if not user.last_modified_date:
        return None
    moment = parse_datetime(user.last_modified_date)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
