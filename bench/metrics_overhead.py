"""What the metrics cost: the sampler's per-event and per-tick time, as a share of one core.

Run: ``uv run python bench/metrics_overhead.py``. Feeds synthetic events through a real
EventBus (with and without the sampler subscribed), then times snapshots with a busy queue and
the Prometheus update that follows each one.
"""

from __future__ import annotations

import argparse
import time

from sftp_s3_tui.engine.events import (
    EventBus,
    PartChanged,
    PartState,
    TransferQueued,
    TransferStarted,
)
from sftp_s3_tui.metrics import Sampler, SnapshotMetrics

MiB = 1024 * 1024


def part_events(transfers: int, parts: int) -> list[PartChanged]:
    """Each part's READING, UPLOADING and DONE, interleaved across transfers."""
    events = []
    for number in range(1, parts + 1):
        for tid in range(transfers):
            for state, seconds in (
                (PartState.READING, 0.0),
                (PartState.UPLOADING, 0.05),
                (PartState.DONE, 0.1),
            ):
                events.append(
                    PartChanged(
                        transfer_id=tid,
                        part_number=number,
                        state=state,
                        size=8 * MiB,
                        seconds=seconds,
                    )
                )
    return events


def time_emit(bus: EventBus, events: list[PartChanged]) -> float:
    start = time.perf_counter()
    emit = bus.emit
    for event in events:
        emit(event)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--transfers", type=int, default=16, help="transfers running at once")
    parser.add_argument("--parts", type=int, default=10_000, help="parts per running transfer")
    parser.add_argument("--queued", type=int, default=10_000, help="files waiting")
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--parts-per-second", type=float, default=200.0, help="at full speed")
    args = parser.parse_args()

    per_transfer = max(1, args.events // (3 * args.transfers))
    events = part_events(args.transfers, per_transfer)

    def busy_sampler() -> tuple[EventBus, Sampler]:
        bus = EventBus()
        sampler = Sampler(bus)
        for tid in range(args.transfers):
            bus.emit(TransferQueued(transfer_id=tid, source="s", bucket="b", key="k", size=1))
            bus.emit(
                TransferStarted(
                    transfer_id=tid,
                    size=args.parts * 8 * MiB,
                    part_size=8 * MiB,
                    part_count=args.parts,
                    multipart=True,
                )
            )
        for tid in range(args.transfers, args.transfers + args.queued):
            bus.emit(TransferQueued(transfer_id=tid, source="s", bucket="b", key="k", size=1))
        return bus, sampler

    baseline = min(time_emit(EventBus(), events) for _ in range(3))
    with_sampler = []
    for _ in range(3):
        bus, sampler = busy_sampler()
        with_sampler.append(time_emit(bus, events))
    handler_seconds = (min(with_sampler) - baseline) / len(events)

    bus, sampler = busy_sampler()
    metrics = SnapshotMetrics()
    time_emit(bus, events)
    sampler.sample_now()
    tick_seconds = []
    update_seconds = []
    for i in range(args.ticks):
        # A tick's worth of traffic: a few parts done, so the histograms have observations.
        for tid in range(args.transfers):
            bus.emit(
                PartChanged(
                    transfer_id=tid,
                    part_number=per_transfer + 1 + i,
                    state=PartState.DONE,
                    size=8 * MiB,
                    seconds=0.1,
                )
            )
        start = time.perf_counter()
        snapshot = sampler.sample_now()
        middle = time.perf_counter()
        metrics.update(snapshot)
        end = time.perf_counter()
        tick_seconds.append(middle - start)
        update_seconds.append(end - middle)
    tick_seconds.sort()
    update_seconds.sort()
    tick = tick_seconds[len(tick_seconds) // 2]
    update = update_seconds[len(update_seconds) // 2]

    events_per_second = 3 * args.parts_per_second
    share = events_per_second * handler_seconds + (tick + update) / sampler.interval
    print(f"events fed: {len(events):,}")
    print(f"bus alone: {baseline / len(events) * 1e6:.2f} µs/event")
    print(f"sampler handler: {handler_seconds * 1e6:.2f} µs/event (added to the bus)")
    print(
        f"snapshot: {tick * 1e3:.3f} ms median, {tick_seconds[-1] * 1e3:.3f} ms max "
        f"({args.transfers} running × {args.parts:,} parts, {args.queued:,} queued)"
    )
    print(f"prometheus update: {update * 1e3:.3f} ms median")
    print(
        f"at {args.parts_per_second:.0f} parts/s ({events_per_second:.0f} events/s) and "
        f"{1 / sampler.interval:.0f} tick/s: {share * 100:.3f} % of one core"
    )


if __name__ == "__main__":
    main()
