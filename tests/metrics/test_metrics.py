"""The sampler's numbers from a known event stream, and the same numbers in Prometheus."""

from __future__ import annotations

import asyncio
import logging
import socket
import tracemalloc
import urllib.request
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sftp_s3_tui.engine.events import (
    EventBus,
    PartChanged,
    PartState,
    TransferFinished,
    TransferQueued,
    TransferResult,
    TransferStarted,
    TransferState,
    TransferStateChanged,
)
from sftp_s3_tui.metrics import (
    MetricsExporter,
    Sampler,
    Snapshot,
    SnapshotMetrics,
    push_gateway_from_env,
)

MiB = 1024 * 1024


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakePool:
    bytes_in_use: int = 0
    budget: int = 0


class Engine:
    """Emits the events a real engine would, for one file at a time."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def queue(self, tid: int, size: int, name: str = "") -> None:
        name = name or f"file{tid}.csv"
        self.bus.emit(
            TransferQueued(
                transfer_id=tid, source=f"sftp://h/in/{name}", bucket="b", key=name, size=size
            )
        )

    def start(self, tid: int, size: int, part_size: int, resumed: tuple[int, ...] = ()) -> None:
        count = max(1, -(-size // part_size))
        self.bus.emit(
            TransferStarted(
                transfer_id=tid,
                size=size,
                part_size=part_size,
                part_count=count,
                multipart=count > 1,
                resumed_parts=resumed,
            )
        )

    def part(
        self, tid: int, number: int, state: PartState, size: int, seconds: float = 0.0, side=""
    ) -> None:
        self.bus.emit(
            PartChanged(
                transfer_id=tid,
                part_number=number,
                state=state,
                size=size,
                seconds=seconds,
                side=side,
            )
        )

    def move_part(self, tid: int, number: int, size: int, read: float, upload: float) -> None:
        """One part's whole life: read, upload, done."""
        self.part(tid, number, PartState.READING, size)
        self.part(tid, number, PartState.UPLOADING, size, seconds=read)
        self.part(tid, number, PartState.DONE, size, seconds=upload)

    def finish(self, tid: int, status: TransferState, size: int = 0, message: str = "") -> None:
        self.bus.emit(TransferStateChanged(transfer_id=tid, state=status))
        result = TransferResult(
            source=f"sftp://h/in/file{tid}.csv",
            bucket="b",
            key=f"file{tid}.csv",
            bytes=size,
            seconds=1.0,
            parts=1,
            sha256=None,
            status=status,
            message=message,
        )
        self.bus.emit(TransferFinished(transfer_id=tid, result=result))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def engine(bus: EventBus) -> Engine:
    return Engine(bus)


def test_bytes_per_second_is_the_rate_over_the_window(bus, engine, clock):
    sampler = Sampler(bus, clock=clock, window=5.0, history=4)
    engine.queue(1, 100 * MiB)
    engine.start(1, 100 * MiB, MiB)
    number = 0
    rates = []
    for _second in range(10):  # 2 MiB/s for ten seconds
        clock.advance(1.0)
        for _ in range(2):
            number += 1
            engine.move_part(1, number, MiB, read=0.01, upload=0.02)
        rates.append(sampler.sample_now().bytes_per_second)
    assert rates[-1] == pytest.approx(2 * MiB)
    # Before the window is full, the rate is over the time since the sampler started.
    assert rates[0] == pytest.approx(2 * MiB)
    for _second in range(3):  # then the source stalls: the window drains
        clock.advance(1.0)
        rates.append(sampler.sample_now().bytes_per_second)
    assert rates[-1] == pytest.approx(2 * MiB * 2 / 5)
    snapshot = sampler.latest
    assert snapshot.bytes_transferred == 20 * MiB
    assert snapshot.throughput_history == pytest.approx(rates[-4:])  # bounded to `history`
    (transfer,) = snapshot.transfers
    assert transfer.bytes_done == 20 * MiB
    assert transfer.bytes_per_second == pytest.approx(2 * MiB * 2 / 5)
    assert transfer.parts_done == 20
    assert transfer.parts_total == 100
    assert transfer.fraction_done == pytest.approx(0.2)


