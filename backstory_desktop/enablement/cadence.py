"""The two cadence-tool steps: which users each tool logs as, and how well it fills the key field.

Cadence tools: the admin names the Salesforce users Outreach, SalesLoft and
SendBloom log Tasks as. They are checked against the org and saved in the org
profile. Cadence-tool mapping: what to map in each tool, then a check of the
Tasks those users created over the last N days (keys present and canonical)
and of the calls logged without ``TaskSubtype = Call`` in the whole org.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.coverage import percent
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.core.records import UserRef
from backstory_desktop.enablement.run import (
    EnablementRun,
    count_phrase,
    failed_result,
    record_result,
    require_field,
)
from backstory_desktop.salesforce.coverage import (
    ToolCoverage,
    UserCalls,
    check_days,
    key_coverage,
    unmarked_calls,
    users_by_username,
)
from backstory_desktop.store.settings import CADENCE_TOOLS, ProfilesFileError, save_profile

log = logging.getLogger(__name__)

# Setup steps for each tool so it writes the e-mail's Message-ID into the key field; "{field}" is its
# API name. Sources: Outreach's "How to set up Multi-User Assignment with your CRM" (the Classic Plugin's
# field mapping menus, support.outreach.io article 7748909514523) and Salesloft's "Field Configuration
# Overview" (field configuration covers Salesforce Activity, support.salesloft.com article 115005895403).
# NOTE: neither vendor documents a Message-ID source field by that name, and no SendBloom documentation
# was found. The steps name the menus and leave the exact source field to the tool's own list.
MAPPING_STEPS: dict[str, list[str]] = {
    "Outreach": [
        "In Outreach, open Settings > CRM Plugin Settings (Classic Plugin) or CRM Sync settings.",
        "Under Types, open the Task object (the e-mails Outreach logs), then Object Settings > Fields.",
        "Click Add and pick {field} from the Salesforce Field list.",
        "As the Outreach field, pick the one that carries the e-mail's Message-ID header (its name "
        "differs by Outreach version), set it to send to Salesforce, and Save.",
        "Give the Outreach user Read and Edit on {field} (the Integration user step checks it).",
    ],
    "SalesLoft": [
        "In SalesLoft, open the CRM Sync admin settings, then Field Configuration.",
        "Choose the Activity field mappings (Salesforce Tasks).",
        "Map the SalesLoft field that carries the e-mail's Message-ID header (its name differs by "
        "SalesLoft version) to {field}, in the direction SalesLoft to Salesforce.",
        "SalesLoft maps only fields its users may edit: give them Read and Edit on {field}.",
    ],
    "SendBloom": [
        "SendBloom's menus were not checked for this guide: find where its Salesforce integration "
        "maps fields of the Tasks it logs.",
        "Map the e-mail's Message-ID header to {field} on those Tasks.",
        "Give the SendBloom user Read and Edit on {field}.",
    ],
}

# Why each problem matters, in the words the step's reason and the page use.
# NOTE: the claim that Backstory writes the key with its angle brackets follows the canonical form of
# core.message_id, which is the Message-ID header as sent. Backstory's own documentation was not checked.
WHY_KEYS = (
    "Backstory's upsert finds a Task only by the key with its angle brackets, so the e-mails of "
    "these Tasks get logged twice."
)
WHY_CALLS = (
    "Backstory counts a Task as a call only with TaskSubtype Call, so these calls, unanswered ones "
    "among them, are missed; the tool must set it when it creates the Task, because Salesforce "
    "does not let TaskSubtype change later."
)


def mapping_steps(tool: str, field_api_name: str) -> list[str]:
    """Return the steps to map the Message-ID in ``tool``, naming the key field."""
    return [step.format(field=field_api_name) for step in MAPPING_STEPS[tool]]


def record_cadence_tools(
    run: EnablementRun, users: dict[str, list[str]], *, profiles_file: Path | None = None
) -> StepResult:
    """Check that each tool's usernames exist in the org and save them in the org profile.

    Usernames the org does not have are dropped and named in the reason.
    Inactive users are kept but named, because a tool cannot log Tasks as
    them until they are active. Raises ValueError for a tool that is not in CADENCE_TOOLS.
    ``profiles_file`` defaults to the profiles file in the config folder.
    """
    return _check_tools(run, users, save=True, profiles_file=profiles_file)


def check_saved_cadence_tools(run: EnablementRun) -> StepResult:
    """Check the tools' users the org profile already names against the org, and record the step.

    Nothing is saved: a new session with saved tools passes the step without the admin
    saving them again. Users the org no longer has are named in the reason.
    """
    return _check_tools(run, run.profile.cadence_users, save=False)


def _check_tools(
    run: EnablementRun, users: dict[str, list[str]], *, save: bool, profiles_file: Path | None = None
) -> StepResult:
    unknown = sorted(set(users) - set(CADENCE_TOOLS))
    if unknown:
        raise ValueError(f"unknown cadence tool {unknown[0]!r}: use one of {', '.join(CADENCE_TOOLS)}")
    wanted = {tool: _clean(users.get(tool, [])) for tool in CADENCE_TOOLS if _clean(users.get(tool, []))}
    named = [name for names in wanted.values() for name in names]
    try:
        found = users_by_username(run.require_connection(), named)
    except Exception as error:
        return record_result(run, failed_result(Step.CADENCE_TOOLS, error))

    kept: dict[str, list[str]] = {}
    missing: list[str] = []
    inactive: list[str] = []
    for tool, names in wanted.items():
        for name in names:
            user = found.get(name.casefold())
            if user is None:
                missing.append(f"{name} ({tool})")
                continue
            kept.setdefault(tool, []).append(user.username)
            if not user.is_active:
                inactive.append(f"{user.username} ({tool})")

    if save:
        run.profile.cadence_users = kept
        try:
            save_profile(run.profile, profiles_file)
        except (OSError, ProfilesFileError) as error:
            reason = f"The cadence tool users could not be saved in the org profile: {error}"
            return record_result(run, StepResult(Step.CADENCE_TOOLS, StepStatus.FAILED, reason))
    details: dict[str, Any] = {"tools": kept, "missing": missing, "inactive": inactive,
                               "profile": run.profile.alias}
    status = StepStatus.PASSED if kept else StepStatus.FAILED
    return record_result(run, StepResult(Step.CADENCE_TOOLS, status, _tools_reason(kept, missing, inactive),
                                         details))


def _clean(usernames: list[str]) -> list[str]:
    """Strip the usernames and drop empty ones and repeats, keeping their order."""
    return list(dict.fromkeys(name.strip() for name in usernames if name.strip()))


def _tools_reason(kept: dict[str, list[str]], missing: list[str], inactive: list[str]) -> str:
    if kept:
        parts = [f"{tool} logs as {', '.join(names)}" for tool, names in kept.items()]
        sentences = ["; ".join(parts) + "; saved in the org profile."]
    else:
        sentences = ["No cadence tool has a user in this org: tick the tools the org uses and pick "
                     "the users they log Tasks as."]
    if missing:
        sentences.append(f"Not found in this org, so left out: {', '.join(missing)}; check the spelling.")
    if inactive:
        sentences.append(f"Inactive, so the tool cannot log Tasks as them: {', '.join(inactive)}; "
                         "activate them or pick the users the tools log as now.")
    return " ".join(sentences)


def check_coverage(
    run: EnablementRun,
    *,
    days: int,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    profiles_file: Path | None = None,
    save_window: bool = True,
) -> StepResult:
    """Check the keys on the Tasks each cadence tool created, and the calls without TaskSubtype Call.

    Looks at the Tasks created in the last ``days`` days (1 to 365) and, unless
    ``save_window`` is False, saves ``days`` in the org profile. Fails when a tool's Tasks lack keys or carry
    keys not in canonical form, or when calls lack TaskSubtype Call. Raises
    ValueError for a window outside 1 to 365 days, and Cancelled when
    ``cancel`` is set.
    """
    check_days(days)
    connection = run.require_connection()
    field_state = require_field(run)
    if not field_state.exists or not field_state.visible_in_describe:
        reason = (f"The field {field_state.api_name} is missing or hidden from this user, so the "
                  "cadence tools' keys cannot be read: finish the Message-ID field step first.")
        return record_result(run, StepResult(Step.CADENCE_MAPPING, StepStatus.FAILED, reason))
    try:
        users_by_tool, missing = _cadence_users(run)
        coverages = key_coverage(connection, field_state.api_name, users_by_tool, days,
                                 case_sensitive=bool(field_state.case_sensitive),
                                 progress=progress, cancel=cancel)
        calls = unmarked_calls(connection, days, progress=progress, cancel=cancel)
    except Exception as error:
        return record_result(run, failed_result(Step.CADENCE_MAPPING, error))

    run.profile.coverage_days = days
    saved = _save_days(run, profiles_file) if save_window else ""
    inactive = {tool: [user.username for user in users if not user.is_active]
                for tool, users in users_by_tool.items()}
    reasons = {
        coverage.tool: tool_reason(coverage, days, missing=missing.get(coverage.tool, []),
                                   inactive=inactive.get(coverage.tool, []))
        for coverage in coverages
    }
    details: dict[str, Any] = {
        "days": days,
        "field": field_state.api_name,
        "tools": [
            {**coverage.as_json(), "missing": missing.get(coverage.tool, []),
             "reason": reasons[coverage.tool]}
            for coverage in coverages
        ],
        "calls": [user.as_json() for user in calls],
        "calls_reason": calls_reason(calls, days),
        "why_keys": WHY_KEYS,
        "why_calls": WHY_CALLS,
    }
    failed = bool(key_gaps(coverages) or calls)
    reason = _coverage_reason(coverages, reasons, calls, days)
    if saved:
        reason += " " + saved
    status = StepStatus.FAILED if failed else StepStatus.PASSED
    return record_result(run, StepResult(Step.CADENCE_MAPPING, status, reason, details))


def key_gaps(coverages: list[ToolCoverage]) -> list[ToolCoverage]:
    """Return the tools whose keys fail the check: some not canonical, or no e-mail Task to judge them by.

    A tool that logged no e-mail Task in the window proves nothing about its mapping, so it
    does not pass.
    """
    return [coverage for coverage in coverages if not coverage.tasks or coverage.canonical < coverage.tasks]


def _cadence_users(run: EnablementRun) -> tuple[dict[str, list[UserRef]], dict[str, list[str]]]:
    """Look up the users the org profile names for each tool.

    Returns the users found per tool and, per tool, the names no longer in the org.
    """
    named = run.profile.cadence_users
    found = users_by_username(run.require_connection(), (name for names in named.values() for name in names))
    tools = [tool for tool in CADENCE_TOOLS if named.get(tool)]
    users = {tool: [found[name.casefold()] for name in named[tool] if name.casefold() in found]
             for tool in tools}
    missing = {tool: [name for name in named[tool] if name.casefold() not in found] for tool in tools}
    return users, {tool: names for tool, names in missing.items() if names}


def _save_days(run: EnablementRun, profiles_file: Path | None) -> str:
    """Save the window in the org profile; return a sentence when that failed, else ""."""
    try:
        save_profile(run.profile, profiles_file)
    except (OSError, ProfilesFileError) as error:
        log.warning("could not save the coverage window in the org profile: %s", error)
        days = run.profile.coverage_days
        return f"The window of {days} days could not be saved in the org profile: {error}"
    return ""


def tool_reason(
    coverage: ToolCoverage, days: int, *, missing: list[str] | None = None, inactive: list[str] | None = None
) -> str:
    """Return one tool's numbers as a sentence that names what to fix.

    ``missing`` names the tool's users the org no longer has, ``inactive`` those it has inactive.
    """
    tool = coverage.tool
    notes = []
    if missing:
        notes.append(f"Not in this org: {', '.join(missing)}.")
    if inactive:
        notes.append(f"Inactive, so {tool} cannot log Tasks as them: {', '.join(inactive)}.")
    if coverage.tasks == 0:
        if not coverage.usernames:
            return (f"None of the users named for {tool} is in this org ({', '.join(missing or [])}), so "
                    f"none of its Tasks could be checked: name the users {tool} logs as in the Cadence "
                    "tools step.")
        return " ".join([
            f"{tool} logged no e-mail Tasks in the last {days} days, which proves nothing about its "
            f"mapping: check that it logs as the users named in the Cadence tools step, or look back "
            "further.",
            *notes,
        ])
    sentence = (f"{tool}: {coverage.with_key} of {count_phrase(coverage.tasks, 'e-mail Task')} "
                f"({percent(coverage.with_key, coverage.tasks)}%) have a key, "
                f"{coverage.canonical} in canonical form.")
    tool = coverage.tool
    fixes = []
    if coverage.without_key:
        fixes.append(f"{coverage.without_key} without a key: map the Message-ID to the field in {tool}")
    if coverage.without_brackets:
        fixes.append(f"{coverage.without_brackets} without angle brackets: map the whole Message-ID header "
                     "value, brackets included")
    if coverage.not_canonical:
        fixes.append(f"{coverage.not_canonical} in another form (spaces, comments or more than one id): "
                     "map the Message-ID header itself")
    if coverage.unusable:
        fixes.append(f"{coverage.unusable} that are no Message-ID at all: check which value {tool} maps")
    return " ".join([sentence + (" " + "; ".join(fixes) + "." if fixes else ""), *notes])


def calls_reason(calls: list[UserCalls], days: int) -> str:
    """Return a sentence on the calls logged without TaskSubtype Call, or that there are none."""
    if not calls:
        return f"Every call logged in the last {days} days has TaskSubtype Call."
    total = sum(user.count for user in calls)
    return (f"{count_phrase(total, 'call')} logged in the last {days} days "
            f"{'lacks' if total == 1 else 'lack'} TaskSubtype Call, "
            f"owned by {count_phrase(len(calls), 'user')}. {WHY_CALLS}")


def _coverage_reason(coverages: list[ToolCoverage], reasons: dict[str, str], calls: list[UserCalls],
                     days: int) -> str:
    sentences = []
    if not coverages:
        sentences.append("No cadence tool users are named, so only the calls were checked; name them in "
                         "the Cadence tools step.")
    canonical = [coverage.tool for coverage in coverages
                 if coverage.tasks and coverage.canonical == coverage.tasks]
    short = [coverage for coverage in coverages if coverage.tasks and coverage.canonical < coverage.tasks]
    silent = [coverage for coverage in coverages if not coverage.tasks]
    if canonical:
        sentences.append(f"Every e-mail Task {', '.join(canonical)} logged in the last {days} days has its "
                         "key in canonical form.")
    sentences.extend(reasons[coverage.tool] for coverage in short)
    if short:
        sentences.append(WHY_KEYS)
    sentences.extend(reasons[coverage.tool] for coverage in silent)
    sentences.append(calls_reason(calls, days))
    return " ".join(sentences)
