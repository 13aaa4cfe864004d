"""A rerun of the same ``copy`` sends nothing, as rclone users expect, and says why."""

from __future__ import annotations

import json
import time
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import object_bytes

MiB = 1 << 20


def test_the_same_copy_twice_sends_nothing_the_second_time_and_says_so(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    last_night = time.time() - 3600  # a partner's drop, written well before the copy
    big = openssh_sftp.write_file("drop/customers.csv", size=6 * MiB + 3, seed=1, mtime=last_night)
    small = openssh_sftp.write_file("drop/orders.csv", b"id\n1\n", mtime=last_night)
    args = [
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/landing/",
        *key_args(openssh_sftp, s3_endpoint),
    ]

    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "2 copied, 0 skipped, 0 failed" in first.stderr
    # The store's checksum check is said once, as a line about the store, not as a notice
    # about whichever file came first.
    store_lines = [line for line in first.stderr.splitlines() if "checksum" in line]
    assert len(store_lines) == 1 and store_lines[0].startswith("sftp-s3-tui: store: "), store_lines
    assert bucket in store_lines[0] and "customers.csv" not in store_lines[0]
    written = {
        key: s3.head_object(Bucket=bucket, Key=key)["LastModified"]
        for key in ("landing/customers.csv", "landing/orders.csv")
    }

    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last == (
        "nothing to send: 2 skipped "
        "(already there: same size, and the source is not newer than the object)"
    ), second.stderr
    # Nothing was written again: the objects are the first run's.
    for key, when in written.items():
        assert s3.head_object(Bucket=bucket, Key=key)["LastModified"] == when
    assert object_bytes(s3, bucket, "landing/customers.csv") == big.read_bytes()

    # The --json summary of the rerun counts the same.
    again = run_cli(*args, "--json")
    *rows, summary = [json.loads(line) for line in again.stdout.splitlines()]
    assert (summary["copied"], summary["skipped"], summary["bytes"]) == (0, 2, 0)
    assert {row["status"] for row in rows} == {"skipped"}

    # A changed source is sent again; the unchanged one is still skipped.
    changed = openssh_sftp.write_file("drop/orders.csv", b"id\n1\n2\n", mtime=time.time() - 60)
    third = run_cli(*args)
    assert third.returncode == 0, third.stderr
    assert "1 copied, 1 skipped, 0 failed" in third.stderr
    assert object_bytes(s3, bucket, "landing/orders.csv") == changed.read_bytes()
    assert small.size != changed.size


def test_an_explicit_overwrite_still_sends_everything_again(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n", mtime=time.time() - 3600)
    args = [
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/landing/",
        *key_args(openssh_sftp, s3_endpoint),
        "--conflict",
        "overwrite",
    ]
    assert run_cli(*args).returncode == 0
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "1 copied, 0 skipped, 0 failed" in again.stderr
