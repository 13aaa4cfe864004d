"""The one sampler: engine events in, immutable snapshots out, for the screen and Prometheus.

The event handler only bumps counters (O(1), no allocation beyond an occasional list append);
one asyncio task turns the counters into a :class:`Snapshot` every ``interval`` seconds, adding
process figures from psutil and the buffer pool's fill. Widgets and the Prometheus exporter both
read snapshots, so the screen and Grafana can never disagree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from types import TracebackType
from typing import Protocol

import psutil

from sftp_s3_tui.engine.events import (
    Direction,
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    SftpLinkMeasured,
    TransferFinished,
    TransferQueued,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from sftp_s3_tui.engine.sftp.server_profile import ServerProfile

__all__ = [
    "PART_STATES",
    "BufferPoolStats",
    "DirectionStats",
    "Sampler",
    "SftpLinkStats",
    "Snapshot",
    "SnapshotCallback",
    "TransferStats",
]

log = logging.getLogger(__name__)

#: Part states in code order: ``TransferStats.part_codes[i]`` indexes this tuple.
PART_STATES: tuple[PartState, ...] = (
    PartState.WAITING,
    PartState.READING,
    PartState.UPLOADING,
    PartState.DONE,
    PartState.RETRIED,
    PartState.FAILED,
)
_PART_CODE: dict[PartState, int] = {state: code for code, state in enumerate(PART_STATES)}
_WAITING, _READING, _UPLOADING, _DONE, _RETRIED, _FAILED = range(len(PART_STATES))
# A part holds a buffer (is "in flight") while it is read, waits for or is in its upload, or
# waits to be tried again.
_IN_FLIGHT: tuple[int, ...] = (0, 1, 1, 0, 1, 0)

#: Cap on latency observations kept between two snapshots (a stalled sampler stays bounded).
MAX_OBSERVATIONS_PER_SNAPSHOT = 65_536
#: Cap on SFTP hosts whose link figures are kept (the oldest measured goes first).
MAX_LINK_HOSTS = 64


class BufferPoolStats(Protocol):
    """What the sampler reads from the engine's buffer pool."""

    @property
    def bytes_in_use(self) -> int: ...

    @property
    def budget(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TransferStats:
    """One transfer as of a snapshot; ``part_codes`` holds one byte per part (see PART_STATES)."""

    transfer_id: int
    source: str
    bucket: str
    key: str
    state: TransferState
    size: int
    bytes_done: int
    bytes_per_second: float
    part_size: int
    parts_total: int
    parts_done: int
    parts_in_flight: int
    parts_retried: int
    part_codes: bytes
    elapsed_seconds: float
    message: str = ""

    @property
    def part_states(self) -> tuple[PartState, ...]:
        """Each part's state, in part order, for the chunk map."""
        states = PART_STATES
        return tuple(states[code] for code in self.part_codes)

    @property
    def fraction_done(self) -> float:
        """Share of the bytes done, 0..1 (1 for an empty file that finished)."""
        if self.size > 0:
            return min(1.0, self.bytes_done / self.size)
        return 1.0 if self.state is TransferState.DONE else 0.0


@dataclass(frozen=True, slots=True)
class SftpLinkStats:
    """One SFTP host's latest link figures: one connection moves at most its window per
    round trip, so ``ceiling_bytes_per_second = window_bytes × connections ÷ rtt_seconds``
    (lowered to the host's ``--bwlimit``, if any)."""

    host: str
    rtt_seconds: float
    window_bytes: int
    connections: int
    ceiling_bytes_per_second: float
    #: What the server grants (read size, extensions), once known.
    server: ServerProfile | None = None


@dataclass(frozen=True, slots=True)
class DirectionStats:
    """One direction's share of a snapshot's totals (SFTP → S3 uploads, S3 → SFTP
    deliveries): what a dashboard splits throughput and files by."""

    direction: Direction
    bytes_transferred: int
    bytes_per_second: float
    parts_done: int
    files_done: int
    files_failed: int
    files_skipped: int
    files_cancelled: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every number the UI and Prometheus show, at one instant.

    Byte and part counts are totals since the sampler started. ``sftp_read_seconds`` and
    ``s3_upload_seconds`` hold the part latencies observed since the previous snapshot (each
    observation appears in exactly one snapshot); a delivery's parts (S3 → SFTP) go to
    ``s3_read_seconds`` and ``sftp_write_seconds`` instead. ``directions`` splits the byte,
    part and file totals by direction, for each direction seen so far. Process figures are
    None where the platform does not provide them; pool figures are None without a pool.
    """

    at: float
    wall_time: float
    elapsed_seconds: float
    bytes_transferred: int
    bytes_per_second: float
    throughput_history: tuple[float, ...]
    parts_done: int
    parts_in_flight: int
    parts_retried_sftp: int
    parts_retried_s3: int
    parts_failed: int
    files_queued: int
    files_running: int
    files_paused: int
    files_done: int
    files_failed: int
    files_skipped: int
    files_cancelled: int
    transfers: tuple[TransferStats, ...]
    rss_bytes: int | None
    disk_read_bytes: int | None
    disk_write_bytes: int | None
    cpu_seconds: float | None
    cpu_percent: float | None
    buffer_pool_bytes_in_use: int | None
    buffer_pool_budget_bytes: int | None
    sftp_read_seconds: tuple[float, ...]
    s3_upload_seconds: tuple[float, ...]
    #: Each SFTP host's latest measured link (RTT, connections, read ceiling), by host.
    sftp_links: tuple[SftpLinkStats, ...] = ()
    #: The totals by direction, for each direction a transfer of has been seen.
    directions: tuple[DirectionStats, ...] = ()
    #: Deliveries' part latencies since the previous snapshot: ranged GET, SFTP write.
    s3_read_seconds: tuple[float, ...] = ()
    sftp_write_seconds: tuple[float, ...] = ()

    def direction(self, direction: Direction) -> DirectionStats | None:
        """The totals of one direction (None: no transfer of it seen)."""
        return next((d for d in self.directions if d.direction is direction), None)

    @property
    def parts_retried(self) -> int:
        return self.parts_retried_sftp + self.parts_retried_s3

    @property
    def files_finished(self) -> int:
        return self.files_done + self.files_failed + self.files_skipped + self.files_cancelled

    def transfer(self, transfer_id: int) -> TransferStats | None:
        """The listed transfer with this id, if the snapshot lists it."""
        return next((t for t in self.transfers if t.transfer_id == transfer_id), None)


SnapshotCallback = Callable[[Snapshot], None]

_SFTP_TO_S3 = Direction.SFTP_TO_S3
_S3_TO_SFTP = Direction.S3_TO_SFTP


class _Queued:
    """A transfer that waits in the queue: just what its row shows (a queue of 100k files
    costs ~200 bytes a file here; full counters are made when it starts)."""

    __slots__ = ("bucket", "direction", "key", "size", "source")

    def __init__(
        self, source: str, bucket: str, key: str, size: int, direction: Direction = _SFTP_TO_S3
    ) -> None:
        self.source = source
        self.bucket = bucket
        self.key = key
        self.size = size
        self.direction = direction


class _Transfer:
    """Mutable per-transfer counters, owned by the sampler (active and recently finished
    transfers only)."""

    __slots__ = (
        "bucket",
        "bytes_done",
        "bytes_transferred",
        "direction",
        "finished_at",
        "in_flight",
        "key",
        "message",
        "outcome",
        "part_codes",
        "part_size",
        "parts_done",
        "parts_retried",
        "parts_total",
        "planned",
        "rate_samples",
        "size",
        "source",
        "started_at",
        "state",
        "transfer_id",
    )

    def __init__(self, transfer_id: int, source: str = "", bucket: str = "", key: str = "") -> None:
        self.transfer_id = transfer_id
        self.source = source
        self.bucket = bucket
        self.key = key
        self.state = TransferState.QUEUED
        self.outcome: TransferState | None = None
        self.size = 0
        self.part_size = 0
        self.parts_total = 0
        self.planned = False  # has had its TransferStarted
        self.part_codes = bytearray()
        self.bytes_done = 0  # includes parts resumed from an earlier run
        self.bytes_transferred = 0  # this run only: the basis of the transfer's bytes/s
        self.parts_done = 0
        self.parts_retried = 0
        self.in_flight = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.message = ""
        self.rate_samples: deque[tuple[float, int]] = deque(maxlen=64)
        self.direction = _SFTP_TO_S3

    @classmethod
    def from_queued(cls, transfer_id: int, queued: _Queued) -> _Transfer:
        transfer = cls(transfer_id, queued.source, queued.bucket, queued.key)
        transfer.size = queued.size
        transfer.direction = queued.direction
        return transfer


class _DirectionCounters:
    """One direction's running totals (what :class:`DirectionStats` is taken from)."""

    __slots__ = ("bytes_transferred", "outcomes", "parts_done", "rate_samples")

    def __init__(self) -> None:
        self.bytes_transferred = 0
        self.parts_done = 0
        self.outcomes: dict[TransferState, int] = dict.fromkeys(TransferState, 0)
        self.rate_samples: deque[tuple[float, int]] = deque(maxlen=1024)


def _window_rate(samples: deque[tuple[float, int]], now: float, value: int, window: float) -> float:
    """Append ``(now, value)`` and return the rate over the last ``window`` seconds."""
    samples.append((now, value))
    # Keep exactly one sample at or before the window's start, so the span covers the window.
    while len(samples) > 2 and samples[1][0] <= now - window:
        samples.popleft()
    then, old = samples[0]
    span = now - then
    return (value - old) / span if span > 0 else 0.0


class Sampler:
    """Aggregates engine events and produces a :class:`Snapshot` every ``interval`` seconds.

    ``Sampler(bus)`` subscribes at once, so nothing emitted before ``start()`` is lost.
    ``window`` is the bytes/s averaging window, ``history`` the sparkline length in samples;
    finished transfers stay in snapshots for ``finished_linger`` seconds (at most
    ``keep_finished`` of them) and at most ``max_listed_queued`` queued ones are listed.
    Times come from ``clock`` (``time.monotonic`` like the events; tests pass a fake one).
    """

    def __init__(
        self,
        bus: EventBus | None = None,
        interval: float = 1.0,
        buffers: BufferPoolStats | None = None,
        *,
        window: float = 5.0,
        history: int = 120,
        keep_finished: int = 20,
        finished_linger: float = 30.0,
        max_listed_queued: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0 or window <= 0:
            raise ValueError("interval and window must be positive")
        self.interval = interval
        self.window = window
        self.buffers = buffers
        self.keep_finished = keep_finished
        self.finished_linger = finished_linger
        self.max_listed_queued = max_listed_queued
        self._clock = clock
        self._subscribers: list[SnapshotCallback] = []
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe_bus: Callable[[], None] | None = None

        # Counters the event handler bumps.
        self._bytes_transferred = 0
        self._parts_done = 0
        self._parts_in_flight = 0
        self._parts_retried_sftp = 0
        self._parts_retried_s3 = 0
        self._parts_failed = 0
        self._outcomes: dict[TransferState, int] = dict.fromkeys(TransferState, 0)
        self._read_seconds: list[float] = []
        self._upload_seconds: list[float] = []
        self._s3_read_seconds: list[float] = []
        self._sftp_write_seconds: list[float] = []
        #: Totals by direction, for each direction seen (in the order first seen).
        self._directions: dict[Direction, _DirectionCounters] = {}
        # Insertion-ordered views by life stage, so a snapshot never scans every transfer.
        # Queued ones are small records; ``_transfers`` holds the counters of the active and
        # the recently finished ones (bounded by ``keep_finished``), never every transfer.
        self._queued: dict[int, _Queued] = {}
        self._transfers: dict[int, _Transfer] = {}
        self._active: dict[int, _Transfer] = {}
        self._finished: dict[int, _Transfer] = {}
        self._dispatch: dict[type, Callable[[EngineEvent], None]] = {
            PartChanged: self._on_part,  # type: ignore[dict-item]
            TransferQueued: self._on_queued,  # type: ignore[dict-item]
            TransferStarted: self._on_started,  # type: ignore[dict-item]
            TransferStateChanged: self._on_state,  # type: ignore[dict-item]
            TransferFinished: self._on_finished,  # type: ignore[dict-item]
            SftpLinkMeasured: self._on_link,  # type: ignore[dict-item]
        }
        self._links: dict[str, SftpLinkStats] = {}

        # Sampling state.
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=1024)
        self._history: deque[float] = deque(maxlen=history)
        self._process = psutil.Process()
        self._started_at = clock()
        self._io_base = self._io_counters()
        self._cpu_last: tuple[float, float] | None = None
        self._latest = self._take(record_history=False)
        if bus is not None:
            self.attach(bus)

    # -- wiring ---------------------------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        """Listen to ``bus`` (replacing a previous bus)."""
        self.detach()
        self._unsubscribe_bus = bus.subscribe(self.handle)

    def detach(self) -> None:
        """Stop listening to the bus."""
        if self._unsubscribe_bus is not None:
            self._unsubscribe_bus()
            self._unsubscribe_bus = None

    def subscribe(self, callback: SnapshotCallback) -> Callable[[], None]:
        """Call ``callback`` with every new snapshot; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def latest(self) -> Snapshot:
        """The most recent snapshot (a zero one before the first tick)."""
        return self._latest

    # -- the sampling task ----------------------------------------------------------------

    async def start(self) -> None:
        """Start the sampling task on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sftp-s3-sampler")

    async def stop(self) -> None:
        """Stop the sampling task; the bus subscription stays (call :meth:`detach`)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def __aenter__(self) -> Sampler:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += self.interval
            if next_at < loop.time():  # fell behind (a blocked loop): don't burst to catch up
                next_at = loop.time() + self.interval
            try:
                self.sample_now()
            except Exception:  # the sampler must outlive any bug in a figure or a subscriber
                log.exception("metrics sample failed")

    def sample_now(self) -> Snapshot:
        """Take a snapshot now, publish it to subscribers and return it."""
        snapshot = self._take(record_history=True)
        self._latest = snapshot
        for callback in tuple(self._subscribers):
            try:
                callback(snapshot)
            except Exception:
                log.exception("metrics subscriber %r failed", callback)
        return snapshot

    # -- event handling (hot path: O(1) per event) ----------------------------------------

    def handle(self, event: EngineEvent) -> None:
        """Fold one engine event into the counters (the EventBus handler)."""
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event)

    def _direction(self, direction: Direction) -> _DirectionCounters:
        counters = self._directions.get(direction)
        if counters is None:
            counters = self._directions[direction] = _DirectionCounters()
            counters.rate_samples.append((self._clock(), 0))  # its window opens now
        return counters

    def _on_part(self, event: PartChanged) -> None:
        code = _PART_CODE[event.state]
        prev = -1
        transfer = self._transfers.get(event.transfer_id)
        direction = transfer.direction if transfer is not None else _SFTP_TO_S3
        if transfer is not None and event.part_number > 0:
            index = event.part_number - 1
            codes = transfer.part_codes
            if index >= len(codes):
                codes.extend(bytes(index + 1 - len(codes)))
            prev = codes[index]
            codes[index] = code
            delta = _IN_FLIGHT[code] - _IN_FLIGHT[prev]
            if delta:
                transfer.in_flight += delta
                self._parts_in_flight += delta
        if code == _DONE:
            if prev != _DONE:  # a repeated DONE for the same part is not new bytes
                size = event.size
                self._bytes_transferred += size
                self._parts_done += 1
                counters = self._direction(direction)
                counters.bytes_transferred += size
                counters.parts_done += 1
                if transfer is not None:
                    transfer.bytes_done += size
                    transfer.bytes_transferred += size
                    transfer.parts_done += 1
            written = self._upload_seconds if direction is _SFTP_TO_S3 else self._sftp_write_seconds
            if event.seconds > 0 and len(written) < MAX_OBSERVATIONS_PER_SNAPSHOT:
                written.append(event.seconds)
        elif code == _UPLOADING:
            read = self._read_seconds if direction is _SFTP_TO_S3 else self._s3_read_seconds
            if event.seconds > 0 and len(read) < MAX_OBSERVATIONS_PER_SNAPSHOT:
                read.append(event.seconds)
        elif code == _RETRIED:
            side = event.side or ("sftp" if prev in (_WAITING, _READING) else "s3")
            if side == "sftp":
                self._parts_retried_sftp += 1
            else:
                self._parts_retried_s3 += 1
            if transfer is not None:
                transfer.parts_retried += 1
        elif code == _FAILED:
            self._parts_failed += 1

    def _on_link(self, event: SftpLinkMeasured) -> None:
        links = self._links
        links.pop(event.host, None)  # re-inserted: the dict stays in measuring order
        links[event.host] = SftpLinkStats(
            host=event.host,
            rtt_seconds=event.rtt_seconds,
            window_bytes=event.window_bytes,
            connections=event.connections,
            ceiling_bytes_per_second=event.ceiling_bytes_per_second,
            server=event.server,
        )
        if len(links) > MAX_LINK_HOSTS:
            del links[next(iter(links))]

    def _on_queued(self, event: TransferQueued) -> None:
        tid = event.transfer_id
        transfer = self._transfers.get(tid)
        if transfer is not None:  # queued again (a retry): back to a small record
            if transfer.state.finished:
                self._forget(tid)
            else:
                self._set_state(transfer, TransferState.QUEUED, self._clock())
        self._queued[tid] = _Queued(
            event.source, event.bucket, event.key, event.size, event.direction
        )
        self._direction(event.direction)

    def _on_started(self, event: TransferStarted) -> None:
        transfer = self._transfer(event.transfer_id)
        if transfer.planned:  # started again (a retry): the plan starts afresh
            self._parts_in_flight -= transfer.in_flight
            transfer.in_flight = 0
            transfer.part_codes = bytearray()
            transfer.bytes_done = transfer.bytes_transferred = 0
            transfer.parts_done = transfer.parts_retried = 0
        transfer.size = event.size
        transfer.part_size = event.part_size
        transfer.parts_total = event.part_count
        transfer.direction = event.direction
        self._direction(event.direction)
        codes = transfer.part_codes
        if len(codes) < event.part_count:
            codes.extend(bytes(event.part_count - len(codes)))
        for number in event.resumed_parts:  # landed by an earlier run: done, not transferred
            if 0 < number <= len(codes) and codes[number - 1] != _DONE:
                codes[number - 1] = _DONE
                transfer.parts_done += 1
                last = number == event.part_count
                transfer.bytes_done += (
                    event.size - event.part_size * (number - 1) if last else event.part_size
                )
        transfer.planned = True
        now = self._clock()
        transfer.started_at = now
        transfer.rate_samples.clear()
        self._set_state(transfer, TransferState.RUNNING, now)

    def _on_state(self, event: TransferStateChanged) -> None:
        if event.state is TransferState.QUEUED and event.transfer_id in self._queued:
            return  # still waiting: nothing to do
        self._set_state(self._transfer(event.transfer_id), event.state, self._clock())

    def _on_finished(self, event: TransferFinished) -> None:
        result = event.result
        transfer = self._transfer(event.transfer_id)
        transfer.message = result.message
        if not transfer.source:
            transfer.source, transfer.bucket = result.source, result.bucket
            transfer.key = result.key
        self._set_state(transfer, result.status, self._clock())

    def _transfer(self, transfer_id: int) -> _Transfer:
        """The counters of a transfer leaving the queue (made now) or already out of it."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            queued = self._queued.pop(transfer_id, None)
            if queued is not None:
                if not self._queued:  # a dict keeps its largest table: let a drained queue go
                    self._queued = {}
                transfer = _Transfer.from_queued(transfer_id, queued)
            else:  # first seen after its TransferQueued (a late subscriber)
                transfer = _Transfer(transfer_id)
            self._transfers[transfer_id] = transfer
        return transfer

    def _forget(self, transfer_id: int) -> None:
        self._transfers.pop(transfer_id, None)
        self._active.pop(transfer_id, None)
        self._finished.pop(transfer_id, None)

    def _count_outcome(self, transfer: _Transfer, state: TransferState) -> None:
        if transfer.outcome is None:  # not yet counted (StateChanged, then Finished, count once)
            transfer.outcome = state
            self._outcomes[state] += 1
            self._direction(transfer.direction).outcomes[state] += 1

    def _set_state(self, transfer: _Transfer, state: TransferState, at: float) -> None:
        old = transfer.state
        transfer.state = state
        tid = transfer.transfer_id
        if state.finished:
            self._count_outcome(transfer, state)
            if transfer.in_flight:  # a failed or cancelled transfer leaves no part in flight
                self._parts_in_flight -= transfer.in_flight
                transfer.in_flight = 0
            if not old.finished or tid not in self._finished:
                self._active.pop(tid, None)
                self._finished[tid] = transfer
                transfer.finished_at = at
                if len(self._finished) > self.keep_finished:  # bounded between snapshots too
                    self._forget(next(iter(self._finished)))
            return
        transfer.outcome = None  # back in play (a retry): its next ending counts again
        transfer.finished_at = None
        self._finished.pop(tid, None)
        if state is TransferState.QUEUED:  # back in line (a paused queued file resumed)
            self._forget(tid)
            self._queued[tid] = _Queued(
                transfer.source, transfer.bucket, transfer.key, transfer.size, transfer.direction
            )
        else:
            if tid not in self._active:
                self._active[tid] = transfer
            if transfer.started_at is None:
                transfer.started_at = at

    # -- snapshots ------------------------------------------------------------------------

    def _io_counters(self) -> tuple[int, int] | None:
        try:
            io = self._process.io_counters()
        except (AttributeError, NotImplementedError, psutil.Error, OSError):
            return None  # macOS has no per-process I/O counters; some sandboxes deny them
        return io.read_bytes, io.write_bytes

    def _take(self, *, record_history: bool) -> Snapshot:
        now = self._clock()
        wall = time.time()
        window = self.window
        bytes_per_second = _window_rate(self._rate_samples, now, self._bytes_transferred, window)
        if record_history:
            self._history.append(bytes_per_second)

        rss = cpu_seconds = cpu_percent = None
        disk_read = disk_write = None
        try:
            with self._process.oneshot():
                rss = self._process.memory_info().rss
                times = self._process.cpu_times()
                io = self._io_counters()
        except (psutil.Error, OSError):
            io = None
        else:
            cpu_seconds = times.user + times.system
            if self._cpu_last is not None:
                last_wall, last_cpu = self._cpu_last
                span = now - last_wall
                cpu_percent = 100.0 * (cpu_seconds - last_cpu) / span if span > 0 else 0.0
            else:
                cpu_percent = 0.0
            self._cpu_last = (now, cpu_seconds)
        if io is not None and self._io_base is not None:
            disk_read = io[0] - self._io_base[0]
            disk_write = io[1] - self._io_base[1]

        buffers = self.buffers
        pool_in_use = pool_budget = None
        if buffers is not None:
            pool_in_use, pool_budget = int(buffers.bytes_in_use), int(buffers.budget)

        read_seconds, self._read_seconds = self._read_seconds, []
        upload_seconds, self._upload_seconds = self._upload_seconds, []
        s3_read_seconds, self._s3_read_seconds = self._s3_read_seconds, []
        sftp_write_seconds, self._sftp_write_seconds = self._sftp_write_seconds, []
        directions = tuple(
            DirectionStats(
                direction=direction,
                bytes_transferred=counters.bytes_transferred,
                bytes_per_second=_window_rate(
                    counters.rate_samples, now, counters.bytes_transferred, window
                ),
                parts_done=counters.parts_done,
                files_done=counters.outcomes[TransferState.DONE],
                files_failed=counters.outcomes[TransferState.FAILED],
                files_skipped=counters.outcomes[TransferState.SKIPPED],
                files_cancelled=counters.outcomes[TransferState.CANCELLED],
            )
            for direction, counters in self._directions.items()
        )

        self._evict_finished(now)
        outcomes = self._outcomes
        running = sum(1 for t in self._active.values() if t.state is TransferState.RUNNING)
        return Snapshot(
            at=now,
            wall_time=wall,
            elapsed_seconds=now - self._started_at,
            bytes_transferred=self._bytes_transferred,
            bytes_per_second=bytes_per_second,
            throughput_history=tuple(self._history),
            parts_done=self._parts_done,
            parts_in_flight=self._parts_in_flight,
            parts_retried_sftp=self._parts_retried_sftp,
            parts_retried_s3=self._parts_retried_s3,
            parts_failed=self._parts_failed,
            files_queued=len(self._queued),
            files_running=running,
            files_paused=len(self._active) - running,
            files_done=outcomes[TransferState.DONE],
            files_failed=outcomes[TransferState.FAILED],
            files_skipped=outcomes[TransferState.SKIPPED],
            files_cancelled=outcomes[TransferState.CANCELLED],
            transfers=self._transfer_stats(now),
            rss_bytes=rss,
            disk_read_bytes=disk_read,
            disk_write_bytes=disk_write,
            cpu_seconds=cpu_seconds,
            cpu_percent=cpu_percent,
            buffer_pool_bytes_in_use=pool_in_use,
            buffer_pool_budget_bytes=pool_budget,
            sftp_read_seconds=tuple(read_seconds),
            s3_upload_seconds=tuple(upload_seconds),
            sftp_links=tuple(sorted(self._links.values(), key=lambda link: link.host)),
            directions=directions,
            s3_read_seconds=tuple(s3_read_seconds),
            sftp_write_seconds=tuple(sftp_write_seconds),
        )

    def _evict_finished(self, now: float) -> None:
        finished = self._finished
        oldest_kept = now - self.finished_linger
        while finished:
            tid = next(iter(finished))
            transfer = finished[tid]
            too_old = transfer.finished_at is not None and transfer.finished_at < oldest_kept
            if len(finished) <= self.keep_finished and not too_old:
                break
            del finished[tid]
            del self._transfers[tid]

    def _transfer_stats(self, now: float) -> tuple[TransferStats, ...]:
        """Active transfers, the first queued ones, then the recently finished ones."""
        stats = [self._stats_of(t, now) for t in self._active.values()]
        for tid, queued in islice(self._queued.items(), self.max_listed_queued):
            stats.append(
                TransferStats(
                    transfer_id=tid,
                    source=queued.source,
                    bucket=queued.bucket,
                    key=queued.key,
                    state=TransferState.QUEUED,
                    size=queued.size,
                    bytes_done=0,
                    bytes_per_second=0.0,
                    part_size=0,
                    parts_total=0,
                    parts_done=0,
                    parts_in_flight=0,
                    parts_retried=0,
                    part_codes=b"",
                    elapsed_seconds=0.0,
                )
            )
        stats += (self._stats_of(t, now) for t in self._finished.values())
        return tuple(stats)

    def _stats_of(self, t: _Transfer, now: float) -> TransferStats:
        rate = 0.0
        if t.state is TransferState.RUNNING:
            rate = _window_rate(t.rate_samples, now, t.bytes_transferred, self.window)
        elif t.rate_samples:
            t.rate_samples.clear()  # a paused transfer restarts its window on resume
        end = t.finished_at if t.finished_at is not None else now
        return TransferStats(
            transfer_id=t.transfer_id,
            source=t.source,
            bucket=t.bucket,
            key=t.key,
            state=t.state,
            size=t.size,
            bytes_done=t.bytes_done,
            bytes_per_second=rate,
            part_size=t.part_size,
            parts_total=max(t.parts_total, len(t.part_codes)),
            parts_done=t.parts_done,
            parts_in_flight=t.in_flight,
            parts_retried=t.parts_retried,
            part_codes=bytes(t.part_codes),
            elapsed_seconds=end - t.started_at if t.started_at is not None else 0.0,
            message=t.message,
        )
