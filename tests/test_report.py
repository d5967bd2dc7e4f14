"""The enablement report: every check with its evidence, each change made with its time and user,
and what remains, as JSON and as one self-contained HTML page, from steps run on a practice org."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepResult, StepStatus
from backstory_desktop.enablement.run import EnablementRun, record_change
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.report import report_html, report_json
from backstory_desktop.salesforce.connection import API_VERSION
from backstory_desktop.store.settings import OrgProfile
from tests.conftest import StartOrg

FIELD = "Message_ID__c"
HOSTILE = '<script>alert("report")</script> & <img src=x onerror=alert(1)>'
# Elements HTML writes without an end tag.
VOID_ELEMENTS = {"meta", "br", "img", "hr", "link", "input"}


def _new_run(org: PracticeOrg) -> EnablementRun:
    run = EnablementRun(OrgProfile(alias="practice", kind="practice"))
    assert enablement.connect(run, org).status is StepStatus.PASSED
    enablement.check_field(run)
    return run


@pytest.fixture
def run(default_org: PracticeOrg) -> EnablementRun:
    """A run on the default org: connected, field inspected, integration user checked (lacks the field)."""
    run = _new_run(default_org)
    enablement.check_integration_user(run, default_org.integration_username)
    return run


def _check(report: dict[str, object], name: str) -> dict[str, object]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return next(check for check in checks if check["name"] == name)


class _TagBalance(HTMLParser):
    """Record every end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.mismatches: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.mismatches.append(tag)
        else:
            self.open.pop()


def test_report_json__checks_in_step_order(run: EnablementRun, default_org: PracticeOrg) -> None:
    report = report_json(run)

    assert [check["name"] for check in report["checks"]] == [
        step.value for step in Step if step is not Step.SUMMARY
    ]
    assert _check(report, "connect")["status"] == "passed"
    assert _check(report, "message_id_field")["status"] == "passed"
    assert _check(report, "integration_user")["status"] == "failed"
    assert _check(report, "local_sync")["status"] == "not run"
    assert report["passed"] is False
    assert report["org"] == {
        "alias": "practice",
        "kind": "practice",
        "instance_url": default_org.base_url,
        "username": default_org.admin_username,
        "api_version": API_VERSION,
    }
    assert json.loads(json.dumps(report)) == report


def test_report_json__only_run_leaves_out_steps(run: EnablementRun) -> None:
    report = report_json(run, only_run=True)

    assert [check["name"] for check in report["checks"]] == [
        "connect", "message_id_field", "integration_user"
    ]


def test_report_json__evidence_has_access_lines(run: EnablementRun) -> None:
    access = _check(report_json(run), "integration_user")
    evidence = {item["label"]: item["value"] for item in access["evidence"]}

    lines = evidence["Permissions and access"]
    read = next(line for line in lines if line["name"] == f"Read on {FIELD}")
    assert read["granted"] is False
    assert read["required"] is True
    assert evidence["User"] == run.profile.integration_username


def test_report_json__change_has_time_and_user(run: EnablementRun, default_org: PracticeOrg) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    enablement.apply_access_fix(run)

    report = report_json(run)

    [change] = report["changes"]
    assert change["step"] == "integration_user"
    assert change["made_by"] == default_org.admin_username
    made_at = datetime.fromisoformat(change["made_at"])
    assert before <= made_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert change["lines"]
    assert all(line.startswith(("+ ", "~ ")) for line in change["lines"])
    assert _check(report, "integration_user")["status"] == "passed"


def test_report_json__open_items_name_missing_access(run: EnablementRun, default_org: PracticeOrg) -> None:
    items = report_json(run)["open_items"]

    missing = [item for item in items if item.startswith(f"Give {default_org.integration_username} ")]
    assert len(missing) == 1
    assert f"Read on {FIELD}" in missing[0]
    assert f"Edit on {FIELD}" in missing[0]
    assert any("'Upsert Message Id field name'" in item for item in items)


def test_open_work__access_granted_leaves_nothing(run: EnablementRun, default_org: PracticeOrg) -> None:
    enablement.apply_access_fix(run)

    items = enablement.open_work(run)

    assert not any(item.startswith(f"Give {default_org.integration_username} ") for item in items)


def test_open_work__not_unique_field_consequences(start_org: StartOrg) -> None:
    run = _new_run(start_org("non-unique"))
    details = run.checklist.results[Step.MESSAGE_ID_FIELD].details
    assert details["unique"] is False

    items = enablement.open_work(run)

    [consequences] = [item for item in items if item.startswith(f"Make Activity.{FIELD} Unique ")]
    for consequence in details["not_unique_consequences"]:
        assert consequence in consequences
    assert not any(item.startswith(f"{FIELD} is not Unique") for item in items)


def test_open_work__confirmed_setting_in_profile(default_org: PracticeOrg) -> None:
    run = _new_run(default_org)
    run.profile.backstory_setting_value = FIELD
    run.profile.backstory_setting_confirmed = True

    items = enablement.open_work(run)

    assert not any("'Upsert Message Id field name'" in item for item in items)


def test_open_work__failed_step_gives_its_reason(run: EnablementRun) -> None:
    reason = "The scan stopped: REQUEST_LIMIT_EXCEEDED."
    run.checklist.record(StepResult(Step.CONFLICTS, StepStatus.FAILED, reason))

    items = enablement.open_work(run)

    assert f"Conflicts: {reason}" in items


def test_report_html__has_every_section(run: EnablementRun, default_org: PracticeOrg) -> None:
    enablement.apply_access_fix(run)
    change = run.changes[0]

    page = report_html(run)

    for heading in ("Checks", "Evidence", "Changes made in the org", "What remains"):
        assert f"<h2>{heading}</h2>" in page
    assert page.startswith("<!DOCTYPE html>")
    assert html.escape(default_org.base_url) in page
    assert html.escape(default_org.admin_username) in page
    assert html.escape(change.summary) in page
    for line in change.lines:
        assert html.escape(line) in page
    assert page.count("✓ passed") >= 3
    assert page.count("○ not run") == sum(1 for step in Step if step is not Step.SUMMARY) - 3
    assert 'id="check-integration_user"' in page
    assert "<th>Granted</th>" in page


def test_report_html__tags_balance(run: EnablementRun) -> None:
    enablement.apply_access_fix(run)
    parser = _TagBalance()

    parser.feed(report_html(run))
    parser.close()

    assert parser.mismatches == []
    assert parser.open == []


def test_report_html__escapes_every_value(run: EnablementRun) -> None:
    record_change(run, Step.INTEGRATION_USER, f"Granted {HOSTILE}", [f"+ {HOSTILE}"])
    details = {"note": HOSTILE, "rows": [{"key": HOSTILE, "values": [HOSTILE]}]}
    run.checklist.record(StepResult(Step.CONFLICTS, StepStatus.FAILED, f"Stopped on {HOSTILE}", details))

    page = report_html(run)

    assert "<script>" not in page
    assert "<img" not in page
    escaped = html.escape(HOSTILE)
    # The change's summary and its diff line, the reason in the checks table, over the evidence and
    # in what remains, then the note, the row's key and its list item.
    assert page.count(escaped) == 8


def test_report_html__no_changes_says_none(run: EnablementRun) -> None:
    page = report_html(run)

    assert "None: nothing was changed in the org." in page
