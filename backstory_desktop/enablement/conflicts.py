"""The Conflicts step: find the Tasks that share a Message-ID key."""

from __future__ import annotations

import logging
import threading

from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.core.duplicates import group_duplicates
from backstory_desktop.core.jobs import ProgressCallback, no_progress
from backstory_desktop.enablement.run import (
    EnablementRun,
    count_phrase,
    failed_result,
    record_result,
    require_field,
    usable_flag_field,
)
from backstory_desktop.salesforce.tasks import scan_tasks

log = logging.getLogger(__name__)


def scan_conflicts(
    run: EnablementRun,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> StepResult:
    """Read every keyed Task, deleted and archived included, and group those sharing a key."""
    connection = run.require_connection()
    field_state = require_field(run)
    try:
        records = scan_tasks(
            connection,
            field_state.api_name,
            flag_field=usable_flag_field(run),
            progress=progress,
            cancel=cancel,
        )
        run.groups = group_duplicates(records, case_sensitive=bool(field_state.case_sensitive))
    except Exception as error:
        return record_result(run, failed_result(Step.CONFLICTS, error))
    by_kind: dict[str, int] = {}
    for group in run.groups:
        by_kind[group.kind.value] = by_kind.get(group.kind.value, 0) + 1
    reason = f"Found {count_phrase(len(run.groups), 'group')} of Tasks that share a Message-ID key."
    details = {"groups": len(run.groups), "by_kind": by_kind}
    return record_result(run, StepResult(Step.CONFLICTS, StepStatus.PASSED, reason, details))
