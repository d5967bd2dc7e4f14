"""Every benchmark in one run, with one table of their figures, baselines and ratios.

Usage: python benchmarks/run.py [--short | --full] [--only NAME ...] [--out FOLDER]

``--short`` sizes each benchmark for CI (a few minutes in all); ``--full`` (the
default) uses the sizes a release is measured at. Each benchmark runs in its own
process, measures the product and its baseline in that same run, and writes
``NAME.json`` and ``NAME.md`` under the output folder. This script then writes
``summary.json`` and ``summary.md`` there: one row per figure, with the product's
value, the baseline's, their ratio, the target and whether it is met. A
benchmark that fails keeps its row, marked as failed, and the others still run.
The exit status is 1 when a benchmark failed, else 3 (TARGET_MISSED in
``tables.py``) when a target was missed, else 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tables import TARGET_MISSED, exit_status

HERE = Path(__file__).resolve().parent

Row = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script, its arguments at each size, and how its JSON becomes table rows."""

    name: str
    short_args: tuple[str, ...]
    full_args: tuple[str, ...]
    rows: Callable[[Any], list[Row]]


def _row(figure: str, product: Any, baseline: Any, ratio: Any, target: str, met: bool | None) -> Row:
    return {"figure": figure, "product": product, "baseline": baseline, "ratio": ratio,
            "target": target, "met": met}


def _sync_api_calls_rows(figures: dict[str, Any]) -> list[Row]:
    calls = figures["apply_calls_per_10000"]
    # The baseline upserts fewer records, one call each, so its time scales with the count.
    sync_seconds = round(figures["plan_seconds"] + figures["apply_seconds"], 1)
    baseline_seconds = round(figures["baseline_seconds"] * figures["activities"]
                             / figures["baseline_activities"], 1)
    rows = [
        _row("API calls per 10,000 upserted activities, the apply", calls,
             figures["baseline_calls_per_10000"], figures["ratio"],
             f"at most {figures['target_calls_per_10000']}", calls <= figures["target_calls_per_10000"]),
        _row("API calls per 10,000 activities, the whole sync: the plan's lookups of Tasks, people and "
             "users, then the apply (baseline: naive upsert, which looks nothing up)",
             round(figures["plan_calls_per_10000"] + calls, 1), figures["baseline_calls_per_10000"],
             round((figures["plan_calls_per_10000"] + calls) / figures["baseline_calls_per_10000"], 4),
             "reported", None),
        _row(f"Sync wall time for {figures['activities']:,} activities, plan and apply, seconds "
             f"(baseline scaled from {figures['baseline_activities']:,} records)",
             sync_seconds, baseline_seconds, round(sync_seconds / baseline_seconds, 3), "reported", None),
    ]
    faulty = figures.get("faults")
    if faulty:
        rows += _faulty_sync_rows(faulty, sync_seconds)
    return rows


def _faulty_sync_rows(faulty: dict[str, Any], clean_seconds: float) -> list[Row]:
    activities, naive = faulty["activities"], faulty["baseline_activities"]
    naive_seconds = round(faulty["baseline_seconds"] * activities / naive, 1)
    conditions = (f"{faulty['faults']['latency_seconds'] * 1000:.0f} ms latency and "
                  f"{sum(rate for name, rate in faulty['faults'].items() if name.endswith('_rate')):.0%} "
                  "of calls failing")
    return [
        _row(f"Sync wall time for {activities:,} activities with {conditions}, seconds "
             f"(baseline: naive upsert, scaled from {naive:,} records; the product without faults "
             f"took {clean_seconds} s)",
             faulty["seconds"], naive_seconds, round(faulty["seconds"] / naive_seconds, 3), "reported", None),
        _row(f"Activities written with {conditions}, none lost or failed (baseline: naive upsert, "
             "no retry; the field is unique, so the org rejects a second Task with a key)",
             f"{faulty['distinct_keys_written']:,} of {activities:,}",
             f"{faulty['baseline_written']:,} of {naive:,}", None, "all", faulty["all_written"]),
    ]


