"""Hostile listings: huge slow folders, links (dangling, looping, hung), odd names, odd entries.

Each case: the folder still lands, what cannot be copied gets one line naming it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.errors import TransferError
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.plan.sources import expand, walk
from sftp_s3_tui.engine.sftp.entries import Kind
from sftp_s3_tui.engine.sftp.pool import SftpPool
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo, unavailable
from tests.support.sftpfaults import SftpFaults, faulty_sftp_server
from tests.support.transfers import copy, keys

from .conftest import assert_object


@pytest.fixture
async def faulty(tmp_path: Path) -> AsyncIterator[SftpServerInfo]:
    async with faulty_sftp_server(tmp_path / "faulty-sftp") as info:
        yield info


def faults_of(info: SftpServerInfo) -> SftpFaults:
    return info.server.faults  # type: ignore[no-any-return]


async def test_a_slow_folder_of_3000_entries_lists_although_it_takes_longer_than_the_timeout(
    faulty: SftpServerInfo,
) -> None:
    """Each READDIR answer takes 0.2 s; 24 of them take 4.8 s, with a 1.5 s request timeout."""
    (faulty.root / "drop").mkdir()
    faults_of(faulty).synthetic["/drop"] = 3000
    faults_of(faulty).listing_delay_seconds = 0.2
    endpoint = faulty.endpoint(request_timeout_seconds=1.5)

    async with SftpPool() as pool:
        jobs = await expand(pool, endpoint, "/drop/", parse_s3_url("s3://bkt/in/"))

    assert len(jobs) == 3000
    assert [j.problem for j in jobs if j.problem] == []
    assert jobs[0].key == "in/f000000.bin" and jobs[-1].key == "in/f002999.bin"


async def test_listing_streams_jobs_before_the_folder_is_fully_read(
    faulty: SftpServerInfo,
) -> None:
    (faulty.root / "drop").mkdir()
    faults_of(faulty).synthetic["/drop"] = 1000
    faults_of(faulty).listing_delay_seconds = 0.05
    async with SftpPool() as pool:
        stream = walk(pool, faulty.endpoint(), "/drop/", parse_s3_url("s3://bkt/"))
        first = await anext(stream)
        # The first answer (128 names) is in; most of the folder has not been asked for yet.
        assert first.key == "f000000.bin"
        assert faults_of(faulty).listing_batches <= 2
        rest = [job async for job in stream]
    assert len(rest) == 999
    assert faults_of(faulty).listing_batches == 8


async def test_a_link_whose_stat_hangs_fails_alone_and_the_folder_lands(
    faulty: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    good = faulty.write_file("drop/good.csv", b"good\n")
    (faulty.root / "drop" / "hung").symlink_to(good.local_path)
    faults_of(faulty).hang_stat.add("hung")
    endpoint = faulty.endpoint(request_timeout_seconds=1.0)

    results = await copy(endpoint, ["/drop/"], f"s3://{bucket}/", s3_endpoint)

    by_key = {r.key: r for r in results}
    assert by_key["good.csv"].status is TransferState.DONE
    assert by_key["hung"].status is TransferState.FAILED
    assert "link /drop/hung cannot be followed" in by_key["hung"].message
    assert keys(s3, bucket) == ["good.csv"]


async def test_a_folder_that_cannot_be_listed_is_reported_and_the_rest_lands(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    if openssh_sftp.password_user is None:
        unavailable("needs the unprivileged password user (root reads every folder)")
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    openssh_sftp.write_file("drop/locked/secret.csv", b"s\n")
    openssh_sftp.write_file("drop/open/b.csv", b"b\n")
    (openssh_sftp.root / "drop" / "locked").chmod(0o700)  # owned by root: the user cannot list

    results = await copy(
        openssh_sftp.endpoint("password"),
        [openssh_sftp.remote_path("drop/")],
        f"s3://{bucket}/",
        s3_endpoint,
    )

    by_key = {r.key: r for r in results}
    assert by_key["a.csv"].status is TransferState.DONE
    assert by_key["open/b.csv"].status is TransferState.DONE
    assert by_key["locked"].status is TransferState.FAILED
    assert "Cannot list the folder" in by_key["locked"].message
    assert "Permission denied" in by_key["locked"].message
    assert keys(s3, bucket) == ["a.csv", "open/b.csv"]


async def test_a_name_that_is_not_utf8_fails_alone_with_its_escaped_name(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("drop/good.csv", b"good\n")
    bad = os.fsencode(openssh_sftp.root / "drop") + b"/caf\xe9.csv"  # Latin-1, not UTF-8
    with open(bad, "wb") as out:
        out.write(b"latin\n")

    results = await copy(
        openssh_sftp.endpoint(),
        [openssh_sftp.remote_path("drop/")],
        f"s3://{bucket}/",
        s3_endpoint,
    )

    assert len(results) == 2
    [failed] = [r for r in results if r.status is TransferState.FAILED]
    assert "caf\\xe9.csv" in failed.message and "not valid UTF-8" in failed.message
    failed.message.encode("utf-8")  # printable: no lone surrogates reach the report
    assert keys(s3, bucket) == ["good.csv"]
    assert_object(s3, bucket, "good.csv", b"good\n")


@pytest.mark.sftp_families
async def test_special_files_are_refused_by_type_and_the_folder_lands(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A FIFO would block OpenSSH's sftp-server if opened; a link to /dev/zero would read 0
    bytes as a 'file'. Both are refused from the listing, never opened."""
    regular = openssh_sftp.write_file("drop/data.csv", b"x,y\n1,2\n")
    drop = openssh_sftp.root / "drop"
    os.mkfifo(drop / "pipe")
    (drop / "zero").symlink_to("/dev/zero")
    server_socket = socket.socket(socket.AF_UNIX)
    server_socket.bind(str(drop / "sock"))
    try:
        results = await copy(
            openssh_sftp.endpoint(),
            [openssh_sftp.remote_path("drop/")],
            f"s3://{bucket}/",
            s3_endpoint,
        )
    finally:
        server_socket.close()

    by_key = {r.key: r for r in results}
    assert by_key["data.csv"].status is TransferState.DONE
    assert "is a FIFO, not a regular file" in by_key["pipe"].message
    assert "is a link to a character device" in by_key["zero"].message
    assert "is a socket" in by_key["sock"].message
    assert {by_key[k].status for k in ("pipe", "zero", "sock")} == {TransferState.FAILED}
    assert keys(s3, bucket) == ["data.csv"]
    assert_object(s3, bucket, "data.csv", regular.read_bytes())


