"""GUI-thread stalls of the conflict viewer at 100,000 duplicate groups, against a plain QTableView.

One offscreen process (QT_QPA_PLATFORM=offscreen) builds ``--groups`` duplicate
groups of two Tasks in memory, cycling through kinds, writers, owners and months
as the page's own 100,000-group test does. It then drives two sides through the
same steps, waiting after each one until the table's viewport has painted again:

- product: the Conflicts page (gui/pages/conflicts.py) with its groups model,
  given the groups as after a scan, its facts prepared on the worker;
- baseline: a plain QTableView over a QAbstractTableModel of the same number of
  rows with the same columns, every cell a string computed before the clock starts.

The steps are:

- load, from handing over the groups to the first paint of the table;
- paging down with the Page Down key;
- scrolling to the bottom until every row is fetched;
- select-all: Ctrl+A in the table, then the product's "Resolve all shown" up to
  the start of its preview job, which fails on the worker because no org is
  connected;
- marking every shown group resolved, as a finished bulk resolution does;
- sorting on two columns, and filtering on the search text and on the kind.

A QTimer at 5 ms (Qt.PreciseTimer) runs on the GUI thread all along. A stall is
the gap between two of its ticks minus 5 ms, so any step that keeps the GUI
thread busy shows as a stall however it was started. The longest stall and the
99th percentile are reported for each side and each step. The figure's target is
no stall over 50 ms in the product.

Usage: python benchmarks/conflict_viewer.py [--short] [--groups N] [--pages N] [--profile] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tables import exit_status, write_tables

DEFAULT_GROUPS = 100_000
FULL_PAGES = 50
SHORT_PAGES = 10
TICK_MS = 5
TARGET_STALL_MS = 50
# A step whose table has not painted after this long has failed.
STEP_TIMEOUT_SECONDS = 300
# The page's size in the wizard's window, as in the page's own tests.
PAGE_WIDTH, PAGE_HEIGHT = 1100, 760
KINDS_CYCLE = ("exact", "normalised", "probable", "clones")
WRITERS = ("Outreach (jane@x.example)", "SalesLoft (bob@x.example)", "Backstory", "Jane Doe")
SEARCH_TEXT = "pricing 4241"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        help=f"page down {SHORT_PAGES} times instead of {FULL_PAGES} (a CI-sized run); "
                             "the number of groups stays the same")
    parser.add_argument("--groups", type=int, default=DEFAULT_GROUPS,
                        help="duplicate groups shown (default 100,000)")
    parser.add_argument("--pages", type=int, default=None, help="Page Down presses; overrides --short")
    parser.add_argument("--profile", action="store_true",
                        help="run the product side under cProfile and print its 25 costliest functions")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="folder of the Markdown and JSON tables")
    args = parser.parse_args(argv)
    pages = FULL_PAGES
    if args.short:
        pages = SHORT_PAGES
    if args.pages is not None:
        pages = args.pages
    if args.groups < 1:
        parser.error(f"--groups must be at least 1, not {args.groups}")
    if pages < 1:
        parser.error(f"--pages must be at least 1, not {pages}")

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="backstory-bench-") as folder:
        # Settings and logs go to this folder, never to the user's own data folder.
        os.environ["BACKSTORY_DESKTOP_HOME"] = folder
        figures = measure(Path(folder), args.groups, pages, args.profile)
    write_tables(args.out, "conflict_viewer", figures, markdown(figures))
    print(markdown(figures))
    return exit_status(figures["met"])


def make_groups(count: int) -> list[Any]:
    """Build ``count`` groups of two Tasks, cycling through kinds, writers, owners and months."""
    from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
    from backstory_desktop.core.records import TaskRecord

    groups = []
    for number in range(count):
        kind = GroupKind(KINDS_CYCLE[number % len(KINDS_CYCLE)])
        key = "" if kind is GroupKind.PROBABLE else f"<m{number}@mail.example.com>"
        records = tuple(
            TaskRecord(
                id=f"00T{number:010d}{member}AA", key=key or None, subject=f"Re: pricing {number}",
                owner_name=f"Owner {number % 7}", writer=WRITERS[(number + member) % len(WRITERS)],
                created_date=f"2026-{1 + number % 12:02d}-1{member}T10:00:0{member}.000+0000",
                description_digest=f"{number:016x}" if member == 0 else "",
            )
            for member in range(2)
        )
        groups.append(DuplicateGroup(kind, key, records, f"reason {number}", group_id=records[0].id,
                                     survivor_id=records[0].id, survivor_reason="It is the oldest Task."))
    return groups


class StallClock:
    """A 5 ms QTimer on the GUI thread that files the gap before each tick under the current step."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.step = ""
        self.gaps: dict[str, list[float]] = {}
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self, step: str) -> None:
        self.step = step
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        """Stop ticking, so that the benchmark's own bookkeeping counts as no step's stall."""
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.setdefault(self.step, []).append((now - self._last) * 1000 - TICK_MS)
        self._last = now


