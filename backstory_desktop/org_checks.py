"""The ``check`` command: read-only checks of a saved org, printed as text, JSON or HTML.

The org is opened as its profile specifies: the built-in practice org is started from its
database and signed in to as its admin; any other org resumes its saved sign-in and
never opens a browser. Only checks run, so nothing is written to the org. The
Message-ID field is inspected first, because the access and coverage checks need it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from backstory_desktop import enablement
from backstory_desktop.cli_common import (
    CHECK_FAILED_STATUS,
    SIGN_IN_NEEDED_STATUS,
    USAGE_ERROR_STATUS,
    saved_profile,
)
from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, failed_result, record_result
from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
from backstory_desktop.practice_org.seed import INTEGRATION_USERNAME, OUTREACH_USERNAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.report import NOT_RUN, report_html, report_json
from backstory_desktop.salesforce.errors import SignInRequired
from backstory_desktop.store.paths import ensure_private_dir, practice_org_db
from backstory_desktop.store.secrets import SecretsLocked
from backstory_desktop.store.settings import (
    PRACTICE_PROFILE_ALIAS,
    OrgProfile,
    ProfilesFileError,
    load_profiles,
)

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
    """The outcome of one check as the command prints it."""

    name: str
    title: str
    status: str
    reason: str


def run_checks(args: argparse.Namespace) -> int:
    """Run the checks ``args.check`` names on the org ``args.org``, print them, and return the exit status."""
    profile = _check_profile(args.org)
    if profile is None:
        return USAGE_ERROR_STATUS
    username = args.user or profile.integration_username
    if Step.INTEGRATION_USER in _CHECK_STEPS[args.check] and not username:
        print(f"No integration user is saved in the org profile {profile.alias}, so name it with "
              "--user USERNAME.", file=sys.stderr)
        return USAGE_ERROR_STATUS
    days = args.days or profile.coverage_days

    run = EnablementRun(profile)
    with ExitStack() as stack:
        status = _open_org(run, stack)
        if status is not None:
            return status
        if run.checklist.status(Step.CONNECT) is StepStatus.PASSED:
            _run_steps(run, args.check, username, days)

    lines = check_lines(run, args.check)
    passed = all(line.status == StepStatus.PASSED.value for line in lines)
    _print_outcome(run, args, lines, passed)
    if args.html is not None and not _write_html(run, args.html):
        return USAGE_ERROR_STATUS
    if _sign_in_ended(run):
        return SIGN_IN_NEEDED_STATUS
    return 0 if passed else CHECK_FAILED_STATUS


def _check_profile(alias: str) -> OrgProfile | None:
    """Return the profile to check; the built-in practice org needs no saved one."""
    if alias != PRACTICE_PROFILE_ALIAS:
        return saved_profile(alias, built_in=PRACTICE_PROFILE_ALIAS)
    try:
        saved = load_profiles().get(alias)
    except (ProfilesFileError, OSError) as error:
        print(error, file=sys.stderr)
        return None
    profile = saved or OrgProfile(alias=alias, kind="practice")
    # The built-in practice org's users are known, so its checks need no saved names.
    if not profile.integration_username:
        profile.integration_username = INTEGRATION_USERNAME
    if not profile.cadence_users:
        profile.cadence_users = {"Outreach": [OUTREACH_USERNAME]}
    return profile


def _open_org(run: EnablementRun, stack: ExitStack) -> int | None:
    """Connect ``run`` to its org; return an exit status when the command must stop, else None.

    A practice org started here is stopped when ``stack`` closes.
    """
    profile = run.profile
    if profile.kind == "practice":
        db_path = Path(profile.practice_db) if profile.practice_db else practice_org_db()
        try:
            ensure_private_dir(db_path.parent)
            practice_org = stack.enter_context(PracticeOrg(db_path))
        except (PracticeOrgDatabaseError, OSError) as error:
            print(error, file=sys.stderr)
            return USAGE_ERROR_STATUS
        enablement.connect(run, practice_org)
        return None

    from backstory_desktop.org_sessions import resume_session, secret_store

    try:
        connection = resume_session(profile, secret_store(), save_profile=False)
    except SignInRequired as error:
        print(f"The saved sign-in of {profile.alias} could not be resumed ({error.reason}), so sign in "
              "again in the app.", file=sys.stderr)
        return SIGN_IN_NEEDED_STATUS
    except SecretsLocked as error:
        print(error, file=sys.stderr)
        return SIGN_IN_NEEDED_STATUS
    except Exception as error:
        record_result(run, failed_result(Step.CONNECT, error))
        return None
    enablement.use_connection(run, connection)
    return None


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
    """Return one line per check that ``check`` runs, Connect first."""
    lines = []
    for name in _CHECK_LINES[check]:
        status, reason = _line_outcome(run, name)
        lines.append(CheckLine(name, _LINE_TITLES[name], status, reason))
    return lines


def _line_outcome(run: EnablementRun, name: str) -> tuple[str, str]:
    results = run.checklist.results
    step = {"connect": Step.CONNECT, "field": Step.MESSAGE_ID_FIELD, "access": Step.INTEGRATION_USER}.get(
        name, Step.CADENCE_MAPPING
    )
    result = results.get(step)
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
    """Judge the keys on the cadence tools' Tasks alone; calls are a check of their own."""
    tools = result.details["tools"]
    if not tools:
        return _status(True), (
            f"No cadence tool users are saved in the org profile {run.profile.alias}, so no tool's "
            "keys were checked: name them on the app's Cadence tools page."
        )
    gaps = [tool for tool in tools if tool.get("tasks") and tool.get("canonical", 0) < tool["tasks"]]
    return _status(bool(gaps)), " ".join(str(tool.get("reason", "")) for tool in tools)


def _status(failed: bool) -> str:
    return (StepStatus.FAILED if failed else StepStatus.PASSED).value


def _print_outcome(
    run: EnablementRun, args: argparse.Namespace, lines: list[CheckLine], passed: bool
) -> None:
    if args.json:
        report = report_json(run, only_run=True)
        report.update(check=args.check, passed=passed, results=[asdict(line) for line in lines])
        print(json.dumps(report, indent=2, default=str))
        return
    for line in lines:
        print(f"{line.status:>8}  {line.title}: {line.reason}")
    open_items = enablement.open_work(run)
    if open_items:
        print("\nWhat remains:")
        for item in open_items:
            print(f"- {item}")


def _write_html(run: EnablementRun, path: Path) -> bool:
    """Write the HTML report; print why not and return False when the file cannot be written."""
    try:
        path.write_text(report_html(run, only_run=True), encoding="utf-8")
    except OSError as error:
        print(f"Cannot write the report to {path} ({error.strerror or error}), so choose another "
              "--html file.", file=sys.stderr)
        return False
    log.info("check report written to %s", path)
    return True


def _sign_in_ended(run: EnablementRun) -> bool:
    results = run.checklist.results.values()
    return any(result.details.get("error_code") == SignInRequired.ERROR_CODE for result in results)
