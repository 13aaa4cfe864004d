"""Gauges of a watch's drop expectations and the run id of the current copy or poll.

Part of :class:`~.prometheus.SnapshotMetrics`' registry, so they are pushed and served with
the rest; the watch sets them after each poll (they are not sampled from engine events).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge

from ..engine.events import Direction


class DropCounts(Protocol):
    """A drop's counts (the watch's ``DropStatus``)."""

    @property
    def name(self) -> str: ...
    @property
    def expected(self) -> int: ...
    @property
    def arrived(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def missing(self) -> int: ...


class DropGauges:
    """``sftp_s3_drop_{expected,arrived,late,missing}_files{drop=…,direction=…}`` and
    ``sftp_s3_run_info{run_id=…,command=…}``.

    ``direction`` (``sftp_to_s3`` for an upload watch's drop, ``s3_to_sftp`` for a
    delivery watch's) tells two drops of the same pattern apart; queries by ``drop`` alone
    (the dashboard's ``max by (drop)``) read them as before."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.expected = Gauge(
            "sftp_s3_drop_expected_files",
            "Files a drop expects by its deadline.",
            ["drop", "direction"],
            registry=r,
        )
        self.arrived = Gauge(
            "sftp_s3_drop_arrived_files",
            "Files of the tracked drop that landed.",
            ["drop", "direction"],
            registry=r,
        )
        self.late = Gauge(
            "sftp_s3_drop_late_files",
            "Files of the tracked drop that landed after its deadline.",
            ["drop", "direction"],
            registry=r,
        )
        self.missing = Gauge(
            "sftp_s3_drop_missing_files",
            "Files still missing once the drop's deadline has passed (0 before it).",
            ["drop", "direction"],
            registry=r,
        )
        self.run_info = Gauge(
            "sftp_s3_run_info",
            "1 for the current copy or watch poll; its run_id is the manifest's and lineage's.",
            ["run_id", "command"],
            registry=r,
        )

    def show(
        self, drops: Iterable[DropCounts], direction: Direction = Direction.SFTP_TO_S3
    ) -> None:
        """Each drop's counts, labelled with the watch's direction."""
        for drop in drops:
            labels = {"drop": drop.name, "direction": direction.value}
            self.expected.labels(**labels).set(drop.expected)
            self.arrived.labels(**labels).set(drop.arrived)
            self.late.labels(**labels).set(drop.late)
            self.missing.labels(**labels).set(drop.missing)

    def run(self, run_id: str, command: str) -> None:
        """The run now under way (the previous one's series goes)."""
        self.run_info.clear()
        self.run_info.labels(run_id=run_id, command=command).set(1)
