"""A partner drops ``a.csv`` every day and the nightly run archives it with ``--move-to``:
yesterday's archived file is never replaced, a move the server refuses is reported by
``watch`` as by ``copy``, an archive folder that is (or is inside) the drop is refused up
front, and a file whose mtime is in the future says the server's clock may be ahead."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.source_actions import SourceAction
from tests.engine.helpers import object_bytes
from tests.servers import SftpServerInfo
from tests.test_cli_copy import key_args, run_cli, source_url

from .helpers import manifest_rows, nightly
from .test_cli_nightly import Watcher, wait_for


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
        """A watch into ``prefix`` stopped once its manifest records the source action."""
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
