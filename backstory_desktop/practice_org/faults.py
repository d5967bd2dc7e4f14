"""Failures the practice org can inject into API calls, for drills and tests.

Each API call draws once from a seeded random generator, so a plan with the
same seed fails the same calls when the calls come one after another. OAuth calls are never
touched, because the product's retry logic concerns API calls.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from enum import StrEnum

from backstory_desktop.practice_org.errors import ApiError


class Fault(StrEnum):
    """One kind of injected failure."""

    SERVER_UNAVAILABLE = "server_unavailable"
    UNABLE_TO_LOCK_ROW = "unable_to_lock_row"
    EXPIRED_SESSION = "expired_session"
    DROPPED_CONNECTION = "dropped_connection"


@dataclass(frozen=True)
class FaultPlan:
    """Rates (fractions from 0 to 1) of each failure, and a latency added to every API call.

    UNABLE_TO_LOCK_ROW is injected into writes (POST, PATCH, DELETE) only.
    """

    latency_seconds: float = 0.0
    server_unavailable_rate: float = 0.0
    unable_to_lock_row_rate: float = 0.0
    expired_session_rate: float = 0.0
    dropped_connection_rate: float = 0.0
    seed: int = 0


NO_FAULTS = FaultPlan()


class FaultInjector:
    """Source of each API call's fault, if any, drawn from a plan."""

    def __init__(self, plan: FaultPlan = NO_FAULTS) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()

    def draw(self, method: str) -> Fault | None:
        """Return the fault to inject into the next call, or None."""
        with self._lock:
            roll = self._random.random()
        is_write = method in ("POST", "PATCH", "PUT", "DELETE")
        bands = (
            (Fault.SERVER_UNAVAILABLE, self.plan.server_unavailable_rate),
            (Fault.UNABLE_TO_LOCK_ROW, self.plan.unable_to_lock_row_rate if is_write else 0.0),
            (Fault.EXPIRED_SESSION, self.plan.expired_session_rate),
            (Fault.DROPPED_CONNECTION, self.plan.dropped_connection_rate),
        )
        threshold = 0.0
        for fault, rate in bands:
            threshold += rate
            if roll < threshold:
                return fault
        return None


def fault_error(fault: Fault) -> ApiError:
    """Return the error Salesforce sends for a fault (all but a dropped connection)."""
    if fault is Fault.SERVER_UNAVAILABLE:
        return ApiError(503, "SERVER_UNAVAILABLE",
                        "Server temporarily unavailable, please try again later")
    if fault is Fault.UNABLE_TO_LOCK_ROW:
        return ApiError(400, "UNABLE_TO_LOCK_ROW",
                        "unable to obtain exclusive access to this record or 1 records")
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
