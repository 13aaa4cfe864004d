"""A user leaves ``watch`` running on the partner's drop folder: files dropped while it runs
are shipped, each once, even across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.nightly.options import RunOptions
from sftp_s3_tui.engine.nightly.watch import (
    PollReport,
    Watcher,
    WatchHooks,
    WatchSource,
    WatchState,
)
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes


async def until(condition: Any, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_watch_ships_new_files_once_across_a_restart(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    sftp_server.write_file("drop/first.csv", b"1\n")
    dest = parse_s3_url(f"s3://{bucket}/in/")
    source = WatchSource(sftp_server.endpoint(), sftp_server.remote_path("drop/"))
    state_dir = tmp_path / "state"
    polls: list[PollReport] = []
    stop = asyncio.Event()

    async with TransferQueue(s3_endpoint) as queue:
        state = WatchState.for_watch(state_dir, [source.path], dest)
        running = asyncio.create_task(
            Watcher(
                queue,
                [source],
                dest,
                RunOptions(),
                every_seconds=0.2,
                state=state,
                hooks=WatchHooks(on_poll=polls.append),
            ).run(stop)
        )
        await until(lambda: keys(s3, bucket) == ["in/first.csv"])
        sftp_server.write_file("drop/sub/second.csv", b"2\n")  # dropped while it runs
        await until(lambda: len(keys(s3, bucket)) == 2)
        stop.set()
        await running
    assert keys(s3, bucket) == ["in/first.csv", "in/sub/second.csv"]
    assert object_bytes(s3, bucket, "in/sub/second.csv") == b"2\n"
    shipped = [r.key for p in polls for r in p.run.results]
    assert sorted(shipped) == ["in/first.csv", "in/sub/second.csv"]  # each once
    assert len(polls) >= 2

    # restart: the state remembers; nothing is shipped again, a changed file is
    state.close()  # the first watch's process ends: its lock goes
    s3.delete_object(Bucket=bucket, Key="in/first.csv")  # would reappear if shipped again
    again: list[PollReport] = []
    async with TransferQueue(s3_endpoint) as queue:
        state = WatchState.for_watch(state_dir, [source.path], dest)
        # (a file whose object landed just as the watch stopped may not be noted yet: the
        # next poll finds its object in S3 and notes it instead of shipping it again)
        await Watcher(
            queue,
            [source],
            dest,
            RunOptions(),
            every_seconds=0.05,
            state=state,
            hooks=WatchHooks(on_poll=again.append),
        ).run(asyncio.Event(), max_polls=2)
        assert [r for p in again for r in p.run.results] == []
        assert len(state) == 2
        sftp_server.write_file("drop/sub/second.csv", b"2\n3\n")
        changed: list[PollReport] = []
        await Watcher(
            queue,
            [source],
            dest,
            RunOptions(),
            every_seconds=0.05,
            state=state,
            hooks=WatchHooks(on_poll=changed.append),
        ).run(asyncio.Event(), max_polls=1)
    assert [r.key for p in changed for r in p.run.results] == ["in/sub/second.csv"]
    assert keys(s3, bucket) == ["in/sub/second.csv"]
    assert object_bytes(s3, bucket, "in/sub/second.csv") == b"2\n3\n"


async def test_stop_during_a_poll_aborts_and_returns(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    stop = asyncio.Event()
    stop.set()  # already asked to stop: not a single poll starts
    dest = parse_s3_url(f"s3://{bucket}/")
    async with TransferQueue(s3_endpoint) as queue:
        source = WatchSource(openssh_sftp.endpoint(), openssh_sftp.remote_path("drop/"))
        polls = await Watcher(
            queue,
            [source],
            dest,
            RunOptions(),
            every_seconds=60,
            state=WatchState.for_watch(tmp_path, [source.path], dest),
        ).run(stop)
    assert polls == 0 and keys(s3, bucket) == []


async def test_sigterm_mid_upload_aborts_it_and_ships_it_next_time(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    from sftp_s3_tui.engine.config import TransferOptions
    from sftp_s3_tui.engine.events import EngineEvent, PartChanged, PartState
    from sftp_s3_tui.engine.nightly.source_actions import SourceAction
    from tests.support.transfers import MiB, open_uploads

    big = embedded_sftp.write_file("drop/big.bin", size=8 * 5 * MiB, seed=3)
    dest = parse_s3_url(f"s3://{bucket}/in/")
    source = WatchSource(embedded_sftp.endpoint(), "/drop/")
    stop = asyncio.Event()
    options = TransferOptions(part_size=5 * MiB, parts_in_flight=2)

    def stop_after_first_part(event: EngineEvent) -> None:
        if isinstance(event, PartChanged) and event.state is PartState.DONE:
            stop.set()  # what the SIGTERM handler does

    async with TransferQueue(s3_endpoint, options) as queue:
        queue.bus.subscribe(stop_after_first_part)
        state = WatchState.for_watch(tmp_path, [source.path], dest)
        await Watcher(
            queue,
            [source],
            dest,
            RunOptions(source_action=SourceAction(delete=True)),
            every_seconds=0.1,
            state=state,
        ).run(stop)
    assert keys(s3, bucket) == [] and open_uploads(s3, bucket) == []
    assert big.local_path.exists() and len(state) == 0
    state.close()  # the watch's process ends: its lock goes

    async with TransferQueue(s3_endpoint, options) as queue:  # the next start ships it
        state = WatchState.for_watch(tmp_path, [source.path], dest)
        await Watcher(
            queue,
            [source],
            dest,
            RunOptions(),
            every_seconds=0.1,
            state=state,
        ).run(asyncio.Event(), max_polls=1)
    assert keys(s3, bucket) == ["in/big.bin"] and len(state) == 1
