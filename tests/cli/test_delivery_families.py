"""Deliveries into the servers that advertise no write limit (ProFTPD mod_sftp, Dropbear +
gesftpserver): their writes go in 255 KiB blocks, and the file still lands whole."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, pattern, target_url
from tests.support.servers import SftpServerInfo

MiB = 1 << 20


@pytest.mark.parametrize("family", ["proftpd", "dropbear"])
def test_an_object_lands_whole_on_a_server_without_limits(
    family: str, request: pytest.FixtureRequest, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    server: SftpServerInfo = request.getfixturevalue(family)
    data = pattern(3 * MiB + 5, seed=21)  # 13 writes of 255 KiB a part, and a short tail
    s3.put_object(Bucket=bucket, Key=f"wide/{family}.bin", Body=data)
    folder = f"wide-writes-{family}"

    done = run_cli(
        "copy",
        f"s3://{bucket}/wide/{family}.bin",
        target_url(server, f"{folder}/"),
        *key_args(server, s3_endpoint),
        "--part-size",
        "1MiB",
    )

    assert done.returncode == 0, done.stderr
    assert files_under(server.root / folder) == {f"{family}.bin": data}  # no .partial left
