"""The queue: one row per file with its state, a progress bar, rate, ETA and parts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from ...engine.events import TransferState
from ...metrics import TransferStats
from ..formatting import format_duration, format_rate, format_size

STATE_STYLE: dict[TransferState, tuple[str, str]] = {
    TransferState.QUEUED: ("·", "dim"),
    TransferState.RUNNING: ("▶", "bold dodger_blue1"),
    TransferState.PAUSED: ("‖", "bold yellow"),
    TransferState.DONE: ("✓", "bold green"),
    TransferState.FAILED: ("✗", "bold red"),
    TransferState.SKIPPED: ("→", "cyan"),
    TransferState.CANCELLED: ("✗", "dim red"),
}
_EIGHTHS = " ▏▎▍▌▋▊▉█"
COLUMNS = ("state", "name", "bar", "pct", "rate", "eta", "note")


def progress_bar(fraction: float, width: int = 16) -> str:
    """A bar of ``width`` cells with eighth-cell resolution."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = int(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar.ljust(width, " ")


def short_note(message: str, key: str) -> str:
    """A failure's message for the narrow note column: without its hint, and with paths cut to
    their last part (``…/name``) so the text never stops mid-path; Enter shows it all."""
    text = message.partition(" — ")[0]
    name = key.rsplit("/", 1)[-1] or key
    words = []
    for word in text.replace(key, name).split(" "):
        bare = word.strip("'\",;:()")
        if "/" in bare and len(bare) > 24:
            tail = bare.rstrip("/").rsplit("/", 1)[-1]
            word = word.replace(bare, "…/" + tail)
        words.append(word)
    return " ".join(words)


@dataclass
class TransferRow:
    """What the list knows about one transfer (from events, then from snapshots)."""

    transfer_id: int
    name: str
    key: str
    size: int
    state: TransferState = TransferState.QUEUED
    bytes_done: int = 0
    bytes_per_second: float = 0.0
    parts_done: int = 0
    parts_total: int = 0
    parts_in_flight: int = 0
    message: str = ""
    #: Queued again (a retry) and not started yet: the sampler's figures are the old run's.
    restarting: bool = False


class TransferList(DataTable[Text | str]):
    """The transfer queue as a table; the cursor row is the focused transfer."""

    DEFAULT_CSS = """
    TransferList { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.rows_by_id: dict[int, TransferRow] = {}
        self._shown: dict[int, tuple[Text | str, ...]] = {}

    def on_mount(self) -> None:
        self.add_column(" ", key="state", width=1)
        self.add_column("File", key="name", width=26)
        self.add_column("Progress", key="bar", width=16)
        self.add_column("%", key="pct", width=4)
        self.add_column("Rate", key="rate", width=11)
        self.add_column("ETA", key="eta", width=6)
        self.add_column("Parts / note", key="note", width=40)

    @property
    def focused_id(self) -> int | None:
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value) if row_key.value is not None else None

    def add_transfer(self, row: TransferRow) -> None:
        if row.transfer_id in self.rows_by_id:
            self.rows_by_id[row.transfer_id] = row
            self._render_row(row)
            return
        self.rows_by_id[row.transfer_id] = row
        cells = self._cells(row)
        self._shown[row.transfer_id] = cells
        self.add_row(*cells, key=str(row.transfer_id))

    def set_state(self, transfer_id: int, state: TransferState, message: str = "") -> None:
        row = self.rows_by_id.get(transfer_id)
        if row is None:
            return
        row.state = state
        if message:
            row.message = message
        if state is TransferState.DONE:
            row.bytes_done = row.size
            row.parts_done = row.parts_total or row.parts_done
        if state in (TransferState.QUEUED, TransferState.RUNNING):
            row.message = ""
        if state is TransferState.QUEUED and row.bytes_done:  # a retry: it starts afresh
            row.bytes_done = row.parts_done = row.parts_in_flight = 0
            row.bytes_per_second = 0.0
            row.restarting = True
        self._render_row(row)

    def started(self, transfer_id: int) -> None:
        """The transfer's run began: the sampler's figures are this run's from now on."""
        row = self.rows_by_id.get(transfer_id)
        if row is not None:
            row.restarting = False

    def apply(self, stats: TransferStats) -> None:
        """Update a row from the sampler's figures."""
        row = self.rows_by_id.get(stats.transfer_id)
        if row is None:
            return
        if row.restarting or stats.state is TransferState.QUEUED:
            return  # nothing sent yet this run (a retry's old figures are not its progress)
        state = stats.state if not row.state.finished else row.state
        shown = (
            row.bytes_done,
            row.bytes_per_second,
            row.parts_done,
            row.parts_total,
            row.parts_in_flight,
            row.state,
        )
        if shown == (
            stats.bytes_done,
            stats.bytes_per_second,
            stats.parts_done,
            stats.parts_total,
            stats.parts_in_flight,
            state,
        ):
            return  # what the row shows is unchanged (most rows of a long queue wait)
        row.bytes_done = stats.bytes_done
        row.bytes_per_second = stats.bytes_per_second
        row.parts_done = stats.parts_done
        row.parts_total = stats.parts_total
        row.parts_in_flight = stats.parts_in_flight
        if not row.state.finished:
            row.state = stats.state
        self._render_row(row)

    def _render_row(self, row: TransferRow) -> None:
        key = str(row.transfer_id)
        if key not in self.rows:
            return
        cells = self._cells(row)
        shown = self._shown.get(row.transfer_id, ())
        for index, (column, value) in enumerate(zip(COLUMNS, cells, strict=True)):
            if index >= len(shown) or shown[index] != value:
                self.update_cell(key, column, value)
        self._shown[row.transfer_id] = cells

    @staticmethod
    def _cells(row: TransferRow) -> tuple[Text | str, ...]:
        glyph, style = STATE_STYLE[row.state]
        done = row.state in (TransferState.DONE, TransferState.SKIPPED)
        fraction = min(row.bytes_done / row.size, 1.0) if row.size else (1.0 if done else 0.0)
        if not done and row.state.finished:
            fraction = min(fraction, 0.99)  # a failed or cancelled file never shows as complete
        running = row.state is TransferState.RUNNING
        rate = format_rate(row.bytes_per_second) if running else ""
        eta = ""
        if running and row.bytes_per_second > 0:
            eta = format_duration((row.size - row.bytes_done) / row.bytes_per_second)
        if row.message and row.state not in (TransferState.RUNNING, TransferState.DONE):
            note = Text(
                short_note(row.message, row.key),
                style="red" if row.state is TransferState.FAILED else "dim",
                overflow="ellipsis",
                no_wrap=True,
            )
        elif row.state is TransferState.QUEUED:
            note = Text(f"waiting · {format_size(row.size)}", style="dim")
        elif row.parts_total:
            extra = f" ({row.parts_in_flight} in flight)" if running and row.parts_in_flight else ""
            note = Text(f"parts {row.parts_done}/{row.parts_total}{extra}")
        else:
            note = Text(format_size(row.size), style="dim")
        bar_style = {
            TransferState.DONE: "green",
            TransferState.FAILED: "red",
            TransferState.CANCELLED: "grey50",
        }.get(row.state, "dodger_blue1")
        percent = f"{int(fraction * 100)}%"
        if row.state is TransferState.FAILED:
            percent = "fail"
        return (
            Text(glyph, style=style),
            Text(row.name, overflow="ellipsis", no_wrap=True),
            Text(progress_bar(fraction), style=bar_style),
            Text(percent, justify="right", style="red" if percent == "fail" else ""),
            Text(rate, justify="right"),
            Text(eta, justify="right"),
            note,
        )
