"""What every transfer of a queue shares: connections, the buffer pool, slots and the journal."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..aio import LoopShare
from ..config import TransferOptions
from ..errors import TransferError
from ..events import EventBus
from ..plan.conflicts import DestinationIndex
from ..resume.journal import EndpointJournal
from ..s3.operations import S3Client, check_bucket
from ..sftp.pool import SftpPool
from .buffers import BufferPool


@dataclass
class EngineContext:
    """What every transfer of a queue shares; the slots enforce the options' global limits."""

    sftp: SftpPool
    s3: S3Client
    buffers: BufferPool
    options: TransferOptions
    bus: EventBus
    sftp_slots: asyncio.Semaphore
    s3_slots: asyncio.Semaphore
    journal: EndpointJournal | None = None  # the journal's records of this queue's store
    buckets_checked: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    storage_class: str | None = None
    server_side_encryption: str | None = None
    endpoint_name: str = ""  # the S3 endpoint as people know it (its URL, or "aws (region)")
    #: Spreads the transfers' CPU-heavy steps (a request's start) over the loop's turns.
    loop_share: LoopShare = field(default_factory=lambda: LoopShare(None))
    #: What is at the destination keys (a preloaded listing, else HEADs): a conflict policy
    #: decides from it before a byte is read.
    destination: DestinationIndex = field(init=False)

    def __post_init__(self) -> None:
        self.destination = DestinationIndex(self.s3)

    def object_args(self, key: str) -> dict[str, Any]:
        """Storage class, encryption, content type and tags (the options', else the
        endpoint's), for every request that creates an object; metadata: :meth:`metadata`."""
        extra: dict[str, Any] = self.options.object_options.create_args(key)
        extra.pop("Metadata", None)
        if self.storage_class:
            extra.setdefault("StorageClass", self.storage_class)
        if self.server_side_encryption:
            extra.setdefault("ServerSideEncryption", self.server_side_encryption)
        return extra

    def metadata(self, engine: dict[str, str]) -> dict[str, str]:
        """The user's metadata with the engine's own (sha256, source mtime) over it."""
        return {**dict(self.options.object_options.metadata), **engine}

    async def ensure_bucket(self, bucket: str) -> None:
        task = self.buckets_checked.get(bucket)
        if task is None:
            task = asyncio.ensure_future(check_bucket(self.s3, bucket))
            self.buckets_checked[bucket] = task
        try:
            await asyncio.shield(task)
        except TransferError:
            self.buckets_checked.pop(bucket, None)
            raise
