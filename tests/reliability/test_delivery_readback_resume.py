"""``--verify-readback`` / ``--verify-server-hash`` after a kill -9: the resumed delivery is
read back (or hashed by the server) whole, its prefix compared with the SHA-256 taken when
that prefix was read back and checked at the resume."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, pattern, records, target_url
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import SftpServerInfo

from .test_delivery_faults import _killed_mid_delivery, _record_of

MiB = 1 << 20


@pytest.mark.sftp_families
def test_a_resumed_delivery_is_read_back_whole(
    sftp_family: str,
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    data = pattern(16 * MiB, seed=34)
    s3.put_object(Bucket=bucket, Key="resume.bin", Body=data)
    sshd_proxy.throttle(2 * MiB, "up")
    command = [
        "copy",
        f"s3://{bucket}/resume.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "1MiB",
        "--verify-readback",
        "--verify-server-hash",
    ]
    record = _killed_mid_delivery(command, via_proxy.remote_path("partner"), sshd_proxy, 2 * MiB)
    assert not (via_proxy.root / "partner" / "resume.bin").exists()

    again = run_cli(*command, "--json")

    assert again.returncode == 0, again.stderr
    (row,), _ = records(again.stdout)
    assert f"resumed {record['temp_path']} from byte {record['written']} " in row["message"]
    by_server = "+server-sha256" if sftp_family == "proftpd" else ""  # only it can hash
    assert row["status"] == "done"
    assert row["verified_by"] == "crc32+size+readback-sha256" + by_server
    assert files_under(via_proxy.root / "partner") == {"resume.bin": data}
    assert _record_of(via_proxy.remote_path("partner")) is None
