"""``sftp-s3-tui copy`` of many files streams: jobs queued as they are listed, results printed
and counted as they arrive, only a bounded number of transfer records held (issue 17)."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.cli import console, run
from sftp_s3_tui.cli.parser import build_parser, copy_request_of
from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.plan.sources import KeyTable, PlanSource, can_stream
from tests.support.servers import SftpServerInfo
from tests.support.synthetic_sftp import SyntheticSftpServer, SyntheticTree
from tests.support.transfers import keys

USER, PASSWORD = "many", "many-secret"


async def copy_in_process(argv: list[str], env: dict[str, str]) -> int:
    """``sftp-s3-tui copy ARGV`` as cli/main.py runs it, on the test's loop (so the run's
    tally can be read afterwards)."""
    args = build_parser().parse_args(["copy", *argv])
    return await run.run_copy(copy_request_of(args, env))


def s3_args(s3_endpoint: S3Endpoint) -> list[str]:
    assert s3_endpoint.endpoint_url
    return ["--endpoint-url", s3_endpoint.endpoint_url, "--path-style", "--no-agent"]


async def test_a_copy_of_many_files_holds_a_bounded_number_of_records(
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """150 synthetic files (no disk): every one lands, each gets its --json row as it
    finishes and the summary counts them all, while the queue held at most the kept
    done records + the look-ahead + the files in flight (not one record per file; the
    knobs are turned down so a small folder shows it, bench/many_files.py does 100,000)."""
    count = 150
    monkeypatch.setattr(run, "KEEP_FINISHED", 5)
    monkeypatch.setattr(run, "LOOKAHEAD", 8)
    tree = SyntheticTree(count, min_size=10, max_size=200)
    async with SyntheticSftpServer(tree, users={USER: PASSWORD}) as server:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(server.known_hosts_line + "\n")
        code = await copy_in_process(
            [
                f"sftp://{USER}@127.0.0.1:{server.port}/many/",
                f"s3://{bucket}/drop/",
                "--known-hosts",
                str(known_hosts),
                "--files",
                "4",
                "--json",
                *s3_args(s3_endpoint),
            ],
            {**os.environ, "SFTP_PASSWORD": PASSWORD},
        )

    assert code == 0
    *rows, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert summary == {
        "summary": True,
        "files": count,
        "copied": count,
        "skipped": 0,
        "failed": 0,
        "bytes": tree.total_bytes,
        "seconds": summary["seconds"],
        "exit_code": 0,
    }
    assert sorted(r["key"] for r in rows) == [tree.key(i, "drop/") for i in range(count)]
    assert {r["status"] for r in rows} == {"done"}
    tally = run.last_tally
    assert tally is not None and tally.files == count
    # kept done records (5) + listed ahead (8) + running (4), and a little slack for the
    # moment a finished file is counted before its slot is refilled
    assert 0 < tally.most_held <= 5 + 8 + 4 + 2
    assert len(keys(s3, bucket)) == count


async def test_failures_are_counted_past_the_listed_ones_and_nfc_nfd_names_both_land(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """FIFOs fail one by one; only the first FAILED_LINES are named, the rest counted.
    Two names that differ only in Unicode normalization (NFC, and NFD as macOS writes it)
    are two files: each lands at its own key, byte for byte."""
    monkeypatch.setattr(console, "FAILED_LINES", 2)
    for n in range(3):
        embedded_sftp.write_file(f"in/ok{n}.csv", f"{n}\n".encode())
    for n in range(4):
        os.mkfifo(embedded_sftp.root / "in" / f"pipe{n}")
    composed = unicodedata.normalize("NFC", "café.csv")
    embedded_sftp.write_file(f"in/{composed}", b"composed\n")
    embedded_sftp.write_file(f"in/{unicodedata.normalize('NFD', composed)}", b"decomposed\n")
    endpoint = embedded_sftp
    code = await copy_in_process(
        [
            f"sftp://{endpoint.username}@{endpoint.host}:{endpoint.port}"
            f"{endpoint.remote_path('in/')}",
            f"s3://{bucket}/",
            "--identity",
            str(endpoint.identity_file),
            "--known-hosts",
            str(endpoint.known_hosts),
            "--json",
            *s3_args(s3_endpoint),
        ],
        dict(os.environ),
    )

    assert code == 1
    out, err = capsys.readouterr()
    *rows, summary = [json.loads(line) for line in out.splitlines()]
    assert (summary["files"], summary["copied"], summary["failed"]) == (9, 5, 4)
    failed = [r for r in rows if r["status"] == "failed"]
    names = sorted(r["source"].rsplit("/", 1)[-1] for r in failed)
    assert [n for n in names if n.startswith("pipe")] == [f"pipe{n}" for n in range(4)]
    named = [line for line in err.splitlines() if line.startswith("sftp-s3-tui: sftp://")]
    assert len(named) == 2  # FAILED_LINES
    assert "sftp-s3-tui: and 2 more failed (each is a --json row)" in err
    decomposed = unicodedata.normalize("NFD", composed)
    assert sorted(keys(s3, bucket)) == sorted(
        [composed, decomposed, "ok0.csv", "ok1.csv", "ok2.csv"]
    )
    assert s3.get_object(Bucket=bucket, Key=composed)["Body"].read() == b"composed\n"
    assert s3.get_object(Bucket=bucket, Key=decomposed)["Body"].read() == b"decomposed\n"


def test_sources_stream_only_when_their_keys_cannot_meet() -> None:
    endpoint = SftpEndpoint(host="h")
    prefix = parse_s3_url("s3://bkt/in/")

    def sources(*paths: str) -> list[PlanSource]:
        return [PlanSource(endpoint, p) for p in paths]

    assert can_stream(sources("/drop/"), prefix)  # one source: always
    assert can_stream(sources("/a/x", "/b/y"), prefix)  # in/x… and in/y…
    assert can_stream(sources("/a/x", "/b/xy"), prefix)  # in/x/… never meets in/xy/…
    assert not can_stream(sources("/a/x", "/b/x"), prefix)  # both in/x…
    assert not can_stream(sources("/a/", "/b/y"), prefix)  # /a/'s contents: any key
    assert not can_stream(sources("/a/*.csv", "/b/y"), prefix)  # a glob: any name
    assert can_stream(sources("/a/x", "/b/y"), parse_s3_url("s3://bkt/one"))  # refused early


def test_the_key_table_tells_a_key_seen_before() -> None:
    table = KeyTable()
    assert all(table.add("b", f"k{n}") for n in range(50_000))  # every table grows
    assert not table.add("b", "k42") and not table.add("b", "k49999")
    assert table.add("other", "k42")  # the bucket is part of the key
    assert table.count == 50_001
