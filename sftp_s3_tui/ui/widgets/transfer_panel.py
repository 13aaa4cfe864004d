"""The transfers area: the queue, and for the focused transfer its chunk map and live figures."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from ...engine.events import (
    EngineEvent,
    EventBus,
    TransferFinished,
    TransferQueued,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from ...engine.queue import Transfer
from ...metrics import Sampler, Snapshot, TransferStats
from ..formatting import format_duration, format_rate, format_size
from ..session import TransferSpan
from .chunk_map import ChunkMap, legend
from .resources import LinkLine, Resources
from .throughput import Throughput
from .transfer_list import TransferList, TransferRow


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1] or key


def row_for(transfer: Transfer) -> TransferRow:
    """A list row for a transfer the queue already holds."""
    job = transfer.job
    row = TransferRow(transfer.id, _name(job.key), job.key, job.size, transfer.state)
    if transfer.result is not None:
        row.message = transfer.result.message
        if transfer.state is TransferState.DONE:
            row.bytes_done = job.size
    return row


class TransferPanel(Vertical):
    """Everything about transfers; fed by engine events (rows) and sampler snapshots (figures)."""

    DEFAULT_CSS = """
    TransferPanel { height: 1fr; }
    TransferPanel > #transfers-title { height: 1; padding: 0 1; background: $boost; }
    TransferPanel > #focused { height: 1; padding: 0 1; }
    TransferPanel > ChunkMap { padding: 0 1; }
    TransferPanel > #figures { height: 1; padding: 0 1; }
    TransferPanel > #summary { height: 1; padding: 0 1; }
    TransferPanel > #overall { height: 1; padding: 0 1; }
    TransferPanel > #resource-note { height: 1; padding: 0 1; display: none; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True)

    class EngineUpdate(Message):
        """An engine event other than a part change, carried onto the message queue."""

        def __init__(self, event: EngineEvent) -> None:
            super().__init__()
            self.event = event

    class DetailRequested(Message):
        """The user asked for everything about one transfer (Enter on its row)."""

        def __init__(self, transfer_id: int, stats: TransferStats | None) -> None:
            super().__init__()
            self.transfer_id = transfer_id
            self.stats = stats

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._unsubscribe: list[Callable[[], None]] = []
        self._last_stats: dict[int, TransferStats] = {}
        self.span: TransferSpan | None = None

    def compose(self) -> ComposeResult:
        title = Text.assemble(("Transfers  ", "bold"), legend())
        yield Static(title, id="transfers-title")
        yield TransferList()
        yield Static("", id="overall")
        yield Static("", id="focused")
        yield ChunkMap()
        with Horizontal(id="figures"):
            yield Throughput()
            yield Resources()
        yield LinkLine()
        yield Static("", id="resource-note")
        yield Static("", id="summary")

    @property
    def transfer_list(self) -> TransferList:
        return self.query_one(TransferList)

    # wiring ---------------------------------------------------------------------------------
    def attach(
        self,
        bus: EventBus,
        sampler: Sampler,
        transfers: dict[int, Transfer],
        span: TransferSpan | None = None,
        *,
        note: str = "",
    ) -> None:
        """Show ``transfers`` and follow the bus and the sampler from now on; ``note`` is said
        under the figures (why RSS grows in the demo)."""
        self.span = span
        note_widget = self.query_one("#resource-note", Static)
        note_widget.update(Text("ⓘ " + note, style="dim italic") if note else "")
        note_widget.display = bool(note)
        for transfer in transfers.values():
            self.transfer_list.add_transfer(row_for(transfer))

        def on_event(event: EngineEvent) -> None:
            if isinstance(
                event, TransferQueued | TransferStarted | TransferStateChanged | TransferFinished
            ):
                self.post_message(self.EngineUpdate(event))

        def on_snapshot(snapshot: Snapshot) -> None:
            self.snapshot = snapshot

        self._unsubscribe += [bus.subscribe(on_event), sampler.subscribe(on_snapshot)]
        self.snapshot = sampler.latest

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    @on(EngineUpdate)
    def _engine_update(self, message: EngineUpdate) -> None:
        if self.is_mounted and self.query(TransferList):
            self._apply_event(message.event)

    def _apply_event(self, event: EngineEvent) -> None:
        table = self.transfer_list
        if isinstance(event, TransferQueued):
            row = TransferRow(event.transfer_id, _name(event.key), event.key, event.size)
            table.add_transfer(row)
        elif isinstance(event, TransferStarted):
            table.started(event.transfer_id)
        elif isinstance(event, TransferStateChanged):
            table.set_state(event.transfer_id, event.state)
        elif isinstance(event, TransferFinished):
            result = event.result
            table.set_state(event.transfer_id, result.status, result.message)
        self._update_summary()

    # rendering ------------------------------------------------------------------------------
    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is None or not self.is_mounted:
            return
        try:
            self._show(snapshot)
        except NoMatches:  # the panel is being removed with its screen
            self.on_unmount()

    def _show(self, snapshot: Snapshot) -> None:
        table = self.transfer_list
        last = self._last_stats
        for stats in snapshot.transfers:
            if last.get(stats.transfer_id) == stats:
                continue  # unchanged (a long queue is mostly waiting rows): nothing to redraw
            last[stats.transfer_id] = stats
            table.apply(stats)
        if not table.has_focus:
            self._follow_running()
        throughput = self.query_one(Throughput)
        throughput.history = snapshot.throughput_history
        throughput.bytes_per_second = snapshot.bytes_per_second
        self.query_one(Resources).snapshot = snapshot
        self.query_one(LinkLine).snapshot = snapshot
        self._update_focused()
        self._update_overall(snapshot)
        self._update_summary()

    def _follow_running(self) -> None:
        """While the user is elsewhere, keep the cursor on a running transfer."""
        table = self.transfer_list
        focused = table.rows_by_id.get(table.focused_id or -1)
        if focused is not None and focused.state is TransferState.RUNNING:
            return
        for index, row in enumerate(table.rows_by_id.values()):
            if row.state is TransferState.RUNNING:
                table.move_cursor(row=index, scroll=True)
                return

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            transfer_id = int(event.row_key.value)
            self.post_message(self.DetailRequested(transfer_id, self._last_stats.get(transfer_id)))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_focused()

    def _update_focused(self) -> None:
        table = self.transfer_list
        focused = table.focused_id
        row = table.rows_by_id.get(focused) if focused is not None else None
        stats = self._last_stats.get(focused) if focused is not None else None
        label = self.query_one("#focused", Static)
        chunk_map = self.query_one(ChunkMap)
        if row is None:
            label.update(
                Text("Queue files from the browser (space to select, c to copy).", "dim"),
                layout=False,
            )
            chunk_map.part_codes = b""
            return
        text = Text.assemble(("chunks ", "bold"), f"{row.key}  ")
        if stats is not None and stats.parts_total:
            text.append(f"{stats.parts_total} × {format_size(stats.part_size)}", style="dim")
        label.update(text, layout=False)
        chunk_map.part_codes = stats.part_codes if stats is not None else b""

    def _update_overall(self, snapshot: Snapshot) -> None:
        rows = self.transfer_list.rows_by_id.values()
        overall = self.query_one("#overall", Static)
        if not rows:
            overall.update("", layout=False)
            return
        seconds = self.span.active_seconds() if self.span is not None else None
        overall.update(overall_text(list(rows), snapshot.bytes_per_second, seconds), layout=False)

    def _update_summary(self) -> None:
        rows = self.transfer_list.rows_by_id.values()
        summary = self.query_one("#summary", Static)
        if not rows or not all(r.state.finished for r in rows):
            summary.display = False
            return
        summary.display = True
        span = self.span
        seconds = span.active_seconds() if span is not None else None
        resumed = span.resumed_bytes if span is not None else {}
        summary.update(summary_text(list(rows), seconds, resumed), layout=False)


