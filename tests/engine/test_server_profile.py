"""A user copies from the SFTP servers partners run: each is probed once (its largest read,
sessions, extensions) and read at what it honours, and every object lands byte-exact."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.sftp import SFTPServerHandler

from sftp_s3_tui.cli import run
from sftp_s3_tui.cli.parser import build_parser, copy_request_of
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions
from sftp_s3_tui.engine.events import EngineEvent, EventBus, SftpLinkMeasured, TransferState
from sftp_s3_tui.engine.sftp import pool as engine_sftp
from sftp_s3_tui.engine.sftp.server_profile import ServerProfile
from tests.support.cli import key_args, source_url
from tests.support.servers import SftpServerInfo
from tests.support.sftp_families import running
from tests.support.synthetic_sftp import (
    WINDOWS_READ_CUT,
    Quirks,
    SyntheticSftpServer,
    SyntheticTree,
)
from tests.support.transfers import MiB, copy, object_bytes, sha256

KiB = 1024
USER, PASSWORD = "partner", "partner-secret"

BANNERS = {"openssh": "OpenSSH", "proftpd": "mod_sftp", "dropbear": "dropbear"}


def profiles_seen(bus: EventBus) -> list[ServerProfile]:
    """The server profiles the run's link events carried, in order."""
    seen: list[ServerProfile] = []

    def on_event(event: EngineEvent) -> None:
        if isinstance(event, SftpLinkMeasured) and event.server is not None:
            seen.append(event.server)

    bus.subscribe(on_event)
    return seen


@pytest.mark.sftp_families
async def test_each_server_family_is_read_at_the_largest_read_it_honours(
    openssh_sftp: SftpServerInfo, sftp_family: str, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """ProFTPD and Dropbear advertise no read limit: without the probe they were read in
    16 KiB blocks (a third to a half of their speed). OpenSSH's advertised limit is used."""
    remote = openssh_sftp.write_file("drop/export.bin", size=3 * MiB + 17, seed=5)
    bus = EventBus()
    profiles = profiles_seen(bus)

    [result] = await copy(
        openssh_sftp.endpoint(), [remote.remote_path], f"s3://{bucket}/in/", s3_endpoint, bus=bus
    )

    assert result.status is TransferState.DONE, result.message
    assert object_bytes(s3, bucket, "in/export.bin") == remote.read_bytes()
    profile = profiles[-1]
    assert BANNERS[sftp_family] in profile.banner
    assert profile.sftp_version == 3
    assert profile.posix_rename
    if sftp_family == "openssh":
        assert profile.read_source == "limits@openssh.com"
        assert profile.read_bytes == profile.advertised_read_bytes >= 64 * KiB
    else:
        assert profile.advertised_read_bytes == 0
        assert (profile.read_source, profile.read_bytes) == ("probed", 256 * KiB)
    assert f"reads {profile.read_bytes // KiB} KiB ({profile.read_source})" in profile.summary()


@pytest.fixture
def tree() -> SyntheticTree:
    """Three files of 1–3 MiB (each several probe sizes long)."""
    return SyntheticTree(3, min_size=1 * MiB, max_size=3 * MiB)


async def copy_tree(
    server: SyntheticSftpServer,
    tree: SyntheticTree,
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    bucket: str,
    *,
    bus: EventBus | None = None,
    **endpoint: Any,
) -> list[Any]:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line + "\n")
    sftp = SftpEndpoint(
        "127.0.0.1",
        server.port,
        username=USER,
        password=PASSWORD,
        known_hosts=str(known_hosts),
        use_agent=False,
        **endpoint,
    )
    options = TransferOptions(part_size=5 * MiB)
    return await copy(sftp, ["/many/"], f"s3://{bucket}/in/", s3_endpoint, options=options, bus=bus)


