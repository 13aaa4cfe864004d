"""A partner drops ``a.csv`` every day and the nightly run archives it with ``--move-to``:
yesterday's archived file is never replaced, a move the server refuses is reported by
``watch`` as by ``copy``, an archive folder that is (or is inside) the drop is refused up
front, and a file whose mtime is in the future says the server's clock may be ahead."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.engine.nightly.source_actions import SourceAction
from sftp_s3_tui.requests import RunFlags, run_options
from tests.support.cli import key_args, run_cli, source_url
from tests.support.nightly import manifest_rows, nightly
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes
from tests.support.watcher import Watcher, wait_for


def archived(server: SftpServerInfo, folder: str = "processed") -> dict[str, bytes]:
    """The archive folder's files (name → bytes), as the partner would list it."""
    root = server.root / folder
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())} if root.exists() else {}


async def test_a_reused_name_never_replaces_the_archived_file(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.jsonl"
    days = [b"day,1\n", b"day,2 other bytes\n", b"day,3\n"]
    for n, body in enumerate(days):
        sftp_server.write_file("drop/a.csv", body, mtime=time.time() - 3600 * (3 - n))
        report = await nightly(
            sftp_server,
            sftp_server.remote_path("drop/"),
            f"s3://{bucket}/in/",
            s3_endpoint,
            action=SourceAction(move_to=sftp_server.remote_path("processed/")),
            manifest=manifest,
        )
        [outcome] = report.outcomes
        assert outcome.action == "moved" and outcome.ok, outcome
        assert object_bytes(s3, bucket, "in/a.csv") == body

    # every day's file is in the archive, under the name its row gives
    archive = archived(sftp_server)
    assert sorted(archive.values()) == sorted(days)
    assert archive["a.csv"] == days[0]
    moves = [r for r in manifest_rows(manifest) if r["kind"] == "source_action"]
    assert [r["source_action"] for r in moves] == ["moved"] * 3
    for row, body in zip(moves, days, strict=True):
        target = row["target"]
        assert target.startswith(sftp_server.remote_path("processed/a.csv"))
        assert archive[target.rsplit("/", 1)[1]] == body
    assert moves[0]["target"] == sftp_server.remote_path("processed/a.csv")
    assert len({r["target"] for r in moves}) == 3
    assert "note" not in moves[0] and "already" in moves[1]["note"]


def test_cli_says_where_the_second_a_csv_went(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    processed = openssh_sftp.remote_path("processed/")
    lines = []
    for body in (b"monday\n", b"tuesday\n"):
        openssh_sftp.write_file("drop/a.csv", body)
        done = run_cli(
            "copy",
            source_url(openssh_sftp, "drop/"),
            f"s3://{bucket}/in/",
            *key_args(openssh_sftp, s3_endpoint),
            "--move-to",
            processed,
        )
        assert done.returncode == 0, done.stderr
        lines.append(done.stderr)
    assert f"a.csv: moved → {processed}a.csv\n" in lines[0]
    [second] = [line for line in lines[1].splitlines() if ": moved → " in line]
    target = second.split(" → ", 1)[1].split(" (", 1)[0]
    assert target != f"{processed}a.csv" and target.startswith(f"{processed}a.csv.")
    assert f"{processed}a.csv already held an archived file" in second
    assert archived(openssh_sftp) == {"a.csv": b"monday\n", target.rsplit("/", 1)[1]: b"tuesday\n"}
    assert object_bytes(s3, bucket, "in/a.csv") == b"tuesday\n"


def test_watch_reports_a_move_the_server_refuses_as_copy_does(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    openssh_sftp.write_file("archive", b"a file where the archive folder should be\n")
    refused = openssh_sftp.remote_path("archive/processed/")
    source = openssh_sftp.remote_path("drop/a.csv")

    def watch(prefix: str, *extra: str) -> tuple[Watcher, str]:
        """A watch into ``prefix`` stopped once it recorded the source action."""
        manifest = tmp_path / f"{prefix}.jsonl"
        watcher = Watcher(
            [
                sys.executable,
                "-m",
                "sftp_s3_tui",
                "watch",
                source_url(openssh_sftp, "drop/"),
                f"s3://{bucket}/{prefix}/",
                *key_args(openssh_sftp, s3_endpoint),
                "--every",
                "0.3s",
                "--move-to",
                refused,
                "--manifest",
                str(manifest),
                *extra,
            ]
        )
        try:
            wait_for(
                lambda: (
                    manifest.exists()
                    and any(r["kind"] == "source_action" for r in manifest_rows(manifest))
                    # --json: its record read too (stop() would race the reader for stdout)
                    and (not extra or any("source_action" in line for line in watcher.lines))
                )
            )
        finally:
            code, err = watcher.stop()
        assert code == 0, err
        assert "Traceback" not in err
        return watcher, err

    as_json, _ = watch("j", "--json")
    [record] = [line for line in as_json.lines if "source_action" in line]
    assert record["path"] == source and record["source_action"] == "kept"
    assert record["ok"] is False and "could not move it to" in record["reason"]

    _, err = watch("t")
    assert f"{source}: kept: could not move it to {refused}a.csv" in err
    assert object_bytes(s3, bucket, "t/a.csv") == b"a\n"
    assert (openssh_sftp.root / "drop" / "a.csv").read_bytes() == b"a\n"


def test_an_archive_that_is_the_drop_or_inside_it_is_refused_up_front(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    drop = openssh_sftp.remote_path("drop")
    args = [f"s3://{bucket}/in/", *key_args(openssh_sftp, s3_endpoint)]

    same = run_cli("copy", source_url(openssh_sftp, "drop/"), *args, "--move-to", f"{drop}/")
    watched = source_url(openssh_sftp, "drop")
    inside = run_cli("watch", watched, *args, "--move-to", f"{drop}/processed/", timeout=60)
    everything = run_cli(
        "copy", source_url(openssh_sftp, "drop/*"), *args, "--move-to", f"{drop}/x"
    )

    assert same.returncode == 2 and same.stderr.count("\n") == 1, same.stderr
    assert f"--move-to {drop}/ is the source folder {drop}: nothing would move" in same.stderr
    assert inside.returncode == 2 and inside.stderr.count("\n") == 1, inside.stderr
    assert f"--move-to {drop}/processed/ is inside the source {drop}" in inside.stderr
    assert "(as processed/…)" in inside.stderr
    assert everything.returncode == 2 and "is inside the source" in everything.stderr
    assert keys(s3, bucket) == []
    assert (openssh_sftp.root / "drop" / "a.csv").read_bytes() == b"a\n"

    # one file named alone: whether it is a file is known once listed, so it is kept then
    same_folder = f"{drop}/./"
    alone = run_cli("copy", source_url(openssh_sftp, "drop/a.csv"), *args, "--move-to", same_folder)
    assert alone.returncode == 0, alone.stderr
    source = f"{drop}/a.csv"
    assert f"{source}: kept: --move-to {same_folder} is the folder it is in" in alone.stderr
    assert (openssh_sftp.root / "drop" / "a.csv").read_bytes() == b"a\n"


def test_a_glob_may_archive_beside_the_files_it_picks(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """``/drop/*.csv`` never walks ``/drop/processed/``: a rerun finds nothing to ship."""
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    drop = openssh_sftp.remote_path("drop")
    args = [f"s3://{bucket}/in/", *key_args(openssh_sftp, s3_endpoint)]
    glob = source_url(openssh_sftp, "drop/*.csv")

    first = run_cli("copy", glob, *args, "--move-to", f"{drop}/processed/")
    again = run_cli("copy", glob, *args, "--move-to", f"{drop}/processed/")

    assert first.returncode == 0, first.stderr
    assert archived(openssh_sftp, "drop/processed") == {"a.csv": b"a\n"}
    # the archive is not listed again: nothing left in the drop
    assert again.returncode == 3 and "Nothing matches" in again.stderr
    assert keys(s3, bucket) == ["in/a.csv"]


def test_the_airflow_task_refuses_an_archive_inside_its_paths() -> None:
    """The operator builds its run through the same request layer as ``copy``."""
    flags = RunFlags(move_to="/drop/./processed")
    run_options(flags, ["/other/x.csv", "/srv/*.csv"])  # neither walks /drop
    with pytest.raises(UsageError, match=r"inside the source /drop/: every run would ship"):
        run_options(flags, ["/other/x.csv", "/drop/"])
    with pytest.raises(UsageError, match="is the source folder /drop"):
        run_options(RunFlags(move_to="/drop//"), ["/drop/*.csv"])


def test_a_file_from_the_future_says_the_server_clock_may_be_ahead(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A server whose clock runs an hour ahead stamps its files an hour into our future."""
    ahead = openssh_sftp.write_file("drop/a.csv", b"a\n", mtime=time.time() + 3600)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/"),
        f"s3://{bucket}/in/",
        *key_args(openssh_sftp, s3_endpoint),
        "--min-age",
        "5m",
    )

    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if ": waiting: " in line]
    assert f"{source_url(openssh_sftp, 'drop/a.csv')}: waiting: " in line
    seconds = re.search(r"its mtime is (\d+) s in the future", line)
    assert seconds is not None and 0 < int(seconds[1]) <= 3600, line
    assert "the server's clock may be ahead of ours" in line
    assert "waiting until it is 300 s old" in line
    assert keys(s3, bucket) == [] and ahead.local_path.exists()
