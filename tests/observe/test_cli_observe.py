"""The platform around a nightly copy hears of it: the lineage catalog (OpenLineage over
HTTP, or its file transport), a healthchecks-style monitor (hooks) and a log pipeline (JSON
lines on stderr) — each with the same run id as the manifest, and never a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli, source_url
from tests.support.nightly import manifest_rows
from tests.support.observe import AWS_SECRET, LOG_KEYS, assert_no_secret, json_lines, secrets_env
from tests.support.receiver import closed_port_url, http_receiver
from tests.support.servers import PushGateway, SftpServerInfo
from tests.support.transfers import keys


def test_lineage_hooks_and_json_logs_share_the_manifests_run_id(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    fresh_pushgateway: PushGateway,
) -> None:
    orders = openssh_sftp.write_file("drop/orders.csv", b"id,total\n1,20\n")
    big = openssh_sftp.write_file("drop/customers.csv", size=6 * 1024 * 1024 + 3, seed=2)
    manifest = tmp_path / "run.jsonl"

    with http_receiver() as receiver:
        done = run_cli(
            "copy",
            source_url(openssh_sftp, "drop/"),
            f"s3://{bucket}/landing/",
            *key_args(openssh_sftp, s3_endpoint),
            "--part-size",
            "5MiB",
            "--manifest",
            str(manifest),
            "--hook-url",
            f"{receiver.url}/ping/abc",
            "--log-format",
            "json",
            "--push-gateway",
            fresh_pushgateway.url,
            env={**secrets_env(), "OPENLINEAGE_URL": receiver.url},
        )
        assert done.returncode == 0, done.stderr
        events = [r.json() for r in receiver.at("/api/v1/lineage")]
        starts, successes = receiver.at("/ping/abc/start"), receiver.at("/ping/abc")
        everything_sent = receiver.all_bodies()

    assert keys(s3, bucket) == ["landing/customers.csv", "landing/orders.csv"]
    rows = [r for r in manifest_rows(manifest) if r["kind"] == "file"]
    run_ids = {r["run_id"] for r in rows}
    assert len(run_ids) == 1
    (run_id,) = run_ids

    # OpenLineage: one run, START then COMPLETE, a dataset pair per landed file.
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in events} == {run_id}
    complete = events[1]
    namespace = f"sftp://{openssh_sftp.host}:{openssh_sftp.port}"
    assert sorted((d["namespace"], d["name"]) for d in complete["inputs"]) == [
        (namespace, openssh_sftp.remote_path("drop/customers.csv")),
        (namespace, openssh_sftp.remote_path("drop/orders.csv")),
    ]
    outputs = {d["name"]: d for d in complete["outputs"]}
    assert set(outputs) == {"landing/customers.csv", "landing/orders.csv"}
    assert {d["namespace"] for d in outputs.values()} == {f"s3://{bucket}"}
    row_of = {r["key"]: r for r in rows}
    for key, data in (("landing/orders.csv", orders), ("landing/customers.csv", big)):
        facet = outputs[key]["facets"]["sftpS3File"]
        head = s3.head_object(Bucket=bucket, Key=key)
        assert facet["size"] == data.size and facet["sha256"] == data.sha256
        assert facet["etag"] == head["ETag"] == row_of[key]["etag"]
        assert facet["verifiedBy"] == row_of[key]["verified_by"] and facet["verifiedBy"]
        assert facet["hostKeyFingerprint"] == row_of[key]["host_key"]
        assert facet["hostKeyFingerprint"]

    # Hooks: /start, then the URL itself on success, each with the run id and summary.
    assert [r.query for r in starts] == [f"rid={run_id}"]
    assert [r.query for r in successes] == [f"rid={run_id}"]
    body = successes[0].json()
    assert body["event"] == "success" and body["copied"] == 2 and body["failed"] == 0
    assert body["run_id"] == run_id

    # JSON logs: every stderr line an object with the common keys and the same run id.
    logs = json_lines(done.stderr)
    assert logs and all(set(line) >= LOG_KEYS for line in logs)
    assert {line["run_id"] for line in logs} == {run_id}
    landed = {line["key"] for line in logs if line["event"] == "file.done"}
    assert landed == {f"s3://{bucket}/landing/customers.csv", f"s3://{bucket}/landing/orders.csv"}
    assert logs[-1]["event"] == "run.end" and logs[-1]["copied"] == 2

    # Metrics: the pushed run is the same run.
    metrics = fresh_pushgateway.metrics_text()
    info = [line for line in metrics.splitlines() if line.startswith("sftp_s3_run_info{")]
    assert len(info) == 1 and f'run_id="{run_id}"' in info[0] and 'command="copy"' in info[0]

    assert_no_secret(everything_sent, done.stderr, done.stdout, manifest.read_text(), metrics)


def test_a_failed_copy_is_a_fail_event_in_the_file_transport_and_a_fail_ping(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    events_file = tmp_path / "lineage.jsonl"
    (tmp_path / "openlineage.yml").write_text(
        f"transport:\n  type: file\n  log_file_path: {events_file}\n  append: true\n"
    )
    with http_receiver() as receiver:
        failed = subprocess.run(
            [
                sys.executable,
                "-m",
                "sftp_s3_tui",
                "copy",
                source_url(openssh_sftp, "drop/not-there.csv"),
                f"s3://{bucket}/landing/",
                *key_args(openssh_sftp, s3_endpoint),
                "--hook-url",
                f"{receiver.url}/ping/abc",
                "--notify-on",
                "fail",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,  # where the client finds openlineage.yml
            env={**os.environ, **secrets_env()},
        )
        pings = {r.path: r for r in receiver.requests}
        everything_sent = receiver.all_bodies()

    assert failed.returncode == 3, failed.stderr
    assert "not-there.csv" in failed.stderr
    events = json_lines(events_file.read_text())
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert "not-there.csv" in events[1]["run"]["facets"]["errorMessage"]["message"]
    # --notify-on fail: the start ping (so the monitor measures the run) and the fail ping
    assert set(pings) == {"/ping/abc/start", "/ping/abc/fail"}
    assert pings["/ping/abc/fail"].json()["event"] == "fail"
    assert "not-there.csv" in pings["/ping/abc/fail"].json()["error"]
    assert_no_secret(everything_sent, events_file.read_text(), failed.stderr)


def test_a_hook_endpoint_that_is_down_costs_one_warning_and_not_the_copy(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    openssh_sftp.write_file("drop/b.csv", b"b\n")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/in/",
        *key_args(openssh_sftp, s3_endpoint),
        "--hook-url",
        closed_port_url(),
        "--quiet",
    )

    assert done.returncode == 0, done.stderr
    assert keys(s3, bucket) == ["in/a.csv", "in/b.csv"]
    warnings = [line for line in done.stderr.splitlines() if "hook" in line]
    assert len(warnings) == 1, done.stderr  # start and success both failed: one warning
    assert warnings[0].startswith("sftp-s3-tui: warning: the hook http://127.0.0.1:")
    assert "the copy goes on" in warnings[0]


def test_without_lineage_configured_the_client_is_not_imported(tmp_path: Path) -> None:
    """Start-up stays quick: the OpenLineage client (over a second) loads only when asked."""
    probe = (
        "import sys, asyncio\n"
        "from sftp_s3_tui.observe.session import Observers\n"
        "from sftp_s3_tui.observe.options import ObserveOptions\n"
        "async def main():\n"
        "    o = Observers(ObserveOptions(), job_name='copy:s3://b/')\n"
        "    o.end(o.begin(), {}, ok=True)\n"
        "    await o.close()\n"
        "asyncio.run(main())\n"
        "print('openlineage' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.stdout.strip() == "False", done.stderr


def test_a_profiles_notify_table_with_a_password_login_leaks_nothing(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The partner's profile logs in with a password and names the hook; every event, log
    line and hook body of the run is free of the password and the AWS secret key."""
    from sftp_s3_tui.profiles import (
        NotifySettings,
        Profile,
        ProfileStore,
        S3Settings,
        Secret,
        SftpAuth,
        SftpSettings,
    )

    remote = openssh_sftp.write_file("p/orders.csv", b"id\n7\n")
    assert openssh_sftp.password_user and openssh_sftp.password
    with http_receiver() as receiver:
        ProfileStore().save(
            Profile(
                name="partner-notify",
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
                notify=NotifySettings(hook_url=f"{receiver.url}/ping/partner"),
            )
        )
        done = run_cli(
            "copy",
            "--profile",
            "partner-notify",
            remote.remote_path,
            "--log-format",
            "json",
            "-v",
            env={
                "PARTNER_PASSWORD": openssh_sftp.password,
                "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "OPENLINEAGE_URL": receiver.url,
            },
        )
        everything_sent = receiver.all_bodies()
        paths = sorted(r.path for r in receiver.requests)

    assert done.returncode == 0, done.stderr
    assert keys(s3, bucket) == ["partner/orders.csv"]
    assert paths == ["/api/v1/lineage", "/api/v1/lineage", "/ping/partner", "/ping/partner/start"]
    assert json_lines(done.stderr)  # every stderr line is a JSON object, -v included
    for text in (everything_sent, done.stderr, done.stdout):
        assert openssh_sftp.password not in text
        assert AWS_SECRET not in text


