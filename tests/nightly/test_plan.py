"""A user previews tonight's copy (``--dry-run``): the plan writes nothing, and the copy that
follows does exactly what it said."""

from __future__ import annotations

import os
import time
from typing import Any

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.plan.conflicts import Action, DestinationIndex
from sftp_s3_tui.engine.plan.filters import FileFilter, source_root
from sftp_s3_tui.engine.plan.preview import CopyPlan, preview_copy
from sftp_s3_tui.engine.plan.selection import select_jobs
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, keys, open_uploads

PART = 5 * MiB


async def plan_for(
    server: SftpServerInfo,
    source: str,
    dest: str,
    s3_endpoint: S3Endpoint,
    options: TransferOptions,
    file_filter: FileFilter | None = None,
) -> tuple[CopyPlan, Any]:
    async with TransferQueue(s3_endpoint, options) as queue:
        jobs = await queue.expand(server.endpoint(), source, parse_s3_url(dest))
        selection = await select_jobs(
            queue.sftp, jobs, source_root(source), file_filter=file_filter
        )
        index = DestinationIndex(queue.s3)
        return await preview_copy(selection, index, options), selection


async def test_dry_run_writes_nothing_and_the_copy_does_what_it_said(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    sftp_server.write_file("drop/new.csv", b"id\n1\n")
    sftp_server.write_file("drop/big.bin", size=2 * PART + 7, seed=1)
    sftp_server.write_file("drop/landed.csv", b"already there\n")
    sftp_server.write_file("drop/notes.txt", b"not for S3\n")
    s3.put_object(Bucket=bucket, Key="in/landed.csv", Body=b"older copy")
    before = s3.list_objects_v2(Bucket=bucket)["Contents"]
    options = TransferOptions(part_size=PART, conflict=ConflictPolicy.SKIP_EXISTING)
    source = sftp_server.remote_path("drop/")

    plan, selection = await plan_for(
        sftp_server,
        source,
        f"s3://{bucket}/in/",
        s3_endpoint,
        options,
        FileFilter.build(exclude=["*.txt"]),
    )

    decided = {f.key: (f.action, f.parts) for f in plan.files}
    assert decided == {
        "in/new.csv": (Action.COPY, 1),
        "in/big.bin": (Action.COPY, 3),
        "in/landed.csv": (Action.SKIP, 0),
        "in/notes.txt": (Action.EXCLUDED, 0),
    }
    assert plan.totals()["files"] == 2
    assert plan.totals()["bytes"] == 2 * PART + 7 + 5
    assert plan.totals()["parts"] == 4
    assert plan.totals()["requests"] == (1 + 1) + (3 + 3 + 1)
    assert plan.lookup_requests == 1  # one listing of the prefix answered for all three
    # nothing written: the bucket is as it was, no upload open
    assert s3.list_objects_v2(Bucket=bucket)["Contents"] == before
    assert open_uploads(s3, bucket) == []

    async with TransferQueue(s3_endpoint, options) as queue:
        results = await queue.run(selection.jobs)
    did = {r.key: (r.status, r.parts) for r in results}
    assert did == {
        "in/new.csv": (TransferState.DONE, 1),
        "in/big.bin": (TransferState.DONE, 3),
        "in/landed.csv": (TransferState.SKIPPED, 0),
    }
    assert s3.get_object(Bucket=bucket, Key="in/landed.csv")["Body"].read() == b"older copy"


async def test_rerun_decisions_under_if_newer_and_if_different(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    day_ago = time.time() - 86400
    same = openssh_sftp.write_file("d/same.csv", b"same\n", mtime=day_ago)
    touched = openssh_sftp.write_file("d/touched.csv", b"touched\n", mtime=day_ago)
    grown = openssh_sftp.write_file("d/grown.bin", size=PART + 10, seed=2, mtime=day_ago)
    source, dest = openssh_sftp.remote_path("d/"), f"s3://{bucket}/x/"
    options = TransferOptions(part_size=PART)
    await copy(openssh_sftp.endpoint(), [source], dest, s3_endpoint, options=options)
    assert keys(s3, bucket) == ["x/grown.bin", "x/same.csv", "x/touched.csv"]
    os.utime(touched.local_path, (time.time(), time.time()))  # same bytes, newer mtime
    with grown.local_path.open("ab") as out:
        out.write(b"more")
    os.utime(grown.local_path, (day_ago, day_ago))  # bigger, same old mtime
    assert same.size == 5

    newer, _ = await plan_for(
        openssh_sftp,
        source,
        dest,
        s3_endpoint,
        TransferOptions(part_size=PART, conflict=ConflictPolicy.IF_NEWER),
    )
    assert {f.key: f.action for f in newer.files} == {
        "x/same.csv": Action.SKIP,
        "x/touched.csv": Action.OVERWRITE,
        "x/grown.bin": Action.SKIP,
    }
    different, _ = await plan_for(
        openssh_sftp,
        source,
        dest,
        s3_endpoint,
        TransferOptions(part_size=PART, conflict=ConflictPolicy.IF_DIFFERENT),
    )
    assert {f.key: f.action for f in different.files} == {
        "x/same.csv": Action.SKIP,  # same size and recorded mtime: no byte read
        "x/touched.csv": Action.COMPARE,  # same size, new mtime: the sha256 decides
        "x/grown.bin": Action.OVERWRITE,
    }
