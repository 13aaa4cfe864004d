"""The nightly partner drop as one command, as a user runs it: plan first, then copy with
filters, a done-file gate, a manifest and the verified move; a kill -9 midway leaves a
manifest that matches S3; ``watch`` ships what is dropped while it runs and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.reliability.conftest import proxied
from tests.support.cli import key_args, run_cli, source_url
from tests.support.fault_proxy import FaultProxy
from tests.support.metrics import metric_value
from tests.support.nightly import manifest_rows
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes, open_uploads, sha256, stored_sha256
from tests.support.watcher import Watcher, wait_for


def drop(server: SftpServerInfo) -> None:
    server.write_file("drop/orders.csv", b"id,total\n1,20\n")
    server.write_file("drop/orders.csv.done", b"")
    server.write_file("drop/customers.csv", size=6 * 1024 * 1024 + 1, seed=5)
    server.write_file("drop/customers.csv.done", b"")
    server.write_file("drop/refunds.csv", b"id\n7\n")  # its done file is not there yet
    server.write_file("drop/notes.txt", b"not for S3\n")


def test_dry_run_then_the_nightly_command(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    drop(openssh_sftp)
    processed = openssh_sftp.remote_path("processed")
    nightly = [
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/partner/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--include",
        "*.csv",
        "--done-file",
        ".done",
        "--conflict",
        "skip-existing",
    ]

    planned = run_cli("copy", *nightly, "--dry-run", "--json")

    assert planned.returncode == 0, planned.stderr
    *rows, totals = [json.loads(line) for line in planned.stdout.splitlines()]
    decisions = {r["key"]: r["decision"] for r in rows}
    assert decisions == {
        "partner/orders.csv": "copy",
        "partner/customers.csv": "copy",
        "partner/refunds.csv": "waiting",
        "partner/notes.txt": "excluded",
    }
    assert totals["files"] == 2 and totals["parts"] == 3
    assert totals["bytes"] == 6 * 1024 * 1024 + 1 + 14
    assert keys(s3, bucket) == [] and open_uploads(s3, bucket) == []  # wrote nothing
    assert (openssh_sftp.root / "drop" / "orders.csv").exists()

    manifest = tmp_path / "nightly.jsonl"
    done = run_cli("copy", *nightly, "--move-to", processed, "--manifest", str(manifest), "--json")

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    copied = {r["key"] for r in lines if r.get("status") == "done"}
    assert copied == {k for k, d in decisions.items() if d == "copy"}  # the plan held
    assert keys(s3, bucket) == ["partner/customers.csv", "partner/orders.csv"]
    assert object_bytes(s3, bucket, "partner/orders.csv") == b"id,total\n1,20\n"
    left = sorted(p.name for p in (openssh_sftp.root / "drop").iterdir())
    assert left == ["notes.txt", "refunds.csv"]  # moved: both data files and done files
    archived = sorted(p.name for p in (openssh_sftp.root / "processed").iterdir())
    assert archived == ["customers.csv", "customers.csv.done", "orders.csv", "orders.csv.done"]
    summary = lines[-1]
    assert (summary["copied"], summary["waiting"], summary["excluded"]) == (2, 1, 1)
    rows = manifest_rows(manifest)
    files = {r["key"]: r for r in rows if r["kind"] == "file"}
    assert files["partner/refunds.csv"]["status"] == "waiting"
    big = files["partner/customers.csv"]
    assert big["status"] == "done" and big["part_size"] == 5 * 1024 * 1024 and big["parts"] == 2
    assert big["sha256"] == stored_sha256(s3, bucket, "partner/customers.csv")
    assert big["etag"] == s3.head_object(Bucket=bucket, Key="partner/customers.csv")["ETag"]


def test_manifest_matches_s3_after_kill_9_midway(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    count, size = 24, 256 * 1024
    for n in range(count):
        openssh_sftp.write_file(f"drop/f{n:02}.bin", size=size, seed=n)
    manifest = tmp_path / "run.jsonl"
    with FaultProxy(openssh_sftp.host, openssh_sftp.port) as proxy:
        slow = proxied(openssh_sftp, proxy, tmp_path)
        proxy.throttle(1024 * 1024, which="down")  # ~4 files a second: kill lands midway
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sftp_s3_tui",
                "copy",
                source_url(slow, "drop/"),
                f"s3://{bucket}/in/",
                *key_args(slow, s3_endpoint),
                "--files",
                "1",
                "--manifest",
                str(manifest),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if manifest.exists() and len(manifest.read_bytes().splitlines()) >= 4:
                    break
                time.sleep(0.02)
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=30)

    rows = manifest_rows(manifest)  # every line parses: rows are whole, none torn
    assert 4 <= len(rows) < count
    landed = set(keys(s3, bucket))
    for row in rows:
        assert row["status"] == "done"
        assert row["key"] in landed
        body = object_bytes(s3, bucket, row["key"])
        assert len(body) == row["bytes"] == size
        assert sha256(body) == row["sha256"]
    assert len(landed) <= len(rows) + 1  # at most the file in flight has no row yet


def test_watch_ships_dropped_files_once_pushes_metrics_and_stops_on_sigterm(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: Any,
) -> None:
    openssh_sftp.write_file("drop/first.csv", b"1\n")
    args = [
        sys.executable,
        "-m",
        "sftp_s3_tui",
        "watch",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/in/",
        *key_args(openssh_sftp, s3_endpoint),
        "--every",
        "0.3s",
        "--push-gateway",
        fresh_pushgateway.url,
        "--json",
    ]
    text = ""

    def pushed() -> bool:
        nonlocal text
        with urllib.request.urlopen(f"{fresh_pushgateway.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        return "sftp_s3_bytes_transferred_total" in text and 'job="sftp_s3_tui"' in text

    watcher = Watcher(args)
    try:
        wait_for(lambda: keys(s3, bucket) == ["in/first.csv"])
        openssh_sftp.write_file("drop/later/second.csv", b"2\n")  # dropped while it runs
        wait_for(lambda: len(keys(s3, bucket)) == 2)
        wait_for(pushed)
    finally:
        code, err = watcher.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert sorted(watcher.files()) == ["in/first.csv", "in/later/second.csv"]  # each once
    assert object_bytes(s3, bucket, "in/later/second.csv") == b"2\n"
    assert metric_value(text, "sftp_s3_bytes_transferred_total", job="sftp_s3_tui") >= 2

    # restarted, it remembers: two polls later nothing was shipped again
    s3.delete_object(Bucket=bucket, Key="in/first.csv")  # would come back if shipped again
    again = Watcher(args)
    try:
        wait_for(lambda: again.polls() >= 2)
    finally:
        code, err = again.stop()
    assert code == 0, err
    assert again.files() == []
    assert keys(s3, bucket) == ["in/later/second.csv"]
