"""A crash (kill -9) halfway through a large file, then the same copy again: it resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import EventBus, PartChanged, TransferState
from sftp_s3_tui.engine.resume.journal import Journal, JournalClaim
from sftp_s3_tui.paths import journal_dir
from tests.support.servers import SftpServerInfo
from tests.support.transfers import copy, keys, object_bytes, open_uploads, sha256, stored_sha256

MiB = 1 << 20
SIZE = 300 * MiB


def copy_command(server: SftpServerInfo, remote: str, bucket: str, s3: S3Endpoint) -> list[str]:
    assert s3.endpoint_url
    return [
        sys.executable,
        "-m",
        "sftp_s3_tui",
        "copy",
        f"sftp://{server.username}@{server.host}:{server.port}{remote}",
        f"s3://{bucket}/",
        "--identity",
        str(server.identity_file),
        "--known-hosts",
        str(server.known_hosts),
        "--endpoint-url",
        s3.endpoint_url,
        "--no-agent",
        "--part-size",
        "5MiB",
        "--json",
    ]


def journaled_parts() -> int:
    folder = journal_dir()
    if not folder.is_dir():
        return 0
    return sum(p.read_text().count('"part"') for p in folder.glob("*.jsonl"))


async def crash_when(command: list[str], parts: int) -> None:
    """Run the copy and kill -9 it once ``parts`` parts are journaled."""
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while journaled_parts() < parts and process.returncode is None and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert process.returncode is None, "the copy finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def run(command: list[str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kill_9_then_rerun_resumes_and_rereads_less_than_half(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = embedded_sftp.write_file("big.bin", size=SIZE, seed=11)
    command = copy_command(embedded_sftp, remote.remote_path, bucket, s3_endpoint)
    stats = embedded_sftp.server.stats

    await crash_when(command, parts=int(SIZE / (5 * MiB) * 0.7))
    assert await asyncio.to_thread(open_uploads, s3, bucket), "kill -9 leaves the upload open"
    stats.reset()
    code, out, err = await run(command)

    assert code == 0, err
    assert "resuming" in err or '"resumed_parts"' in out
    assert embedded_sftp.server.bytes_read < SIZE / 2
    body = await asyncio.to_thread(object_bytes, s3, bucket, "big.bin")
    assert sha256(body) == remote.sha256
    assert await asyncio.to_thread(stored_sha256, s3, bucket, "big.bin") == remote.sha256
    assert await asyncio.to_thread(open_uploads, s3, bucket) == []
    assert list(journal_dir().glob("*.jsonl")) == []


async def test_changed_source_restarts_from_zero(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = embedded_sftp.write_file("big.bin", size=SIZE, seed=12)
    command = copy_command(embedded_sftp, remote.remote_path, bucket, s3_endpoint)

    await crash_when(command, parts=10)
    changed = embedded_sftp.write_file("big.bin", size=SIZE - 1, seed=13)
    os.utime(Path(changed.local_path), (2_000_000_000, 2_000_000_000))
    code, _, err = await run(command)

    assert code == 0, err
    assert "restarting from zero" in err
    body = await asyncio.to_thread(object_bytes, s3, bucket, "big.bin")
    assert sha256(body) == changed.sha256
    assert await asyncio.to_thread(keys, s3, bucket) == ["big.bin"]
    assert await asyncio.to_thread(open_uploads, s3, bucket) == []


async def test_a_run_killed_after_complete_is_recognised_and_not_sent_again(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first run stops where a kill -9 between CompleteMultipartUpload and the journal's
    update would stop it: every part and the final digest recorded, the record never removed."""
    remote = embedded_sftp.write_file("big.bin", size=23 * MiB, seed=14)
    options = TransferOptions(part_size=5 * MiB)
    folder = tmp_path / "journal"
    with monkeypatch.context() as killed:
        killed.setattr(JournalClaim, "forget", lambda self: None)
        [first] = await copy(
            embedded_sftp.endpoint(),
            [remote.remote_path],
            f"s3://{bucket}/",
            s3_endpoint,
            options=options,
            journal=Journal(folder),
        )
    assert first.status is TransferState.DONE, first.message
    assert len(Journal(folder).entries()) == 1, "the entry a kill -9 would leave"
    bus, parts = EventBus(), []
    bus.subscribe(lambda e: parts.append(e) if isinstance(e, PartChanged) else None)
    embedded_sftp.server.stats.reset()

    [again] = await copy(
        embedded_sftp.endpoint(),
        [remote.remote_path],
        f"s3://{bucket}/",
        s3_endpoint,
        options=options,
        journal=Journal(folder),
        bus=bus,
    )

    assert again.status is TransferState.DONE, again.message
    assert again.message == "completed by an earlier run"
    assert again.sha256 == remote.sha256
    assert again.verified_by in ("md5-etag", "crc64nvme-full-object")
    assert parts == [] and embedded_sftp.server.bytes_read == 0, "nothing read or sent again"
    body = await asyncio.to_thread(object_bytes, s3, bucket, "big.bin")
    assert sha256(body) == remote.sha256
    assert await asyncio.to_thread(stored_sha256, s3, bucket, "big.bin") == remote.sha256
    assert Journal(folder).entries() == []
    assert await asyncio.to_thread(open_uploads, s3, bucket) == []
