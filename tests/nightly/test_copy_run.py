"""A run's per-file end: told to ``on_file`` at once when nothing follows the copy."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.events import TransferResult, TransferState
from sftp_s3_tui.engine.nightly.run import CopyRun
from sftp_s3_tui.engine.plan.filters import source_root
from sftp_s3_tui.engine.plan.selection import select_jobs
from sftp_s3_tui.engine.plan.sources import FileJob
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import SftpServerInfo


async def test_a_failing_on_file_is_logged_and_the_run_goes_on(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a manifest, observer or source action a file's end runs inside the event
    that reports it (no task per file). A caller's ``on_file`` that fails there is logged
    and the other files are still copied and told."""
    for n in range(6):
        embedded_sftp.write_file(f"drop/f{n}.csv", f"{n}\n".encode())
    source = embedded_sftp.remote_path("drop/")
    told: list[tuple[str, TransferState]] = []

    def on_file(job: FileJob, result: TransferResult) -> None:
        told.append((job.path.rsplit("/", 1)[-1], result.status))
        if job.path.endswith("f2.csv"):
            raise RuntimeError("the printer broke")

    async with TransferQueue(s3_endpoint) as queue:
        jobs = await queue.expand(embedded_sftp.endpoint(), source, parse_s3_url(f"s3://{bucket}/"))
        selection = await select_jobs(queue.sftp, jobs, source_root(source))
        report = await CopyRun(queue, on_file=on_file).run(selection)

    assert [r.status for r in report.results] == [TransferState.DONE] * 6
    assert sorted(told) == [(f"f{n}.csv", TransferState.DONE) for n in range(6)]
    [failure] = [r for r in caplog.records if "reporting the result of" in r.getMessage()]
    assert "f2.csv" in failure.getMessage() and failure.exc_info is not None
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == [f"f{n}.csv" for n in range(6)]
