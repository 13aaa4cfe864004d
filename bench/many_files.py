"""Memory and event-loop stalls against the number of files (issue 17's must-reach).

For each file count, a synthetic SFTP server (tests/support/synthetic_sftp.py: the embedded asyncssh
server serving files that exist only as numbers, in its own process) and moto (its own process)
are started, and a fresh worker process copies the whole folder with the engine's
TransferQueue (jobs streamed from the listing, the sampler running as in the TUI). The worker
reports its RSS after connecting (the baseline), its peak RSS (``ru_maxrss``), files/s and the
longest event-loop stall seen by a probe task that sleeps 10 ms in a loop. Afterwards the
objects are counted and a sample is checked byte for byte.

    uv run python -m bench.many_files                        # 2,000, 10,000 and 100,000 files
    uv run python -m bench.many_files --counts 2000 --listing expand   # the list-based path
    uv run python -m bench.many_files --front cli            # the real `sftp-s3-tui copy`
    BENCH_SLOW_CALLBACKS=1 uv run python -m bench.many_files --front cli --counts 3000 --json x.json
                                       # + the slowest loop callbacks and GC pauses (CPU time)

``--front cli`` runs ``sftp-s3-tui copy sftp://…/many/ s3://many/ --json`` as its own process
(the same ``cli.main.main``, with only the loop probe wrapped around the command) and reads its peak
RSS and CPU from its own rusage (``wait4``); the baseline is the same command copying one file
of the folder. Files/s is from the copy's ``--json`` summary (start-up excluded). Start-up
(imports, connecting, creating the S3 client: until the first file is queued) is reported
apart as ``startup_loop_busy_ms``, the most loop CPU between two of the probe's wake-ups then.

The CLI, measured on 2026-12-02 (commit 70b073f: streamed plan, results counted as they come,
``gc.freeze()`` once connected; 512 MiB budget; the same 2-core VM shared with the other
helpers' test runs, load average 6-9, so wall-clock stalls are the box's; CPU/file and loop
busy time are the comparable figures):

    files    files/s  CPU/file  baseline  peak RSS   peak-base  max stall wall (loop busy)
    2,000    22.4     11.7 ms   95.9 MiB  98.7 MiB   2.8 MiB    542 ms (77 ms; 0 > 100 ms)
    10,000   24.6     10.3 ms   95.8 MiB  101.5 MiB  5.7 MiB    889 ms (88 ms; 0 > 100 ms)
    100,000  44.1     8.8 ms    95.6 MiB  105.8 MiB  10.2 MiB   883 ms (118 ms; 1 of 32,698
                                                                  10 ms intervals > 100 ms)

With the loop shared between the transfers' heavy steps (engine/aio.py, commit
fbd1b17 and after) and botocore's endpoint cache hitting per bucket, measured on 2026-12-02,
the same box; 2k and 10k against the base commit 3a6da8f in back-to-back runs (load 2.6-3.6):

    files    files/s  CPU/file  baseline  peak RSS   peak-base  max stall wall (loop busy)
    2,000    95.8     -         91.2 MiB  94.5 MiB   3.3 MiB    44.6 ms (40.2 ms)
      base   90.1               91.1 MiB  94.7 MiB   3.6 MiB    89.1 ms (88.4 ms)
    10,000   98.2     -         91.3 MiB  94.9 MiB   3.6 MiB    50.7 ms (41.7 ms)
      base   94.1               91.1 MiB  95.3 MiB   4.2 MiB    85.8 ms (81.4 ms)
    100,000  58.2     8.95 ms   91.2 MiB  97.5 MiB   6.3 MiB    448 ms (64.2 ms; 0 of 37,943
                                                                  10 ms intervals > 100 ms busy)

(100k at load 5-7, tests of other helpers and ours beside it: its wall stalls are the box's.)
What the loop waited for before (``BENCH_SLOW_CALLBACKS=1``, ``slow_iterations_ms`` and
``cpu_by_step_ms``): no single callback (<= 17 ms), but loop iterations of 55-66 ms in which
30-60 transfers answered by one SSH read all took their next step, above all a PutObject's
start (~3.5 ms each: botocore serialising, signing and re-resolving the endpoint per key).

Start-up held the loop 321-364 ms once, before the first file. Every object landed. Before
``gc.freeze()`` full collections walked the ~100k objects start-up leaves (botocore's models
above all) and took 90-120 ms each, during the copy; after it they take ~6 ms. Of the 100k
run's extra 4 MiB over 10k, ~3 MiB was the key table's single rehash buffer (now 256 tables).

The engine alone (``--front engine``), measured on 2026-12-01 (commit 3c0ac4a, --listing stream,
512 MiB budget, before the GC fix; a 2-core VM shared
with seven other jobs, load average 15-20, so wall-clock figures are the box's, not the
engine's; CPU per file is the comparable one):

    files    files/s  CPU/file  baseline  peak RSS  peak-base  max stall wall (loop busy)
    2,000    34.3     7.3 ms    95.4 MiB  97.2 MiB  1.8 MiB    828 ms (116 ms)
    10,000   32.3     5.1 ms    95.3 MiB  97.6 MiB  2.3 MiB    1588 ms (111 ms)
    100,000  34.7     5.3 ms    95.4 MiB  97.5 MiB  2.1 MiB    1567 ms (150 ms)
    then, with the box quieter:
    10,000   90.5     7.1 ms    95.5 MiB  97.7 MiB  2.2 MiB    265 ms (169 ms)
    2,000    108.6    8.4 ms    95.4 MiB  97.4 MiB  2.1 MiB    159 ms (159 ms)

Every object landed (count checked; 50 sampled objects byte for byte).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

BUCKET = "many"
USER, PASSWORD = "bench", "bench"
MiB = 1 << 20


# -- the SFTP server process ---------------------------------------------------------------------


async def serve_sftp(count: int) -> None:
    """Serve a synthetic tree of ``count`` files until stdin closes; print port and key."""
    from tests.support.synthetic_sftp import SyntheticSftpServer, SyntheticTree

    async with SyntheticSftpServer(SyntheticTree(count), users={USER: PASSWORD}) as server:
        print(json.dumps({"port": server.port, "known_hosts": server.known_hosts_line}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


# -- the worker process --------------------------------------------------------------------------


class LoopLagProbe:
    """Sleeps ``interval`` seconds in a loop and records how late each wake-up was.

    A late wake-up has two causes: callbacks that kept the loop busy (what a key press in the
    TUI would wait for) and a process that did not get a core (the box is shared). The loop
    thread's CPU time over the same span tells them apart: ``max_busy`` is the most CPU the
    loop thread spent between two wake-ups beyond the sleep, ``max_stall`` the wall time.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_stall = 0.0
        self.max_busy = 0.0
        self.stalls_over_100ms = 0
        self.busy_over_100ms = 0
        self.samples = 0
        self.max_busy_at = 0.0  # seconds after the probe started
        self.startup_busy = 0.0  # most loop CPU between two wake-ups before the first file
        #: Set when the first file is queued: until then it is start-up (connecting, loading
        #: botocore's models); when nothing sets it, start-up is the first interval.
        self.first_file: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            began, cpu_began = loop.time(), time.thread_time()
            await asyncio.sleep(self.interval)
            stall = loop.time() - began - self.interval
            busy = min(stall, time.thread_time() - cpu_began)
            self.samples += 1
            starting = not self.first_file.is_set() if self.first_file else self.samples == 1
            if starting:  # the command's start-up, before any file
                self.startup_busy = max(self.startup_busy, busy)
                continue
            self.max_stall = max(self.max_stall, stall)
            if busy > self.max_busy:
                self.max_busy, self.max_busy_at = busy, began - start
            self.stalls_over_100ms += stall > 0.1
            self.busy_over_100ms += busy > 0.1

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_loop_stall_ms": round(self.max_stall * 1000, 1),
            "loop_stalls_over_100ms": self.stalls_over_100ms,
            "max_loop_busy_ms": round(self.max_busy * 1000, 1),
            "max_loop_busy_at_s": round(self.max_busy_at, 1),
            "startup_loop_busy_ms": round(self.startup_busy * 1000, 1),
            "loop_busy_over_100ms": self.busy_over_100ms,
            "probe_samples": self.samples,
        }

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class SlowCallbacks:
    """Names the loop's callbacks that ran longest in CPU time (``thread_time``, so a busy
    box does not count): for finding what stalls the loop. Patches ``Handle._run``."""

    def __init__(self, threshold: float = 0.01, keep: int = 40) -> None:
        self.threshold = threshold
        self.keep = keep
        self.slow: list[tuple[float, str]] = []
        self.gc_pauses: list[tuple[float, int, int]] = []  # ms, generation, collected
        self._gc_began = 0.0
        # The slowest loop iterations (what a late timer waits for is one or two of them):
        # (ms, callbacks run, ms of GC in it, its costliest kinds of step as (ms in all, step)).
        self.iterations: list[tuple[float, int, float, list[tuple[float, str]]]] = []
        self._in_iteration: list[tuple[float, str]] = []  # (seconds, step) in this one
        self._iteration_gc = 0.0
        # CPU by a task's step, from where the loop resumed it to where it stopped next
        # (our code's innermost frame): (seconds, steps, longest step).
        self.by_resume_point: dict[str, tuple[float, int, float]] = {}

    @staticmethod
    def resume_point(handle: Any) -> str:
        """The innermost frame of our code (or the outermost) a task's step starts from."""
        owner = getattr(getattr(handle, "_callback", None), "__self__", None)
        if not isinstance(owner, asyncio.Task):
            return getattr(getattr(handle, "_callback", None), "__qualname__", "callback")
        inner: Any = owner.get_coro()
        point = "task start"
        while inner is not None:
            frame = getattr(inner, "cr_frame", None) or getattr(inner, "gi_frame", None)
            if frame is None:
                break
            name = frame.f_code.co_filename
            if "sftp_s3_tui" in name or point == "task start":
                point = f"{name.rsplit('/', 2)[-1]}:{frame.f_lineno} {frame.f_code.co_name}"
            inner = getattr(inner, "cr_await", None) or getattr(inner, "gi_yieldfrom", None)
        return point

    def top_resume_points(self, keep: int = 25) -> list[tuple[float, int, float, str]]:
        """(ms in all, steps, longest step ms, where), most CPU first."""
        rows = sorted(self.by_resume_point.items(), key=lambda one: one[1][0], reverse=True)
        return [
            (round(total * 1000), count, round(most * 1000, 1), where)
            for where, (total, count, most) in rows[:keep]
        ]

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_began = time.thread_time()
            return
        spent = time.thread_time() - self._gc_began
        self._iteration_gc += spent
        if spent >= self.threshold / 4:
            self.gc_pauses.append(
                (round(spent * 1000, 1), info["generation"], info.get("collected", 0))
            )

    def install(self) -> None:
        import gc
        from asyncio import events

        gc.callbacks.append(self._on_gc)

        original = events.Handle._run
        slow = self

        def timed(handle: Any) -> None:
            resumed_at = slow.resume_point(handle)
            began = time.thread_time()
            original(handle)
            spent = time.thread_time() - began
            step = f"{resumed_at} -> {slow.resume_point(handle)}"
            slow._in_iteration.append((spent, step))
            total, count, most = slow.by_resume_point.get(step, (0.0, 0, 0.0))
            slow.by_resume_point[step] = (total + spent, count + 1, max(most, spent))
            if spent >= slow.threshold:
                slow.note(spent, handle)

        events.Handle._run = timed  # type: ignore[method-assign,assignment]

        base_loop = asyncio.base_events.BaseEventLoop
        run_once = base_loop._run_once  # type: ignore[attr-defined]

        def timed_once(loop: Any) -> None:
            slow._in_iteration = []
            slow._iteration_gc = 0.0
            began = time.thread_time()
            run_once(loop)
            spent = time.thread_time() - began
            if spent >= slow.threshold * 3 and (
                len(slow.iterations) < slow.keep or spent * 1000 > slow.iterations[-1][0]
            ):
                slow.note_iteration(spent)

        base_loop._run_once = timed_once  # type: ignore[attr-defined]

    def note_iteration(self, spent: float) -> None:
        steps: dict[str, float] = {}
        for seconds, step in self._in_iteration:
            steps[step] = steps.get(step, 0.0) + seconds
        handles = self._in_iteration
        rows = sorted(steps.items(), key=lambda one: one[1], reverse=True)[:6]
        top = [(round(seconds * 1000, 1), step) for step, seconds in rows]
        self.iterations.append(
            (round(spent * 1000, 1), len(handles), round(self._iteration_gc * 1000, 1), top)
        )
        self.iterations.sort(key=lambda one: one[0], reverse=True)
        del self.iterations[self.keep // 4 :]

    def note(self, spent: float, handle: Any) -> None:
        self.slow.append((round(spent * 1000, 1), self.where(handle)))
        self.slow.sort(reverse=True)
        del self.slow[self.keep :]

    @staticmethod
    def where(handle: Any) -> str:
        """A handle's task and where its coroutine stands, or its callback's repr."""
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            frame = getattr(coro, "cr_frame", None)
            where = f"task {owner.get_name()} {getattr(coro, '__qualname__', coro)}"
            inner: Any = coro
            while getattr(inner, "cr_await", None) is not None:  # the innermost await
                inner = inner.cr_await
            for one in {id(coro): coro, id(inner): inner}.values():
                frame = getattr(one, "cr_frame", None) or getattr(one, "gi_frame", None)
                if frame is not None:
                    where += f" at {frame.f_code.co_filename}:{frame.f_lineno}"
        else:
            where = repr(callback)[:200]
        return where


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


async def stream_jobs(queue: Any, endpoint: Any, folder: str, dest: Any) -> AsyncIterator[Any]:
    """File jobs as the server's listing yields them (asyncssh's scandir reads in batches)."""
    from sftp_s3_tui.engine.addresses import key_for
    from sftp_s3_tui.engine.plan.sources import FileJob

    client = await queue.sftp.client(endpoint)
    async for name in client.scandir(folder):
        attrs = name.attrs
        if name.filename in (".", "..") or attrs.type != 1:  # regular files only
            continue
        path = f"{folder.rstrip('/')}/{name.filename}"
        yield FileJob(
            endpoint=endpoint,
            path=path,
            size=attrs.size or 0,
            mtime=int(attrs.mtime or 0),
            bucket=dest.bucket,
            key=key_for(path, dest, relative_to=folder + "/"),
        )


async def work(args: argparse.Namespace) -> dict[str, Any]:
    from sftp_s3_tui.engine.addresses import parse_s3_url
    from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions
    from sftp_s3_tui.engine.transfer.queue import TransferQueue
    from sftp_s3_tui.metrics.sampler import Sampler

    sftp = SftpEndpoint(
        host="127.0.0.1",
        port=args.port,
        username=USER,
        password=PASSWORD,
        known_hosts=args.known_hosts,
        use_agent=False,
    )
    s3 = S3Endpoint(
        endpoint_url=args.s3_url,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        path_style=True,
    )
    options = TransferOptions(memory_budget=args.memory)
    dest = parse_s3_url(f"s3://{BUCKET}/")
    probe = LoopLagProbe()
    if args.keep_finished < 0:
        args.keep_finished = None
    # Results come from the bus as files finish (as a long-running front would show them);
    # the queue keeps the last 100 done ones, and every failed one.
    async with TransferQueue(s3, options, keep_finished=args.keep_finished) as queue:
        sampler = Sampler(queue.bus, interval=1.0, buffers=queue.buffers)
        await sampler.start()
        await queue.sftp.client(sftp)
        import gc

        gc.freeze()  # as the CLI and the TUI do once started (cli/run.py's _settle_heap)
        baseline = rss_bytes()
        probe.start()
        began = time.monotonic()
        if args.listing == "expand":
            jobs = await queue.expand(sftp, "/many/", dest)
            results = await queue.run(jobs)
        elif args.listing == "walk":  # the engine's streaming listing (plan.walk)
            from sftp_s3_tui.engine.plan.sources import walk

            results = await queue.run(walk(queue.sftp, sftp, "/many/", dest))
        else:
            results = await queue.run(stream_jobs(queue, sftp, "/many", dest))
        seconds = time.monotonic() - began
        await probe.stop()
        snapshot = sampler.sample_now()
        await sampler.stop()
        end_rss = rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    statuses = {state.value: n for state, n in queue.outcomes.items() if n}
    failures = [r.message for r in results if r.status.value != "done"][:5]
    files = sum(queue.outcomes.values())
    cpu_seconds = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    return {
        "count": args.count,
        "listing": args.listing,
        "seconds": round(seconds, 2),
        "files_per_second": round(files / seconds, 1),
        "cpu_ms_per_file": round(
            1000 * sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) / files, 2
        ),
        "baseline_rss_mib": round(baseline / MiB, 1),
        "peak_rss_mib": round(peak / MiB, 1),
        "peak_over_baseline_mib": round((peak - baseline) / MiB, 1),
        "end_rss_mib": round(end_rss / MiB, 1),
        "budget_mib": args.memory // MiB,
        "max_loop_stall_ms": round(probe.max_stall * 1000, 1),
        "loop_stalls_over_100ms": probe.stalls_over_100ms,
        "max_loop_busy_ms": round(probe.max_busy * 1000, 1),
        "loop_busy_over_100ms": probe.busy_over_100ms,
        "cpu_seconds": round(cpu_seconds, 1),
        "probe_samples": probe.samples,
        "sampler_transfers_listed": len(snapshot.transfers),
        "statuses": statuses,
        "results_held": len(results),
        "failures": failures,
    }


