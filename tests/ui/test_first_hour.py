"""What a newcomer sees in the default terminal (80x24) and the states the screens tell apart:
each screen keeps its point at 80x24, a cancelled transfer is not a failed one, a pause says
what drains, one clock, no ETA or sparkline made of nothing, keys grouped by where they work."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from textual.command import CommandPalette
from textual.widgets import Button, Input

from sftp_s3_tui.engine.config import MiB, SftpEndpoint
from sftp_s3_tui.engine.events import TransferState, TransferStateChanged
from sftp_s3_tui.engine.plan.readiness import split_done_files
from sftp_s3_tui.engine.plan.sources import FileJob
from sftp_s3_tui.engine.transfer.queue import Transfer
from sftp_s3_tui.ui.screens.connection_details import ConnectionDetailsScreen
from sftp_s3_tui.ui.screens.detail import detail_lines
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from sftp_s3_tui.ui.screens.transfers import TransfersScreen
from sftp_s3_tui.ui.screens.watch import WatchesScreen
from sftp_s3_tui.ui.session import TransferSpan
from sftp_s3_tui.ui.watches import WatchPhase, WatchStatus
from sftp_s3_tui.ui.widgets.chunk_map import ChunkMap, legend
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from sftp_s3_tui.ui.widgets.throughput import spark_text
from sftp_s3_tui.ui.widgets.transfer_list import QueueTotals, TransferRow, row_cells
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel, overall_text
from tests.ui.fake_data import fixed_stats
from tests.ui.helpers import (
    _error_app,
    _fixed_info,
    _plan_screen,
    browsing,
    demo_app,
    freeze_panel,
    screen_text,
    wait_for,
)

SMALL = (80, 24)


def _note(row: TransferRow) -> str:
    return str(row_cells(row)[6])


# 80x24 ------------------------------------------------------------------------------------------
async def test_the_plan_dialog_at_80x24_shows_every_policy_and_the_file_rows(
    tmp_path: Path,
) -> None:
    app = _error_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(_plan_screen())
        await wait_for(pilot, lambda: "why customers_2026.csv" in screen_text(app), what="rows")
        text = screen_text(app)
        for policy in ("1 Overwrite", "2 Skip existing", "3 If newer", "4 If different"):
            assert policy in text, text
        for name in ("customers_", "orders 202", "README.txt"):
            assert name in text, text  # the file rows, not just the header
        assert "why customers_2026.csv: new" in text  # the cursor row's reason
        app.screen.query_one("#plan-table").focus()
        await pilot.press("down")
        why = "why orders 2026-11.csv: the key already exists"
        await wait_for(pilot, lambda: why in screen_text(app), what="the second row's reason")


async def test_the_plan_dialog_at_160x48_is_not_cut_on_the_right(tmp_path: Path) -> None:
    app = _error_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.push_screen(_plan_screen())
        await wait_for(pilot, lambda: "the key already exists" in screen_text(app), what="rows")
        text = screen_text(app)
        assert "4 If different" in text
        assert "Why" in text and "the key already exists" in text
        assert "…" not in text.split("Why")[1].split("Copy")[0].replace("2026-11/", "")


async def test_the_transfers_screen_at_80x24_keeps_the_rate_the_parts_and_help(
    tmp_path: Path,
) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await browsing(pilot)
        await wait_for(  # the browse footer keeps its help key
            pilot, lambda: "? Help" in screen_text(app).splitlines()[-1], what="the footer"
        )
        assert app.session is not None
        await app.push_screen(TransfersScreen(app.session))
        await wait_for(pilot, lambda: app.screen.query(TransferPanel), what="the transfers screen")
        freeze_panel(app.screen.query_one(TransferPanel))

        def rate_shown() -> bool:  # the frozen figures painted (waited for, not slept for)
            lines = screen_text(app).splitlines()
            rate = any(line.lstrip().startswith("58.4 MiB/s") for line in lines)
            return rate and "? Help" in lines[-1]

        await wait_for(pilot, rate_shown, what="the frozen rate")
        text = screen_text(app)
        lines = text.splitlines()
        assert "Parts / note" in text
        assert "parts 18/38 (8 in flight)" in text
        assert any(line.lstrip().startswith("58.4 MiB/s") for line in lines), text
        assert "? Help" in lines[-1]


async def test_the_browse_footer_at_80x24_keeps_help_and_the_main_keys(tmp_path: Path) -> None:
    """The default terminal: the footer of the browse screen is one line of 80 columns, and
    every key it shows must fit (the transfer keys, whose list is on its own screen at this
    width, give their room; f5 and ^d are in ? and the palette)."""
    app = demo_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await browsing(pilot)
        footer = screen_text(app).splitlines()[-1]
        for key in ("? Help", "c Copy", "C Plan…", "t Transfers", "^q Quit", "^p palette"):
            assert key in footer, footer
        assert "space Select" in footer and "/ Filter" in footer, footer
        await pilot.press("s")  # the S3 side: its own key (d) first, the main keys still there

        def s3_footer() -> str:
            return screen_text(app).splitlines()[-1]

        await wait_for(pilot, lambda: "d Deliver" in s3_footer(), what="the S3 side's footer")
        for key in ("? Help", "c Copy", "C Plan…", "t Transfers", "^q Quit", "^p palette"):
            assert key in s3_footer(), s3_footer()


async def test_the_connection_details_at_80x24_show_the_link_first(tmp_path: Path) -> None:
    app = _error_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(ConnectionDetailsScreen(None, _fixed_info()))
        await wait_for(pilot, lambda: "Round trip" in screen_text(app), what="the details")
        text = screen_text(app)
        assert "Round trip" in text and "Read ceiling" in text


# states -----------------------------------------------------------------------------------------
def test_a_cancelled_transfer_has_its_own_mark() -> None:
    failed = TransferRow(1, "a.csv", "a.csv", 10, TransferState.FAILED, message="boom")
    cancelled = TransferRow(2, "b.csv", "b.csv", 10, TransferState.CANCELLED)
    assert str(row_cells(failed)[0]) == "✗"
    assert str(row_cells(cancelled)[0]) not in ("✗", "")
    assert "cancelled" in legend().plain
    chunk_map = ChunkMap()
    chunk_map.part_codes = bytes([3, 5, 0])  # done, failed, waiting
    failed_cells = chunk_map.render().plain
    chunk_map.cancelled = True
    cancelled_cells = chunk_map.render().plain
    assert failed_cells == "■✗░" and cancelled_cells == "■⊘⊘"


def test_a_paused_row_says_its_parts_drain_then_that_it_is_paused() -> None:
    row = TransferRow(1, "big.bin", "big.bin", 300 * MiB, TransferState.PAUSED)
    row.parts_total, row.parts_done, row.parts_in_flight = 38, 12, 3
    assert _note(row) == "pausing… 3 parts draining"
    row.parts_done, row.parts_in_flight = 15, 0
    assert _note(row) == "paused · parts 15/38"


def test_the_details_and_the_overall_line_run_on_one_clock() -> None:
    """Ran 10 s, paused 4 s, ran 4 s: 14 s of running, though 18 s since the start."""
    span = TransferSpan()
    for at, state in ((100.0, TransferState.RUNNING), (110.0, TransferState.PAUSED)):
        span.on_event(TransferStateChanged(transfer_id=1, state=state, at=at))
    span.on_event(TransferStateChanged(transfer_id=1, state=TransferState.RUNNING, at=114.0))
    job = FileJob(SftpEndpoint("h"), "/big.bin", 300 * MiB, 0, "landing", "big.bin")
    transfer = Transfer(1, job, TransferState.RUNNING)
    # the sampler's clock counts since the start, pauses included: 18 s here
    stats = dataclasses.replace(fixed_stats(), elapsed_seconds=18.0)
    assert span.active_seconds(now=118.0) == 14.0  # the overall line's "running 14s"
    assert span.transfer_seconds(1, now=118.0) == 14.0
    span.on_event(TransferStateChanged(transfer_id=1, state=TransferState.PAUSED, at=118.0))
    rows = dict(detail_lines(transfer, stats, span))
    assert rows["Running for"] == "14s"


# small lies -------------------------------------------------------------------------------------
def test_no_eta_until_the_rate_means_something() -> None:
    row = TransferRow(1, "big.bin", "big.bin", 300 * MiB, TransferState.RUNNING)
    row.bytes_done, row.bytes_per_second, row.elapsed_seconds = 1 * MiB, 40_000.0, 1.0
    assert str(row_cells(row)[5]) == ""  # one second in: no "2h05m"
    row.elapsed_seconds = 10.0
    assert str(row_cells(row)[5]) != ""
    totals = QueueTotals.of([row])
    assert "ETA" not in overall_text(totals, 40_000.0, 1.0).plain
    assert "ETA" in overall_text(totals, 40_000.0, 10.0).plain


def test_the_sparkline_is_empty_before_any_data() -> None:
    assert spark_text([], 12) == " " * 12
    assert spark_text([0.0, 0.0], 12) == " " * 12  # nothing moved: no full-height bar
    bars = spark_text([0.0, 30e6, 60e6], 6)
    assert bars == "    ▄█"  # scaled from zero, right-aligned


def test_a_file_waiting_for_its_done_file_is_said_once() -> None:
    job = FileJob(SftpEndpoint("h"), "/in/a.csv", 1, 0, "landing", "a.csv")
    result = split_done_files([job], ".done")
    ((_, why),) = result.waiting
    assert f"waiting: {why}" == "waiting: its done file /in/a.csv.done is not there yet"


# watches ----------------------------------------------------------------------------------------
async def test_the_watches_list_counts_files_already_there(tmp_path: Path) -> None:
    status = WatchStatus(
        1, "sftp://etl@h/out", "s3://landing/", 60.0, WatchPhase.IDLE, polls=1, already_there=21
    )

    async def stop(watch_id: int) -> None:
        raise AssertionError("nothing is stopped here")

    app = _error_app(tmp_path)
    async with app.run_test(size=(140, 24)) as pilot:
        await app.push_screen(WatchesScreen(lambda: [status], stop, live=False))
        await wait_for(pilot, lambda: "There" in screen_text(app), what="the watches list")
        text = screen_text(app)
        assert "There" in text
        assert re.search(r"│?\s0\s+21\s", text) or " 21 " in text


# keys -------------------------------------------------------------------------------------------
async def test_home_and_end_move_in_the_sftp_list(tmp_path: Path) -> None:
    async with demo_app(tmp_path).run_test(size=SMALL) as pilot:
        await browsing(pilot)
        table = pilot.app.screen.query_one(RemoteTree).table
        table.focus()
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1 > 0
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_arrow_keys_move_between_a_dialogs_buttons(tmp_path: Path) -> None:
    app = _error_app(tmp_path)
    answers: list[bool | None] = []
    async with app.run_test(size=SMALL) as pilot:
        dialog = ConfirmScreen("Quit?", "2 running", "Abort them", "Keep running", safe_is_no=True)
        await app.push_screen(dialog, answers.append)

        def no_focused() -> bool:
            return isinstance(app.focused, Button) and app.focused.id == "no"

        await wait_for(pilot, no_focused, what="the safe button's focus")
        assert isinstance(app.focused, Button) and app.focused.id == "no"
        await pilot.press("left")
        assert isinstance(app.focused, Button) and app.focused.id == "yes"
        await pilot.press("right")
        assert isinstance(app.focused, Button) and app.focused.id == "no"
        await pilot.press("enter")
        await wait_for(pilot, lambda: answers == [False], what="the answer")


async def test_the_palette_offers_glob_selection_with_its_key(tmp_path: Path) -> None:
    async with demo_app(tmp_path).run_test(size=(100, 32)) as pilot:
        app = pilot.app
        await browsing(pilot)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        await pilot.press(*"glob")
        await wait_for(pilot, lambda: "key +" in screen_text(app), what="the glob command")
        text = screen_text(app)
        assert "Select by glob" in text and "key +" in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query(Input), what="the glob prompt")
        for name in ("Watch this folder", "Show watches", "Plan copy"):
            await pilot.press("escape")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "BrowseScreen")
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
            await pilot.press(*name.lower())
            await wait_for(pilot, lambda: name in screen_text(app), what=name)  # noqa: B023
