"""The enablement checklist: its steps, their results and the wizard's navigation.

Pure data, free of Qt and I/O, so the wizard, the headless rehearsal and the
summary report share one idea of what was checked and in which order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    """One step of the enablement, in wizard order."""

    CONNECT = "connect"
    CADENCE_TOOLS = "cadence_tools"
    MESSAGE_ID_FIELD = "message_id_field"
    INTEGRATION_USER = "integration_user"
    BACKSTORY_SETTING = "backstory_setting"
    CADENCE_MAPPING = "cadence_mapping"
    LOCAL_SYNC = "local_sync"
    CONFLICTS = "conflicts"
    SUMMARY = "summary"


STEP_TITLES: dict[Step, str] = {
    Step.CONNECT: "Connect",
    Step.CADENCE_TOOLS: "Cadence tools",
    Step.MESSAGE_ID_FIELD: "Message-ID field",
    Step.INTEGRATION_USER: "Integration user",
    Step.BACKSTORY_SETTING: "Backstory setting",
    Step.CADENCE_MAPPING: "Cadence-tool mapping",
    Step.LOCAL_SYNC: "Local sync",
    Step.CONFLICTS: "Conflicts",
    Step.SUMMARY: "Summary",
}


class StepStatus(StrEnum):
    """Outcome of a step. A step not run yet has no result at all."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepResult:
    """The findings and changes of one step, in words an admin can act on."""

    step: Step
    status: StepStatus
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the result as the rehearsal's JSON prints it."""
        return {
            "name": self.step.value,
            "title": STEP_TITLES[self.step],
            "status": self.status.value,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass
class Checklist:
    """Results of the steps run so far; a step run again replaces its result."""

    results: dict[Step, StepResult] = field(default_factory=dict)

    def record(self, result: StepResult) -> None:
        """Store a step's latest result."""
        self.results[result.step] = result

    def forget(self, step: Step) -> bool:
        """Drop a step's result because its input changed; tell whether there was one."""
        return self.results.pop(step, None) is not None

    def status(self, step: Step) -> StepStatus | None:
        """Return a step's status, or None when it has not run."""
        result = self.results.get(step)
        return result.status if result else None

    def can_leave(self, step: Step) -> bool:
        """Tell whether the wizard may move past a step.

        Connect must have passed and the field must be usable, because every
        later step works on that connection and key field; the others only
        need to have run.
        """
        status = self.status(step)
        if step is Step.CONNECT:
            return status is StepStatus.PASSED
        if step is Step.MESSAGE_ID_FIELD:
            return status is StepStatus.PASSED or self.field_usable()
        return status is not None or step is Step.SUMMARY

    def field_usable(self) -> bool:
        """Tell whether the key field can take upserts although its step failed.

        A field that is External ID but not Unique still works, with View All
        Data and the risk of duplicates, so the later steps (above all the
        duplicate scan) stay open.
        """
        result = self.results.get(Step.MESSAGE_ID_FIELD)
        return result is not None and bool(result.details.get("usable"))

    def next_step(self, step: Step) -> Step | None:
        """Return the step after ``step``, or None at the end."""
        order = list(Step)
        position = order.index(step)
        return order[position + 1] if position + 1 < len(order) else None

    def all_passed(self) -> bool:
        """Tell whether every step before the summary ran and passed."""
        return all(
            self.status(step) is StepStatus.PASSED for step in Step if step is not Step.SUMMARY
        )
