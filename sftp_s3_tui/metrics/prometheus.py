"""Prometheus metrics fed only by sampler snapshots, pushed to a gateway and/or served on /metrics.

Every number comes from a :class:`~sftp_s3_tui.metrics.sampler.Snapshot`: counters advance by the
difference between two snapshots, gauges take the snapshot's value and histograms observe the
part latencies the snapshot carries. Labels are bounded (``side``, ``outcome``, ``direction``
— ``sftp_to_s3`` or ``s3_to_sftp`` on the byte, part, file and throughput figures — and
``host`` for the SFTP link figures: hosts only); there is no per-transfer label.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import push_to_gateway, start_http_server

from sftp_s3_tui.engine.events import Direction, EventBus
from sftp_s3_tui.metrics.drops import DropGauges
from sftp_s3_tui.metrics.sampler import BufferPoolStats, DirectionStats, Sampler, Snapshot

__all__ = [
    "DEFAULT_JOB",
    "LATENCY_BUCKETS",
    "MetricsExporter",
    "SnapshotMetrics",
    "default_instance",
    "push_gateway_from_env",
]

log = logging.getLogger(__name__)

# prometheus_client adds a ``<counter>_created`` series per counter and histogram; a push
# gateway stores them as gauges of their own (untyped timestamps nobody queries). Off for
# the process: this app's registries are the only ones it pushes or serves.
disable_created_metrics()

DEFAULT_JOB = "sftp_s3_tui"
PUSH_GATEWAY_ENV = "PUSH_GATEWAY"
#: ``sftp_s3_sftp_rename_overwrites``' values for the rename probe's findings.
RENAME_GAUGE = {"replaces": 1, "refuses": 0, "unknown": -1}
#: Part-level latency buckets (seconds): a 5 MiB part takes ms on a LAN, a 5 GiB one minutes.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    float("inf"),
)
_OUTCOMES = ("done", "failed", "skipped", "cancelled")


def push_gateway_from_env(
    value: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The push gateway address: ``value`` if given, else ``$PUSH_GATEWAY``, else None."""
    if value:
        return value.strip() or None
    env = os.environ if environ is None else environ
    return env.get(PUSH_GATEWAY_ENV, "").strip() or None


def default_instance() -> str:
    """The ``instance`` grouping key of this process: ``hostname-pid``."""
    return f"{socket.gethostname()}-{os.getpid()}"