# -- the real CLI ---------------------------------------------------------------------------------


def cli_worker(probe_out: Path, argv: list[str]) -> int:
    """``sftp-s3-tui copy`` exactly as ``python -m sftp_s3_tui`` runs it, plus the loop probe
    around the command's coroutine (its figures go to ``probe_out``)."""
    from sftp_s3_tui.cli import main as cli
    from sftp_s3_tui.engine.transfer.queue import TransferQueue

    probe = LoopLagProbe()
    add = TransferQueue._add

    def add_and_mark(queue: TransferQueue, job: Any) -> Any:
        if probe.first_file is not None:
            probe.first_file.set()
        return add(queue, job)

    # Start-up lasts until the first file is queued: the SSH logins start before the S3
    # client is created, so the client's creation (~0.3 s of loop CPU, once) no longer falls
    # in the probe's first interval.
    TransferQueue._add = add_and_mark  # type: ignore[method-assign,assignment]
    slow = SlowCallbacks() if os.environ.get("BENCH_SLOW_CALLBACKS") else None
    if slow is not None:
        slow.install()
    run = cli._run

    def run_with_probe(coro: Any) -> int:
        async def probed() -> int:
            probe.first_file = asyncio.Event()
            probe.start()
            await asyncio.sleep(0)  # the probe's first interval covers the start-up too
            try:
                return int(await coro)
            finally:
                await probe.stop()

        return run(probed())

    cli._run = run_with_probe  # main() looks it up when it runs the command
    code = cli.main(argv)
    figures = probe.as_dict()
    if slow is not None:
        figures["slow_callbacks_ms"] = slow.slow
        figures["gc_pauses_ms"] = sorted(slow.gc_pauses, reverse=True)[:20]
        figures["gc_pauses_count"] = len(slow.gc_pauses)
        figures["slow_iterations_ms"] = slow.iterations
        figures["cpu_by_step_ms"] = slow.top_resume_points()
    probe_out.write_text(json.dumps(figures))
    return code


