"""API calls per 10,000 synced activities, counted by the practice org, against a naive baseline.

The product's sync plans (looking Tasks, people and users up) and then applies
through sObject Collections, 200 records a call. The baseline upserts each
record on its own by external ID (one PATCH per record through the same
simple-salesforce session), as a script written without Collections would.
Both write the same kind of activities into one practice org in the same run,
and the org counts every API request each of them makes.

A second org then responds to every API call after a delay and fails a share of
them (see FAULTS), as a distant org behind a busy network does. The product
syncs the same number of activities into it, and the naive upsert writes its
records there too, with no retry, as such a script would. The org's Tasks, read
with its faults switched off, show whether every activity was written. The
Message-ID field is unique there, so the org itself rejects a second Task with
a key: the figure shows that nothing was lost, not that retries never doubled.

Usage: python benchmarks/sync_api_calls.py [--count N] [--baseline-count N] [--no-faults]
       [--out FOLDER]

The figures are scaled to 10,000 activities. The baseline makes one HTTP call
per record, so it runs on fewer records by default. Its cost per record does
not depend on how many records there are.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tables import exit_status, write_tables

# Activities the figures are scaled to.
PER = 10_000
# The floor of sObject Collections: 10,000 records at 200 a call.
COLLECTIONS_FLOOR = PER // 200
TARGET = COLLECTIONS_FLOOR + 1
# The faulty org: every API call waits 100 ms, about a round trip across an ocean, and
# about one call in 12 fails in one of the ways Salesforce and its load balancers fail.
FAULTS: dict[str, Any] = {
    "seed": 7,
    "latency_seconds": 0.1,
    "server_unavailable_rate": 0.02,
    "unable_to_lock_row_rate": 0.02,
    "dropped_after_commit_rate": 0.02,
    "gateway_error_rate": 0.02,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=PER, help="activities the product syncs")
    parser.add_argument("--baseline-count", type=int, default=1_000,
                        help="activities the naive per-record upsert writes")
    parser.add_argument("--no-faults", action="store_true",
                        help="skip the run against the org with latency and faults")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder of the Markdown and JSON tables")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="backstory-bench-") as folder:
        # Journals and result files go to this folder, never to the user's own data folder.
        os.environ["BACKSTORY_DESKTOP_HOME"] = folder
        figures = measure(Path(folder), args.count, args.baseline_count)
        if not args.no_faults:
            figures["faults"] = measure_under_faults(Path(folder) / "faulty", args.count,
                                                     args.baseline_count)
    write_tables(args.out, "sync_api_calls", figures, markdown(figures))
    print(markdown(figures))
    faulty = figures.get("faults", {})
    return exit_status(figures["apply_calls_per_10000"] <= TARGET and faulty.get("all_written", True))


def measure(folder: Path, count: int, baseline_count: int) -> dict[str, Any]:
    """Sync ``count`` activities with the product and ``baseline_count`` naively; count the calls."""
    from backstory_desktop.bundled import sample_mailbox_path
    from backstory_desktop.cadence_drill import write_drill_mailbox
    from backstory_desktop.practice_org.seed import FLAG_FIELD
    from backstory_desktop.practice_org.server import PracticeOrg
    from backstory_desktop.salesforce.connection import connect_practice_org
    from backstory_desktop.salesforce.schema import inspect_message_id_field
    from backstory_desktop.sources.mbox import read_mbox
    from backstory_desktop.store.journal import Journal
    from backstory_desktop.sync.engine import apply_run
    from backstory_desktop.sync.planner import build_plan
    from backstory_desktop.sync.settings import SyncSettings

    field_name = "Message_ID__c"
    with PracticeOrg(folder / "org.sqlite3", scenario="default") as org:
        admin = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
        mailbox = folder / "bench.mbox"
        write_drill_mailbox(sample_mailbox_path(), mailbox, count=count, token="bench")
        journal = Journal.open(folder / "journal.sqlite3")
        try:
            before = org.request_count
            started = time.perf_counter()
            plan = build_plan(admin, read_mbox(mailbox), journal=journal, source_label=mailbox.name,
                              source_kind="mbox", field=inspect_message_id_field(admin, field_name),
                              flag_field=FLAG_FIELD, progress=lambda *_: None, cancel=None)
            plan_seconds = time.perf_counter() - started
            plan_calls = org.request_count - before
            assert plan.run_id is not None
            before = org.request_count
            started = time.perf_counter()
            result = apply_run(admin, journal, plan.run_id, settings=SyncSettings(bulk_threshold=count + 1),
                               progress=lambda *_: None, cancel=None)
            apply_seconds = time.perf_counter() - started
            apply_calls = org.request_count - before
        finally:
            journal.close()
        written = result.created + result.updated

        before = org.request_count
        started = time.perf_counter()
        for index in range(baseline_count):
            key = f"<naive.{index}@bench.backstory.example>"
            admin.request("PATCH", f"sobjects/Task/{field_name}/{quote(key, safe='')}",
                          json={"Subject": f"Naive {index}", "Status": "Completed"})
        baseline_seconds = time.perf_counter() - started
        baseline_calls = org.request_count - before

    apply_per = apply_calls * PER / max(written, 1)
    baseline_per = baseline_calls * PER / max(baseline_count, 1)
    return {
        "activities": count,
        "written": written,
        "plan_calls": plan_calls,
        "plan_calls_per_10000": round(plan_calls * PER / max(count, 1), 1),
        "plan_seconds": round(plan_seconds, 2),
        "apply_calls": apply_calls,
        "apply_calls_per_10000": round(apply_per, 1),
        "apply_seconds": round(apply_seconds, 2),
        "baseline_activities": baseline_count,
        "baseline_calls": baseline_calls,
        "baseline_calls_per_10000": round(baseline_per, 1),
        "baseline_seconds": round(baseline_seconds, 2),
        "ratio": round(apply_per / baseline_per, 4) if baseline_per else None,
        "target_calls_per_10000": TARGET,
    }


def measure_under_faults(folder: Path, count: int, baseline_count: int) -> dict[str, Any]:
    """Sync ``count`` activities and upsert ``baseline_count`` naively into an org with FAULTS."""
    from simple_salesforce.exceptions import SalesforceError

    from backstory_desktop.bundled import sample_mailbox_path
    from backstory_desktop.cadence_drill import write_drill_mailbox
    from backstory_desktop.practice_org.faults import NO_FAULTS, FaultPlan
    from backstory_desktop.practice_org.seed import FLAG_FIELD
    from backstory_desktop.practice_org.server import PracticeOrg
    from backstory_desktop.salesforce.connection import connect_practice_org
    from backstory_desktop.salesforce.schema import inspect_message_id_field
    from backstory_desktop.sources.mbox import read_mbox
    from backstory_desktop.store.journal import Journal
    from backstory_desktop.sync.engine import apply_run
    from backstory_desktop.sync.planner import build_plan
    from backstory_desktop.sync.settings import SyncSettings

    field_name = "Message_ID__c"
    folder.mkdir()
    mailbox = folder / "bench.mbox"
    write_drill_mailbox(sample_mailbox_path(), mailbox, count=count, token="faulty")
    with PracticeOrg(folder / "org.sqlite3", scenario="default") as org:
        admin = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
        keyed_before = _keyed_tasks(admin, field_name)
        field = inspect_message_id_field(admin, field_name)
        org.faults = FaultPlan(**FAULTS)
        journal = Journal.open(folder / "journal.sqlite3")
        try:
            before = org.request_count
            started = time.perf_counter()
            plan = build_plan(admin, read_mbox(mailbox), journal=journal, source_label=mailbox.name,
                              source_kind="mbox", field=field, flag_field=FLAG_FIELD,
                              progress=lambda *_: None, cancel=None)
            assert plan.run_id is not None
            result = apply_run(admin, journal, plan.run_id, settings=SyncSettings(bulk_threshold=count + 1),
                               progress=lambda *_: None, cancel=None)
            seconds = time.perf_counter() - started
            calls = org.request_count - before
        finally:
            journal.close()

        naive_failed = 0
        before = org.request_count
        started = time.perf_counter()
        for index in range(baseline_count):
            key = f"<naive.{index}@bench.backstory.example>"
            try:
                admin.request("PATCH", f"sobjects/Task/{field_name}/{quote(key, safe='')}",
                              json={"Subject": f"Naive {index}", "Status": "Completed"})
            except (SalesforceError, OSError, ValueError):
                # requests' errors derive from OSError; a gateway's HTML page is not JSON.
                naive_failed += 1
        baseline_seconds = time.perf_counter() - started
        baseline_calls = org.request_count - before

        org.faults = NO_FAULTS
        keyed_after = _keyed_tasks(admin, field_name)
    new_keys = [key for key in keyed_after if "faulty" in key]
    naive_written = sum(1 for key in keyed_after if key.startswith("<naive."))
    return {
        "faults": FAULTS,
        "activities": count,
        "seconds": round(seconds, 2),
        "calls": calls,
        "calls_per_10000": round(calls * PER / max(count, 1), 1),
        "created": result.created,
        "failed": result.failed,
        "in_doubt": result.in_doubt_count,
        "stopped_because": result.stopped_because,
        "keyed_tasks_before": len(keyed_before),
        "tasks_written": len(new_keys),
        "distinct_keys_written": len(set(new_keys)),
        "all_written": len(set(new_keys)) == count and result.failed == 0 and not result.in_doubt_count,
        "baseline_activities": baseline_count,
        "baseline_seconds": round(baseline_seconds, 2),
        "baseline_calls": baseline_calls,
        "baseline_failed": naive_failed,
        "baseline_written": naive_written,
    }


def _keyed_tasks(admin: Any, field_name: str) -> list[str]:
    """Return the key of every Task that has one, with repeats, read through the API."""
    soql = f"SELECT {field_name} FROM Task WHERE {field_name} != null"
    return [record[field_name] for record in admin.query_all(soql)]


def markdown(figures: dict[str, Any]) -> str:
    """Return the figures as a Markdown table."""
    ratio = figures["ratio"]
    lines = [
        "| figure | product | naive per-record upsert | ratio | target |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| API calls per 10,000 activities, apply | {figures['apply_calls_per_10000']} | "
        f"{figures['baseline_calls_per_10000']} | {ratio} | at most {TARGET} |",
        f"| API calls per 10,000 activities, plan (lookups) | {figures['plan_calls_per_10000']} | "
        "none (a naive upsert looks nothing up) | | |",
    ]
    faulty = figures.get("faults")
    if faulty:
        naive_per_record = faulty["baseline_seconds"] / max(faulty["baseline_activities"], 1)
        lines += [
            f"| Sync of {faulty['activities']:,} activities with latency and faults, seconds "
            f"(naive scaled from {faulty['baseline_activities']:,}) | {faulty['seconds']} | "
            f"{round(naive_per_record * faulty['activities'], 1)} | | |",
            "| Activities written with latency and faults, none lost or failed | "
            f"{faulty['distinct_keys_written']:,} of {faulty['activities']:,} | "
            f"{faulty['baseline_written']:,} of {faulty['baseline_activities']:,} | | all |",
        ]
    return "\n".join(lines) + "\n"



if __name__ == "__main__":
    sys.exit(main())