def test_parts_in_flight_retries_and_chunk_map(bus, engine, clock):
    sampler = Sampler(bus, clock=clock)
    engine.queue(1, 4 * MiB)
    engine.start(1, 4 * MiB, MiB)
    engine.part(1, 1, PartState.READING, MiB)
    engine.part(1, 2, PartState.READING, MiB)
    engine.part(1, 2, PartState.RETRIED, MiB, side="sftp")
    engine.part(1, 2, PartState.READING, MiB)
    engine.part(1, 3, PartState.READING, MiB)
    engine.part(1, 3, PartState.UPLOADING, MiB, seconds=0.5)
    engine.part(1, 3, PartState.RETRIED, MiB)  # no side given: it was uploading, so s3
    engine.part(1, 4, PartState.READING, MiB)
    engine.part(1, 4, PartState.UPLOADING, MiB, seconds=0.25)
    engine.part(1, 4, PartState.DONE, MiB, seconds=0.75)
    snapshot = sampler.sample_now()

    assert snapshot.parts_in_flight == 3
    assert snapshot.parts_done == 1
    assert (snapshot.parts_retried_sftp, snapshot.parts_retried_s3) == (1, 1)
    assert snapshot.parts_retried == 2
    assert snapshot.sftp_read_seconds == (0.5, 0.25)
    assert snapshot.s3_upload_seconds == (0.75,)
    (transfer,) = snapshot.transfers
    assert transfer.part_states == (
        PartState.READING,
        PartState.READING,
        PartState.RETRIED,
        PartState.DONE,
    )
    assert (transfer.parts_in_flight, transfer.parts_retried) == (3, 2)

    # Each latency observation appears in exactly one snapshot.
    later = sampler.sample_now()
    assert later.sftp_read_seconds == () and later.s3_upload_seconds == ()

    # A failed transfer gives back its parts in flight; a part done twice counts once.
    engine.part(1, 4, PartState.DONE, MiB)
    engine.part(1, 1, PartState.FAILED, MiB)
    engine.finish(1, TransferState.FAILED, message="SFTP read failed")
    snapshot = sampler.sample_now()
    assert snapshot.parts_in_flight == 0
    assert snapshot.parts_done == 1 and snapshot.bytes_transferred == MiB
    assert snapshot.parts_failed == 1
    assert snapshot.transfers[0].state is TransferState.FAILED
    assert snapshot.transfers[0].message == "SFTP read failed"


def test_files_by_outcome_and_life_stage(bus, engine, clock):
    sampler = Sampler(bus, clock=clock)
    for tid in range(1, 8):
        engine.queue(tid, MiB)
    snapshot = sampler.sample_now()
    assert (snapshot.files_queued, snapshot.files_running) == (7, 0)

    for tid in (1, 2, 3, 4, 5):
        engine.start(tid, MiB, MiB)
    bus.emit(TransferStateChanged(transfer_id=5, state=TransferState.PAUSED))
    snapshot = sampler.sample_now()
    assert (snapshot.files_queued, snapshot.files_running, snapshot.files_paused) == (2, 4, 1)

    engine.move_part(1, 1, MiB, 0.1, 0.1)
    engine.finish(1, TransferState.DONE, MiB)
    engine.finish(2, TransferState.FAILED)
    engine.finish(3, TransferState.CANCELLED)
    engine.finish(6, TransferState.SKIPPED)  # skipped straight from the queue
    snapshot = sampler.sample_now()
    assert (
        snapshot.files_done,
        snapshot.files_failed,
        snapshot.files_skipped,
        snapshot.files_cancelled,
    ) == (1, 1, 1, 1)
    assert snapshot.files_finished == 4
    assert (snapshot.files_queued, snapshot.files_running, snapshot.files_paused) == (1, 1, 1)
    states = {t.transfer_id: t.state for t in snapshot.transfers}
    assert states == {
        4: TransferState.RUNNING,
        5: TransferState.PAUSED,
        7: TransferState.QUEUED,
        1: TransferState.DONE,
        2: TransferState.FAILED,
        3: TransferState.CANCELLED,
        6: TransferState.SKIPPED,
    }

    # A failed file retried and done counts once more, as done.
    engine.queue(2, MiB)
    engine.start(2, MiB, MiB)
    engine.move_part(2, 1, MiB, 0.1, 0.1)
    engine.finish(2, TransferState.DONE, MiB)
    snapshot = sampler.sample_now()
    assert (snapshot.files_done, snapshot.files_failed) == (2, 1)
    assert next(t for t in snapshot.transfers if t.transfer_id == 2).bytes_done == MiB


