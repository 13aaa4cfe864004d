"""A user narrows a nightly drop with globs, sizes and ages; only what passes lands in S3."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.engine.plan.filters import FileFilter, filter_jobs, parse_when, source_root
from sftp_s3_tui.engine.plan.sources import expand
from sftp_s3_tui.engine.sftp.pool import SftpPool
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys

DAY = 86400


def drop(server: SftpServerInfo) -> None:
    now = time.time()
    server.write_file("drop/orders.csv", b"a" * 100, mtime=now - 2 * DAY)
    server.write_file("drop/customers.csv", b"b" * 5000, mtime=now - 3600)
    server.write_file("drop/.hidden.csv", b"h", mtime=now - 3600)
    server.write_file("drop/readme.txt", b"c" * 10, mtime=now - 3600)
    server.write_file("drop/tmp/partial.csv", b"d" * 10, mtime=now - 60)
    server.write_file("drop/2026/11/sales.csv", b"e" * 300, mtime=now - 10 * DAY)
    server.write_file("drop/2026/11/sales.json", b"f" * 300, mtime=now - 10 * DAY)


async def listed(server: SftpServerInfo, source: str, file_filter: FileFilter) -> list[str]:
    """The relative paths a copy of ``source`` takes under ``file_filter``."""
    async with SftpPool() as pool:
        jobs = await expand(pool, server.endpoint(), source, parse_s3_url("s3://bucket/p/"))
    root = source_root(source)
    return sorted(
        [j.path[len(root) :].lstrip("/") async for j in filter_jobs(jobs, file_filter, root)]
    )


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # a pattern without / matches the name at any depth, * stays within a segment
        (
            [(True, "*.csv")],
            [".hidden.csv", "2026/11/sales.csv", "customers.csv", "orders.csv", "tmp/partial.csv"],
        ),
        # anchored at the source folder
        ([(True, "/*.csv")], [".hidden.csv", "customers.csv", "orders.csv"]),
        # first match wins: the exclude of tmp/ comes first
        (
            [(False, "tmp/"), (True, "*.csv")],
            [".hidden.csv", "2026/11/sales.csv", "customers.csv", "orders.csv"],
        ),
        # ** crosses folders; braces
        ([(True, "/2026/**/*.{csv,json}")], ["2026/11/sales.csv", "2026/11/sales.json"]),
        # rclone's **/ needs a folder: **/orders.csv is not the top-level orders.csv
        ([(True, "**/orders.csv")], []),
        ([(True, "**/*.csv")], ["2026/11/sales.csv", "tmp/partial.csv"]),
        # ? and [..] as in rclone, POSIX classes too; \ escapes
        ([(True, "/[[:lower:]]?????ers.csv")], ["customers.csv"]),
        ([(True, "/*.cs?")], [".hidden.csv", "customers.csv", "orders.csv"]),
        # excludes only: everything else passes
        (
            [(False, "*.txt"), (False, ".*")],
            [
                "2026/11/sales.csv",
                "2026/11/sales.json",
                "customers.csv",
                "orders.csv",
                "tmp/partial.csv",
            ],
        ),
    ],
)
async def test_globs_follow_rclone_rules(
    sftp_server: SftpServerInfo, rules: list[tuple[bool, str]], expected: list[str]
) -> None:
    drop(sftp_server)
    got = await listed(
        sftp_server, sftp_server.remote_path("drop/"), FileFilter(rules=tuple(rules))
    )
    assert got == expected


async def test_size_and_age_bounds(sftp_server: SftpServerInfo) -> None:
    drop(sftp_server)
    source = sftp_server.remote_path("drop")
    assert await listed(sftp_server, source, FileFilter.build(min_size=100, max_size=300)) == [
        "2026/11/sales.csv",
        "2026/11/sales.json",
        "orders.csv",
    ]
    assert await listed(sftp_server, source, FileFilter.build(newer_than="1d")) == [
        ".hidden.csv",
        "customers.csv",
        "readme.txt",
        "tmp/partial.csv",
    ]
    assert await listed(
        sftp_server, source, FileFilter.build(older_than="1d", include=["*.csv"])
    ) == ["2026/11/sales.csv", "orders.csv"]


async def test_glob_source_filters_relative_to_its_folder(sftp_server: SftpServerInfo) -> None:
    drop(sftp_server)
    got = await listed(
        sftp_server, sftp_server.remote_path("drop/*.csv"), FileFilter.build(exclude=["/o*"])
    )
    assert got == [".hidden.csv", "customers.csv"]


async def test_filtered_copy_lands_only_what_passes(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    drop(openssh_sftp)
    source = openssh_sftp.remote_path("drop/")
    file_filter = FileFilter.build(include=["*.csv"], exclude=["tmp/"], min_size=200)
    excluded: list[str] = []
    async with TransferQueue(s3_endpoint) as queue:
        jobs = await queue.expand(
            openssh_sftp.endpoint(), source, parse_s3_url(f"s3://{bucket}/in/")
        )
        chosen = [
            j
            async for j in filter_jobs(
                jobs,
                file_filter,
                source_root(source),
                on_excluded=lambda j, why: excluded.append(why),
            )
        ]
        results = await queue.run(chosen)
    assert keys(s3, bucket) == ["in/2026/11/sales.csv", "in/customers.csv"]
    assert all(r.status.value == "done" for r in results)
    assert len(excluded) == 5
    assert "excluded by --exclude tmp/" in excluded


def test_bad_input_is_one_clear_line() -> None:
    with pytest.raises(UsageError, match="Not a time or age"):
        FileFilter.build(newer_than="yesterday")
    with pytest.raises(UsageError, match="larger than --max-size"):
        FileFilter.build(min_size=10, max_size=5)
    assert parse_when("2026-11-30", now=0) == 1795996800.0
    assert parse_when("1h", now=7200) == 3600


def test_a_pattern_that_cannot_compile_is_refused_with_one_line(tmp_path: Path) -> None:
    """rclone refuses '[' ("mismatched '[' and ']'"); it used to exclude every file silently."""
    for pattern, why in [
        ("[", "a '[' without its ']'"),
        ("data{1,2", "a '{' without its '}'"),
        ("***.csv", "too many stars in a row (** is the most)"),
    ]:
        done = run_cli(
            "copy", "sftp://partner@127.0.0.1:1/drop/", "s3://bucket-x/in/", "--include", pattern
        )
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            f"sftp-s3-tui: error: The filter pattern {pattern!r} cannot be used: {why} — a "
            "literal [ { } * ? is written with a backslash before it, e.g. '\\['"
        ]
    bad_rule = run_cli("copy", "sftp://h/d/", "s3://bucket-x/in/", "--filter", "*.csv")
    assert bad_rule.returncode == 2
    assert bad_rule.stderr.splitlines() == [
        "sftp-s3-tui: error: The filter rule '*.csv' is not one — write '+ GLOB' to include, "
        "'- GLOB' to exclude"
    ]
    missing = run_cli(
        "copy", "sftp://h/d/", "s3://bucket-x/in/", "--filter-from", str(tmp_path / "no")
    )
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert "--filter-from" in missing.stderr and "No such file or directory" in missing.stderr


def logs_drop(server: SftpServerInfo) -> None:
    for name in ("app-1.log", "app-2.log", "web.log", "notes.txt"):
        server.write_file(f"logs/{name}", name.encode())


def planned(server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, *flags: str) -> Any:
    done = run_cli(
        "copy",
        source_url(server, "logs/"),
        f"s3://{bucket}/in/",
        *key_args(server, s3_endpoint),
        "--dry-run",
        "--json",
        *flags,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()][:-1]
    return sorted(r["key"][3:] for r in rows if r["decision"] == "copy"), done.stderr


def test_an_exclude_after_the_includes_is_warned_and_filter_says_the_order(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    logs_drop(openssh_sftp)

    # rclone's rule too: the include takes app-1.log before the exclude is tried; warned
    taken, err = planned(
        openssh_sftp, s3_endpoint, bucket, "--include", "*.log", "--exclude", "app-1*"
    )
    assert taken == ["app-1.log", "app-2.log", "web.log"]
    assert err.splitlines()[0] == (
        "sftp-s3-tui: warning: --exclude 'app-1*' comes after every --include, so it never "
        "applies (the first matching rule decides, and what no --include takes is left out "
        "anyway); put it first, or say the order with --filter '- app-1*' --filter '+ *.log'"
    )

    # the exclude first: it applies, and nothing is warned
    taken, err = planned(
        openssh_sftp, s3_endpoint, bucket, "--exclude", "app-1*", "--include", "*.log"
    )
    assert taken == ["app-2.log", "web.log"] and "warning" not in err

    # --filter: in order, first match wins; what no rule matches passes (as in rclone)
    taken, err = planned(
        openssh_sftp, s3_endpoint, bucket, "--filter", "- app-1*", "--filter", "+ *.log"
    )
    assert taken == ["app-2.log", "notes.txt", "web.log"] and "warning" not in err

    rules = tmp_path / "rules.txt"
    rules.write_text("# partner logs\n- app-1*\n\n; everything else that is a log\n+ *.log\n- *\n")
    taken, _ = planned(openssh_sftp, s3_endpoint, bucket, "--filter-from", str(rules))
    assert taken == ["app-2.log", "web.log"]

    # '!' clears what came before it, as in rclone
    taken, _ = planned(
        openssh_sftp,
        s3_endpoint,
        bucket,
        "--filter",
        "- *.log",
        "--filter",
        "!",
        "--filter",
        "- notes.txt",
    )
    assert taken == ["app-1.log", "app-2.log", "web.log"]
