"""Deterministic sample content: pattern and CSV blocks, and the sample tree the demo serves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sftp_s3_tui.engine.config import MiB

from .settings import _TREE_READY, SAMPLE_MTIME

_BLOCK = 1 * MiB


def pattern_blocks(size: int, seed: int = 0) -> Iterable[bytes]:
    """Yield ``size`` deterministic pseudo-random bytes in blocks of at most 1 MiB.

    One random 1 MiB block is reused, but every 4 KiB carries its absolute offset, so no two
    blocks are equal and a reordered or duplicated part changes the bytes.
    """
    base = bytearray(random.Random(seed).randbytes(_BLOCK))
    offset = 0
    while offset < size:
        block = bytearray(base)
        for pos in range(0, _BLOCK, 4096):
            block[pos : pos + 8] = (offset + pos).to_bytes(8, "big")
        n = min(_BLOCK, size - offset)
        yield bytes(block[:n]) if n < _BLOCK else bytes(block)
        offset += n


def pattern_bytes(size: int, seed: int = 0) -> bytes:
    """Return :func:`pattern_blocks` as one bytes object (for small sizes)."""
    return b"".join(pattern_blocks(size, seed))


def csv_blocks(size: int, seed: int = 0) -> Iterable[bytes]:
    """Yield ``size`` bytes of CSV-looking text (a header, then rows with unique ids)."""
    rng = random.Random(seed)
    names = ["Ada", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Jürgen"]
    cities = ["Berlin", "Lisbon", "Osaka", "Lagos", "Lima", "Oslo", "Montréal", "Pune"]
    header = b"id,customer,city,amount_eur,ordered_at\n"
    rows = []
    for i in range(10_000):
        rows.append(
            f"BBBBBBBB{i:05d},{rng.choice(names)} {rng.randrange(1000):03d},{rng.choice(cities)},"
            f"{rng.randrange(100, 999_999) / 100:.2f},2026-11-{1 + i % 28:02d}T"
            f"{i % 24:02d}:{i % 60:02d}:00Z\n"
        )
    template = "".join(rows)
    written = 0
    block_no = 0
    pending = header
    while written < size:
        pending += template.replace("BBBBBBBB", f"{block_no:08d}").encode()
        block_no += 1
        chunk = pending[: size - written]
        pending = b""
        written += len(chunk)
        yield chunk


def write_blocks(path: Path, blocks: Iterable[bytes], *, mtime: float | None = None) -> None:
    """Write ``blocks`` to ``path`` (creating parents) and optionally set its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for block in blocks:
            f.write(block)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


# --------------------------------------------------------------------------------------------
# Sample tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleFile:
    """One generated sample file: path relative to the tree root, size and content kind."""

    path: str
    size: int
    kind: str  # "csv", "binary", "json" or "text"
    seed: int
    large_only: bool = False


def sample_files(*, large: bool = True) -> list[SampleFile]:
    """The sample tree's files (the big ones only when ``large``)."""
    files = [
        SampleFile("exports/customers_2026.csv", 300 * MiB, "csv", 1, large_only=True),
        SampleFile("exports/orders 2026-11.csv", 48 * MiB if large else 3 * MiB, "csv", 2),
        SampleFile("exports/ünïcode name.parquet", 3 * MiB + 123, "binary", 3),
        SampleFile("exports/README.txt", 2 * 1024, "text", 4),
        SampleFile("exports/empty.csv", 0, "csv", 5),
        SampleFile("exports/logs/2026-11/backup.tar.gz", 200 * MiB, "binary", 6, large_only=True),
        SampleFile("partners/globex/in/shipments.csv", 12 * MiB + 7, "csv", 7),
    ]
    for day in range(1, 21):
        size = 4 * 1024 + day * 37 * 1024
        files.append(
            SampleFile(f"exports/logs/2026-11/app-2026-11-{day:02d}.log", size, "text", 100 + day)
        )
    for i in range(200):
        size = 1024 + (i * 7919) % (16 * 1024)
        files.append(SampleFile(f"partners/acme/in/invoice_{i:04d}.json", size, "json", 1000 + i))
    return [f for f in files if large or not f.large_only]


