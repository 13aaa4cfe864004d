"""Reading from servers that lie or fail, and from far ones: what lands is whole or nothing.

The misbehaving server (tests/support/sftpfaults.py) reports wrong or missing sizes and answers
reads with EIO; the fault proxy in front of sshd counts connections and bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import (
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    SftpLinkMeasured,
    TransferState,
)
from sftp_s3_tui.engine.sftp import pool as engine_sftp
from sftp_s3_tui.engine.sftp.pool import SftpPool
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import SftpServerInfo
from tests.support.sftpfaults import SftpFaults, faulty_sftp_server
from tests.support.transfers import MiB, copy, keys, open_uploads

from .conftest import assert_nothing_written, assert_object
from .s3faults import LATE, FaultyS3Server

OPTIONS = TransferOptions(part_size=5 * MiB, parts_in_flight=4, attempts=5, backoff_seconds=0.05)


@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[SftpServerInfo]:
    async with faulty_sftp_server(tmp_path / "faulty-sftp") as info:
        yield info


def faults_of(info: SftpServerInfo) -> SftpFaults:
    return info.server.faults  # type: ignore[no-any-return]


@pytest.mark.parametrize("size", [12 * MiB, 3 * MiB], ids=["multipart", "single-put"])
async def test_a_size_1_mib_short_of_the_content_is_not_published(
    faulty: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, size: int
) -> None:
    """The server says 11 MiB for a 12 MiB file: reading stops at 11, so only the EOF check
    can tell. Nothing may land (not an 11 MiB object reported done)."""
    remote = faulty.write_file("in/short.bin", size=size, seed=5)
    faults_of(faulty).size_delta["short.bin"] = -MiB

    [result] = await copy(
        faulty.endpoint(), [remote.remote_path], f"s3://{bucket}/", s3_endpoint, options=OPTIONS
    )

    assert result.status is TransferState.FAILED
    assert "changed while it was read" in result.message
    assert f"past the {size - MiB} bytes" in result.message
    assert_nothing_written(s3, bucket)


async def test_the_size_check_after_the_last_read_goes_out_while_parts_still_upload(
    faulty: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    """The fstat that proves the source unchanged is sent once every part is read, not
    after the last upload is answered (a round trip less at the end of a far file); the
    object is published only after it passed."""
    remote = faulty.write_file("in/end.bin", size=12 * MiB, seed=8)
    answered_at_fstat: list[int] = []
    faults_of(faulty).on_fstat = lambda name: answered_at_fstat.append(
        s3_faults.answered.count("UploadPart")
    )
    s3_faults.fail("UploadPart", LATE, delay=0.4, times=None)

    [result] = await copy(
        faulty.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        faulty_endpoint,
        options=OPTIONS,
    )

    assert result.status is TransferState.DONE, result.message
    assert_object(s3, bucket, "end.bin", remote.read_bytes())
    assert answered_at_fstat, "no fstat was served"
    answers = s3_faults.answered
    assert answered_at_fstat[-1] < answers.count("UploadPart")
    last_part = len(answers) - 1 - answers[::-1].index("UploadPart")
    assert last_part < answers.index("CompleteMultipartUpload")


async def test_the_end_of_a_run_does_not_wait_for_the_answers_to_handle_closes(
    faulty: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A file's handle closes in the background; logging out does not wait for the answer
    (the server closes a session's handles itself): a close that never answers holds the
    run up neither for its 5 s timeout nor at all."""
    remote = faulty.write_file("in/close.bin", size=2 * MiB, seed=9)
    faults_of(faulty).hang_close.add("close.bin")
    loop = asyncio.get_running_loop()

    async with TransferQueue(s3_endpoint, OPTIONS) as queue:
        jobs = await queue.expand(
            faulty.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )
        [result] = await queue.run(jobs)
        assert result.status is TransferState.DONE, result.message
        began = loop.time()
    logged_out_in = loop.time() - began

    assert logged_out_in < 2.0
    assert_object(s3, bucket, "close.bin", remote.read_bytes())


