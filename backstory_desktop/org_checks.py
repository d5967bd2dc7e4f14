"""The ``check`` command: read-only checks of a saved org, printed as text, JSON or HTML.

The org is opened as its profile specifies. The built-in practice org is started from its
database (--db, else the profile's, else the app's own) and signed in to as its admin. Any
other org resumes its saved sign-in and never opens a browser. Only checks run, so nothing
is written to the org. The Message-ID field is inspected first, because the access and
coverage checks need it.

Text, JSON and HTML list the same checks under the same names (connect, field, access,
coverage, calls) and the work those checks leave, nothing more.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backstory_desktop import enablement
from backstory_desktop.cli_common import (
    CHECK_FAILED_STATUS,
    SIGN_IN_NEEDED_STATUS,
    USAGE_ERROR_STATUS,
    CommandStop,
    command_profile,
    practice_db,
    resume_saved_session,
    start_practice_org,
)
from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, failed_result, record_result
from backstory_desktop.enablement.summary import calls_work, key_work, open_work
from backstory_desktop.practice_org.seed import INTEGRATION_USERNAME, OUTREACH_USERNAME
from backstory_desktop.report import NOT_RUN, report_html, report_json
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.store.settings import PRACTICE_PROFILE_ALIAS, OrgProfile

log = logging.getLogger(__name__)

# The steps each check needs, besides Connect; "all" needs every one.
_CHECK_STEPS = {
    "field": (Step.MESSAGE_ID_FIELD,),
    "access": (Step.MESSAGE_ID_FIELD, Step.INTEGRATION_USER),
    "coverage": (Step.MESSAGE_ID_FIELD, Step.CADENCE_MAPPING),
    "calls": (Step.MESSAGE_ID_FIELD, Step.CADENCE_MAPPING),
    "all": (Step.MESSAGE_ID_FIELD, Step.INTEGRATION_USER, Step.CADENCE_MAPPING),
}
# The lines printed for each check, in order.
_CHECK_LINES = {
    "field": ("connect", "field"),
    "access": ("connect", "field", "access"),
    "coverage": ("connect", "field", "coverage"),
    "calls": ("connect", "field", "calls"),
    "all": ("connect", "field", "access", "coverage", "calls"),
}
_LINE_TITLES = {
    "connect": STEP_TITLES[Step.CONNECT],
    "field": STEP_TITLES[Step.MESSAGE_ID_FIELD],
    "access": STEP_TITLES[Step.INTEGRATION_USER],
    "coverage": "Cadence tools' keys",
    "calls": "Calls without TaskSubtype",
}


@dataclass(frozen=True)
class CheckLine:
    """The outcome of one check as the command prints it, with the evidence it rests on."""

    name: str
    title: str
    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def run_checks(args: argparse.Namespace) -> int:
    """Run the checks ``args.check`` names on the org ``args.org``, print them, and return the exit status.

    When the command stops early, the sentence goes to stderr and, with ``--json``, an object
    with ``passed`` false, the ``error`` and the ``exit_status`` to stdout, as for any other run.
    """
    try:
        return _run_checks(args)
    except CommandStop as stop:
        print(stop.message, file=sys.stderr)
        if args.json:
            print(json.dumps({"check": args.check, "passed": False, "error": stop.message,
                              "exit_status": stop.status}, indent=2))
        return stop.status


def _run_checks(args: argparse.Namespace) -> int:
    profile = _check_profile(args.org)
    username = _user_option(args.user) or profile.integration_username
    if Step.INTEGRATION_USER in _CHECK_STEPS[args.check] and not username:
        raise CommandStop(USAGE_ERROR_STATUS, f"No integration user is saved in the org profile "
                                              f"{profile.alias}, so name it with --user USERNAME.")
    html_path = _html_option(args.html)
    db_path = practice_db(profile, args.db)
    days = args.days or profile.coverage_days

    run = EnablementRun(profile)
    with ExitStack() as stack:
        scenario = _open_org(run, stack, db_path)
        if run.checklist.status(Step.CONNECT) is StepStatus.PASSED:
            _run_steps(run, args.check, username, days)

    lines = check_lines(run, args.check)
    open_items = check_work(run, args.check, lines)
    checks = [asdict(line) for line in lines]
    passed = all(line.status == StepStatus.PASSED.value for line in lines)
    _print_outcome(run, args, checks, open_items, scenario)
    if html_path is not None and not _write_html(run, html_path, checks, open_items):
        return USAGE_ERROR_STATUS
    if _sign_in_ended(run):
        return SIGN_IN_NEEDED_STATUS
    return 0 if passed else CHECK_FAILED_STATUS


def _check_profile(alias: str) -> OrgProfile:
    """Return the profile to check; the built-in practice org needs no saved one."""
    profile = command_profile(alias)
    if alias == PRACTICE_PROFILE_ALIAS:
        # The built-in practice org's users are known, so its checks need no saved names.
        if not profile.integration_username:
            profile.integration_username = INTEGRATION_USERNAME
        if not profile.cadence_users:
            profile.cadence_users = {"Outreach": [OUTREACH_USERNAME]}
    return profile


def _user_option(user: str | None) -> str:
    """Return --user without surrounding spaces, "" when it was left out; an empty --user is an error."""
    if user is None:
        return ""
    if not user.strip():
        raise CommandStop(USAGE_ERROR_STATUS, "--user is empty, so give the integration user's Salesforce "
                                              "username or leave --user out to use the profile's.")
    return user.strip()


def _html_option(text: str | None) -> Path | None:
    """Return the --html file once it can be written: not empty, not a folder, in a writable folder."""
    if text is None:
        return None
    if not text.strip():
        raise CommandStop(USAGE_ERROR_STATUS, "--html is empty, so give a file name such as report.html.")
    path = Path(text)
    folder = path.parent
    if path.is_dir():
        reason = "it is a folder"
    elif not folder.is_dir():
        reason = f"its folder {folder} does not exist"
    elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        reason = "it is not writable"
    else:
        return path
    raise CommandStop(USAGE_ERROR_STATUS, f"Cannot write the report to {path} because {reason}, so choose "
                                          "another --html file.")


def _open_org(run: EnablementRun, stack: ExitStack, db_path: Path | None) -> str:
    """Connect ``run`` to its org; return the practice org's scenario, "" for another org.

    A practice org started here is stopped when ``stack`` closes. Raises CommandStop when the
    command cannot go on.
    """
    if db_path is not None:
        practice_org = start_practice_org(stack, db_path)
        enablement.connect(run, practice_org)
        return practice_org.scenario

    try:
        connection = resume_saved_session(run.profile)
    except CommandStop:
        raise
    except Exception as error:
        # Any other failure to connect is the Connect check's outcome, reported like the others.
        record_result(run, failed_result(Step.CONNECT, error))
        return ""
    enablement.use_connection(run, connection)
    return ""


def _run_steps(run: EnablementRun, check: str, username: str, days: int) -> None:
    """Run the read-only steps ``check`` needs, the Message-ID field first."""
    steps = _CHECK_STEPS[check]
    enablement.check_field(run)
    if run.field_state is None:
        _skip(run, steps, f"not run because the Message-ID field could not be checked: "
                          f"{run.checklist.results[Step.MESSAGE_ID_FIELD].reason}")
        return
    if Step.INTEGRATION_USER in steps:
        enablement.check_integration_user(run, username)
    if Step.CADENCE_MAPPING in steps:
        # The window given with --days is for this run only, so the profile keeps its own.
        enablement.check_coverage(run, days=days, cancel=threading.Event(), save_window=False)


def _skip(run: EnablementRun, steps: tuple[Step, ...], reason: str) -> None:
    for step in steps:
        if step not in run.checklist.results:
            record_result(run, StepResult(step, StepStatus.SKIPPED, reason))


def check_lines(run: EnablementRun, check: str) -> list[CheckLine]:
    """Return one line per check that ``check`` runs, Connect first, each with its evidence."""
    lines = []
    for name in _CHECK_LINES[check]:
        status, reason = _line_outcome(run, name)
        lines.append(CheckLine(name, _LINE_TITLES[name], status, reason, _line_details(run, name)))
    return lines


def _line_step(name: str) -> Step:
    return _LINE_STEPS.get(name, Step.CADENCE_MAPPING)


def _line_details(run: EnablementRun, name: str) -> dict[str, Any]:
    """Return the details of the step behind a line; coverage and calls each keep their own half."""
    result = run.checklist.results.get(_line_step(name))
    if result is None:
        return {}
    details = dict(result.details)
    if name == "coverage":
        return {key: value for key, value in details.items() if key not in _CALLS_KEYS}
    if name == "calls":
        return {key: value for key, value in details.items() if key in _CALLS_KEYS or key == "days"}
    return details


def _line_outcome(run: EnablementRun, name: str) -> tuple[str, str]:
    results = run.checklist.results
    result = results.get(_line_step(name))
    if result is None:
        connect = results.get(Step.CONNECT)
        why = f": {connect.reason}" if connect is not None and connect.status is StepStatus.FAILED else ""
        return NOT_RUN, f"not run because the org could not be reached{why}"
    if name == "coverage" and "tools" in result.details:
        return _coverage_outcome(run, result)
    if name == "calls" and "calls" in result.details:
        failed = bool(result.details["calls"])
        return _status(failed), str(result.details.get("calls_reason", result.reason))
    return result.status.value, result.reason


def _coverage_outcome(run: EnablementRun, result: StepResult) -> tuple[str, str]:
    """Judge the keys on the cadence tools' Tasks alone; calls are a check of their own.

    A tool that logged no e-mail Task in the window proves nothing, so it fails the check too.
    """
    tools = result.details["tools"]
    if not tools:
        return _status(True), (
            f"No cadence tool users are saved in the org profile {run.profile.alias}, so no tool's "
            "keys were checked: name them on the app's Cadence tools page."
        )
    gaps = [tool for tool in tools if not tool.get("tasks") or tool.get("canonical", 0) < tool["tasks"]]
    return _status(bool(gaps)), " ".join(str(tool.get("reason", "")) for tool in tools)


def _status(failed: bool) -> str:
    return (StepStatus.FAILED if failed else StepStatus.PASSED).value


def check_work(run: EnablementRun, check: str, lines: list[CheckLine]) -> list[str]:
    """List what remains from the checks ``check`` ran, and only those.

    ``all`` also lists the Backstory setting when the profile has no confirmation of it,
    because its report is the whole picture for a change ticket.
    """
    items: list[str] = []
    for line in lines:
        found = _LINE_WORK[line.name](run)
        if not found and line.status == StepStatus.FAILED.value:
            found = [f"{line.title}: {line.reason}"]
        items.extend(item for item in found if item not in items)
    if check == "all":
        items.extend(open_work(run, steps=[Step.BACKSTORY_SETTING]))
    return items


def _print_outcome(
    run: EnablementRun, args: argparse.Namespace, checks: list[dict[str, Any]], open_items: list[str],
    scenario: str,
) -> None:
    if args.json:
        report = report_json(run, checks=checks, open_items=open_items)
        if scenario:
            report["org"]["scenario"] = scenario
        report["check"] = args.check
        print(json.dumps(report, indent=2, default=str))
        return
    if scenario:
        print(f"Practice org database: {run.profile.practice_db} (seeded with the {scenario} scenario)")
    for check in checks:
        print(f"{check['status']:>8}  {check['title']}: {check['reason']}")
    if open_items:
        print("\nWhat remains:")
        for item in open_items:
            print(f"- {item}")


def _write_html(run: EnablementRun, path: Path, checks: list[dict[str, Any]], open_items: list[str]) -> bool:
    """Write the HTML report; print why not and return False when the file cannot be written."""
    try:
        path.write_text(report_html(run, checks=checks, open_items=open_items), encoding="utf-8")
    except OSError as error:
        print(f"Cannot write the report to {path} ({error.strerror or error}), so choose another "
              "--html file.", file=sys.stderr)
        return False
    log.info("check report written to %s", path)
    return True


def _sign_in_ended(run: EnablementRun) -> bool:
    results = run.checklist.results.values()
    return any(result.details.get("error_code") == SignInRequired.ERROR_CODE for result in results)


_LINE_STEPS = {"connect": Step.CONNECT, "field": Step.MESSAGE_ID_FIELD, "access": Step.INTEGRATION_USER}
# The Cadence-tool mapping details that belong to the calls check.
_CALLS_KEYS = {"calls", "calls_reason", "why_calls"}
_LINE_WORK: dict[str, Callable[[EnablementRun], list[str]]] = {
    "connect": lambda run: open_work(run, steps=[Step.CONNECT]),
    "field": lambda run: open_work(run, steps=[Step.MESSAGE_ID_FIELD]),
    "access": lambda run: open_work(run, steps=[Step.INTEGRATION_USER]),
    "coverage": key_work,
    "calls": calls_work,
}
