"""Snapshot files of resolutions: owner-only, replaced in one step, listed newest first, damage reported."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backstory_desktop.core.duplicates import GroupKind
from backstory_desktop.core.resolution import FieldFill, ResolutionPlan
from backstory_desktop.store.snapshots import (
    APPLIED,
    Snapshot,
    SnapshotError,
    find_snapshot,
    list_snapshots,
    load_snapshot,
    new_snapshot,
    snapshot_folder,
    update_snapshot,
    write_snapshot,
)

ORG = "00D000000000001AAA"
PLAN = ResolutionPlan("00T000000000001AAA", "00T000000000001AAA",
                      (FieldFill("Description", "body", "00T000000000002AAA"),),
                      ("00T000000000002AAA",), ("00T000000000002AAA",), (), key_field="Message_ID__c",
                      cleared_keys=(("00T000000000002AAA", "<a@x>"),), kind=GroupKind.EXACT)
RECORDS: dict[str, dict[str, object]] = {
    "00T000000000001AAA": {"Id": "00T000000000001AAA", "Message_ID__c": "<a@x>", "Description": None,
                           "IsDeleted": False},
    "00T000000000002AAA": {"Id": "00T000000000002AAA", "Message_ID__c": "<a@x>", "Description": "body",
                           "IsDeleted": False, "ActivityDate": "2026-01-02"},
}


def _snapshot(org_id: str = ORG) -> Snapshot:
    return new_snapshot(org_id, "admin@practice.backstory.example", "Message_ID__c", [PLAN], RECORDS)


def test_write_snapshot__round_trip() -> None:
    snapshot = _snapshot()

    loaded = load_snapshot(write_snapshot(snapshot))

    assert loaded.records == RECORDS
    assert loaded.resolution_plans == [PLAN]
    assert loaded.snapshot_id == snapshot.snapshot_id
    assert loaded.status == "written"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_write_snapshot__owner_only() -> None:
    path = write_snapshot(_snapshot())

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_update_snapshot__leaves_no_temporary_files() -> None:
    snapshot = _snapshot()
    write_snapshot(snapshot)
    snapshot.status = APPLIED
    snapshot.outcomes = {"00T000000000002AAA": None}

    update_snapshot(snapshot)

    assert [path.name for path in snapshot_folder(ORG).iterdir()] == [f"{snapshot.snapshot_id}.json"]
    assert find_snapshot(ORG, snapshot.snapshot_id).status == APPLIED


def test_list_snapshots__newest_first() -> None:
    older, newer = _snapshot(), _snapshot()
    write_snapshot(newer)
    write_snapshot(older)

    listed = [snapshot.snapshot_id for snapshot in list_snapshots(ORG)]

    assert listed == [newer.snapshot_id, older.snapshot_id]


def test_list_snapshots__other_org_kept_apart() -> None:
    write_snapshot(_snapshot("00D000000000002AAA"))

    assert list_snapshots(ORG) == []


def test_list_snapshots__damaged_file_left_out() -> None:
    valid = _snapshot()
    write_snapshot(valid)
    (snapshot_folder(ORG) / "20000101T000000000000Z-000000.json").write_text("{not json", encoding="utf-8")

    assert [snapshot.snapshot_id for snapshot in list_snapshots(ORG)] == [valid.snapshot_id]


def test_load_snapshot__damaged_file_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"status": "applied"}', encoding="utf-8")

    with pytest.raises(SnapshotError, match="is damaged") as raised:
        load_snapshot(path)

    assert str(path) in str(raised.value)


def test_find_snapshot__unknown_id_named() -> None:
    with pytest.raises(SnapshotError, match="No snapshot 20000101T000000000000Z-000000"):
        find_snapshot(ORG, "20000101T000000000000Z-000000")


def test_new_snapshot__path_like_org_id_rejected() -> None:
    with pytest.raises(SnapshotError, match="not a valid org Id"):
        _snapshot("../elsewhere")


def test_update_snapshot__failure_own_message() -> None:
    snapshot = _snapshot()
    path = write_snapshot(snapshot)
    path.unlink()
    # A folder in the file's place makes replacing the file fail.
    (path / "blocker").mkdir(parents=True)
    snapshot.status = "applied"

    with pytest.raises(SnapshotError) as raised:
        update_snapshot(snapshot)

    assert str(raised.value).startswith(f"The snapshot {path} could not be updated (")
    assert "so nothing was changed" not in str(raised.value)


def test_load_snapshot__ran_groups_round_trip() -> None:
    snapshot = _snapshot()
    snapshot.ran_group_ids = [PLAN.group_id]

    loaded = load_snapshot(write_snapshot(snapshot))

    assert loaded.ran_group_ids == [PLAN.group_id]


def test_list_snapshots__time_without_zone_left_out() -> None:
    valid, naive = _snapshot(), _snapshot()
    naive.created_at = "2026-11-01T10:00:00"
    write_snapshot(valid)
    write_snapshot(naive)

    assert [snapshot.snapshot_id for snapshot in list_snapshots(ORG)] == [valid.snapshot_id]
    with pytest.raises(SnapshotError, match="without a time zone"):
        load_snapshot(snapshot_folder(ORG) / f"{naive.snapshot_id}.json")


def test_list_snapshots__other_org_in_folder_left_out() -> None:
    stray = _snapshot("00D000000000002AAA")
    path = write_snapshot(stray)
    snapshot_folder(ORG).mkdir()
    path.rename(snapshot_folder(ORG) / path.name)

    assert list_snapshots(ORG) == []
    with pytest.raises(SnapshotError, match="belongs to the org 00D000000000002AAA"):
        find_snapshot(ORG, stray.snapshot_id)
