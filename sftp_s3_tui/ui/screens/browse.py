"""Browse SFTP beside the bucket picker; with a wide terminal the transfers share the screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from ... import paths
from ...engine.addresses import S3Location
from ...engine.config import ConflictPolicy
from ...engine.errors import TransferError, UsageError
from ...engine.events import EngineEvent, TransferFinished, TransferState
from ...engine.plan.conflicts import Action
from ...engine.plan.preview import CopyPlan
from ...requests.delivery import DeliveryRequest, folder_delivery_request
from ..deliveries import DeliveryPlan
from ..formatting import format_size
from ..messages import DisconnectRequested, ErrorRaised
from ..session import Session
from ..widgets.bucket_picker import BucketPicker
from ..widgets.remote_tree import RemoteTree
from ..widgets.title_header import TitleHeader
from ..widgets.transfer_panel import TransferPanel
from .dialogs import ConfirmScreen, PromptScreen
from .help import HELP_KEY
from .history import HistoryScreen
from .plan import POLICY_LABELS, PlanScreen, found_at_keys
from .transfers import TRANSFER_BINDINGS, TransferActions, TransfersScreen
from .watch import WatchDialog, WatchesScreen

#: The transfer keys' actions (they need the transfer list on this screen).
TRANSFER_ACTIONS = frozenset(str(b.action) for b in TRANSFER_BINDINGS)
#: Below this width the transfers get a screen of their own (key t).
WIDE = 110
#: From this width the footer has room for its keys with the usual spacing.
ROOMY = 140
#: A copy this large (or of this many files) shows its plan first, as does one that would
#: overwrite anything.
LARGE_COPY_BYTES = 1 << 30
LARGE_COPY_FILES = 100
#: Objects landed this long ago (batched) refresh the bucket tree and the marks.
LANDED_REFRESH_SECONDS = 0.5
MARKS_DELAY_SECONDS = 0.3
LANDED = (TransferState.DONE, TransferState.SKIPPED)


def delivery_plan_text(plan: DeliveryPlan, shown: int = 12) -> Text:
    """Each object → its path and what it will do (new; kept: a file is there, skip-existing;
    refused by name), the first ``shown`` of each, then the counts."""
    text = Text()
    there = [job for job in plan.jobs if job.remote_path in plan.existing]
    new = [job for job in plan.jobs if job.remote_path not in plan.existing]
    for mark, style, jobs in (("+ new ", "green", new), ("– kept", "dim", there)):
        for job in jobs[:shown]:
            text.append(f"{mark}  ", style=style)
            text.append(f"s3://{job.bucket}/{job.key} → {job.remote_path}\n")
        if len(jobs) > shown:
            text.append(f"        … and {len(jobs) - shown} more\n", style="dim")
    for refused in plan.refused[:shown]:
        text.append("✗ refused  ", style="bold red")
        text.append(f"{refused.error.message}\n")
    text.append(
        f"\n{len(new)} new · {len(there)} kept (a file is there: skip existing, a partner may "
        f"be reading it) · {len(plan.refused)} refused. Each file is written to a temporary "
        "name, checked, then renamed into place."
    )
    return text


class BrowseScreen(TransferActions, Screen[None]):
    """The main screen: remote files, destination, and (when wide) the transfers."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        HELP_KEY,
        Binding(
            "c",
            "copy",
            "Copy",
            tooltip="queue the selected files (or the one under the cursor) to the S3 destination",
        ),
        Binding(
            "C",
            "copy(True)",
            "Plan…",
            key_display="C",
            tooltip="show what each file would do (new, skip, overwrite) before copying",
        ),
        Binding("t", "transfers", "Transfers", tooltip="the queue, chunk map and live figures"),
        Binding("s", "focus_s3", "S3 side", show=False, tooltip="move to the bucket tree"),
        Binding("f", "focus_sftp", "SFTP side", show=False, tooltip="move to the SFTP list"),
        Binding(
            "f5",
            "reload",
            "Reload",
            show=False,
            tooltip="list the SFTP folder and the buckets again",
        ),
        Binding(
            "H",
            "history",
            "History",
            key_display="H",
            show=False,
            tooltip="past runs from their manifests",
        ),
        Binding(
            "i",
            "app.connection_details",
            "Details",
            show=False,
            tooltip="what the S3 store checks; the SFTP link's RTT and ceiling",
        ),
        Binding(
            "w",
            "watch",
            "Watch folder…",
            show=False,
            tooltip="ship new files of this folder at every poll",
        ),
        Binding(
            "W",
            "watches",
            "Watches",
            key_display="W",
            show=False,
            tooltip="the watches running, their polls and counts",
        ),
        Binding(
            "ctrl+d",
            "disconnect",
            "Profiles",
            key_display="^d",
            show=False,
            tooltip="disconnect and go back to the profiles",
        ),
        *TRANSFER_BINDINGS,
    ]

    class Landed(Message):
        """An object landed (or was found identical) at ``bucket/key``."""

        def __init__(self, bucket: str, key: str) -> None:
            super().__init__()
            self.bucket = bucket
            self.key = key

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._landed_folders: set[tuple[str, str]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        target = self.session.target
        destination = f"{target.bucket}/{target.prefix}" if target.bucket else ""
        yield TitleHeader()
        with Horizontal(id="browse"):
            yield RemoteTree(self.session.list_dir, target.start_folder, id="remote")
            yield BucketPicker(
                self.session.list_buckets,
                self.session.list_prefix,
                destination=destination,
                id="bucket-picker",
            )
        yield TransferPanel(id="main-transfers")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The transfer keys act on the list beside the files: hidden (and off) while the
        terminal is too narrow to show it, so the footer keeps its room for the keys that
        work here (80 columns: ? Help, c, C, t, ^d, ^q)."""
        if action in TRANSFER_ACTIONS:
            return self.wide
        return True

    def on_resize(self, event: events.Resize) -> None:
        self.query_one(Footer).compact = event.size.width < ROOMY
        self.refresh_bindings()

    def on_mount(self) -> None:
        session = self.session
        self.query_one(TransferPanel).attach(
            session.bus,
            session.sampler,
            session.queue.transfers,
            session.span,
            note=session.memory_note,
        )
        self.query_one(RemoteTree).table.focus()

        def on_event(event: EngineEvent) -> None:
            if isinstance(event, TransferFinished) and event.result.status in LANDED:
                self.post_message(self.Landed(event.result.bucket, event.result.key))

        self._unsubscribe = session.bus.subscribe(on_event)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    # the destination: what is there already --------------------------------------------------
    @on(Landed)
    def _landed(self, message: Landed) -> None:
        """Refresh the bucket tree and the marks shortly after objects land (batched)."""
        folder = message.key.rsplit("/", 1)[0] + "/" if "/" in message.key else ""
        if not self._landed_folders:
            self.set_timer(LANDED_REFRESH_SECONDS, self._refresh_landed)
        self._landed_folders.add((message.bucket, folder))

    def _refresh_landed(self) -> None:
        picker = self.query_one(BucketPicker)
        for bucket, folder in self._landed_folders:
            picker.refresh_prefix(bucket, folder)
        self._landed_folders.clear()
        self._update_marks()

    @on(RemoteTree.FolderShown)
    @on(BucketPicker.DestinationChanged)
    def _destination_or_folder_changed(self) -> None:
        self._update_marks()

    @work(exclusive=True, group="dest-marks", exit_on_error=False)
    async def _update_marks(self) -> None:
        """Mark the SFTP entries that already exist under the destination prefix."""
        await asyncio.sleep(MARKS_DELAY_SECONDS)  # typing a destination: wait for a pause
        tree = self.query_one(RemoteTree)
        path = tree.path
        try:
            dest = self.query_one(BucketPicker).location()
        except UsageError:
            dest = None
        if dest is None or not dest.is_prefix:
            tree.set_existing(path, {})
            return
        try:
            entries = await self.session.list_destination(dest.bucket, dest.key)
        except TransferError:
            tree.set_existing(path, {})  # a missing bucket is reported when copying
            return
        tree.set_existing(path, {entry.name: entry.size for entry in entries})

    @property
    def wide(self) -> bool:
        return self.has_class("-wide")

    # errors from the widgets ----------------------------------------------------------------
    @on(RemoteTree.ListingFailed)
    @on(BucketPicker.ListingFailed)
    def _listing_failed(self, event: RemoteTree.ListingFailed | BucketPicker.ListingFailed) -> None:
        self.post_message(ErrorRaised(event.error))

    # actions --------------------------------------------------------------------------------
    def action_copy(self, always_plan: bool = False) -> None:
        """Copy the selection (or the file under the cursor) to the destination; a copy that
        would overwrite, or a large one, shows its plan first."""
        tree = self.query_one(RemoteTree)
        paths = list(tree.selected)
        if not paths:
            entry = tree.cursor_entry()
            if entry is None:
                self.notify("Select files or folders first (space).", severity="warning")
                return
            paths = [entry.path]
        try:
            dest = self.query_one(BucketPicker).location()
        except UsageError as exc:
            self.post_message(ErrorRaised(exc))
            return
        if dest is None:
            self.notify("Choose a destination bucket on the S3 side.", severity="warning")
            self.query_one(BucketPicker).s3_tree.focus()
            return
        self._queue(paths, dest, always_plan)

    @work(group="queue", exit_on_error=False)
    async def _queue(self, paths: list[str], dest: S3Location, always_plan: bool = False) -> None:
        session = self.session
        self.notify(f"Planning the copy to {dest}…", timeout=2)
        policy = session.default_conflict
        try:
            selection = await session.select(paths, dest)
            plan = await session.preview(selection, policy)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc))
            return
        jobs = selection.jobs
        large = sum(j.size for j in jobs) >= LARGE_COPY_BYTES or len(jobs) > LARGE_COPY_FILES
        if always_plan or found_at_keys(plan) or large:

            async def replan(chosen: ConflictPolicy) -> CopyPlan:
                return await session.preview(selection, chosen)

            dialog = PlanScreen(plan, dest, policy, replan)
            choice = await self.app.push_screen_wait(dialog)
            if choice is None:
                self.notify("Copy cancelled; nothing was queued.", severity="warning")
                return
            policy, plan = choice
        transfers = session.submit(plan)
        self.query_one(RemoteTree).clear_selection()
        totals = plan.tally
        noun = "file" if len(transfers) == 1 else "files"
        text = f"Queued {len(transfers)} {noun} ({format_size(totals.bytes_to_send)}) → {dest}"
        if skipped := totals.files[Action.SKIP]:
            text += f"; {skipped} skipped ({POLICY_LABELS[policy].lower()})"
        if invalid := totals.files[Action.INVALID]:
            text += f"; {invalid} cannot be copied (they fail in the queue: enter for why)"
        self.notify(text)

    def action_transfers(self) -> None:
        if self.wide:
            self.query_one(TransferPanel).transfer_list.focus()
        else:
            self.app.push_screen(TransfersScreen(self.session))

    def action_focus_s3(self) -> None:
        self.query_one(BucketPicker).s3_tree.focus()

    def action_focus_sftp(self) -> None:
        self.query_one(RemoteTree).table.focus()

    def action_reload(self) -> None:
        tree = self.query_one(RemoteTree)
        tree.load_folder(tree.path)
        self.query_one(BucketPicker).reload()

    def action_history(self) -> None:
        """Past runs from their manifests: ask for a manifest file or a folder of them."""
        default = str(paths.state_dir() / "manifests")

        def chosen(text: str | None) -> None:
            if not text:
                return
            where = Path(text).expanduser()
            if not where.exists():
                self.notify(f"No manifest at {where}", severity="warning")
                return
            self.app.push_screen(HistoryScreen(where))

        prompt = PromptScreen("History: a manifest (.jsonl) or a folder of them", value=default)
        self.app.push_screen(prompt, chosen)

    def action_watch(self) -> None:
        """Watch the folder under the cursor (else the folder shown): new and changed files
        are shipped at each poll, like ``sftp-s3-tui watch``."""
        tree = self.query_one(RemoteTree)
        entry = tree.cursor_entry()
        folder = entry.path if entry is not None and entry.is_dir else tree.path
        try:
            dest = self.query_one(BucketPicker).location()
        except UsageError:
            dest = None
        if dest is not None and not dest.is_prefix:
            dest = None
        source = f"{self.session.target.sftp.display}{folder}"
        self._start_watch(WatchDialog(folder, source, dest))

    @on(BucketPicker.DeliverRequested)
    def _deliver_requested(self, message: BucketPicker.DeliverRequested) -> None:
        """``d`` on the S3 side: deliver into the SFTP folder shown (the other way)."""
        message.stop()
        target = self.session.target
        folder = self.query_one(RemoteTree).path
        try:
            request = folder_delivery_request(
                message.source,
                folder,
                target.sftp,
                target.s3,
                target.options,
                record_dir=self.session.deliveries.record_dir,
                verify_readback=target.delivery.verify_readback,
                verify_server_hash=target.delivery.verify_server_hash,
            )
        except TransferError as exc:
            self.post_message(ErrorRaised(exc))
            return
        self._deliver(request, message.always_plan)

    @work(group="deliver", exit_on_error=False)
    async def _deliver(self, request: DeliveryRequest, always_plan: bool = False) -> None:
        """Plan (list the objects and what the folder holds), show the plan when asked, when
        files are there already or when it is large, then deliver."""
        where = request.target.display
        self.notify(f"Listing {request.source} to deliver into {where}…", timeout=2)
        deliveries = self.session.deliveries
        try:
            plan = await deliveries.plan(request)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc))
            return
        if not plan.jobs and not plan.refused:
            self.notify(f"Nothing to deliver under {request.source}.", severity="warning")
            return
        there = [job for job in plan.jobs if job.remote_path in plan.existing]
        if always_plan or there or plan.refused or len(plan.jobs) > LARGE_COPY_FILES:
            dialog = ConfirmScreen(
                f"Deliver {len(plan.jobs)} object(s) to {where}?", delivery_plan_text(plan)
            )
            if not await self.app.push_screen_wait(dialog):
                self.notify("Delivery cancelled; nothing was sent.", severity="warning")
                return
        started = await deliveries.start(request, plan)
        if not started:
            return
        noun = "object" if len(started) == 1 else "objects"
        self.notify(f"Delivering {len(started)} {noun} → {where} (t shows them)")
        tasks = [d.task for d in started if d.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        tree = self.query_one(RemoteTree)
        if tree.path.rstrip("/") == request.target.path.rstrip("/"):
            tree.load_folder(tree.path)  # the delivered files show

    @work(group="watch", exit_on_error=False)
    async def _start_watch(self, dialog: WatchDialog) -> None:
        spec = await self.app.push_screen_wait(dialog)
        if spec is None:
            return
        try:
            started = await self.session.start_watch(spec)
        except TransferError as exc:
            self.post_message(ErrorRaised(exc))
            return
        status = started.status
        self.notify(f"Watching {status.source} → {status.dest} (W shows the watches)")

    def action_watches(self) -> None:
        watches = self.session.watches
        self.app.push_screen(WatchesScreen(watches.statuses, watches.stop))

    def action_disconnect(self) -> None:
        self.post_message(DisconnectRequested())
