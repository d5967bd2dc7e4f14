"""The scripted rehearsal: every enablement step on a practice org, without a window.

It names the practice org's Outreach user as the cadence tool's user, takes
the fixes the wizard offers (create the Message-ID field, grant the
integration user access to it), checks the cadence tool's keys and the calls
over the last 30 days, and reports each step's outcome, the sync counts and the
duplicate groups as one JSON-ready dictionary.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from backstory_desktop import enablement
from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup
from backstory_desktop.enablement.run import record_result
from backstory_desktop.practice_org.seed import OUTREACH_USERNAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.access import AccessReport
from backstory_desktop.sources.base import SourceError
from backstory_desktop.store.journal import JOURNAL_FILE, Journal
from backstory_desktop.store.settings import DEFAULT_COVERAGE_DAYS, OrgProfile

log = logging.getLogger(__name__)


def run_rehearsal(
    *, db_path: Path | None = None, mailbox: Path | None = None, scenario: str = "default"
) -> dict[str, Any]:
    """Run every step on a practice org and return the report.

    A fresh practice org is made in a temporary folder unless ``db_path``
    names a file; an existing file is used as it is, so a second run shows
    what the first one left behind.
    """
    mailbox = mailbox or sample_mailbox_path()
    if db_path is None:
        with tempfile.TemporaryDirectory(prefix="backstory-rehearsal-") as folder:
            return _rehearse(Path(folder) / "practice-org.sqlite3", mailbox, scenario)
    return _rehearse(db_path, mailbox, scenario)


def _rehearse(db_path: Path, mailbox: Path, scenario: str) -> dict[str, Any]:
    profile = OrgProfile(alias="practice", kind="practice", practice_db=str(db_path))
    run = enablement.EnablementRun(profile)
    with (
        PracticeOrg(db_path, scenario=scenario) as practice_org,
        closing(_journal_beside(db_path)) as journal,
    ):
        run.journal = journal
        if enablement.connect(run, practice_org).status is StepStatus.PASSED:
            _cadence_tools_step(run)
            _field_step(run)
            if run.checklist.can_leave(Step.MESSAGE_ID_FIELD):
                _integration_user_step(run, practice_org.integration_username)
                _setting_step(run)
                _cadence_mapping_step(run)
                _sync_step(run, mailbox)
            _conflicts_step(run)
        _skip_steps_not_run(run)
        enablement.summarise(run)
        # An existing database keeps the scenario it was seeded with, whatever was asked for.
        return {**_report(run, db_path, mailbox), "scenario": practice_org.scenario}


def _journal_beside(db_path: Path) -> Journal:
    """Open a sync journal beside the practice org, so that a rehearsal leaves the admin's own alone."""
    return Journal.open(db_path.with_name(db_path.name + ".sync") / JOURNAL_FILE)


def _profiles_file(run: enablement.EnablementRun) -> Path:
    """Return the rehearsal's profiles file, beside the practice org and away from the admin's own."""
    return Path(run.profile.practice_db).with_suffix(".profiles.toml")


def _cadence_tools_step(run: enablement.EnablementRun) -> None:
    # The practice org's cadence tool logs as its Outreach user.
    enablement.record_cadence_tools(run, {"Outreach": [OUTREACH_USERNAME]}, profiles_file=_profiles_file(run))


def _cadence_mapping_step(run: enablement.EnablementRun) -> None:
    enablement.check_coverage(run, days=DEFAULT_COVERAGE_DAYS, profiles_file=_profiles_file(run))


def _field_step(run: enablement.EnablementRun) -> None:
    result = enablement.check_field(run)
    state = run.field_state
    if result.status is not StepStatus.FAILED or state is None:
        return
    if not state.exists and not state.definition_readable:
        return  # This user cannot tell a missing field from a hidden one.
    if not state.exists:
        log.info("Message-ID field missing: creating it as the wizard offers")
        enablement.create_field(run, case_sensitive=True)
    elif not state.visible_in_describe:
        # What a create cut short before its access grant leaves behind.
        log.info("Message-ID field hidden from this user: finishing its setup as the wizard offers")
        enablement.create_field(run, case_sensitive=bool(state.case_sensitive))


