"""Cold start to the wizard's first painted window, against an empty PySide6 window.

Each start is a new `python -c` process on the offscreen Qt platform. The product
starts as the `backstory-desktop` command does: it runs the command line's main()
with no arguments, which sets up logging and opens the wizard, and exits at the
window's first paint event. The baseline is the same process with an empty
QMainWindow of the wizard's size. The runs alternate between the kinds, so a
change in machine load spreads over all of them.

Before the first start the package is compiled to bytecode, as pip does when it
installs it, so that no start compiles the package's modules.

Two times are taken for every start. The wall time runs from spawn to exit of
the child process, measured by the parent, so it includes the interpreter's own
start. The in-process time runs from the first line of the child's code to its
first paint event, so it excludes the interpreter's start.

The product runs with BACKSTORY_DESKTOP_HOME set to a temporary folder, in two
ways. The everyday start reuses one folder for every run, as an admin's later
starts do. The first start gets a new, empty folder every run. Creating the
window neither seeds nor opens the practice org, since that happens when the admin
connects, so the two are expected to be close. A `python -c` that prints one
line is timed too, as the floor under which no Python program starts.

The wizard leaves some start-up work until after its first paint: choosing the keyring
backend and creating the enablement run, which loads the Salesforce layer. A third product
start waits for the window's `ready` signal, emitted when that work is done, and exits there.
Its time is reported beside the others, but the target applies to the first paint only.

A second baseline, reported only, is a window with one label and one button: the
first paint of any window with text loads fonts, which the empty window skips.

Usage: python benchmarks/cold_start.py [--short] [--runs N] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tables import exit_status, write_tables

FULL_RUNS = 10
SHORT_RUNS = 3
# The product may take at most this many times the empty window's median wall time.
TARGET_RATIO = 1.5
# A child that has painted nothing after this long gives up with NO_PAINT_STATUS, and the
# parent kills one that is still running after CHILD_TIMEOUT_SECONDS.
PAINT_TIMEOUT_SECONDS = 60
NO_PAINT_STATUS = 3
CHILD_TIMEOUT_SECONDS = 120

# The child's code. On the first paint event of any widget in the window it records the time and
# leaves the event loop, or with {wait_for_ready} it leaves at the window's `ready` signal. Then
# it prints the times as JSON and ends with os._exit(), so Qt's and Python's teardown, which no
# admin waits for, stays out of the wall time. {imports} and {start} are replaced by the lines
# that import what the window needs and open it, into `window` or through the product's command.
CHILD_TEMPLATE = """\
import time
_started = time.perf_counter()
import json, os, sys
{imports}
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
class _FirstPaint(QObject):
    def __init__(self):
        super().__init__()
        self.seconds = None
        self.ready_seconds = None
        self.window = ""
    def eventFilter(self, watched, event):
        if (self.seconds is None and event.type() == QEvent.Type.Paint and watched.isWidgetType()
                and watched.window().isVisible()):
            self.seconds = time.perf_counter() - _started
            self.window = type(watched.window()).__name__
            if {wait_for_ready}:
                watched.window().ready.connect(self.ready)
            else:
                QTimer.singleShot(0, QApplication.quit)
        return False
    def ready(self):
        self.ready_seconds = time.perf_counter() - _started
        QApplication.quit()
app = QApplication(sys.argv)
first_paint = _FirstPaint()
app.installEventFilter(first_paint)
QTimer.singleShot({timeout_ms}, QApplication.quit)
{start}
print(json.dumps({{"first_paint_seconds": first_paint.seconds, "ready_seconds": first_paint.ready_seconds,
                  "window": first_paint.window}}))