def overall_text(
    rows: list[TransferRow], bytes_per_second: float, active_seconds: float | None
) -> Text:
    """``files 3/10 · 1.2 GiB of 4.0 GiB · 61.2 MB/s · ETA 47s · running 20s`` for the queue."""
    finished = failed = total = done = remaining = 0
    running = False
    for r in rows:  # one pass: a queue may hold 10,000 rows, refreshed twice a second
        state, size = r.state, r.size
        total += size
        if state.finished:
            finished += 1
            if state is TransferState.FAILED:
                failed += 1
            done += size if state is TransferState.SKIPPED else min(r.bytes_done, size)
        else:
            done += min(r.bytes_done, size)
            remaining += max(size - r.bytes_done, 0)
            running = running or state is TransferState.RUNNING
    text = Text()
    text.append("all ", "bold")
    text.append(f"files {finished}/{len(rows)}")
    if failed:
        text.append(f" ({failed} failed)", "bold red")
    text.append(f" · {format_size(done)} of {format_size(total)}")
    if running and bytes_per_second > 0:
        eta = format_duration(remaining / bytes_per_second)
        text.append(f" · {format_rate(bytes_per_second)} · ETA {eta}")
    if active_seconds:
        text.append(f" · running {format_duration(active_seconds)}", "dim")
    return text


def summary_text(
    rows: list[TransferRow], seconds: float | None, resumed: dict[int, int] | None = None
) -> Text:
    """``All done: 3 copied · 1 failed · 1.2 GiB (200.0 MiB resumed) · sent 1.0 GiB in 12s
    (85.0 MB/s)``: the rate counts only bytes this run sent, over the time something ran."""
    counts = {state: sum(r.state is state for r in rows) for state in TransferState}
    done_rows = [r for r in rows if r.state is TransferState.DONE]
    moved = sum(r.size for r in done_rows)
    earlier = sum((resumed or {}).get(r.transfer_id, 0) for r in done_rows)
    sent = moved - earlier
    text = Text("All done: ", style="bold")
    text.append(f"{counts[TransferState.DONE]} copied", style="green")
    for state, style in (
        (TransferState.SKIPPED, "cyan"),
        (TransferState.FAILED, "bold red"),
        (TransferState.CANCELLED, "red"),
    ):
        if counts[state]:
            text.append(f" · {counts[state]} {state.value}", style=style)
    text.append(f" · {format_size(moved)}")
    if earlier:
        text.append(f" ({format_size(earlier)} resumed from before)", "dim")
    if seconds and seconds > 0 and sent > 0:
        text.append(f" · sent {format_size(sent)} in {format_duration(seconds)}")
        text.append(f" ({format_rate(sent / seconds)})")
    if counts[TransferState.FAILED] or counts[TransferState.CANCELLED]:
        text.append("  — r retries the focused file", style="dim")
    return text