def test_snapshot_lists_a_bounded_set_of_transfers(bus, engine, clock):
    sampler = Sampler(bus, clock=clock, keep_finished=3, finished_linger=10.0, max_listed_queued=5)
    for tid in range(1, 1001):
        engine.queue(tid, MiB)
    for tid in range(1, 11):
        engine.start(tid, MiB, MiB)
        engine.move_part(tid, 1, MiB, 0.1, 0.1)
        engine.finish(tid, TransferState.DONE, MiB)
    engine.start(11, MiB, MiB)
    snapshot = sampler.sample_now()
    assert snapshot.files_queued == 989 and snapshot.files_done == 10
    ids = [t.transfer_id for t in snapshot.transfers]
    assert ids == [11, 12, 13, 14, 15, 16, 8, 9, 10]  # running, first queued, last finished

    clock.advance(11.0)  # finished ones linger for 10 s only
    ids = [t.transfer_id for t in sampler.sample_now().transfers]
    assert ids == [11, 12, 13, 14, 15, 16]


def test_resumed_parts_count_as_done_but_not_as_transferred(bus, engine, clock):
    sampler = Sampler(bus, clock=clock)
    engine.queue(1, 25 * MiB)
    engine.start(1, 25 * MiB, 10 * MiB, resumed=(1, 3))
    engine.move_part(1, 2, 10 * MiB, 0.1, 0.1)
    snapshot = sampler.sample_now()
    (transfer,) = snapshot.transfers
    assert transfer.bytes_done == 25 * MiB
    assert transfer.parts_done == 3
    assert snapshot.bytes_transferred == 10 * MiB


def test_process_and_pool_figures(bus, clock):
    pool = FakePool(bytes_in_use=3 * MiB, budget=64 * MiB)
    sampler = Sampler(bus, clock=clock, buffers=pool)
    pool.bytes_in_use = 5 * MiB
    clock.advance(1.0)
    snapshot = sampler.sample_now()
    assert snapshot.buffer_pool_bytes_in_use == 5 * MiB
    assert snapshot.buffer_pool_budget_bytes == 64 * MiB
    assert snapshot.rss_bytes is not None and snapshot.rss_bytes > 10 * MiB
    assert snapshot.cpu_seconds is not None and snapshot.cpu_seconds > 0
    assert snapshot.cpu_percent is not None and snapshot.cpu_percent >= 0
    if snapshot.disk_write_bytes is not None:  # Linux and Windows; not macOS
        assert snapshot.disk_write_bytes >= 0 and snapshot.disk_read_bytes is not None
    assert Sampler(clock=clock).sample_now().buffer_pool_budget_bytes is None


def test_subscribers_get_every_snapshot_and_a_failing_one_does_not_stop_them(bus, clock):
    sampler = Sampler(bus, clock=clock)
    seen: list[Snapshot] = []

    def broken(snapshot: Snapshot) -> None:
        raise RuntimeError("widget bug")

    sampler.subscribe(broken)
    unsubscribe = sampler.subscribe(seen.append)
    first = sampler.sample_now()
    unsubscribe()
    sampler.sample_now()
    assert seen == [first]
    assert sampler.latest is not first


async def test_the_sampling_task_ticks_on_its_own(bus, engine):
    snapshots: list[Snapshot] = []
    async with Sampler(bus, interval=0.01) as sampler:
        sampler.subscribe(snapshots.append)
        engine.move_part(1, 1, 1234, 0.1, 0.2)
        for _ in range(500):
            if len(snapshots) >= 3:
                break
            await asyncio.sleep(0.01)
        assert sampler.running
    assert not sampler.running
    assert len(snapshots) >= 3
    assert snapshots[-1].bytes_transferred == 1234