class PaintCounter:
    """An event filter that counts the paint events of a view's viewport and times the latest one."""

    def __init__(self, viewport: Any) -> None:
        from PySide6.QtCore import QEvent, QObject

        class _Filter(QObject):
            def eventFilter(inner, watched: Any, event: Any) -> bool:
                if event.type() == QEvent.Type.Paint:
                    self.count += 1
                    self.last = time.perf_counter()
                return False

        self.count = 0
        self.last = 0.0
        self._filter = _Filter()
        viewport.installEventFilter(self._filter)


def spin_until(condition: Callable[[], bool], what: str) -> None:
    """Run the event loop until ``condition`` is true; raise TimeoutError after STEP_TIMEOUT_SECONDS."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.perf_counter() + STEP_TIMEOUT_SECONDS
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what} did not happen within {STEP_TIMEOUT_SECONDS} s")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 5)


def settle(milliseconds: int) -> None:
    """Run the event loop for ``milliseconds``, so queued work and paints of the last step finish."""
    finish = time.perf_counter() + milliseconds / 1000
    spin_until(lambda: time.perf_counter() >= finish, "settling")


class Side:
    """One table driven through the steps: the product's page or the baseline's plain view."""

    name = ""

    def __init__(self) -> None:
        self.view: Any = None
        self.steps: dict[str, Any] = {}

    def load(self) -> None:
        raise NotImplementedError

    def loaded(self) -> bool:
        return True

    def fetched_all(self) -> bool:
        return True

    def sort(self, column: int, descending: bool) -> None:
        from PySide6.QtCore import Qt

        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.view.sortByColumn(column, order)

    def filter_text(self, text: str) -> None:
        raise NotImplementedError

    def filter_kind(self, kind: str) -> None:
        raise NotImplementedError

    def resolve_all(self) -> None:
        """Start whatever acts on every shown group, up to the point where a worker takes over."""

    def mark_all_action(self) -> Callable[[], None]:
        """Return the step that changes the status cell of every shown row, as a bulk resolution does."""
        raise NotImplementedError

    def close(self) -> None:
        self.view.window().close()


class ProductSide(Side):
    """The Conflicts page of a wizard window, as after a scan of the generated groups."""

    name = "product"

    def __init__(self, folder: Path, groups: list[Any]) -> None:
        super().__init__()
        from backstory_desktop.gui.app import create_window
        from backstory_desktop.gui.pages.conflicts import ConflictsPage

        self.window = create_window(folder / "practice.sqlite3")
        self.page = ConflictsPage(self.window.context)
        self.page.resize(PAGE_WIDTH, PAGE_HEIGHT)
        self.page.show()
        self.view = self.page.groups
        self.groups = groups
        # A scan needs a connected enablement run, so the run exists before any scan result does.
        self.run = self.window.context.run
        # The scan counts the flagged groups on the worker for its result, as here before the clock starts.
        flagged = sum(1 for group in groups if group.flagged)
        self.details = {"groups": len(groups), "flagged": flagged, "tasks": 2 * len(groups)}

    def load(self) -> None:
        from backstory_desktop.core.checklist import Step, StepResult, StepStatus

        self.run.groups = self.groups
        self.page.show_scan(StepResult(Step.CONFLICTS, StepStatus.FAILED,
                                       f"Found {len(self.groups)} groups.", self.details))

    def loaded(self) -> bool:
        return not self.window.worker.busy

    def fetched_all(self) -> bool:
        return not self.page.groups_model.canFetchMore()

    def filter_text(self, text: str) -> None:
        self.page.search.setText(text)
        # The search box filters once typing pauses; the pause itself is no stall, so apply it now.
        self.page.apply_filter()

    def filter_kind(self, kind: str) -> None:
        combo = self.page.kind_filter
        combo.setCurrentIndex(max(combo.findText(kind.capitalize() if kind else "Any kind"), 0))

    def resolve_all(self) -> None:
        # With no org connected, the preview job fails on the worker after the GUI thread's part.
        self.page.resolve_all_button.click()

    def mark_all_action(self) -> Callable[[], None]:
        from backstory_desktop.gui.conflict_models import RESOLVED

        shown = [group.group_id for group in self.page.groups_model.shown_groups()]
        return lambda: self.page.refresh_after_resolution(shown, RESOLVED)

    def close(self) -> None:
        self.window.worker.cancel_all()
        self.window.worker.wait_until_idle(60_000)
        self.page.close()
        self.window.close()


class BaselineSide(Side):
    """A plain QTableView over a QAbstractTableModel of precomputed strings, sorted and filtered in Python."""

    name = "baseline"

    def __init__(self, rows: list[tuple[str, ...]], headers: Sequence[str]) -> None:
        super().__init__()
        from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
        from PySide6.QtWidgets import QTableView

        class PlainModel(QAbstractTableModel):
            def __init__(self) -> None:
                super().__init__()
                self.all_rows: list[tuple[str, ...]] = []
                self.rows: list[tuple[str, ...]] = []

            def rowCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008
                return 0 if parent.isValid() else len(self.rows)

            def columnCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008
                return 0 if parent.isValid() else len(headers)

            def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
                if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
                    return headers[section]
                return None

            def data(self, index: Any, role: int = 0) -> Any:
                if role != Qt.ItemDataRole.DisplayRole:
                    return None
                return self.rows[index.row()][index.column()]

            def mark_all(self) -> None:
                last = self.index(len(self.rows) - 1, len(headers) - 1)
                self.dataChanged.emit(self.index(0, 0), last)

            def show_rows(self, rows: list[tuple[str, ...]]) -> None:
                self.beginResetModel()
                self.rows = rows
                self.endResetModel()

            def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
                self.show_rows(sorted(self.rows, key=lambda row: row[column],
                                      reverse=order == Qt.SortOrder.DescendingOrder))

        self.source_rows = rows
        self.model = PlainModel()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.resize(PAGE_WIDTH, PAGE_HEIGHT // 3)
        self.view.show()
        self.kind_column = 0
        self.key_column = 1

    def load(self) -> None:
        self.model.all_rows = self.source_rows
        self.model.show_rows(self.source_rows)

    def mark_all_action(self) -> Callable[[], None]:
        return self.model.mark_all

    def filter_text(self, text: str) -> None:
        needle = text.casefold()
        self.model.show_rows([row for row in self.model.all_rows if needle in row[self.key_column].casefold()
                              or needle in row[-1].casefold()])

    def filter_kind(self, kind: str) -> None:
        self.model.show_rows([row for row in self.model.all_rows
                              if not kind or row[self.kind_column] == kind])


def baseline_rows(groups: Sequence[Any]) -> list[tuple[str, ...]]:
    """Return the cells of each group as the product's table shows them, the subject in the Reason column."""
    rows: list[tuple[str, ...]] = []
    for group in groups:
        newest = max(record.created_date for record in group.records)
        writers = ", ".join(sorted({record.writer for record in group.records}))
        rows.append((group.kind.value, group.key or group.records[0].subject, str(len(group.records)),
                     writers, group.records[0].owner_name or "", newest[:10], "",
                     f"{group.reason} {group.records[0].subject}"))
    return rows


