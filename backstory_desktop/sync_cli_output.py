"""The printed output of the ``sync`` command: the outcome in text or JSON, the rows not sent, progress.

A plan's rows that are not sent are grouped by their reason code (``ReasonCode``), so rows with
one cause share one line however their reasons name their own messages and Tasks.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from backstory_desktop.core.plan import ReasonCode
from backstory_desktop.core.plan import stored_spelling_advice as plan_advice

if TYPE_CHECKING:
    from backstory_desktop.core.plan import Plan, PlanRow
    from backstory_desktop.store.journal import Journal, RunSummary

# Rows that the plan does not send, listed in --json; the --plan-csv file has every row.
MAX_LISTED_ROWS = 1_000
# Source references shown in the text output for each reason code of the rows not sent.
LISTED_REFERENCES = 3
# The actions a plan is not sent for, in the order the text output lists them.
NOT_SENT_ACTIONS = ("conflict", "invalid", "excluded")
# The action of the rows of each reason code that is not sent.
NOT_SENT_REASON_ACTIONS: dict[ReasonCode, str] = {
    ReasonCode.SEVERAL_TASKS: "conflict",
    ReasonCode.RECYCLE_BIN: "conflict",
    ReasonCode.NO_KEY: "invalid",
    ReasonCode.UNREADABLE: "invalid",
    ReasonCode.UNKNOWN_REFERENCE: "invalid",
    ReasonCode.REPEATED_KEY: "excluded",
}
# The cause shared by the rows of each reason code, printed on the line over their references.
REASON_SUMMARIES: dict[ReasonCode, str] = {
    ReasonCode.SEVERAL_TASKS: "several Tasks hold this key, so keep one in Salesforce (the app's Conflicts "
                              "step shows them side by side), then sync again",
    ReasonCode.RECYCLE_BIN: "a Task in the recycle bin holds this key, so a new Task would be rejected as a "
                            "duplicate value: restore that Task or empty the recycle bin first",
    ReasonCode.REPEATED_KEY: "same Message-ID as an earlier message of the source, so it is left out and "
                             "only the earlier message is considered",
    ReasonCode.NO_KEY: "no usable Message-ID, so the message cannot be matched to a Task",
    ReasonCode.UNREADABLE: "the source could not be read as a message here",
    ReasonCode.UNKNOWN_REFERENCE: "the source names a Contact or Lead Id that is not in the org",
}
# Reason codes whose rows each have their own cause, so the text output shows each listed row's reason.
OWN_REASON_CODES = frozenset({ReasonCode.NO_KEY, ReasonCode.UNREADABLE, ReasonCode.UNKNOWN_REFERENCE})
# The line after a plan with conflicts, because the command line cannot show them side by side.
CONFLICTS_HINT = "The Conflicts step of the app shows the Tasks of each conflict side by side."
# Progress lines go to stderr at most this often, besides each new message.
PROGRESS_INTERVAL_SECONDS = 1.0


@dataclass
class SyncOutcome:
    """The outcome of one ``sync`` command, as printed in text or JSON."""

    action: str
    org: str
    passed: bool
    exit_status: int
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    run: dict[str, Any] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    plan_csv: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Rows per reason code, for sync plan only.
    reason_counts: dict[str, int] = field(default_factory=dict)
    # Sentences of advice printed after the counts.
    advice: list[str] = field(default_factory=list)
    # What a plan leaves out, for sync plan only: each inactive owner and the rows not sent.
    not_sent: NotSentReport | None = None


@dataclass
class ReasonGroup:
    """The rows not sent for one reason code: how many, and the first ones as (source reference, reason)."""

    action: str
    count: int = 0
    listed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class NotSentReport:
    """The plan's inactive owners and its rows that are not sent, grouped by reason code for the text."""

    inactive_owners: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, str | None]] = field(default_factory=list)
    rows_truncated: bool = False
    groups: dict[ReasonCode, ReasonGroup] = field(default_factory=dict)


