"""The enablement summary as a self-contained HTML report."""

from __future__ import annotations

import html
import threading
from datetime import UTC, datetime
from pathlib import Path

from backstory_desktop.core.checklist import STEP_TITLES, Step
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.enablement import EnablementRun

_STATUS_COLORS = {"passed": "#1b7f3b", "failed": "#b3261e", "skipped": "#5f6368", "not run": "#5f6368"}

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #202124; }
table { border-collapse: collapse; }
th, td { border: 1px solid #dadce0; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f1f3f4; }
"""


def summary_html(run: EnablementRun, changes: list[str]) -> str:
    """Render every step's status and reason, and the changes made, as one HTML page."""
    profile = run.profile
    rows = []
    for step in Step:
        result = run.checklist.results.get(step)
        status = result.status.value if result else "not run"
        reason = result.reason if result else ""
        color = _STATUS_COLORS[status]
        rows.append(
            f"<tr><td>{html.escape(STEP_TITLES[step])}</td>"
            f'<td style="color:{color}">{html.escape(status)}</td>'
            f"<td>{html.escape(reason)}</td></tr>"
        )
    change_items = "".join(f"<li>{html.escape(change)}</li>" for change in changes)
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<title>Backstory enablement report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Backstory enablement report</h1>"
        f"<p>Org: {html.escape(profile.instance_url or 'not connected')}<br>"
        f"Signed in as: {html.escape(profile.username or '-')}<br>"
        f"Written: {written}</p>"
        "<h2>Steps</h2><table><tr><th>Step</th><th>Status</th><th>Reason</th></tr>"
        + "".join(rows)
        + "</table><h2>Changes made in the org</h2>"
        + (f"<ul>{change_items}</ul>" if changes else "<p>None.</p>")
        + "</body></html>\n"
    )


def write_report(
    path: Path, text: str, *, progress: ProgressCallback, cancel: threading.Event
) -> Path:
    """Write the report file; meant to run on the worker."""
    path.write_text(text, encoding="utf-8")
    return path
