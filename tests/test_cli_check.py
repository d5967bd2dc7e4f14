"""The `check` command: read-only checks of a saved org, as text, JSON and HTML, with exit statuses
0 (every check passed), 1 (a check failed), 2 (usage or profile error) and 3 (sign-in needed).

Served profiles reach a practice org over HTTPS through a refresh token in the in-memory
keyring. The built-in practice profile starts its own practice org from its database file.
"""

from __future__ import annotations

import html
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop import org_sessions
from backstory_desktop.cli import main
from backstory_desktop.practice_org.seed import OUTREACH_USERNAME, SALES_OPS_USERNAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.store.paths import practice_org_db
from backstory_desktop.store.settings import OrgProfile, load_profiles, profiles_path, save_profile
from tests.consent_browser import ConsentBrowser, served_profile

ALIAS = "served-practice"
FIELD = "Message_ID__c"
# The practice org's tables that hold org data; sign-ins and API usage counts live in others.
ORG_DATA_TABLES = ("records", "custom_fields", "sequences")


def _sign_in(org: PracticeOrg, **settings: Any) -> OrgProfile:
    """Save a served profile for ``org`` with ``settings``, signed in as its admin in the browser flow."""
    profile = served_profile(org, ALIAS)
    org_sessions.sign_in_with_browser(
        profile, org_sessions.secret_store(), open_browser=ConsentBrowser(org.ca_bundle, org.admin_username),
        timeout=30,
    )
    for name, value in settings.items():
        setattr(profile, name, value)
    save_profile(profile)
    return profile


def _check_json(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, Any]]:
    status = main(["check", *options, "--json"])
    return status, json.loads(capsys.readouterr().out)


