"""Figures that don't mislead: averages over running time and bytes sent, overall progress,
fresh progress after a retry, and the demo's memory said on screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import MiB, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import (
    TransferFinished,
    TransferResult,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from sftp_s3_tui.ui.app import DEMO_MEMORY_NOTE, AppOptions, SftpS3App
from sftp_s3_tui.ui.session import TransferSpan
from sftp_s3_tui.ui.widgets.transfer_list import QueueTotals, TransferRow
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel, summary_text
from tests.support.fault_proxy import proxied
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _result(size: int) -> TransferResult:
    return TransferResult("sftp://h/f", "b", "f", size, 1.0, 25, "0" * 64, TransferState.DONE)


def test_the_average_leaves_out_paused_time_and_resumed_bytes() -> None:
    """200 MiB file, 100 MiB of it resumed from an earlier run; ran 10 s, paused 90 s."""
    span = TransferSpan()
    size, part = 200 * MiB, 8 * MiB
    resumed = tuple(range(1, 14))  # 13 parts of 8 MiB = 104 MiB landed before
    for event in (
        TransferStateChanged(transfer_id=1, state=TransferState.RUNNING, at=100.0),
        TransferStarted(
            transfer_id=1,
            size=size,
            part_size=part,
            part_count=25,
            multipart=True,
            resumed_parts=resumed,
            at=100.0,
        ),
        TransferStateChanged(transfer_id=1, state=TransferState.PAUSED, at=104.0),
        TransferStateChanged(transfer_id=1, state=TransferState.RUNNING, at=194.0),
        TransferStateChanged(transfer_id=1, state=TransferState.DONE, at=200.0),
        TransferFinished(transfer_id=1, result=_result(size), at=200.0),
    ):
        span.on_event(event)
    assert span.seconds == 100.0  # wall time, pause included
    assert span.active_seconds() == 10.0  # running only
    assert span.resumed_bytes == {1: 13 * part}
    row = TransferRow(1, "f", "f", size, TransferState.DONE, bytes_done=size)
    text = str(summary_text(QueueTotals.of([row]), span.active_seconds(), span.resumed_bytes[1]))
    assert "200.0 MiB (104.0 MiB resumed from before)" in text
    assert "sent 96.0 MiB in 10s (9.6 MiB/s)" in text  # 96 MiB / 10 s, not 200 MiB / 100 s


@pytest.fixture
def slow_sftp(embedded_sftp: SftpServerInfo, tmp_path: Path) -> Iterator[SftpServerInfo]:
    """The embedded server behind a proxy throttled to 2 MiB/s."""
    with proxied(embedded_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.throttle(2 * MiB, "down")
        yield server


async def test_retry_after_cancel_starts_from_zero_on_screen_and_overall_counts_files(
    slow_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    big = slow_sftp.write_file("big.bin", size=40 * MiB, seed=7)
    options = TransferOptions(part_size=8 * MiB, parts_in_flight=2)
    app = make_app(
        tmp_path,
        initial=server_profile(slow_sftp, s3_endpoint, bucket=bucket),
        transfer_options=options,
    )
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("c")
        panel = app.screen.query_one(TransferPanel)
        table = panel.transfer_list
        await wait_for(pilot, lambda: table.rows_by_id, what="the row")
        row = next(iter(table.rows_by_id.values()))
        overall = panel.query_one("#overall")
        await wait_for(pilot, lambda: row.bytes_done >= 8 * MiB, timeout=120, what="a part")
        assert "files 0/1" in str(overall.render())
        await pilot.press("t", "x")  # focus the queue, cancel
        await wait_for(pilot, lambda: row.state is TransferState.CANCELLED, timeout=60)
        assert row.bytes_done >= 8 * MiB  # what the cancelled run had done
        await pilot.press("r")  # retry: restarts from zero, and the row says so
        await wait_for(pilot, lambda: not row.state.finished, what="the retry")
        assert row.bytes_done == 0
        assert str(table.cells(row.transfer_id)[3]) == "0%"
        await wait_for(pilot, lambda: row.state is TransferState.DONE, timeout=180)
        await wait_for(pilot, lambda: "files 1/1" in str(overall.render()))
        await app.close_all()
    body = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert len(body) == big.size


async def test_the_demo_says_its_s3_keeps_objects_in_memory(tmp_path: Path) -> None:
    app = SftpS3App(
        AppOptions(
            demo=True,
            demo_large=False,
            journal_dir=None,
            read_user_config=False,
            profiles_path=tmp_path / "profiles.toml",
        )
    )
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), timeout=60, what="the demo")
        note = app.screen.query_one(TransferPanel).query_one("#resource-note")
        assert note.display and DEMO_MEMORY_NOTE in str(note.render())
        await app.close_all()