def assert_tree_landed(s3: Any, bucket: str, tree: SyntheticTree, results: list[Any]) -> None:
    assert [r.status for r in results] == [TransferState.DONE] * tree.count, [
        r.message for r in results
    ]
    for index in range(tree.count):
        body = object_bytes(s3, bucket, f"in/{tree.name(index)}")
        assert sha256(body) == tree.sha256(index)


async def test_a_windows_server_that_cuts_reads_at_100_kib_is_read_in_100_kib_blocks(
    tree: SyntheticTree,
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Windows OpenSSH answers reads above 100 KiB with 102,400 bytes (Win32-OpenSSH #1395):
    the short answer is data, not EOF; the probe finds the cut and reads use it, so no read
    after the probe is cut. (Those releases advertise no ``limits@openssh.com``: neither
    does the emulation.)"""
    without_limits = [e for e in SFTPServerHandler._extensions if e[0] != b"limits@openssh.com"]
    monkeypatch.setattr(SFTPServerHandler, "_extensions", without_limits)
    quirks = Quirks(cut_reads_above=WINDOWS_READ_CUT)
    bus = EventBus()
    profiles = profiles_seen(bus)
    async with SyntheticSftpServer(tree, quirks, users={USER: PASSWORD}) as server:
        results = await copy_tree(server, tree, tmp_path, s3_endpoint, bucket, bus=bus)
        sizes = server.quirk_stats.read_sizes

    assert_tree_landed(s3, bucket, tree, results)
    profile = profiles[-1]
    assert (profile.read_bytes, profile.short_read_bytes) == (WINDOWS_READ_CUT, WINDOWS_READ_CUT)
    assert "cuts reads to 102,400 bytes" in profile.summary()
    cut = [size for size in sizes if size > WINDOWS_READ_CUT]
    assert len(cut) == 2  # the probe's 128 KiB and 256 KiB reads, nothing after them


async def copy_pinned(
    tree: SyntheticTree, read_bytes: int, tmp_path: Path, s3_endpoint: S3Endpoint, bucket: str
) -> tuple[list[Any], list[int]]:
    """Copy ``tree`` from a server that cuts reads as Windows OpenSSH does, at a pinned read
    size; returns the results and the read sizes the server was asked for."""
    quirks = Quirks(cut_reads_above=WINDOWS_READ_CUT)
    async with SyntheticSftpServer(tree, quirks, users={USER: PASSWORD}) as server:
        results = await copy_tree(
            server, tree, tmp_path, s3_endpoint, bucket, read_block_bytes=read_bytes
        )
        return results, server.quirk_stats.read_sizes


async def test_a_pinned_read_size_is_used_without_probing(
    tree: SyntheticTree, tmp_path: Path, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A server that misbehaves under probing: the endpoint pins the read size."""
    results, sizes = await copy_pinned(tree, 64 * KiB, tmp_path, s3_endpoint, bucket)

    assert_tree_landed(s3, bucket, tree, results)
    assert max(sizes) == 64 * KiB


async def test_a_one_block_file_answered_short_is_read_to_its_end(
    tmp_path: Path, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A file that fits one read is read with one request; a server that answers it with
    less (a pinned read size above what it honours) is read on from there, never taken for
    a file that shrank."""
    small = SyntheticTree(3, min_size=150 * KiB, max_size=250 * KiB)
    results, sizes = await copy_pinned(small, 256 * KiB, tmp_path, s3_endpoint, bucket)

    assert_tree_landed(s3, bucket, small, results)
    asked_whole = sorted(size for size in sizes if size > WINDOWS_READ_CUT)
    assert asked_whole == sorted(small.size(i) for i in range(small.count))  # one each, cut


async def test_a_server_refusing_a_second_connection_is_copied_exact(
    tree: SyntheticTree,
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A far host (every host counts as far here) gets up to 4 connections; this server
    takes one and refuses the rest: the files still land exact, over the one it took."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    quirks = Quirks(max_connections=1)
    async with SyntheticSftpServer(tree, quirks, users={USER: PASSWORD}) as server:
        results = await copy_tree(server, tree, tmp_path, s3_endpoint, bucket, connections=4)
        refused = server.quirk_stats.refused_connections

    assert_tree_landed(s3, bucket, tree, results)
    assert refused >= 1


async def test_a_server_granting_one_session_per_connection_is_copied_exact(
    tree: SyntheticTree,
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Appliances and MFT suites grant one SFTP session per SSH connection: the engine never
    opens a second one on a connection (listing, probes, RTT samples and reads share it), so
    with several connections every file still lands exact and no session is refused."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    quirks = Quirks(one_session_per_connection=True)
    async with SyntheticSftpServer(tree, quirks, users={USER: PASSWORD}) as server:
        results = await copy_tree(server, tree, tmp_path, s3_endpoint, bucket, connections=4)
        stats = server.quirk_stats
        assert_tree_landed(s3, bucket, tree, results)
        assert stats.sessions >= 1 and stats.refused_sessions == 0
        # The quirk bites: a client that starts a second session on its connection fails.
        async with (
            asyncssh.connect(
                "127.0.0.1",
                server.port,
                username=USER,
                password=PASSWORD,
                known_hosts=None,
                client_keys=None,
                agent_path=None,
            ) as conn,
            conn.start_sftp_client() as first,
        ):
            await first.stat("/many")
            with pytest.raises((asyncssh.Error, OSError)):
                async with conn.start_sftp_client() as second:
                    await second.stat("/many")
        assert stats.refused_sessions == 1


async def test_a_server_refusing_concurrent_opens_of_a_file_is_copied_exact(
    tree: SyntheticTree,
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big file on a far host is opened once per connection; this server refuses a
    second open of a file that is open: the parts are read over the handle it granted."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    # Reads wait (at most 30 s) for the refusal: on a quiet machine the 12 MiB were read
    # before the second connection had logged in, so no second open ever came.
    quirks = Quirks(exclusive_opens=True, hold_reads_until_refused_open=30.0)
    big = SyntheticTree(1, min_size=12 * MiB, max_size=12 * MiB)
    async with SyntheticSftpServer(big, quirks, users={USER: PASSWORD}) as server:
        results = await copy_tree(server, big, tmp_path, s3_endpoint, bucket, connections=4)
        refused = server.quirk_stats.refused_opens

    assert_tree_landed(s3, bucket, big, results)
    assert refused >= 1


async def copy_json(argv: list[str], capsys: pytest.CaptureFixture[str], **env: str) -> list[Any]:
    """``sftp-s3-tui copy ARGV --json`` as cli/main.py runs it, on the test's loop (so the
    test's servers keep serving and a monkeypatched pool applies): its file rows."""
    args = build_parser().parse_args(["copy", *argv, "--json"])
    code = await run.run_copy(copy_request_of(args, {**os.environ, **env}))
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0, rows
    return [row for row in rows if "key" in row]


async def test_a_server_refusing_a_second_connection_shows_a_limit_of_one_in_json(
    tree: SyntheticTree,
    tmp_path: Path,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An appliance takes one login per user: a far host's run asks for 4 connections, the
    server refuses the second, and every file's ``--json`` row says the server granted one
    (``refused at 2``); the files land over the one it took. (Its reads wait for the
    refusal, so the rows always come after it, however fast the machine.)"""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    quirks = Quirks(max_connections=1, hold_reads_until_refused_connection=30.0)
    async with SyntheticSftpServer(tree, quirks, users={USER: PASSWORD}) as server:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(server.known_hosts_line + "\n")
        assert s3_endpoint.endpoint_url
        rows = await copy_json(
            [
                f"sftp://{USER}@127.0.0.1:{server.port}/many/",
                f"s3://{bucket}/in/",
                "--known-hosts",
                str(known_hosts),
                "--connections",
                "4",
                "--endpoint-url",
                s3_endpoint.endpoint_url,
                "--path-style",
                "--no-agent",
            ],
            capsys,
            SFTP_PASSWORD=PASSWORD,
        )
        refused = server.quirk_stats.refused_connections

    assert refused >= 1
    assert sorted(r["key"] for r in rows) == [f"in/{tree.name(i)}" for i in range(tree.count)]
    for row in rows:
        assert row["status"] == "done"
        lanes = {k: row["server"][k] for k in LANE_FIELDS}
        assert lanes == {
            "connections_asked": 4,
            "granted_connections": 1,
            "connection_limit": 1,
            "connection_limit_source": "refused at 2",
        }
    profile = ServerProfile(connections_asked=4, connections_granted=1, connections_refused=3)
    assert "grants 1 of 4 connections (refused at 2)" in profile.summary()
    for index in range(tree.count):
        assert sha256(object_bytes(s3, bucket, f"in/{tree.name(index)}")) == tree.sha256(index)


LANE_FIELDS = (
    "connections_asked",
    "granted_connections",
    "connection_limit",
    "connection_limit_source",
)


async def test_openssh_grants_every_connection_asked(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sshd (MaxSessions 64) takes every connection a far host's run asks for: no limit in
    the ``--json`` rows; three lanes leased at once are three granted."""
    monkeypatch.setattr(engine_sftp, "FAR_RTT_SECONDS", 0.0)
    for n in range(3):
        openssh_sftp.write_file(f"drop/f{n}.bin", size=2 * MiB + n, seed=n)
    rows = await copy_json(
        [
            source_url(openssh_sftp, "drop/"),
            f"s3://{bucket}/in/",
            *key_args(openssh_sftp, s3_endpoint),
            "--connections",
            "3",
            "--files",
            "3",
        ],
        capsys,
    )
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    for row in rows:
        server = row["server"]
        assert (server["connections_asked"], server["connection_limit"]) == (3, 0)
        assert server["connection_limit_source"] == ""
        assert 1 <= server["granted_connections"] <= 3  # the others may still be logging in

    endpoint = openssh_sftp.endpoint(connections=3)
    async with engine_sftp.SftpPool(early_logins=False) as pool:
        leases = [await pool.lease(endpoint, slot=n) for n in range(3)]
        profile = pool.server_profile(endpoint)
    assert sorted(lease.slot for lease in leases) == [0, 1, 2]
    assert profile is not None
    assert (profile.connections_asked, profile.connections_granted) == (3, 3)
    assert profile.connection_limit == 0
    assert "3 of 3 connections open" in profile.summary()


async def test_proftpd_taking_one_login_per_user_is_capped_at_one_connection(
    tmp_path: Path,
) -> None:
    """ProFTPD with ``MaxClientsPerUser 1`` (a real server refusing a second connection)
    lets the second login authenticate, then closes it as its SFTP session opens: the
    profile says it grants one (``refused at 2``), and a file leasing that lane, or any
    further one, is lent the first connection instead (no login tried again)."""
    with running("proftpd", tmp_path / "proftpd", proftpd_config="MaxClientsPerUser 1") as info:
        endpoint = info.endpoint(connections=4)
        async with engine_sftp.SftpPool(early_logins=False) as pool:
            first = await pool.lease(endpoint, slot=0)
            second = await pool.lease(endpoint, slot=1)  # refused: lent the first instead
            profile = pool.server_profile(endpoint)
            third = await pool.lease(endpoint, slot=2)  # no login tried: the cap is known

    assert profile is not None and "mod_sftp" in profile.banner
    assert (profile.connections_asked, profile.connections_granted) == (4, 1)
    assert (profile.connection_limit, profile.connection_limit_source) == (1, "refused at 2")
    assert profile.to_json()["connection_limit"] == 1
    assert first.slot == second.slot == third.slot == 0
