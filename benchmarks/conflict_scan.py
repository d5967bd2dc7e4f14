"""Time and memory of the conflict scan over a practice org with a million Tasks.

A practice org of the ``large`` scenario runs in a child process, seeded with
``--tasks`` generated Tasks and the chosen shares of exact, normalised and
probable duplicates. This process then reads every Task twice through the
product's scan (``salesforce.task_scan.scan_all_tasks``, which picks a Bulk API
2.0 queryAll job above BULK_SCAN_THRESHOLD Tasks and REST queryAll pages below):

1. scan only: the records are streamed and dropped, as a count would;
2. scan + grouping: the records are kept and grouped with
   ``core.duplicates.group_duplicates``, as the conflicts page does.

The server runs in its own process, so the peak resident set size reported is
the client's alone (``resource.getrusage``, ru_maxrss, Linux kilobytes).

Usage: python benchmarks/conflict_scan.py [--tasks N] [--exact-share F]
       [--normalised-share F] [--probable-share F] [--rest | --bulk] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tables import exit_status

DEFAULT_TASKS = 1_000_000
FIELD = "Message_ID__c"
# The scan with grouping may take at most this multiple of the time of the scan alone.
TARGET_RATIO = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS,
                        help="Tasks the practice org is seeded with (default 1,000,000)")
    parser.add_argument("--exact-share", type=float, default=0.02,
                        help="share of Tasks that copy an earlier key exactly, 0 to 1")
    parser.add_argument("--normalised-share", type=float, default=0.02,
                        help="share of Tasks whose key differs from an earlier one in brackets, "
                             "case or whitespace only, 0 to 1")
    parser.add_argument("--probable-share", type=float, default=0.01,
                        help="share of keyless Tasks that copy an earlier Task two seconds later, 0 to 1")
    reader = parser.add_mutually_exclusive_group()
    reader.add_argument("--rest", dest="use_bulk", action="store_false", default=None,
                        help="read through REST queryAll pages, whatever the size")
    reader.add_argument("--bulk", dest="use_bulk", action="store_true",
                        help="read through a Bulk API 2.0 queryAll job, whatever the size")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder of the Markdown and JSON results")
    args = parser.parse_args(argv)

    from backstory_desktop.practice_org.seed_large import LargeScenario

    try:
        options = LargeScenario(tasks=args.tasks, exact_share=args.exact_share,
                                normalised_share=args.normalised_share,
                                probable_share=args.probable_share)
    except ValueError as error:
        print(f"Invalid option: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="backstory-bench-") as folder:
        # Tokens and settings go to this folder, never to the user's own data folder.
        os.environ["BACKSTORY_DESKTOP_HOME"] = folder
        figures = measure(Path(folder), options, args.use_bulk)
    write_results(args.out, figures)
    print(markdown_line(figures))
    return exit_status(figures["scan_and_group_seconds"] <= TARGET_RATIO * figures["scan_seconds"])


def measure(folder: Path, options: Any, use_bulk: bool | None) -> dict[str, Any]:
    """Seed the org in a child process, then time the scan alone and the scan with grouping."""
    from backstory_desktop.core.duplicates import group_duplicates
    from backstory_desktop.practice_org.seed import FLAG_FIELD
    from backstory_desktop.salesforce.connection import connect_practice_org
    from backstory_desktop.salesforce.task_scan import scan_all_tasks

    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    stop = context.Event()
    server = context.Process(target=_serve, args=(folder / "org.sqlite3", options, ready, stop),
                             name="practice-org")
    server.start()
    try:
        org = ready.get(timeout=3600)
        admin = connect_practice_org(org["base_url"], Path(org["ca_bundle"]), org["admin_username"],
                                     org["client_id"])
        rss_start = _peak_rss_mb()

        started = time.perf_counter()
        scanned = sum(1 for _record in scan_all_tasks(admin, FIELD, flag_field=FLAG_FIELD,
                                                      use_bulk=use_bulk))
        scan_seconds = time.perf_counter() - started
        rss_scan = _peak_rss_mb()

        started = time.perf_counter()
        records = list(scan_all_tasks(admin, FIELD, flag_field=FLAG_FIELD, use_bulk=use_bulk))
        read_seconds = time.perf_counter() - started
        grouping_started = time.perf_counter()
        groups = group_duplicates(records, case_sensitive=False)
        group_seconds = time.perf_counter() - grouping_started
        rss_group = _peak_rss_mb()
    finally:
        stop.set()
        server.join(timeout=60)

    kinds = Counter(group.kind.value for group in groups)
    reader = {None: "auto", True: "bulk", False: "rest"}[use_bulk]
    return {
        "tasks": options.tasks,
        "shares": options.shares(),
        "duplicate_rows": options.kind_counts(),
        "reader": reader,
        "seed_seconds": round(org["seed_seconds"], 1),
        "scanned": scanned,
        "scan_seconds": round(scan_seconds, 1),
        "scan_and_group_seconds": round(read_seconds + group_seconds, 1),
        "group_seconds": round(group_seconds, 2),
        "groups": len(groups),
        "groups_by_kind": dict(sorted(kinds.items())),
        "peak_rss_mb_before_scan": rss_start,
        "peak_rss_mb_after_scan": rss_scan,
        "peak_rss_mb_after_grouping": rss_group,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _serve(db_path: Path, options: Any, ready: Any, stop: Any) -> None:
    """Seed and serve the practice org until ``stop`` is set (runs in the child process)."""
    from backstory_desktop.practice_org.seed_large import LARGE_SCENARIO
    from backstory_desktop.practice_org.server import PracticeOrg

    started = time.perf_counter()
    org = PracticeOrg(db_path, scenario=LARGE_SCENARIO, large=options)
    seed_seconds = time.perf_counter() - started
    with org:
        ready.put({"base_url": org.base_url, "ca_bundle": str(org.ca_bundle),
                   "admin_username": org.admin_username, "client_id": org.client_id,
                   "seed_seconds": seed_seconds})
        stop.wait()


def _peak_rss_mb() -> float:
    """Return this process's peak resident set size so far, in MB (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def markdown_line(figures: dict[str, Any]) -> str:
    """Return one table row of the Markdown results."""
    return (f"| {figures['when']} | {figures['tasks']:,} | {figures['reader']} | "
            f"{figures['seed_seconds']} | {figures['scan_seconds']} | "
            f"{figures['scan_and_group_seconds']} ({figures['group_seconds']} grouping) | "
            f"{figures['groups']:,} | {figures['peak_rss_mb_after_scan']} | "
            f"{figures['peak_rss_mb_after_grouping']} | {figures['machine']} |")


MARKDOWN_HEADER = (
    "# Conflict scan: time and client memory\n\n"
    "Written by `benchmarks/conflict_scan.py`. Times in seconds; peak RSS of the client "
    "process in MB (the practice org runs in a child process).\n\n"
    "| when | Tasks | reader | seed s | scan s | scan + group s | groups | peak RSS scan | "
    "peak RSS group | machine |\n"
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
)


def write_results(folder: Path, figures: dict[str, Any]) -> None:
    """Append the run to ``conflict_scan.md`` and ``conflict_scan.json`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "conflict_scan.md"
    text = table.read_text(encoding="utf-8") if table.exists() else MARKDOWN_HEADER
    table.write_text(text + markdown_line(figures) + "\n", encoding="utf-8")
    runs_file = folder / "conflict_scan.json"
    runs: list[dict[str, Any]] = json.loads(runs_file.read_text(encoding="utf-8")) \
        if runs_file.exists() else []
    runs.append(figures)
    runs_file.write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