sys.stdout.flush()
finished = first_paint.seconds is not None and (first_paint.ready_seconds is not None or not {wait_for_ready})
os._exit(0 if finished else {no_paint_status})
"""

# The product starts as `backstory-desktop` does with no arguments: the command line's main()
# parses them, sets up logging and opens the wizard, whose run_gui() uses the QApplication made
# above and runs its event loop. The command line's modules are imported before PySide6, as
# the command does, because PySide6's import hook reads the source of every module imported
# after it.
PRODUCT_IMPORTS = "from backstory_desktop.cli import main"
PRODUCT_START = "main([])"

BASELINE_IMPORTS = "from PySide6.QtWidgets import QMainWindow"
BASELINE_START = """\
window = QMainWindow()
window.resize({width}, {height})
window.show()
app.exec()"""

# A second baseline: the least a window that shows text needs. Its first paint loads fonts,
# which the empty window never does, so it shows how much of the gap any wizard would pay.
TEXT_BASELINE_IMPORTS = "from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QVBoxLayout, QWidget"
TEXT_BASELINE_START = """\
window = QMainWindow()
window.resize({width}, {height})
_page = QWidget()
_layout = QVBoxLayout(_page)
_layout.addWidget(QLabel("Connect to your org"))
_layout.addWidget(QPushButton("Connect"))
window.setCentralWidget(_page)
window.show()
app.exec()"""

KINDS = ("product_everyday", "product_first", "product_ready", "baseline", "baseline_text")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        help=f"run each kind {SHORT_RUNS} times instead of {FULL_RUNS} (a CI-sized run)")
    parser.add_argument("--runs", type=int, default=None,
                        help="starts of each kind; overrides --short")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder of the Markdown and JSON tables")
    args = parser.parse_args(argv)
    runs = FULL_RUNS
    if args.short:
        runs = SHORT_RUNS
    if args.runs is not None:
        runs = args.runs
    if runs < 1:
        parser.error(f"--runs must be at least 1, not {runs}")
    figures = measure(runs)
    write_tables(args.out, "cold_start", figures, markdown(figures))
    print(markdown(figures))
    return exit_status(figures["ratio"] <= TARGET_RATIO)


def measure(runs: int) -> dict[str, Any]:
    """Time ``runs`` starts of each kind and return their medians, minimums and ratios."""
    import backstory_desktop
    from backstory_desktop.gui.wizard import WINDOW_SIZE

    compileall.compile_dir(Path(backstory_desktop.__file__).parent, quiet=1)
    width, height = WINDOW_SIZE.width(), WINDOW_SIZE.height()
    load_before = os.getloadavg()
    wall, paint = time_starts(runs, width, height)
    figures: dict[str, Any] = {"runs": runs, "window_size": f"{width}x{height}"}
    figures.update(summarise(wall, "wall"))
    figures.update(summarise(paint, "paint"))

    baseline_wall = statistics.median(wall["baseline"])
    baseline_paint = statistics.median(paint["baseline"])
    figures["ratio"] = round(statistics.median(wall["product_everyday"]) / baseline_wall, 2)
    figures["first_start_ratio"] = round(statistics.median(wall["product_first"]) / baseline_wall, 2)
    figures["paint_ratio"] = round(statistics.median(paint["product_everyday"]) / baseline_paint, 2)
    figures["ready_ratio"] = round(statistics.median(wall["product_ready"]) / baseline_wall, 2)
    figures["text_window_ratio"] = round(statistics.median(wall["product_everyday"])
                                         / statistics.median(wall["baseline_text"]), 2)
    figures["target_ratio"] = TARGET_RATIO
    # Other jobs on the machine slow every kind, but not by the same factor.
    figures["load_average_before"] = [round(load, 2) for load in load_before]
    figures["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    figures["cpu_count"] = os.cpu_count()
    return figures


def time_starts(runs: int, width: int, height: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Start every kind of process once per round, ``runs`` rounds.

    Return the wall seconds of each kind, the bare interpreter included, and the
    in-process seconds to the first paint of each kind that opens a window.
    """
    codes = {
        "product": child_code(PRODUCT_IMPORTS, PRODUCT_START),
        "product_ready": child_code(PRODUCT_IMPORTS, PRODUCT_START, wait_for_ready=True),
        "baseline": child_code(BASELINE_IMPORTS, BASELINE_START.format(width=width, height=height)),
        "baseline_text": child_code(TEXT_BASELINE_IMPORTS,
                                    TEXT_BASELINE_START.format(width=width, height=height)),
    }
    wall: dict[str, list[float]] = {kind: [] for kind in (*KINDS, "interpreter")}
    paint: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="backstory-bench-") as folder:
        everyday_home = Path(folder) / "everyday"
        everyday_home.mkdir()
        for index in range(runs):
            for kind in KINDS:
                home = everyday_home
                if kind == "product_first":
                    home = Path(folder) / f"first-{index}"
                    home.mkdir()
                code = codes[kind if kind in codes else "product"]
                seconds, result = run_child(code, home)
                if kind.startswith("product") and result["window"] != "WizardWindow":
                    raise RuntimeError(f"the product's start painted a {result['window']} first, "
                                       "not the wizard's window")
                wall[kind].append(seconds)
                paint[kind].append(float(result["first_paint_seconds"]))

            seconds, _ = run_child("print('{}')", everyday_home)
            wall["interpreter"].append(seconds)
    return wall, paint


