"""Failures the practice org can inject into API calls, for drills and tests.

A ``FaultPlan`` names the rate of each failure and a seed. Each API call draws
once from a random generator seeded with it, and a call that draws a gateway
fault draws once more, for 502 or 504. Each record of an sObject Collections
write draws once more too. A plan with the same seed therefore fails
the same calls and records when the calls come one after another (calls that
overlap draw in the order they arrive). OAuth calls and the practice org's own
control route are never touched.

Setting a plan:

- at start: ``PracticeOrg(path, faults=FaultPlan(...))`` or the fault options
  of ``backstory-desktop practice-org serve``;
- while running: assign ``org.faults = FaultPlan(...)``;
- on a served org: ``POST /services/practice/faults`` with the Bearer access
  token of a user with Modify All Data and a JSON object of FaultPlan fields
  (``{"server_error_rate": 0.1, "seed": 7}``); fields left out take their
  defaults, so ``{}`` switches every fault off. ``GET`` on the same path returns
  the plan in force. Both return 401 INVALID_SESSION_ID without a valid token
  and 403 INSUFFICIENT_ACCESS for a user without Modify All Data.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from backstory_desktop.practice_org.errors import ApiError, invalid_session


class Fault(StrEnum):
    """One kind of failure injected into a whole API call."""

    SERVER_ERROR = "server_error"
    SERVER_UNAVAILABLE = "server_unavailable"
    UNABLE_TO_LOCK_ROW = "unable_to_lock_row"
    EXPIRED_SESSION = "expired_session"
    DROPPED_CONNECTION = "dropped_connection"
    DROPPED_AFTER_COMMIT = "dropped_after_commit"
    BAD_GATEWAY = "bad_gateway"
    GATEWAY_TIMEOUT = "gateway_timeout"


# Salesforce ends a REST or SOAP request after 10 minutes (Salesforce Developer Limits
# and Allocations Quick Reference, API request limits), so no call is delayed longer.
MAX_LATENCY_SECONDS = 600.0


@dataclass(frozen=True)
class FaultPlan:
    """Rates (fractions from 0 to 1) of each failure, limits, and a latency for every API call.

    - ``server_error_rate``: HTTP 500 UNKNOWN_EXCEPTION before the handler runs.
    - ``server_unavailable_rate``: HTTP 503 SERVER_UNAVAILABLE before the handler runs.
    - ``unable_to_lock_row_rate``: UNABLE_TO_LOCK_ROW. A single-record write
      (POST, PATCH or DELETE under ``sobjects/``) fails as a whole with HTTP 400.
      In sObject Collections each record draws on its own, so under
      ``allOrNone=false`` the drawn records fail and the others are written.
    - ``expired_session_rate``: the call's access token is revoked and the call
      gets 401 INVALID_SESSION_ID, as when a session times out.
    - ``dropped_connection_rate``: the connection closes after the request was
      received and before the handler runs, so nothing was written.
    - ``dropped_after_commit_rate``: the handler runs and commits, then the
      connection closes before the response is sent. The client cannot tell
      whether its write happened.
    - ``gateway_error_rate``: a load balancer in front of the org answers instead
      of Salesforce, with an HTML page and no Salesforce error code. Half of
      these (drawn from the seeded generator) are 502 Bad Gateway before the
      handler runs, so nothing was written. The others are 504 Gateway Timeout
      after the handler committed, so the write happened and its response is lost.
    - ``session_expires_after_calls``: each access token works for this many API
      calls, and the next one gets 401 INVALID_SESSION_ID.
    - ``max_concurrent_requests``: a call arriving while this many API calls are
      in flight gets 403 REQUEST_LIMIT_EXCEEDED.

    The rates of the whole-call failures may add up to 1 at most.
    """

    seed: int = 0
    latency_seconds: float = 0.0
    server_error_rate: float = 0.0
    server_unavailable_rate: float = 0.0
    unable_to_lock_row_rate: float = 0.0
    expired_session_rate: float = 0.0
    dropped_connection_rate: float = 0.0
    dropped_after_commit_rate: float = 0.0
    gateway_error_rate: float = 0.0
    session_expires_after_calls: int | None = None
    max_concurrent_requests: int | None = None

    def __post_init__(self) -> None:
        for name, rate in self._rates().items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if sum(self._rates().values()) > 1.0:
            raise ValueError("the fault rates add up to more than 1, so lower some of them")
        if not 0 <= self.latency_seconds <= MAX_LATENCY_SECONDS:
            raise ValueError(f"latency_seconds must be from 0 to {MAX_LATENCY_SECONDS}, "
                             f"not {self.latency_seconds}")
        for name in ("session_expires_after_calls", "max_concurrent_requests"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be 1 or more, or left out, not {limit}")

    def _rates(self) -> dict[str, float]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.name.endswith("_rate")}

    def summary(self) -> str:
        """Describe the settings that differ from no faults, as ``name=value`` pairs, or "none"."""
        changed = [f"{name}={value}" for name, value in self.to_json().items()
                   if value != getattr(NO_FAULTS, name) and name != "seed"]
        return ", ".join([*changed, f"seed={self.seed}"]) if changed else "none"

    def to_json(self) -> dict[str, Any]:
        """Return the plan as a JSON object of its fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, body: object) -> FaultPlan:
        """Build a plan from a JSON object of its fields, raising ValueError that names a bad one."""
        if not isinstance(body, Mapping):
            raise ValueError("the fault plan must be a JSON object of FaultPlan fields")
        types = {field.name: field.type for field in dataclasses.fields(cls)}
        unknown = sorted(set(body) - set(types))
        if unknown:
            raise ValueError(f"unknown fault plan fields: {', '.join(unknown)}; "
                             f"use {', '.join(types)}")
        values: dict[str, Any] = {}
        for name, value in body.items():
            values[name] = _field_value(name, str(types[name]), value)
        return cls(**values)


