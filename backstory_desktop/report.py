"""The enablement report for a change ticket, as JSON and as one self-contained HTML page.

It lists every check with its status, reason and evidence, every change made in the
org (what, when, as which Salesforce user, and the diff confirmed before it), and what
the admin still has to do. It is free of Qt, so the wizard's Export HTML and the
``check`` command print the same facts.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backstory_desktop.core.checklist import STEP_TITLES, Step
from backstory_desktop.core.coverage import KeyForm
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.survivor import readable_time
from backstory_desktop.enablement.run import ChangeRecord, EnablementRun
from backstory_desktop.enablement.summary import open_work

NOT_RUN = "not run"
# The maximum number of columns in a table of records; wider records get one table each.
MAX_TABLE_COLUMNS = 7
# Values up to this many characters, without a space, are never wrapped in a table cell.
SHORT_VALUE_LENGTH = 12
REPORT_TITLE = "Backstory enablement report"

# Readable names of the details keys the steps record; other keys are spelled out from the key.
_LABELS = {
    "api_version": "API version",
    "by_kind": "Groups by kind",
    "case_sensitive": "Case-sensitive",
    "daily_api_requests_left": "Daily API requests left",
    "details": "Salesforce's details",
    "error_code": "Error code",
    "example_ids": "Example Task IDs",
    "external_id": "External ID",
    "external_id_limit": "External ID field limit",
    "external_ids": "External ID fields",
    "external_ids_left": "External ID fields left",
    "flag_field": "'Created by Backstory' flag field",
    "flag_problems": "Flag field problems",
    "granted": "Granted",
    "in_doubt": "Possibly written (build the plan again)",
    "instance_url": "Org address",
    "lines": "Permissions and access",
    "missing": "Users not in this org",
    "name": "Name",
    "not_canonical": "Key not in canonical form",
    "not_sent": "Not sent",
    "not_unique_consequences": "While the field is not Unique",
    "sources": "By what",
    "usable": "Usable for upserts though not Unique",
    "task_id": "Task ID",
    "user_id": "User ID",
    "username": "Username",
    "visible_in_describe": "Visible to this user (describe)",
    "why_calls": "Why calls matter",
    "why_keys": "Why keys matter",
    "with_key": "With a key",
    "without_brackets": "Key without angle brackets",
}
# Coded values recorded under a details key, in words: the form of an example key.
_VALUE_WORDS = {
    "form": {
        KeyForm.MISSING.value: "no key",
        KeyForm.CANONICAL.value: "canonical",
        KeyForm.WITHOUT_BRACKETS.value: "no angle brackets",
        KeyForm.NOT_CANONICAL.value: "other form",
        KeyForm.UNUSABLE.value: "no Message-ID",
    },
}
# Details that the report shows in a section of its own.
_NOT_EVIDENCE = {"open_items"}

_STATUS_MARKS = {"passed": "✓ passed", "failed": "✗ failed", "skipped": "⊘ skipped", NOT_RUN: "○ not run"}

# The look every HTML report of the app shares; each report adds its own rules after it.
BASE_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #202124;
       margin: 2em auto; max-width: 72em; padding: 0 1.5em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #dadce0; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.3em; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { border: 1px solid #dadce0; padding: 4px 10px; text-align: left; vertical-align: top;
         overflow-wrap: break-word; }
th { background: #f1f3f4; font-weight: 600; }
.muted { color: #5f6368; }
"""

_STYLE = BASE_STYLE + """
table.wide { width: 100%; }
table.facts th { width: 14em; }
section table.facts { width: 100%; }
td table { margin: 0; width: 100%; }
td.block > table { margin-top: 0.3em; }
td table td { overflow-wrap: anywhere; }
th.fit, td.fit { width: 1%; white-space: nowrap; }
ul.cell { padding-left: 1em; }
ul, ol { margin: 0.2em 0; padding-left: 1.4em; }
pre { margin: 0.3em 0 0; white-space: pre-wrap; font-size: 0.92em; }
.status { white-space: nowrap; font-weight: 600; }
.passed { color: #1b7f3b; }
.failed { color: #b3261e; }
.skipped, .not-run { color: #5f6368; }
.overall { font-size: 1.05em; }
"""