def run_steps(side: Side, clock: StallClock, pages: int) -> dict[str, Any]:
    """Drive ``side`` through every step and return each step's times in milliseconds."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from backstory_desktop.gui.conflict_models import ConflictGroupsModel

    paints = PaintCounter(side.view.viewport())
    times: dict[str, Any] = {}

    def timed(step: str, action: Callable[[], None]) -> float:
        """Run ``action`` and return the milliseconds until the viewport's next paint."""
        clock.step = step
        before = paints.count
        started = time.perf_counter()
        action()
        spin_until(lambda: paints.count > before, f"a paint after {step}")
        return round((paints.last - started) * 1000, 1)

    settle(200)
    clock.start("load")
    times["first_paint_ms"] = timed("load", side.load)
    started = time.perf_counter()
    spin_until(side.loaded, "the preparation of the groups")
    times["ready_ms"] = round(times["first_paint_ms"] + (time.perf_counter() - started) * 1000, 1)
    settle(100)

    side.view.setFocus()
    page_steps = [timed("page down", lambda: QTest.keyClick(side.view, Qt.Key.Key_PageDown))
                  for _ in range(pages)]
    times["page_down_ms"] = summary(page_steps)
    settle(50)

    bottom_steps = [timed("scroll to bottom", side.view.scrollToBottom)]
    while not side.fetched_all():
        bottom_steps.append(timed("scroll to bottom", side.view.scrollToBottom))
    times["scroll_to_bottom_ms"] = summary(bottom_steps)
    times["rows_fetched"] = side.view.model().rowCount()
    settle(50)

    times["select_all_ms"] = timed("select all", lambda: QTest.keyClick(
        side.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier))
    settle(50)
    clock.stop()
    times["rows_selected"] = len(side.view.selectionModel().selectedRows())
    clock.start("resolve all shown")
    started = time.perf_counter()
    side.resolve_all()
    times["resolve_all_ms"] = round((time.perf_counter() - started) * 1000, 1)
    spin_until(side.loaded, "the end of the preview job")
    settle(50)
    # The ids come with the resolution's outcome, so listing them is no part of the step.
    clock.stop()
    mark_all = side.mark_all_action()
    clock.start("mark all resolved")
    times["mark_all_ms"] = timed("mark all resolved", mark_all)
    settle(50)

    times["sort_newest_ms"] = timed("sort", lambda: side.sort(ConflictGroupsModel.NEWEST, True))
    settle(50)
    times["sort_key_ms"] = timed("sort", lambda: side.sort(ConflictGroupsModel.KEY, False))
    settle(50)
    times["filter_text_ms"] = timed("filter", lambda: side.filter_text(SEARCH_TEXT))
    settle(50)
    times["filter_clear_ms"] = timed("filter", lambda: side.filter_text(""))
    settle(50)
    times["filter_kind_ms"] = timed("filter", lambda: side.filter_kind("probable"))
    settle(100)
    clock.stop()
    return times