class SnapshotMetrics:
    """The app's metrics in their own :class:`CollectorRegistry`, updated from snapshots.

    ``directions``: the directions whose labelled series exist (at 0) from the first push —
    a CLI run's one, the TUI's two; a direction seen later gets its series then.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        directions: Iterable[Direction] = tuple(Direction),
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.bytes_transferred = Counter(
            "sftp_s3_bytes_transferred_total",
            "Bytes of parts written to their destination: accepted by S3 (direction "
            "sftp_to_s3) or written to the SFTP server (s3_to_sftp); resumed parts excluded.",
            ["direction"],
            registry=r,
        )
        self.parts_completed = Counter(
            "sftp_s3_parts_completed_total",
            "Parts written to their destination, by direction.",
            ["direction"],
            registry=r,
        )
        self.parts_retried = Counter(
            "sftp_s3_parts_retried_total",
            "Part reads (side=sftp) or uploads (side=s3) that failed and were tried again.",
            ["side"],
            registry=r,
        )
        self.parts_failed = Counter(
            "sftp_s3_parts_failed_total", "Parts that failed after their retries.", registry=r
        )
        self.files = Counter(
            "sftp_s3_files_total",
            "Files that finished, by outcome (done, failed, skipped, cancelled) and direction.",
            ["outcome", "direction"],
            registry=r,
        )
        self.cpu_seconds = Counter(
            "sftp_s3_process_cpu_seconds_total",
            "User and system CPU time of the process.",
            registry=r,
        )
        self.throughput = Gauge(
            "sftp_s3_throughput_bytes_per_second",
            "Bytes transferred per second over the sampler's sliding window, by direction.",
            ["direction"],
            registry=r,
        )
        self.rss = Gauge(
            "sftp_s3_process_resident_memory_bytes", "Resident set size of the process.", registry=r
        )
        self.disk_write = Counter(
            "sftp_s3_process_disk_write_bytes_total",
            "Bytes the process caused to be written to storage (Linux, Windows).",
            registry=r,
        )
        self.disk_read = Counter(
            "sftp_s3_process_disk_read_bytes_total",
            "Bytes the process caused to be read from storage (Linux, Windows).",
            registry=r,
        )
        # CPU: rate(sftp_s3_process_cpu_seconds_total) is the base-unit form (1 = one core);
        # no percent gauge beside it.
        self.last_sample = Gauge(
            "sftp_s3_last_sample_timestamp_seconds",
            "Unix time of the run's last sample: a run that stopped pushing (finished or "
            "killed) is told apart from a live one by its age.",
            registry=r,
        )
        self.parts_in_flight = Gauge(
            "sftp_s3_parts_in_flight",
            "Parts holding a buffer: being read, waiting for or in upload, or awaiting a retry.",
            registry=r,
        )
        self.pool_in_use = Gauge(
            "sftp_s3_buffer_pool_bytes_in_use", "Bytes of part buffers taken.", registry=r
        )
        self.pool_budget = Gauge(
            "sftp_s3_buffer_pool_budget_bytes", "The buffer pool's memory budget.", registry=r
        )
        self.files_queued = Gauge("sftp_s3_files_queued", "Files waiting to start.", registry=r)
        self.files_running = Gauge("sftp_s3_files_running", "Files being transferred.", registry=r)
        self.files_paused = Gauge("sftp_s3_files_paused", "Files paused.", registry=r)
        self.sftp_read_seconds = Histogram(
            "sftp_s3_sftp_read_seconds",
            "Time to read one part from SFTP.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.s3_upload_seconds = Histogram(
            "sftp_s3_s3_upload_seconds",
            "Time to upload one part to S3.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.s3_read_seconds = Histogram(
            "sftp_s3_s3_read_seconds",
            "Time to read one part from S3 (a delivery's ranged GET, S3 → SFTP).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sftp_write_seconds = Histogram(
            "sftp_s3_sftp_write_seconds",
            "Time to write one part to the SFTP server (a delivery, S3 → SFTP).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sftp_rtt = Gauge(
            "sftp_s3_sftp_rtt_seconds",
            "An SFTP host's last measured round trip time.",
            ["host"],
            registry=r,
        )
        self.sftp_connections = Gauge(
            "sftp_s3_sftp_connections",
            "SSH connections open to an SFTP host.",
            ["host"],
            registry=r,
        )
        self.sftp_read_ceiling = Gauge(
            "sftp_s3_sftp_read_ceiling_bytes_per_second",
            "The most an SFTP host's link can deliver: window × connections ÷ RTT "
            "(or its bandwidth limit).",
            ["host"],
            registry=r,
        )
        self.sftp_read_block = Gauge(
            "sftp_s3_sftp_read_block_bytes",
            "The read size used for an SFTP host: its advertised limit, the largest read it "
            "was found to honour, or a pinned value.",
            ["host"],
            registry=r,
        )
        self.sftp_server_info = Gauge(
            "sftp_s3_sftp_server_info",
            "An SFTP host's profile (always 1): banner, SFTP version and where the read "
            "size came from (limits@openssh.com, probed, pinned or default).",
            ["host", "banner", "sftp_version", "read_source"],
            registry=r,
        )
        self.sftp_connections_granted = Gauge(
            "sftp_s3_sftp_connections_granted",
            "The most SSH connections (one SFTP session each) an SFTP host held open at once "
            "for this session.",
            ["host"],
            registry=r,
        )
        self.sftp_connection_limit = Gauge(
            "sftp_s3_sftp_connection_limit",
            "The connections an SFTP host grants at most, as a refused login or session "
            "showed (0: none refused).",
            ["host"],
            registry=r,
        )
        self.sftp_rename_overwrites = Gauge(
            "sftp_s3_sftp_rename_overwrites",
            "Whether an SFTP host's plain rename replaces an existing target (1), refuses it "
            "(0), or was not probed (-1; only --move-to probes it).",
            ["host"],
            registry=r,
        )
        # Create every label child now, so each series exists (at 0) from the first push.
        for side in ("sftp", "s3"):
            self.parts_retried.labels(side=side)
        #: The directions whose series exist (those asked for, then those seen).
        self.directions: list[Direction] = []
        for direction in directions:
            self._ensure(Direction(direction))
        self.drops = DropGauges(r)  # set by the watch (expectations) and the fronts
        self._last: Snapshot | None = None

    def _ensure(self, direction: Direction) -> None:
        """Every series of ``direction``, at 0 until it moves."""
        if direction in self.directions:
            return
        self.directions.append(direction)
        label = direction.value
        self.bytes_transferred.labels(direction=label)
        self.parts_completed.labels(direction=label)
        self.throughput.labels(direction=label)
        for outcome in _OUTCOMES:
            self.files.labels(outcome=outcome, direction=label)

    def metric_names(self) -> dict[str, str]:
        """Each exported metric's name (counters with ``_total``) and its Prometheus type."""
        names: dict[str, str] = {}
        for family in self.registry.collect():
            name = f"{family.name}_total" if family.type == "counter" else family.name
            names[name] = family.type
        return names

    def update(self, snapshot: Snapshot) -> None:
        """Bring every metric up to ``snapshot`` (a Sampler subscriber)."""
        last = self._last
        self._last = snapshot

        def advance(counter: Counter, now: float | None, before: float | None) -> None:
            if now is None:
                return
            delta = now - (before or 0)
            if delta > 0:  # a counter never goes back, even if a source number does
                counter.inc(delta)

        def prev(name: str) -> float | None:
            return None if last is None else getattr(last, name)

        before = {d.direction: d for d in _directions(last)} if last is not None else {}
        for now_dir in _directions(snapshot):
            direction = now_dir.direction
            self._ensure(direction)
            then = before.get(direction)
            label = direction.value

            def earlier(name: str, then: DirectionStats | None = then) -> float | None:
                return None if then is None else getattr(then, name)

            advance(
                self.bytes_transferred.labels(direction=label),
                now_dir.bytes_transferred,
                earlier("bytes_transferred"),
            )
            advance(
                self.parts_completed.labels(direction=label),
                now_dir.parts_done,
                earlier("parts_done"),
            )
            for outcome in _OUTCOMES:
                field = f"files_{outcome}"
                advance(
                    self.files.labels(outcome=outcome, direction=label),
                    getattr(now_dir, field),
                    earlier(field),
                )
            self.throughput.labels(direction=label).set(now_dir.bytes_per_second)
        advance(self.parts_failed, snapshot.parts_failed, prev("parts_failed"))
        advance(
            self.parts_retried.labels(side="sftp"),
            snapshot.parts_retried_sftp,
            prev("parts_retried_sftp"),
        )
        advance(
            self.parts_retried.labels(side="s3"),
            snapshot.parts_retried_s3,
            prev("parts_retried_s3"),
        )
        advance(self.cpu_seconds, snapshot.cpu_seconds, prev("cpu_seconds"))
        advance(self.disk_write, snapshot.disk_write_bytes, prev("disk_write_bytes"))
        advance(self.disk_read, snapshot.disk_read_bytes, prev("disk_read_bytes"))
        self.last_sample.set(time.time())

        self.parts_in_flight.set(snapshot.parts_in_flight)
        self.files_queued.set(snapshot.files_queued)
        self.files_running.set(snapshot.files_running)
        self.files_paused.set(snapshot.files_paused)
        for gauge, value in (
            (self.rss, snapshot.rss_bytes),
            (self.pool_in_use, snapshot.buffer_pool_bytes_in_use),
            (self.pool_budget, snapshot.buffer_pool_budget_bytes),
        ):
            if value is not None:
                gauge.set(value)
        for link in snapshot.sftp_links:
            self.sftp_rtt.labels(host=link.host).set(link.rtt_seconds)
            self.sftp_connections.labels(host=link.host).set(link.connections)
            self.sftp_read_ceiling.labels(host=link.host).set(link.ceiling_bytes_per_second)
            server = link.server
            if server is not None:
                self.sftp_read_block.labels(host=link.host).set(server.read_bytes)
                self.sftp_connections_granted.labels(host=link.host).set(server.connections_granted)
                self.sftp_connection_limit.labels(host=link.host).set(server.connection_limit)
                self.sftp_rename_overwrites.labels(host=link.host).set(
                    RENAME_GAUGE.get(server.rename_overwrites, -1)
                )
                self.sftp_server_info.labels(
                    host=link.host,
                    banner=server.banner,
                    sftp_version=str(server.sftp_version),
                    read_source=server.read_source,
                ).set(1)
        for seconds in snapshot.sftp_read_seconds:
            self.sftp_read_seconds.observe(seconds)
        for seconds in snapshot.s3_upload_seconds:
            self.s3_upload_seconds.observe(seconds)
        for seconds in snapshot.s3_read_seconds:
            self.s3_read_seconds.observe(seconds)
        for seconds in snapshot.sftp_write_seconds:
            self.sftp_write_seconds.observe(seconds)

    def finish(self) -> None:
        """The run is over: what it is doing now is nothing. The live gauges go to zero (the
        counters keep the run's totals), so the group a gateway keeps after the run never
        shows its last throughput, parts or files in flight as if it were still going."""
        for direction in self.directions:
            self.throughput.labels(direction=direction.value).set(0)
        for gauge in (
            self.parts_in_flight,
            self.pool_in_use,
            self.files_queued,
            self.files_running,
            self.files_paused,
        ):
            gauge.set(0)
        # The SFTP link figures (RTT, connections, ceiling) stay: what the run measured; the
        # dashboard shows them for live runs only (sftp_s3_last_sample_timestamp_seconds).


