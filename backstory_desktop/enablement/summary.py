"""The Summary step: close the checklist and list what the admin still has to do."""

from __future__ import annotations

import logging

from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, count_phrase, record_result

log = logging.getLogger(__name__)


def summarise(run: EnablementRun) -> StepResult:
    """Close the checklist: passed only when every earlier step passed.

    Work the steps found but cannot do (duplicate groups to resolve,
    messages held back as conflicts) is listed as open items either way,
    so a passed summary never reads as "nothing left to do".
    """
    failed = [
        STEP_TITLES[step]
        for step in Step
        if step is not Step.SUMMARY and run.checklist.status(step) is not StepStatus.PASSED
    ]
    open_items = open_work(run)
    details = {"open_items": open_items}
    reason = ("Steps not passed: " + ", ".join(failed) + ".") if failed else "Every step passed."
    if open_items:
        reason += " Still open: " + "; ".join(open_items) + "."
    status = StepStatus.FAILED if failed else StepStatus.PASSED
    return record_result(run, StepResult(Step.SUMMARY, status, reason, details))


def open_work(run: EnablementRun) -> list[str]:
    """List what the admin still has to do in Salesforce after these steps."""
    items = []
    if run.groups:
        items.append(
            count_phrase(len(run.groups), "group") + " of Tasks sharing a Message-ID key to resolve "
            "in Salesforce (Tasks cannot be merged)"
        )
    conflicts = run.plan.counts().get("conflict", 0) if run.plan else 0
    if conflicts:
        items.append(count_phrase(conflicts, "message") + " not synced because of conflicting Tasks")
    return items
