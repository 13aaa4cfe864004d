"""A resume continues only the source it started from (issue 24, case 1).

A nightly drop feeds a fixed key (``latest/data.bin``) from dated folders or from several
partners; fixed-width exports and ``rsync -t`` / ``cp -p`` give the files the same size and
mtime. A run killed halfway leaves an open upload; the next run, from another file, must not
continue it (the object would hold the first file's head and the second one's tail, and the
second file would be deleted as "verified"). It starts over and says so in one line.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import os
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sftp_s3_tui.demo.sftp_server import EmbeddedSftpServer, known_hosts_entry
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.resume.in_s3 import record_key
from sftp_s3_tui.engine.resume.journal import Journal
from tests.support.cli import key_args, run_cli, source_url
from tests.support.fault_proxy import DOWN, FaultProxy
from tests.support.servers import SftpServerInfo, default_sigint, unavailable
from tests.support.transfers import MiB, keys

from .conftest import assert_object, sha256

SIZE = 20 * MiB  # four 5 MiB parts
#: The mtime both days' files have (2026-05-05 05:05:05 UTC), as `rsync -t` would leave it.
MTIME = datetime(2026, 5, 5, 5, 5, 5, tzinfo=UTC).timestamp()
DEST = "latest/"
KEY = "latest/data.bin"


def state_env(state: Path) -> dict[str, str]:
    """A private state folder (one machine's journal)."""
    return {"XDG_STATE_HOME": str(state)}


def journal_of(state: Path) -> Journal:
    return Journal(state / "sftp-s3-tui" / "journal")


def copy_args(
    via: SftpServerInfo, relative: str, s3_endpoint: S3Endpoint, bucket: str
) -> list[str]:
    return [
        "copy",
        source_url(via, relative),
        f"s3://{bucket}/{DEST}",
        *key_args(via, s3_endpoint),
        "--part-size",
        "5MiB",
        "--concurrency",
        "2",
        "--json",
    ]


def start_copy(args: list[str], state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sftp_s3_tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **state_env(state)},
        preexec_fn=default_sigint,
    )


def journaled_parts(state: Path) -> int:
    return max((len(e.parts) for e in journal_of(state).entries()), default=0)


def kill_after_two_parts(process: subprocess.Popen[str], state: Path) -> int:
    """kill -9 the copy once two parts are journaled; the parts a rerun need not read again
    (those up to the journaled digest checkpoint)."""
    deadline = time.monotonic() + 120
    while journaled_parts(state) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no two parts were uploaded in time"
        time.sleep(0.02)
    assert process.poll() is None, "the copy ended before it could be killed"
    process.kill()
    process.communicate(timeout=30)
    [entry] = journal_of(state).entries()
    return max(entry.digest, default=0)


async def kill_after_two_parts_async(process: asyncio.subprocess.Process, state: Path) -> None:
    """The same from an async test (whose loop serves the embedded SFTP server)."""
    deadline = time.monotonic() + 120
    while journaled_parts(state) < 2:
        assert process.returncode is None, "the copy ended before it could be killed"
        assert time.monotonic() < deadline, "no two parts were uploaded in time"
        await asyncio.sleep(0.02)
    assert process.returncode is None, "the copy ended before it could be killed"
    process.kill()
    await process.wait()


def open_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []]


def file_record(stdout: str) -> dict[str, Any]:
    """The file's ``--json`` record (not the source action's, nor the summary)."""
    [record] = [r for r in map(json.loads, stdout.splitlines()) if "status" in r]
    assert isinstance(record, dict)
    return record


def crc32_composite(data: bytes) -> str:
    """The object's CRC32 as S3 names a multipart upload's (5 MiB parts): the CRC32 of the
    parts' CRC32s, ``-N`` (moto answers without the suffix)."""
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    raw = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    return f"{base64.b64encode(zlib.crc32(raw).to_bytes(4, 'big')).decode()}-{len(parts)}"


def not_resuming(bucket: str, why: str) -> str:
    return f"not resuming: the upload at s3://{bucket}/{KEY} {why}; starting over"


