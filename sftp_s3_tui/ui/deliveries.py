"""S3 → SFTP deliveries started from the TUI (the bucket pane's ``d``): each object a row in
the transfer list, beside the queue's uploads, from the same events (chunk map, rates,
totals). The engine does the work (``deliver_object``: temporary name, checks, rename);
this keeps the rows, runs ``files_in_flight`` objects at once on the session's SSH
connections, S3 client and buffer pool, and cancels what is unfinished when the session
closes (each object's temporary file is removed before the connection goes). Nothing here
imports Textual."""

from __future__ import annotations

import asyncio
import logging
import posixpath
import time
from dataclasses import dataclass, field

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
from ..engine.transfer.delivery import DeliveryEvents, DeliveryResult, deliver_object
from ..engine.transfer.queue import TransferQueue
from ..requests import DeliveryRequest

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One object on its way to the SFTP side, and what became of it."""

    transfer_id: int
    job: DeliveryJob
    request: DeliveryRequest
    task: asyncio.Task[None] | None = None
    state: TransferState = TransferState.QUEUED
    #: What became of it, as the rows' event carried it (None until it ends).
    result: TransferResult | None = None

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

    def __init__(self, queue: TransferQueue, bus: EventBus) -> None:
        self.queue = queue
        self.bus = bus
        #: The rows' events, told by the engine (ids from the queue's: one list).
        self.events = DeliveryEvents(bus, queue.new_transfer_id)
        self.items: dict[int, Delivery] = {}
        self._runs: set[asyncio.Task[None]] = set()
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
        deliveries: list[Delivery] = []
        for job in plan.jobs:
            transfer_id = self.events.queued(job)
            delivery = Delivery(transfer_id, job, request)
            self.items[transfer_id] = delivery
            deliveries.append(delivery)
        if deliveries:
            run = asyncio.create_task(self._run(request, deliveries))
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)
        return deliveries

    async def _run(self, request: DeliveryRequest, deliveries: list[Delivery]) -> None:
        slots = asyncio.Semaphore(max(1, request.options.files_in_flight))

        async def one(delivery: Delivery) -> None:
            started = time.monotonic()
            begun = False  # from deliver_object on, the engine tells the row's end
            try:
                async with slots:
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
                    )
            except asyncio.CancelledError:  # the temporary file is already removed
                job = delivery.job
                cancelled = DeliveryResult(job.bucket, job.key, job.remote_path, "cancelled")
                self._finished(delivery, cancelled, time.monotonic() - started, told=begun)
                return
            self._finished(delivery, result, time.monotonic() - started, told=True)

        for delivery in deliveries:
            delivery.task = asyncio.create_task(one(delivery))
        outcomes = await asyncio.gather(
            *(d.task for d in deliveries if d.task is not None), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, Exception):  # a bug: said in the log, not lost
                log.error("a delivery failed", exc_info=outcome)

    def cancel(self, transfer_id: int) -> bool:
        """Cancel one delivery (its temporary file is removed); False: not a delivery."""
        delivery = self.items.get(transfer_id)
        if delivery is None:
            return False
        if delivery.task is not None and not delivery.task.done():
            delivery.task.cancel()
        return True

    async def close(self) -> None:
        """Cancel what is unfinished and wait until each temporary file is removed."""
        tasks = [d.task for d in self.items.values() if d.task is not None and not d.task.done()]
        for task in tasks:
            task.cancel()
        for run in list(self._runs):
            run.cancel()
        await asyncio.gather(*tasks, *self._runs, return_exceptions=True)

    def _finished(
        self, delivery: Delivery, result: DeliveryResult, seconds: float, *, told: bool
    ) -> None:
        """The row's end, told on the bus unless the engine told it already (a delivery
        cancelled while it waited for its slot never reached the engine)."""
        if not told:
            self.events.progress(delivery.transfer_id).finished(result.transfer_result(seconds))
