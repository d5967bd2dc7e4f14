"""Time and peak memory of reading Message-IDs from a large mbox, against Python's mailbox module.

The product side reads the file with ``backstory_desktop.sources.mbox.read_mbox``,
the reader the sync plans from, and counts the messages and the Message-ID
keys it yields. The baseline only splits the same file with the standard
library's ``mailbox.mbox``: it lists the messages and reads each one's bytes
with ``get_bytes`` to take its length, parsing nothing.

The mbox is built in a temporary folder, and deleted at the end, by repeating
the bundled sample mailbox and every mbox file of the test mail corpus (the
folder in BACKSTORY_MAIL_CORPUS, else ``../shared/data/mail`` beside the
checkout, else none). Each side runs in its own child process, so the peak
resident set size (VmHWM in /proc/self/status, Linux) is that side's alone.
Each size is written just before it is read, so with enough free memory
both sides read the file from the page cache.

Each side is measured at two sizes, so that the product's memory can be
shown to stay bounded: 50 MB and 1 GB in a full run, 5 MB and 50 MB with
``--short``. With ``--profile`` the product's reader also runs under cProfile
on a 100 MB file, and its top costs are printed.

Usage: python benchmarks/mail_import.py [--short] [--profile] [--corpus FOLDER] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tables import exit_status, write_tables

# The product's reading time may be at most this multiple of the baseline's.
TARGET_RATIO = 2.0
# The product's memory counts as bounded when its peak at the large size is at
# most this multiple of its peak at the small size.
BOUNDED_GROWTH = 1.5
FULL_SIZES = (50_000_000, 1_000_000_000)
SHORT_SIZES = (5_000_000, 50_000_000)
PROFILE_SIZE = 100_000_000
MB = 1_000_000

_CHECKOUT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        help="measure at 5 MB and 50 MB instead of 50 MB and 1 GB")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the product's reader on a 100 MB file and print its top costs")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="folder searched for mbox files to repeat besides the sample mailbox "
                             "(default: BACKSTORY_MAIL_CORPUS, else ../shared/data/mail beside the checkout)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder of the Markdown and JSON tables")
    # A child process reads one mbox with one reader and prints its figures as JSON.
    parser.add_argument("--side", choices=("product", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--mbox", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side is not None:
        print(json.dumps(read_side(args.side, args.mbox, profile=args.profile)))
        return 0

    sources = corpus_mailboxes(args.corpus)
    with tempfile.TemporaryDirectory(prefix="backstory-bench-") as folder:
        mailbox_path = Path(folder) / "bench.mbox"
        figures = measure(mailbox_path, sources, SHORT_SIZES if args.short else FULL_SIZES)
        if args.profile:
            mailbox_path.unlink()
            profile_path = Path(folder) / "profile.mbox"
            extend_mailbox(profile_path, sources, PROFILE_SIZE)
            print(profile_product(profile_path))
    write_tables(args.out, "mail_import", figures, markdown(figures))
    print(markdown(figures))
    return exit_status(figures["time_ratio"] <= TARGET_RATIO and figures["memory_bounded"])


def corpus_mailboxes(corpus: Path | None) -> list[Path]:
    """Return the sample mailbox and the mbox files of the corpus folder, in a fixed order."""
    from backstory_desktop.bundled import sample_mailbox_path

    if corpus is None:
        configured = os.environ.get("BACKSTORY_MAIL_CORPUS")
        corpus = Path(configured) if configured else _CHECKOUT.parent / "shared" / "data" / "mail"
    found = [sample_mailbox_path()]
    if corpus.is_dir():
        # Files named like an mbox (.mbox, .mboxrd, mbox.rlug, .mbox.txt) that start with a "From " line.
        candidates = sorted(corpus.rglob("*mbox*"))
        found += [path for path in candidates if path.is_file() and _starts_with_from(path)]
    return found


def _starts_with_from(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.readline(4096).startswith(b"From ")


def extend_mailbox(path: Path, sources: list[Path], size: int) -> int:
    """Append copies of the source mailboxes to ``path`` until it contains at least ``size`` bytes.

    Every copy ends with a blank line, so that the next one's first "From " line
    is a separator for both readers. Returns the size of the file.
    """
    pieces = []
    for source in sources:
        data = source.read_bytes()
        pieces.append(data.rstrip(b"\r\n") + b"\n\n")
    block = b"".join(pieces)

    written = path.stat().st_size if path.exists() else 0
    with path.open("ab") as stream:
        while written < size:
            stream.write(block)
            written += len(block)
    return written


def measure(path: Path, sources: list[Path], sizes: tuple[int, int]) -> dict[str, Any]:
    """Build the mbox at each size and read it with the baseline, then with the product."""
    runs: list[dict[str, Any]] = []
    for size in sizes:
        actual = extend_mailbox(path, sources, size)
        baseline = _run_side("baseline", path)
        product = _run_side("product", path)
        runs.append({"bytes": actual, "product": product, "baseline": baseline})

    small, large = runs
    product_growth = large["product"]["peak_rss_mb"] / small["product"]["peak_rss_mb"]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "sources": [source.name for source in sources],
        "runs": runs,
        "time_ratio": round(large["product"]["seconds"] / large["baseline"]["seconds"], 2),
        "memory_ratio": round(large["product"]["peak_rss_mb"] / large["baseline"]["peak_rss_mb"], 2),
        "product_memory_growth": round(product_growth, 2),
        "memory_bounded": product_growth <= BOUNDED_GROWTH,
    }


def _run_side(side: str, path: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--mbox", str(path)]
    started = time.perf_counter()
    completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=_CHECKOUT)
    wall_seconds = time.perf_counter() - started
    figures: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    figures["process_seconds"] = round(wall_seconds, 2)
    size = path.stat().st_size
    figures["mb_per_second"] = round(size / MB / figures["seconds"], 1)
    figures["messages_per_second"] = round(figures["messages"] / figures["seconds"])
    return figures


def read_side(side: str, path: Path, *, profile: bool = False) -> dict[str, Any]:
    """Read ``path`` with one reader in this process and return its counts, time and peak memory."""
    reader = _read_with_product if side == "product" else _read_with_mailbox_module
    started = time.perf_counter()
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        counts = profiler.runcall(reader, path)
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(20)
        print(report.getvalue(), file=sys.stderr)
    else:
        counts = reader(path)
    seconds = time.perf_counter() - started
    return {**counts, "seconds": round(seconds, 3), "peak_rss_mb": round(_peak_rss_bytes() / MB, 1)}


def _read_with_product(path: Path) -> dict[str, int]:
    from backstory_desktop.core.activity import MailActivity
    from backstory_desktop.sources.mbox import read_mbox

    def ignore_progress(done: int, total: int, label: str) -> None:
        pass

    messages = problems = keys = 0
    # The corpus is repeated, so the distinct keys stay as few as in one copy of it.
    distinct: set[str] = set()
    # The sync passes a progress callback and a cancel event, so their checks are timed too.
    for item in read_mbox(path, progress=ignore_progress, cancel=threading.Event()):
        if not isinstance(item, MailActivity):
            problems += 1
            continue
        messages += 1
        if item.message_id.key is not None:
            keys += 1
            distinct.add(item.message_id.key)
    return {"messages": messages, "problems": problems, "keys": keys, "distinct_keys": len(distinct)}


def _read_with_mailbox_module(path: Path) -> dict[str, int]:
    import mailbox

    messages = total_bytes = 0
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            total_bytes += len(box.get_bytes(key))
            messages += 1
    finally:
        box.close()
    return {"messages": messages, "message_bytes": total_bytes}


def _peak_rss_bytes() -> int:
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    # Linux gives ru_maxrss in kilobytes and macOS in bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def profile_product(path: Path) -> str:
    """Run the product's reader under cProfile in a child process and return its top costs."""
    command = [sys.executable, str(Path(__file__).resolve()), "--side", "product", "--mbox", str(path),
               "--profile"]
    completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=_CHECKOUT)
    size = path.stat().st_size
    return f"cProfile of read_mbox on {size / MB:.0f} MB, by own time:\n{completed.stderr}"