def test_prometheus_metrics_follow_snapshots(bus, engine, clock):
    sampler = Sampler(bus, clock=clock, buffers=FakePool(MiB, 8 * MiB))
    metrics = SnapshotMetrics()
    sampler.subscribe(metrics.update)
    engine.queue(1, 3 * MiB)
    engine.start(1, 3 * MiB, MiB)
    engine.move_part(1, 1, MiB, 0.02, 0.2)
    engine.part(1, 2, PartState.READING, MiB)
    engine.part(1, 2, PartState.RETRIED, MiB, side="sftp")
    sampler.sample_now()
    engine.move_part(1, 2, MiB, 0.03, 3.0)
    engine.move_part(1, 3, MiB, 0.04, 0.3)
    engine.finish(1, TransferState.DONE, 3 * MiB)
    engine.finish(2, TransferState.SKIPPED)
    clock.advance(1.0)
    sampler.sample_now()

    value = metrics.registry.get_sample_value
    up = {"direction": "sftp_to_s3"}
    assert value("sftp_s3_bytes_transferred_total", up) == 3 * MiB
    assert value("sftp_s3_parts_completed_total", up) == 3
    assert value("sftp_s3_parts_retried_total", {"side": "sftp"}) == 1
    assert value("sftp_s3_parts_retried_total", {"side": "s3"}) == 0
    assert value("sftp_s3_files_total", {"outcome": "done", **up}) == 1
    assert value("sftp_s3_files_total", {"outcome": "skipped", **up}) == 1
    assert value("sftp_s3_files_total", {"outcome": "failed", **up}) == 0
    # the other direction's series exist, at 0 (the TUI can run both)
    down = {"direction": "s3_to_sftp"}
    assert value("sftp_s3_bytes_transferred_total", down) == 0
    assert value("sftp_s3_files_total", {"outcome": "done", **down}) == 0
    assert value("sftp_s3_sftp_read_seconds_count") == 3
    assert value("sftp_s3_s3_upload_seconds_count") == 3
    assert value("sftp_s3_s3_upload_seconds_bucket", {"le": "0.25"}) == 1
    assert value("sftp_s3_s3_upload_seconds_sum") == pytest.approx(3.5)
    assert value("sftp_s3_buffer_pool_budget_bytes") == 8 * MiB
    assert value("sftp_s3_throughput_bytes_per_second", up) == sampler.latest.bytes_per_second
    assert value("sftp_s3_process_resident_memory_bytes") == sampler.latest.rss_bytes
    assert value("sftp_s3_parts_in_flight") == 0

    names = metrics.metric_names()
    assert names["sftp_s3_bytes_transferred_total"] == "counter"
    assert names["sftp_s3_sftp_read_seconds"] == "histogram"
    assert all(name.startswith("sftp_s3_") for name in names)


