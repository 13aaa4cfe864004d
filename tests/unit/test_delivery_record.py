"""The delivery record: found again after a crash, never shared by two live runs; and the
written frontier a checkpoint records (parts finish out of order)."""

from __future__ import annotations

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


def test_the_frontier_moves_only_over_parts_written_in_order() -> None:
    frontier = _Frontier(0, 0)
    assert not frontier.finished(10, 20, 2)  # the second part first: [0, 10) still missing
    assert frontier.end == 0
    assert frontier.finished(0, 10, 1)
    assert (frontier.end, frontier.crc) == (20, 2)
    assert frontier.finished(20, 30, 3)
    assert (frontier.end, frontier.crc) == (30, 3)
