"""S3 → SFTP deliveries export the metrics uploads do (issue 28), told apart by the
``direction`` label: real sshd, real S3, a real prometheus-pushgateway, the CLI run as a
user runs it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli, source_url
from tests.support.delivery import files_under, pattern, target_url
from tests.support.metrics import labelled_value, series
from tests.support.servers import SftpServerInfo
from tests.support.watcher import Watcher, wait_for

MiB = 1 << 20
JOB = "sftp_s3_tui"
#: What a finished run's last push must show as nothing going on.
LIVE_GAUGES = (
    "sftp_s3_parts_in_flight",
    "sftp_s3_files_running",
    "sftp_s3_files_queued",
    "sftp_s3_buffer_pool_bytes_in_use",
)


def _directions(text: str) -> set[str]:
    """The directions any pushed series of the job carries."""
    return {
        labels["direction"]
        for name in ("sftp_s3_bytes_transferred_total", "sftp_s3_files_total")
        for labels, _ in series(text, name, {"job": JOB})
        if "direction" in labels
    }


def test_a_delivery_pushes_its_bytes_files_and_finished_state_as_s3_to_sftp(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: Any,
) -> None:
    big, small = pattern(3 * MiB + 7, seed=3), b"id\n1\n"
    s3.put_object(Bucket=bucket, Key="out/big.bin", Body=big)
    s3.put_object(Bucket=bucket, Key="out/small.csv", Body=small)
    s3.put_object(Bucket=bucket, Key="out/kept.csv", Body=b"new")
    (openssh_sftp.root / "partner").mkdir(parents=True, exist_ok=True)
    (openssh_sftp.root / "partner" / "kept.csv").write_bytes(b"the partner's")

    done = run_cli(
        "copy",
        f"s3://{bucket}/out/",
        target_url(openssh_sftp, "partner/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "1MiB",
        "--memory",
        "64MiB",
        "--push-gateway",
        fresh_pushgateway.url,
    )

    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    assert files_under(openssh_sftp.root / "partner")["big.bin"] == big
    text = fresh_pushgateway.metrics_text()
    down = {"job": JOB, "direction": "s3_to_sftp"}
    value = lambda name, **labels: labelled_value(text, name, **down, **labels)  # noqa: E731
    assert value("sftp_s3_bytes_transferred_total") == len(big) + len(small)
    assert value("sftp_s3_parts_completed_total") == 4 + 1
    assert value("sftp_s3_files_total", outcome="done") == 2
    assert value("sftp_s3_files_total", outcome="skipped") == 1  # skip-existing kept it
    assert value("sftp_s3_files_total", outcome="failed") == 0
    # the run is over: its speed is 0, nothing is in flight, its totals stay
    assert value("sftp_s3_throughput_bytes_per_second") == 0
    for live in LIVE_GAUGES:
        assert labelled_value(text, live, job=JOB) == 0, live
    assert labelled_value(text, "sftp_s3_buffer_pool_budget_bytes", job=JOB) == 64 * MiB
    assert labelled_value(text, "sftp_s3_process_resident_memory_bytes", job=JOB) > 0
    assert series(text, "sftp_s3_process_disk_write_bytes_total", {"job": JOB})
    pushed_at = labelled_value(text, "sftp_s3_last_sample_timestamp_seconds", job=JOB)
    assert time.time() - 120 < pushed_at <= time.time()
    # a delivery's part latencies: its ranged GETs and its SFTP writes, not an upload's
    assert labelled_value(text, "sftp_s3_s3_read_seconds_count", job=JOB) == 5
    assert labelled_value(text, "sftp_s3_sftp_write_seconds_count", job=JOB) == 5
    assert labelled_value(text, "sftp_s3_s3_upload_seconds_count", job=JOB) == 0
    assert _directions(text) == {"s3_to_sftp"}  # a delivery run has no upload series
    [(info, _)] = series(text, "sftp_s3_run_info", {"job": JOB})
    assert info["command"] == "copy"


def test_an_upload_still_pushes_sftp_to_s3_only(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, fresh_pushgateway: Any
) -> None:
    remote = openssh_sftp.write_file("m/data.bin", size=2 * MiB + 1, seed=4)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "m/data.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--push-gateway",
        fresh_pushgateway.url,
    )

    assert done.returncode == 0, done.stderr
    text = fresh_pushgateway.metrics_text()
    up = {"job": JOB, "direction": "sftp_to_s3"}
    assert labelled_value(text, "sftp_s3_bytes_transferred_total", **up) == remote.size
    assert labelled_value(text, "sftp_s3_files_total", outcome="done", **up) == 1
    assert labelled_value(text, "sftp_s3_throughput_bytes_per_second", **up) == 0
    assert _directions(text) == {"sftp_to_s3"}
    assert labelled_value(text, "sftp_s3_s3_read_seconds_count", job=JOB) == 0


def test_a_delivery_watch_pushes_what_it_delivered_and_stops_at_zero_speed(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: Any,
) -> None:
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\n")
    watcher = Watcher(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "watch",
            f"s3://{bucket}/out/",
            target_url(openssh_sftp, "partner/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--every",
            "0.3s",
            "--json",
            "--push-gateway",
            fresh_pushgateway.url,
        ]
    )
    try:
        wait_for(lambda: any(line.get("status") == "done" for line in watcher.lines))
        s3.put_object(Bucket=bucket, Key="out/b.csv", Body=b"b,22\n")
        wait_for(lambda: sum(line.get("status") == "done" for line in watcher.lines) == 2)
    finally:
        code, err = watcher.stop()
    assert code == 0, err
    assert "Traceback" not in err

    text = fresh_pushgateway.metrics_text()
    down = {"job": JOB, "direction": "s3_to_sftp"}
    assert labelled_value(text, "sftp_s3_bytes_transferred_total", **down) == 4 + 5
    assert labelled_value(text, "sftp_s3_files_total", outcome="done", **down) == 2
    assert labelled_value(text, "sftp_s3_throughput_bytes_per_second", **down) == 0
    assert _directions(text) == {"s3_to_sftp"}
    [(info, _)] = series(text, "sftp_s3_run_info", {"job": JOB})
    assert info["command"] == "watch"


def test_a_delivery_serves_its_metrics_on_the_metrics_port(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """``--metrics-port`` serves ``/metrics`` while a delivery watch runs, fed by the same
    events (the port is one the test found free)."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\n")
    watcher = Watcher(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "watch",
            f"s3://{bucket}/out/",
            target_url(openssh_sftp, "partner/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--every",
            "0.3s",
            "--json",
            "--metrics-port",
            str(port),
        ]
    )
    text = ""

    def served() -> bool:
        nonlocal text
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return False  # not serving yet
        found = series(text, "sftp_s3_files_total", {"direction": "s3_to_sftp", "outcome": "done"})
        return bool(found) and found[0][1] == 1

    try:
        wait_for(served)
    finally:
        code, err = watcher.stop()
    assert code == 0, err
    assert labelled_value(text, "sftp_s3_bytes_transferred_total", direction="s3_to_sftp") == 4


