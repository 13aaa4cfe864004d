"""Many files at once, conflict policies, and the user's pause / resume / retry controls."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import psutil
import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.engine.events import (
    EngineEvent,
    EventBus,
    PartChanged,
    PartState,
    TransferState,
    TransferStateChanged,
)
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, keys, object_bytes, open_uploads

PART = 5 * MiB


async def test_500_small_files_land_concurrently(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    for n in range(500):
        embedded_sftp.write_file(f"drop/f{n:03}.csv", f"row,{n}\n".encode() * 50)
    running: set[int] = set()
    most_at_once = 0
    bus = EventBus()

    def track(event: EngineEvent) -> None:
        nonlocal most_at_once
        if isinstance(event, TransferStateChanged):
            if event.state is TransferState.RUNNING:
                running.add(event.transfer_id)
            else:
                running.discard(event.transfer_id)
            most_at_once = max(most_at_once, len(running))

    bus.subscribe(track)
    results = await copy(
        embedded_sftp.endpoint(),
        [embedded_sftp.remote_path("drop/")],
        f"s3://{bucket}/in/",
        s3_endpoint,
        bus=bus,
    )

    assert len(results) == 500 and {r.status for r in results} == {TransferState.DONE}
    assert len(keys(s3, bucket)) == 500
    assert object_bytes(s3, bucket, "in/f123.csv") == b"row,123\n" * 50
    assert most_at_once > 4


async def _copy_with(
    server: SftpServerInfo, path: str, s3_endpoint: S3Endpoint, bucket: str, policy: ConflictPolicy
) -> TransferState:
    options = TransferOptions(part_size=PART, conflict=policy)
    [result] = await copy(
        server.endpoint(), [path], f"s3://{bucket}/k/", s3_endpoint, options=options
    )
    return result.status


async def test_skip_existing_never_overwrites(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    small = sftp_server.write_file("a.csv", b"new")
    large = sftp_server.write_file("b.bin", size=2 * PART + 3, seed=5)
    s3.put_object(Bucket=bucket, Key="k/a.csv", Body=b"old")
    s3.put_object(Bucket=bucket, Key="k/b.bin", Body=b"old")

    states = [
        await _copy_with(
            sftp_server, f.remote_path, s3_endpoint, bucket, ConflictPolicy.SKIP_EXISTING
        )
        for f in (small, large)
    ]

    assert states == [TransferState.SKIPPED, TransferState.SKIPPED]
    assert object_bytes(s3, bucket, "k/a.csv") == b"old"
    assert object_bytes(s3, bucket, "k/b.bin") == b"old"
    assert open_uploads(s3, bucket) == []


async def test_skip_existing_writes_missing_keys(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    large = sftp_server.write_file("b.bin", size=2 * PART + 3, seed=5)

    state = await _copy_with(
        sftp_server, large.remote_path, s3_endpoint, bucket, ConflictPolicy.SKIP_EXISTING
    )

    assert state is TransferState.DONE
    assert object_bytes(s3, bucket, "k/b.bin") == large.read_bytes()


async def test_overwrite_replaces(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = sftp_server.write_file("a.csv", b"new")
    s3.put_object(Bucket=bucket, Key="k/a.csv", Body=b"old")

    state = await _copy_with(
        sftp_server, remote.remote_path, s3_endpoint, bucket, ConflictPolicy.OVERWRITE
    )

    assert state is TransferState.DONE and object_bytes(s3, bucket, "k/a.csv") == b"new"


async def test_if_newer_compares_source_mtime(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = sftp_server.write_file("a.csv", b"v2", mtime=2_000_000_000)
    s3.put_object(Bucket=bucket, Key="k/a.csv", Body=b"v1", Metadata={"source-mtime": "1000"})
    first = await _copy_with(
        sftp_server, remote.remote_path, s3_endpoint, bucket, ConflictPolicy.IF_NEWER
    )
    second = await _copy_with(
        sftp_server, remote.remote_path, s3_endpoint, bucket, ConflictPolicy.IF_NEWER
    )

    assert (first, second) == (TransferState.DONE, TransferState.SKIPPED)
    assert object_bytes(s3, bucket, "k/a.csv") == b"v2"


async def test_if_different_uses_size_and_sha256(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = sftp_server.write_file("a.bin", size=PART + 10, seed=1)
    first = await _copy_with(
        sftp_server, remote.remote_path, s3_endpoint, bucket, ConflictPolicy.IF_DIFFERENT
    )
    same = await _copy_with(
        sftp_server, remote.remote_path, s3_endpoint, bucket, ConflictPolicy.IF_DIFFERENT
    )
    changed = sftp_server.write_file("a.bin", size=PART + 10, seed=2)
    different = await _copy_with(
        sftp_server, remote.remote_path, s3_endpoint, bucket, ConflictPolicy.IF_DIFFERENT
    )

    assert (first, same, different) == (
        TransferState.DONE,
        TransferState.SKIPPED,
        TransferState.DONE,
    )
    assert object_bytes(s3, bucket, "k/a.bin") == changed.read_bytes()


async def test_pause_holds_parts_and_resume_finishes(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = embedded_sftp.write_file("big.bin", size=10 * PART, seed=3)
    bus = EventBus()
    options = TransferOptions(part_size=PART, parts_in_flight=2)
    states: list[TransferState] = []
    async with TransferQueue(s3_endpoint, options, bus=bus) as queue:
        jobs = await queue.expand(
            embedded_sftp.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )
        done_while_paused: list[int] = []
        paused = asyncio.Event()

        def on_event(event: EngineEvent) -> None:
            if isinstance(event, TransferStateChanged):
                states.append(event.state)
            if isinstance(event, PartChanged) and event.state is PartState.DONE:
                if not paused.is_set() and event.part_number >= 2:
                    queue.pause(event.transfer_id)
                    paused.set()
                elif paused.is_set():
                    done_while_paused.append(event.part_number)

        bus.subscribe(on_event)
        [transfer] = queue.submit(jobs)
        await paused.wait()
        await asyncio.sleep(1.0)
        held = len(done_while_paused)
        queue.resume(transfer.id)
        [result] = await queue.join()

    assert held <= 2  # only the parts already in flight finished while paused
    assert TransferState.PAUSED in states and result.status is TransferState.DONE
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()


async def test_retry_after_failure(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    async with TransferQueue(s3_endpoint, TransferOptions()) as queue:
        remote = embedded_sftp.write_file("late.csv", b"here")
        jobs = await queue.expand(
            embedded_sftp.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/")
        )
        remote.local_path.unlink()
        [failed] = await queue.run(jobs)
        embedded_sftp.write_file("late.csv", b"here now")
        queue.retry(1)
        [result] = await queue.join()

    assert failed.status is TransferState.FAILED and "does not exist" in failed.message
    assert result.status is TransferState.DONE
    assert object_bytes(s3, bucket, "late.csv") == b"here now"


async def test_pausing_a_queued_file_keeps_it_waiting_and_resume_lands_it(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """Pausing a file that waits for a slot used to hang the queue: it became RUNNING when its
    slot came while staying paused, so `p` could not resume it and join() never returned."""
    first = embedded_sftp.write_file("q/first.bin", size=3 * PART, seed=1)
    second = embedded_sftp.write_file("q/second.csv", b"second\n" * 100)
    options = TransferOptions(part_size=PART, files_in_flight=1)
    finished: list[int] = []
    async with TransferQueue(s3_endpoint, options) as queue:
        queue.bus.subscribe(
            lambda e: (
                finished.append(e.transfer_id)
                if isinstance(e, TransferStateChanged) and e.state.finished
                else None
            )
        )
        jobs = []
        for remote in (first, second):
            jobs += await queue.expand(
                embedded_sftp.endpoint(), remote.remote_path, parse_s3_url(f"s3://{bucket}/q/")
            )
        big, small = queue.submit(jobs)
        # The second waits for the one file slot the first holds: pause it there, at once
        # (after a fixed sleep a quick first file could already have freed the slot).
        assert small.state is TransferState.QUEUED
        queue.pause(small.id)
        assert small.state is TransferState.PAUSED
        while big.id not in finished:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the slot is free: a paused file must not take it
        assert small.state is TransferState.PAUSED
        assert keys(s3, bucket) == ["q/first.bin"]

        queue.resume(small.id)
        results = await asyncio.wait_for(queue.join(), 60)

    assert [r.status for r in results] == [TransferState.DONE, TransferState.DONE]
    assert object_bytes(s3, bucket, "q/second.csv") == second.read_bytes()
    assert open_uploads(s3, bucket) == []


async def test_pause_all_then_cancel_a_queued_file_ends_the_queue(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    for n in range(6):
        embedded_sftp.write_file(f"p/f{n}.csv", f"{n}\n".encode() * 1000)
    options = TransferOptions(files_in_flight=2)
    async with TransferQueue(s3_endpoint, options) as queue:
        jobs = await queue.expand(
            embedded_sftp.endpoint(),
            embedded_sftp.remote_path("p/"),
            parse_s3_url(f"s3://{bucket}/"),
        )
        transfers = queue.submit(jobs)
        queue.pause_all()
        assert {t.state for t in transfers} == {TransferState.PAUSED}
        queue.cancel(transfers[-1].id)
        queue.resume_all()
        results = await asyncio.wait_for(queue.join(), 60)

    states = [r.status for r in results]
    assert states == [TransferState.DONE] * 5 + [TransferState.CANCELLED]
    assert results[-1].message == "cancelled before it started"
    assert keys(s3, bucket) == [f"f{n}.csv" for n in range(5)]


async def test_jobs_are_queued_as_a_listing_yields_them_with_bounded_look_ahead(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A listing that streams feeds the queue while files already move; the queue never
    holds more than the look-ahead waiting, and a listing's error reaches join()."""
    for n in range(300):
        embedded_sftp.write_file(f"s/f{n:03}.csv", f"{n}\n".encode() * 10)
    most_waiting = 0
    options = TransferOptions(files_in_flight=4)
    async with TransferQueue(s3_endpoint, options, keep_finished=25) as queue:
        listed = await queue.expand(
            embedded_sftp.endpoint(),
            embedded_sftp.remote_path("s/"),
            parse_s3_url(f"s3://{bucket}/"),
        )

        async def listing() -> Any:
            nonlocal most_waiting
            for job in listed:
                most_waiting = max(most_waiting, queue.waiting)
                yield job

        queue.submit_stream(listing(), lookahead=20)
        results = await asyncio.wait_for(queue.join(), 120)

        async def broken() -> Any:
            yield listed[0]
            raise UsageError("the listing of /s failed", "")

        queue.submit_stream(broken())
        try:
            await asyncio.wait_for(queue.join(), 60)
        except UsageError as exc:
            failure = str(exc)

    # the queue kept the last 25 records (results come from the bus for such runs), but
    # counted every outcome
    assert len(results) == 25 and {r.status for r in results} == {TransferState.DONE}
    assert queue.outcomes[TransferState.DONE] == 301  # and the broken listing's one file
    assert most_waiting <= 20
    assert len(keys(s3, bucket)) == 300
    assert failure == "the listing of /s failed"
    assert queue.loop_share.deferred == 0  # headless: no front shares the loop, no step waits


def _files_held_open_under(root: Path) -> list[str]:
    """The files under ``root`` some process has open (the SFTP server's handles)."""
    held = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            held += [f.path for f in process.open_files() if f.path.startswith(str(root))]
    return held


@pytest.mark.sftp_families
async def test_every_handle_a_copy_opened_is_closed_while_its_session_goes_on(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """Each small file's handle is closed in the background, without waiting for its answer;
    the server still closes every one: none is left open for the session's end to close."""
    for n in range(40):
        openssh_sftp.write_file(f"h/f{n:02}.csv", f"{n}\n".encode())
    async with TransferQueue(s3_endpoint) as queue:
        jobs = await queue.expand(
            openssh_sftp.endpoint(), openssh_sftp.remote_path("h/"), parse_s3_url(f"s3://{bucket}/")
        )
        results = await queue.run(jobs)
        held = _files_held_open_under(openssh_sftp.root)
        for _ in range(50):  # the closes' answers come after the results
            if not held:
                break
            await asyncio.sleep(0.1)
            held = _files_held_open_under(openssh_sftp.root)
        assert queue.sftp._hosts, "the session is still up"
    assert {r.status for r in results} == {TransferState.DONE}
    assert held == []
    assert len(keys(s3, bucket)) == 40