def _conflict_scan_rows(runs: list[dict[str, Any]]) -> list[Row]:
    latest = runs[-1]
    ratio = round(latest["scan_and_group_seconds"] / latest["scan_seconds"], 2)
    return [
        _row(f"Duplicate scan of {latest['tasks']:,} Tasks, seconds (baseline: reading only)",
             latest["scan_and_group_seconds"], latest["scan_seconds"], ratio, "within 2x", ratio <= 2),
        _row("Duplicate scan, peak memory in MB (baseline: reading only)",
             latest["peak_rss_mb_after_grouping"], latest["peak_rss_mb_after_scan"],
             round(latest["peak_rss_mb_after_grouping"] / latest["peak_rss_mb_after_scan"], 2),
             "reported", None),
    ]


def _cold_start_rows(figures: dict[str, Any]) -> list[Row]:
    ratio = figures["ratio"]
    return [
        _row(f"Cold start to the first window, median of {figures['runs']} starts, ms "
             "(baseline: an empty PySide6 window)",
             figures["product_everyday_wall_median_ms"], figures["baseline_wall_median_ms"], ratio,
             f"within {figures['target_ratio']}x", ratio <= figures["target_ratio"]),
        _row("Cold start until the window is ready, with the keyring chosen and the Salesforce layer "
             "loaded after the first paint, ms (baseline: an empty PySide6 window)",
             figures["product_ready_wall_median_ms"], figures["baseline_wall_median_ms"],
             figures["ready_ratio"], "reported", None),
        _row("Cold start to the first window, ms (baseline: a window with one label and one button, "
             "which loads fonts as any window with text does)",
             figures["product_everyday_wall_median_ms"], figures["baseline_text_wall_median_ms"],
             figures["text_window_ratio"], "reported", None),
    ]


def _mail_import_rows(figures: dict[str, Any]) -> list[Row]:
    largest = figures["runs"][-1]
    size = f"{largest['bytes'] / 1_000_000:,.0f} MB"
    ratio = figures["time_ratio"]
    return [
        _row(f"Mail import: keys from a {size} mbox, seconds (baseline: mailbox.mbox splitting it)",
             largest["product"]["seconds"], largest["baseline"]["seconds"], ratio, "within 2x", ratio <= 2),
        _row(f"Mail import, peak memory in MB at {size} (growth from the smallest size in brackets)",
             f"{largest['product']['peak_rss_mb']} ({figures['product_memory_growth']}x)",
             largest["baseline"]["peak_rss_mb"], figures["memory_ratio"], "bounded",
             figures["memory_bounded"]),
    ]


def _conflict_viewer_rows(figures: dict[str, Any]) -> list[Row]:
    product, baseline = figures["product"], figures["baseline"]

    def timed_row(figure: str, product_ms: float, baseline_ms: float) -> Row:
        ratio = round(product_ms / baseline_ms, 2) if baseline_ms else None
        return _row(f"Conflict viewer: {figure}", product_ms, baseline_ms, ratio, "reported", None)

    product_stall, baseline_stall = (f"{side['max_stall_ms']} ({side['p99_stall_ms']})"
                                     for side in (product, baseline))
    scroll_steps = product["scroll_to_bottom_ms"]["steps"]
    return [
        _row(f"Conflict viewer at {figures['groups']:,} groups: longest GUI-thread stall, ms, 99th "
             "percentile in brackets (baseline: a plain QTableView of as many rows)",
             product_stall, baseline_stall, figures["max_stall_ratio"],
             f"at most {figures['target_stall_ms']} ms", figures["met"]),
        timed_row("scan result given to the first paint of the groups table, ms",
                  product["first_paint_ms"], baseline["first_paint_ms"]),
        timed_row("Page Down to paint, median ms", product["page_down_ms"]["median"],
                  baseline["page_down_ms"]["median"]),
        timed_row(f"scroll to the bottom to paint, median ms of {scroll_steps} steps fetching every row",
                  product["scroll_to_bottom_ms"]["median"], baseline["scroll_to_bottom_ms"]["median"]),
        timed_row("select all (Ctrl+A) to paint, ms", product["select_all_ms"], baseline["select_all_ms"]),
    ]