def test_a_delivery_on_a_terminal_shows_the_progress_block_once_per_object(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """On a terminal ``copy s3://… sftp://…`` shows the live block an upload shows (totals,
    files done / total), and each object's line once (the delivery's own)."""
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\n")
    s3.put_object(Bucket=bucket, Key="out/b.bin", Body=pattern(2 * MiB, seed=5))
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            f"s3://{bucket}/out/",
            target_url(openssh_sftp, "partner/"),
            *key_args(openssh_sftp, s3_endpoint),
        ],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = process.wait(timeout=120)
    stderr = b"".join(chunks).decode(errors="replace")

    assert code == 0, stderr
    assert "files 2/2" in stderr, stderr  # the block's totals line, as an upload's
    assert "2.0 MiB" in stderr
    assert stderr.count("a.csv → ") == 1, stderr  # the object's line, not twice
    assert "2 delivered, 0 skipped, 0 failed" in stderr


async def test_the_airflow_delivery_task_pushes_its_metrics_grouped_by_the_task(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: Any,
) -> None:
    """What ``StreamingS3ToSFTPOperator(push_gateway=…)`` runs, without Airflow: the task's
    delivery pushed under its task instance's labels, as the upload task's copy is."""
    from sftp_s3_tui.airflow.delivery import DeliveryRun, deliver_for_task
    from sftp_s3_tui.engine.plan.delivery import DeliveryTarget
    from sftp_s3_tui.requests import TransferFlags
    from sftp_s3_tui.requests.delivery import task_delivery_request

    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\n")
    target = DeliveryTarget(openssh_sftp.endpoint(), openssh_sftp.remote_path("inbox/"), True)
    request = task_delivery_request(bucket, "out/", target, s3_endpoint, TransferFlags())
    labels = {"dag_id": "deliver", "task_id": "to_partner", "map_index": "-1"}

    run = await deliver_for_task(
        DeliveryRun(request), push_gateway=fresh_pushgateway.url, metric_labels=labels
    )

    assert [r.status for r in run.results] == ["done"]
    text = fresh_pushgateway.metrics_text()
    [(pushed, value)] = series(text, "sftp_s3_bytes_transferred_total", {"dag_id": "deliver"})
    assert pushed["direction"] == "s3_to_sftp" and value == 4
    assert pushed["task_id"] == "to_partner" and pushed["instance"] == "airflow"
    assert labelled_value(text, "sftp_s3_files_total", outcome="done", dag_id="deliver") == 1
