"""``--verify-readback``: a delivered file is read back over SFTP before it is renamed into
place, and its SHA-256 compared with the bytes read from S3 — which catches a server that
stores other bytes than it was sent, where every size and status says all is well."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sftp_s3_tui.cli.console import ConsoleProgress
from sftp_s3_tui.engine.addresses import S3Location
from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.engine.errors import VerificationFailed
from sftp_s3_tui.engine.events import EngineEvent, EventBus, TransferChecking, TransferFinished
from sftp_s3_tui.engine.plan.delivery import DeliveryTarget
from sftp_s3_tui.engine.sftp.pool import SftpPool
from sftp_s3_tui.engine.sftp.writer import RemoteWriter
from sftp_s3_tui.engine.transfer import delivery_stream
from sftp_s3_tui.engine.transfer.delivery_options import DeliveryOptions
from sftp_s3_tui.engine.transfer.delivery_readback import check_server_hash
from sftp_s3_tui.engine.transfer.delivery_result import DeliveryResult
from sftp_s3_tui.engine.transfer.delivery_run import deliver
from sftp_s3_tui.profiles import (
    DeliverySettings,
    Profile,
    ProfileStore,
    S3Settings,
    SftpAuth,
    SftpSettings,
)
from tests.support.cli import key_args, run_cli
from tests.support.delivery import (
    files_under,
    pattern,
    put_crc64nvme_multipart,
    records,
    target_url,
)
from tests.support.partner_sftp import partner_sftp
from tests.support.servers import SftpServerInfo
from tests.support.watcher import wait_for

from .test_delivery_watch import delivered, results, watch


@pytest.mark.sftp_families
def test_a_delivery_read_back_lands_and_says_so(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    data = pattern(3 * MiB + 11, seed=31)
    s3.put_object(Bucket=bucket, Key="exports/daily.csv", Body=data)

    done = run_cli(
        "copy",
        f"s3://{bucket}/exports/daily.csv",
        target_url(openssh_sftp, "outbound/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "1MiB",
        "--verify-readback",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), summary = records(done.stdout)
    assert row["status"] == "done" and row["verified_by"] == "crc32+size+readback-sha256"
    assert summary["exit_code"] == 0
    assert files_under(openssh_sftp.root / "outbound") == {"daily.csv": data}


def test_a_profile_asking_for_read_back_has_copy_read_back(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """``copy --profile P s3://… sftp://…`` with P's ``[delivery] verify_readback = true``
    reads the file back, no flag needed; ``--verify-server-hash`` adds its check to it, and
    ``--no-verify-readback`` drops the profile's check for one run."""
    data = pattern(2 * MiB + 5, seed=37)
    s3.put_object(Bucket=bucket, Key="exports/ledger.csv", Body=data)
    assert s3_endpoint.endpoint_url
    ProfileStore().save(
        Profile(
            name="readback partner",
            sftp=SftpSettings(
                host=openssh_sftp.host,
                port=openssh_sftp.port,
                user=openssh_sftp.username,
                auth=SftpAuth.KEY,
                key_file=str(openssh_sftp.identity_file),
                known_hosts=str(openssh_sftp.known_hosts),
            ),
            s3=S3Settings(endpoint_url=s3_endpoint.endpoint_url, path_style=True),
            delivery=DeliverySettings(verify_readback=True),
        )
    )
    source = f"s3://{bucket}/exports/ledger.csv"
    args = ("copy", "--profile", "readback partner", source)

    done = run_cli(*args, target_url(openssh_sftp, "outbound/"), "--json")

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["status"] == "done" and row["verified_by"] == "crc32+size+readback-sha256"
    assert files_under(openssh_sftp.root / "outbound") == {"ledger.csv": data}

    both = run_cli(*args, target_url(openssh_sftp, "again/"), "--verify-server-hash", "--json")

    assert both.returncode == 0, both.stderr
    (row,), _ = records(both.stdout)
    assert row["verified_by"] == "crc32+size+readback-sha256"  # OpenSSH cannot hash: said
    assert "not checked by the server's hash" in row["message"]
    assert files_under(openssh_sftp.root / "again") == {"ledger.csv": data}

    without = run_cli(*args, target_url(openssh_sftp, "plain/"), "--no-verify-readback", "--json")

    assert without.returncode == 0, without.stderr
    (row,), _ = records(without.stdout)
    assert row["verified_by"] == "crc32+size"  # the stored checksum and the size, no read-back
    assert files_under(openssh_sftp.root / "plain") == {"ledger.csv": data}


