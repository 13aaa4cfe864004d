"""The queue: one row per file with its state, a progress bar, rate, ETA and parts, as a
virtual list (Textual's line API) that stays fast with 100,000 rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

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
    # not the ✗ of a failure: the user stopped it, nothing went wrong
    TransferState.CANCELLED: ("⊘", "grey62"),
}
#: No ETA before a transfer has run this long: the first second's rate is mostly the
#: pipeline filling (it once said ``2h05m`` one second into a 40 s copy).
ETA_AFTER_SECONDS = 3.0
_EIGHTHS = " ▏▎▍▌▋▊▉█"


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


@dataclass(slots=True)
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
    #: Seconds since the transfer's run started (the sampler's), for the ETA's warm-up.
    elapsed_seconds: float = 0.0
    message: str = ""
    #: Queued again (a retry) and not started yet: the sampler's figures are the old run's.
    restarting: bool = False
    #: A check after the bytes are sent, and how far it is ("reading back 40%"): a long
    #: one at 100% would otherwise look like a hang.
    checking: str = ""


@dataclass
class QueueTotals:
    """The queue's figures, kept as rows change (never by walking every row): what the
    ``all files n/m`` line and the end-of-run summary show."""

    rows: int = 0
    size: int = 0
    #: Bytes done over all rows (a skipped file counts whole, a running one what it sent).
    done_bytes: int = 0
    #: Bytes left in unfinished rows.
    remaining_bytes: int = 0
    running: int = 0
    #: Sum of the sizes of the rows in each state, and how many rows are in each.
    count_by_state: Counter[TransferState] = field(default_factory=Counter)
    size_by_state: Counter[TransferState] = field(default_factory=Counter)

    @property
    def finished(self) -> int:
        counts = self.count_by_state
        waiting = TransferState.QUEUED, TransferState.RUNNING, TransferState.PAUSED
        return self.rows - sum(counts[state] for state in waiting)

    @property
    def all_finished(self) -> bool:
        return self.rows > 0 and self.finished == self.rows

    def add(self, row: TransferRow, sign: int = 1) -> None:
        """Count ``row`` as it is now (``sign=-1`` takes it out again)."""
        state, size = row.state, row.size
        self.rows += sign
        self.size += sign * size
        self.count_by_state[state] += sign
        self.size_by_state[state] += sign * size
        if state is TransferState.SKIPPED:
            self.done_bytes += sign * size
        else:
            self.done_bytes += sign * min(row.bytes_done, size)
        if not state.finished:
            self.remaining_bytes += sign * max(size - row.bytes_done, 0)
        if state is TransferState.RUNNING:
            self.running += sign

    @classmethod
    def of(cls, rows: Iterable[TransferRow]) -> QueueTotals:
        totals = cls()
        for row in rows:
            totals.add(row)
        return totals


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    justify: Literal["left", "right"] = "left"


#: The list's columns at their widest; ``column_widths`` fits them to the line.
COLUMNS: tuple[Column, ...] = (
    Column("state", " ", 1),
    Column("name", "File", 26),
    Column("bar", "Progress", 16),
    Column("pct", "%", 4, "right"),
    Column("rate", "Rate", 10, "right"),
    Column("eta", "ETA", 6, "right"),
    Column("note", "Parts / note", 12),
)
#: The narrowest the name, bar and note columns get before the line is cut, and the
#: name's width before the note and bar grow.
MIN_NAME, MIN_BAR, MIN_NOTE, FIRST_NAME = 12, 8, 12, 16
#: What the note column wants at most ("parts 18/38 (8 in flight)").
WANTED_NOTE = 25
#: Blanks between two columns (and at each end of the line).
CELL_PADDING = 1
#: Rendered lines kept between frames (only visible rows are ever rendered).
LINE_CACHE_LIMIT = 512


def column_widths(width: int) -> list[int]:
    """Each column's width (padding excluded) for a line ``width`` cells wide: the rate, ETA
    and note are never cut (at 80 columns they once showed as ``Par``); the bar, then the
    name give way first, and a wide line gives the name and note the room."""
    state, _, widest_bar, pct, rate, eta, _ = (column.width for column in COLUMNS)
    free = width - CELL_PADDING * (len(COLUMNS) + 1) - state - pct - rate - eta
    name = max(MIN_NAME, min(FIRST_NAME, free - MIN_BAR - MIN_NOTE))
    note = max(MIN_NOTE, min(WANTED_NOTE, free - name - MIN_BAR))
    bar = max(MIN_BAR, min(widest_bar, free - name - note))
    name = max(name, free - note - bar)
    return [state, name, bar, pct, rate, eta, note]


class TransferList(ScrollView, can_focus=True):
    """The transfer queue as a virtual list: rows are plain records (in queue order, and by
    transfer id); only the lines on screen are rendered, and a change to a row repaints that
    row's line alone, so 100,000 rows cost no more per frame than 30. The header line stays at
    the top; the cursor row is the focused transfer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First", show=False),
        Binding("end,ctrl+end", "last", "Last", show=False),
        Binding(
            "enter",
            "select",
            "Details",
            show=False,
            tooltip="everything about the transfer under the cursor",
        ),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"transfer-list--header", "transfer-list--cursor"}
    DEFAULT_CSS = """
    TransferList {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        & > .transfer-list--header { text-style: bold; background: $panel; color: $foreground; }
        & > .transfer-list--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .transfer-list--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    class _RowMessage(Message):
        """A message about one transfer of the list."""

        def __init__(self, transfer_list: TransferList, transfer_id: int) -> None:
            super().__init__()
            self.transfer_list = transfer_list
            self.transfer_id = transfer_id

        @property
        def control(self) -> TransferList:
            return self.transfer_list

    class Highlighted(_RowMessage):
        """The cursor moved to another transfer."""

    class Selected(_RowMessage):
        """Enter (or a click on the cursor row): the user wants this transfer's details."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows: list[TransferRow] = []
        self.rows_by_id: dict[int, TransferRow] = {}
        self._index: dict[int, int] = {}
        self.totals = QueueTotals()
        #: Bumped whenever a row changes state (what the summary depends on).
        self.state_version = 0
        self._cursor = 0
        self._lines: dict[int, Strip] = {}
        self._lines_key: tuple[object, ...] = ()
        self._size_pending = False
        #: The content area as of the last paint (asking the layout for it per row is slow).
        self._area = Size(0, 0)

    # the rows -----------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def focused_id(self) -> int | None:
        if not self.rows:
            return None
        return self.rows[self._cursor].transfer_id

    def index_of(self, transfer_id: int) -> int | None:
        """The row's position in the list (the queue's order)."""
        return self._index.get(transfer_id)

    def cells(self, transfer_id: int) -> tuple[Text, ...]:
        """The row's cells as the list shows them (state, name, bar, %, rate, ETA, note)."""
        return self._cells(self.rows_by_id[transfer_id])

    def add_transfer(self, row: TransferRow) -> None:
        self.add_transfers((row,))

    def add_transfers(self, rows: Iterable[TransferRow]) -> None:
        """Append rows (a transfer already listed takes the new record in its place)."""
        first_new = len(self.rows)
        by_id, index, totals = self.rows_by_id, self._index, self.totals
        for row in rows:
            known = by_id.get(row.transfer_id)
            if known is not None:
                totals.add(known, -1)
                self.rows[index[row.transfer_id]] = row
                self._lines.pop(index[row.transfer_id], None)
            else:
                index[row.transfer_id] = len(self.rows)
                self.rows.append(row)
            by_id[row.transfer_id] = row
            totals.add(row)
        self.state_version += 1
        if first_new == 0 and self.rows:
            self.post_message(self.Highlighted(self, self.rows[0].transfer_id))
        top = round(self.scroll_y)
        if first_new < top + self._visible_rows() or len(self.rows) == first_new:
            self.refresh()  # new rows on screen (or a replaced record): one repaint
        self._size_changed()

    def set_state(self, transfer_id: int, state: TransferState, message: str = "") -> None:
        row = self.rows_by_id.get(transfer_id)
        if row is None:
            return
        self.totals.add(row, -1)
        row.state = state
        if message:
            row.message = message
        if state is TransferState.DONE:
            row.bytes_done = row.size
            row.parts_done = row.parts_total or row.parts_done
        if state in (TransferState.QUEUED, TransferState.RUNNING):
            row.message = ""
        row.checking = ""
        if state is TransferState.QUEUED and row.bytes_done:  # a retry: it starts afresh
            row.bytes_done = row.parts_done = row.parts_in_flight = 0
            row.bytes_per_second = 0.0
            row.restarting = True
        self.totals.add(row)
        self.state_version += 1
        self._row_changed(self._index[transfer_id])

    def checking(self, transfer_id: int, text: str) -> None:
        """Say ``text`` (``reading back 40%``) in the row's note until its state changes."""
        row = self.rows_by_id.get(transfer_id)
        if row is None or row.checking == text or row.state is not TransferState.RUNNING:
            return
        row.checking = text
        self._row_changed(self._index[transfer_id])

    def started(self, transfer_id: int) -> None:
        """The transfer's run began: the sampler's figures are this run's from now on (a
        check before it, a resumed delivery's kept part, is over)."""
        row = self.rows_by_id.get(transfer_id)
        if row is not None:
            row.restarting = False
            if row.checking:
                row.checking = ""
                self._row_changed(self._index[transfer_id])

    def apply(self, stats: TransferStats) -> bool:
        """Update a row from the sampler's figures; False when the list has no such row yet."""
        row = self.rows_by_id.get(stats.transfer_id)
        if row is None:
            return False
        if row.restarting or stats.state is TransferState.QUEUED:
            return True  # nothing sent yet this run (a retry's old figures are not its progress)
        if stats.size and not row.size:  # queued before its size was known (a delivery)
            self.totals.add(row, -1)
            row.size = stats.size
            self.totals.add(row)
        state = stats.state if not row.state.finished else row.state
        # A done row is whole, whatever a sampler tick taken before the end still says.
        done = state is TransferState.DONE
        bytes_done = row.size if done else stats.bytes_done
        parts_done = (stats.parts_total or stats.parts_done) if done else stats.parts_done
        shown = (
            row.bytes_done,
            row.bytes_per_second,
            row.parts_done,
            row.parts_total,
            row.parts_in_flight,
            row.state,
            row.elapsed_seconds >= ETA_AFTER_SECONDS,
        )
        if shown == (
            bytes_done,
            stats.bytes_per_second,
            parts_done,
            stats.parts_total,
            stats.parts_in_flight,
            state,
            stats.elapsed_seconds >= ETA_AFTER_SECONDS,
        ):
            return True  # what the row shows is unchanged (most rows of a long queue wait)
        self.totals.add(row, -1)
        row.bytes_done = bytes_done
        row.bytes_per_second = stats.bytes_per_second
        row.parts_done = parts_done
        row.parts_total = stats.parts_total
        row.parts_in_flight = stats.parts_in_flight
        row.elapsed_seconds = stats.elapsed_seconds
        if row.state is not state:
            row.state = state
            self.state_version += 1
        self.totals.add(row)
        self._row_changed(self._index[stats.transfer_id])
        return True

    # the cursor ---------------------------------------------------------------------------
    def move_cursor(self, row: int, scroll: bool = True) -> None:
        """Put the cursor on row ``row`` (clamped to the list) and, with ``scroll``, bring it
        into view."""
        if not self.rows:
            return
        row = min(max(row, 0), len(self.rows) - 1)
        old = self._cursor
        if row != old:
            self._cursor = row
            self._row_changed(old)
            self._row_changed(row)
            self.post_message(self.Highlighted(self, self.rows[row].transfer_id))
        if scroll:
            self.scroll_to_row(row)

    def scroll_to_row(self, row: int) -> None:
        """Scroll (at once, no animation) so that row ``row`` is on screen."""
        self._sync_size()
        top = round(self.scroll_y)
        visible = self._visible_rows()
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True)

    def _visible_rows(self) -> int:
        if not self._area.height:
            self._area = self.scrollable_content_region.size
        return max(self._area.height - 1, 1)  # the header takes a line

    def on_resize(self) -> None:
        self._area = Size(0, 0)

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor - self._visible_rows())

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor + self._visible_rows())

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)

    def action_select(self) -> None:
        focused = self.focused_id
        if focused is not None:
            self.post_message(self.Selected(self, focused))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:  # outside the rows, or on the header
            return
        row = round(self.scroll_y) + offset.y - 1
        if row >= len(self.rows):
            return
        event.stop()
        if row == self._cursor:
            self.action_select()  # a click on the cursor row opens it, like Enter
        else:
            self.move_cursor(row)

    # rendering ----------------------------------------------------------------------------
    def _row_changed(self, index: int) -> None:
        """Forget the row's rendered line and repaint it if it is on screen (and only then)."""
        self._lines.pop(index, None)
        top = round(self.scroll_y)
        if top <= index < top + self._visible_rows():
            self.refresh_line(index + 1)  # line 0 is the header

    def _size_changed(self) -> None:
        """Rows were added: grow the virtual height once per batch, not once per row."""
        if not self._size_pending:
            self._size_pending = True
            self.call_later(self._sync_size)

    def _sync_size(self) -> None:
        self._size_pending = False
        #: The content area as of the last paint (asking the layout for it per row is slow).
        self._area = Size(0, 0)
        height = len(self.rows) + 1
        if self.virtual_size.height != height:
            self.virtual_size = Size(0, height)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def _widths(self, width: int) -> list[int]:
        return column_widths(width)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._area = self.scrollable_content_region.size  # once per paint, not per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self._area.width or self.scrollable_content_region.width
        base = self.rich_style
        key = (width, self.has_focus, base, self.app.theme)
        if key != self._lines_key:  # another width, focus or theme: every line changes
            self._lines.clear()
            self._lines_key = key
        if y == 0:
            header = self.get_component_rich_style("transfer-list--header")
            return self._line(tuple(Text(c.label) for c in COLUMNS), width, base + header)
        index = round(self.scroll_y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, base)
        line = self._lines.get(index)
        if line is None:
            style = base
            if index == self._cursor:
                style = base + self.get_component_rich_style("transfer-list--cursor")
            line = self._line(self._cells(self.rows[index]), width, style)
            if len(self._lines) >= LINE_CACHE_LIMIT:
                self._lines.clear()
            self._lines[index] = line
        return line

    def _line(self, cells: tuple[Text, ...], width: int, style: Style) -> Strip:
        text = Text(no_wrap=True, end="")
        pad = " " * CELL_PADDING
        for column, cell_width, cell in zip(COLUMNS, self._widths(width), cells, strict=True):
            cell = cell.copy()
            cell.no_wrap = True
            cell.overflow = "ellipsis"
            cell.align(column.justify, cell_width)
            text.append(pad)  # one blank between columns (and at each end)
            text.append_text(cell)
        text.append(pad)
        segments = list(text.render(self.app.console, end=""))
        return Strip(segments).adjust_cell_length(width).apply_style(style)

    def _cells(self, row: TransferRow) -> tuple[Text, ...]:
        width = self._area.width or self.scrollable_content_region.width
        return row_cells(row, column_widths(width)[2])


