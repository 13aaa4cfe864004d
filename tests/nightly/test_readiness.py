"""A partner is still writing tonight's files: the gate holds back what is not complete and
reports it as waiting, never as failed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.nightly.source_actions import SourceAction
from sftp_s3_tui.engine.plan.filters import FileFilter
from sftp_s3_tui.engine.plan.readiness import ReadinessGate, StabilityTracker, check_ready
from sftp_s3_tui.engine.plan.sources import FileJob, expand
from sftp_s3_tui.engine.sftp.pool import SftpPool
from tests.support.nightly import manifest_rows, nightly
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes


async def test_a_growing_file_waits_until_it_is_stable(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    growing = sftp_server.write_file("drop/export.csv", b"id\n1\n")
    sftp_server.write_file("drop/done-long-ago.csv", b"id\n9\n", mtime=time.time() - 600)
    gate = ReadinessGate(stable_seconds=1.0)

    async def partner_appends_meanwhile(seconds: float) -> None:
        await asyncio.sleep(seconds / 2)
        with growing.local_path.open("ab") as out:
            out.write(b"2\n")
        await asyncio.sleep(seconds / 2)

    async with SftpPool() as pool:
        jobs = await expand(
            pool,
            sftp_server.endpoint(),
            sftp_server.remote_path("drop/"),
            parse_s3_url(f"s3://{bucket}/in/"),
        )
        verdict = await check_ready(jobs, gate, pool, sleep=partner_appends_meanwhile)
    assert [j.path.rsplit("/", 1)[1] for j in verdict.ready] == ["done-long-ago.csv"]
    [(job, why)] = verdict.waiting
    assert job.path == growing.remote_path and "still changing" in why

    # the same run through the front-to-back path: the growing file is waiting, in the manifest
    report = await nightly(
        sftp_server,
        sftp_server.remote_path("drop/"),
        f"s3://{bucket}/in/",
        s3_endpoint,
        gate=ReadinessGate(stable_seconds=1.0),
        manifest=tmp_path / "m.jsonl",
    )
    assert [r.status for r in report.results] == [TransferState.DONE] * 2  # stable now
    assert object_bytes(s3, bucket, "in/export.csv") == b"id\n1\n2\n"
    assert report.waiting == []


async def test_min_age_holds_back_young_files(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    openssh_sftp.write_file("drop/old.csv", b"old\n", mtime=time.time() - 3600)
    openssh_sftp.write_file("drop/new.csv", b"new\n")

    report = await nightly(
        openssh_sftp,
        openssh_sftp.remote_path("drop/"),
        f"s3://{bucket}/in/",
        s3_endpoint,
        gate=ReadinessGate(min_age_seconds=300),
        manifest=tmp_path / "m.jsonl",
    )

    assert keys(s3, bucket) == ["in/old.csv"]
    [(job, why)] = report.waiting
    assert job.path.endswith("/new.csv") and "waiting until 300 s old" in why
    assert report.failed == []
    statuses = {
        r["source"]["path"].rsplit("/", 1)[1]: r["status"]
        for r in manifest_rows(tmp_path / "m.jsonl")
    }
    assert statuses == {"new.csv": "waiting", "old.csv": "done"}


@pytest.mark.sftp_families
async def test_done_file_pairing_and_cleanup(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    ready = openssh_sftp.write_file("drop/x.csv", b"x\n")
    marker = openssh_sftp.write_file("drop/x.csv.done", b"")
    pending = openssh_sftp.write_file("drop/y.csv", b"y\n")

    report = await nightly(
        openssh_sftp,
        openssh_sftp.remote_path("drop/"),
        f"s3://{bucket}/in/",
        s3_endpoint,
        gate=ReadinessGate(done_suffix=".done"),
        action=SourceAction(delete=True),
        file_filter=FileFilter.build(include=["*.csv"]),
    )

    assert keys(s3, bucket) == ["in/x.csv"]  # never the done file itself
    assert not ready.local_path.exists() and not marker.local_path.exists()
    assert pending.local_path.exists()
    [(job, why)] = report.waiting
    assert job.path == pending.remote_path and "done file" in why
    assert [o.action for o in report.outcomes] == ["deleted", "deleted"]


def test_watch_tracker_needs_no_wait() -> None:
    now = [0.0]
    tracker = StabilityTracker(clock=lambda: now[0])
    job = FileJob(SftpEndpoint("h"), "/in/a", 1, 10, "bucket", "a")
    assert tracker.observe(job) == 0.0
    now[0] = 40.0
    assert tracker.observe(job) == 40.0
    now[0] = 50.0
    assert tracker.observe(FileJob(SftpEndpoint("h"), "/in/a", 2, 11, "bucket", "a")) == 0.0
