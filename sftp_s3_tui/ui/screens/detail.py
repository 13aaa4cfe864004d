"""Everything about one transfer: source, key, sizes, parts, retries, timings, verification,
sha256, the full error and its hint — as text the user can select and copy."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea

from ...engine.events import TransferResult, TransferState
from ...engine.transfer.queue import Transfer
from ...metrics import PART_STATES, Sampler, TransferStats
from ..deliveries import Delivery
from ..formatting import format_duration, format_rate, format_size
from ..session import TransferSpan
from ..widgets.chunk_map import ChunkMap
from ..widgets.transfer_list import STATE_STYLE
from .dialogs import ARROW_FOCUS

#: How often an open detail view of a running transfer refreshes.
REFRESH_SECONDS = 0.5


@dataclass(frozen=True)
class Subject:
    """What the details speak of, from a queue's transfer (SFTP → S3) or a delivery
    (S3 → SFTP): one shape, so both rows open the same dialog."""

    id: int
    state: TransferState
    source: str
    destination: str
    size: int
    result: TransferResult | None

    @property
    def name(self) -> str:
        return self.source.rstrip("/").rsplit("/", 1)[-1]


def subject_of(item: Transfer | Delivery) -> Subject:
    """``item`` as it is now (its state moves on: taken again at each refresh)."""
    if isinstance(item, Delivery):
        job = item.job
        endpoint = item.request.target.endpoint
        result = item.result
        return Subject(
            item.transfer_id,
            item.state,
            f"s3://{job.bucket}/{job.key}",
            f"{endpoint.display}{job.remote_path}",
            result.bytes if result is not None else 0,
            result,
        )
    upload = item.job
    destination = f"s3://{upload.bucket}/{upload.key}"
    return Subject(item.id, item.state, upload.source, destination, upload.size, item.result)


def detail_lines(
    item: Transfer | Delivery, stats: TransferStats | None, span: TransferSpan | None = None
) -> list[tuple[str, str]]:
    """(label, value) rows describing ``item`` as of ``stats`` (the sampler's latest);
    its running time from ``span``, the clock of the overall ``running`` line."""
    transfer = subject_of(item)
    result = transfer.result
    size = transfer.size or (stats.size if stats is not None else 0)
    rows: list[tuple[str, str]] = [
        ("State", transfer.state.value),
        ("Source", transfer.source),
        ("Destination", transfer.destination),
        ("Size", f"{format_size(size)} ({size:,} bytes)"),
    ]
    if stats is not None:
        done = f"{format_size(stats.bytes_done)} ({stats.fraction_done:.0%})"
        rows.append(("Sent", done))
        if stats.parts_total:
            counts = Counter(PART_STATES[code] for code in stats.part_codes)
            states = ", ".join(f"{n} {state.value}" for state, n in counts.items() if n)
            rows.append(
                ("Parts", f"{stats.parts_total} × {format_size(stats.part_size)}: {states}")
            )
        rows.append(("Retries", f"{stats.parts_retried} part attempt(s) retried"))
        seconds = span.transfer_seconds(transfer.id) if span is not None else None
        if seconds is None:
            seconds = stats.elapsed_seconds
        if seconds:
            label = "Ran for" if transfer.state.finished else "Running for"
            rows.append((label, format_duration(seconds)))
        if stats.state is TransferState.RUNNING and stats.bytes_per_second:
            rows.append(("Rate", format_rate(stats.bytes_per_second)))
    if result is not None:
        if result.seconds:
            rate = format_rate(result.bytes / result.seconds) if result.bytes else ""
            rows.append(("Took", f"{format_duration(result.seconds)}  {rate}".rstrip()))
        if result.parts:
            resumed = f" ({result.resumed_parts} resumed)" if result.resumed_parts else ""
            rows.append(("Parts uploaded", f"{result.parts}{resumed}"))
        if result.verified_by:
            rows.append(("Verified by", result.verified_by))
        if not isinstance(item, Delivery):  # a delivery has no sha256 of its own
            rows.append(("sha256", result.sha256 or "—"))
        if result.message:
            message, _, hint = result.message.partition(" — ")
            label = "Error" if result.status is TransferState.FAILED else "Note"
            rows.append((label, message))
            if hint:
                rows.append(("Hint", hint))
    return rows


def detail_text(
    transfer: Transfer | Delivery, stats: TransferStats | None, span: TransferSpan | None = None
) -> str:
    """The details as plain text (what the copy key puts on the clipboard)."""
    rows = detail_lines(transfer, stats, span)
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


class CopyableTextScreen(ModalScreen[None]):
    """A modal of text the user can copy (``c`` or the Copy button) and close; subclasses
    give :attr:`text` and what it is in :attr:`copied` ("the details")."""

    copied = "the details"

    @property
    def text(self) -> str:
        raise NotImplementedError

    def action_copy_text(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify(f"Copied {self.copied} to the clipboard.", timeout=3)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "copy":
            self.action_copy_text()
        else:
            self.action_close()

    def action_close(self) -> None:
        self.dismiss(None)


class TransferDetailScreen(CopyableTextScreen):
    """One transfer in full; ``c`` copies the text, Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close"),
        Binding("c", "copy_text", "Copy text"),
        *ARROW_FOCUS,
    ]

    def __init__(
        self,
        transfer: Transfer | Delivery,
        stats: TransferStats | None = None,
        sampler: Sampler | None = None,
        span: TransferSpan | None = None,
    ) -> None:
        super().__init__()
        self.transfer = transfer
        self.stats = stats
        self.sampler = sampler
        self.span = span

    def compose(self) -> ComposeResult:
        subject = subject_of(self.transfer)
        name = subject.name or subject.source
        glyph, style = STATE_STYLE[subject.state]
        danger = " danger" if subject.state is TransferState.FAILED else ""
        with Vertical(classes="dialog detail" + danger):
            yield Static(Text.assemble((glyph + " ", style), (name, "bold")), classes="title")
            yield TextArea(
                detail_text(self.transfer, self.stats, self.span), read_only=True, id="detail-text"
            )
            yield ChunkMap(id="detail-chunks")
            yield Static(
                Text("select with the mouse or shift+arrows · c copies all · esc closes", "dim")
            )
            with Horizontal(classes="buttons"):
                yield Button("Copy text", id="copy")
                yield Button("Close", variant="primary", id="close")

    def on_mount(self) -> None:
        self._show()
        self.query_one("#close", Button).focus()
        if not subject_of(self.transfer).state.finished:
            self.set_interval(REFRESH_SECONDS, self._refresh_from_sampler)
        else:
            self._refresh_from_sampler()

    def _show(self) -> None:
        chunk_map = self.query_one(ChunkMap)
        chunk_map.cancelled = subject_of(self.transfer).state is TransferState.CANCELLED
        chunk_map.part_codes = self.stats.part_codes if self.stats else b""

    def _refresh_from_sampler(self) -> None:
        latest = self.sampler.latest if self.sampler is not None else None
        if latest is not None:
            for stats in latest.transfers:
                if stats.transfer_id == subject_of(self.transfer).id:
                    self.stats = stats
        text = detail_text(self.transfer, self.stats, self.span)
        area = self.query_one(TextArea)
        if area.text != text:
            area.load_text(text)
        self._show()

    @property
    def text(self) -> str:
        return detail_text(self.transfer, self.stats, self.span)
