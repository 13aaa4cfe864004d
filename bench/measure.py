"""Run one client as its own process and measure it from outside.

Peak RSS is the sum over the process tree, polled (``ru_maxrss`` would count the forked copy
of this harness before ``exec``); CPU seconds (user + sys) come from the
child's ``wait4`` rusage, which includes its waited-for descendants (``sftp`` → ``ssh``); disk
write bytes are the kernel's task I/O accounting, which the kernel adds to *our* counters when
we reap the child, so reading ``/proc/self/io`` around the reap gives the whole tree's bytes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.02


@dataclass
class Measurement:
    """What one client process did, measured from outside."""

    seconds: float
    peak_rss_bytes: int
    cpu_seconds: float
    write_bytes: int
    returncode: int
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")


def _self_io_write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def _drain(stream: object, sink: list[bytes]) -> None:
    read = stream.read  # type: ignore[attr-defined]
    while chunk := read(65536):
        sink.append(chunk)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_seconds: float = 900.0,
) -> Measurement:
    """Start ``argv``, poll its tree's RSS until it exits, then reap it and read its usage.

    Output goes through pipes (which count no disk writes) drained by two threads.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    watched = psutil.Process(proc.pid)
    peak = 0
    deadline = started + timeout_seconds
    try:
        while True:
            # WNOWAIT: notice the exit without reaping, so the usage is still ours to collect.
            status = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if status is not None:
                break
            peak = max(peak, _tree_rss(watched))
            if time.perf_counter() > deadline:
                proc.kill()
            time.sleep(POLL_SECONDS)
    except BaseException:
        proc.kill()  # the harness is stopping (Ctrl-C, SIGTERM): no client outlives it
        proc.wait()
        raise
    seconds = time.perf_counter() - started
    before = _self_io_write_bytes()
    _, wait_status, usage = os.wait4(proc.pid, 0)
    write_bytes = _self_io_write_bytes() - before
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    for reader in readers:
        reader.join(timeout=10)
    return Measurement(
        seconds=seconds,
        peak_rss_bytes=peak,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        write_bytes=write_bytes,
        returncode=proc.returncode,
        stdout=b"".join(out).decode(errors="replace"),
        stderr=b"".join(err).decode(errors="replace"),
    )