def markdown(figures: dict[str, Any]) -> str:
    """Return the figures as a Markdown table."""
    small, large = figures["runs"]
    small_mb = f"{small['bytes'] / MB:,.0f} MB"
    large_mb = f"{large['bytes'] / MB:,.0f} MB"
    product, baseline = large["product"], large["baseline"]
    bounded = "bounded" if figures["memory_bounded"] else "not bounded"
    lines = [
        "| figure | product | mailbox.mbox split | ratio | target |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| seconds to read {large_mb} | {product['seconds']} | {baseline['seconds']} | "
        f"{figures['time_ratio']} | at most {TARGET_RATIO} |",
        f"| MB/s, {large_mb} | {product['mb_per_second']} | {baseline['mb_per_second']} | | |",
        f"| messages/s, {large_mb} | {product['messages_per_second']:,} | "
        f"{baseline['messages_per_second']:,} | | |",
        f"| messages, {large_mb} | {product['messages']:,} (+{product['problems']:,} unreadable) | "
        f"{baseline['messages']:,} | | |",
        f"| Message-ID keys, {large_mb} | {product['keys']:,} ({product['distinct_keys']:,} distinct) | "
        "not read | | |",
        f"| peak RSS MB, {large_mb} | {product['peak_rss_mb']} | {baseline['peak_rss_mb']} | "
        f"{figures['memory_ratio']} | |",
        f"| peak RSS MB, {small_mb} | {small['product']['peak_rss_mb']} | "
        f"{small['baseline']['peak_rss_mb']} | | |",
        f"| product peak RSS, {large_mb} / {small_mb} | {figures['product_memory_growth']} ({bounded}) | "
        f"| | at most {BOUNDED_GROWTH} |",
        "",
        f"Machine: {figures['machine']}; 1-minute load average {figures['load_average_1min']}.",
    ]
    return "\n".join(lines) + "\n"



if __name__ == "__main__":
    sys.exit(main())