_WORDS = ("lorem", "ipsum", "transfer", "part", "upload", "checksum", "partner", "export")


def _text_blocks(size: int, seed: int) -> Iterable[bytes]:
    """ASCII log-like lines, exactly ``size`` bytes."""
    rng = random.Random(seed)
    line = " ".join(rng.choice(_WORDS) for _ in range(12)) + "\n"
    data = (f"# sample {seed}\n" + line * (size // len(line) + 2)).encode()
    yield data[:size]


def _json_blocks(size: int, seed: int) -> Iterable[bytes]:
    """One valid JSON document of exactly ``size`` bytes (padded in a "notes" field)."""
    rng = random.Random(seed)
    head = (
        f'{{"invoice": "INV-{seed:06d}", "partner": "acme", '
        f'"amount_eur": {rng.randrange(100, 999_999) / 100:.2f}, "notes": "'
    )
    tail = '"}\n'
    pad = size - len(head) - len(tail)
    if pad < 0:
        raise ValueError(f"a JSON sample needs at least {len(head) + len(tail)} bytes")
    notes = (" ".join(rng.choice(_WORDS) for _ in range(pad // 5 + 1)))[:pad]
    yield (head + notes + tail).encode()


def make_sample_tree(root: Path, *, large: bool = True) -> list[Path]:
    """Create the deterministic sample tree under ``root`` and return the files' paths.

    Files that already exist with the right size are kept, so a persistent root is cheap to
    reuse. Every file and folder gets the same fixed mtime (:data:`SAMPLE_MTIME`).
    """
    root = Path(root)
    written: list[Path] = []
    for spec in sample_files(large=large):
        path = root / spec.path
        written.append(path)
        if path.is_file() and path.stat().st_size == spec.size:
            os.utime(path, (SAMPLE_MTIME, SAMPLE_MTIME))
            continue
        if spec.kind == "csv":
            blocks = csv_blocks(spec.size, spec.seed)
        elif spec.kind == "binary":
            blocks = pattern_blocks(spec.size, spec.seed)
        elif spec.kind == "json":
            blocks = _json_blocks(spec.size, spec.seed)
        else:
            blocks = _text_blocks(spec.size, spec.seed)
        write_blocks(path, blocks, mtime=SAMPLE_MTIME)
    (root / "partners/acme/out").mkdir(parents=True, exist_ok=True)
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.utime(dirpath, (SAMPLE_MTIME, SAMPLE_MTIME))
    return written


async def make_sample_tree_in_subprocess(root: Path, *, large: bool = True) -> None:
    """:func:`make_sample_tree` in a detached grandchild process.

    Linux adds a child's I/O counters to its parent's when the parent reaps it, so a plain child
    would put the tree's hundreds of MB into *our* write_bytes. ``sh -c '… &'`` exits at once and
    the grandchild, reaped by init, is awaited through the pipe it holds open until it ends.
    Cancelled (the user quit while the demo started), the grandchild is killed and its pipe
    read to its end: no writer goes on filling a folder being removed, and no subprocess
    transport is left for the collector to close on a closed loop ("Event loop is closed").
    """
    command = [sys.executable, "-m", "sftp_s3_tui.demo", "make-tree", str(root)]
    if not large:
        command.append("--small")
    process = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        '"$@" & echo "pid $!"',
        "sh",
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    first = b""
    try:
        first = await process.stdout.readline()  # "pid N": the grandchild, to stop on a cancel
        output = first + await process.stdout.read()  # EOF when the grandchild exits
    except BaseException:
        if not first:  # cancelled before the pid came (a quit on a loaded machine): read it
            with contextlib.suppress(Exception):
                first = await asyncio.wait_for(process.stdout.readline(), 10)
        with contextlib.suppress(ValueError, IndexError, ProcessLookupError):
            os.kill(int(first.split()[-1]), signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.stdout.read(), 10)  # the pipe's EOF
            await asyncio.wait_for(process.wait(), 10)
        raise
    await process.wait()
    if _TREE_READY not in output:
        raise RuntimeError(f"writing the sample tree failed: {output.decode(errors='replace')}")
