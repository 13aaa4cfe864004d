"""The headless command as a user runs it under faults: exit codes, one-line errors, S3 state."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.resume.journal import Journal
from tests.support.cli import key_args, run_cli, source_url
from tests.support.fault_proxy import DOWN, FaultProxy
from tests.support.servers import SftpServerInfo, default_sigint
from tests.support.transfers import MiB, keys

from .conftest import assert_nothing_written, assert_object, proxied
from .s3faults import FaultyS3Server

#: Runs the CLI's main and reports the process's own I/O counters as its last stderr line.
IO_WRAPPER = """\
import atexit, json, sys, psutil
atexit.register(lambda: print("IO " + json.dumps(psutil.Process().io_counters()._asdict()),
                              file=sys.stderr, flush=True))
from sftp_s3_tui.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def state_env(tmp_path: Path) -> dict[str, str]:
    """A private XDG_STATE_HOME, so the journal this run writes is the test's to inspect."""
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


def journal_of(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state" / "sftp-s3-tui" / "journal")


def test_large_copy_writes_nothing_to_local_disk_and_empty_files_land(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    remote = openssh_sftp.write_file("in/large.bin", size=96 * MiB + 17, seed=41)
    openssh_sftp.write_file("in/empty.csv", b"")

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            IO_WRAPPER,
            "copy",
            source_url(openssh_sftp, "in/"),
            f"s3://{bucket}/",
            *key_args(openssh_sftp, s3_endpoint),
            "--part-size",
            "8MiB",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **state_env(tmp_path)},
    )

    assert done.returncode == 0, done.stderr
    io = json.loads(done.stderr.strip().splitlines()[-1].removeprefix("IO "))
    assert io["write_bytes"] < MiB, f"the copy wrote {io['write_bytes']} bytes to disk"
    lines = {line["key"]: line for line in map(json.loads, done.stdout.splitlines()[:-1])}
    assert lines["large.bin"]["sha256"] == remote.sha256
    assert lines["empty.csv"]["bytes"] == 0 and lines["empty.csv"]["status"] == "done"
    assert_object(s3, bucket, "large.bin", remote.read_bytes())
    assert_object(s3, bucket, "empty.csv", b"")


def _start_throttled_copy(
    via: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    tmp_path: Path,
    name: str,
    *extra: str,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            source_url(via, name),
            f"s3://{bucket}/",
            *key_args(via, s3_endpoint),
            "--part-size",
            "5MiB",
            "--concurrency",
            "2",
            "--json",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **state_env(tmp_path)},
        preexec_fn=default_sigint,
    )