def _field_value(name: str, type_name: str, value: object) -> object:
    """Check one JSON value against the FaultPlan field's type."""
    if value is None and "None" in type_name:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    if type_name.startswith("int"):
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        return int(value)
    return float(value)


NO_FAULTS = FaultPlan()


class FaultInjector:
    """Source of each API call's fault, drawn from a plan, and the counters the limits need."""

    def __init__(self, plan: FaultPlan = NO_FAULTS) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._calls_by_token: dict[str, int] = {}

    def _roll(self) -> float:
        with self._lock:
            return self._random.random()

    def draw(self, *, single_record_write: bool) -> Fault | None:
        """Return the fault to inject into the next API call, or None.

        UNABLE_TO_LOCK_ROW is drawn here only for single-record writes, because
        sObject Collections draw it per record (see ``inject_row_lock``).
        """
        roll = self._roll()
        plan = self.plan
        bands = (
            (Fault.SERVER_ERROR, plan.server_error_rate),
            (Fault.SERVER_UNAVAILABLE, plan.server_unavailable_rate),
            (Fault.UNABLE_TO_LOCK_ROW,
             plan.unable_to_lock_row_rate if single_record_write else 0.0),
            (Fault.EXPIRED_SESSION, plan.expired_session_rate),
            (Fault.DROPPED_CONNECTION, plan.dropped_connection_rate),
            (Fault.DROPPED_AFTER_COMMIT, plan.dropped_after_commit_rate),
            (Fault.BAD_GATEWAY, plan.gateway_error_rate),
        )
        threshold = 0.0
        for fault, rate in bands:
            threshold += rate
            if roll < threshold:
                if fault is Fault.BAD_GATEWAY and self._roll() < 0.5:
                    return Fault.GATEWAY_TIMEOUT
                return fault
        return None

    def inject_row_lock(self, record: Mapping[str, Any]) -> None:
        """Raise UNABLE_TO_LOCK_ROW for one record of an sObject Collections write, at the plan's rate."""
        if self.plan.unable_to_lock_row_rate <= 0:
            return
        if self._roll() < self.plan.unable_to_lock_row_rate:
            record_id = record.get("Id") or record.get("id")
            raise unable_to_lock_row(str(record_id) if record_id else None)

    def server_error_id(self) -> str:
        """Return an ErrorId as Salesforce prints it with UNKNOWN_EXCEPTION, from the seeded generator."""
        with self._lock:
            first = self._random.randrange(10**9, 2 * 10**9)
            second = self._random.randrange(10**4, 10**6)
            third = self._random.randrange(-(2**31), 2**31)
        return f"{first}-{second} ({third})"

    def count_session_call(self, token_hash: str) -> None:
        """Count an API call of one access token, raising INVALID_SESSION_ID once its calls are used up."""
        limit = self.plan.session_expires_after_calls
        if limit is None:
            return
        with self._lock:
            used = self._calls_by_token.get(token_hash, 0) + 1
            self._calls_by_token[token_hash] = used
        if used > limit:
            raise invalid_session()

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Hold one of the org's concurrent request slots, or raise REQUEST_LIMIT_EXCEEDED if none is free."""
        limit = self.plan.max_concurrent_requests
        with self._lock:
            if limit is not None and self._in_flight >= limit:
                raise concurrent_requests_exceeded()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    @property
    def requests_in_flight(self) -> int:
        """API calls that have passed authentication and not yet returned."""
        with self._lock:
            return self._in_flight