def _results(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def _details(report: dict[str, Any], name: str) -> dict[str, Any]:
    details: dict[str, Any] = _results(report)[name]["details"]
    return details


def _org_data(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as database:
        return {table: database.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ORG_DATA_TABLES}


@pytest.fixture
def served(default_org: PracticeOrg) -> OrgProfile:
    return _sign_in(default_org, integration_username=default_org.integration_username,
                    cadence_users={"Outreach": [OUTREACH_USERNAME]})


# -- each check on a served org ---------------------------------------------------------------


def test_check_field__served_org_passes(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, default_org: PracticeOrg
) -> None:
    status, report = _check_json(capsys, "field", "--org", ALIAS)

    assert status == 0
    assert report["passed"] is True
    assert report["check"] == "field"
    assert [check["name"] for check in report["checks"]] == ["connect", "field"]
    assert "results" not in report
    assert report["org"]["instance_url"] == default_org.base_url
    assert report["org"]["username"] == default_org.admin_username
    field = _results(report)["field"]
    assert field["status"] == "passed"
    assert field["details"]["field"] == FIELD
    assert field["details"]["unique"] is True
    assert report["changes"] == []


def test_check_access__missing_field_access_fails(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, default_org: PracticeOrg
) -> None:
    status, report = _check_json(capsys, "access", "--org", ALIAS)

    assert status == 1
    access = _results(report)["access"]
    assert access["status"] == "failed"
    assert f"Read on {FIELD}" in access["reason"]
    lines = _details(report, "access")["lines"]
    assert any(line["name"] == f"Edit on {FIELD}" and not line["granted"] for line in lines)
    assert any(item.startswith(f"Give {default_org.integration_username} ") for item in report["open_items"])


def test_check_access__user_option_wins(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, default_org: PracticeOrg
) -> None:
    status, report = _check_json(capsys, "access", "--org", ALIAS, "--user", default_org.admin_username)

    assert status == 0
    assert _details(report, "access")["user"] == default_org.admin_username


def test_check_access__no_user_is_usage_error(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    _sign_in(default_org)

    status = main(["check", "access", "--org", ALIAS])
    captured = capsys.readouterr()

    assert status == 2
    assert "--user USERNAME" in captured.err
    assert captured.out == ""


def test_check_coverage__counts_outreach_tasks(
    capsys: pytest.CaptureFixture[str], served: OrgProfile
) -> None:
    status, report = _check_json(capsys, "coverage", "--org", ALIAS, "--days", "7")

    mapping = _details(report, "coverage")
    [tool] = mapping["tools"]
    assert mapping["days"] == 7
    assert tool["tool"] == "Outreach"
    assert tool["usernames"] == [OUTREACH_USERNAME]
    coverage = _results(report)["coverage"]
    assert coverage["status"] == ("failed" if tool["canonical"] < tool["tasks"] else "passed")
    assert status == (1 if coverage["status"] == "failed" else 0)
    assert tool["reason"] in coverage["reason"]
    assert "calls" not in _results(report)
    assert "calls" not in mapping


def test_check_coverage__no_tool_users_fails(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    _sign_in(default_org)

    status, report = _check_json(capsys, "coverage", "--org", ALIAS)

    assert status == 1
    coverage = _results(report)["coverage"]
    assert coverage["status"] == "failed"
    assert "No cadence tool users are saved" in coverage["reason"]


def test_check_calls__unmarked_calls_fail(capsys: pytest.CaptureFixture[str], served: OrgProfile) -> None:
    status, report = _check_json(capsys, "calls", "--org", ALIAS)

    assert status == 1
    calls = _results(report)["calls"]
    assert calls["status"] == "failed"
    assert "TaskSubtype" in calls["reason"]
    unmarked = _details(report, "calls")["calls"]
    assert unmarked
    assert all(user["count"] >= 1 for user in unmarked)
    assert len([item for item in report["open_items"] if "lack TaskSubtype Call" in item
                or "lacks TaskSubtype Call" in item]) == len(unmarked)


def test_check_all__runs_every_check(capsys: pytest.CaptureFixture[str], served: OrgProfile) -> None:
    status, report = _check_json(capsys, "all", "--org", ALIAS)

    assert status == 1
    assert report["passed"] is False
    names = [check["name"] for check in report["checks"]]
    assert names == ["connect", "field", "access", "coverage", "calls"]
    assert set(report) >= {"org", "generated_at", "checks", "changes", "open_items"}


def test_check_all__text_has_one_line_per_check(
    capsys: pytest.CaptureFixture[str], served: OrgProfile
) -> None:
    status = main(["check", "all", "--org", ALIAS])
    lines = capsys.readouterr().out.splitlines()

    assert status == 1
    assert lines[0].startswith("  passed  Connect: Connected to ")
    assert lines[1].startswith("  passed  Message-ID field: ")
    assert lines[2].startswith("  failed  Integration user: ")
    assert lines[3].split(":")[0].endswith("Cadence tools' keys")
    assert lines[4].startswith("  failed  Calls without TaskSubtype: ")
    assert "What remains:" in lines
    assert lines[-1].startswith("- ")


def test_check_all__html_report(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"

    status = main(["check", "all", "--org", ALIAS, "--html", str(path)])

    page = path.read_text(encoding="utf-8")
    assert status == 1
    for heading in ("Checks", "Evidence", "Changes made in the org", "What remains"):
        assert f"<h2>{heading}</h2>" in page
    assert "○ not run" not in page
    assert 'id="check-coverage"' in page
    assert 'id="check-calls"' in page


def test_check_all__html_unwritable_is_usage_error(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, tmp_path: Path
) -> None:
    status = main(["check", "field", "--org", ALIAS, "--html", str(tmp_path / "missing" / "report.html")])

    assert status == 2
    assert "Cannot write the report to" in capsys.readouterr().err


# -- read-only -------------------------------------------------------------------------------


def test_check_all__changes_nothing(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, default_org: PracticeOrg
) -> None:
    before = _org_data(default_org.db_path)
    saved_profiles = profiles_path().read_bytes()

    main(["check", "all", "--org", ALIAS, "--days", "9"])

    assert _org_data(default_org.db_path) == before
    assert profiles_path().read_bytes() == saved_profiles
    assert load_profiles()[ALIAS].coverage_days == served.coverage_days


# -- errors ----------------------------------------------------------------------------------


def test_check__missing_sign_in_exits_3(capsys: pytest.CaptureFixture[str], default_org: PracticeOrg) -> None:
    save_profile(served_profile(default_org, ALIAS))

    status = main(["check", "field", "--org", ALIAS, "--json"])
    captured = capsys.readouterr()

    assert status == 3
    assert "sign in again in the app" in captured.err
    assert json.loads(captured.out) == {
        "check": "field", "passed": False, "error": captured.err.strip(), "exit_status": 3
    }


def test_check__unknown_alias_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "field", "--org", "nowhere"])

    assert status == 2
    assert "'nowhere'" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["0", "366", "week"])
def test_check__days_out_of_range(capsys: pytest.CaptureFixture[str], days: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "coverage", "--org", "practice", "--days", days])

    assert exit_info.value.code == 2
    assert "--days" in capsys.readouterr().err


# -- the built-in practice org ---------------------------------------------------------------


def test_check_field__built_in_practice_org(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _check_json(capsys, "field", "--org", "practice")

    assert status == 0
    assert report["org"]["alias"] == "practice"
    assert report["org"]["kind"] == "practice"
    assert report["org"]["instance_url"].startswith("https://127.0.0.1:")
    assert practice_org_db().exists()


def test_check_all__built_in_practice_org_names_its_users(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _check_json(capsys, "all", "--org", "practice")

    results = _results(report)
    assert status == 1
    assert "integration@practice.backstory.example lacks" in results["access"]["reason"]
    assert results["coverage"]["status"] == "failed"
    assert "Outreach" in results["coverage"]["reason"]
    assert results["calls"]["status"] == "failed"


def test_check_access__saved_practice_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = tmp_path / "practice.sqlite3"
    save_profile(OrgProfile(alias="practice", kind="practice", practice_db=str(db_path),
                            integration_username="integration@practice.backstory.example"))

    status, report = _check_json(capsys, "access", "--org", "practice")

    assert status == 1
    assert _results(report)["access"]["status"] == "failed"
    assert db_path.exists()
    assert not practice_org_db().exists()


def test_check__practice_org_in_use_exits_2(
    capsys: pytest.CaptureFixture[str], default_org: PracticeOrg
) -> None:
    save_profile(OrgProfile(alias="practice", kind="practice", practice_db=str(default_org.db_path)))

    status = main(["check", "field", "--org", "practice"])

    assert status == 2
    assert str(default_org.db_path) in capsys.readouterr().err


# -- early exits and option checks -----------------------------------------------------------


def test_check__unknown_alias_json_names_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "field", "--org", "nowhere", "--json"])
    captured = capsys.readouterr()

    assert status == 2
    report = json.loads(captured.out)
    assert report["passed"] is False
    assert report["exit_status"] == 2
    assert "'nowhere'" in report["error"]


@pytest.mark.parametrize(("html_option", "reason"), [
    ("", "--html is empty"),
    (".", "because it is a folder"),
    ("missing/report.html", "does not exist"),
])
def test_check__html_checked_before_any_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, html_option: str,
    reason: str,
) -> None:
    monkeypatch.chdir(tmp_path)

    status = main(["check", "all", "--org", "practice", "--json", "--html", html_option])
    captured = capsys.readouterr()

    assert status == 2
    assert reason in captured.err
    assert json.loads(captured.out)["error"] == captured.err.strip()
    assert not practice_org_db().exists(), "the practice org was started before the option was checked"