@pytest.mark.all_stores
def test_a_killed_upload_of_day1_is_not_continued_from_day2_with_the_same_size_and_mtime(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """The audit's case: day 1's copy is killed after two parts; day 2's file (other bytes,
    same size and mtime) goes to the same key with --delete-source. It must start over,
    publish day 2's exact bytes, and delete day 2 only once they are verified."""
    day1 = via_proxy.write_file("drop/day1/data.bin", size=SIZE, seed=241, mtime=MTIME)
    day2 = via_proxy.write_file("drop/day2/data.bin", size=SIZE, seed=242, mtime=MTIME)
    assert day1.sha256 != day2.sha256
    day2_bytes = day2.read_bytes()  # what must land (the file itself is to be deleted)
    sshd_proxy.throttle(2 * MiB, DOWN)  # slow enough to be killed halfway
    state = tmp_path / "state"
    kill_after_two_parts(
        start_copy(copy_args(via_proxy, "drop/day1/data.bin", s3_endpoint, bucket), state), state
    )
    [stale] = open_uploads(s3, bucket)
    sshd_proxy.clear()

    done = run_cli(
        *copy_args(via_proxy, "drop/day2/data.bin", s3_endpoint, bucket),
        "--delete-source",
        env=state_env(state),
    )

    assert done.returncode == 0, done.stderr
    started_from = f"was started from {source_url(via_proxy, 'drop/day1/data.bin')}"
    assert not_resuming(bucket, started_from) in done.stderr
    assert "resuming: " not in done.stderr.replace("not resuming: ", "")
    record = file_record(done.stdout)
    assert record["status"] == "done" and record.get("resumed_parts", 0) == 0
    assert record["sha256"] == day2.sha256
    assert_object(s3, bucket, KEY, day2_bytes)
    assert not day2.local_path.exists(), "day 2 is deleted once its copy is verified"
    assert sha256(day1.read_bytes()) == day1.sha256, "day 1 is untouched"
    assert stale not in open_uploads(s3, bucket) and open_uploads(s3, bucket) == []
    assert journal_of(state).entries() == []


@pytest.mark.all_stores
def test_the_same_source_resumes_without_reading_its_finished_parts_again(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """The control: a rerun of the same file continues the upload and reads only what is left."""
    day1 = via_proxy.write_file("drop/day1/data.bin", size=SIZE, seed=243, mtime=MTIME)
    sshd_proxy.throttle(2 * MiB, DOWN)
    state = tmp_path / "state"
    args = copy_args(via_proxy, "drop/day1/data.bin", s3_endpoint, bucket)
    finished = kill_after_two_parts(start_copy(args, state), state)
    assert finished >= 1, "the journal holds a digest checkpoint to resume from"
    sshd_proxy.clear()
    sshd_proxy.reset_counters()

    done = run_cli(*args, env=state_env(state))

    assert done.returncode == 0, done.stderr
    assert "not resuming" not in done.stderr
    record = file_record(done.stdout)
    assert record["status"] == "done" and record["resumed_parts"] >= finished
    assert_object(s3, bucket, KEY, day1.read_bytes())
    left = SIZE - finished * 5 * MiB
    assert sshd_proxy.bytes_down < left + MiB // 2, "the finished parts were read again"
    assert open_uploads(s3, bucket) == []


@pytest.mark.all_stores
def test_a_retry_on_another_machine_continues_a_crc32_upload_from_its_state_in_s3(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """`--resume-in-s3 --checksum crc32`: the retry on another machine (no local journal)
    continues the upload with the checksum its parts were sent with (the record keeps it),
    reads only what is left, and the object lands byte for byte."""
    day1 = via_proxy.write_file("drop/day1/data.bin", size=SIZE, seed=246, mtime=MTIME)
    sshd_proxy.throttle(2 * MiB, DOWN)
    first_machine, other_machine = tmp_path / "a", tmp_path / "b"
    args = [
        *copy_args(via_proxy, "drop/day1/data.bin", s3_endpoint, bucket),
        "--resume-in-s3",
        "--checksum",
        "crc32",
    ]
    kill_after_two_parts(start_copy(args, first_machine), first_machine)
    kept = json.loads(s3.get_object(Bucket=bucket, Key=record_key(KEY))["Body"].read())
    finished = int(kept.get("digest", {}).get("after", 0))
    assert kept["checksum"] == "crc32" and finished >= 1, "S3 holds a checkpoint to resume from"
    sshd_proxy.clear()
    sshd_proxy.reset_counters()

    done = run_cli(*args, env=state_env(other_machine))

    assert done.returncode == 0, done.stderr
    assert "resume state of an earlier run in S3" in done.stderr
    assert "not resuming" not in done.stderr
    record = file_record(done.stdout)
    assert record["status"] == "done" and record["resumed_parts"] >= finished
    assert record["sha256"] == day1.sha256
    assert_object(s3, bucket, KEY, day1.read_bytes())
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    composite = crc32_composite(day1.read_bytes())
    stored = str(head.get("ChecksumCRC32", ""))
    assert stored.split("-")[0] == composite.split("-")[0], "every part was sent with its CRC32"
    left = SIZE - finished * 5 * MiB
    assert sshd_proxy.bytes_down < left + MiB // 2, "the finished parts were read again"
    assert open_uploads(s3, bucket) == []
    assert keys(s3, bucket) == [KEY], "the resume state in S3 is gone with the upload"


@pytest.mark.all_stores
def test_the_state_kept_in_s3_is_not_continued_from_another_file(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """`--resume-in-s3`: the retry runs on another machine (no local journal) and copies day 2;
    the record in S3 names day 1, so the upload starts over."""
    via_proxy.write_file("drop/day1/data.bin", size=SIZE, seed=244, mtime=MTIME)
    day2 = via_proxy.write_file("drop/day2/data.bin", size=SIZE, seed=245, mtime=MTIME)
    day2_bytes = day2.read_bytes()
    sshd_proxy.throttle(2 * MiB, DOWN)
    first_machine, other_machine = tmp_path / "a", tmp_path / "b"
    day1_args = copy_args(via_proxy, "drop/day1/data.bin", s3_endpoint, bucket)
    kill_after_two_parts(start_copy([*day1_args, "--resume-in-s3"], first_machine), first_machine)
    sshd_proxy.clear()

    done = run_cli(
        *copy_args(via_proxy, "drop/day2/data.bin", s3_endpoint, bucket),
        "--resume-in-s3",
        "--delete-source",
        env=state_env(other_machine),
    )

    assert done.returncode == 0, done.stderr
    assert "resume state of an earlier run in S3" in done.stderr
    started_from = f"was started from {source_url(via_proxy, 'drop/day1/data.bin')}"
    assert not_resuming(bucket, started_from) in done.stderr
    assert file_record(done.stdout).get("resumed_parts", 0) == 0
    assert_object(s3, bucket, KEY, day2_bytes)
    assert not day2.local_path.exists()
    assert open_uploads(s3, bucket) == []
    assert keys(s3, bucket) == [KEY], "the resume state in S3 is gone with the upload"


def test_a_record_without_the_source_identity_is_not_continued(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """A record an older version wrote names no host key: it cannot prove the same source,
    so even a rerun of the same file starts over (and aborts the old upload)."""
    day1 = via_proxy.write_file("drop/day1/data.bin", size=SIZE, seed=246, mtime=MTIME)
    sshd_proxy.throttle(2 * MiB, DOWN)
    state = tmp_path / "state"
    args = copy_args(via_proxy, "drop/day1/data.bin", s3_endpoint, bucket)
    kill_after_two_parts(start_copy(args, state), state)
    sshd_proxy.clear()
    [entry] = journal_of(state).entries()
    assert entry.path is not None
    header, *rest = entry.path.read_text().splitlines(keepends=True)
    older = {k: v for k, v in json.loads(header).items() if k != "host_key"}
    entry.path.write_text(json.dumps(older) + "\n" + "".join(rest))

    done = run_cli(*args, env=state_env(state))

    assert done.returncode == 0, done.stderr
    why = "was recorded without its source's identity (by an older version)"
    assert not_resuming(bucket, why) in done.stderr
    assert file_record(done.stdout).get("resumed_parts", 0) == 0
    assert_object(s3, bucket, KEY, day1.read_bytes())
    assert open_uploads(s3, bucket) == []
    assert journal_of(state).entries() == []


async def test_another_server_behind_the_same_address_and_path_is_not_continued(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """The partner moved the drop to a new server at the same address (known_hosts trusts
    both keys): same user, host, port, path, size and mtime, other bytes. Only the host key
    tells the two apart, and it must."""
    relative = "drop/data.bin"
    day1 = via_proxy.write_file(relative, size=SIZE, seed=247, mtime=MTIME)
    new_root = tmp_path / "new-server"
    served = new_root / via_proxy.remote_path(relative).lstrip("/")
    served.parent.mkdir(parents=True)
    other = os.urandom(SIZE)
    served.write_bytes(other)
    os.utime(served, (MTIME, MTIME))
    client_key = asyncssh.read_private_key(via_proxy.identity_file).convert_to_public()
    state = tmp_path / "state"
    args = copy_args(via_proxy, relative, s3_endpoint, bucket)

    async with EmbeddedSftpServer(new_root, authorized_keys=[client_key]) as new_server:
        with via_proxy.known_hosts.open("a") as known:
            known.write(
                known_hosts_entry(via_proxy.host, sshd_proxy.port, new_server.host_public_key)
                + "\n"
            )
        sshd_proxy.throttle(2 * MiB, DOWN)
        first = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sftp_s3_tui",
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, **state_env(state)},
        )
        await kill_after_two_parts_async(first, state)
        sshd_proxy.clear()
        sshd_proxy.retarget(new_server.host, new_server.port)

        done = await asyncio.to_thread(run_cli, *args, "--delete-source", env=state_env(state))

    assert done.returncode == 0, done.stderr
    assert "on a server with another host key" in done.stderr
    assert f"not resuming: the upload at s3://{bucket}/{KEY} was started from" in done.stderr
    record = file_record(done.stdout)
    assert record.get("resumed_parts", 0) == 0 and record["status"] == "done"
    assert_object(s3, bucket, KEY, other)
    assert not served.exists(), "the new server's file is deleted once verified"
    assert sha256(day1.read_bytes()) == day1.sha256, "the old server's file is untouched"
    assert open_uploads(s3, bucket) == []


def test_the_same_path_read_as_another_user_is_not_continued(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """The URL names no user, so the login is ~/.ssh/config's User or the local user — which
    changed between the runs (another worker, an edited config). Behind a per-user chroot the
    same path is another file; the resume cannot prove otherwise, so it starts over."""
    if not via_proxy.password_user:
        unavailable("no second user on this sshd (the fixture makes it when run as root)")
    day1 = via_proxy.write_file("drop/day1/data.bin", size=SIZE, seed=248, mtime=MTIME)
    no_user = (
        f"sftp://{via_proxy.host}:{via_proxy.port}{via_proxy.remote_path('drop/day1/data.bin')}"
    )
    args = [no_user, *copy_args(via_proxy, "drop/day1/data.bin", s3_endpoint, bucket)[2:]]
    sshd_proxy.throttle(2 * MiB, DOWN)
    state = tmp_path / "state"
    kill_after_two_parts(start_copy(["copy", *args], state), state)
    sshd_proxy.clear()
    [entry] = journal_of(state).entries()
    local_user = getpass.getuser()  # whom the first run logged in as
    other_home = tmp_path / "other-home"
    (other_home / ".ssh").mkdir(parents=True)
    (other_home / ".ssh" / "config").write_text(
        f"Host {via_proxy.host}\n  User {via_proxy.password_user}\n"
    )

    done = run_cli("copy", *args, env={**state_env(state), "HOME": str(other_home)})

    assert done.returncode == 0, done.stderr
    why = f"was started from {entry.source} as user {local_user} (now {via_proxy.password_user})"
    assert not_resuming(bucket, why) in done.stderr
    assert file_record(done.stdout).get("resumed_parts", 0) == 0
    assert_object(s3, bucket, KEY, day1.read_bytes())
    assert open_uploads(s3, bucket) == []
