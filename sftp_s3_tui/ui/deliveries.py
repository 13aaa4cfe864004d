"""S3 → SFTP deliveries started from the TUI (the bucket pane's ``d``): each object a row in
the transfer list, beside the queue's uploads, from the same events (chunk map, rates,
totals), and the same keys: pause, cancel, retry. The engine does the work
(``deliver_object``: temporary name, checks, rename, the record under ``record_dir``);
this keeps the rows, runs ``files_in_flight`` objects of a delivery at once on the
session's SSH connections, S3 client and buffer pool, and cancels what is unfinished when
the session closes (each temporary file is removed before the connection goes).

A pause of a running delivery stops it at once but keeps its temporary file and record
(``DeliveryControl.keep_partial``); resuming runs ``deliver_object`` again, which finds the
record and continues from the read-back, verified prefix. A paused delivery given up
(cancel, quit, disconnect) has its kept file removed (``discard_kept``). Nothing here
imports Textual."""

from __future__ import annotations

import asyncio
import logging
import posixpath
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.aio import run_to_end, wait_all
from ..engine.errors import TransferError
from ..engine.events import (
    EngineEvent,
    EventBus,
    TransferFinished,
    TransferResult,
    TransferState,
    TransferStateChanged,
)
from ..engine.plan.delivery import DeliveryJob, RefusedKey, plan_delivery
from ..engine.transfer.delivery import DeliveryControl, deliver_object, discard_kept
from ..engine.transfer.delivery_result import DeliveryEvents, DeliveryResult
from ..engine.transfer.queue import TransferQueue
from ..requests.delivery import DeliveryRequest

log = logging.getLogger(__name__)

#: One attempt's body (an attempt, or giving up a paused one), after the task before it.
Step = Callable[["Delivery", "asyncio.Task[None] | None"], Coroutine[Any, Any, None]]

#: What r takes: a delivery that ended without its file in place.
RETRYABLE = frozenset({TransferState.FAILED, TransferState.CANCELLED})


@dataclass
class Delivery:
    """One object on its way to the SFTP side, and what became of it."""

    transfer_id: int
    job: DeliveryJob
    request: DeliveryRequest
    #: Its delivery's files-in-flight limit, shared with the objects started with it (a
    #: retry or a resume waits for a slot like the others).
    slots: asyncio.Semaphore = field(default_factory=asyncio.Semaphore)
    #: The current attempt (a retry or a resume is a new one).
    task: asyncio.Task[None] | None = None
    state: TransferState = TransferState.QUEUED
    #: What became of it, as the rows' event carried it (None until it ends).
    result: TransferResult | None = None
    #: The current attempt's pause switch (see DeliveryControl).
    control: DeliveryControl = field(default_factory=DeliveryControl)
    #: A paused attempt left its temporary file with its record: resume continues it,
    #: giving up removes it.
    kept: bool = False
    #: Cancelled while paused: its kept file is being removed (the row ends after).
    dropping: bool = False

    @property
    def label(self) -> str:
        """``s3://bucket/key → sftp://host/path`` (what quitting would abort)."""
        endpoint = self.request.target.endpoint
        return f"s3://{self.job.bucket}/{self.job.key} → {endpoint.display}{self.job.remote_path}"


@dataclass
class DeliveryPlan:
    """What a delivery would do, before it starts: each object's path, the paths where a
    file is already (skip-existing keeps it), and the keys refused by name."""

    request: DeliveryRequest
    jobs: list[DeliveryJob] = field(default_factory=list)
    refused: list[RefusedKey] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)


