"""The transfer list with a queue of 100,000 files: rows come through the engine's event bus
(the same path the app uses), the list scrolls to the end and back, the cursor and the
highlighted row agree, and a change to a row repaints that row's line alone."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from sftp_s3_tui.engine.events import EventBus, TransferQueued, TransferState, TransferStateChanged
from sftp_s3_tui.metrics import Sampler
from sftp_s3_tui.ui.widgets.transfer_list import TransferList
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.ui.helpers import wait_for

ROWS = 100_000


class QueueApp(App[None]):
    """Just the transfers panel, fed by a real bus and sampler."""

    def __init__(self) -> None:
        super().__init__()
        self.bus = EventBus()
        self.sampler = Sampler(self.bus, interval=0.5)
        self.details: list[int] = []

    def compose(self) -> ComposeResult:
        yield TransferPanel()

    async def on_mount(self) -> None:
        self.query_one(TransferPanel).attach(self.bus, self.sampler, {})
        await self.sampler.start()

    async def on_unmount(self) -> None:
        await self.sampler.stop()

    def on_transfer_panel_detail_requested(self, message: TransferPanel.DetailRequested) -> None:
        self.details.append(message.transfer_id)


def _name(transfer_id: int) -> str:
    return f"part-{transfer_id:06d}.csv"


def _queue(bus: EventBus, count: int) -> None:
    for transfer_id in range(1, count + 1):
        key = f"drop/{_name(transfer_id)}"
        bus.emit(
            TransferQueued(
                transfer_id=transfer_id,
                source=f"sftp://etl@host/{key}",
                bucket="landing",
                key=key,
                size=1000,
            )
        )


def _screen_lines(table: TransferList) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def _cursor_line(table: TransferList) -> str:
    """The text of the screen line drawn in the cursor's colours."""
    cursor = table.get_component_rich_style("transfer-list--cursor").bgcolor
    for y in range(1, table.scrollable_content_region.height):
        strip = table.render_line(y)
        if any(segment.style is not None and segment.style.bgcolor == cursor for segment in strip):
            return strip.text
    raise AssertionError("no line is drawn as the cursor row")


async def test_a_queue_of_100k_rows_scrolls_to_the_end_with_the_right_row_highlighted() -> None:
    app = QueueApp()
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.query_one(TransferPanel)
        table = panel.transfer_list
        _queue(app.bus, ROWS)
        await wait_for(pilot, lambda: table.row_count == ROWS, what="100k rows")
        table.focus()
        await pilot.pause()
        assert table.focused_id == 1
        assert _name(1) in _cursor_line(table)

        await pilot.press("end")
        await pilot.pause()
        assert table.focused_id == ROWS
        assert table.scroll_y == table.max_scroll_y > 0
        lines = _screen_lines(table)
        assert "Progress" in lines[0]  # the header stays on top
        assert _name(ROWS) in lines[-1]  # the last row is the last line on screen
        assert _name(ROWS) in _cursor_line(table)
        assert "waiting" in _cursor_line(table)
        overall = panel.query_one("#overall")
        await wait_for(pilot, lambda: "files 0/100000" in str(overall.render()), what="totals")

        await pilot.press("pageup")
        visible = table.scrollable_content_region.height - 1
        assert table.focused_id == ROWS - visible
        await pilot.press("up", "up")
        await pilot.pause()
        assert table.focused_id == ROWS - visible - 2
        assert _name(ROWS - visible - 2) in _cursor_line(table)

        await pilot.press("home")
        await pilot.pause()
        assert table.focused_id == 1 and table.scroll_y == 0
        await pilot.press("pagedown", "down")
        assert table.focused_id == visible + 2

        # a click moves the cursor; a click on the cursor row (or Enter) asks for the details
        await pilot.press("home")
        await pilot.pause()
        await pilot.click(TransferList, offset=(10, 3))  # line 0 is the header
        assert table.focused_id == 3
        await pilot.click(TransferList, offset=(10, 3))
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.details == [3, 4]


async def test_a_row_change_repaints_only_that_row_and_totals_follow() -> None:
    app = QueueApp()
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.query_one(TransferPanel)
        table = panel.transfer_list
        rows = 20_000
        _queue(app.bus, rows)
        await wait_for(pilot, lambda: table.row_count == rows, what="the rows")
        await pilot.pause()
        painted: list[str] = []
        line = table._line

        def counting_line(*args: Any) -> Any:
            strip = line(*args)
            painted.append(strip.text)
            return strip

        table._line = counting_line  # type: ignore[method-assign,assignment]

        far = rows // 2  # not on screen
        app.bus.emit(TransferStateChanged(transfer_id=far, state=TransferState.RUNNING))
        await wait_for(pilot, lambda: table.rows_by_id[far].state is TransferState.RUNNING)
        await pilot.pause()
        assert painted == []  # an off-screen row costs no rendering

        app.bus.emit(TransferStateChanged(transfer_id=2, state=TransferState.DONE))
        await wait_for(pilot, lambda: table.rows_by_id[2].state is TransferState.DONE)
        await pilot.pause()
        assert len(painted) == 1 and _name(2) in painted[0] and "100%" in painted[0]
        assert table.totals.finished == 1 and table.totals.running == 1
        assert table.totals.done_bytes == 1000
        assert table.totals.remaining_bytes == (rows - 1) * 1000
