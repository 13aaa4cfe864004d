"""Two runs, one ``s3://`` manifest: a cron overlap or an Airflow retry while the first
attempt still runs. Every row either run wrote ends in the object; a run that died leaves its
rows for the next one; two runs on one local manifest both append."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.nightly import manifest as manifest_module
from sftp_s3_tui.engine.nightly.manifest import Manifest
from sftp_s3_tui.engine.s3.operations import open_client
from tests.support.nightly import manifest_rows


def object_rows(s3: Any, bucket: str, key: str) -> list[int]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return sorted(json.loads(line)["n"] for line in body.splitlines())


@pytest.mark.all_stores
def test_the_stores_refuse_a_stale_if_match(s3: Any, bucket: str) -> None:
    """What the merge relies on: a PUT whose If-Match names an older ETag is refused."""
    first = s3.put_object(Bucket=bucket, Key="m.jsonl", Body=b"1\n")["ETag"]
    s3.put_object(Bucket=bucket, Key="m.jsonl", Body=b"1\n2\n", IfMatch=first)
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=bucket, Key="m.jsonl", Body=b"1\n3\n", IfMatch=first)
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=bucket, Key="m.jsonl", Body=b"4\n", IfNoneMatch="*")
    assert exists.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="m.jsonl")["Body"].read() == b"1\n2\n"


@pytest.mark.all_stores
async def test_overlapping_runs_keep_every_row(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The audit's sequence: run 2 starts while run 1 writes; run 1 ends first; run 2 then
    writes more rows and ends. Both runs' six rows are in the object, once each."""
    target = f"s3://{bucket}/manifests/nightly.jsonl"
    async with open_client(s3_endpoint) as client:
        first = await Manifest.open(target, s3=client, spool_dir=tmp_path)
        second = await Manifest.open(target, s3=client, spool_dir=tmp_path)
        for n in (0, 1, 2):
            await first.write({"kind": "file", "n": n})
        await second.write({"kind": "file", "n": 10})
        await first.close()
        for n in (11, 12):
            await second.write({"kind": "file", "n": n})
        await second.close()
    assert object_rows(s3, bucket, "manifests/nightly.jsonl") == [0, 1, 2, 10, 11, 12]
    assert list(tmp_path.iterdir()) == []  # both spools gone: the object has every row


@pytest.mark.all_stores
async def test_runs_merging_at_the_same_moment_lose_nothing(
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every row merged at once by three runs (their GET-append-PUT cycles interleave):
    the conditional PUTs make the losers read again, so no run replaces another's rows."""
    monkeypatch.setattr(manifest_module, "UPLOAD_INTERVAL_SECONDS", 0.0)
    target = f"s3://{bucket}/shared.jsonl"
    async with open_client(s3_endpoint) as client:
        runs = [await Manifest.open(target, s3=client, spool_dir=tmp_path) for _ in range(3)]

        async def write_rows(run: int) -> None:
            for n in range(8):
                await runs[run].write({"kind": "file", "n": run * 100 + n})

        await asyncio.gather(*(write_rows(r) for r in range(3)))
        await asyncio.gather(*(run.close() for run in runs))
        assert all(run.upload_error is None for run in runs)
    assert object_rows(s3, bucket, "shared.jsonl") == [
        r * 100 + n for r in range(3) for n in range(8)
    ]


async def test_a_killed_runs_rows_reach_the_object_with_the_next_run(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Killed (-9) after its rows were durable but before it merged them: the next run
    finds its spool and merges those rows with its own; a live run's spool is left alone."""
    target = f"s3://{bucket}/manifests/run.jsonl"
    endpoint_url = s3_endpoint.endpoint_url
    assert endpoint_url

    def start(first: int) -> subprocess.Popen[str]:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.nightly.manifest_worker",
                target,
                endpoint_url,
                str(tmp_path),
                str(first),
                "3",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None and worker.stdout.readline() == "written\n"
        return worker

    killed, alive = start(0), start(20)
    killed.kill()
    killed.wait()
    try:
        async with open_client(s3_endpoint) as client:
            rerun = await Manifest.open(target, s3=client, spool_dir=tmp_path)
            await rerun.write({"kind": "file", "n": 40})
            await rerun.close()
        rows = object_rows(s3, bucket, "manifests/run.jsonl")
        # the killed run's three rows (its first was merged at once, the others only in
        # its spool), the live run's first, and ours; never one twice
        assert rows == [0, 1, 2, 20, 40]
        spools = [p.name for p in tmp_path.iterdir()]
        assert len(spools) == 1 and f"{alive.pid}-" in spools[0]  # the live one's, kept
    finally:
        alive.kill()
        alive.wait()


async def test_two_runs_append_to_one_local_manifest(tmp_path: Path) -> None:
    path = tmp_path / "nightly.jsonl"
    first = await Manifest.open(str(path))
    second = await Manifest.open(str(path))
    await first.write({"kind": "file", "n": 0})
    await second.write({"kind": "file", "n": 1})
    await first.close()
    await second.write({"kind": "file", "n": 2})
    await second.close()
    assert sorted(r["n"] for r in manifest_rows(path)) == [0, 1, 2]
