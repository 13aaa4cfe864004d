"""Each SFTP host's link figures (RTT, connections, read ceiling): from the engine's event to
the sampler's snapshot to the Prometheus gauges, for made-up events and for a real transfer."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import EventBus, SftpLinkMeasured
from sftp_s3_tui.engine.sftp import pool as engine_sftp
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from sftp_s3_tui.metrics import Sampler, SnapshotMetrics
from sftp_s3_tui.metrics.sampler import MAX_LINK_HOSTS
from tests.support.servers import SftpServerInfo
from tests.support.transfers import object_bytes, open_uploads

MiB = 1 << 20


def link(host: str, rtt: float, connections: int, window: int = 16 * MiB) -> SftpLinkMeasured:
    return SftpLinkMeasured(
        transfer_id=0,
        host=host,
        rtt_seconds=rtt,
        window_bytes=window,
        connections=connections,
        ceiling_bytes_per_second=window * connections / rtt,
    )


def test_the_latest_figures_of_each_host_reach_the_snapshot_and_the_gauges() -> None:
    bus = EventBus()
    sampler = Sampler(bus)
    metrics = SnapshotMetrics()
    sampler.subscribe(metrics.update)
    bus.emit(link("sftp://etl@far.example", 0.1, 1))
    bus.emit(link("sftp://near.example", 0.001, 1))
    bus.emit(link("sftp://etl@far.example", 0.1, 4))  # more connections opened since

    snapshot = sampler.sample_now()

    assert [(s.host, s.connections) for s in snapshot.sftp_links] == [
        ("sftp://etl@far.example", 4),
        ("sftp://near.example", 1),
    ]
    far = snapshot.sftp_links[0]
    assert far.ceiling_bytes_per_second == pytest.approx(16 * MiB * 4 / 0.1)
    value = metrics.registry.get_sample_value
    labels = {"host": "sftp://etl@far.example"}
    assert value("sftp_s3_sftp_rtt_seconds", labels) == pytest.approx(0.1)
    assert value("sftp_s3_sftp_connections", labels) == 4
    assert value("sftp_s3_sftp_read_ceiling_bytes_per_second", labels) == pytest.approx(
        far.ceiling_bytes_per_second
    )
    assert value("sftp_s3_sftp_connections", {"host": "sftp://near.example"}) == 1


def test_the_host_set_is_bounded() -> None:
    bus = EventBus()
    sampler = Sampler(bus)
    for n in range(MAX_LINK_HOSTS + 10):
        bus.emit(link(f"sftp://h{n:03d}.example", 0.01, 1))

    hosts = [s.host for s in sampler.sample_now().sftp_links]

    assert len(hosts) == MAX_LINK_HOSTS
    assert "sftp://h000.example" not in hosts  # the oldest measured went first
    assert f"sftp://h{MAX_LINK_HOSTS + 9:03d}.example" in hosts


async def test_a_real_transfer_s_link_figures_reach_the_registry(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big file over a host treated as far (loopback made 'far' so two connections pay off):
    the registry shows the host's RTT, its two connections and the ceiling they imply."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    remote = openssh_sftp.write_file("link/big.bin", size=21 * MiB + 5, seed=31)
    endpoint = openssh_sftp.endpoint(
        connections=2, window_bytes=8 * MiB, login_stagger_seconds=0.05
    )
    bus = EventBus()
    metrics = SnapshotMetrics()
    async with TransferQueue(s3_endpoint, TransferOptions(part_size=5 * MiB), bus=bus) as queue:
        sampler = Sampler(bus, interval=0.2, buffers=queue.buffers)
        sampler.subscribe(metrics.update)
        jobs = await queue.expand(
            endpoint, openssh_sftp.remote_path("link/big.bin"), parse_s3_url(f"s3://{bucket}/")
        )
        [result] = await queue.run(jobs)
        snapshot = sampler.sample_now()

    assert result.sha256 == remote.sha256
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()
    assert open_uploads(s3, bucket) == []
    [figures] = snapshot.sftp_links
    assert figures.host == endpoint.display
    value = metrics.registry.get_sample_value
    labels = {"host": endpoint.display}
    rtt = value("sftp_s3_sftp_rtt_seconds", labels)
    assert rtt is not None and rtt > 0
    assert value("sftp_s3_sftp_connections", labels) == 2
    assert value("sftp_s3_sftp_read_ceiling_bytes_per_second", labels) == pytest.approx(
        8 * MiB * 2 / rtt
    )
    # The server's profile: OpenSSH advertises 255 KiB reads (limits@openssh.com) and
    # honours them, so that is the read size.
    assert value("sftp_s3_sftp_read_block_bytes", labels) == 255 * 1024
    assert figures.server is not None and figures.server.banner.startswith("SSH-2.0-OpenSSH")
    info = {**labels, "banner": figures.server.banner, "sftp_version": "3"}
    assert value("sftp_s3_sftp_server_info", {**info, "read_source": "limits@openssh.com"}) == 1
    # sshd took both connections asked and refused none; no --move-to: rename not probed.
    assert value("sftp_s3_sftp_connections_granted", labels) == 2
    assert value("sftp_s3_sftp_connection_limit", labels) == 0
    assert value("sftp_s3_sftp_rename_overwrites", labels) == -1
