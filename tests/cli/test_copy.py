"""The headless command as a user runs it: exit codes, --json lines, one-line errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo, default_sigint
from tests.support.transfers import keys, object_bytes, open_uploads


@pytest.mark.all_stores
@pytest.mark.sftp_families
def test_copy_json_reports_each_file(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """On each server family; every record names the server's profile (read size)."""
    big = openssh_sftp.write_file("drop/customers.csv", size=12 * 1024 * 1024 + 7, seed=1)
    small = openssh_sftp.write_file("drop/orders 2026-11.csv", b"id\n1\n")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/landing/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    *lines, summary = [json.loads(line) for line in done.stdout.splitlines()]
    assert summary == {
        "summary": True,
        "files": 2,
        "copied": 2,
        "skipped": 0,
        "failed": 0,
        "bytes": big.size + small.size,
        "seconds": summary["seconds"],
        "exit_code": 0,
    }
    by_key = {line["key"]: line for line in lines}
    assert set(by_key) == {"landing/customers.csv", "landing/orders 2026-11.csv"}
    assert by_key["landing/customers.csv"]["parts"] == 3
    assert by_key["landing/customers.csv"]["sha256"] == big.sha256
    assert by_key["landing/orders 2026-11.csv"]["bytes"] == small.size
    for line in lines:
        assert set(line) >= {
            "source",
            "bucket",
            "key",
            "bytes",
            "seconds",
            "parts",
            "sha256",
            "status",
        }
        assert line["status"] == "done"
        assert line["server"]["banner"].startswith("SSH-2.0-")
    server = by_key["landing/customers.csv"]["server"]  # read after the probe
    assert server["sftp_version"] == 3
    if openssh_sftp.kind == "openssh":
        assert server["read_source"] == "limits@openssh.com"
    else:  # ProFTPD and Dropbear advertise nothing: the probe found 256 KiB reads
        assert (server["read_source"], server["read_bytes"]) == ("probed", 256 * 1024)
    assert object_bytes(s3, bucket, "landing/customers.csv") == big.read_bytes()
    assert object_bytes(s3, bucket, "landing/orders 2026-11.csv") == small.read_bytes()


def test_password_from_environment_and_seed_variables(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("in/a.csv", b"a,b\n")
    assert openssh_sftp.password and openssh_sftp.password_user and s3_endpoint.endpoint_url
    env = {
        "SFTP_HOST": openssh_sftp.host,
        "SFTP_PORT": str(openssh_sftp.port),
        "SFTP_USER": openssh_sftp.password_user,
        "SFTP_PASSWORD": openssh_sftp.password,
        "S3_BUCKET": bucket,
        "AWS_ENDPOINT_URL": s3_endpoint.endpoint_url,
    }

    done = run_cli(
        "copy",
        remote.remote_path,
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--no-agent",
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert keys(s3, bucket) == ["a.csv"]


def test_nothing_matched_is_one_clear_line_and_exit_3(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    done = run_cli(
        "copy",
        source_url(openssh_sftp, "missing.csv"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 3
    assert "does not exist on the SFTP server" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_host_key_fails_unless_accepted(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    remote = openssh_sftp.write_file("a.csv", b"a")
    known = tmp_path / "known_hosts"
    args = [
        a if a != str(openssh_sftp.known_hosts) else str(known)
        for a in key_args(openssh_sftp, s3_endpoint)
    ]

    refused = run_cli("copy", source_url(openssh_sftp, "a.csv"), f"s3://{bucket}/", *args)
    accepted = run_cli(
        "copy", source_url(openssh_sftp, "a.csv"), f"s3://{bucket}/", *args, "--accept-new-host-key"
    )

    assert refused.returncode == 4 and "host key" in refused.stderr and "SHA256:" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert known.exists() and keys(s3, bucket) == ["a.csv"]
    assert remote.size == 1


def test_a_missing_bucket_is_reported_alone_while_the_early_login_fails(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    """The SSH login starts before the S3 side is checked; when both fail, the bucket is the
    one line (as when they ran in turn), and the discarded login leaves no asyncio noise."""
    openssh_sftp.write_file("a.csv", b"a")
    args = [
        a if a != str(openssh_sftp.known_hosts) else str(tmp_path / "empty_known_hosts")
        for a in key_args(openssh_sftp, s3_endpoint)
    ]

    done = run_cli("copy", source_url(openssh_sftp, "a.csv"), f"s3://{bucket}-missing/", *args)

    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 4, done.stderr
    assert len(lines) == 1 and f"{bucket}-missing" in lines[0], done.stderr
    assert "host key" not in done.stderr and "Traceback" not in done.stderr


def test_usage_errors_exit_2(s3_endpoint: S3Endpoint) -> None:
    bad_size = run_cli("copy", "sftp://h/x", "s3://bucket-x/", "--part-size", "lots")
    bad_url = run_cli("copy", "ftp://h/x", "s3://bucket-x/")
    no_dest = run_cli("copy", "sftp://h/x")

    assert bad_size.returncode == 2 and "Not a size" in bad_size.stderr
    assert bad_url.returncode == 2 and "Not an SFTP address" in bad_url.stderr
    assert no_dest.returncode == 2 and "No destination" in no_dest.stderr


@pytest.mark.all_stores
def test_ctrl_c_aborts_the_upload(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("huge.bin", size=400 * 1024 * 1024, seed=2)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            source_url(openssh_sftp, "huge.bin"),
            f"s3://{bucket}/",
            *key_args(openssh_sftp, s3_endpoint),
            "--part-size",
            "5MiB",
            "--concurrency",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        # The store check opens and aborts an upload of its own at the same key (moto lists
        # it for a moment): wait for one that is still open a poll later, the copy's own.
        deadline = time.monotonic() + 60
        seen: set[str] = set()
        while time.monotonic() < deadline and process.poll() is None:
            ids = {u["UploadId"] for u in open_uploads(s3, bucket)}
            if ids & seen:
                break
            seen = ids
            time.sleep(0.3)
        if not {u["UploadId"] for u in open_uploads(s3, bucket)} & seen:
            process.kill()
            _, stderr = process.communicate(timeout=30)
            raise AssertionError(f"the upload never started (exit {process.returncode}): {stderr}")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # never leave a copy running into the next test's journal
            process.kill()
            process.communicate(timeout=30)

    assert process.returncode == 130
    assert "aborted" in stderr
    assert open_uploads(s3, bucket) == []
    assert keys(s3, bucket) == []
