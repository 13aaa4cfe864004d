"""Two runs of the same copy at once (cron fires again, an Airflow zombie task), and a journal
folder that cannot be used: one clear line each, and S3 left exactly as the user expects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import MiB, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.events import EngineEvent, PartChanged, PartState, TransferState
from sftp_s3_tui.engine.resume.journal import Journal
from sftp_s3_tui.engine.resume.stale_uploads import abort_stale, list_stale
from sftp_s3_tui.engine.s3.operations import open_client
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes, open_uploads


def state_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


def journal_folder(tmp_path: Path) -> Path:
    return tmp_path / "state" / "sftp-s3-tui" / "journal"


async def test_a_second_run_leaves_the_upload_of_a_running_one_alone(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    remote = openssh_sftp.write_file("drop/big.bin", size=12 * 5 * MiB + 3, seed=51)
    journal = Journal(journal_folder(tmp_path))
    options = TransferOptions(part_size=5 * MiB, parts_in_flight=2)
    async with TransferQueue(s3_endpoint, options, journal=journal) as first_run:
        paused = asyncio.Event()

        def pause_after_two_parts(event: EngineEvent) -> None:
            if (
                isinstance(event, PartChanged)
                and event.state is PartState.DONE
                and event.part_number >= 2
                and not paused.is_set()
            ):
                first_run.pause(event.transfer_id)
                paused.set()

        first_run.bus.subscribe(pause_after_two_parts)
        jobs = await first_run.expand(
            openssh_sftp.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )
        [transfer] = first_run.submit(jobs)
        await asyncio.wait_for(paused.wait(), 120)
        [upload] = await asyncio.to_thread(open_uploads, s3, bucket)

        second_run = await asyncio.to_thread(
            run_cli,
            "copy",
            source_url(openssh_sftp, "drop/big.bin"),
            f"s3://{bucket}/",
            *key_args(openssh_sftp, s3_endpoint),
            "--part-size",
            "5MiB",
            env=state_env(tmp_path),
        )
        # `cleanup` meanwhile: the upload is old enough, but a run holds it
        async with open_client(s3_endpoint) as client:
            stale = await list_stale(client, bucket, "", datetime.now(UTC), journal)
            await abort_stale(client, bucket, stale, journal)
        during = await asyncio.to_thread(open_uploads, s3, bucket)
        [record] = journal.entries()

        first_run.resume(transfer.id)
        [result] = await asyncio.wait_for(first_run.join(), 180)

    assert second_run.returncode == 1
    busy = [line for line in second_run.stderr.splitlines() if "another run" in line]
    assert len(busy) == 1 and f"s3://{bucket}/big.bin is being uploaded by another run (" in busy[0]
    assert "Traceback" not in second_run.stderr
    assert [u["UploadId"] for u in during] == [upload["UploadId"]]  # no second, none aborted
    assert record.upload_id == upload["UploadId"]  # its record not replaced
    assert result.status is TransferState.DONE, result.message
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()
    assert open_uploads(s3, bucket) == []
    assert journal.entries() == []


def test_a_journal_folder_that_cannot_be_used_is_one_line_and_no_open_upload(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    openssh_sftp.write_file("drop/big.bin", size=11 * MiB, seed=52)
    folder = journal_folder(tmp_path)
    folder.parent.mkdir(parents=True)
    folder.write_text("a file where the journal folder should be")

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/big.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        env=state_env(tmp_path),
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    problems = [line for line in done.stderr.splitlines() if "resume journal" in line]
    assert len(problems) == 1, done.stderr
    assert f"The resume journal cannot create {folder}: it is a file" in problems[0]
    assert "nothing was uploaded" in problems[0]
    assert "--no-resume" in done.stderr
    assert keys(s3, bucket) == [] and open_uploads(s3, bucket) == []

    again = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/big.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--no-resume",
        env=state_env(tmp_path),
    )
    assert again.returncode == 0, again.stderr
    assert keys(s3, bucket) == ["big.bin"]