class ProgressPrinter:
    """A progress callback that prints "message (N%)" lines to stderr.

    The share is printed in place of ``done`` and ``total`` because their unit depends on the
    step (bytes of an mbox or CSV file, files of a folder, Tasks), and a message that already
    contains "done of total" is printed alone. A line is printed for each new message and
    otherwise at most once a second, so a per-record progress does not flood the terminal.
    """

    def __init__(self, stream: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._last_shown: tuple[int, int, str] = (0, 0, "")
        self._last_time = -PROGRESS_INTERVAL_SECONDS

    def __call__(self, done: int, total: int, message: str) -> None:
        now = self._clock()
        state = (done, total, message)
        if state == self._last_shown or (
                message == self._last_shown[2] and now - self._last_time < PROGRESS_INTERVAL_SECONDS
                and done != total):
            return
        self._last_shown, self._last_time = state, now
        line = message
        if total > 0 and f"{done} of {total}" not in message:
            line += f" ({done * 100 // total}%)"
        print(line, file=self._stream or sys.stderr, flush=True)


def not_sent_report(plan: Plan, journal: Journal, run_id: str) -> NotSentReport:
    """Gather the plan's inactive owners and the rows it does not send.

    The counts come from the plan's reason counts and the listed rows from the journal's first
    ``MAX_LISTED_ROWS`` rows not sent, so the rows that are sent, with their e-mail bodies, are not read.
    """
    report = NotSentReport(inactive_owners=[asdict(owner) for owner in plan.inactive_owners])
    counts = plan.reason_counts()
    for code, action in NOT_SENT_REASON_ACTIONS.items():
        if counts.get(code.value, 0):
            report.groups[code] = ReasonGroup(action, counts[code.value])
    report.rows_truncated = sum(group.count for group in report.groups.values()) > MAX_LISTED_ROWS
    for row in journal.rows_not_sent(run_id, MAX_LISTED_ROWS):
        _add_not_sent(report, row)
    return report


def _add_not_sent(report: NotSentReport, row: PlanRow) -> None:
    action = row.action.value
    report.rows.append({"source_ref": row.source_ref, "action": action, "key": row.key,
                        "reason_code": row.reason_code.value, "reason": row.reason})
    group = report.groups.setdefault(row.reason_code, ReasonGroup(action, 1))
    if len(group.listed) < LISTED_REFERENCES:
        group.listed.append((row.source_ref, row.reason))


def stored_spelling_advice(reason_counts: dict[str, int]) -> list[str]:
    """Return the advice for updates that keep the key spelling their Task stores, or [] without any."""
    advice = plan_advice(reason_counts)
    return [advice] if advice else []


def summary_json(summary: RunSummary) -> dict[str, Any]:
    """Return the journal's summary of a run as JSON values."""
    values = asdict(summary)
    values["states"] = {str(state): count for state, count in summary.states.items()}
    values["counts"] = dict(summary.counts)
    result: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return result


def counts_phrase(counts: dict[str, int]) -> str:
    names = ("create", "update", "conflict", "invalid", "excluded")
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in names)


def states_phrase(summary: RunSummary) -> str:
    parts = [f"{state} {count}" for state, count in summary.states.items() if count]
    return ", ".join(parts) or "nothing recorded yet"


def print_outcome(outcome: SyncOutcome, *, as_json: bool) -> None:
    """Print the outcome to stdout, as text lines or as one JSON object."""
    if as_json:
        print(json.dumps(outcome_json(outcome), indent=2, default=str))
        return
    print(outcome.reason)
    if outcome.run is not None:
        print_run(outcome.run)
    for summary in outcome.runs:
        print_run(summary)
    for sentence in outcome.advice:
        print(sentence)
    if outcome.not_sent is not None:
        _print_not_sent(outcome.not_sent)
    if outcome.plan_csv:
        print(f"Plan written to {outcome.plan_csv}")
    if outcome.action == "plan" and outcome.counts.get("conflict"):
        print(CONFLICTS_HINT)


def outcome_json(outcome: SyncOutcome) -> dict[str, Any]:
    values = asdict(outcome)
    del values["not_sent"]
    if outcome.not_sent is not None:
        values["inactive_owners"] = outcome.not_sent.inactive_owners
        values["rows"] = outcome.not_sent.rows
        values["rows_truncated"] = outcome.not_sent.rows_truncated
    return values


def _print_not_sent(report: NotSentReport) -> None:
    from backstory_desktop.enablement.run import count_phrase

    for owner in report.inactive_owners:
        print(f"inactive owner {owner['username']} ({owner['user_id']}) replaced by {owner['replaced_by']} "
              f"on {count_phrase(owner['rows'], 'Task')}")
    by_action = sorted(report.groups.items(), key=lambda item: NOT_SENT_ACTIONS.index(item[1].action))
    for code, group in by_action:
        print(f"{group.action} {group.count}: {REASON_SUMMARIES.get(code, code.value)}")
        more = group.count - len(group.listed)
        if code in OWN_REASON_CODES:
            for reference, reason in group.listed:
                print(f"  {reference}: {reason}")
            if more:
                print(f"  and {more} more")
            continue
        if not group.listed:
            # The listed rows ran out before this reason code: the plan CSV has every row.
            print(f"  {group.count} rows, listed in the plan CSV (--plan-csv)")
            continue
        listed = "; ".join(reference for reference, _ in group.listed)
        print(f"  {listed}" + (f"; and {more} more" if more else ""))


def print_run(summary: dict[str, Any]) -> None:
    """Print one run of the journal: its id, date, state, source and row states, then why it stopped.

    The row states count every row of the run, also those written by earlier commands.
    """
    states = ", ".join(f"{state} {count}" for state, count in summary.get("states", {}).items() if count)
    line = f"run {summary.get('run_id')}"
    for key in ("created_at", "state", "source"):
        if summary.get(key):
            line += f"  {summary[key]}"
    if states:
        line += f"  (rows of the whole run: {states})"
    print(line)
    if summary.get("stop_reason"):
        print(f"  stopped: {summary['stop_reason']}")
    if summary.get("result_folder"):
        print(f"  result files: {summary['result_folder']}")
    elif summary.get("state") == "finished":
        print("  result files: not written, because the app's data folder could not be written; make it "
              "writable, then list the runs again with sync history to write them")