def _directions(snapshot: Snapshot) -> tuple[DirectionStats, ...]:
    """A snapshot's totals by direction; one made by hand without them (a test's, an older
    sampler's) is all SFTP → S3, as every transfer was before deliveries."""
    if snapshot.directions:
        return snapshot.directions
    if not (snapshot.bytes_transferred or snapshot.parts_done or snapshot.files_finished):
        return ()  # nothing moved yet: no direction to tell
    return (
        DirectionStats(
            direction=Direction.SFTP_TO_S3,
            bytes_transferred=snapshot.bytes_transferred,
            bytes_per_second=snapshot.bytes_per_second,
            parts_done=snapshot.parts_done,
            files_done=snapshot.files_done,
            files_failed=snapshot.files_failed,
            files_skipped=snapshot.files_skipped,
            files_cancelled=snapshot.files_cancelled,
        ),
    )


class MetricsExporter:
    """Publishes a sampler's snapshots: pushes to a gateway and/or serves ``/metrics``.

    Pushes run in a thread (``asyncio.to_thread``) every ``push_interval`` seconds and once on
    :meth:`stop`. A failing gateway is reported once (log warning and ``on_warning``) and never
    raises into the caller. ``metrics_port=0`` picks a free port (see :attr:`metrics_port`).
    """

    def __init__(
        self,
        sampler: Sampler | None = None,
        *,
        push_gateway_url: str | None = None,
        push_interval: float = 10.0,
        metrics_port: int | None = None,
        metrics_addr: str = "127.0.0.1",
        job: str = DEFAULT_JOB,
        instance: str | None = None,
        on_warning: Callable[[str], None] | None = None,
        push_timeout: float = 5.0,
        metrics: SnapshotMetrics | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else SnapshotMetrics()
        self.registry = self.metrics.registry
        self.sampler = sampler
        self.push_gateway_url = push_gateway_url
        self.push_interval = push_interval
        self.metrics_addr = metrics_addr
        self.job = job
        self.instance = instance or default_instance()
        self.labels = dict(labels or {})
        self.on_warning = on_warning
        self.push_timeout = push_timeout
        self.pushes_ok = 0
        self.pushes_failed = 0
        self._requested_port = metrics_port
        self._server: WSGIServer | None = None
        self._push_task: asyncio.Task[None] | None = None
        self._push_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._warned: set[str] = set()
        self._unsubscribe = sampler.subscribe(self.metrics.update) if sampler else None

    @property
    def grouping_key(self) -> dict[str, str]:
        """The push group: the instance plus any extra labels (e.g. an Airflow task's ids)."""
        return {**self.labels, "instance": self.instance}

    @property
    def metrics_port(self) -> int | None:
        """The port ``/metrics`` is served on, once started."""
        return None if self._server is None else int(self._server.server_port)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve ``/metrics`` (if a port was given) and start the push loop (if a URL was)."""
        if self._requested_port is not None and self._server is None:
            try:
                self.serve_metrics(self._requested_port, self.metrics_addr)
            except OSError as exc:
                self._warn(
                    "serve",
                    f"Cannot serve metrics on {self.metrics_addr}:{self._requested_port}: {exc}",
                )
        if self.push_gateway_url and self._push_task is None:
            self._stopping = asyncio.Event()
            self._push_task = asyncio.get_running_loop().create_task(
                self._push_loop(), name="sftp-s3-metrics-push"
            )

    async def stop(self, *, final_sample: bool = True) -> None:
        """Take a last sample (unless told not to), push it once more and stop serving."""
        task, self._push_task = self._push_task, None
        if task is not None:
            # Let a push under way finish: a cancelled push thread would still land later,
            # possibly after (and over) the final push below.
            self._stopping.set()
            await task
        if final_sample and self.sampler is not None:
            self.sampler.sample_now()
        self.metrics.finish()
        if self.push_gateway_url:
            await self.push_now()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(_shutdown, server)

    async def __aenter__(self) -> MetricsExporter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- /metrics -------------------------------------------------------------------------

    def serve_metrics(self, port: int, addr: str = "127.0.0.1") -> WSGIServer:
        """Serve this registry on ``http://addr:port/metrics`` in a daemon thread."""
        server, _thread = start_http_server(port, addr, registry=self.registry)
        self._server = server
        log.info("serving metrics on http://%s:%d/metrics", addr, server.server_port)
        return server

    # -- push gateway ---------------------------------------------------------------------

    async def push_now(self) -> bool:
        """Push the registry to the gateway once; False (and a one-time warning) on failure."""
        url = self.push_gateway_url
        if not url:
            return False
        async with self._push_lock:
            try:
                await asyncio.to_thread(
                    push_to_gateway,
                    url,
                    job=self.job,
                    grouping_key=self.grouping_key,
                    registry=self.registry,
                    timeout=self.push_timeout,
                )
            except Exception as exc:  # any failure of the gateway stays out of the transfers
                self.pushes_failed += 1
                message = f"Cannot push metrics to {url}: {exc}. Transfers go on without it."
                self._warn("push", message)
                return False
        self.pushes_ok += 1
        return True

    async def _push_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.push_interval)
            if not self._stopping.is_set():
                await self.push_now()

    def _warn(self, kind: str, message: str) -> None:
        """Log and report ``message`` the first time a ``kind`` of failure happens."""
        if kind in self._warned:
            log.debug("%s", message)
            return
        self._warned.add(kind)
        log.warning("%s", message)
        if self.on_warning is not None:
            try:
                self.on_warning(message)
            except Exception:
                log.exception("metrics warning callback failed")