def _wait_until_parts_uploaded(
    proxy: FaultProxy, s3: Any, bucket: str, process: subprocess.Popen[str]
) -> str:
    """Block until the copy has an upload with at least one part; returns the upload id."""
    proxy.wait_for_sync(lambda p: p.bytes_down > 11 * MiB, timeout=60)
    found: list[str] = []

    def has_part(_: FaultProxy) -> bool:
        assert process.poll() is None, process.communicate()
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []:
            parts = s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            if parts.get("Parts"):
                found.append(upload["UploadId"])
                return True
        return False

    proxy.wait_for_sync(has_part, timeout=60)
    return found[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_transfer_aborts_the_upload_and_clears_the_journal(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    signum: int,
) -> None:
    via_proxy.write_file("in/big.bin", size=40 * MiB, seed=42)
    sshd_proxy.throttle(8 * MiB, DOWN)
    process = _start_throttled_copy(via_proxy, s3_endpoint, bucket, tmp_path, "in/big.bin")
    upload_id = _wait_until_parts_uploaded(sshd_proxy, s3, bucket, process)
    assert [e.upload_id for e in journal_of(tmp_path).entries()] == [upload_id]

    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert "interrupted; unfinished uploads were aborted" in stderr
    assert "Traceback" not in stderr
    assert_nothing_written(s3, bucket)
    assert journal_of(tmp_path).entries() == []


@pytest.mark.all_stores
def test_killed_mid_transfer_leaves_a_consistent_journal_and_the_rerun_resumes(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    remote = via_proxy.write_file("in/big.bin", size=40 * MiB + 3, seed=43)
    sshd_proxy.throttle(8 * MiB, DOWN)
    process = _start_throttled_copy(via_proxy, s3_endpoint, bucket, tmp_path, "in/big.bin")
    upload_id = _wait_until_parts_uploaded(sshd_proxy, s3, bucket, process)

    process.kill()  # no handler runs: only the journal knows what was done
    process.communicate(timeout=30)

    [entry] = journal_of(tmp_path).entries()
    assert entry.upload_id == upload_id and entry.size == remote.size
    listed = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload_id).get("Parts", [])
    on_s3 = {p["PartNumber"]: p["ETag"] for p in listed}
    assert entry.parts, "parts were uploaded but none is journaled"
    for number, (etag, _crc) in entry.parts.items():
        assert on_s3.get(number) == etag, f"journaled part {number} is not on S3 as recorded"

    sshd_proxy.clear()
    rerun = run_cli(
        "copy",
        source_url(via_proxy, "in/big.bin"),
        f"s3://{bucket}/",
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "5MiB",
        "--json",
        env=state_env(tmp_path),
    )

    assert rerun.returncode == 0, rerun.stderr
    line = json.loads(rerun.stdout.splitlines()[0])
    assert line["status"] == "done" and line["resumed_parts"] >= len(entry.parts)
    assert line["sha256"] == remote.sha256
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []
    assert journal_of(tmp_path).entries() == []


def test_a_retry_on_another_machine_continues_from_the_state_kept_in_s3(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """`--resume-in-s3`: a run killed on one machine is continued by a run whose state folder is
    empty (an Airflow retry on another worker) — the same upload, not a new one."""
    remote = via_proxy.write_file("in/big.bin", size=40 * MiB + 3, seed=44)
    sshd_proxy.throttle(8 * MiB, DOWN)
    first_machine = tmp_path / "a"
    process = _start_throttled_copy(
        via_proxy, s3_endpoint, bucket, first_machine, "in/big.bin", "--resume-in-s3"
    )
    upload_id = _wait_until_parts_uploaded(sshd_proxy, s3, bucket, process)
    process.kill()
    process.communicate(timeout=30)

    sshd_proxy.clear()
    other_machine = tmp_path / "b"
    rerun = run_cli(
        "copy",
        source_url(via_proxy, "in/big.bin"),
        f"s3://{bucket}/",
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "5MiB",
        "--json",
        "--resume-in-s3",
        env=state_env(other_machine),
    )

    assert rerun.returncode == 0, rerun.stderr
    assert "resume state of an earlier run in S3" in rerun.stderr
    line = json.loads(rerun.stdout.splitlines()[0])
    assert line["status"] == "done" and line["resumed_parts"] >= 1
    assert line["sha256"] == remote.sha256
    assert_object(s3, bucket, "big.bin", remote.read_bytes())
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []
    assert upload_id and keys(s3, bucket) == ["big.bin"], "the resume state is gone with it"


def test_permission_denied_exits_1_with_one_line(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("in/secret.csv", b"top secret\n")
    remote.local_path.chmod(0o000)
    assert openssh_sftp.password_user and openssh_sftp.password
    args = [a for a in key_args(openssh_sftp, s3_endpoint) if a != "--identity"]
    args.remove(str(openssh_sftp.identity_file))

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "in/secret.csv", user=openssh_sftp.password_user),
        f"s3://{bucket}/",
        *args,
        env={"SFTP_PASSWORD": openssh_sftp.password},
    )

    assert done.returncode == 1
    assert "Permission denied reading" in done.stderr and "secret.csv" in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_written(s3, bucket)


def test_expired_credentials_exit_4_without_leaking_the_secret(
    openssh_sftp: SftpServerInfo, s3_faults: FaultyS3Server, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("in/a.csv", b"a,b\n")
    s3_faults.fail(None, 403, code="ExpiredToken", access_key="ASIAEXPIRED", times=None)
    secret = "expired/Secret+Key-0123456789abcdefXYZ"
    args = [
        "--identity",
        str(openssh_sftp.identity_file),
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--no-agent",
        "--endpoint-url",
        s3_faults.endpoint_url,
    ]

    done = run_cli(
        "-vv",
        "copy",
        source_url(openssh_sftp, "in/a.csv"),
        f"s3://{bucket}/",
        *args,
        "--json",
        env={
            "AWS_ACCESS_KEY_ID": "ASIAEXPIRED",
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": "token-" + secret,
        },
    )

    assert done.returncode == 4  # S3 refused access: checked once, up front
    assert "access denied" in done.stderr
    assert secret not in done.stderr + done.stdout
    assert_nothing_written(s3, bucket)


@pytest.mark.all_stores
def test_missing_bucket_exits_4_with_one_line(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint
) -> None:
    openssh_sftp.write_file("in/a.csv", b"a")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "in/a.csv"),
        "s3://no-such-bucket-reliability/",
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 4
    assert "does not exist" in done.stderr and "no-such-bucket-reliability" in done.stderr
    assert done.stderr.count("no-such-bucket-reliability") == 1  # checked once, up front
    assert "Traceback" not in done.stderr


async def test_changed_host_key_behind_the_same_address_is_refused_with_both_fingerprints(
    openssh_sftp: SftpServerInfo,
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """A man in the middle: the address that served sshd now answers with another server.

    (Async only because the embedded server runs on the test's loop; the CLI runs in a thread.)
    """
    openssh_sftp.write_file("in/a.csv", b"a")
    with FaultProxy(openssh_sftp.host, openssh_sftp.port) as proxy:
        via = proxied(openssh_sftp, proxy, tmp_path)  # known_hosts trusts sshd's key here
        proxy.retarget(embedded_sftp.host, embedded_sftp.port)
        refused = await asyncio.to_thread(
            run_cli,
            "copy",
            source_url(via, "in/a.csv"),
            f"s3://{bucket}/",
            *key_args(via, s3_endpoint),
            "--accept-new-host-key",
        )

    real = asyncssh.import_public_key(openssh_sftp.known_hosts.read_text().split(None, 1)[1])
    impostor = embedded_sftp.known_hosts.read_text().split(None, 1)[1]
    assert refused.returncode == 4
    assert "CHANGED" in refused.stderr
    assert real.get_fingerprint("sha256") in refused.stderr
    assert asyncssh.import_public_key(impostor).get_fingerprint("sha256") in refused.stderr
    assert via.known_hosts.read_text().count("\n") == 1, "the impostor's key was not recorded"
    assert_nothing_written(s3, bucket)