def test_json_logs_on_a_terminal_have_no_progress_line_and_the_error_is_json(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A pipeline may run the CLI under a pseudo-terminal: with --log-format json, stderr is
    still nothing but JSON objects, the closing error included."""
    import pty

    openssh_sftp.write_file("drop/a.csv", b"a\n")

    def on_a_terminal(*args: str) -> tuple[int, str]:
        master, slave = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "sftp_s3_tui", *args],
            stdout=subprocess.DEVNULL,
            stderr=slave,
            env=dict(os.environ),
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
        return process.wait(timeout=120), b"".join(chunks).decode()

    common = [*key_args(openssh_sftp, s3_endpoint), "--log-format", "json"]
    code, stderr = on_a_terminal(
        "copy", source_url(openssh_sftp, "drop/"), f"s3://{bucket}/in/", *common
    )
    assert code == 0, stderr
    logs = json_lines(stderr.replace("\r\n", "\n"))  # no progress line: only objects
    events = [line["event"] for line in logs]
    assert events[0] == "run.start" and events[-1] == "run.end", events
    assert "file.done" in events and not any("files 1/1" in line for line in stderr.splitlines())
    assert keys(s3, bucket) == ["in/a.csv"]

    code, stderr = on_a_terminal(
        "copy", source_url(openssh_sftp, "drop/none.csv"), f"s3://{bucket}/in/", *common
    )
    assert code == 3
    last = json_lines(stderr.replace("\r\n", "\n"))[-1]
    assert last["event"] == "error" and last["level"] == "error"
    assert "none.csv" in last["error"] and last["hint"]


def test_a_dry_run_tells_nobody(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A plan moves nothing: no lineage run, no ping."""
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    with http_receiver() as receiver:
        planned = run_cli(
            "copy",
            source_url(openssh_sftp, "drop/"),
            f"s3://{bucket}/in/",
            *key_args(openssh_sftp, s3_endpoint),
            "--dry-run",
            "--hook-url",
            f"{receiver.url}/ping/abc",
            env={"OPENLINEAGE_URL": receiver.url},
        )
        sent = list(receiver.requests)
    assert planned.returncode == 0, planned.stderr
    assert "a.csv" in planned.stdout
    assert sent == [] and keys(s3, bucket) == []
