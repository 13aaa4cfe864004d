"""Headless runs push their numbers to a real push gateway and use saved profiles."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.profiles import (
    Profile,
    ProfileStore,
    S3Settings,
    Secret,
    SftpAuth,
    SftpSettings,
)
from tests.support.cli import key_args, run_cli, source_url
from tests.support.metrics import metric_value
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes


def test_push_gateway_receives_bytes_transferred(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, fresh_pushgateway: Any
) -> None:
    pushgateway = fresh_pushgateway.url
    remote = openssh_sftp.write_file("m/data.bin", size=11 * 1024 * 1024 + 5, seed=8)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "m/data.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--push-gateway",
        pushgateway,
    )

    assert done.returncode == 0, done.stderr
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=10) as response:
        text = response.read().decode()
    job = "sftp_s3_tui"
    assert metric_value(text, "sftp_s3_bytes_transferred_total", job=job) == remote.size
    assert metric_value(text, "sftp_s3_parts_completed_total", job=job) == 3
    assert 'outcome="done"' in text


def test_dead_push_gateway_warns_once_and_the_copy_succeeds(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("m/a.csv", b"a")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "m/a.csv"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--push-gateway",
        "http://127.0.0.1:9",
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning") == 1
    assert keys(s3, bucket) == ["a.csv"]


def test_copy_with_a_saved_profile(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("p/orders.csv", b"id\n7\n")
    assert openssh_sftp.password_user and openssh_sftp.password
    profile = Profile(
        name="partner",
        sftp=SftpSettings(
            host=openssh_sftp.host,
            port=openssh_sftp.port,
            user=openssh_sftp.password_user,
            auth=SftpAuth.PASSWORD,
            password=Secret.from_env("PARTNER_PASSWORD"),
            known_hosts=str(openssh_sftp.known_hosts),
        ),
        s3=S3Settings(
            endpoint_url=s3_endpoint.endpoint_url,
            region="us-east-1",
            path_style=True,
            bucket=bucket,
            prefix="partner/",
        ),
    )
    ProfileStore().save(profile)

    done = run_cli(
        "copy",
        "--profile",
        "partner",
        remote.remote_path,
        "--json",
        env={"PARTNER_PASSWORD": openssh_sftp.password},
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["key"] == "partner/orders.csv"
    assert object_bytes(s3, bucket, "partner/orders.csv") == b"id\n7\n"
    assert openssh_sftp.password not in done.stdout + done.stderr


def test_after_a_run_the_gateway_shows_it_finished_not_still_sending(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, fresh_pushgateway: Any
) -> None:
    """The group a run leaves in the gateway tells the truth once it has ended: no rate,
    nothing in flight, its totals kept; cumulative numbers are counters, no ``_created``."""
    remote = openssh_sftp.write_file("m/data.bin", size=11 * 1024 * 1024 + 5, seed=8)
    done = run_cli(
        "copy",
        source_url(openssh_sftp, "m/data.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--push-gateway",
        fresh_pushgateway.url,
    )
    assert done.returncode == 0, done.stderr

    text = fresh_pushgateway.metrics_text()
    job = "sftp_s3_tui"
    assert metric_value(text, "sftp_s3_bytes_transferred_total", job=job) == remote.size
    for live in (
        "sftp_s3_throughput_bytes_per_second",
        "sftp_s3_parts_in_flight",
        "sftp_s3_files_running",
        "sftp_s3_files_queued",
        "sftp_s3_buffer_pool_bytes_in_use",
    ):
        assert metric_value(text, live, job=job) == 0, live
    pushed_at = metric_value(text, "sftp_s3_last_sample_timestamp_seconds", job=job)
    assert time.time() - 120 < pushed_at <= time.time()
    types = dict(
        line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE sftp_s3_")
    )
    assert types["sftp_s3_process_disk_write_bytes_total"] == "counter"
    assert types["sftp_s3_process_cpu_seconds_total"] == "counter"
    assert not [name for name in types if name.endswith("_created") or "percent" in name]


def test_a_profile_whose_password_variable_is_unset_says_so_in_one_line(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, monkeypatch: Any
) -> None:
    monkeypatch.delenv("SFTP_PASSWORD", raising=False)
    ProfileStore().save(
        Profile(
            name="partner",
            sftp=SftpSettings(
                host=openssh_sftp.host,
                port=openssh_sftp.port,
                user="etl",
                auth=SftpAuth.PASSWORD,
                password=Secret.from_env("SFTP_PASSWORD"),
                known_hosts=str(openssh_sftp.known_hosts),
            ),
            s3=S3Settings(endpoint_url=s3_endpoint.endpoint_url, bucket="landing"),
        )
    )

    done = run_cli("copy", "--profile", "partner", "/in/orders.csv")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sftp-s3-tui: error: Profile 'partner' takes the SFTP password from the environment "
        "variable SFTP_PASSWORD, which is not set — set SFTP_PASSWORD before starting "
        "sftp-s3-tui, or edit the profile's sftp.password"
    ]
