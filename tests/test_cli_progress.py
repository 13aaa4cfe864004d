"""The headless progress display: one live line with what rclone -P shows, not a wall of bars."""

from __future__ import annotations

import io

from rich.console import Console

from sftp_s3_tui.engine.events import (
    EventBus,
    PartChanged,
    PartState,
    TransferFinished,
    TransferQueued,
    TransferResult,
    TransferState,
)
from sftp_s3_tui.headless import ConsoleProgress


def test_fifty_two_queued_files_show_one_line_with_files_errors_and_retries() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    bus = EventBus()
    display = ConsoleProgress(bus, enabled=True, console=console)
    for n in range(52):
        bus.emit(
            TransferQueued(
                transfer_id=n, source=f"/in/{n}.csv", bucket="b", key=f"{n}.csv", size=10
            )
        )
    bus.emit(PartChanged(transfer_id=0, part_number=1, state=PartState.RETRIED, size=10))
    bus.emit(PartChanged(transfer_id=0, part_number=1, state=PartState.DONE, size=10))
    done = TransferResult("/in/0.csv", "b", "0.csv", 10, 0.1, 1, "x", TransferState.DONE)
    failed = TransferResult(
        "/in/1.csv", "b", "1.csv", 10, 0.1, 0, None, TransferState.FAILED, "Permission denied"
    )
    bus.emit(TransferFinished(transfer_id=0, result=done))
    bus.emit(TransferFinished(transfer_id=1, result=failed))

    assert len(display.progress.tasks) == 1  # one line, however many files are queued
    console.print(display.progress.get_renderable())
    text = out.getvalue()
    assert "files 2/52" in text and "errors 1 · retries 1" in text
    assert "✓ 0.csv done" in text and "✗ 1.csv failed (Permission denied)" in text
    assert display.progress.tasks[0].completed == 20 and display.progress.tasks[0].total == 520
