"""The apply's watch on the org's daily API requests: refused before it starts, stopped at the reserve."""

from __future__ import annotations

import logging
import math
from abc import abstractmethod

from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem
from backstory_desktop.salesforce.tasks import KEYS_PER_QUERY, UPSERT_BATCH_SIZE
from backstory_desktop.store.journal import UNRESOLVED_STATES, ItemState, Journal
from backstory_desktop.sync.engine_calls import CallRunner, Stop
from backstory_desktop.sync.settings import SyncResult

log = logging.getLogger(__name__)

# An estimate of the calls of one Bulk API 2.0 job: create, upload, close, a few polls,
# three result reads.
CALLS_PER_BULK_JOB = 12
BULK_JOB_RECORDS = 10_000


class ApiBudget(CallRunner):
    """The part of an apply that keeps the org's daily API requests above the reserve."""

    connection: OrgConnection
    journal: Journal
    result: SyncResult

    @abstractmethod
    def _queue_open_rows(self, code: str, message: str) -> None: ...

    def _check_budget(self) -> None:
        """Refuse to start when the org's daily API requests left, less the reserve, cannot cover the run."""
        states = self.journal.state_counts(self.run_id)
        to_send = states.get(ItemState.PLANNED, 0) + states.get(ItemState.QUEUED, 0)
        unresolved = sum(states.get(state, 0) for state in UNRESOLVED_STATES)
        if not to_send and not unresolved:
            return
        needed = estimated_calls(to_send, self.settings.bulk_threshold)
        needed += math.ceil(unresolved / KEYS_PER_QUERY)
        try:
            requests_today = self._call(self.connection.daily_api_requests)
        except SalesforceProblem as problem:
            raise Stop(problem.sentence, problem.error_code) from problem
        finally:
            self.result.api_calls += 1
        if requests_today is None:
            log.info("the org's daily API requests could not be read, so run %s starts unchecked",
                     self.run_id)
            return
        reserve = math.ceil(requests_today.max * self.settings.api_reserve_fraction)
        available = requests_today.remaining - reserve
        if needed > available:
            left = max(requests_today.remaining, 0)
            raise Stop(
                f"The sync needs about {needed} API requests, but the org has {left} of its "
                f"{requests_today.max} daily API requests left and this app always leaves {reserve} "
                f"requests for the integration and other tools: apply it once {needed + reserve} or more "
                "are left in the org's rolling 24-hour allowance.",
                "API_BUDGET",
            )

    def _watch_budget(self) -> None:
        """Stop and queue what is left once the last call's Sforce-Limit-Info reaches the reserve."""
        usage = self.connection.api_usage
        if usage is None:
            return
        used, maximum = usage
        reserve = math.ceil(maximum * self.settings.api_reserve_fraction)
        if maximum - used > reserve:
            return
        message = (
            f"The org has used {used} of its {maximum} daily API requests, which reaches the reserve of "
            f"{reserve} this app keeps: retry the queue once the org's 24-hour allowance has room again."
        )
        self._queue_open_rows("API_RESERVE", message)
        raise Stop(message, "API_RESERVE")


def estimated_calls(rows: int, bulk_threshold: int) -> int:
    """Estimate the API calls that sending ``rows`` rows takes, by Bulk API 2.0 from ``bulk_threshold`` on."""
    if rows >= bulk_threshold:
        return CALLS_PER_BULK_JOB * (2 + rows // BULK_JOB_RECORDS)
    return math.ceil(rows / UPSERT_BATCH_SIZE)
