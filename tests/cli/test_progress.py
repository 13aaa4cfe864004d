"""The headless progress display: what rclone -P shows (80 columns, one unit, the files in
flight), plus files, errors and retries, on the same clock as the summary."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from sftp_s3_tui.cli.console import ConsoleProgress, RunTally, summary_lines
from sftp_s3_tui.engine.events import (
    EventBus,
    PartChanged,
    PartState,
    TransferFinished,
    TransferQueued,
    TransferResult,
    TransferStarted,
    TransferState,
)

MiB = 1 << 20


def _display(width: int) -> tuple[ConsoleProgress, EventBus, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system=None)
    bus = EventBus()
    return ConsoleProgress(bus, enabled=True, console=console), bus, out


def _queue(bus: EventBus, n: int, name: str, size: int) -> None:
    bus.emit(TransferQueued(transfer_id=n, source=f"/in/{name}", bucket="b", key=name, size=size))


def test_fifty_two_queued_files_show_totals_with_files_errors_and_retries() -> None:
    display, bus, out = _display(160)
    for n in range(52):
        _queue(bus, n, f"{n}.csv", 10)
    bus.emit(PartChanged(transfer_id=0, part_number=1, state=PartState.RETRIED, size=10))
    bus.emit(PartChanged(transfer_id=0, part_number=1, state=PartState.DONE, size=10))
    done = TransferResult("/in/0.csv", "b", "0.csv", 10, 0.1, 1, "x", TransferState.DONE)
    failed = TransferResult(
        "/in/1.csv", "b", "1.csv", 10, 0.1, 0, None, TransferState.FAILED, "Permission denied"
    )
    bus.emit(TransferFinished(transfer_id=0, result=done))
    bus.emit(TransferFinished(transfer_id=1, result=failed))

    lines = display.lines()
    assert "files 2/52 · errors 1 · retries 1" in lines[1]
    text = out.getvalue()
    assert "✓ 0.csv done" in text and "✗ 1.csv failed (Permission denied)" in text
    # The failed file left the total: the bar measures what is to be sent.
    assert (display.sent_bytes, display.total_bytes) == (10, 510)


def test_at_80_columns_every_line_fits_in_one_unit_and_names_the_files_in_flight() -> None:
    display, bus, _out = _display(80)
    sizes = {"customers_2026-11_full_export_with_a_long_name.csv": 300 * MiB, "orders.csv": 40}
    for n, (name, size) in enumerate(sizes.items()):
        _queue(bus, n, name, size)
        bus.emit(
            TransferStarted(
                transfer_id=n, size=size, part_size=8 * MiB, part_count=38, multipart=True
            )
        )
    for part in range(1, 32):
        bus.emit(PartChanged(transfer_id=0, part_number=part, state=PartState.DONE, size=8 * MiB))
    bus.emit(PartChanged(transfer_id=1, part_number=1, state=PartState.READING, size=40))

    screen = io.StringIO()  # the block as an 80-column terminal shows it
    with display:
        display.started = time.monotonic() - 6.5  # 6.5 s into the run
        assert display.live is not None
        Console(file=screen, width=80, color_system=None).print(display.live.renderable)
    shown = screen.getvalue().splitlines()
    assert all(len(line) <= 80 for line in shown), shown
    block = "\n".join(shown)
    assert "248.0 MiB / 300.0 MiB" in block
    assert re.search(r" 38\.\d MiB/s  ETA 1\.\ds", block) and "MB/s" not in block
    assert "customers_2026-11_full_export" in block and "orders.csv" in block
    assert " 83%" in block  # the big file's own share


def test_the_bar_and_the_summary_read_the_same_clock() -> None:
    display, bus, _out = _display(80)
    _queue(bus, 0, "a.bin", 10 * MiB)
    with display:
        display.started = time.monotonic() - 2  # the rate is shown from the first second
        bus.emit(PartChanged(transfer_id=0, part_number=1, state=PartState.DONE, size=10 * MiB))
        result = TransferResult("/in/a", "b", "a.bin", 10 * MiB, 1.0, 1, "x", TransferState.DONE)
        bus.emit(TransferFinished(transfer_id=0, result=result))
    seconds = display.elapsed
    bar_rate = display.lines()[0].split("  ")[1]  # e.g. "52.1 MiB/s"
    tally = RunTally()
    tally.add(result)
    [summary] = summary_lines(tally, seconds)
    assert f"({bar_rate})" in summary, (bar_rate, summary)
    assert display.elapsed == seconds  # stopped with the run: it does not keep counting


def test_a_run_that_skipped_everything_says_nothing_was_sent_and_why() -> None:
    tally = RunTally()
    for n in range(21):
        tally.add(
            TransferResult(
                f"/in/{n}",
                "b",
                f"{n}",
                5,
                0.0,
                0,
                None,
                TransferState.SKIPPED,
                "same size, and the source is not newer than the object",
            )
        )
    assert summary_lines(tally, 0.2) == [
        "nothing to send: 21 skipped "
        "(already there: same size, and the source is not newer than the object)"
    ]


def test_a_cancelled_file_says_cancelled_once() -> None:
    _display_unused, bus, out = _display(80)
    _queue(bus, 0, "a.bin", 10)
    _queue(bus, 1, "b.bin", 10)
    aborted = TransferResult(
        "/in/a",
        "b",
        "a.bin",
        10,
        0.1,
        0,
        None,
        TransferState.CANCELLED,
        "cancelled; the unfinished upload was aborted",
    )
    early = TransferResult(
        "/in/b",
        "b",
        "b.bin",
        10,
        0.0,
        0,
        None,
        TransferState.CANCELLED,
        "cancelled before it started",
    )
    bus.emit(TransferFinished(transfer_id=0, result=aborted))
    bus.emit(TransferFinished(transfer_id=1, result=early))
    text = out.getvalue()
    assert "a.bin cancelled (the unfinished upload was aborted)" in text
    assert "b.bin cancelled before it started" in text
    assert "cancelled (cancelled" not in text
