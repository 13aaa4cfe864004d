"""The delivery record: found again after a crash, never shared by two live runs; and the
written frontier a checkpoint records (parts finish out of order)."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import pytest

from sftp_s3_tui.engine.resume.delivery_record import DeliveryBusy, DeliveryRecord, DeliveryState
from sftp_s3_tui.engine.transfer.delivery_stream import Frontier as _Frontier

STATE = DeliveryState(
    temp_path="/in/.a.csv.0011aabb.partial",
    bucket="b",
    key="a.csv",
    etag='"e"',
    version_id=None,
    size=30,
)


def test_a_crashed_runs_record_is_found_and_a_live_one_is_busy(tmp_path: Path) -> None:
    first = DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv")
    assert first.claim() is None
    first.write(STATE)
    first.checkpoint(STATE, 10, 1234)

    with pytest.raises(DeliveryBusy, match=r"Another run is delivering sftp://u@h:22/in/a\.csv"):
        DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv").claim()

    first.release()  # as a kill -9 would: the lock goes with the process, the record stays
    second = DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv")
    left = second.claim()
    assert left is not None and (left.temp_path, left.written, left.crc64nvme) == (
        STATE.temp_path,
        10,
        1234,
    )
    second.forget()
    second.release()
    assert DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv").claim() is None


def test_a_finished_delivery_leaves_no_file_in_the_record_folder(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv", "c.csv"):
        record = DeliveryRecord(tmp_path, f"sftp://u@h:22/in/{name}")
        assert record.claim() is None
        record.write(STATE, sync=False)
        record.forget()
        record.release()
    assert list(tmp_path.iterdir()) == []  # neither records nor lock files pile up


def test_a_first_record_kept_in_the_lock_file_is_found_after_a_kill(tmp_path: Path) -> None:
    """A one-part object's record is kept in its lock file (one file created per object,
    not two); after a kill the next run finds it there, as it finds a JSON record, and a
    later durable write moves it to the JSON file. The folder, removed while the process
    lives, is made again."""
    folder = tmp_path / "records"
    first = DeliveryRecord(folder, "sftp://u@h:22/in/a.csv")
    assert first.claim() is None
    first.write(STATE, sync=False, first=True)
    assert [p.suffix for p in folder.iterdir()] == [".lock"]  # nothing else
    first.release()  # killed: the record stays
    again = DeliveryRecord(folder, "sftp://u@h:22/in/a.csv")
    assert again.claim() == STATE
    moved = again.checkpoint(STATE, 10, 99)  # durable: the JSON file, the lock emptied
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".lock"]
    again.release()
    third = DeliveryRecord(folder, "sftp://u@h:22/in/a.csv")
    assert third.claim() == moved
    third.forget()
    third.release()
    assert list(folder.iterdir()) == []

    # a record forgotten mid-delivery (a left file cleared) and written again is found
    fourth = DeliveryRecord(folder, "sftp://u@h:22/in/a.csv")
    assert fourth.claim() is None
    fourth.forget()
    fourth.write(STATE, sync=False, first=True)
    fourth.release()
    fifth = DeliveryRecord(folder, "sftp://u@h:22/in/a.csv")
    assert fifth.claim() == STATE
    fifth.forget()
    fifth.release()

    shutil.rmtree(folder)
    other = DeliveryRecord(folder, "sftp://u@h:22/in/b.csv")
    assert other.claim() is None and folder.is_dir()
    other.forget()
    other.release()


def test_a_lock_taken_on_a_removed_lock_file_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that opened the lock file just before its holder finished (and removed it) must
    not believe it holds the destination: a third run would make a new lock file and get it
    too. The holder finishes exactly between the late run's open and its flock."""
    holder = DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv")
    holder.claim()
    real_flock = fcntl.flock
    finished: list[bool] = []

    def flock_after_the_holder_finished(fd: int, operation: int) -> None:
        if not finished:
            finished.append(True)
            holder.forget()
            holder.release()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_holder_finished)
    late = DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv")
    assert late.claim() is None
    monkeypatch.setattr(fcntl, "flock", real_flock)

    assert late._lock_path.exists()  # it holds the lock file that is there now
    with pytest.raises(DeliveryBusy):
        DeliveryRecord(tmp_path, "sftp://u@h:22/in/a.csv").claim()
    late.release()


def test_the_frontier_moves_only_over_parts_written_in_order() -> None:
    frontier = _Frontier(0, 0)
    assert not frontier.finished(10, 20, 2)  # the second part first: [0, 10) still missing
    assert frontier.end == 0
    assert frontier.finished(0, 10, 1)
    assert (frontier.end, frontier.crc) == (20, 2)
    assert frontier.finished(20, 30, 3)
    assert (frontier.end, frontier.crc) == (30, 3)