def _integration_user_step(run: enablement.EnablementRun, username: str) -> None:
    result = enablement.check_integration_user(run, username)
    if result.status is not StepStatus.FAILED or run.access is None:
        return
    changes_before = len(run.changes)
    if _field_access_missing(run, run.access):
        log.info("integration user lacks the field: granting it as the wizard offers")
        enablement.apply_access_fix(run)
    for cadence_username, report in list(run.cadence_access.items()):
        if _field_access_missing(run, report):
            log.info("cadence tool user %s lacks the field: granting it as the wizard offers",
                     cadence_username)
            enablement.apply_access_fix(run, enablement.plan_access_fix(run, username=cadence_username))
    grants = [change for change in run.changes[changes_before:] if change.step is Step.INTEGRATION_USER]
    if len(grants) > 1:
        _name_every_grant(run, username, [change.summary for change in grants])


def _name_every_grant(run: enablement.EnablementRun, username: str, summaries: list[str]) -> None:
    """Check the users again and name every grant in the step's reason, not only the last one."""
    last = run.checklist.results[Step.INTEGRATION_USER]
    result = enablement.check_integration_user(run, username)
    reason = " ".join([result.reason, *(f"{summary}." for summary in summaries)])
    details = {**result.details, "granted": last.details.get("granted"), "grants": summaries}
    record_result(run, StepResult(Step.INTEGRATION_USER, result.status, reason, details))


def _field_access_missing(run: enablement.EnablementRun, report: AccessReport) -> bool:
    """Tell whether the report's failed lines include the field-level security the wizard can grant."""
    assert run.field_state is not None
    field_name = run.field_state.api_name
    return any(line.required and not line.granted and field_name in line.name for line in report.lines)


def _setting_step(run: enablement.EnablementRun) -> None:
    # A rehearsal has no Backstory tenant to type the value into, so the
    # script confirms it, and the result names the script as the confirmer.
    enablement.record_backstory_setting(
        run, confirmed=True, confirmed_by="the rehearsal script", profiles_file=_profiles_file(run)
    )


def _sync_step(run: enablement.EnablementRun, mailbox: Path) -> None:
    try:
        enablement.plan_sync(run, mailbox)
    except SourceError as error:
        run.checklist.record(StepResult(Step.LOCAL_SYNC, StepStatus.FAILED, str(error)))
        return
    enablement.apply_sync(run)


def _conflicts_step(run: enablement.EnablementRun) -> None:
    # Duplicates matter most when the field is not ready (not Unique, say),
    # so the scan runs whenever the field exists and this session can read it.
    state = run.field_state
    if state is None or not state.exists or not state.visible_in_describe:
        return
    enablement.scan_conflicts(run)


def _skip_steps_not_run(run: enablement.EnablementRun) -> None:
    for step in Step:
        if step is not Step.SUMMARY and run.checklist.status(step) is None:
            reason = "not run because an earlier step failed"
            run.checklist.record(StepResult(step, StepStatus.SKIPPED, reason))


def _report(run: enablement.EnablementRun, db_path: Path, mailbox: Path) -> dict[str, Any]:
    steps = [run.checklist.results[step].as_json() for step in Step if step in run.checklist.results]
    return {
        "practice_org": str(db_path),
        "mailbox": str(mailbox),
        "passed": run.checklist.status(Step.SUMMARY) is StepStatus.PASSED,
        "steps": steps,
        "sync": _sync_counts(run),
        "open_items": enablement.open_work(run),
        "changes": [change.as_json() for change in run.changes],
        "duplicate_groups": [_group_json(group) for group in run.groups],
    }


def _sync_counts(run: enablement.EnablementRun) -> dict[str, int]:
    counts = run.plan.counts() if run.plan else {}
    result = run.sync_result
    return {
        "created": result.created if result else 0,
        "updated": result.updated if result else 0,
        "failed": result.failed if result else 0,
        "conflicts": counts.get("conflict", 0),
        "invalid": counts.get("invalid", 0),
        "excluded": counts.get("excluded", 0),
    }


def _group_json(group: DuplicateGroup) -> dict[str, Any]:
    return {
        "group_id": group.group_id,
        "kind": group.kind.value,
        "flagged": group.flagged,
        "key": group.key,
        "reason": group.reason,
        "survivor_id": group.survivor_id,
        "survivor_reason": group.survivor_reason,
        "records": [
            {
                "id": record.id,
                "key": record.key,
                "writer": record.writer,
                "deleted": record.is_deleted,
                "archived": record.is_archived,
            }
            for record in group.records
        ],
    }
