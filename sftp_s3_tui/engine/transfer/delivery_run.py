"""Delivering many objects in one run (S3 → SFTP): the plan's jobs, ``files_in_flight``
at once under one memory budget, each by :func:`.delivery.deliver_object`; a far host's
extra connections logged in meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from ..addresses import S3Location
from ..config import S3Endpoint
from ..events import EventBus
from ..plan.delivery import DeliveryJob, DeliveryTarget, RefusedKey, plan_delivery
from ..plan.filters import FileFilter
from ..s3.operations import S3Client, open_client
from ..sftp.folder_names import FolderNames
from ..sftp.pool import SftpPool
from .buffers import BufferPool
from .delivery import deliver_object
from .delivery_options import DeliveryOptions
from .delivery_result import DeliveryEvents, DeliveryResult
from .parts import first_error


async def deliver(
    source: S3Location,
    target: DeliveryTarget,
    s3_endpoint: S3Endpoint,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    *,
    sftp: SftpPool | None = None,
    on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None = None,
    on_excluded: Callable[[str, str], None] | None = None,
    bus: EventBus | None = None,
    buffers: BufferPool | None = None,
) -> None:
    """Deliver every object of ``source`` into ``target``, ``files_in_flight`` at once,
    under one memory budget; each result is handed to ``on_result`` as it is known
    (``on_delivered``: see :func:`deliver_object`; ``on_excluded``: ``(key, why)`` of each
    object the filter leaves out). With a ``bus``, every object is told there as a
    transfer (:class:`DeliveryEvents`); ``buffers``: the pool to take parts from (the
    caller's, to watch its fill), else one of ``options.memory_budget``."""
    buffers = buffers if buffers is not None else BufferPool(options.memory_budget)
    events = DeliveryEvents(bus) if bus is not None else None
    async with sftp or SftpPool() as pool:
        warming = asyncio.ensure_future(_warm_lanes(pool, target))
        try:
            async with open_client(s3_endpoint) as s3:
                await _deliver_all(
                    source,
                    target,
                    options,
                    on_result,
                    s3,
                    pool,
                    buffers,
                    on_delivered,
                    on_excluded,
                    events,
                )
        finally:
            warming.cancel()
            await asyncio.gather(warming, return_exceptions=True)


async def _warm_lanes(pool: SftpPool, target: DeliveryTarget) -> None:
    """Log in the connections a far host's big objects are written over (a login is about
    ten round trips) while the S3 client is made and the first objects are described.
    Best effort, in the background: a login that fails here is tried again when needed."""
    endpoint = target.endpoint
    if endpoint.connections < 2 or not await pool.settled_far(endpoint):
        return

    async def one(slot: int) -> None:
        try:
            lease = await pool.lease(endpoint, slot=slot)
        except Exception:  # a warm-up never fails the run
            return
        pool.release(endpoint, lease)

    await asyncio.gather(*(one(slot) for slot in range(1, endpoint.connections)))


async def _deliver_all(
    source: S3Location,
    target: DeliveryTarget,
    options: DeliveryOptions,
    on_result: Callable[[DeliveryResult], None],
    s3: S3Client,
    pool: SftpPool,
    buffers: BufferPool,
    on_delivered: Callable[[DeliveryResult], Awaitable[None]] | None,
    on_excluded: Callable[[str, str], None] | None,
    events: DeliveryEvents | None = None,
) -> None:
    """The body of :func:`deliver`: ``files_in_flight`` objects at once."""
    slots = asyncio.Semaphore(max(1, options.files_in_flight))
    names = FolderNames()  # each destination folder listed once, not a stat per object

    async def one(job: DeliveryJob, transfer_id: int) -> None:
        try:
            on_result(
                await deliver_object(
                    job,
                    s3=s3,
                    sftp=pool,
                    target=target,
                    buffers=buffers,
                    options=options,
                    on_delivered=on_delivered,
                    bus=events.bus if events is not None else None,
                    transfer_id=transfer_id,
                    names=names,
                )
            )
        finally:
            slots.release()

    def refused(result: DeliveryResult) -> None:
        if events is not None:
            events.refused(result)
        on_result(result)

    try:
        async with asyncio.TaskGroup() as group:
            async for job in planned(
                s3,
                source,
                target,
                refused,
                file_filter=options.file_filter,
                on_excluded=on_excluded,
                min_age_seconds=options.min_age_seconds,
            ):
                transfer_id = events.queued(job) if events is not None else 0
                await slots.acquire()
                group.create_task(one(job, transfer_id))
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    finally:
        names.close()


async def planned(
    s3: S3Client,
    source: S3Location,
    target: DeliveryTarget,
    on_refused: Callable[[DeliveryResult], None],
    *,
    file_filter: FileFilter | None = None,
    on_excluded: Callable[[str, str], None] | None = None,
    min_age_seconds: float = 0.0,
) -> AsyncIterator[DeliveryJob]:
    """The plan's jobs; a refused key becomes a failed result naming it."""
    async for item in plan_delivery(
        s3,
        source,
        target,
        file_filter=file_filter,
        on_excluded=on_excluded,
        min_age_seconds=min_age_seconds,
    ):
        if isinstance(item, RefusedKey):
            on_refused(DeliveryResult(item.bucket, item.key, "", "failed", message=str(item.error)))
        else:
            yield item