def run_cli(
    source: str, dest: str, *, env: dict[str, str], scratch: Path, extra: list[str]
) -> dict[str, Any]:
    """Run the CLI as its own process; its peak RSS and CPU from its own rusage (wait4),
    the copy's seconds and counts from its ``--json`` summary."""
    probe_out = scratch / f"probe-{time.monotonic_ns()}.json"
    stdout_path = scratch / "cli-stdout.jsonl"
    command = [
        sys.executable,
        "-m",
        "bench.many_files",
        "--cli-worker",
        str(probe_out),
        "--",
        "copy",
        source,
        dest,
        "--json",
        *extra,
    ]
    began = time.monotonic()
    with stdout_path.open("w") as out, (scratch / "cli-stderr.txt").open("w") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        stop = threading.Event()
        timeline: list[tuple[float, float, int]] = []
        watcher = threading.Thread(
            target=_watch_progress, args=(proc.pid, stdout_path, timeline, stop), daemon=True
        )
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        stop.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - began
    if proc.returncode not in (0, 1):
        tail = (scratch / "cli-stderr.txt").read_text()[-3000:]
        raise SystemExit(f"the CLI exited {proc.returncode}:\n{tail}")
    with stdout_path.open() as lines:
        rows = 0
        last = ""
        for line in lines:
            rows += 1
            last = line
    summary = json.loads(last)
    probe = json.loads(probe_out.read_text())
    files = int(summary["files"])
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "exit_code": proc.returncode,
        "files": files,
        "copied": summary["copied"],
        "failed": summary["failed"],
        "json_rows": rows - 1,
        "seconds": summary["seconds"],
        "wall_seconds": round(wall, 2),
        "files_per_second": round(files / summary["seconds"], 1) if summary["seconds"] else 0,
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_file": round(1000 * cpu / max(files, 1), 2),
        "peak_rss_mib": round(usage.ru_maxrss * 1024 / MiB, 1),  # KiB on Linux
        **_steady_rates(timeline),
        **probe,
    }


