"""A delivery to a partner's SFTP (``copy s3://… sftp://…``) is heard of like a copy: one
OpenLineage run with the reversed datasets (the object in, the partner's file out), the
healthchecks-style hooks and ``--log-format json`` — each with one run id, never a secret."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import asyncssh

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, target_url
from tests.support.observe import LOG_KEYS, assert_no_secret, json_lines, secrets_env
from tests.support.receiver import closed_port_url, http_receiver
from tests.support.servers import SftpServerInfo


def test_a_delivery_is_one_lineage_run_from_the_objects_to_the_partners_files(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    bodies = {"exports/orders.csv": b"id,total\n1,20\n", "exports/2026/big.bin": b"x" * 70_000}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    etags = {key: s3.head_object(Bucket=bucket, Key=key)["ETag"] for key in bodies}

    with http_receiver() as receiver:
        done = run_cli(
            "copy",
            f"s3://{bucket}/exports/",
            target_url(openssh_sftp, "outbound/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--delete-source",
            "--hook-url",
            f"{receiver.url}/ping/abc",
            "--log-format",
            "json",
            env={**secrets_env(), "OPENLINEAGE_URL": receiver.url},
        )
        events = [r.json() for r in receiver.at("/api/v1/lineage")]
        starts, successes = receiver.at("/ping/abc/start"), receiver.at("/ping/abc")
        everything_sent = receiver.all_bodies()

    assert done.returncode == 0, done.stderr
    assert files_under(openssh_sftp.root / "outbound") == {
        "orders.csv": bodies["exports/orders.csv"],
        "2026/big.bin": bodies["exports/2026/big.bin"],
    }
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="exports/")

    # OpenLineage: one run, START then COMPLETE; objects in, the partner's files out.
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    (run_id,) = {e["run"]["runId"] for e in events}
    complete = events[1]
    assert complete["job"]["facets"]["jobType"]["jobType"] == "DELIVERY"
    assert sorted((d["namespace"], d["name"]) for d in complete["inputs"]) == [
        (f"s3://{bucket}", "exports/2026/big.bin"),
        (f"s3://{bucket}", "exports/orders.csv"),
    ]
    namespace = f"sftp://{openssh_sftp.host}:{openssh_sftp.port}"
    host_key = asyncssh.import_public_key(openssh_sftp.known_hosts.read_text().split(None, 1)[1])
    shown_host_key = f"{host_key.get_algorithm()} {host_key.get_fingerprint('sha256')}"
    outputs = {d["name"]: d for d in complete["outputs"]}
    assert {d["namespace"] for d in outputs.values()} == {namespace}
    for key, relative in (
        ("exports/orders.csv", "orders.csv"),
        ("exports/2026/big.bin", "2026/big.bin"),
    ):
        facet = outputs[openssh_sftp.remote_path(f"outbound/{relative}")]["facets"]["sftpS3File"]
        assert facet["size"] == len(bodies[key])
        assert facet["etag"] == etags[key]
        assert facet["etag"].strip('"') == hashlib.md5(bodies[key]).hexdigest()
        assert facet["verifiedBy"] == "crc32+size"
        assert facet["hostKeyFingerprint"] == shown_host_key
        assert facet["sourceAction"] == "delete"
        assert facet["status"] == "done"

    # Hooks: /start, then the URL itself on success, with the run id and the summary.
    assert [r.query for r in starts] == [f"rid={run_id}"]
    assert [r.query for r in successes] == [f"rid={run_id}"]
    body = successes[0].json()
    assert body["event"] == "success" and body["copied"] == 2 and body["failed"] == 0
    assert body["run_id"] == run_id and body["direction"] == "s3-to-sftp"

    # JSON logs: every stderr line an object with the common keys and the run's id.
    logs = json_lines(done.stderr)
    assert logs and all(set(line) >= LOG_KEYS for line in logs)
    assert {line["run_id"] for line in logs} == {run_id}
    assert logs[0]["event"] == "run.start"
    landed = {line["key"] for line in logs if line["event"] == "file.done"}
    assert landed == {f"s3://{bucket}/exports/orders.csv", f"s3://{bucket}/exports/2026/big.bin"}
    assert logs[-1]["event"] == "run.end" and logs[-1]["copied"] == 2

    assert_no_secret(everything_sent, done.stderr, done.stdout)


def test_a_refused_key_fails_the_delivery_in_the_file_transport_and_pings_fail(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="exports/ok.csv", Body=b"fine")
    s3.put_object(Bucket=bucket, Key="exports/../../escape.csv", Body=b"evil")
    events_file = tmp_path / "lineage.jsonl"
    config = tmp_path / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {events_file}\n  append: true\n")

    with http_receiver() as receiver:
        failed = run_cli(
            "copy",
            f"s3://{bucket}/exports/",
            target_url(openssh_sftp, "partner/in/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--hook-url",
            f"{receiver.url}/ping/abc",
            "--notify-on",
            "fail",
            env={**secrets_env(), "OPENLINEAGE_CONFIG": str(config)},
        )
        pings = {r.path: r for r in receiver.requests}
        everything_sent = receiver.all_bodies()

    assert failed.returncode == 1, failed.stderr
    assert "The key 'exports/../../escape.csv' has a '..' segment" in failed.stderr
    assert files_under(openssh_sftp.root) == {"partner/in/ok.csv": b"fine"}
    events = json_lines(events_file.read_text())
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert "1 of 2 object(s) failed" in events[1]["run"]["facets"]["errorMessage"]["message"]
    # what did land is still named: the one object in, the partner's file out
    assert [d["name"] for d in events[1]["inputs"]] == ["exports/ok.csv"]
    assert [d["name"] for d in events[1]["outputs"]] == [
        openssh_sftp.remote_path("partner/in/ok.csv")
    ]
    # --notify-on fail: the start ping (so the monitor measures the run) and the fail ping
    assert set(pings) == {"/ping/abc/start", "/ping/abc/fail"}
    fail = pings["/ping/abc/fail"].json()
    assert fail["event"] == "fail" and fail["failed"] == 1 and fail["copied"] == 1
    assert fail["run_id"] == events[0]["run"]["runId"]
    assert_no_secret(everything_sent, events_file.read_text(), failed.stderr)


def test_a_hook_endpoint_that_is_down_costs_one_warning_and_not_the_delivery(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="daily.csv", Body=b"a,b\n")

    done = run_cli(
        "copy",
        f"s3://{bucket}/daily.csv",
        target_url(openssh_sftp, "out/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--hook-url",
        closed_port_url(),
        "--quiet",
    )

    assert done.returncode == 0, done.stderr
    assert files_under(openssh_sftp.root / "out") == {"daily.csv": b"a,b\n"}
    warnings = [line for line in done.stderr.splitlines() if "hook" in line]
    assert len(warnings) == 1, done.stderr  # start and success both failed: one warning
    assert warnings[0].startswith("sftp-s3-tui: warning: the hook http://127.0.0.1:")