def fault_error(fault: Fault, injector: FaultInjector) -> ApiError:
    """Return the error Salesforce sends for a whole-call fault (all but the dropped connections)."""
    if fault is Fault.SERVER_ERROR:
        # Body as in public client tests that recorded Salesforce's 500 responses,
        # e.g. [{"message":"An unexpected error occurred. Please include this ErrorId
        # if you contact support: 1678459733-112656 (-771449107)","errorCode":"UNKNOWN_EXCEPTION"}].
        return ApiError(500, "UNKNOWN_EXCEPTION",
                        "An unexpected error occurred. Please include this ErrorId if you "
                        f"contact support: {injector.server_error_id()}")
    if fault is Fault.SERVER_UNAVAILABLE:
        # NOTE: Salesforce's own 503 body is not documented; this follows the
        # SERVER_UNAVAILABLE code of the SOAP API's ExceptionCode list.
        return ApiError(503, "SERVER_UNAVAILABLE",
                        "Server temporarily unavailable, please try again later")
    if fault is Fault.UNABLE_TO_LOCK_ROW:
        return unable_to_lock_row(None)
    return invalid_session()


# The page a load balancer sends in place of the org's response, by status: HTML, not Salesforce's
# JSON error body. It follows nginx's built-in pages (err_502_page and err_504_page in its
# ngx_http_special_response.c), as public client tests record them.
_GATEWAY_PAGES = {
    Fault.BAD_GATEWAY: (502, "502 Bad Gateway"),
    Fault.GATEWAY_TIMEOUT: (504, "504 Gateway Time-out"),
}


def gateway_page(fault: Fault) -> tuple[int, str]:
    """Return the status and HTML page a load balancer sends for a gateway fault."""
    status, title = _GATEWAY_PAGES[fault]
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return status, page


def unable_to_lock_row(record_id: str | None) -> ApiError:
    """Return UNABLE_TO_LOCK_ROW, naming the locked record when there is one.

    Salesforce's message names the count and ids of the records it could not
    lock: "unable to obtain exclusive access to this record or 1 records: <id>",
    with ``fields`` empty (as quoted in public client code and bug reports).
    """
    message = "unable to obtain exclusive access to this record or 1 records"
    if record_id:
        message += f": {record_id}"
    return ApiError(400, "UNABLE_TO_LOCK_ROW", message, [])


def concurrent_requests_exceeded() -> ApiError:
    """Return the 403 REQUEST_LIMIT_EXCEEDED of the concurrent API request limit.

    errorcodes.htm (REST API Developer Guide) lists REQUEST_LIMIT_EXCEEDED under
    403. The message is the one public bug reports quote for concurrent API
    requests; long-running Apex transactions report "ConcurrentPerOrgLongTxn
    Limit exceeded." instead.
    """
    return ApiError(403, "REQUEST_LIMIT_EXCEEDED",
                    "ConcurrentRequests (Concurrent API Requests) Limit exceeded.")
