"""The Summary step: close the checklist and list what the admin still has to do."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, count_phrase, record_result
from backstory_desktop.enablement.setting import BACKSTORY_SETTING_NAME, BACKSTORY_SETTING_PATH

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
    details = {"not_passed": failed, "open_items": open_items}
    reason = ("Steps not passed: " + ", ".join(failed) + ".") if failed else "Every step passed."
    if open_items:
        reason += " Still open: " + " ".join(open_items)
    status = StepStatus.FAILED if failed else StepStatus.PASSED
    return record_result(run, StepResult(Step.SUMMARY, status, reason, details))


def open_work(run: EnablementRun, steps: Collection[Step] | None = None) -> list[str]:
    """List what the admin still has to do, in step order, one actionable sentence each.

    Each step's findings come from its latest result, so the list is the same
    in the wizard, the rehearsal and the ``check`` command. A failed step
    without a finding of its own is listed with its reason. ``steps`` limits
    the list to those steps' findings.
    """
    items: list[str] = []
    # The Summary's own result lists these items, so it is not a source of them.
    for step in (step for step in Step if step is not Step.SUMMARY):
        if steps is not None and step not in steps:
            continue
        result = run.checklist.results.get(step)
        found = _STEP_WORK[step](run, result) if step in _STEP_WORK else []
        if not found and result is not None and result.status is StepStatus.FAILED:
            found = [f"{STEP_TITLES[step]}: {result.reason}"]
        items.extend(found)
    return items


def _field_work(run: EnablementRun, result: StepResult | None) -> list[str]:
    if result is None:
        return []
    details = result.details
    problems = list(details.get("problems", []))
    consequences = details.get("not_unique_consequences") or []
    if not (details.get("exists") and details.get("unique") is False and consequences):
        items = problems
    else:
        # The consequences explain more than the problem sentence about the missing Unique.
        items = [problem for problem in problems if "not Unique" not in problem]
        items.append(
            f"Make Activity.{details.get('field')} Unique once no records share a value, recycle bin "
            "included (the Conflicts step lists them). Until then: " + " ".join(consequences)
        )
    items.extend(
        f"'Created by Backstory' flag: {problem}" for problem in details.get("flag_problems", [])
    )
    return items


def _access_work(run: EnablementRun, result: StepResult | None) -> list[str]:
    if result is None:
        return []
    details = result.details
    items = _missing_access(str(details.get("user", "")), details.get("lines", []))
    for cadence_user in details.get("cadence_users", []):
        owner = f"{cadence_user.get('username', '')} ({cadence_user.get('tool', 'cadence tool')})"
        items.extend(_missing_access(owner, cadence_user.get("lines", [])))
    return items


def _missing_access(user: str, lines: list[Mapping[str, Any]]) -> list[str]:
    """Name the required and the recommended access ``user`` lacks, and what mutes a granted one."""
    lacking = [line for line in lines if not line.get("granted")]
    muted = [line for line in lacking if line.get("muted_by")]
    required = [str(line["name"]) for line in lacking if line.get("required") and line not in muted]
    recommended = [str(line["name"]) for line in lacking if not line.get("required") and line not in muted]
    items = []
    if required:
        items.append(f"Give {user} {_joined(required)}: the integration needs it to upsert Tasks.")
    for line in muted:
        muting = _joined([str(source) for source in line["muted_by"]])
        need = "the integration needs it" if line.get("required") else "Backstory recommends it"
        items.append(
            f"Give {user} {line['name']}, which is {muting}: {need}, so take it out of that muting "
            "permission set or grant it through a permission set outside the group."
        )
    if recommended:
        items.append(f"Consider giving {user} {_joined(recommended)}, which Backstory recommends.")
    return items


def _setting_work(run: EnablementRun, result: StepResult | None) -> list[str]:
    field_name = run.field_state.api_name if run.field_state else run.profile.field_api_name
    if result is not None:
        confirmed = result.status is StepStatus.PASSED
    else:
        # The check command does not run this step: the profile keeps the admin's last confirmation.
        profile = run.profile
        confirmed = profile.backstory_setting_confirmed and profile.backstory_setting_value == field_name
    if confirmed:
        return []
    return [
        f"Enter {field_name} as '{BACKSTORY_SETTING_NAME}' in Backstory ({BACKSTORY_SETTING_PATH}), "
        "then confirm it on the Backstory setting page."
    ]


def _coverage_work(run: EnablementRun, result: StepResult | None) -> list[str]:
    return key_work(run) + calls_work(run)


def key_work(run: EnablementRun) -> list[str]:
    """List the cadence tools whose e-mail Tasks lack canonical keys, or that logged none to check."""
    result = run.checklist.results.get(Step.CADENCE_MAPPING)
    if result is None:
        return []
    return [
        str(tool["reason"])
        for tool in result.details.get("tools", [])
        if not tool.get("tasks") or tool.get("canonical", 0) < tool.get("tasks", 0)
    ]


def calls_work(run: EnablementRun) -> list[str]:
    """List, per owner, the calls logged without TaskSubtype Call."""
    result = run.checklist.results.get(Step.CADENCE_MAPPING)
    if result is None:
        return []
    details = result.details
    items: list[str] = []
    days = details.get("days")
    for user in details.get("calls", []):
        count = int(user.get("count", 0))
        logged_by = ", ".join(user.get("logged_by", [])) or "an unknown user"
        items.append(
            f"{count_phrase(count, 'call')} owned by {user.get('name')} ({user.get('username')}) in the last "
            f"{days} days {'lacks' if count == 1 else 'lack'} TaskSubtype Call, logged by {logged_by}: "
            "Salesforce sets TaskSubtype only when a Task is created, so make the tool or process that logs "
            "as that user log calls with TaskSubtype Call."
        )
    return items


def _conflicts_work(run: EnablementRun, result: StepResult | None) -> list[str]:
    flagged = sum(1 for group in run.groups if group.flagged)
    if not flagged:
        return []
    return [
        f"Resolve {count_phrase(flagged, 'group')} of Tasks that record one e-mail more than once, listed "
        "on the Conflicts page: Salesforce cannot merge Tasks, so keep one Task of each group."
    ]


def _sync_work(run: EnablementRun, result: StepResult | None) -> list[str]:
    conflicts = run.plan.counts().get("conflict", 0) if run.plan else 0
    if not conflicts:
        return []
    return [
        f"{count_phrase(conflicts, 'message')} of the local sync {'was' if conflicts == 1 else 'were'} not "
        "synced because several Tasks share their key: resolve those Tasks on the Conflicts page, then sync "
        "again."
    ]


def _joined(names: list[str]) -> str:
    """Return "A", "A and B" or "A, B and C"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_STEP_WORK = {
    Step.MESSAGE_ID_FIELD: _field_work,
    Step.INTEGRATION_USER: _access_work,
    Step.BACKSTORY_SETTING: _setting_work,
    Step.CADENCE_MAPPING: _coverage_work,
    Step.LOCAL_SYNC: _sync_work,
    Step.CONFLICTS: _conflicts_work,
}
