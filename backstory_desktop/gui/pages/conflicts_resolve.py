"""The Conflicts page's actions on groups: resolve one, resolve all shown, undo, and export.

``ConflictResolveActions`` is mixed into ``ConflictsPage``: its methods use the
page's groups model, selection, message line and jobs, and the page connects its
buttons to them. Every resolution reads the group's Tasks again on the worker,
shows the diff in a dialog, and writes only once the admin confirms it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from backstory_desktop import conflict_report
from backstory_desktop.core.duplicates import DuplicateGroup
from backstory_desktop.core.jobs import ProgressCallback, check_cancel
from backstory_desktop.core.resolution import ResolutionPlan
from backstory_desktop.enablement import resolution
from backstory_desktop.enablement.resolution import (
    ResolutionOutcome,
    ResolutionPreview,
    UndoOutcome,
    summarise_snapshot,
)
from backstory_desktop.enablement.run import EnablementRun, require_field
from backstory_desktop.gui.conflict_models import RESOLVED, UNDONE, ConflictGroupsModel
from backstory_desktop.gui.pages.base import StepPage
from backstory_desktop.gui.pages.plan_text import as_sentence, counted
from backstory_desktop.gui.resolve_dialogs import (
    BulkResolveDialog,
    ResolveDialog,
    UndoDialog,
    UndoEntry,
    undo_entry,
)
from backstory_desktop.gui.widgets import FAILED_COLOR, PASSED_COLOR
from backstory_desktop.store.snapshots import list_snapshots

CSV_FILE_NAME = "duplicate-tasks.csv"
HTML_FILE_NAME = "duplicate-tasks.html"


def csv_job(path: Path, groups: Sequence[DuplicateGroup], key_field: str, *,
            progress: ProgressCallback, cancel: threading.Event) -> int:
    """Write the groups' Tasks to a CSV file and return how many Tasks it lists.

    The page runs this on its worker.
    """
    return conflict_report.write_csv(path, groups, key_field=key_field)


def html_job(path: Path, run: EnablementRun, groups: Sequence[DuplicateGroup], key_field: str, *,
             progress: ProgressCallback, cancel: threading.Event) -> int:
    """Write the groups as one HTML page and return how many groups it lists."""
    conflict_report.write_html(path, groups, thresholds=run.thresholds, key_field=key_field,
                               title=f"Duplicate Tasks in {run.profile.alias}")
    return len(groups)


def history_job(run: EnablementRun, *, progress: ProgressCallback,
                cancel: threading.Event) -> list[UndoEntry]:
    """Read the resolutions made on the run's org from their snapshots, newest first.

    For each resolution that undo can still act on, this also reads from the org the
    warnings undo would give now (a field made Unique since, purged Tasks).
    """
    snapshots = list_snapshots(run.require_connection().org_id)
    entries: list[UndoEntry] = []
    for position, snapshot in enumerate(snapshots):
        check_cancel(cancel)
        progress(position, len(snapshots), "Reading the resolutions made on this org…")
        warnings = resolution.undo_warnings(run, snapshot) if summarise_snapshot(snapshot).undoable else []
        entries.append(undo_entry(snapshot, warnings=warnings))
    return entries


def bulk_preview_job(run: EnablementRun, shown: Sequence[DuplicateGroup], resolved_ids: Collection[str], *,
                     progress: ProgressCallback, cancel: threading.Event | None,
                     ) -> tuple[list[DuplicateGroup], ResolutionPreview | None]:
    """Pick the shown groups a bulk resolution takes, then read their Tasks again and plan them.

    Picking runs here rather than on the GUI thread because it reads every shown group,
    100,000 of them after a large scan. Groups in ``resolved_ids`` no longer match the
    org, so they are left out. Returns the groups and their preview, or no preview when
    no group is left.
    """
    groups = [group for group in resolution.groups_for_bulk(shown) if group.group_id not in resolved_ids]
    if not groups:
        return groups, None
    return groups, resolution.preview_resolution(run, groups, progress=progress, cancel=cancel)


def outcome_sentence(outcome: ResolutionOutcome) -> str:
    """Return one sentence: how many groups were resolved, and whether any failed or the run stopped."""
    resolved = f"Resolved {counted(len(outcome.resolved_group_ids), 'group')}"
    if outcome.failed:
        return f"{resolved}, and {counted(len(outcome.failed), 'group')} failed: see Details."
    if outcome.stopped:
        return f"{resolved} before the resolution stopped: see Details."
    return f"{resolved}; Undo… can put back what changed."


def outcome_details(outcome: ResolutionOutcome) -> list[str]:
    """Return why the run stopped, each failed group's reason, the snapshot, and that undo can follow."""
    details = [as_sentence(outcome.stopped)] if outcome.stopped else []
    details += [f"Group {group_id}: {as_sentence(reason)}" for group_id, reason in outcome.failed.items()]
    details.append(f"The values before the resolution are saved in {outcome.snapshot_path}, so Undo… can put "
                   "back what was changed.")
    return details


