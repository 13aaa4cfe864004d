"""A delivery of many objects lists each destination folder once instead of looking at every
final name (``engine/sftp/folder_names.py``), and a file landing after that listing is
still never replaced."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, records, target_url
from tests.support.partner_sftp import partner_sftp
from tests.support.servers import SftpServerInfo

NAMES = [f"f{index}.csv" for index in range(6)]


def _put_objects(s3: Any, bucket: str) -> None:
    for name in NAMES:
        s3.put_object(Bucket=bucket, Key=f"out/{name}", Body=f"ours {name}\n".encode())


async def _deliver(
    server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> tuple[dict[str, str], dict[str, bytes], Any]:
    """``copy s3://bucket/out/ …/box/`` (skip-existing): each name's status, what the
    folder holds after, and the summary line."""
    done = await asyncio.to_thread(
        run_cli,
        "copy",
        f"s3://{bucket}/out/",
        target_url(server, "box/"),
        *key_args(server, s3_endpoint),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    rows, summary = records(done.stdout)
    status = {row["source"].rpartition("/")[2]: row["status"] for row in rows}
    return status, files_under(server.root / "box"), summary


async def test_a_run_lists_its_folder_once_instead_of_a_look_per_object(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put_objects(s3, bucket)
    looked: list[str] = []
    async with partner_sftp(tmp_path, "no-posix-rename", monkeypatch, looked=looked) as server:
        server.write_file("box/f3.csv", b"the partner's own\n")
        status, left, summary = await _deliver(server, s3_endpoint, bucket)

    assert status == {name: "skipped" if name == "f3.csv" else "done" for name in NAMES}
    assert summary["copied"] == 5 and summary["skipped"] == 1
    assert left == {
        name: b"the partner's own\n" if name == "f3.csv" else f"ours {name}\n".encode()
        for name in NAMES
    }
    # The folder's first object looks at its own name; the others are answered by one
    # listing, except the name it holds (looked at, to decide the skip): 2 looks, not 6.
    final_names = [path for path in looked if path.rpartition("/")[2] in NAMES]
    assert 1 <= len(final_names) <= 2, looked
    assert "/box/f3.csv" in final_names


async def test_a_file_landing_after_the_listing_is_not_replaced(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """skip-existing: the listing said ``f4.csv`` was free, then the partner put theirs
    there. The plain rename the policy publishes with refuses the taken name: the
    partner's file stays, ours is skipped and its temporary file removed."""
    _put_objects(s3, bucket)
    landing = {"/box/f4.csv": b"the partner's, just after the listing\n"}
    async with partner_sftp(tmp_path, "no-posix-rename", monkeypatch, after_listing=landing) as (
        server
    ):
        (server.root / "box").mkdir(parents=True)
        status, left, _ = await _deliver(server, s3_endpoint, bucket)

    assert not landing  # the folder was listed, and the file landed after it
    assert status == {name: "skipped" if name == "f4.csv" else "done" for name in NAMES}
    assert left == {
        name: b"the partner's, just after the listing\n"
        if name == "f4.csv"
        else f"ours {name}\n".encode()
        for name in NAMES
    }  # no temporary file left beside them