def report_json(
    run: EnablementRun,
    *,
    only_run: bool = False,
    checks: Sequence[Mapping[str, Any]] | None = None,
    open_items: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Return the report as one JSON-ready dictionary.

    ``checks`` lists every step before the Summary in wizard order, each with its result
    and its evidence. With ``only_run`` the steps that have no result are left out.
    ``passed`` is true when every listed check passed.

    A caller that judges checks of its own, as the ``check`` command does, passes them as
    ``checks``, each with name, title, status, reason and details. It passes the work they
    leave as ``open_items``. The report then lists those instead of the steps.
    """
    if checks is None:
        listed = [_check_json(run, step) for step in _checked_steps(run, only_run=only_run)]
    else:
        listed = [_given_check_json(check) for check in checks]
    return {
        "org": _org_json(run),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "passed": bool(listed) and all(check["status"] == "passed" for check in listed),
        "checks": listed,
        "changes": [change.as_json() for change in run.changes],
        "open_items": open_work(run) if open_items is None else list(open_items),
    }


def _given_check_json(check: Mapping[str, Any]) -> dict[str, Any]:
    entry = {key: _plain(value) for key, value in check.items()}
    entry.setdefault("details", {})
    entry["evidence"] = evidence(entry["details"])
    return entry


def _checked_steps(run: EnablementRun, *, only_run: bool) -> list[Step]:
    steps: list[Step] = [step for step in Step if step is not Step.SUMMARY]
    if only_run:
        steps = [step for step in steps if step in run.checklist.results]
    return steps


def _org_json(run: EnablementRun) -> dict[str, str]:
    profile = run.profile
    connection = run.connection
    org = {
        "alias": profile.alias,
        "kind": profile.kind,
        "instance_url": connection.instance_url if connection else profile.instance_url,
        "username": connection.username if connection else profile.username,
        "api_version": connection.api_version if connection else profile.api_version,
    }
    if profile.kind == "practice" and profile.practice_db:
        org["practice_db"] = profile.practice_db
    return org


def _check_json(run: EnablementRun, step: Step) -> dict[str, Any]:
    result = run.checklist.results.get(step)
    if result is None:
        entry: dict[str, Any] = {
            "name": step.value, "title": STEP_TITLES[step], "status": NOT_RUN, "reason": "", "details": {}
        }
    else:
        entry = result.as_json()
        entry["details"] = _plain(entry["details"])
    entry["evidence"] = evidence(entry["details"])
    return entry


def evidence(details: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return a step's details as labelled facts, in the order the step recorded them.

    Empty values (None, "") are left out; an empty list stays, because "none found" is a finding.
    """
    return [
        {"label": label(key), "value": _plain(value)}
        for key, value in details.items()
        if key not in _NOT_EVIDENCE and value is not None and value != ""
    ]


def label(key: str) -> str:
    """Return the readable name of a details key: "external_id" -> "External ID"."""
    return _LABELS.get(key, key.replace("_", " ").capitalize())


def _plain(value: Any) -> Any:
    """Return ``value`` built only of JSON types; anything else becomes its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return str(value)


def report_html(
    run: EnablementRun,
    *,
    only_run: bool = False,
    checks: Sequence[Mapping[str, Any]] | None = None,
    open_items: Sequence[str] | None = None,
) -> str:
    """Render the report as one self-contained HTML page for a change ticket; every value is escaped.

    ``only_run``, ``checks`` and ``open_items`` are as in report_json.
    """
    report = report_json(run, only_run=only_run, checks=checks, open_items=open_items)
    sections = [
        _header_html(report),
        _checks_html(report["checks"]),
        _evidence_html(report["checks"]),
        _changes_html(run.changes),
        _open_items_html(report["open_items"]),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{REPORT_TITLE}: {_text(report['org']['alias'])}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def _header_html(report: Mapping[str, Any]) -> str:
    org = report["org"]
    rows = [
        ("Org profile", f"{org['alias']} ({org['kind']})"),
        ("Org", org["instance_url"] or "not connected"),
        ("Signed in as", org["username"] or "not signed in"),
        ("API version", org["api_version"] or "not known"),
        ("Generated", readable_time(report["generated_at"])),
    ]
    if org.get("practice_db"):
        rows.insert(1, ("Practice org database", org["practice_db"]))
    facts = "".join(f"<tr><th>{_text(name)}</th><td>{_text(value)}</td></tr>" for name, value in rows)
    return (
        f"<h1>{REPORT_TITLE}</h1>"
        f'<table class="facts">{facts}</table>'
        f'<p class="overall">{_text(_overall(report["checks"]))}</p>'
    )


def _overall(checks: Sequence[Mapping[str, Any]]) -> str:
    """Count the checks by status: "4 of 8 checks passed; 2 failed, 2 not run."."""
    counts: dict[str, int] = {}
    for check in checks:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
    sentence = f"{counts.get('passed', 0)} of {len(checks)} checks passed"
    others = [f"{counts[status]} {status}" for status in ("failed", "skipped", NOT_RUN) if counts.get(status)]
    return sentence + ("; " + ", ".join(others) if others else "") + "."


def _checks_html(checks: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for check in checks:
        title = _text(check["title"])
        if check["status"] != NOT_RUN:
            title = f'<a href="#{_anchor(check)}">{title}</a>'
        rows.append(f"<tr><td>{title}</td>{_status_cell(check['status'])}<td>{_text(check['reason'])}</td></tr>")
    return (
        '<h2>Checks</h2><table class="wide"><tr><th>Check</th><th>Status</th><th>Reason</th></tr>'
        + "".join(rows) + "</table>"
    )


def _evidence_html(checks: Sequence[Mapping[str, Any]]) -> str:
    parts = ["<h2>Evidence</h2>"]
    ran = [check for check in checks if check["status"] != NOT_RUN]
    for check in ran:
        status = check["status"]
        facts = _facts_table({item["label"]: item["value"] for item in check["evidence"]}, labelled=True)
        parts.append(
            f'<section id="{_anchor(check)}"><h3>{_text(check["title"])} '
            f'<span class="status {_css(status)}">{_text(_STATUS_MARKS[status])}</span></h3>'
            f"<p>{_text(check['reason'])}</p>{facts}</section>"
        )
    if not ran:
        parts.append('<p class="muted">No check has run yet.</p>')
    return "".join(parts)


def _changes_html(changes: Sequence[ChangeRecord]) -> str:
    if not changes:
        return "<h2>Changes made in the org</h2><p>None: nothing was changed in the org.</p>"
    rows = []
    for change in changes:
        diff = "\n".join(change.lines)
        what = _text(change.summary) + (f"<pre>{_text(diff)}</pre>" if diff else "")
        cells = [
            _text(readable_time(change.made_at)),
            _text(change.made_by or "unknown"),
            _text(STEP_TITLES[change.step]),
            what,
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (
        '<h2>Changes made in the org</h2><table class="wide"><tr><th>When (UTC)</th><th>By</th>'
        "<th>Step</th><th>What</th></tr>" + "".join(rows) + "</table>"
    )


def _open_items_html(items: Sequence[str]) -> str:
    if not items:
        return "<h2>What remains</h2><p>Nothing: the checks found no work left for the admin.</p>"
    listed = "".join(f"<li>{_text(item)}</li>" for item in items)
    return f"<h2>What remains</h2><ol>{listed}</ol>"


def _facts_table(facts: Mapping[str, Any], *, labelled: bool = False) -> str:
    """Render a mapping as a two-column table; keys are labels already when ``labelled``."""
    if not facts:
        return '<p class="muted">No details recorded.</p>'
    rows = []
    for key, value in facts.items():
        name = _text(key if labelled else label(key))
        if _is_records(value):
            # A table of records gets the whole width, under its label.
            block = f"<strong>{name}</strong>{_value_html(value)}"
            rows.append(f'<tr><td class="block" colspan="2">{block}</td></tr>')
        else:
            rows.append(f"<tr><th>{name}</th><td>{_value_html(_in_words(str(key), value))}</td></tr>")
    return f'<table class="facts">{"".join(rows)}</table>'


def _in_words(key: str, value: Any) -> Any:
    """Return a coded value recorded under ``key`` in words ("without_brackets" -> "no angle brackets")."""
    words = _VALUE_WORDS.get(key)
    if words is None or not isinstance(value, str):
        return value
    return words.get(value, value)


def _records_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Render a list of mappings as one table, a column for every key any of them has.

    A key whose value is itself a list of records, such as a tool's examples, gets a
    full-width row under its record instead of a column, so the table stays readable.
    Records with more than MAX_TABLE_COLUMNS keys are shown one table each.
    """
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    nested = [column for column in columns if any(_is_records(record.get(column)) for record in records)]
    columns = [column for column in columns if column not in nested]
    if len(columns) > MAX_TABLE_COLUMNS:
        # Too many columns to read side by side: one two-column table per record instead.
        return "".join(_facts_table(record) for record in records)
    # Columns of short values (yes/no, counts) take only their width, leaving the rest to text.
    fit = {
        column: ' class="fit"' if all(_is_short(_in_words(column, record.get(column))) for record in records)
        else ""
        for column in columns
    }
    header = "".join(f"<th{fit[column]}>{_text(label(column))}</th>" for column in columns)
    rows = []
    for record in records:
        cells = "".join(
            f"<td{fit[column]}>{_value_html(_in_words(column, record.get(column)), compact=True)}</td>"
            for column in columns
        )
        rows.append(f"<tr>{cells}</tr>")
        for column in nested:
            if record.get(column):
                block = f"<strong>{_text(label(column))}</strong>{_value_html(record[column])}"
                rows.append(f'<tr><td class="block" colspan="{len(columns)}">{block}</td></tr>')
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _value_html(value: Any, *, compact: bool = False) -> str:
    """Render one value readably: yes/no, nested tables, lists; inside a table cell lists are lines."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return _facts_table(value) if value else "none"
    if isinstance(value, list | tuple):
        return _list_html(value, compact=compact)
    return _text(str(value))


def _list_html(values: Sequence[Any], *, compact: bool) -> str:
    if not values:
        return "none"
    if _is_records(values):
        return _records_table(values)
    listed = "".join(f"<li>{_value_html(item, compact=compact)}</li>" for item in values)
    return f'<ul class="cell">{listed}</ul>' if compact else f"<ul>{listed}</ul>"


def _is_records(value: Any) -> bool:
    """Tell whether ``value`` is a non-empty list of mappings, shown as a table."""
    if not isinstance(value, list | tuple) or not value:
        return False
    return all(isinstance(item, Mapping) for item in value)


def _is_short(value: Any) -> bool:
    """Tell whether ``value`` shows as a word or a number, too short to wrap."""
    if value is None or isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and len(value) <= SHORT_VALUE_LENGTH and " " not in value


def _status_cell(status: str) -> str:
    return f'<td class="status {_css(status)}">{_text(_STATUS_MARKS[status])}</td>'


def _css(status: str) -> str:
    return status.replace(" ", "-")


def _anchor(check: Mapping[str, Any]) -> str:
    return f"check-{_css(str(check['name']))}"


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def write_report(path: Path, text: str, *, progress: ProgressCallback, cancel: threading.Event) -> Path:
    """Write the report file as UTF-8; the wizard runs this on its worker."""
    path.write_text(text, encoding="utf-8")
    return path

