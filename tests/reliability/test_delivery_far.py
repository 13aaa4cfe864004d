"""Delivering a big object to a far host: its parts go over several connections (lanes),
and a lane cut mid-write still leaves the whole file or nothing."""

from __future__ import annotations

from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, pattern, target_url
from tests.support.fault_proxy import UP, FaultProxy
from tests.support.servers import SftpServerInfo

MiB = 1 << 20


def test_a_big_object_to_a_far_host_is_written_over_several_connections(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    data = pattern(12 * MiB, seed=11)
    s3.put_object(Bucket=bucket, Key="far/big.bin", Body=data)
    sshd_proxy.set_rtt(0.12)  # far at the first round trip (ten times the 5 ms threshold)

    done = run_cli(
        "copy",
        f"s3://{bucket}/far/big.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "1MiB",
    )

    assert done.returncode == 0, done.stderr
    assert sshd_proxy.connections >= 2  # lanes, beside the first connection
    assert files_under(via_proxy.root) == {"partner/big.bin": data}  # no .partial left


def test_a_lane_cut_mid_write_leaves_nothing_at_the_final_name(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="far/cut.bin", Body=pattern(12 * MiB, seed=12))
    sshd_proxy.set_rtt(0.12)
    sshd_proxy.cut_after(5 * MiB, UP)  # once: the cleanup's new connection gets through

    done = run_cli(
        "copy",
        f"s3://{bucket}/far/cut.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "1MiB",
    )

    assert sshd_proxy.cuts == 1
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, done.stderr
    assert "The SSH connection dropped while writing" in errors[0]
    assert "Traceback" not in done.stderr
    assert files_under(via_proxy.root) == {}  # no .partial, nothing at partner/cut.bin
