"""One enablement run: what the steps found so far, and helpers the steps share."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backstory_desktop.core.checklist import Checklist, Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, Thresholds
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.core.plan import Plan
from backstory_desktop.salesforce.access import AccessReport
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem, explain
from backstory_desktop.salesforce.schema import FieldState
from backstory_desktop.store.journal import Journal
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.settings import SyncResult, SyncSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeRecord:
    """One change made in the org: what, to what, when and as which user."""

    step: Step
    summary: str  # one sentence, such as "Created Activity.Message_ID__c"
    lines: tuple[str, ...] = ()  # the diff lines shown before the change was confirmed
    made_at: str = ""  # UTC time, ISO 8601 with seconds
    made_by: str = ""  # the Salesforce username of the session that made it

    def as_json(self) -> dict[str, object]:
        """Return the change as the reports print it."""
        return {
            "step": self.step.value,
            "summary": self.summary,
            "lines": list(self.lines),
            "made_at": self.made_at,
            "made_by": self.made_by,
        }


@dataclass
class EnablementRun:
    """Everything one enablement has found so far, step by step."""

    profile: OrgProfile
    checklist: Checklist = field(default_factory=Checklist)
    connection: OrgConnection | None = None
    field_state: FieldState | None = None
    flag_state: FieldState | None = None
    access: AccessReport | None = None
    # Each cadence tool user's access, by username, from the Integration user step.
    cadence_access: dict[str, AccessReport] = field(default_factory=dict)
    # The local sync: the source planned last, its plan (journal-backed), the
    # outcome of the last apply, and the settings the admin chose for this session.
    sync_source: Path | None = None
    plan: Plan | None = None
    sync_result: SyncResult | None = None
    sync_settings: SyncSettings = field(default_factory=SyncSettings)
    journal: Journal | None = None
    # The Conflicts step: the groups of the last scan, the matching rules it used and how many
    # Tasks it read.
    groups: list[DuplicateGroup] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    tasks_scanned: int = 0
    changes: list[ChangeRecord] = field(default_factory=list)
    """Every change made in the org during this run, oldest first, for the summary report."""

    def require_connection(self) -> OrgConnection:
        """Return the org connection, or raise when the Connect step has not passed."""
        if self.connection is None:
            raise RuntimeError("not connected to an org: run the Connect step first")
        return self.connection


def failed_result(step: Step, error: BaseException) -> StepResult:
    """Turn an error into the step's failed result; a cancel is raised again, not recorded."""
    if isinstance(error, Cancelled):
        raise error
    problem = error if isinstance(error, SalesforceProblem) else explain(error)
    log.info("step %s failed: %s", step.value, problem.sentence)
    return StepResult(step, StepStatus.FAILED, problem.sentence,
                      {"details": problem.details, "error_code": problem.error_code})


def record_result(run: EnablementRun, result: StepResult) -> StepResult:
    run.checklist.record(result)
    return result


def record_change(run: EnablementRun, step: Step, summary: str, lines: Iterable[str] = ()) -> ChangeRecord:
    """Add a change made in the org to the run's change log, stamped with the time and the user."""
    change = ChangeRecord(
        step=step,
        summary=summary,
        lines=tuple(lines),
        made_at=datetime.now(UTC).isoformat(timespec="seconds"),
        made_by=run.connection.username if run.connection is not None else "",
    )
    run.changes.append(change)
    log.info("Change in %s: %s", run.profile.alias, summary)
    return change


def require_field(run: EnablementRun) -> FieldState:
    """Return the inspected key field, or raise when the field step has not run."""
    if run.field_state is None:
        raise RuntimeError("the Message-ID field has not been checked: run that step first")
    return run.field_state


def usable_flag_field(run: EnablementRun) -> str | None:
    """Return the "Created by Backstory" flag field when the sync may set it, else None."""
    state = run.flag_state
    return state.api_name if state is not None and not state.problems else None


def count_phrase(count: int, noun: str) -> str:
    """Return "1 group" or "3 groups"."""
    return f"{count} {noun}" + ("" if count == 1 else "s")