BENCHMARKS = (
    # The figure is per 10,000 activities, so even the short run syncs 10,000; the baseline's
    # cost per record does not depend on the count.
    Benchmark("sync_api_calls", ("--baseline-count", "200"), (), _sync_api_calls_rows),
    Benchmark("conflict_scan", ("--tasks", "20000"), (), _conflict_scan_rows),
    Benchmark("cold_start", ("--short",), (), _cold_start_rows),
    Benchmark("mail_import", ("--short",), (), _mail_import_rows),
    # The figure is defined at 100,000 groups, so the short run keeps them and pages down fewer times.
    Benchmark("conflict_viewer", ("--short",), (), _conflict_viewer_rows),
)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, write the summary, and return 1 if any failed, 3 if a target was missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--short", action="store_true", help="CI-sized runs")
    size.add_argument("--full", action="store_true", help="release-sized runs (the default)")
    parser.add_argument("--only", nargs="+", choices=[benchmark.name for benchmark in BENCHMARKS],
                        metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder of the results")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [benchmark for benchmark in BENCHMARKS if not args.only or benchmark.name in args.only]
    rows: list[Row] = []
    failed = []
    for benchmark in chosen:
        extra = benchmark.short_args if args.short else benchmark.full_args
        command = [sys.executable, str(HERE / f"{benchmark.name}.py"), *extra, "--out", str(args.out)]
        print(f"[{benchmark.name}] {' '.join(command)}", flush=True)
        results = args.out / f"{benchmark.name}.json"
        # A result left by an earlier run must not stand in for this one.
        results.unlink(missing_ok=True)
        started = time.monotonic()
        finished = subprocess.run(command, check=False)
        seconds = round(time.monotonic() - started, 1)
        new_rows, problem = _read_rows(benchmark, finished.returncode, results)
        if problem is not None:
            failed.append(benchmark.name)
            new_rows = [_row(f"{benchmark.name}: failed ({problem})", None, None, None, "", False)]
        for row in new_rows:
            row["benchmark"] = benchmark.name
            row["run_seconds"] = seconds
        rows += new_rows

    summary = {
        "size": "short" if args.short else "full",
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (args.out / "summary.md").write_text(markdown(summary), encoding="utf-8")
    print(markdown(summary))
    return 1 if failed else exit_status(all(row["met"] is not False for row in rows))


def _read_rows(benchmark: Benchmark, status: int, results: Path) -> tuple[list[Row], str | None]:
    """Return a finished benchmark's table rows, or no rows and what went wrong."""
    # A benchmark that misses a target still writes its figures, and exits with TARGET_MISSED.
    if status not in (0, TARGET_MISSED):
        return [], f"exit status {status}"
    try:
        return benchmark.rows(json.loads(results.read_text(encoding="utf-8"))), None
    except (OSError, ValueError, KeyError) as error:
        return [], f"exit status {status}, {error.__class__.__name__}: {error}"


def markdown(summary: dict[str, Any]) -> str:
    """Return the summary as a Markdown table, with the run's size, machine and time above it."""
    lines = [
        f"Benchmarks, {summary['size']} run on {summary['machine']}, {summary['when']}.",
        "",
        "| figure | product | baseline | ratio | target | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in summary["rows"]:
        met = {True: "yes", False: "no", None: ""}[row["met"]]
        cells = ["" if row[key] is None else str(row[key]) for key in ("product", "baseline", "ratio")]
        lines.append(f"| {row['figure']} | {' | '.join(cells)} | {row['target']} | {met} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
