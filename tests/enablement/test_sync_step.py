"""The local sync step's change log and outcome sentence, on the practice org."""

from __future__ import annotations

import threading
from pathlib import Path

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync.settings import SyncSettings
from tests.sync.mailboxes import write_mbox

QUICK = SyncSettings(first_retry_seconds=0.01, max_retry_seconds=0.05)


def _planned(admin: OrgConnection, mailbox: Path) -> tuple[enablement.EnablementRun, str]:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    run_id = enablement.plan_sync(run, mailbox).run_id
    assert run_id is not None
    return run, run_id


def test_retry__change_log_keeps_confirmed_lines(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = _planned(admin, write_mbox(tmp_path / "a.mbox", 4, "retry-log"))
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)
    queued = enablement.apply_sync(run, settings=QUICK)
    assert queued.details["queued"] == 4
    default_org.faults = FaultPlan()

    step = enablement.retry_backfill(run, run_id, confirmed_lines=["send again 4 queued records"])

    assert step.status is StepStatus.PASSED, step.reason
    assert run.changes[-1].lines == ("send again 4 queued records",)


def test_resume__change_log_keeps_confirmed_lines(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = _planned(admin, write_mbox(tmp_path / "a.mbox", 3, "resume-log"))

    step = enablement.resume_sync(run, run_id, confirmed_lines=["+ send the 3 items not written yet"])

    assert step.status is StepStatus.PASSED, step.reason
    assert run.changes[-1].lines == ("+ send the 3 items not written yet",)


def test_apply__change_log_keeps_plan_counts(admin: OrgConnection, tmp_path: Path) -> None:
    run, _ = _planned(admin, write_mbox(tmp_path / "a.mbox", 2, "apply-log"))

    enablement.apply_sync(run)

    assert run.changes[-1].lines == ("+ create 2 Tasks", "~ update 0 Tasks")


def test_stopped_sync__reason_leads_with_stop(admin: OrgConnection, tmp_path: Path) -> None:
    run, run_id = _planned(admin, write_mbox(tmp_path / "a.mbox", 3, "stopped"))
    cancel = threading.Event()
    cancel.set()

    step = enablement.resume_sync(run, run_id, cancel=cancel)

    assert step.status is StepStatus.FAILED
    expected = "The sync stopped before the end: Cancelled by the user. Rows not sent: 3. Created 0, "
    assert step.reason.startswith(expected), step.reason


def test_stopped_sync__change_summary_leads_with_stop(
    default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path
) -> None:
    run, run_id = _planned(admin, write_mbox(tmp_path / "a.mbox", 250, "limit"))

    def progress(done: int, total: int, message: str) -> None:
        # The daily API allowance ends after the first call of 200 records.
        if message.startswith("Sent 200 of"):
            default_org.daily_api_limit = default_org.request_count + 1

    step = enablement.resume_sync(run, run_id, settings=QUICK, progress=progress)

    assert step.status is StepStatus.FAILED
    summary = run.changes[-1].summary
    before, _, stop_sentence = summary.partition(" The sync stopped before the end: ")
    assert before.endswith("failed 0."), summary
    assert stop_sentence[:1].isupper(), summary
    assert stop_sentence.endswith("."), summary


def test_outcome__zero_counts_left_out(admin: OrgConnection, tmp_path: Path) -> None:
    run, _ = _planned(admin, write_mbox(tmp_path / "a.mbox", 3, "zero-counts"))

    step = enablement.apply_sync(run)

    assert step.status is StepStatus.PASSED, step.reason
    assert step.reason.startswith("Created 3, updated 0, failed 0.")
    assert "not sent" not in step.reason