class Deliveries:
    """The session's deliveries, by transfer id (ids taken from the queue: one list)."""

    def __init__(self, queue: TransferQueue, bus: EventBus, record_dir: Path | None = None) -> None:
        self.queue = queue
        self.bus = bus
        #: Where the requests record each file in progress (None: the CLI's folder).
        self.record_dir = record_dir
        #: The rows' events, told by the engine (ids from the queue's: one list).
        self.events = DeliveryEvents(bus, queue.new_transfer_id)
        self.items: dict[int, Delivery] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        bus.subscribe(self._follow)

    def _follow(self, event: EngineEvent) -> None:
        """Each delivery's state and result as the engine tells them (before the app's
        handlers hear the same event: subscribed first)."""
        if isinstance(event, TransferStateChanged | TransferFinished):
            delivery = self.items.get(event.transfer_id)
            if delivery is None:
                return
            if isinstance(event, TransferFinished):
                delivery.result = event.result
                delivery.state = event.result.status
            else:
                delivery.state = event.state

    def unfinished(self) -> list[Delivery]:
        return [d for d in self.items.values() if not d.state.finished]

    def count(self, state: TransferState) -> int:
        return sum(d.state is state for d in self.items.values())

    async def plan(self, request: DeliveryRequest) -> DeliveryPlan:
        """The objects ``request.source`` names and their paths, and which paths hold a
        file already (each destination folder listed once; a missing one holds nothing)."""
        plan = DeliveryPlan(request)
        async for item in plan_delivery(self.queue.s3, request.source, request.target):
            if isinstance(item, RefusedKey):
                plan.refused.append(item)
            else:
                plan.jobs.append(item)
        endpoint = request.target.endpoint
        for folder in sorted({posixpath.dirname(job.remote_path) for job in plan.jobs}):
            try:
                entries = await self.queue.sftp.listdir(endpoint, folder)
            except TransferError:
                continue  # not there yet: everything in it is new
            plan.existing.update(posixpath.join(folder, entry.name) for entry in entries)
        return plan

    async def start(
        self, request: DeliveryRequest, plan: DeliveryPlan | None = None
    ) -> list[Delivery]:
        """Show each planned object as a queued row, then deliver them in the background;
        a key that cannot be a path fails by name."""
        if plan is None:
            plan = await self.plan(request)
        for refused in plan.refused:
            message = str(refused.error)
            result = DeliveryResult(refused.bucket, refused.key, "", "failed", message=message)
            self.events.refused(result)
        slots = asyncio.Semaphore(max(1, request.options.files_in_flight))
        deliveries: list[Delivery] = []
        for job in plan.jobs:
            transfer_id = self.events.queued(job)
            delivery = Delivery(transfer_id, job, request, slots)
            self.items[transfer_id] = delivery
            deliveries.append(delivery)
        for delivery in deliveries:
            self._launch(delivery, self._attempt)
        return deliveries

    def _launch(self, delivery: Delivery, step: Step) -> None:
        """Run ``step`` as ``delivery``'s current task, after the one before it (a pause
        still stopping lets go of its file and record first); kept until it ends."""
        previous = delivery.task if delivery.task is not None and not delivery.task.done() else None
        task = asyncio.create_task(step(delivery, previous))
        delivery.task = task
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug: logged, not lost
            log.error("a delivery failed", exc_info=task.exception())

    async def _attempt(self, delivery: Delivery, previous: asyncio.Task[None] | None) -> None:
        """One attempt at ``delivery``: after the attempt before it, in a slot, the engine's
        ``deliver_object`` (which resumes what a paused attempt kept)."""
        control = delivery.control
        request = delivery.request
        started = time.monotonic()
        begun = False  # from deliver_object on, the engine tells the row's state and end
        try:
            if previous is not None:
                await asyncio.wait([previous])
            async with delivery.slots:
                delivery.state = TransferState.RUNNING
                started = time.monotonic()
                begun = True
                result = await deliver_object(
                    delivery.job,
                    s3=self.queue.s3,
                    sftp=self.queue.sftp,
                    target=request.target,
                    buffers=self.queue.buffers,
                    options=request.options,
                    bus=self.bus,
                    transfer_id=delivery.transfer_id,
                    control=control,
                )
        except asyncio.CancelledError:
            if previous is not None:  # the attempt before lets go of its file and record
                await asyncio.wait([previous])
            delivery.kept = delivery.kept or control.kept
            if control.keep_partial:  # paused: the row says so already; resume goes on
                return
            # the engine told the end of an attempt it ran, unless a kept file is left
            told = begun and not control.kept
            await self._cancelled(delivery, started, told=told)
            return
        if result.status in ("done", "skipped"):
            delivery.kept = False  # the engine forgot the record: nothing is left

    async def _cancelled(self, delivery: Delivery, started: float, *, told: bool = False) -> None:
        """The row says cancelled once nothing is left: a file a pause kept is removed with
        its record (left with the record when it cannot be: the next delivery of the same
        file removes it, never an orphan). ``told``: the engine said so already."""
        job, request = delivery.job, delivery.request
        message = ""
        if delivery.kept:
            gone = await run_to_end(
                discard_kept(
                    job, sftp=self.queue.sftp, target=request.target, options=request.options
                )
            )
            if gone:
                delivery.kept = False
            else:
                message = "its temporary file could not be removed; the next delivery removes it"
        cancelled = DeliveryResult(
            job.bucket, job.key, job.remote_path, "cancelled", message=message
        )
        delivery.dropping = False
        if not told:
            self._finished(delivery, cancelled, time.monotonic() - started)

    async def _drop(self, delivery: Delivery, previous: asyncio.Task[None] | None) -> None:
        """A paused delivery given up: once its attempt has stopped, cancelled (above)."""
        if previous is not None:
            await asyncio.wait([previous])
        await self._cancelled(delivery, time.monotonic())

    # the keys ----------------------------------------------------------------------------
    def pause(self, transfer_id: int) -> bool:
        """Keep a queued delivery from starting, or stop a running one at once keeping its
        temporary file and record (resume goes on from its verified prefix); False: not a
        queued or running delivery."""
        delivery = self.items.get(transfer_id)
        if delivery is None or delivery.state not in (TransferState.QUEUED, TransferState.RUNNING):
            return False
        if delivery.task is not None and delivery.task.cancelling():
            return False  # being cancelled already
        delivery.control.keep_partial = True
        self._state(delivery, TransferState.PAUSED)
        if delivery.task is not None and not delivery.task.done():
            delivery.task.cancel()
        return True

    def resume(self, transfer_id: int) -> bool:
        """A paused delivery queued again (its attempt starts once the paused one has let
        go of its file); False: not a paused delivery."""
        delivery = self.items.get(transfer_id)
        if delivery is None or delivery.state is not TransferState.PAUSED or delivery.dropping:
            return False
        delivery.control = DeliveryControl()
        self._state(delivery, TransferState.QUEUED)
        self._launch(delivery, self._attempt)
        return True

    def retry(self, transfer_id: int) -> bool:
        """A failed or cancelled delivery queued again, on the same row: a fresh attempt
        (its temporary file went with the last one); False: nothing to retry."""
        delivery = self.items.get(transfer_id)
        if delivery is None or delivery.state not in RETRYABLE:
            return False
        delivery.result = None
        delivery.control = DeliveryControl()
        self._state(delivery, TransferState.QUEUED)
        self._launch(delivery, self._attempt)
        return True

    def cancel(self, transfer_id: int) -> bool:
        """Cancel one delivery (its temporary file is removed, a paused one's kept file
        too); False: not a delivery."""
        delivery = self.items.get(transfer_id)
        if delivery is None:
            return False
        if delivery.state is TransferState.PAUSED:
            if not delivery.dropping:
                delivery.dropping = True  # the row says cancelled once the file is gone
                self._launch(delivery, self._drop)
        elif (
            delivery.task is not None
            and not delivery.task.done()
            and not delivery.task.cancelling()  # once: its cleanup is not cut short
        ):
            delivery.control.keep_partial = False
            delivery.task.cancel()
        return True

    def pause_all(self) -> None:
        for delivery in list(self.items.values()):
            self.pause(delivery.transfer_id)

    def resume_all(self) -> None:
        for delivery in list(self.items.values()):
            self.resume(delivery.transfer_id)

    def cancel_all(self) -> None:
        for delivery in self.unfinished():
            self.cancel(delivery.transfer_id)

    def paused(self) -> list[Delivery]:
        return [d for d in self.items.values() if d.state is TransferState.PAUSED]

    def running(self) -> bool:
        return any(d.state is TransferState.RUNNING for d in self.items.values())

    async def close(self) -> None:
        """Cancel what is unfinished and wait until each temporary file is removed (a
        paused delivery's kept one too: nothing is left behind)."""
        self.cancel_all()
        await wait_all(self._tasks, return_exceptions=True)

    # events: the rows (the engine tells an attempt's; these are the front's own) --------
    def _state(self, delivery: Delivery, state: TransferState) -> None:
        """A state only the front knows (paused, queued again)."""
        delivery.state = state
        self.bus.emit(TransferStateChanged(transfer_id=delivery.transfer_id, state=state))

    def _finished(self, delivery: Delivery, result: DeliveryResult, seconds: float) -> None:
        """An end the engine did not tell: a delivery cancelled before its attempt began,
        or given up while paused."""
        self.events.progress(delivery.transfer_id).finished(result.transfer_result(seconds))
