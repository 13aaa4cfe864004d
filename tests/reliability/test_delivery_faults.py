"""Delivering S3 → SFTP when the link fails: the final name holds the whole file or
nothing, no temporary file is left, and the user reads one clear line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, pattern, target_url
from tests.support.fault_proxy import UP, FaultProxy
from tests.support.servers import SftpServerInfo, default_sigint

MiB = 1 << 20


def test_ssh_cut_mid_write_leaves_no_temporary_file_and_nothing_at_the_final_name(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="nightly/big.bin", Body=pattern(16 * MiB, seed=5))
    s3.put_object(Bucket=bucket, Key="nightly/small.csv", Body=b"1,2\n")
    sshd_proxy.cut_after(6 * MiB, UP)  # once: the cleanup's new connection gets through

    done = run_cli(
        "copy",
        f"s3://{bucket}/nightly/big.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "2MiB",
    )

    assert sshd_proxy.cuts == 1
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, done.stderr
    assert (
        f"✗ s3://{bucket}/nightly/big.bin: The SSH connection dropped while writing" in (errors[0])
    )
    assert "Traceback" not in done.stderr
    assert files_under(via_proxy.root) == {}  # no .partial, nothing at partner/big.bin


def test_ctrl_c_mid_delivery_removes_the_temporary_file(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="slow.bin", Body=pattern(12 * MiB, seed=6))
    sshd_proxy.throttle(512 * 1024, "up")  # slow enough to be interrupted mid-write
    folder = via_proxy.root / "partner"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            f"s3://{bucket}/slow.bin",
            target_url(via_proxy, "partner/"),
            *key_args(via_proxy, s3_endpoint),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder.exists() and any(p.stat().st_size for p in folder.iterdir())):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the temporary file never grew"
            time.sleep(0.1)
        assert [p.name.endswith(".partial") for p in folder.iterdir()] == [True]
        child.send_signal(signal.SIGINT)
        sshd_proxy.throttle(None)  # let the cleanup's requests through at once
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()

    assert child.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert files_under(via_proxy.root) == {}
