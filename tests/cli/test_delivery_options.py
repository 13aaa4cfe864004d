"""Delivery options as a user runs them against real servers: ``--done-file``, ``--inplace``,
the filters, ``--dry-run --json``, ``--manifest``, the conflict policies, and partner servers
without ``posix-rename@openssh.com`` or without any rename."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from asyncssh.sftp import SFTPServerHandler

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, pattern, records, target_url
from tests.support.partner_sftp import partner_sftp
from tests.support.servers import SftpServerInfo

MiB = 1 << 20


@pytest.mark.sftp_families
def test_done_file_is_written_after_the_file_is_in_place(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    data = pattern(2 * MiB + 1, seed=11)
    s3.put_object(Bucket=bucket, Key="out/feed.csv", Body=data)

    done = run_cli(
        "copy",
        f"s3://{bucket}/out/",
        target_url(openssh_sftp, "partner/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--done-file",
        ".ready",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["done_file"] == openssh_sftp.remote_path("partner/feed.csv") + ".ready"
    assert row["published_by"] == "rename"  # nothing was there: a plain rename
    assert files_under(openssh_sftp.root / "partner") == {"feed.csv": data, "feed.csv.ready": b""}


@pytest.mark.sftp_families
def test_inplace_writes_the_final_name_and_says_what_it_risks_once(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    for name in ("a.bin", "b.bin"):
        s3.put_object(Bucket=bucket, Key=f"x/{name}", Body=pattern(MiB, seed=len(name)))
    openssh_sftp.write_file("in/b.bin", b"old")

    done = run_cli(
        "copy",
        f"s3://{bucket}/x/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--inplace",
        "--conflict",
        "overwrite",
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.count("--inplace writes straight to the final name") == 1
    assert files_under(openssh_sftp.root / "in") == {
        "a.bin": pattern(MiB, seed=5),
        "b.bin": pattern(MiB, seed=5),
    }


def test_filters_pick_objects_by_their_key_under_the_prefix(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    for key in ("exp/a.csv", "exp/b.tmp", "exp/sub/c.csv", "exp/sub/d.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    base = [
        f"s3://{bucket}/exp/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
    ]
    args = [
        *base,
        "--exclude",
        "sub/d.csv",
        "--include",
        "*.csv",
    ]

    plan = run_cli("copy", *args, "--dry-run", "--json")

    assert plan.returncode == 0, plan.stderr
    rows, summary = records(plan.stdout)
    assert summary["files"] == 2
    assert [(r["source"], r["status"], r.get("reason")) for r in rows] == [
        (f"s3://{bucket}/exp/a.csv", "planned", None),
        (f"s3://{bucket}/exp/b.tmp", "excluded", "matches no --include"),
        (f"s3://{bucket}/exp/sub/c.csv", "planned", None),
        (f"s3://{bucket}/exp/sub/d.csv", "excluded", "excluded by --exclude sub/d.csv"),
    ]
    assert not (openssh_sftp.root / "in").exists()

    done = run_cli("copy", *args)

    assert done.returncode == 0, done.stderr
    assert files_under(openssh_sftp.root / "in") == {
        "a.csv": b"exp/a.csv",
        "sub/c.csv": b"exp/sub/c.csv",
    }

    nothing = run_cli("copy", *base, "--include", "*.parquet")

    assert nothing.returncode == 3
    assert "The filters leave out all 4 object(s)" in nothing.stderr


def test_min_age_waits_for_objects_younger_than_it(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """``--min-age`` over a prefix: an object whose LastModified is younger waits (named in
    the plan with its age); once it is old enough it is delivered. An exact key or
    ``--stable`` is one line."""
    s3.put_object(Bucket=bucket, Key="drop/a.csv", Body=b"a,1\n")
    base = [f"s3://{bucket}/drop/", *key_args(openssh_sftp, s3_endpoint)]
    target = target_url(openssh_sftp, "in/")

    plan = run_cli("copy", *base[:1], target, *base[1:], "--min-age", "1h", "--dry-run", "--json")

    assert plan.returncode == 3, plan.stderr  # nothing to deliver yet, as for the filters
    (row,) = [json.loads(line) for line in plan.stdout.splitlines()]
    assert row["status"] == "excluded" and "younger than --min-age 3600 s" in row["reason"]

    young = run_cli("copy", *base[:1], target, *base[1:], "--min-age", "1h")

    assert young.returncode == 3
    assert "--min-age (3600 s)" in young.stderr and len(young.stderr.strip().splitlines()) == 1
    assert not (openssh_sftp.root / "in").exists()

    # LastModified has whole seconds: 2 s on our clock make the object at least 1 s old
    modified = s3.head_object(Bucket=bucket, Key="drop/a.csv")["LastModified"].timestamp()
    time.sleep(max(0.0, modified + 2 - time.time()))
    done = run_cli("copy", *base[:1], target, *base[1:], "--min-age", "1s")

    assert done.returncode == 0, done.stderr
    assert files_under(openssh_sftp.root / "in") == {"a.csv": b"a,1\n"}

    for extra, said in (
        ((f"s3://{bucket}/drop/a.csv", "--min-age", "1s"), "names one object"),
        ((f"s3://{bucket}/drop/", "--stable", "5s"), "an S3 object never grows"),
    ):
        refused = run_cli("copy", extra[0], target, *base[1:], *extra[1:])
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], refused.stderr


def test_flags_that_only_mean_something_for_uploads_are_one_line_saying_why(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    """Object options and ``--keep-done-file`` describe an S3 destination or an SFTP source:
    a delivery refuses each with one line that says so, before it connects."""
    base = [f"s3://{bucket}/drop/", target_url(openssh_sftp, "in/")]
    for flag in (
        ["--storage-class", "STANDARD_IA"],
        ["--sse", "AES256"],
        ["--tag", "team=data"],
        ["--content-type", "text/csv"],
        ["--metadata", "k=v"],
        ["--done-file", ".done", "--keep-done-file"],
    ):
        done = run_cli("copy", *base, *key_args(openssh_sftp, s3_endpoint), *flag)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "is for copies into S3" in lines[0] and "writes to an SFTP server" in lines[0]
    assert not (openssh_sftp.root / "in").exists()


def test_manifest_has_a_row_per_object_and_conflict_policies_skip_unchanged(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    s3.put_object(Bucket=bucket, Key="m/one.csv", Body=b"1\n")
    s3.put_object(Bucket=bucket, Key="m/two.csv", Body=b"2\n")
    manifest = tmp_path / "deliveries.jsonl"
    args = [
        f"s3://{bucket}/m/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--manifest",
        str(manifest),
    ]

    first = run_cli("copy", *args)
    again = run_cli("copy", *args, "--conflict", "if-different")
    newer = run_cli("copy", *args, "--conflict", "if-newer")

    assert first.returncode == again.returncode == newer.returncode == 0, first.stderr
    assert "skipped (same size and time)" in again.stderr
    assert "skipped (not newer)" in newer.stderr
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    runs = [sorted(rows[i : i + 2], key=lambda r: r["key"]) for i in range(0, len(rows), 2)]
    assert [[(r["key"], r["status"], r["reason"]) for r in run] for run in runs] == [
        [("m/one.csv", "done", None), ("m/two.csv", "done", None)],
        [
            ("m/one.csv", "skipped", "same size and time"),
            ("m/two.csv", "skipped", "same size and time"),
        ],
        [("m/one.csv", "skipped", "not newer"), ("m/two.csv", "skipped", "not newer")],
    ]
    rows = runs[0]
    assert rows[0]["target"]["path"] == openssh_sftp.remote_path("in/one.csv")
    assert rows[0]["verified_by"] == "crc32+size" and rows[0]["etag"]


async def test_a_server_without_posix_rename_gets_the_old_file_renamed_aside(
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3.put_object(Bucket=bucket, Key="daily.csv", Body=b"today\n")
    async with partner_sftp(tmp_path, "no-posix-rename", monkeypatch) as server:
        server.write_file("out/daily.csv", b"yesterday\n")
        args = [f"s3://{bucket}/daily.csv", target_url(server, "out/")]

        kept = await asyncio.to_thread(
            run_cli, "copy", *args, *key_args(server, s3_endpoint), "--json"
        )
        replaced = await asyncio.to_thread(
            run_cli,
            "copy",
            *args,
            *key_args(server, s3_endpoint),
            "--conflict",
            "overwrite",
            "--json",
        )

    assert kept.returncode == 0, kept.stderr
    assert records(kept.stdout)[0][0]["status"] == "skipped"
    assert replaced.returncode == 0, replaced.stderr
    (row,), _ = records(replaced.stdout)
    assert row["status"] == "done" and row["published_by"] == "rename aside"
    assert files_under(server.root / "out") == {"daily.csv": b"today\n"}  # no .old, no .partial


async def test_a_server_that_refuses_rename_is_one_line_and_inplace_delivers(
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = pattern(3 * MiB, seed=12)
    s3.put_object(Bucket=bucket, Key="drop.bin", Body=data)
    async with partner_sftp(tmp_path, "no-rename", monkeypatch) as server:
        args = [
            f"s3://{bucket}/drop.bin",
            target_url(server, "box/"),
            *key_args(server, s3_endpoint),
        ]

        refused = await asyncio.to_thread(run_cli, "copy", *args, "--delete-source")
        left = files_under(server.root / "box")
        inplace = await asyncio.to_thread(run_cli, "copy", *args, "--inplace", "--json")

    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1 and "Traceback" not in refused.stderr
    assert "does not allow renaming" in errors[0] and "--inplace" in errors[0]
    assert left == {}  # the temporary file was removed
    assert s3.head_object(Bucket=bucket, Key="drop.bin")["ContentLength"] == len(data)
    assert inplace.returncode == 0, inplace.stderr
    (row,), _ = records(inplace.stdout)
    assert row["published_by"] == "in place" and row["verified_by"] == "crc32+size"
    assert files_under(server.root / "box") == {"drop.bin": data}


@pytest.mark.parametrize(
    ("links", "published_by"),
    [(True, "hard link"), (False, "rename, checked first (this server's rename replaces)")],
)
async def test_a_partner_file_landing_meanwhile_survives_a_server_whose_rename_replaces(
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    links: bool,
    published_by: str,
) -> None:
    """``--conflict skip-existing`` publishes with the plain rename, which SFTP v3 says
    refuses a taken name. On a server whose rename replaces instead, the partner's own
    ``daily.csv``, put there just after the delivery looked (the server hides it from that
    one look), would be lost; the delivery sees the quirk (the pool's rename probe) and
    publishes by hard link, which refuses the taken name: the partner's file stays, ours is
    skipped, and a new file still lands. A server without hard links gets a look just before
    the rename (which this race, one look earlier, does not fool)."""
    if not links:
        extensions = SFTPServerHandler._extensions
        monkeypatch.setattr(
            SFTPServerHandler,
            "_extensions",
            [e for e in extensions if e[0] != b"hardlink@openssh.com"],
        )
    s3.put_object(Bucket=bucket, Key="out/daily.csv", Body=b"ours\n")
    s3.put_object(Bucket=bucket, Key="out/new.csv", Body=b"new\n")
    hidden = {"/box/daily.csv"}
    async with partner_sftp(tmp_path, "replacing-rename", monkeypatch, hidden) as server:
        server.write_file("box/daily.csv", b"the partner's own\n")
        done = await asyncio.to_thread(
            run_cli,
            "copy",
            f"s3://{bucket}/out/",
            target_url(server, "box/"),
            *key_args(server, s3_endpoint),
            "--conflict",
            "skip-existing",
            "--json",
        )
        left = files_under(server.root / "box")

    assert not hidden  # the delivery's look was fooled once, as in the race
    assert done.returncode == 0, done.stderr
    rows, _ = records(done.stdout)
    by_key = {row["source"].rpartition("/")[2]: row for row in rows}
    assert by_key["daily.csv"]["status"] == "skipped"
    assert (by_key["new.csv"]["status"], by_key["new.csv"]["published_by"]) == (
        "done",
        published_by,
    )
    # the partner's file untouched; no temporary file, no rename-probe file left
    assert left == {"daily.csv": b"the partner's own\n", "new.csv": b"new\n"}


@pytest.mark.sftp_families
def test_if_different_reads_back_a_file_with_another_time_and_skips_the_same_bytes(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="d/same.csv", Body=b"same bytes\n")
    s3.put_object(Bucket=bucket, Key="d/changed.csv", Body=b"new bytes\n")
    folder = openssh_sftp.root / "in"
    folder.mkdir()
    (folder / "same.csv").write_bytes(b"same bytes\n")
    (folder / "changed.csv").write_bytes(b"old bytes\n")  # the same size, other bytes
    for name in ("same.csv", "changed.csv"):
        os.utime(folder / name, (1_600_000_000, 1_600_000_000))  # older than the objects

    done = run_cli(
        "copy",
        f"s3://{bucket}/d/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--conflict",
        "if-different",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    rows, _ = records(done.stdout)
    by_key = {r["source"].rsplit("/", 1)[1]: r for r in rows}
    assert by_key["same.csv"]["status"] == "skipped"
    assert by_key["same.csv"]["message"] == "same size and checksum (read back)"
    assert by_key["changed.csv"]["status"] == "done"
    assert files_under(folder) == {"same.csv": b"same bytes\n", "changed.csv": b"new bytes\n"}
