"""The transfers area: the queue, and for the focused transfer its chunk map and live figures."""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from ...engine.events import (
    EngineEvent,
    EventBus,
    TransferChecking,
    TransferFinished,
    TransferQueued,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from ...engine.transfer.queue import Transfer
from ...metrics import Sampler, Snapshot, TransferStats
from ..formatting import format_duration, format_rate, format_size
from ..session import TransferSpan
from .chunk_map import ChunkMap, legend
from .resources import LinkLine, Resources
from .throughput import Throughput
from .transfer_list import QueueTotals, TransferList, TransferRow, eta_text

#: After this many rows arrive in one batch, the objects alive are frozen out of the garbage
#: collector (see ``_freeze_heap``).
FREEZE_AFTER_ROWS = 5000

#: The latest sampler figures kept for transfers the sampler no longer lists (the detail view
#: of a finished transfer shows its parts from them); older ones are let go.
STATS_KEPT = 2000


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
    TransferPanel.-narrow > #figures { layout: vertical; height: 2; }
    TransferPanel.-narrow > #figures > Resources { width: 1fr; margin-left: 0; }
    """

    #: Below this width the rate and the resources take a line each (at 80 columns, side by
    #: side, the rate was cut to ``MB/s █ 3``).
    NARROW_BELOW = 120

    #: Each snapshot updates the lines it changes; the panel itself is never repainted for
    #: it (a repaint of the container would redraw the whole area at every tick).
    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)

    class EngineUpdate(Message):
        """Engine events (other than part changes) waiting to be shown: one message carries
        every event that arrived since the last one was handled (10,000 files queued at once
        are one update of the list, not 10,000)."""

    class DetailRequested(Message):
        """The user asked for everything about one transfer (Enter on its row)."""

        def __init__(self, transfer_id: int, stats: TransferStats | None) -> None:
            super().__init__()
            self.transfer_id = transfer_id
            self.stats = stats

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._unsubscribe: list[Callable[[], None]] = []
        self._last_stats: OrderedDict[int, TransferStats] = OrderedDict()
        self._pending: list[EngineEvent] = []
        self._summary_key: tuple[object, ...] | None = None
        self._said: dict[str, Text | str] = {}  # what each label line shows now
        self.span: TransferSpan | None = None

    def compose(self) -> ComposeResult:
        title = Text.assemble(("Transfers ", "bold"), legend())
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

    def on_resize(self) -> None:
        self.set_class(self.size.width < self.NARROW_BELOW, "-narrow")

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
        self.transfer_list.add_transfers(row_for(transfer) for transfer in transfers.values())

        def on_event(event: EngineEvent) -> None:
            if isinstance(
                event,
                TransferQueued
                | TransferStarted
                | TransferStateChanged
                | TransferFinished
                | TransferChecking,
            ):
                if not self._pending:
                    self.post_message(self.EngineUpdate())
                self._pending.append(event)

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
            self._apply_pending()
            self._update_summary()

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, []
        table = self.transfer_list
        queued: list[TransferRow] = []  # consecutive new rows are added in one go
        for event in pending:
            if isinstance(event, TransferQueued):
                queued.append(
                    TransferRow(event.transfer_id, _name(event.key), event.key, event.size)
                )
                continue
            if queued:
                table.add_transfers(queued)
                queued = []
            self._apply_event(table, event)
        if queued:
            table.add_transfers(queued)
        if sum(isinstance(event, TransferQueued) for event in pending) >= FREEZE_AFTER_ROWS:
            _freeze_heap()

    @staticmethod
    def _apply_event(table: TransferList, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            table.add_transfer(
                TransferRow(event.transfer_id, _name(event.key), event.key, event.size)
            )
        elif isinstance(event, TransferStarted):
            table.started(event.transfer_id)
        elif isinstance(event, TransferStateChanged):
            table.set_state(event.transfer_id, event.state)
        elif isinstance(event, TransferFinished):
            result = event.result
            table.set_state(event.transfer_id, result.status, result.message)
        elif isinstance(event, TransferChecking):
            table.checking(event.transfer_id, f"{event.check} {event.fraction:.0%}")

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
        self._apply_pending()  # rows the snapshot may speak of are added first
        last = self._last_stats
        for stats in snapshot.transfers:  # active, a few queued, recently finished: bounded
            if last.get(stats.transfer_id) == stats:
                continue  # unchanged (a long queue is mostly waiting rows): nothing to redraw
            if table.apply(stats):
                last[stats.transfer_id] = stats
                last.move_to_end(stats.transfer_id)
        while len(last) > STATS_KEPT:
            last.popitem(last=False)
        if not table.has_focus:
            self._follow_running(snapshot)
        throughput = self.query_one(Throughput)
        throughput.history = snapshot.throughput_history
        throughput.bytes_per_second = snapshot.bytes_per_second
        self.query_one(Resources).snapshot = snapshot
        self.query_one(LinkLine).snapshot = snapshot
        self._update_focused()
        self._update_overall(snapshot)
        self._update_summary()

    def _follow_running(self, snapshot: Snapshot) -> None:
        """While the user is elsewhere, keep the cursor on a running transfer (the sampler
        lists the active ones first, so no row is searched for)."""
        table = self.transfer_list
        focused = table.rows_by_id.get(table.focused_id or -1)
        if focused is not None and focused.state is TransferState.RUNNING:
            return
        for stats in snapshot.transfers:
            row = table.rows_by_id.get(stats.transfer_id)
            if row is not None and row.state is TransferState.RUNNING:
                index = table.index_of(stats.transfer_id)
                if index is not None:
                    table.move_cursor(row=index, scroll=True)
                return

    @on(TransferList.Selected)
    def _row_selected(self, event: TransferList.Selected) -> None:
        event.stop()
        transfer_id = event.transfer_id
        self.post_message(self.DetailRequested(transfer_id, self._last_stats.get(transfer_id)))

    @on(TransferList.Highlighted)
    def _row_highlighted(self, event: TransferList.Highlighted) -> None:
        event.stop()
        if self.is_mounted:
            self._update_focused()

    def _update_focused(self) -> None:
        table = self.transfer_list
        focused = table.focused_id
        row = table.rows_by_id.get(focused) if focused is not None else None
        stats = self._last_stats.get(focused) if focused is not None else None
        label = self.query_one("#focused", Static)
        chunk_map = self.query_one(ChunkMap)
        if row is None:
            self._say(
                label, Text("Queue files from the browser (space to select, c to copy).", "dim")
            )
            chunk_map.part_codes = b""
            return
        text = Text.assemble(("chunks ", "bold"), f"{row.key}  ")
        if stats is not None and stats.parts_total:
            text.append(f"{stats.parts_total} × {format_size(stats.part_size)}", style="dim")
        self._say(label, text)
        chunk_map.cancelled = row.state is TransferState.CANCELLED
        chunk_map.part_codes = stats.part_codes if stats is not None else b""

    def _say(self, label: Static, text: Text | str) -> None:
        """Put ``text`` in ``label`` unless it says that already: an update always repaints,
        and each repaint is loop time the transfer on the same loop loses."""
        key = label.id or ""
        if self._said.get(key) != text:
            self._said[key] = text
            label.update(text, layout=False)

    def _update_overall(self, snapshot: Snapshot) -> None:
        totals = self.transfer_list.totals
        overall = self.query_one("#overall", Static)
        if not totals.rows:
            self._say(overall, "")
            return
        seconds = self.span.active_seconds() if self.span is not None else None
        self._say(overall, overall_text(totals, snapshot.bytes_per_second, seconds))

    def _update_summary(self) -> None:
        table = self.transfer_list
        totals = table.totals
        summary = self.query_one("#summary", Static)
        if not totals.all_finished:
            summary.display = False
            self._summary_key = None
            return
        summary.display = True
        span = self.span
        seconds = span.active_seconds() if span is not None else None
        key = (table.state_version, seconds)
        if key == self._summary_key:
            return  # nothing changed since it was said (no walk over the rows again)
        self._summary_key = key
        resumed = span.resumed_bytes if span is not None else {}
        rows = table.rows_by_id
        earlier = sum(
            count
            for transfer_id, count in resumed.items()
            if (row := rows.get(transfer_id)) is not None and row.state is TransferState.DONE
        )
        summary.update(summary_text(totals, seconds, earlier), layout=False)


def _freeze_heap() -> None:
    """A big batch of rows (and the engine's records behind them) would otherwise make the
    next full garbage collection walk every one of them: 0.15 s at 100k files, and up to 1 s
    on a loaded box, a frozen screen while a transfer runs. Collect the young generations,
    then freeze what is alive so full collections skip it (rows live as long as the list;
    an object freed later by reference counting is still freed)."""
    gc.collect(1)
    gc.freeze()


def overall_text(
    totals: QueueTotals, bytes_per_second: float, active_seconds: float | None
) -> Text:
    """``files 3/10 · 1.2 GiB of 4.0 GiB · 58.4 MiB/s · ETA 47s · running 20s`` for the queue
    (from the list's running totals: no walk over the rows)."""
    finished = totals.finished
    failed = totals.count_by_state[TransferState.FAILED]
    total, done, remaining = totals.size, totals.done_bytes, totals.remaining_bytes
    running = totals.running > 0
    text = Text()
    text.append("all ", "bold")
    text.append(f"files {finished}/{totals.rows}")
    if failed:
        text.append(f" ({failed} failed)", "bold red")
    text.append(f" · {format_size(done)} of {format_size(total)}")
    if running and bytes_per_second > 0:
        text.append(f" · {format_rate(bytes_per_second)}")
        eta = eta_text(remaining, bytes_per_second, active_seconds or 0.0)
        if eta:
            text.append(f" · ETA {eta}")
    if active_seconds:
        text.append(f" · running {format_duration(active_seconds)}", "dim")
    return text


def summary_text(totals: QueueTotals, seconds: float | None, earlier: int = 0) -> Text:
    """``All done: 3 copied · 1 failed · 1.2 GiB (200.0 MiB resumed) · sent 1.0 GiB in 12s
    (81.1 MiB/s)``: the rate counts only bytes this run sent (``earlier`` bytes of the copied
    files were resumed from an earlier run), over the time something ran."""
    counts = totals.count_by_state
    moved = totals.size_by_state[TransferState.DONE]
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