def _gateway_value(url: str, name: str, instance: str) -> float | None:
    """The sum of a metric's series the gateway holds for ``instance`` (None: none)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = [
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("instance") == instance
    ]
    return sum(values) if values else None


async def test_exporter_pushes_to_a_real_gateway_and_serves_metrics(
    bus,
    engine,
    pushgateway: str,
):
    sampler = Sampler(bus, interval=0.05)
    exporter = MetricsExporter(
        sampler,
        push_gateway_url=pushgateway,
        push_interval=0.1,
        metrics_port=0,
        instance="test-push",
    )
    fed = 0
    async with sampler, exporter:
        for number, size in enumerate((5 * MiB, 5 * MiB, 123_457), start=1):
            engine.move_part(7, number, size, 0.01, 0.02)
            fed += size
        sampler.sample_now()
        with urllib.request.urlopen(
            f"http://127.0.0.1:{exporter.metrics_port}/metrics", timeout=5
        ) as response:
            families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
        served = {
            sample.labels["direction"]: sample.value
            for sample in families["sftp_s3_bytes_transferred"].samples
        }
        assert served == {"sftp_to_s3": fed, "s3_to_sftp": 0}
        for _ in range(100):  # the push loop runs on its own
            if exporter.pushes_ok:
                break
            await asyncio.sleep(0.05)
        assert exporter.pushes_ok >= 1
    # stop() pushed the final numbers once more.
    pushed = _gateway_value(pushgateway, "sftp_s3_bytes_transferred_total", "test-push")
    assert pushed == fed
    assert _gateway_value(pushgateway, "sftp_s3_parts_completed_total", "test-push") == 3
    assert exporter.pushes_failed == 0
    assert exporter.metrics_port is None  # the /metrics server was shut down


async def test_a_dead_gateway_warns_once_and_never_raises(bus, engine, caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    warnings: list[str] = []
    sampler = Sampler(bus, interval=0.02)
    exporter = MetricsExporter(
        sampler, push_gateway_url=dead, push_interval=0.02, on_warning=warnings.append
    )
    caplog.set_level(logging.WARNING, logger="sftp_s3_tui.metrics")
    async with sampler, exporter:
        engine.move_part(1, 1, MiB, 0.01, 0.01)
        for _ in range(200):
            if exporter.pushes_failed >= 3:
                break
            await asyncio.sleep(0.02)
    assert exporter.pushes_failed >= 4  # the loop's failures and the final push
    assert await exporter.push_now() is False
    assert len(warnings) == 1 and dead in warnings[0]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert sampler.latest.bytes_transferred == MiB  # the sampler went on


def test_push_gateway_address_comes_from_the_option_or_the_environment():
    env = {"PUSH_GATEWAY": " localhost:9091 "}
    assert push_gateway_from_env(None, env) == "localhost:9091"
    assert push_gateway_from_env("gw:9091", env) == "gw:9091"
    assert push_gateway_from_env(None, {}) is None
    assert push_gateway_from_env(None, {"PUSH_GATEWAY": ""}) is None


def test_a_late_sampler_still_counts_transfers_it_never_saw_queued(bus, engine, clock):
    engine.queue(1, 2 * MiB)  # before the sampler exists
    sampler = Sampler(bus, clock=clock)
    engine.part(1, 1, PartState.READING, MiB)  # a part of an unknown transfer: totals only
    engine.part(1, 1, PartState.UPLOADING, MiB, seconds=0.1)
    engine.part(1, 1, PartState.DONE, MiB, seconds=0.2)
    engine.start(2, MiB, MiB)  # started but never seen queued: listed from here on
    engine.move_part(2, 1, MiB, 0.1, 0.2)
    engine.finish(1, TransferState.DONE, 2 * MiB)
    engine.finish(2, TransferState.DONE, MiB)
    snapshot = sampler.sample_now()
    assert snapshot.bytes_transferred == 2 * MiB and snapshot.parts_done == 2
    assert snapshot.files_done == 2  # StateChanged then Finished: one file each
    assert snapshot.parts_in_flight == 0
    second = snapshot.transfer(2)
    assert second is not None and second.bytes_done == MiB and second.parts_total == 1
    assert snapshot.transfer(99) is None


async def test_exporter_stop_takes_a_final_sample(bus, engine):
    sampler = Sampler(bus)
    exporter = MetricsExporter(sampler)
    async with exporter:
        engine.move_part(1, 1, 4321, 0.1, 0.2)
    value = exporter.registry.get_sample_value(
        "sftp_s3_bytes_transferred_total", {"direction": "sftp_to_s3"}
    )
    assert value == 4321
    assert sampler.latest.bytes_transferred == 4321


def test_a_queue_of_many_files_costs_the_sampler_a_small_record_each(bus, engine, clock):
    """The sampler keeps aggregates plus a bounded window: queued files are small records,
    finished ones are dropped beyond the last ``keep_finished`` (it used to keep every
    transfer, ~1.2 KB each while queued)."""
    count = 5_000
    sampler = Sampler(bus, clock=clock, keep_finished=20, max_listed_queued=50)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for tid in range(1, count + 1):
            engine.queue(tid, 1000, name=f"f{tid:07d}.csv")
        per_queued = (tracemalloc.get_traced_memory()[0] - before) / count
        for tid in range(1, count + 1):
            engine.start(tid, 1000, 1000)
            engine.move_part(tid, 1, 1000, 0.01, 0.01)
            engine.finish(tid, TransferState.DONE, 1000)
        sampler.sample_now()  # hands over the latency observations gathered meanwhile
        snapshot = sampler.sample_now()
        left = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert per_queued < 400
    assert left < 128 * 1024  # 20 finished transfers, not 5,000
    assert snapshot.files_done == count and snapshot.bytes_transferred == count * 1000
    assert len(snapshot.transfers) == 20


def test_deliveries_and_uploads_are_counted_apart_by_direction(bus, engine, clock):
    """One process can upload and deliver at once (the TUI): the totals split by the
    direction the engine's queued and started events carry, a delivery's part latencies go
    to the S3-read / SFTP-write histograms, and the labelled series follow."""
    from sftp_s3_tui.engine.events import Direction
    from sftp_s3_tui.engine.plan.delivery import DeliveryJob
    from sftp_s3_tui.engine.transfer.delivery_result import DeliveryEvents, DeliveryResult

    sampler = Sampler(bus, clock=clock)
    metrics = SnapshotMetrics()
    sampler.subscribe(metrics.update)
    engine.queue(1, 2 * MiB)  # an upload
    engine.start(1, 2 * MiB, MiB)
    events = DeliveryEvents(bus, new_id=iter(range(10, 20)).__next__)  # the engine's events
    delivery = events.queued(DeliveryJob("b", "out/x.bin", "/inbox/x.bin", size=3 * MiB))
    skipped = events.queued(DeliveryJob("b", "out/kept.csv", "/inbox/kept.csv", size=5))
    events.refused(DeliveryResult("b", "../evil", "", "failed", message="refused"))
    progress = events.progress(delivery)
    progress.running()
    progress.started(3 * MiB, MiB)
    snapshot = sampler.sample_now()
    assert snapshot.files_queued == 1 and snapshot.files_running == 2
    for number in (1, 2, 3):
        engine.part(delivery, number, PartState.READING, MiB)
        engine.part(delivery, number, PartState.UPLOADING, MiB, seconds=0.5)  # its GET
        engine.part(delivery, number, PartState.DONE, MiB, seconds=0.02)  # its SFTP write
    engine.move_part(1, 1, MiB, 0.3, 0.04)
    clock.advance(1.0)
    snapshot = sampler.sample_now()
    down = snapshot.direction(Direction.S3_TO_SFTP)
    up = snapshot.direction(Direction.SFTP_TO_S3)
    assert down is not None and up is not None
    assert (down.bytes_transferred, down.parts_done) == (3 * MiB, 3)
    assert (up.bytes_transferred, up.parts_done) == (MiB, 1)
    assert down.bytes_per_second == 3 * MiB and up.bytes_per_second == MiB
    assert snapshot.bytes_transferred == 4 * MiB  # the totals stay both together
    assert snapshot.s3_read_seconds == (0.5, 0.5, 0.5)
    assert snapshot.sftp_write_seconds == (0.02, 0.02, 0.02)
    assert snapshot.sftp_read_seconds == (0.3,) and snapshot.s3_upload_seconds == (0.04,)
    assert down.files_failed == 1  # the refused key

    progress.finished(
        DeliveryResult("b", "out/x.bin", "/inbox/x.bin", "done", 3 * MiB).transfer_result(1.0)
    )
    events.progress(skipped).finished(
        DeliveryResult("b", "out/kept.csv", "/inbox/kept.csv", "skipped", 5).transfer_result(0.0)
    )
    engine.finish(1, TransferState.DONE, 2 * MiB)
    clock.advance(1.0)
    snapshot = sampler.sample_now()
    down = snapshot.direction(Direction.S3_TO_SFTP)
    assert down is not None
    assert (down.files_done, down.files_skipped, down.files_failed) == (1, 1, 1)
    assert snapshot.files_done == 2 and snapshot.files_queued == 0

    value = metrics.registry.get_sample_value
    d, u = {"direction": "s3_to_sftp"}, {"direction": "sftp_to_s3"}
    assert value("sftp_s3_bytes_transferred_total", d) == 3 * MiB
    assert value("sftp_s3_bytes_transferred_total", u) == MiB
    assert value("sftp_s3_parts_completed_total", d) == 3
    assert value("sftp_s3_files_total", {"outcome": "done", **d}) == 1
    assert value("sftp_s3_files_total", {"outcome": "skipped", **d}) == 1
    assert value("sftp_s3_files_total", {"outcome": "failed", **d}) == 1
    assert value("sftp_s3_files_total", {"outcome": "done", **u}) == 1
    assert value("sftp_s3_s3_read_seconds_count") == 3
    assert value("sftp_s3_sftp_write_seconds_count") == 3
    assert value("sftp_s3_sftp_read_seconds_count") == 1
    assert value("sftp_s3_throughput_bytes_per_second", d) > 0
    metrics.finish()  # the run is over: no speed left in either direction
    assert value("sftp_s3_throughput_bytes_per_second", d) == 0
    assert value("sftp_s3_throughput_bytes_per_second", u) == 0


def test_a_run_of_one_direction_exports_only_its_series():
    """A CLI run names its direction: the gateway group of a delivery holds no upload series
    (and the other way round); a direction seen later still gets its series."""
    from sftp_s3_tui.engine.events import Direction

    metrics = SnapshotMetrics(directions=(Direction.S3_TO_SFTP,))
    value = metrics.registry.get_sample_value
    assert value("sftp_s3_bytes_transferred_total", {"direction": "s3_to_sftp"}) == 0
    assert value("sftp_s3_bytes_transferred_total", {"direction": "sftp_to_s3"}) is None
    assert value("sftp_s3_files_total", {"outcome": "done", "direction": "sftp_to_s3"}) is None