def stall_figures(gaps: dict[str, list[float]]) -> dict[str, Any]:
    """Return the longest stall and the 99th percentile over every step, and the longest of each step."""
    every = sorted(gap for step_gaps in gaps.values() for gap in step_gaps)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))] if every else 0.0
    return {
        "max_stall_ms": round(max(every, default=0.0), 1),
        "p99_stall_ms": round(p99, 1),
        "ticks": len(every),
        "max_stall_ms_by_step": {step: round(max(step_gaps), 1) for step, step_gaps in gaps.items()},
    }


def summary(milliseconds: list[float]) -> dict[str, Any]:
    """Return the count, median and maximum of a step's repeated times."""
    return {"steps": len(milliseconds), "median": round(statistics.median(milliseconds), 1),
            "max": round(max(milliseconds), 1)}


def measure(folder: Path, group_count: int, pages: int, profile: bool) -> dict[str, Any]:
    """Build the groups, drive the baseline and then the product, and return both sides' figures."""
    from PySide6.QtWidgets import QApplication

    from backstory_desktop.gui.conflict_models import ConflictGroupsModel

    app = QApplication.instance() or QApplication(sys.argv)
    groups = make_groups(group_count)
    figures: dict[str, Any] = {"groups": group_count, "pages": pages, "tick_ms": TICK_MS,
                               "target_stall_ms": TARGET_STALL_MS}
    load_before = os.getloadavg()

    baseline = BaselineSide(baseline_rows(groups), ConflictGroupsModel.HEADERS)
    del groups
    # Each side starts after a full collection, with none of the other side's objects alive.
    gc.collect()
    clock = StallClock()
    figures["baseline"] = run_steps(baseline, clock, pages)
    figures["baseline"].update(stall_figures(clock.gaps))
    baseline.close()
    del baseline
    app.processEvents()

    product = ProductSide(folder, make_groups(group_count))
    gc.collect()
    clock = StallClock()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    figures["product"] = run_steps(product, clock, pages)
    if profiler is not None:
        profiler.disable()
        print(profile_text(profiler))
    figures["product"].update(stall_figures(clock.gaps))
    product.close()
    app.processEvents()

    product_figures, baseline_figures = figures["product"], figures["baseline"]
    figures["first_paint_ratio"] = ratio(product_figures["first_paint_ms"],
                                         baseline_figures["first_paint_ms"])
    figures["max_stall_ratio"] = ratio(product_figures["max_stall_ms"], baseline_figures["max_stall_ms"])
    figures["met"] = product_figures["max_stall_ms"] <= TARGET_STALL_MS
    figures["load_average_before"] = [round(load, 2) for load in load_before]
    figures["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    figures["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return figures


def ratio(product: float, baseline: float) -> float | None:
    return round(product / baseline, 2) if baseline else None


def profile_text(profiler: cProfile.Profile) -> str:
    """Return the 25 functions of the product side with the most cumulative time."""
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return text.getvalue()


def markdown(figures: dict[str, Any]) -> str:
    """Return the figures as a Markdown table, product beside baseline, times in milliseconds."""
    product, baseline = figures["product"], figures["baseline"]

    def repeated(side: dict[str, Any], name: str) -> str:
        step = side[name]
        return f"{step['median']} (max {step['max']}, {step['steps']} steps)"

    rows = [
        ("longest GUI-thread stall", product["max_stall_ms"], baseline["max_stall_ms"]),
        ("99th percentile stall", product["p99_stall_ms"], baseline["p99_stall_ms"]),
        ("load to first paint", product["first_paint_ms"], baseline["first_paint_ms"]),
        ("load to sort and filter ready", product["ready_ms"], baseline["ready_ms"]),
        ("Page Down to paint, median", repeated(product, "page_down_ms"), repeated(baseline, "page_down_ms")),
        ("scroll to bottom to paint, median", repeated(product, "scroll_to_bottom_ms"),
         repeated(baseline, "scroll_to_bottom_ms")),
        ("select all (Ctrl+A) to paint", product["select_all_ms"], baseline["select_all_ms"]),
        ("Resolve all shown, GUI-thread part", product["resolve_all_ms"], ""),
        ("every shown group marked resolved, to paint", product["mark_all_ms"], baseline["mark_all_ms"]),
        ("sort on Newest to paint", product["sort_newest_ms"], baseline["sort_newest_ms"]),
        ("sort on Key to paint", product["sort_key_ms"], baseline["sort_key_ms"]),
        ("search filter to paint", product["filter_text_ms"], baseline["filter_text_ms"]),
        ("clear search to paint", product["filter_clear_ms"], baseline["filter_clear_ms"]),
        ("kind filter to paint", product["filter_kind_ms"], baseline["filter_kind_ms"]),
    ]
    lines = [
        f"Conflict viewer, {figures['groups']:,} groups, {figures['when']}, {figures['machine']}. "
        f"Times in ms; a stall is a gap between {TICK_MS} ms timer ticks minus {TICK_MS} ms.",
        "",
        "| step | product | plain QTableView |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {step} | {product_cell} | {baseline_cell} |" for step, product_cell, baseline_cell in rows]
    lines += ["", "Longest stall by step, ms:", "", "| step | product | plain QTableView |",
              "| --- | ---: | ---: |"]
    steps = dict.fromkeys([*product["max_stall_ms_by_step"], *baseline["max_stall_ms_by_step"]])
    lines += [f"| {step} | {product['max_stall_ms_by_step'].get(step, '')} | "
              f"{baseline['max_stall_ms_by_step'].get(step, '')} |" for step in steps]
    met = "met" if figures["met"] else "not met"
    lines += ["", f"Target: no stall over {TARGET_STALL_MS} ms in the product: {met}."]
    return "\n".join(lines) + "\n"



if __name__ == "__main__":
    sys.exit(main())