def _watch_progress(
    pid: int, rows_path: Path, timeline: list[tuple[float, float, int]], stop: threading.Event
) -> None:
    """Every 2 s: (seconds, the CLI's CPU seconds, ``--json`` rows so far), until ``stop``.
    Only the rows written since the last look are read (the file reaches ~20 MB)."""
    import psutil

    began = time.monotonic()
    count = 0
    try:
        process = psutil.Process(pid)
        with rows_path.open("rb") as rows:
            while not stop.wait(2.0):
                times = process.cpu_times()
                count += sum(chunk.count(b"\n") for chunk in iter(lambda: rows.read(1 << 20), b""))
                timeline.append((time.monotonic() - began, times.user + times.system, count))
    except (psutil.Error, OSError):
        return


def _steady_rates(timeline: list[tuple[float, float, int]]) -> dict[str, float]:
    """files/s and CPU ms per file in the first and the last fifth of the files (start-up
    left out: from the first sample with files done): does the per-file cost grow?"""
    moving = [s for s in timeline if s[2] > 0]
    if len(moving) < 10:
        return {}
    fifth = len(moving) // 5
    out: dict[str, float] = {}
    for name, (a, b) in {
        "first": (moving[0], moving[fifth]),
        "last": (moving[-fifth - 1], moving[-1]),
    }.items():
        files = b[2] - a[2]
        if files <= 0:
            return {}
        out[f"files_per_second_{name}_fifth"] = round(files / (b[0] - a[0]), 1)
        out[f"cpu_ms_per_file_{name}_fifth"] = round(1000 * (b[1] - a[1]) / files, 2)
    return out


