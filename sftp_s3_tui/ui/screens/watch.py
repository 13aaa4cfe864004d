"""Watch a folder from the TUI: the dialog that starts a watch, and the list of running ones.

The options are ``sftp-s3-tui watch``'s (``--every``, ``--include`` / ``--exclude``,
``--min-age``, ``--stable``, ``--done-file``), checked by the same code (``requests/``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from ...engine.addresses import S3Location, parse_s3_url
from ...engine.errors import UsageError
from ...observe.expectations import DropStatus, Expectation
from ...requests import RunFlags, parse_every, run_options
from ..watches import WatchPhase, WatchSpec, WatchStatus
from .dialogs import ARROW_FOCUS

#: The dialog's fields: (id, label, placeholder).
FIELDS = (
    ("watch-dest", "Destination", "s3://bucket/prefix/"),
    ("watch-every", "Poll every", "1m"),
    ("watch-include", "Include", "*.csv *.json   (globs, space-separated)"),
    ("watch-exclude", "Exclude", "tmp/ *.part"),
    ("watch-min-age", "Min age", "5m   (unmodified this long)"),
    ("watch-stable", "Stable for", "30s   (size and mtime unchanged)"),
    ("watch-done-file", "Done file", ".done   (x.csv only once x.csv.done exists)"),
    ("watch-expect", "Expect", "3 invoice_*.csv by weekdays 06:00 Europe/Berlin"),
)
DEFAULT_EVERY = "1m"
PHASE_STYLE = {
    WatchPhase.STARTING: "dim",
    WatchPhase.POLLING: "bold cyan",
    WatchPhase.IDLE: "green",
    WatchPhase.STOPPING: "yellow",
    WatchPhase.STOPPED: "dim",
    WatchPhase.FAILED: "bold red",
}


def watch_spec(
    folder: str,
    dest: str,
    every: str,
    *,
    include: str = "",
    exclude: str = "",
    min_age: str = "",
    stable: str = "",
    done_file: str = "",
    expect: str = "",
) -> WatchSpec:
    """The watch the dialog's fields describe, checked as ``watch``'s flags are."""
    location = parse_s3_url(dest.strip())
    if not location.is_prefix:
        raise UsageError(
            f"A watch ships many files, but {location} names one key",
            "end the destination with / to watch into a prefix",
        )
    # Excludes first: after the includes they could never apply (see engine/filters.py).
    rules = tuple((False, p) for p in exclude.split()) + tuple((True, p) for p in include.split())
    flags = RunFlags(
        rules=rules,
        min_age=min_age.strip() or None,
        stable=stable.strip() or None,
        done_file=done_file.strip() or None,
    )
    every_seconds = parse_every(every.strip() or DEFAULT_EVERY, "Poll every")
    expectations = (Expectation.parse(expect),) if expect.strip() else ()
    return WatchSpec(folder, location, every_seconds, run_options(flags), expectations)


class WatchDialog(ModalScreen[WatchSpec | None]):
    """Start watching ``folder``: where to, how often, which files, when they are ready."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "start", "Start watching", key_display="^o"),
        *ARROW_FOCUS,
    ]

    def __init__(self, folder: str, source: str, dest: S3Location | None) -> None:
        super().__init__()
        self.folder = folder
        self.source = source
        self.dest = dest

    def compose(self) -> ComposeResult:
        values = {"watch-dest": str(self.dest) if self.dest else "", "watch-every": DEFAULT_EVERY}
        with Vertical(classes="dialog watch"):
            yield Static(Text(f"Watch {self.source}", style="bold"), classes="title")
            yield Static(
                Text(
                    "Each poll ships the new or changed files once (the queue shows them); "
                    "files not ready yet wait for a later poll.",
                    style="dim",
                )
            )
            for field_id, label, placeholder in FIELDS:
                with Horizontal(classes="watch-row"):
                    yield Label(label)
                    yield Input(values.get(field_id, ""), placeholder=placeholder, id=field_id)
            yield Static("", id="watch-error")
            with Horizontal(classes="buttons"):
                yield Button("Start watching", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#watch-every", Input).focus()

    def _value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value

    def spec(self) -> WatchSpec:
        """The fields as a watch (raises UsageError with what is wrong)."""
        return watch_spec(
            self.folder,
            self._value("watch-dest"),
            self._value("watch-every"),
            include=self._value("watch-include"),
            exclude=self._value("watch-exclude"),
            min_age=self._value("watch-min-age"),
            stable=self._value("watch-stable"),
            done_file=self._value("watch-done-file"),
            expect=self._value("watch-expect"),
        )

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()

    def action_start(self) -> None:
        try:
            spec = self.spec()
        except UsageError as exc:
            text = f"{exc.message} — {exc.hint}" if exc.hint else exc.message
            self.query_one("#watch-error", Static).update(text)
            return
        self.dismiss(spec)

    def action_cancel(self) -> None:
        self.dismiss(None)


def clock(at: float | None) -> str:
    """``14:05:09`` (local time), or ``-``."""
    return time.strftime("%H:%M:%S", time.localtime(at)) if at is not None else "-"


def every_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def drops_text(drops: list[DropStatus]) -> Text:
    """The drops' column: ``2/3`` (arrived of expected), red when files are missing past
    the deadline, yellow when some came late."""
    text = Text()
    for drop in drops:
        if text:
            text.append(" ")
        style = "bold red" if drop.missing else "yellow" if drop.late else "green"
        text.append(f"{drop.arrived}/{drop.expected}", style=style)
    return text


def drop_lines(statuses: list[WatchStatus]) -> Text:
    """One line per expected drop under the table: its deadline and what is missing."""
    text = Text()
    for status in statuses:
        for drop in status.drops:
            if text:
                text.append("\n")
            style = "bold red" if drop.missing else "yellow" if drop.late else ""
            text.append(f"#{status.id} ", style="dim")
            text.append(drop.line(), style=style)
    return text


def count(number: int, style: str) -> Text:
    """A right-aligned count, in ``style`` when not zero."""
    return Text(str(number), justify="right", style=style if number else "")


class WatchesScreen(ModalScreen[None]):
    """Every watch of the session: what it watches, when it polled, what it shipped."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,W", "close", "Close", key_display="esc"),
        Binding("x", "stop", "Stop watch"),
    ]

    #: How often the table is redrawn from the watches' status.
    REFRESH_SECONDS = 1.0

    def __init__(
        self,
        statuses: Callable[[], list[WatchStatus]],
        stop: Callable[[int], Awaitable[None]],
        *,
        live: bool = True,
    ) -> None:
        super().__init__()
        self.statuses = statuses
        self.stop = stop
        self.live = live

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog watches"):
            yield Static(Text("Watches", style="bold"), classes="title")
            table: DataTable[Text | str] = DataTable(cursor_type="row", id="watches-table")
            yield table
            yield Static("", id="watches-drops")
            yield Static(
                "x stops the watch under the cursor (its uploads under way are aborted); "
                "w on a folder starts one. Shipped files are in the transfers (t); There "
                "counts files found already at the destination (not sent again).",
                id="watches-note",
            )

    def on_mount(self) -> None:
        table = self.query_one("#watches-table", DataTable)
        table.add_column("Source → destination", key="what")
        table.add_column("Every", key="every", width=6)
        table.add_column("Last poll", key="last", width=9)
        table.add_column("Next poll", key="next", width=9)
        table.add_column("Shipped", key="shipped", width=7)
        table.add_column("There", key="there", width=5)
        table.add_column("Waiting", key="waiting", width=7)
        table.add_column("Failed", key="failed", width=6)
        table.add_column("State", key="state")
        table.add_column("Drop", key="drop")  # arrived/expected; the line below says more
        self.show()
        if self.live:
            self.set_interval(self.REFRESH_SECONDS, self.show)
        table.focus()

    def show(self) -> None:
        """Redraw the rows (the cursor stays on the same watch)."""
        table = self.query_one("#watches-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        statuses = self.statuses()
        for status in statuses:
            state = Text(status.phase.value, style=PHASE_STYLE[status.phase])
            if status.message:
                state.append(f"  {status.message}", style="red")
            table.add_row(
                Text(f"{status.source} → {status.dest}", overflow="ellipsis", no_wrap=True),
                every_text(status.every_seconds),
                clock(status.last_poll),
                clock(status.next_poll),
                Text(str(status.shipped), justify="right"),
                count(status.already_there, "cyan"),
                count(status.waiting, "magenta"),
                count(status.failed, "red"),
                state,
                drops_text(status.drops),
                key=str(status.id),
            )
        self.query_one("#watches-drops", Static).update(drop_lines(statuses))
        if not statuses:
            table.add_row(Text("No watches yet: w on an SFTP folder starts one.", "dim"), *[""] * 8)
        elif cursor < table.row_count:
            table.move_cursor(row=cursor)

    def _cursor_id(self) -> int | None:
        table = self.query_one("#watches-table", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(row_key.value) if row_key.value and row_key.value.isdigit() else None

    def action_stop(self) -> None:
        watch_id = self._cursor_id()
        if watch_id is not None:
            self._stop(watch_id)

    @work(group="stop-watch", exit_on_error=False)
    async def _stop(self, watch_id: int) -> None:
        self.notify("Stopping the watch…", timeout=2)
        await self.stop(watch_id)
        self.show()
        self.notify("The watch stopped.")

    def action_close(self) -> None:
        self.dismiss(None)