def eta_text(remaining_bytes: int, bytes_per_second: float, elapsed_seconds: float) -> str:
    """The time left at the current rate, or ``""`` while the rate means nothing yet (before
    ``ETA_AFTER_SECONDS`` of running, or with nothing moving)."""
    if elapsed_seconds < ETA_AFTER_SECONDS or bytes_per_second <= 0:
        return ""
    return format_duration(max(remaining_bytes, 0) / bytes_per_second)


def row_cells(row: TransferRow, bar_width: int = 16) -> tuple[Text, ...]:
    """The row's cells: state, name, bar (``bar_width`` cells), %, rate, ETA, note."""
    glyph, style = STATE_STYLE[row.state]
    done = row.state in (TransferState.DONE, TransferState.SKIPPED)
    fraction = min(row.bytes_done / row.size, 1.0) if row.size else (1.0 if done else 0.0)
    if not done and row.state.finished:
        fraction = min(fraction, 0.99)  # a failed or cancelled file never shows as complete
    running = row.state is TransferState.RUNNING
    rate = format_rate(row.bytes_per_second) if running else ""
    eta = ""
    if running:
        eta = eta_text(row.size - row.bytes_done, row.bytes_per_second, row.elapsed_seconds)
    if row.state is TransferState.PAUSED:
        # Parts already sent keep landing after p: say so, or a "paused" bar that still
        # rises looks like a pause that did not work.
        if row.parts_in_flight:
            parts = "part" if row.parts_in_flight == 1 else "parts"
            note = Text(f"pausing… {row.parts_in_flight} {parts} draining", style="yellow")
        elif row.parts_total:
            note = Text(f"paused · parts {row.parts_done}/{row.parts_total}", style="yellow")
        else:
            note = Text("paused", style="yellow")
    elif row.message and row.state not in (TransferState.RUNNING, TransferState.DONE):
        note = Text(
            short_note(row.message, row.key),
            style="red" if row.state is TransferState.FAILED else "dim",
            overflow="ellipsis",
            no_wrap=True,
        )
    elif row.state is TransferState.QUEUED:
        note = Text(f"waiting · {format_size(row.size)}", style="dim")
    elif running and row.checking:
        note = Text(row.checking, style="cyan")
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
        Text(progress_bar(fraction, bar_width), style=bar_style),
        Text(percent, justify="right", style="red" if percent == "fail" else ""),
        Text(rate, justify="right"),
        Text(eta, justify="right"),
        note,
    )