def summarise(times: dict[str, list[float]], measure_name: str) -> dict[str, float]:
    """Return the median and the minimum of each kind's times, in milliseconds."""
    figures = {}
    for kind, seconds in times.items():
        figures[f"{kind}_{measure_name}_median_ms"] = milliseconds(statistics.median(seconds))
        figures[f"{kind}_{measure_name}_min_ms"] = milliseconds(min(seconds))
    return figures


def child_code(imports: str, start: str, *, wait_for_ready: bool = False) -> str:
    """Return the code of one start-up process that opens its window with the lines ``start``.

    With ``wait_for_ready`` the process exits at the window's ``ready`` signal instead of its
    first paint.
    """
    return CHILD_TEMPLATE.format(imports=imports, start=start, timeout_ms=PAINT_TIMEOUT_SECONDS * 1000,
                                 no_paint_status=NO_PAINT_STATUS, wait_for_ready=wait_for_ready)


def run_child(code: str, home: Path) -> tuple[float, dict[str, Any]]:
    """Run ``code`` in a new offscreen Python process and return its wall seconds and its JSON line."""
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", BACKSTORY_DESKTOP_HOME=str(home))
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                               text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode == NO_PAINT_STATUS:
        raise RuntimeError(f"the start-up process painted no window, or its window was not ready, within "
                           f"{PAINT_TIMEOUT_SECONDS} s, so no time was taken; its error output was:\n"
                           f"{completed.stderr}")
    if completed.returncode != 0:
        raise RuntimeError(f"the start-up process failed with exit status {completed.returncode}, "
                           f"so no time was taken; its error output was:\n{completed.stderr}")
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"the start-up process printed no result; its error output was:\n"
                           f"{completed.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    return seconds, result


def milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 1)


def markdown(figures: dict[str, Any]) -> str:
    """Return the figures as a Markdown table of medians, each followed by its minimum."""
    def cell(kind: str, measure_name: str) -> str:
        median = figures[f"{kind}_{measure_name}_median_ms"]
        minimum = figures[f"{kind}_{measure_name}_min_ms"]
        return f"{median} ms (min {minimum})"

    runs = figures["runs"]
    lines = [
        f"| figure (median of {runs} starts) | product | empty QMainWindow | ratio | target |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| spawn to exit at first paint, everyday start | {cell('product_everyday', 'wall')} | "
        f"{cell('baseline', 'wall')} | {figures['ratio']} | at most {TARGET_RATIO} |",
        f"| spawn to exit at first paint, first start (new home) | {cell('product_first', 'wall')} | "
        f"{cell('baseline', 'wall')} | {figures['first_start_ratio']} | |",
        f"| first code line to first paint, everyday start | {cell('product_everyday', 'paint')} | "
        f"{cell('baseline', 'paint')} | {figures['paint_ratio']} | |",
        f"| spawn to exit when ready (deferred start-up work done), everyday start | "
        f"{cell('product_ready', 'wall')} | {cell('baseline', 'wall')} | {figures['ready_ratio']} | |",
        f"| a window with one label and one button, spawn to exit at first paint | "
        f"{cell('baseline_text', 'wall')} | {cell('baseline', 'wall')} | "
        f"product to it: {figures['text_window_ratio']} | |",
        f"| `python -c` printing one line (the floor) | {cell('interpreter', 'wall')} | | | |",
    ]
    return "\n".join(lines) + "\n"



if __name__ == "__main__":
    sys.exit(main())