async def test_a_missing_size_is_refused_not_taken_for_zero(
    faulty: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = faulty.write_file("in/nosize.bin", size=2 * MiB, seed=6)
    faults_of(faulty).no_size.add("nosize.bin")

    [result] = await copy(
        faulty.endpoint(), [remote.remote_path], f"s3://{bucket}/", s3_endpoint, options=OPTIONS
    )

    assert result.status is TransferState.FAILED
    assert "reports no size for" in result.message and "nosize.bin" in result.message
    assert_nothing_written(s3, bucket)


async def test_io_errors_fail_their_files_alone_without_resetting_the_shared_connection(
    faulty: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """4 files whose reads fail with EIO beside a healthy 12 MiB file: the healthy one lands
    without a single retry, the 4 fail once each with the server's error, and the engine
    keeps its one SSH connection (before: 10 connections, 3 retries of the healthy file)."""
    healthy = faulty.write_file("in/healthy.bin", size=12 * MiB, seed=7)
    for n in range(4):
        faulty.write_file(f"in/bad{n}.bin", size=6 * MiB, seed=n)
        faults_of(faulty).eio_on_read.add(f"bad{n}.bin")
    bus = EventBus()
    retried: list[PartChanged] = []
    bus.subscribe(
        lambda e: (
            retried.append(e)
            if isinstance(e, PartChanged) and e.state is PartState.RETRIED
            else None
        )
    )

    results = await copy(
        faulty.endpoint(), ["/in/"], f"s3://{bucket}/", s3_endpoint, options=OPTIONS, bus=bus
    )

    by_key = {r.key: r for r in results}
    assert by_key["healthy.bin"].status is TransferState.DONE
    assert by_key["healthy.bin"].sha256 == healthy.sha256
    for n in range(4):
        bad = by_key[f"bad{n}.bin"]
        assert bad.status is TransferState.FAILED
        assert "failed reading" in bad.message and "Input/output error" in bad.message
        assert "connection may have dropped" not in bad.message
    assert retried == []  # an I/O error is not retried as a dropped connection
    assert faults_of(faulty).sessions == 1
    assert keys(s3, bucket) == ["healthy.bin"]
    assert_object(s3, bucket, "healthy.bin", healthy.read_bytes())
    assert open_uploads(s3, bucket) == []


async def test_a_big_file_on_a_far_host_is_read_over_several_connections(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the host counted as far (threshold 0 s here, since loopback is near), a 40 MiB
    file's parts are read over 3 connections at once — never more than the cap."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    remote = via_proxy.write_file("in/big.bin", size=40 * MiB + 17, seed=8)
    bus = EventBus()
    links: list[SftpLinkMeasured] = []
    bus.subscribe(lambda e: links.append(e) if isinstance(e, SftpLinkMeasured) else None)
    endpoint = via_proxy.endpoint(connections=3, login_stagger_seconds=0.05)

    async with SftpPool(on_link=bus.emit) as pool:
        await _open_connections(pool, endpoint, 3)
        results = await _copy_with_pool(
            pool, endpoint, remote.remote_path, bucket, s3_endpoint, bus
        )

    [result] = results
    assert result.status is TransferState.DONE and result.sha256 == remote.sha256
    assert sshd_proxy.connections == 3
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    last = links[-1]
    assert last.connections == 3 and last.rtt_seconds > 0
    assert last.window_bytes == endpoint.window_bytes
    assert last.ceiling_bytes_per_second == pytest.approx(
        endpoint.window_bytes * 3 / last.rtt_seconds
    )


async def test_many_files_on_a_far_host_spread_over_the_connection_cap(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    files = [via_proxy.write_file(f"in/f{n:02d}.csv", size=64 * 1024, seed=n) for n in range(24)]

    results = await copy(
        via_proxy.endpoint(connections=2, login_stagger_seconds=0.05),
        [via_proxy.remote_path("in/")],
        f"s3://{bucket}/",
        s3_endpoint,
    )

    assert [r.status for r in results] == [TransferState.DONE] * 24
    assert 1 <= sshd_proxy.connections <= 2
    assert {r.key: r.sha256 for r in results} == {
        f"f{n:02d}.csv": f.sha256 for n, f in enumerate(files)
    }


async def test_a_far_host_is_measured_and_read_over_several_connections(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """40 ms of round trip through the proxy (no bandwidth cap): the pool measures it, reports
    the ceiling it implies, and reads the big file over its connections.

    Parts never wait for a further login (they use a handle already open), so whether a login
    finishes before the last part is a race with the link's speed; the connections are opened
    first here so that the spread, not the race, is what is tested."""
    sshd_proxy.set_rtt(0.04)
    remote = via_proxy.write_file("in/far.bin", size=24 * MiB + 1, seed=14)
    bus = EventBus()
    links: list[SftpLinkMeasured] = []
    bus.subscribe(lambda e: links.append(e) if isinstance(e, SftpLinkMeasured) else None)
    endpoint = via_proxy.endpoint(connections=3, login_stagger_seconds=0.05)

    async with SftpPool(on_link=bus.emit) as pool:
        await _open_connections(pool, endpoint, 3)
        [result] = await _copy_with_pool(
            pool, endpoint, remote.remote_path, bucket, s3_endpoint, bus
        )

    assert result.status is TransferState.DONE and result.sha256 == remote.sha256
    assert sshd_proxy.connections == 3
    assert links and min(link.rtt_seconds for link in links) >= 0.04
    assert max(link.connections for link in links) == 3, links
    last = links[-1]
    assert last.ceiling_bytes_per_second == pytest.approx(
        endpoint.window_bytes * 3 / last.rtt_seconds
    )
    assert_object(s3, bucket, "far.bin", remote.read_bytes())


async def test_a_near_host_uses_one_connection(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host 2 ms away (the latency proxy's delay, not loopback's luck) against a 50 ms
    threshold: however busy the machine, the minimum of the RTT samples says near, so one
    connection reads the whole file (a busy moment once made it 4)."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.05)
    sshd_proxy.set_rtt(0.002)
    remote = via_proxy.write_file("in/big.bin", size=20 * MiB, seed=9)
    [result] = await copy(
        via_proxy.endpoint(), [remote.remote_path], f"s3://{bucket}/", s3_endpoint, options=OPTIONS
    )
    assert result.status is TransferState.DONE and result.sha256 == remote.sha256
    assert sshd_proxy.connections == 1


async def test_a_far_handshake_starts_the_other_logins_before_the_first_ends(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy
) -> None:
    """300 ms of round trip: the first login's key exchange and authentication are each far
    beyond 50 ms per round trip, so the other connections' logins are under way when the
    first login returns (they used to wait for it and its RTT samples); a file that then
    leases them finds them, with no further connection."""
    sshd_proxy.set_rtt(0.3)
    endpoint = via_proxy.endpoint(connections=3, login_stagger_seconds=0.05)

    async with SftpPool() as pool:
        await pool.client(endpoint)
        begun_with_the_first = pool.connections_begun(endpoint)
        leases = [await pool.lease(endpoint, slot=slot) for slot in (1, 2)]
        for lease in leases:
            pool.release(endpoint, lease)

    assert begun_with_the_first == 3
    assert sshd_proxy.connections == 3


async def test_a_refused_far_login_is_not_tried_again_by_the_early_logins(
    via_proxy: SftpServerInfo, sshd_proxy: FaultProxy, openssh_sftp: SftpServerInfo, tmp_path: Path
) -> None:
    """The other logins of a far host start only once the first is authenticated; when it
    is refused, none begins: the server sees one failed login, not four (fail2ban and
    MaxAuthTries count them)."""
    import asyncssh

    from sftp_s3_tui.engine.errors import SftpAuthError

    stranger = tmp_path / "id_stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(stranger)
    stranger.chmod(0o600)
    sshd_proxy.set_rtt(0.3)
    endpoint = via_proxy.endpoint(connections=4, identity_files=(str(stranger),))
    sshd_log = openssh_sftp.log_file
    assert sshd_log is not None
    log_before = len(sshd_log.read_text())

    async with SftpPool() as pool:
        with pytest.raises(SftpAuthError):
            await pool.client(endpoint)
        begun_when_refused = pool.connections_begun(endpoint)  # cancelled, still holding
        deadline = asyncio.get_running_loop().time() + 30
        while pool.connections_begun(endpoint) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)  # the early logins end (cancelled, or refused)
        assert pool.connections_begun(endpoint) == 0

    assert begun_when_refused == 0  # no early login before the first one was let in
    failed = sshd_log.read_text()[log_before:].count("Failed publickey")
    assert failed == 1


async def test_a_near_host_logs_in_once_for_a_small_file(openssh_sftp: SftpServerInfo) -> None:
    """Loopback, no proxy, four connections allowed: the handshake never says far, so a small
    file (a stat, then its bytes read over a leased connection) costs one login."""
    remote = openssh_sftp.write_file("in/small.csv", size=64 * 1024, seed=3)
    endpoint = openssh_sftp.endpoint(connections=4)

    async with SftpPool() as pool:
        entry = await pool.stat(endpoint, remote.remote_path)
        lease = await pool.lease(endpoint)
        try:
            async with lease.client.open(remote.remote_path, "rb") as file:
                data = await file.read()
        finally:
            pool.release(endpoint, lease)
        begun = pool.connections_begun(endpoint)

    assert entry.size == len(data) and data == remote.read_bytes()
    assert begun == 1


async def test_one_slow_round_trip_at_login_does_not_make_a_near_host_far(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The login's round trips take 200 ms until a quarter of a second after the first
    sample (a busy moment), then 2 ms: against a 50 ms threshold the minimum of all the
    samples decides, so the host is near and one connection reads the file (the first
    three samples, all slow, said far, and 4 connections were opened)."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.05)
    sshd_proxy.set_rtt(0.2)
    remote = via_proxy.write_file("in/big.bin", size=20 * MiB, seed=11)
    bus = EventBus()
    calm: list[asyncio.TimerHandle] = []

    def after_the_first_sample(event: EngineEvent) -> None:
        if isinstance(event, SftpLinkMeasured) and not calm:  # the busy moment ends
            calm.append(asyncio.get_running_loop().call_later(0.25, sshd_proxy.set_rtt, 0.002))

    bus.subscribe(after_the_first_sample)
    [result] = await copy(
        via_proxy.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=OPTIONS,
        bus=bus,
    )

    assert result.status is TransferState.DONE and result.sha256 == remote.sha256
    assert sshd_proxy.connections == 1


async def test_bwlimit_holds_the_read_rate_within_15_percent(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    """``bwlimit`` 4 MB/s on a 12 MiB file: the rate measured over the transfer's reads."""
    limit = 4_000_000
    remote = openssh_sftp.write_file("in/paced.bin", size=12 * MiB, seed=10)
    bus = EventBus()
    stamps: list[EngineEvent] = []
    bus.subscribe(lambda e: stamps.append(e) if isinstance(e, PartChanged) else None)

    [result] = await copy(
        openssh_sftp.endpoint(bwlimit_bytes_per_second=limit),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=OPTIONS,
        bus=bus,
    )

    assert result.status is TransferState.DONE and result.sha256 == remote.sha256
    reads = [e for e in stamps if isinstance(e, PartChanged) and e.state is PartState.READING]
    read_done = [e for e in stamps if isinstance(e, PartChanged) and e.state is PartState.UPLOADING]
    seconds = max(e.at for e in read_done) - min(e.at for e in reads)
    rate = remote.size / seconds
    assert 0.85 * limit <= rate <= 1.15 * limit, f"{rate / 1e6:.2f} MB/s for a 4 MB/s limit"


async def _open_connections(pool: SftpPool, endpoint: Any, count: int) -> None:
    """Log in ``count`` connections to the host before the copy (each measures the RTT)."""
    for slot in range(count):
        pool.release(endpoint, await pool.lease(endpoint, slot=slot))


async def _copy_with_pool(
    pool: SftpPool,
    endpoint: Any,
    path: str,
    bucket: str,
    s3_endpoint: S3Endpoint,
    bus: EventBus,
) -> Any:
    from sftp_s3_tui.engine.addresses import parse_s3_url
    from sftp_s3_tui.engine.transfer.queue import TransferQueue

    async with TransferQueue(s3_endpoint, OPTIONS, bus=bus, sftp=pool) as queue:
        jobs = await queue.expand(endpoint, path, parse_s3_url(f"s3://{bucket}/"))
        return await queue.run(jobs)