def test_check__empty_user_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "access", "--org", "practice", "--user", "  "])
    captured = capsys.readouterr()

    assert status == 2
    assert "--user is empty" in captured.err
    assert not practice_org_db().exists()


def test_check__user_is_stripped(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, default_org: PracticeOrg
) -> None:
    padded = f"  {default_org.admin_username} "

    status, report = _check_json(capsys, "access", "--org", ALIAS, "--user", padded)

    assert status == 0
    assert _details(report, "access")["user"] == default_org.admin_username


# -- one set of checks in text, JSON and HTML ------------------------------------------------


def test_check_all__html_counts_the_checks_printed(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"

    status, report = _check_json(capsys, "all", "--org", ALIAS, "--html", str(path))

    page = path.read_text(encoding="utf-8")
    passed = sum(check["status"] == "passed" for check in report["checks"])
    assert status == 1
    assert f"{passed} of 5 checks passed" in page
    for check in report["checks"]:
        assert f'<a href="#check-{check["name"]}">{html.escape(check["title"])}</a>' in page


def test_check_coverage__what_remains_leaves_out_calls(
    capsys: pytest.CaptureFixture[str], served: OrgProfile
) -> None:
    _, coverage = _check_json(capsys, "coverage", "--org", ALIAS)
    _, calls = _check_json(capsys, "calls", "--org", ALIAS)

    assert coverage["open_items"]
    assert not [item for item in coverage["open_items"] if "TaskSubtype" in item]
    assert calls["open_items"]
    assert all("TaskSubtype Call" in item for item in calls["open_items"])


def test_check_coverage__html_names_key_forms_in_words(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"

    main(["check", "coverage", "--org", ALIAS, "--html", str(path)])

    page = path.read_text(encoding="utf-8")
    assert ">no angle brackets<" in page
    assert "without_brackets<" not in page


def test_check_access__muted_permission_names_its_muting_set(
    capsys: pytest.CaptureFixture[str], served: OrgProfile
) -> None:
    status, report = _check_json(capsys, "access", "--org", ALIAS, "--user", SALES_OPS_USERNAME)

    assert status == 1
    [item] = [item for item in report["open_items"] if "muted by group" in item]
    assert item.startswith(f"Give {SALES_OPS_USERNAME} Edit on ")
    assert "(muting permission set " in item


# -- the practice org database ---------------------------------------------------------------


def test_check__practice_db_option_names_the_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "fresh.sqlite3"
    with PracticeOrg(db_path, scenario="fresh"):
        pass

    status = main(["check", "field", "--org", "practice", "--db", str(db_path)])
    lines = capsys.readouterr().out.splitlines()

    assert lines[0] == f"Practice org database: {db_path} (seeded with the fresh scenario)"
    assert lines[1].startswith("  passed  Connect: ")
    assert status == 1, "the fresh org has no Message-ID field"
    assert not [record for record in caplog.records if "was seeded with" in record.getMessage()]
    assert not practice_org_db().exists()


def test_check__practice_db_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db_path = tmp_path / "org.sqlite3"

    _, report = _check_json(capsys, "field", "--org", "practice", "--db", str(db_path))

    assert report["org"]["practice_db"] == str(db_path)
    assert report["org"]["scenario"] == "default"


def test_check__db_option_for_a_served_org_is_usage_error(
    capsys: pytest.CaptureFixture[str], served: OrgProfile, tmp_path: Path
) -> None:
    status = main(["check", "field", "--org", ALIAS, "--db", str(tmp_path / "org.sqlite3")])

    assert status == 2
    assert "is not a practice org, so leave --db out" in capsys.readouterr().err