async def test_a_fifo_named_directly_is_refused_without_opening_it(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    os.mkfifo(openssh_sftp.root / "pipe")
    [result] = await copy(
        openssh_sftp.endpoint(), [openssh_sftp.remote_path("pipe")], f"s3://{bucket}/", s3_endpoint
    )
    assert result.status is TransferState.FAILED
    assert "is a FIFO, not a regular file" in result.message


@pytest.mark.sftp_families
async def test_folder_links_are_skipped_by_default_and_followed_once_when_asked(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    openssh_sftp.write_file("elsewhere/b.csv", b"b\n")
    drop = openssh_sftp.root / "drop"
    (drop / "linked").symlink_to(openssh_sftp.root / "elsewhere")
    (drop / "loop").symlink_to(drop)  # back to the top: would walk forever
    (drop / "dangling").symlink_to(openssh_sftp.root / "nowhere")
    source = [openssh_sftp.remote_path("drop/")]

    plain = await copy(openssh_sftp.endpoint(), source, f"s3://{bucket}/plain/", s3_endpoint)
    by_key = {r.key: r for r in plain}
    assert by_key["plain/a.csv"].status is TransferState.DONE
    assert by_key["plain/linked"].status is TransferState.SKIPPED
    assert "link to a folder; not followed" in by_key["plain/linked"].message
    assert by_key["plain/loop"].status is TransferState.SKIPPED
    assert by_key["plain/dangling"].status is TransferState.FAILED
    assert "cannot be followed" in by_key["plain/dangling"].message

    followed = await copy(
        openssh_sftp.endpoint(follow_symlinks=True), source, f"s3://{bucket}/f/", s3_endpoint
    )
    by_key = {r.key: r for r in followed}
    assert by_key["f/linked/b.csv"].status is TransferState.DONE
    assert by_key["f/loop"].status is TransferState.SKIPPED
    assert "already copied (a link loop?)" in by_key["f/loop"].message
    assert [k for k in keys(s3, bucket) if k.startswith("f/")] == ["f/a.csv", "f/linked/b.csv"]


async def test_listing_entries_say_what_they_are(openssh_sftp: SftpServerInfo) -> None:
    openssh_sftp.write_file("d/file.csv", b"1")
    os.mkfifo(openssh_sftp.root / "d" / "pipe")
    (openssh_sftp.root / "d" / "sub").mkdir()
    async with SftpPool() as pool:
        entries = {
            e.name: e
            for e in await pool.listdir(openssh_sftp.endpoint(), openssh_sftp.remote_path("d"))
        }
    assert entries["file.csv"].kind == Kind.FILE and not entries["file.csv"].problem
    assert entries["sub"].kind == Kind.FOLDER and entries["sub"].is_dir
    assert entries["pipe"].kind == Kind.FIFO and entries["pipe"].problem


async def test_a_missing_source_folder_still_fails_the_whole_listing(
    openssh_sftp: SftpServerInfo,
) -> None:
    async with SftpPool() as pool:
        with pytest.raises(TransferError, match="does not exist"):
            await expand(
                pool,
                openssh_sftp.endpoint(),
                openssh_sftp.remote_path("nope/"),
                parse_s3_url("s3://bkt/"),
            )


def test_the_cli_prints_one_line_per_refused_entry_and_copies_the_rest(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("drop/ok.csv", b"ok\n")
    drop = openssh_sftp.root / "drop"
    os.mkfifo(drop / "pipe")
    (drop / "zero").symlink_to("/dev/zero")
    with open(os.fsencode(drop) + b"/caf\xe9.csv", "wb") as out:
        out.write(b"latin\n")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/in/",
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len([line for line in lines if "is a FIFO, not a regular file" in line]) == 1
    assert len([line for line in lines if "is a link to a character device" in line]) == 1
    assert len([line for line in lines if "caf\\xe9.csv is not valid UTF-8" in line]) == 1
    assert keys(s3, bucket) == ["in/ok.csv"]
