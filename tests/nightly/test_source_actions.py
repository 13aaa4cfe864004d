"""A user archives or removes tonight's drop only after each file is verified in S3, with a
manifest row written first; anything doubtful leaves the source where it was."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.nightly.manifest import Manifest
from sftp_s3_tui.engine.nightly.run import CopyRun
from sftp_s3_tui.engine.nightly.source_actions import SourceAction
from sftp_s3_tui.engine.plan.filters import source_root
from sftp_s3_tui.engine.plan.selection import select_jobs
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.nightly import manifest_rows, nightly, stubborn_sftp
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, object_bytes, sha256

PART = 5 * MiB


@pytest.mark.sftp_families
async def test_move_to_archive_after_verified_copy(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    small = sftp_server.write_file("drop/orders.csv", b"id,total\n1,2\n")
    big = sftp_server.write_file("drop/2026/big.bin", size=2 * PART + 3, seed=4)
    manifest = tmp_path / "run.jsonl"

    report = await nightly(
        sftp_server,
        sftp_server.remote_path("drop/"),
        f"s3://{bucket}/in/",
        s3_endpoint,
        options=TransferOptions(part_size=PART),
        action=SourceAction(move_to=sftp_server.remote_path("processed")),
        manifest=manifest,
    )

    assert [r.status for r in report.results] == [TransferState.DONE] * 2
    assert object_bytes(s3, bucket, "in/orders.csv") == b"id,total\n1,2\n"
    assert sha256(object_bytes(s3, bucket, "in/2026/big.bin")) == big.sha256
    assert not small.local_path.exists() and not big.local_path.exists()
    archived = sftp_server.root / "processed"
    assert (archived / "orders.csv").read_bytes() == b"id,total\n1,2\n"
    assert sha256((archived / "2026" / "big.bin").read_bytes()) == big.sha256
    assert {o.action for o in report.outcomes} == {"moved"}
    # every family's plain rename refuses an existing target (probed at the first move,
    # its two probe files gone), so the moves rely on it
    assert {(o.rename_overwrites, o.moved_by) for o in report.outcomes} == {("refuses", "rename")}
    assert sorted(p.name for p in archived.iterdir()) == ["2026", "orders.csv"]

    rows = manifest_rows(manifest)
    files = {r["key"]: r for r in rows if r["kind"] == "file"}
    assert files["in/orders.csv"]["sha256"] == small.sha256
    assert files["in/2026/big.bin"]["sha256"] == big.sha256
    assert files["in/2026/big.bin"]["part_size"] == PART
    assert (
        files["in/2026/big.bin"]["etag"]
        == s3.head_object(Bucket=bucket, Key="in/2026/big.bin")["ETag"]
    )
    for row in files.values():
        assert row["status"] == "done" and row["source_action"].startswith("move to ")
        assert row["source"]["host"] == sftp_server.host and row["started"] and row["finished"]
        assert row["host_key"].startswith("ssh-") and "SHA256:" in row["host_key"]
        assert row["server"]["banner"].startswith("SSH-2.0-")  # the server's profile
        assert row["server"]["read_bytes"] >= 16 * 1024
        assert row["server"]["granted_connections"] >= 1
        assert row["server"]["rename_overwrites"] in ("unknown", "refuses")  # probed at a move
    # each file's row comes before what was done to its source
    order = [(r["kind"], r.get("key") or r.get("path")) for r in rows]
    for path, key in ((small.remote_path, "in/orders.csv"), (big.remote_path, "in/2026/big.bin")):
        assert order.index(("file", key)) < order.index(("source_action", path))


@pytest.mark.sftp_families
async def test_delete_source_after_verified_copy(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    kept_elsewhere = openssh_sftp.write_file("other/x.csv", b"x")
    files = [openssh_sftp.write_file(f"drop/{n}.csv", f"{n}\n".encode()) for n in "abc"]

    report = await nightly(
        openssh_sftp,
        openssh_sftp.remote_path("drop/*.csv"),
        f"s3://{bucket}/in/",
        s3_endpoint,
        action=SourceAction(delete=True),
    )

    assert {o.action for o in report.outcomes} == {"deleted"}
    for remote in files:
        assert not remote.local_path.exists()
        key = "in/" + remote.local_path.name
        assert object_bytes(s3, bucket, key) == remote.local_path.name[0].encode() + b"\n"
    assert kept_elsewhere.local_path.exists()


async def test_a_skipped_file_keeps_its_source(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("drop/a.csv", b"a\n")
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"someone else's")

    report = await nightly(
        openssh_sftp,
        openssh_sftp.remote_path("drop/"),
        f"s3://{bucket}/in/",
        s3_endpoint,
        options=TransferOptions(conflict=ConflictPolicy.SKIP_EXISTING),
        action=SourceAction(delete=True),
    )

    assert [r.status for r in report.results] == [TransferState.SKIPPED]
    assert remote.local_path.exists()
    [outcome] = report.outcomes
    assert (outcome.action, outcome.reason) == ("kept", "the transfer skipped")


async def test_a_source_changed_after_listing_is_kept(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    remote = openssh_sftp.write_file("drop/growing.csv", b"1\n", mtime=time.time() - 100)
    source = openssh_sftp.remote_path("drop/")
    async with TransferQueue(s3_endpoint) as queue:
        jobs = await queue.expand(openssh_sftp.endpoint(), source, parse_s3_url(f"s3://{bucket}/"))
        selection = await select_jobs(queue.sftp, jobs, source_root(source))
        with remote.local_path.open("ab") as out:  # the partner appends after the listing
            out.write(b"2\n")
        report = await CopyRun(queue, source_action=SourceAction(delete=True)).run(selection)
    assert remote.local_path.read_bytes() == b"1\n2\n"
    [outcome] = report.outcomes
    assert outcome.action == "kept" and "changed after it was listed" in outcome.reason


async def test_no_rename_and_failing_delete_are_reported_per_file(
    tmp_path: Path, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    async with stubborn_sftp(tmp_path) as server:
        remote = server.write_file("drop/a.csv", b"a\n")
        moved = await nightly(
            server,
            "/drop/",
            f"s3://{bucket}/m/",
            s3_endpoint,
            action=SourceAction(move_to="/processed/"),
            manifest=tmp_path / "m.jsonl",
        )
        deleted = await nightly(
            server, "/drop/", f"s3://{bucket}/d/", s3_endpoint, action=SourceAction(delete=True)
        )

    assert [r.status for r in moved.results + deleted.results] == [TransferState.DONE] * 2
    assert moved.failed == deleted.failed == []
    assert object_bytes(s3, bucket, "m/a.csv") == object_bytes(s3, bucket, "d/a.csv") == b"a\n"
    assert remote.local_path.exists()
    [no_rename] = moved.outcomes
    assert not no_rename.ok and "does not support rename" in no_rename.reason
    [no_delete] = deleted.outcomes
    assert not no_delete.ok and "could not delete it" in no_delete.reason
    rows = manifest_rows(tmp_path / "m.jsonl")
    assert [r["kind"] for r in rows] == ["file", "source_action"]
    assert rows[1]["ok"] is False and rows[0]["status"] == "done"


async def test_manifest_appends_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    for n in range(2):
        manifest = await Manifest.open(str(path))
        await manifest.write({"kind": "file", "n": n})
        await manifest.close()
    assert [r["n"] for r in manifest_rows(path)] == [0, 1]
    assert os.stat(path).st_size > 0
