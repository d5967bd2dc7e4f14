"""The settings and the result of one apply of a sync run."""

from __future__ import annotations

from dataclasses import dataclass, field

from backstory_desktop.core.plan import PlanRow
from backstory_desktop.salesforce.tasks import UpsertOutcome
from backstory_desktop.sync.result_files import ResultFiles


@dataclass(frozen=True)
class SyncSettings:
    """Settings of an apply: when to use Bulk API 2.0, retries, the API reserve and Cancel."""

    bulk_threshold: int = 2000  # rows to send at or above which Bulk API 2.0 is used
    max_attempts: int = 6  # sends of one row in one apply before it waits for a retry
    first_retry_seconds: float = 2.0  # back-off after the first failure, doubled after each
    max_retry_seconds: float = 120.0
    api_reserve_fraction: float = 0.1  # keep this share of the daily API requests unspent
    cancel_grace_seconds: float = 1.5  # Cancel returns within this, leaving the call IN_DOUBT

    def __post_init__(self) -> None:
        if self.bulk_threshold < 1 or self.max_attempts < 1:
            raise ValueError(
                f"bulk_threshold ({self.bulk_threshold}) and max_attempts ({self.max_attempts}) "
                "must be 1 or more"
            )
        if not 0.0 <= self.api_reserve_fraction < 1.0:
            raise ValueError(f"api_reserve_fraction must be from 0 up to 1, not {self.api_reserve_fraction}")
        if min(self.first_retry_seconds, self.max_retry_seconds, self.cancel_grace_seconds) < 0:
            raise ValueError("retry and grace seconds must not be negative")


@dataclass
class SyncResult:
    """Counts and per-message outcomes of one apply of a run.

    ``created``, ``updated`` and ``failed`` count the rows this apply settled.
    ``not_sent`` counts rows still PLANNED when it ended and ``queued`` the backfill
    queue. ``in_doubt_count`` counts the rows whose call got no response and could
    not be looked up yet, and ``in_doubt`` lists the first 100 of their keys.
    ``stopped_because`` gives the reason an apply ended early, ``stop_error_code``
    the error code behind it (such as SIGN_IN_AGAIN). ``api_calls`` counts the API
    requests of this apply: each Collections upsert, limits read and Bulk API request
    counts one, but a key lookup counts an estimate of its query pages.
    ``outcomes`` keeps the first 10,000 outcomes; the journal has all of them.
    ``other_spellings`` counts, after an apply of a stale plan only, the Tasks it
    created whose key another Task has in another spelling ("<k>" and "k").
    ``result_files_error`` says why the result files could not be written, and where.
    """

    created: int = 0
    updated: int = 0
    failed: int = 0
    not_sent: int = 0
    stopped_because: str = ""
    stop_error_code: str | None = None
    in_doubt: list[str] = field(default_factory=list)
    outcomes: list[tuple[PlanRow, UpsertOutcome]] = field(default_factory=list)
    run_id: str | None = None
    queued: int = 0
    result_files: ResultFiles | None = None
    api_calls: int = 0
    failure_counts: dict[str, tuple[int, str]] = field(default_factory=dict)
    in_doubt_count: int = 0
    result_files_error: str = ""  # why the result files could not be written, and where
    other_spellings: int = 0  # created Tasks whose key another Task has in another spelling

    def failures_by_code(self) -> dict[str, tuple[int, str]]:
        """Count failed records per Salesforce error code, with one message as an example."""
        if self.failure_counts:
            return dict(self.failure_counts)
        summary: dict[str, tuple[int, str]] = {}
        for _, outcome in self.outcomes:
            if not outcome.success:
                code = outcome.error_code or "UNKNOWN"
                count, example = summary.get(code, (0, outcome.message or ""))
                summary[code] = (count + 1, example)
        return summary