def _shutdown(server: WSGIServer) -> None:
    server.shutdown()
    server.server_close()


@contextlib.asynccontextmanager
async def exporting(
    bus: EventBus,
    buffers: BufferPoolStats | None,
    *,
    push_gateway_url: str | None = None,
    metrics_port: int | None = None,
    instance: str | None = None,
    labels: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None,
    metrics: SnapshotMetrics | None = None,
    direction: Direction | None = None,
) -> AsyncIterator[Sampler | None]:
    """A sampler and its exporter around a run, when a push gateway or a port is asked for.
    ``direction``: the run's one direction (its series at 0 from the first push), when
    ``metrics`` are not given.

    Yields the sampler (``None`` when neither is given); leaving takes a final sample and
    pushes it once more.
    """
    if not push_gateway_url and metrics_port is None:
        yield None
        return
    sampler = Sampler(bus, interval=1.0, buffers=buffers)
    if metrics is None and direction is not None:
        metrics = SnapshotMetrics(directions=(direction,))
    exporter = MetricsExporter(
        sampler,
        push_gateway_url=push_gateway_url,
        metrics_port=metrics_port,
        instance=instance,
        labels=labels,
        on_warning=on_warning,
        metrics=metrics,
    )
    async with sampler, exporter:
        yield sampler
