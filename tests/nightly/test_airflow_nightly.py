"""The Airflow task's nightly run, without Airflow: what the operator runs on a worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sftp_s3_tui.airflow.transfer import (
    destination,
    nightly_to_s3,
    summarize,
    transfer_options,
)
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint
from sftp_s3_tui.requests import RunFlags, run_options
from tests.support.nightly import manifest_rows
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes


async def test_the_nightly_task_lands_archives_and_records(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    old = time.time() - 3600
    openssh_sftp.write_file("drop/a.csv", b"a\n", mtime=old)
    openssh_sftp.write_file("drop/a.csv.done", b"", mtime=old)
    openssh_sftp.write_file("drop/b.csv", b"b\n")  # no done file yet
    openssh_sftp.write_file("drop/c.log", b"log\n", mtime=old)
    processed = openssh_sftp.remote_path("processed")
    manifest = tmp_path / "nightly.jsonl"
    run = run_options(
        RunFlags(
            rules=((True, "*.csv"),),
            done_file=".done",
            min_age="5m",
            move_to=processed,
            manifest=str(manifest),
        )
    )
    options = transfer_options(conflict=ConflictPolicy.SKIP_EXISTING)

    report = await nightly_to_s3(
        openssh_sftp.endpoint(),
        [openssh_sftp.remote_path("drop/")],
        destination(bucket, "partner/2026-12-01/"),
        s3_endpoint,
        options,
        run,
    )
    summary = summarize(report.results, 1.0, report)

    assert keys(s3, bucket) == ["partner/2026-12-01/a.csv"]
    assert object_bytes(s3, bucket, "partner/2026-12-01/a.csv") == b"a\n"
    assert sorted(p.name for p in (openssh_sftp.root / "processed").iterdir()) == [
        "a.csv",
        "a.csv.done",
    ]
    assert (summary["copied"], summary["failed"], summary["excluded"]) == (1, 0, 1)
    assert [w["key"] for w in summary["waiting"]] == ["partner/2026-12-01/b.csv"]
    assert {a["source_action"] for a in summary["source_actions"]} == {"moved"}
    statuses = sorted(r["status"] for r in manifest_rows(manifest) if r["kind"] == "file")
    assert statuses == ["done", "waiting"]
