"""The transfers screen (narrow terminals) and the transfer keys shared with the browse screen."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer

from ...engine.events import TransferState
from ...engine.transfer.queue import Transfer
from ..deliveries import Delivery
from ..session import Session
from ..widgets.title_header import TitleHeader
from ..widgets.transfer_panel import TransferPanel
from .detail import TransferDetailScreen
from .help import HELP_KEY

TRANSFER_BINDINGS = [
    Binding("p", "pause", "Pause", tooltip="pause or resume the transfer under the cursor"),
    Binding("x", "cancel", "Cancel", tooltip="cancel it (its upload is aborted)"),
    Binding("r", "retry", "Retry", tooltip="queue a failed or cancelled transfer again"),
    Binding(
        "P",
        "pause_all",
        "Pause all",
        show=False,
        tooltip="pause every running transfer (again: resume all)",
    ),
    Binding(
        "X", "cancel_all", "Cancel all", show=False, tooltip="cancel every unfinished transfer"
    ),
]


class TransferActions:
    """Pause, cancel and retry the focused transfer (the transfer list's cursor row)."""

    session: Session

    def _panel(self) -> TransferPanel:
        return self.query_one(TransferPanel)  # type: ignore[attr-defined, no-any-return]

    def _focused(self) -> int | None:
        focused = self._panel().transfer_list.focused_id
        if focused is None:
            self.notify("No transfer selected.", severity="warning")  # type: ignore[attr-defined]
        return focused

    def action_pause(self) -> None:
        transfer_id = self._focused()
        if transfer_id is None:
            return
        deliveries = self.session.deliveries
        if transfer_id in deliveries.items:  # S3 → SFTP: a paused one resumes its file
            if not deliveries.pause(transfer_id) and not deliveries.resume(transfer_id):
                self.notify(  # type: ignore[attr-defined]
                    "Only a queued, running or paused delivery can be paused or resumed.",
                    severity="warning",
                )
            return
        queue = self.session.queue
        if queue.transfers[transfer_id].state is TransferState.PAUSED:
            queue.resume(transfer_id)
        else:
            queue.pause(transfer_id)

    def action_cancel(self) -> None:
        transfer_id = self._focused()
        if transfer_id is not None and not self.session.deliveries.cancel(transfer_id):
            self.session.queue.cancel(transfer_id)

    def action_retry(self) -> None:
        transfer_id = self._focused()
        if transfer_id is None:
            return
        deliveries = self.session.deliveries
        if transfer_id in deliveries.items:
            retried = deliveries.retry(transfer_id)  # the same row, a fresh attempt
        else:
            retried = self.session.queue.transfers[transfer_id].state in (
                TransferState.FAILED,
                TransferState.CANCELLED,
            )
            if retried:
                self.session.retry([transfer_id])  # a new run: lineage and hooks hear of it
        if not retried:
            self.notify(  # type: ignore[attr-defined]
                "Only failed or cancelled transfers can be retried.", severity="warning"
            )

    def on_transfer_panel_detail_requested(self, message: TransferPanel.DetailRequested) -> None:
        """Enter on a transfer: everything about it, in a dialog."""
        transfer: Transfer | Delivery | None = self.session.queue.transfers.get(
            message.transfer_id
        ) or self.session.deliveries.items.get(message.transfer_id)
        if transfer is not None:
            screen = TransferDetailScreen(
                transfer, message.stats, self.session.sampler, self.session.span
            )
            self.app.push_screen(screen)  # type: ignore[attr-defined]

    def action_pause_all(self) -> None:
        """Pause every upload and delivery while any runs; else resume them all."""
        queue, deliveries = self.session.queue, self.session.deliveries
        if deliveries.running() or any(
            t.state is TransferState.RUNNING for t in queue.transfers.values()
        ):
            queue.pause_all()
            deliveries.pause_all()
        else:
            queue.resume_all()
            deliveries.resume_all()

    def action_cancel_all(self) -> None:
        self.session.queue.cancel_all()
        self.session.deliveries.cancel_all()


class TransfersScreen(TransferActions, Screen[None]):
    """The queue and the live figures on a screen of their own."""

    BINDINGS: ClassVar[list[BindingType]] = [
        HELP_KEY,
        *TRANSFER_BINDINGS,
        Binding("escape,t", "app.pop_screen", "Back to browse", tooltip="back to the file lists"),
        Binding("i", "app.connection_details", "Details", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        yield TransferPanel(id="transfers-full")
        yield Footer()

    def on_mount(self) -> None:
        session = self.session
        panel = self._panel()
        panel.attach(
            session.bus,
            session.sampler,
            session.queue.transfers,
            session.span,
            note=session.memory_note,
        )
        self._panel().transfer_list.focus()