@pytest.mark.sftp_families
def test_the_servers_own_hash_is_asked_where_it_can_hash(
    openssh_sftp: SftpServerInfo, sftp_family: str, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """ProFTPD hashes the file itself (check-file-handle, unannounced under SFTP v3); OpenSSH
    and gesftpserver cannot, which the result says, and the delivery goes on."""
    data = pattern(2 * MiB + 9, seed=36)
    s3.put_object(Bucket=bucket, Key="exports/hashed.csv", Body=data)

    done = run_cli(
        "copy",
        f"s3://{bucket}/exports/hashed.csv",
        target_url(openssh_sftp, "outbound/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--verify-server-hash",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["status"] == "done"
    if sftp_family == "proftpd":
        assert row["verified_by"] == "crc32+size+server-sha256"
    else:
        assert row["verified_by"] == "crc32+size"
        assert (
            "not checked by the server's hash (the server offers no check-file-handle)"
            in (row["message"])
        )
    assert files_under(openssh_sftp.root / "outbound") == {"hashed.csv": data}


@pytest.mark.sftp_families
async def test_an_object_read_by_several_gets_is_read_back_range_by_range(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big object with a full-object CRC64NVME is read by up to four GETs at once (64 MiB
    each at least; 1 MiB here): each GET's range keeps its own SHA-256, and the file read back
    is compared range by range (an empty object too: nothing to read back)."""
    monkeypatch.setattr(delivery_stream, "STREAM_MIN", 1 * MiB)
    data = pattern(6 * MiB + 5, seed=32)
    put_crc64nvme_multipart(s3, bucket, "d/big.bin", data, 5 * MiB)
    s3.put_object(Bucket=bucket, Key="d/empty.bin", Body=b"")
    info = s3.head_object(Bucket=bucket, Key="d/big.bin", ChecksumMode="ENABLED")
    assert info.get("ChecksumCRC64NVME"), "the store keeps no full-object CRC64NVME"
    target = DeliveryTarget(openssh_sftp.endpoint(), openssh_sftp.remote_path("in") + "/", True)
    results: list[DeliveryResult] = []

    await deliver(
        S3Location(bucket, "d/"),
        target,
        s3_endpoint,
        DeliveryOptions(part_size=1 * MiB, verify_readback=True),
        results.append,
    )

    by_key = {r.key: r for r in results}
    assert by_key["d/big.bin"].status == "done", by_key["d/big.bin"].message
    assert by_key["d/big.bin"].verified_by == "crc64nvme+size+readback-sha256"
    assert by_key["d/empty.bin"].status == "done", by_key["d/empty.bin"].message
    assert by_key["d/empty.bin"].verified_by.endswith("+readback-sha256")
    assert files_under(openssh_sftp.root / "in") == {"big.bin": data, "empty.bin": b""}


async def test_a_read_back_tells_its_progress_up_to_the_whole_file(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A long read back is no hang: the engine tells how far it is (TransferChecking, from 0
    to the file's size, before the end), and the CLI's progress block says it on the file's
    line ("reading back N%")."""
    data = pattern(5 * MiB + 7, seed=37)
    s3.put_object(Bucket=bucket, Key="out/long.bin", Body=data)
    target = DeliveryTarget(openssh_sftp.endpoint(), openssh_sftp.remote_path("in") + "/", True)
    bus = EventBus()
    block = ConsoleProgress(bus, enabled=True, console=Console(file=io.StringIO()))
    told: list[EngineEvent] = []
    lines: list[str] = []

    def hear(event: EngineEvent) -> None:  # after the block: it has taken the event in
        if isinstance(event, TransferChecking | TransferFinished):
            told.append(event)
        if isinstance(event, TransferChecking):
            lines.extend(block.lines()[2:])

    bus.subscribe(hear)
    results: list[DeliveryResult] = []
    await deliver(
        S3Location(bucket, "out/long.bin"),
        target,
        s3_endpoint,
        DeliveryOptions(part_size=1 * MiB, verify_readback=True),
        results.append,
        bus=bus,
    )

    (result,) = results
    assert result.status == "done" and result.verified_by.endswith("+readback-sha256")
    checking = [e for e in told if isinstance(e, TransferChecking)]
    assert isinstance(told[-1], TransferFinished)  # every step of it before the end
    assert {e.check for e in checking} == {"reading back"}
    done = [e.bytes_done for e in checking]
    assert done[0] == 0 and done[-1] == len(data) == checking[-1].size
    assert done == sorted(done) and len(set(done)) > 2  # steps between, in order
    assert any("long.bin · reading back 0%" in line for line in lines), lines
    assert any("long.bin · reading back 100%" in line for line in lines), lines
    assert files_under(openssh_sftp.root / "in") == {"long.bin": data}


async def test_a_server_that_stores_other_bytes_fails_the_read_back_and_leaves_nothing(
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = pattern(2 * MiB + 3, seed=33)
    s3.put_object(Bucket=bucket, Key="feed.bin", Body=data)
    async with partner_sftp(tmp_path, "flips-a-byte", monkeypatch) as server:
        args = [
            f"s3://{bucket}/feed.bin",
            target_url(server, "box/"),
            *key_args(server, s3_endpoint),
        ]

        checked = await asyncio.to_thread(run_cli, "copy", *args, "--verify-readback")
        left = files_under(server.root / "box")
        unchecked = await asyncio.to_thread(run_cli, "copy", *args, "--json")

    assert checked.returncode == 1
    errors = [line for line in checked.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1 and "Traceback" not in checked.stderr, checked.stderr
    assert "Read back over SFTP, bytes 0–" in errors[0]
    assert "differ from the bytes read from S3" in errors[0]
    assert left == {}  # the temporary file was removed; nothing at the final name
    # Without the read back the same server's file is taken for whole: size and MD5 of the
    # bytes read from S3 both match, and the flipped byte lands.
    assert unchecked.returncode == 0, unchecked.stderr
    (row,), _ = records(unchecked.stdout)
    assert row["verified_by"] == "crc32+size"
    assert files_under(server.root / "box")["feed.bin"] != data


def test_a_watch_reads_each_delivery_back(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\n")

    watcher = watch(openssh_sftp, s3_endpoint, bucket, "--verify-readback")
    try:
        wait_for(lambda: delivered(watcher, "a.csv") == 1)
    finally:
        code, err = watcher.stop()

    assert code == 0, err
    (row,) = results(watcher)
    assert row["verified_by"] == "crc32+size+readback-sha256"
    assert files_under(openssh_sftp.root / "partner") == {"a.csv": b"a,1\n"}


def test_verify_readback_the_other_way_is_one_usage_line(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    done = run_cli(
        "copy",
        target_url(openssh_sftp, "drop/x.csv"),
        f"s3://{bucket}/in/",
        *key_args(openssh_sftp, s3_endpoint),
        "--verify-readback",
    )

    assert done.returncode == 2
    assert "--verify-readback is for S3 → SFTP delivery" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.sftp_families
async def test_the_servers_own_hash_of_a_file_that_differs_is_one_line(
    openssh_sftp: SftpServerInfo, sftp_family: str
) -> None:
    """The server's SHA-256 of the whole file against the one of the bytes read: a
    difference names the file (only ProFTPD can hash; the others say they cannot)."""
    data = os.urandom(5 * MiB + 7)
    folder = openssh_sftp.root / "h"
    folder.mkdir()
    (folder / "f.bin").write_bytes(data)
    async with SftpPool() as pool:
        writer = RemoteWriter(pool, openssh_sftp.endpoint(), openssh_sftp.remote_path("h/f.bin"))
        await writer.connect()
        writer.temp_path = writer.final_path  # the file to hash
        try:
            matched = await check_server_hash(writer, len(data), hashlib.sha256(data))
            if sftp_family == "proftpd":
                other = hashlib.sha256(data[:-1] + b"?")
                with pytest.raises(VerificationFailed, match=r"The server's SHA-256 of .*f\.bin"):
                    await check_server_hash(writer, len(data), other)
        finally:
            writer.release()

    if sftp_family == "proftpd":
        assert matched == (True, "")
    else:
        assert matched == (False, "the server offers no check-file-handle")