def undo_sentence(outcome: UndoOutcome) -> str:
    """Return one sentence: what undo restored and put back, and whether it left some Tasks as they are."""
    done = (f"Undo restored {counted(len(outcome.restored), 'Task')} from the recycle bin and put back the "
            f"values of {counted(len(outcome.reverted), 'Task')}")
    failed = len(set(outcome.not_in_bin) | set(outcome.failed))
    if failed:
        return f"{done}, but {counted(failed, 'Task')} could not be: see Details."
    if outcome.left_as_is:
        changed = counted(len(outcome.left_as_is), 'Task')
        return f"{done}, and left {changed} changed since as is: see Details."
    return f"{done}."


def undo_details(outcome: UndoOutcome) -> list[str]:
    """Return a sentence for each Task undo could not restore, could not put back, or left as it is."""
    return [*(as_sentence(sentence) for sentence in outcome.not_in_bin.values()),
            *(as_sentence(reason) for reason in outcome.failed.values()),
            *(as_sentence(sentence) for sentence in outcome.left_as_is.values())]


class ConflictResolveActions(StepPage):
    """Mixin of the page's actions: Resolve group…, Resolve all shown…, Undo…, Export CSV…, Export HTML…

    The page that inherits these provides ``groups_model``, ``selected_group()`` and
    ``refresh_after_resolution()``. The dialog each action opens stays reachable
    as an attribute until it closes, so tests drive it by its buttons.
    """

    groups_model: ConflictGroupsModel
    resolve_dialog: ResolveDialog | None = None
    bulk_dialog: BulkResolveDialog | None = None
    undo_dialog: UndoDialog | None = None
    export_dialog: QFileDialog | None = None

    def selected_group(self) -> DuplicateGroup | None:
        raise NotImplementedError

    def refresh_after_resolution(self, group_ids: list[str], status: str) -> None:
        raise NotImplementedError

    # The plan each group was resolved by since the scan, which the page's Compare reads.
    applied_plans: dict[str, ResolutionPlan]

    def _key_field(self) -> str:
        return require_field(self.run).api_name

    # Resolving one group.

    def resolve_selected(self) -> None:
        """Read the selected group's Tasks again, then let the admin choose and confirm the resolution."""
        group = self.selected_group()
        if group is None:
            self.message.show_message("Select a group in the table, then click Resolve group… again.")
            return
        if self.groups_model.status(group.group_id) == RESOLVED:
            self.message.show_message("This group was resolved already: scan again to see its Tasks as the "
                                      "org holds them now.")
            return
        self.start_job("the resolution preview", resolution.preview_resolution, self.run, [group],
                       on_finished=lambda preview: self._choose_resolution(group, preview),
                       progress_message="Reading the group's Tasks again…", cancellable=True)

    def _choose_resolution(self, group: DuplicateGroup, preview: ResolutionPreview) -> None:
        if self.context.closing:
            return
        if not preview.plans:
            if preview.problems:
                self.message.show_message("This group cannot be resolved as it is now: see Details.",
                                          FAILED_COLOR, "\n".join(preview.problems))
            else:
                self.message.show_message("Nothing is left to resolve in this group.")
            return
        self.resolve_dialog = ResolveDialog(group, preview.records, self._key_field(), self,
                                            flag_field=preview.flag_field)
        self.resolve_dialog.accepted.connect(lambda: self._resolve_dialog_closed(preview, True))
        self.resolve_dialog.rejected.connect(lambda: self._resolve_dialog_closed(preview, False))
        self.resolve_dialog.open()

    def _resolve_dialog_closed(self, preview: ResolutionPreview, accepted: bool) -> None:
        dialog = self.resolve_dialog
        self.resolve_dialog = None
        if dialog is None or self.context.closing:
            return
        dialog.deleteLater()
        if accepted:
            self._apply(preview, [dialog.plan()])
        else:
            self.message.show_message("Nothing was changed.")

    # Resolving every shown group.

    def resolve_shown(self) -> None:
        """Read the shown duplicates and keyed clones again, then confirm all their resolutions at once."""
        self.start_job("the resolution preview", bulk_preview_job, self.run, self.groups_model.shown_groups(),
                       self.groups_model.ids_with_status(RESOLVED), on_finished=self._bulk_preview_ready,
                       progress_message="Reading the shown groups' Tasks again…", cancellable=True)

    def _bulk_preview_ready(self, picked: tuple[list[DuplicateGroup], ResolutionPreview | None]) -> None:
        groups, preview = picked
        if preview is None:
            self.message.show_message("No shown group is left to resolve, because clones with at most one "
                                      "keyed Task are kept as they are: change the filter, or scan again.")
            return
        self._confirm_bulk(groups, preview)

    def _confirm_bulk(self, groups: Sequence[DuplicateGroup], preview: ResolutionPreview) -> None:
        if self.context.closing:
            return
        titles = {group.group_id: group.key or group.subject or group.group_id for group in groups}
        self.bulk_dialog = BulkResolveDialog(preview.plans, preview.problems, titles, self)
        self.bulk_dialog.accepted.connect(lambda: self._bulk_dialog_closed(preview, True))
        self.bulk_dialog.rejected.connect(lambda: self._bulk_dialog_closed(preview, False))
        self.bulk_dialog.open()

    def _bulk_dialog_closed(self, preview: ResolutionPreview, accepted: bool) -> None:
        dialog = self.bulk_dialog
        self.bulk_dialog = None
        if dialog is None or self.context.closing:
            return
        dialog.deleteLater()
        if accepted:
            self._apply(preview, dialog.plans)
        else:
            self.message.show_message("Nothing was changed.")

    def _apply(self, preview: ResolutionPreview, plans: Sequence[ResolutionPlan]) -> None:
        chosen = replace(preview, plans=list(plans), problems=[])
        self.start_job("the resolution", resolution.apply_resolution, self.run, chosen,
                       on_finished=lambda outcome: self._show_resolution(outcome, chosen.plans),
                       progress_message="Resolving the duplicate groups…", cancellable=True)

    def _show_resolution(self, outcome: ResolutionOutcome, plans: Sequence[ResolutionPlan]) -> None:
        by_group = {plan.group_id: plan for plan in plans}
        for group_id in outcome.resolved_group_ids:
            if group_id in by_group:
                self.applied_plans[group_id] = by_group[group_id]
        if outcome.resolved_group_ids:
            self.refresh_after_resolution(list(outcome.resolved_group_ids), RESOLVED)
        for group_id, reason in outcome.failed.items():
            self.refresh_after_resolution([group_id], f"failed: {reason}")
        color = FAILED_COLOR if outcome.failed or outcome.stopped else PASSED_COLOR
        self.message.show_message(outcome_sentence(outcome), color, "\n".join(outcome_details(outcome)))
        self.record_changed()

    # Undo.

    def undo_resolution(self) -> None:
        """List the resolutions made on this org, then undo the one the admin picks."""
        self.start_job("the resolution history", history_job, self.run, on_finished=self._choose_undo,
                       progress_message="Reading the resolutions made on this org…", cancellable=True)

    def _choose_undo(self, entries: list[UndoEntry]) -> None:
        if self.context.closing:
            return
        if not entries:
            self.message.show_message("No resolution was made on this org from this computer, so there is "
                                      "nothing to undo.")
            return
        self.undo_dialog = UndoDialog(entries, self)
        self.undo_dialog.accepted.connect(lambda: self._undo_dialog_closed(True))
        self.undo_dialog.rejected.connect(lambda: self._undo_dialog_closed(False))
        self.undo_dialog.open()

    def _undo_dialog_closed(self, accepted: bool) -> None:
        dialog = self.undo_dialog
        self.undo_dialog = None
        if dialog is None or self.context.closing:
            return
        dialog.deleteLater()
        entry = dialog.chosen()
        if not accepted or entry is None:
            self.message.show_message("Nothing was changed.")
            return
        self.start_job("the undo", resolution.undo_resolution, self.run, entry.summary.snapshot_id,
                       on_finished=lambda outcome: self._show_undone(entry, outcome),
                       progress_message="Undoing the resolution…", cancellable=True)

    def _show_undone(self, entry: UndoEntry, outcome: UndoOutcome) -> None:
        # Only the groups the resolution started writing were changed, so only they are undone.
        self.refresh_after_resolution(list(entry.ran_group_ids), UNDONE)
        color = FAILED_COLOR if outcome.not_in_bin or outcome.failed or outcome.left_as_is else PASSED_COLOR
        self.message.show_message(undo_sentence(outcome), color, "\n".join(undo_details(outcome)))
        self.record_changed()

    # Export.

    def export_csv(self) -> None:
        """Ask where to save, then write every shown group's Tasks to a CSV file on the worker."""
        self._ask_export_path("Export the groups as CSV", CSV_FILE_NAME, "CSV files (*.csv)", self._write_csv)

    def export_html(self) -> None:
        """Ask where to save, then write a report of the shown groups as one HTML page on the worker."""
        self._ask_export_path("Export the groups as HTML", HTML_FILE_NAME, "HTML files (*.html)",
                              self._write_html)

    def _ask_export_path(self, title: str, file_name: str, file_filter: str,
                         write: Callable[[str], None]) -> None:
        if not self.groups_model.shown_groups():
            self.message.show_message("No group is shown, so there is nothing to export: scan first, or "
                                      "change the filter.")
            return
        dialog = QFileDialog(self, title, str(Path.home() / file_name), file_filter)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(file_name.rsplit(".", 1)[1])
        dialog.fileSelected.connect(write)
        dialog.finished.connect(lambda _result: self._export_dialog_closed(dialog))
        self.export_dialog = dialog
        dialog.open()

    def _export_dialog_closed(self, dialog: QFileDialog) -> None:
        if self.export_dialog is dialog:
            self.export_dialog = None
        dialog.deleteLater()

    def _write_csv(self, chosen: str) -> None:
        path = Path(chosen)
        self.start_job("the CSV export", csv_job, path, self.groups_model.shown_groups(), self._key_field(),
                       on_finished=lambda count: self._exported(path, counted(count, 'Task')),
                       progress_message="Writing the CSV file…")

    def _write_html(self, chosen: str) -> None:
        path = Path(chosen)
        self.start_job("the HTML export", html_job, path, self.run, self.groups_model.shown_groups(),
                       self._key_field(),
                       on_finished=lambda count: self._exported(path, counted(count, 'group')),
                       progress_message="Writing the HTML report…")

    def _exported(self, path: Path, written: str) -> None:
        self.message.show_message(f"Wrote {written} to {path}.")
