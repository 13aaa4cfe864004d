"""What the TUI costs: one transfer run from the TUI vs the same one headless, and key latency.

The demo servers run in their own process (so neither client shares a loop with them); the
headless run is ``sftp-s3-tui copy`` as a subprocess, the TUI run is the real app driven by a
Pilot (headless terminal). Both report the engine's own per-file seconds; runs alternate.
While the TUI transfer runs, key presses (cursor moves) are timed from the key event to the
next frame the app renders: wall time, and the event loop thread's CPU time over the same span
(what the TUI itself spent; on a box loaded by other work the wall time also counts waiting
for a core).

    uv run python bench/tui_overhead.py --size-mib 512 --runs 3
    uv run python bench/tui_overhead.py --size-mib 512 --runs 1 --queue-rows 10000

``--queue-rows N`` runs one file at a time and queues N small files behind the big one, so
they wait as rows while it transfers: key latency with a long queue on screen. At most
``MAX_FILES_ON_DISK`` small files are written; beyond that the jobs repeat them under distinct
keys (real jobs of real files, 100,000 of them without 100,000 inodes).

``--keys list`` (the default) focuses the queue and moves its cursor (end, up, page up, home,
down, page down: the list scrolls from one end of the queue to the other); ``--keys browse``
moves the SFTP browser's cursor while the queue is on screen beside it.

    uv run python bench/tui_overhead.py --size-mib 256 --runs 1 --queue-rows 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

#: The most small files the server writes for ``--queue-rows`` (the rest are repeats).
MAX_FILES_ON_DISK = 10_000
#: The keys pressed, in turn, while the transfer runs (``--keys list`` / ``--keys browse``).
KEYS = {
    "list": ["end", "up", "pageup", "home", "down", "pagedown"],
    "browse": ["up", "down"],
}

SERVER = r"""
import asyncio, json, sys
from pathlib import Path
from sftp_s3_tui.demo import DemoEnvironment, write_blocks, pattern_blocks
async def main():
    async with DemoEnvironment(large=False) as env:
        write_blocks(env.sample_root / "bench" / "big.bin", pattern_blocks(int(sys.argv[1]) << 20))
        many = env.sample_root / "many"
        many.mkdir(exist_ok=True)
        for i in range(int(sys.argv[2])):
            (many / f"row-{i:05d}.csv").write_bytes(b"id\n1\n")
        print(json.dumps({"host": env.host, "port": env.port, "known_hosts": str(env.known_hosts),
                          "endpoint_url": env.endpoint_url}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


def headless(info: dict[str, Any]) -> tuple[float, float]:
    env = dict(
        os.environ,
        SFTP_PASSWORD="demo",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            "--json",
            "--no-resume",
            "--no-agent",
            f"sftp://demo@{info['host']}:{info['port']}/bench/big.bin",
            "s3://landing/bench/h.bin",
            "--known-hosts",
            info["known_hosts"],
            "--endpoint-url",
            info["endpoint_url"],
            "--path-style",
            "--region",
            "us-east-1",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    result = json.loads(out.stdout.splitlines()[-1])
    return result["bytes"] / result["seconds"] / 1e6, wall


async def tui(
    info: dict[str, Any],
    tmp: Path,
    sampler_interval: float | None = None,
    queue_rows: int = 0,
    keys_in: str = "list",
    profile_path: str | None = None,
) -> tuple[float, list[tuple[float, float]]]:
    from textual import events

    from sftp_s3_tui.engine.events import PartChanged, PartState
    from sftp_s3_tui.profiles import Profile, S3Settings, Secret, SftpAuth, SftpSettings
    from sftp_s3_tui.ui.app import AppOptions, SftpS3App
    from sftp_s3_tui.ui.screens.browse import BrowseScreen
    from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree

    profile = Profile(
        name="bench",
        sftp=SftpSettings(
            host=info["host"],
            port=info["port"],
            user="demo",
            auth=SftpAuth.PASSWORD,
            password=Secret.literal("demo"),
            known_hosts=info["known_hosts"],
            remote_folder="/bench",
        ),
        s3=S3Settings(
            endpoint_url=info["endpoint_url"],
            region="us-east-1",
            path_style=True,
            access_key_id="testing",
            secret_access_key=Secret.literal("testing"),
            bucket="landing",
            prefix="bench/t/",
        ),
    )
    from sftp_s3_tui.engine.config import TransferOptions

    app = SftpS3App(
        AppOptions(
            initial=profile,
            transfer_options=TransferOptions(files_in_flight=1) if queue_rows else None,
            journal_dir=None,
            read_user_config=False,
            profiles_path=tmp / "p.toml",
            sampler_interval=sampler_interval or AppOptions.sampler_interval,
        )
    )
    frames: list[tuple[float, float]] = []  # (wall, loop thread CPU) when each frame was out
    display = app._display

    frame_out = asyncio.Event()

    def timed_display(screen: Any, renderable: Any) -> None:
        display(screen, renderable)
        if renderable is not None:
            frames.append((time.perf_counter(), time.thread_time()))
            frame_out.set()

    app._display = timed_display  # type: ignore[method-assign]
    latencies: list[tuple[float, float]] = []  # (wall, CPU) from key to frame
    full_gcs: list[float] = []  # seconds of each full (generation 2) collection while timing
    gc_started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if info["generation"] == 2 and latencies:
            if phase == "start":
                gc_started = time.perf_counter()
            else:
                full_gcs.append(time.perf_counter() - gc_started)

    gc.callbacks.append(on_gc)
    async with app.run_test(size=(150, 44)) as pilot:
        while not (
            isinstance(app.screen, BrowseScreen)
            and app.screen.query(RemoteTree)
            and app.screen.query_one(RemoteTree).entries
        ):
            await pilot.pause(0.05)
        session = app.session
        assert session is not None
        await pilot.press("down", "c")
        while not session.queue.transfers:
            await pilot.pause(0.02)
        transfer = next(iter(session.queue.transfers.values()))
        idle_seconds = 0.0  # the big file's result counts its pause: taken out of its rate
        if queue_rows:
            from sftp_s3_tui.engine.addresses import parse_s3_url

            # One file at a time: the big one holds the slot (paused while the rows are
            # listed and queued, then resumed), the rows wait behind it as queued. A pause
            # holds only the next parts: those in flight still move. So it is paused once
            # its parts flow (its setup done), and only the span from its last part's
            # return to the resume (nothing of it in flight, every buffer back in the
            # pool) is taken out of its seconds: none of its bytes move in that span.
            pool = session.queue.buffers
            while transfer.state.value != "running" or not pool.bytes_in_use:
                await asyncio.sleep(0.002)
            session.queue.pause(transfer.id)
            while pool.bytes_in_use:
                await asyncio.sleep(0.002)
            drained_at = time.monotonic()
            files = await session.expand_paths(["/many"], parse_s3_url("s3://landing/bench/rows/"))
            jobs = [
                replace(files[i % len(files)], key=f"bench/rows/{i:06d}.csv")
                for i in range(queue_rows)
            ]
            session.queue.submit(jobs)
            rows = app.screen.query_one("TransferList").rows_by_id  # type: ignore[attr-defined]
            while len(rows) < queue_rows + 1:
                await pilot.pause(0.1)
            session.queue.resume(transfer.id)
            idle_seconds = time.monotonic() - drained_at
            print(f"  the file's pause taken out of its seconds: {idle_seconds:.1f} s")
        keys = KEYS[keys_in]
        if keys_in == "list":
            await pilot.press("t")  # wide: focuses the queue beside the browser
            assert app.focused is app.screen.query_one("TransferList"), app.focused
        profiler = cProfile.Profile() if profile_path else None
        if profiler is not None:
            profiler.enable()  # the timed phase only: the transfer with its queue on screen
        # the app's CPU while the file moves with its queue on screen: the loop thread's
        # (UI and engine) and the whole process's (with the hashing threads)
        timed_from = (time.perf_counter(), time.thread_time(), time.process_time())
        moved = [0]  # bytes of parts uploaded since

        def count_done(event: Any) -> None:
            if isinstance(event, PartChanged) and event.state is PartState.DONE:
                moved[0] += event.size

        stop_counting = session.bus.subscribe(count_done)
        while not transfer.state.finished:
            await asyncio.sleep(0.3)
            if transfer.state.finished:
                break
            # the key as the terminal driver sends it (Pilot.press would also wait for every
            # widget on screen to go idle: loop work no user's key press costs), then the
            # frame it brings, awaited without polling
            count = len(frames)
            frame_out.clear()
            key = events.Key(keys[len(latencies) % len(keys)], None)
            key.set_sender(app)
            sent, sent_cpu = time.perf_counter(), time.thread_time()
            app._driver.send_message(key)  # type: ignore[union-attr]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(frame_out.wait(), 2)
            if len(frames) > count:
                wall, cpu = frames[count]
                latencies.append((wall - sent, cpu - sent_cpu))
        assert transfer.result is not None and transfer.result.status.value == "done", (
            transfer.result
        )
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        rate = transfer.result.bytes / (transfer.result.seconds - idle_seconds) / 1e6
        wall = time.perf_counter() - timed_from[0]
        loop_cpu = time.thread_time() - timed_from[1]
        process_cpu = time.process_time() - timed_from[2]
        stop_counting()
        moved_mib = max(moved[0], 1) / (1 << 20)
        print(
            f"  timed phase {wall:.1f} s, {moved_mib:.0f} MiB: loop thread CPU {loop_cpu:.2f} s "
            f"({loop_cpu / wall:.0%} of a core, {loop_cpu / moved_mib * 1000:.1f} ms/MiB), "
            f"process CPU {process_cpu:.2f} s ({process_cpu / moved_mib * 1000:.1f} ms/MiB)"
        )
        gc.callbacks.remove(on_gc)
        if full_gcs:
            print(
                f"  full garbage collections while timing keys: {len(full_gcs)}, longest "
                f"{max(full_gcs) * 1000:.1f} ms"
            )
        await app.close_all()
    return rate, latencies


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the demo's moto S3 child)."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += times.user + times.system
    return total


def start_server(
    size_mib: int, queue_rows: int = 0
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(size_mib), str(min(queue_rows, MAX_FILES_ON_DISK))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return server, json.loads(server.stdout.readline())  # type: ignore[union-attr]


def stop_server(server: subprocess.Popen[str]) -> None:
    server.stdin.close()  # type: ignore[union-attr]
    server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sampler-interval", type=float, help="the TUI's update interval")
    parser.add_argument("--queue-rows", type=int, default=0, help="rows queued behind the file")
    parser.add_argument("--keys", choices=sorted(KEYS), default="list", help="where keys go")
    parser.add_argument("--profile", help="write a cProfile of the TUI's timed phase here")
    args = parser.parse_args()
    headless_rates: list[float] = []
    tui_rates: list[float] = []
    latencies: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            # fresh servers for each pair (moto slows down as it accumulates uploads), and
            # the order alternates so neither side always gets the warm server
            server, info = start_server(args.size_mib, args.queue_rows)
            try:
                for side in ("headless", "tui") if run % 2 == 0 else ("tui", "headless"):
                    # CPU seconds of the servers and of the client over each side's whole run
                    # (the headless client's include its start; the TUI's, the app's start
                    # and the queued rows): on 2 cores, what the client spends the servers miss
                    server_cpu = tree_cpu_seconds(server.pid)
                    client_cpu = (
                        resource.getrusage(resource.RUSAGE_CHILDREN)
                        if side == "headless"
                        else resource.getrusage(resource.RUSAGE_SELF)
                    )
                    if side == "headless":
                        rate, wall = headless(info)
                        headless_rates.append(rate)
                        print(f"run {run + 1}: headless {rate:6.1f} MB/s (wall {wall:.1f}s)")
                    else:
                        rate, lat = asyncio.run(
                            tui(
                                info,
                                Path(tmp),
                                args.sampler_interval,
                                args.queue_rows,
                                args.keys,
                                args.profile,
                            )
                        )
                        tui_rates.append(rate)
                        latencies += lat
                        walls = [wall for wall, _ in lat]
                        print(
                            f"run {run + 1}: tui      {rate:6.1f} MB/s  key→frame median "
                            f"{statistics.median(walls) * 1000:.1f} ms max "
                            f"{max(walls) * 1000:.1f} ms (n={len(lat)})"
                        )
                    after = resource.getrusage(
                        resource.RUSAGE_CHILDREN if side == "headless" else resource.RUSAGE_SELF
                    )
                    client = (after.ru_utime + after.ru_stime) - (
                        client_cpu.ru_utime + client_cpu.ru_stime
                    )
                    print(
                        f"  CPU seconds: client {client:.1f}, servers "
                        f"{tree_cpu_seconds(server.pid) - server_cpu:.1f}"
                    )
                    sys.stdout.flush()
            finally:
                stop_server(server)
    h, t = statistics.median(headless_rates), statistics.median(tui_rates)
    print(f"median headless {h:.1f} MB/s, tui {t:.1f} MB/s: tui/headless = {t / h:.1%}")
    for what, values in (
        ("wall", sorted(wall for wall, _ in latencies)),
        ("loop CPU", sorted(cpu for _, cpu in latencies)),
    ):
        p95 = values[max(int(len(values) * 0.95) - 1, 0)]
        print(
            f"key press → next frame ({what}): median {statistics.median(values) * 1000:.1f} ms, "
            f"p95 {p95 * 1000:.1f} ms, max {values[-1] * 1000:.1f} ms, n={len(values)}"
        )


if __name__ == "__main__":
    main()