# -- the orchestrator ----------------------------------------------------------------------------


def check_objects(s3_url: str, count: int, sample: int = 50) -> tuple[int, int]:
    """(objects in the bucket, sampled objects whose bytes match their source)."""
    import boto3

    from tests.support.synthetic_sftp import SyntheticTree

    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listed = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        listed += len(page.get("Contents", []))
    tree = SyntheticTree(count)
    matching = 0
    for index in random.Random(count).sample(range(count), min(sample, count)):
        body = client.get_object(Bucket=BUCKET, Key=tree.key(index))["Body"].read()
        matching += body == tree.content(index)
    return listed, matching


def run_count(count: int, args: argparse.Namespace) -> dict[str, Any]:
    import boto3

    from sftp_s3_tui.demo import EmbeddedS3Server

    me = [sys.executable, "-m", "bench.many_files"]
    server = subprocess.Popen(
        [*me, "--serve-sftp", str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        with EmbeddedS3Server() as s3, tempfile.TemporaryDirectory() as scratch:
            known_hosts = Path(scratch) / "known_hosts"
            known_hosts.write_text(ready["known_hosts"] + "\n")
            s3_url = s3.endpoint().endpoint_url
            assert s3_url is not None
            boto3.client(
                "s3",
                endpoint_url=s3_url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).create_bucket(Bucket=BUCKET)
            if args.front == "cli":
                boto3.client(
                    "s3",
                    endpoint_url=s3_url,
                    region_name="us-east-1",
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                ).create_bucket(Bucket="baseline")
            if args.front == "cli":
                return cli_count(count, args, ready["port"], known_hosts, s3_url, Path(scratch))
            worker = subprocess.run(
                [
                    *me,
                    "--worker",
                    "--count",
                    str(count),
                    "--port",
                    str(ready["port"]),
                    "--known-hosts",
                    str(known_hosts),
                    "--s3-url",
                    s3_url,
                    "--memory",
                    str(args.memory),
                    "--listing",
                    args.listing,
                    "--keep-finished",
                    str(args.keep_finished),
                    *(["--profile", str(args.profile)] if args.profile else []),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "XDG_STATE_HOME": scratch},
            )
            if worker.returncode != 0:
                raise SystemExit(f"worker for {count} files failed:\n{worker.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(worker.stdout.strip().splitlines()[-1])
            result["front"] = "engine"
            result["objects"], result["sample_matching"] = check_objects(s3_url, count)
            return result
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def cli_count(
    count: int, args: argparse.Namespace, port: int, known_hosts: Path, s3_url: str, scratch: Path
) -> dict[str, Any]:
    """The real ``sftp-s3-tui copy`` of the whole folder; its baseline is the same command
    copying one file of it (same flags, same servers), run first."""
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(scratch),
        "SFTP_PASSWORD": PASSWORD,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    env.pop("AWS_PROFILE", None)
    flags = [
        "--endpoint-url",
        s3_url,
        "--path-style",
        "--known-hosts",
        str(known_hosts),
        "--no-agent",
        "--memory",
        str(args.memory),
    ]
    base = f"sftp://{USER}@127.0.0.1:{port}/many"
    one = run_cli(
        f"{base}/f0000000.csv", "s3://baseline/one.csv", env=env, scratch=scratch, extra=flags
    )
    result = run_cli(f"{base}/", f"s3://{BUCKET}/", env=env, scratch=scratch, extra=flags)
    result.update(
        front="cli",
        count=count,
        listing="cli",
        budget_mib=args.memory // MiB,
        baseline_rss_mib=one["peak_rss_mib"],
        peak_over_baseline_mib=round(result["peak_rss_mib"] - one["peak_rss_mib"], 1),
    )
    result["objects"], result["sample_matching"] = check_objects(s3_url, count)
    return result


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.many_files", description=__doc__)
    parser.add_argument("--counts", default="2000,10000,100000")
    parser.add_argument("--memory", type=parse_size, default=512 * MiB, help="memory budget")
    parser.add_argument(
        "--listing",
        choices=("stream", "walk", "expand"),
        default="stream",
        help="stream: asyncssh scandir batches into the queue (measured); walk: the engine's "
        "plan.walk; expand: the whole list first",
    )
    parser.add_argument(
        "--front",
        choices=("engine", "cli"),
        default="engine",
        help="engine: a worker drives TransferQueue directly; cli: the real `sftp-s3-tui copy` "
        "as its own process (peak RSS and CPU from its rusage), baseline = it copying one file",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--keep-finished",
        type=int,
        default=100,
        help="done transfers the queue keeps (default 100; -1: all, as join() callers get)",
    )
    parser.add_argument("--serve-sftp", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cli-worker", type=Path, help=argparse.SUPPRESS)  # probe output
    parser.add_argument("cli_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--known-hosts", help=argparse.SUPPRESS)
    parser.add_argument("--s3-url", help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, help=argparse.SUPPRESS)  # worker: cProfile
    args = parser.parse_args(argv)
    if args.cli_worker is not None:
        raise SystemExit(cli_worker(args.cli_worker, [a for a in args.cli_args if a != "--"]))
    if args.worker and args.profile:
        import cProfile

        cProfile.runctx(
            "print(json.dumps(asyncio.run(work(args))))", globals(), locals(), str(args.profile)
        )
        return
    if args.serve_sftp is not None:
        asyncio.run(serve_sftp(args.serve_sftp))
        return
    if args.worker:
        print(json.dumps(asyncio.run(work(args))), flush=True)
        return
    results = []
    for count in (int(c) for c in args.counts.split(",")):
        result = run_count(count, args)
        results.append(result)
        print(json.dumps(result), flush=True)
    header = (
        "| files | listing | files/s | baseline RSS | peak RSS | peak − baseline | budget "
        "| max loop stall (busy) | stalls > 100 ms (busy) | objects | sample ok |"
    )
    print("\n" + header)
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['count']:,} | {r['listing']} | {r['files_per_second']} "
            f"| {r['baseline_rss_mib']} MiB | {r['peak_rss_mib']} MiB "
            f"| {r['peak_over_baseline_mib']} MiB | {r['budget_mib']} MiB "
            f"| {r['max_loop_stall_ms']} ms ({r['max_loop_busy_ms']} ms) "
            f"| {r['loop_stalls_over_100ms']} ({r['loop_busy_over_100ms']}) "
            f"| {r['objects']:,} | {r['sample_matching']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
