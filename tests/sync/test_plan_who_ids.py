"""The WhoIds a CSV export names are checked against the org's Contacts and Leads while planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import StepStatus
from backstory_desktop.core.plan import Action, ReasonCode
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.store.settings import OrgProfile
from backstory_desktop.sync import planner

# Well-formed Ids with the Contact and Lead prefixes that no record of the practice org has.
MISSING_CONTACT = "003000000000ZZZ"
MISSING_LEAD = "00Q000000000ZZZ"


def _ready_run(admin: OrgConnection) -> enablement.EnablementRun:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    assert enablement.check_field(run).status is StepStatus.PASSED
    return run


def _first_id(admin: OrgConnection, sobject: str) -> str:
    return str(next(iter(admin.query_all(f"SELECT Id FROM {sobject} ORDER BY Id LIMIT 1")))["Id"])


def _export(path: Path, who_ids: list[str]) -> Path:
    lines = ["Message ID,Subject,Body,From,To,Sent At,WhoId"]
    for number, who_id in enumerate(who_ids):
        lines.append(f"<who.{number}@x.example>,Intro {number},Hello,rita@sales.example,"
                     f"carla@customer.example,2026-11-02 10:00,{who_id}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_who_ids__unknown_ones_invalid(admin: OrgConnection, tmp_path: Path) -> None:
    contact, lead = _first_id(admin, "Contact"), _first_id(admin, "Lead")
    export = _export(tmp_path / "tasks.csv", [contact, lead, MISSING_CONTACT, MISSING_LEAD, contact[:15]])

    plan = enablement.plan_sync(_ready_run(admin), export)

    rows = list(plan.rows)
    assert [row.action for row in rows] == [
        Action.CREATE, Action.CREATE, Action.INVALID, Action.INVALID, Action.CREATE
    ]
    assert rows[0].record["WhoId"] == contact
    assert rows[1].record["WhoId"] == lead
    for row in rows[2:4]:
        assert row.reason_code is ReasonCode.UNKNOWN_REFERENCE
        assert "is neither a Contact nor a Lead in this org" in row.reason
    assert rows[2].reason.startswith("the WhoId 003000000000ZZZ")
    assert plan.reason_counts()[ReasonCode.UNKNOWN_REFERENCE.value] == 2


def test_who_ids__deleted_contact_invalid(admin: OrgConnection, tmp_path: Path) -> None:
    contact = admin.request("POST", "sobjects/Contact", json={"LastName": "Gone"})["id"]
    admin.request("DELETE", f"sobjects/Contact/{contact}")
    export = _export(tmp_path / "tasks.csv", [contact])

    plan = enablement.plan_sync(_ready_run(admin), export)

    (row,) = plan.rows
    assert row.reason_code is ReasonCode.UNKNOWN_REFERENCE


def test_who_ids__lookup_retried(default_org: PracticeOrg, admin: OrgConnection, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    contact = _first_id(admin, "Contact")
    export = _export(tmp_path / "tasks.csv", [contact, MISSING_CONTACT])
    monkeypatch.setattr(planner, "FIRST_LOOKUP_WAIT_SECONDS", 0.01)
    run = _ready_run(admin)
    default_org.faults = FaultPlan(seed=5, server_unavailable_rate=0.5)

    plan = enablement.plan_sync(run, export)

    assert [row.reason_code for row in plan.rows] == [ReasonCode.NEW_KEY, ReasonCode.UNKNOWN_REFERENCE]
