"""One-off measurements beside the rounds: the sha256 CopyObject, the knob sweep, a profile."""

from __future__ import annotations

import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .measure import run_measured
from .report import size_label
from .scenarios import PART_SIZE, PARTS_IN_FLIGHT, Setup, base_env, product_argv
from .servers import BUCKET

REPO = Path(__file__).resolve().parent.parent


def time_copy_object(setup: Setup, size: int, repeats: int = 3) -> dict[str, Any]:
    """Upload one object as the raw S3 client does, then time CopyObject onto itself."""
    key = "copy-probe"
    upload = run_measured(
        [
            sys.executable,
            "-m",
            "bench.clients.raw_s3",
            "--endpoint-url",
            setup.moto.url,
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--file",
            str(setup.data.large_local[size]),
            "--part-size",
            str(PART_SIZE),
            "--concurrency",
            str(PARTS_IN_FLIGHT),
            "--checksum",
        ],
        env=base_env(setup),
        cwd=REPO,
    )
    client = setup.moto.client()
    seconds = []
    for n in range(repeats):
        began = time.perf_counter()
        client.copy_object(
            Bucket=BUCKET,
            Key=key,
            CopySource={"Bucket": BUCKET, "Key": key},
            Metadata={"sha256": f"{n:064x}"},
            MetadataDirective="REPLACE",
            ChecksumAlgorithm="CRC64NVME",
        )
        seconds.append(time.perf_counter() - began)
    setup.moto.empty_bucket()
    result = {
        "label": size_label(size),
        "upload_seconds": upload.seconds,
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
    }
    print(f"  CopyObject onto itself, {size_label(size)}: {result['median_seconds']:.2f}s")
    return result


def profile_product(setup: Setup, size: int, label: str, out: Path) -> dict[str, Any]:
    """cProfile of one ``copy --no-resume`` of the large file; the top entries as text."""
    out.mkdir(parents=True, exist_ok=True)
    profile_path = out / "out" / "product.prof"
    profile_path.parent.mkdir(exist_ok=True)
    argv = product_argv(
        setup, setup.data.large[size], f"s3://{BUCKET}/profile/{label}", "--no-resume"
    )
    argv = [argv[0], "-m", "cProfile", "-o", str(profile_path), *argv[1:]]
    measurement = run_measured(argv, env=base_env(setup), cwd=REPO)
    setup.moto.empty_bucket()
    text = io.StringIO()
    stats = pstats.Stats(str(profile_path), stream=text)
    stats.sort_stats("tottime").print_stats(25)
    own = _trim(text.getvalue())
    text = io.StringIO()
    stats = pstats.Stats(str(profile_path), stream=text)
    stats.sort_stats("cumulative").print_stats(30)
    cumulative = _trim(text.getvalue())
    print(f"  profiled copy: {size / measurement.seconds / 1e6:.1f} MB/s under cProfile")
    return {
        "seconds": measurement.seconds,
        "cpu_seconds": measurement.cpu_seconds,
        "top": "by own time:\n" + own + "\nby cumulative time:\n" + cumulative,
    }


def _trim(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(str(REPO) + "/", "") for line in lines[start:] if line.strip())


SWEEP: list[tuple[str, list[str]]] = [
    ("defaults (8 MiB parts, 8 in flight, 2 reads/file, AES-GCM)", []),
    ("parts_in_flight 16", ["--parts-in-flight", "16"]),
    ("parts_in_flight 4", ["--parts-in-flight", "4"]),
    ("part_size 16 MiB", ["--part-size", str(16 << 20)]),
    ("part_size 5 MiB", ["--part-size", str(5 << 20)]),
    ("READS_PER_FILE 1", ["--reads-per-file", "1"]),
    ("READS_PER_FILE 4", ["--reads-per-file", "4"]),
    ("sftp_block_size 64 KiB", ["--sftp-block-size", str(64 << 10)]),
    ("sftp_requests 16", ["--sftp-requests", "16"]),
    ("sftp_requests 256", ["--sftp-requests", "256"]),
    ("cipher chacha20-poly1305 (asyncssh's first)", ["--cipher", "chacha20-poly1305@openssh.com"]),
    ("what-if: no sha256 CopyObject, no HEAD", ["--no-sha256-copy"]),
]


_OLD_SMALL = ["--files-in-flight", "16", "--s3-concurrency", "16", "--sftp-concurrency", "8"]
SMALL_SWEEP: list[tuple[str, list[str]]] = [
    ("small files: 16 files, 16 uploads, 8 reads (the old defaults)", _OLD_SMALL),
    (
        "small files: 32 files, 32 uploads",
        ["--files-in-flight", "32", "--s3-concurrency", "32", "--sftp-concurrency", "8"],
    ),
    ("small files: 32 files, 32 uploads, 16 reads (the defaults)", []),
    (
        "small files: 64 files, 32 uploads",
        ["--files-in-flight", "64", "--s3-concurrency", "32", "--sftp-concurrency", "8"],
    ),
]


def sweep(
    setup: Setup, size: int, label: str, repeats: int = 2, which: str = "all"
) -> list[dict[str, Any]]:
    """Each knob changed alone from the defaults, ``repeats`` runs each, interleaved.

    ``which`` is ``large`` (one large file), ``small`` (the small-files folder) or ``all``.
    """
    info = setup.info
    base = [
        sys.executable,
        "-m",
        "bench.clients.engine_run",
        "--host",
        info.host,
        "--port",
        str(info.port),
        "--user",
        info.username,
        "--identity",
        str(info.identity_file),
        "--known-hosts",
        str(info.known_hosts),
        "--endpoint-url",
        setup.moto.url,
    ]
    cases: list[tuple[str, list[str], int, str]] = []
    if which in ("large", "all"):
        large = ["--path", setup.data.large[size], "--dest", f"s3://{BUCKET}/sweep/{label}"]
        cases += [(name, [*large, *extra], size, "MB/s") for name, extra in SWEEP]
    if which in ("small", "all") and setup.data.small_count:
        small = ["--path", setup.data.small_folder + "/", "--dest", f"s3://{BUCKET}/sweep-small/"]
        count = setup.data.small_count
        cases += [(name, [*small, *extra], count, "files/s") for name, extra in SMALL_SWEEP]
    rates: dict[str, list[float]] = {name: [] for name, *_ in cases}
    for _ in range(repeats):
        for name, argv, amount, unit in cases:
            measurement = run_measured([*base, *argv], env=base_env(setup), cwd=REPO)
            setup.moto.empty_bucket()
            if measurement.returncode == 0:
                rate = amount / measurement.seconds
                rates[name].append(rate)
                shown = rate / 1e6 if unit == "MB/s" else rate
                print(f"  sweep {name:<58} {shown:6.1f} {unit}", flush=True)
            else:
                print(f"  sweep {name}: failed {measurement.stderr[-300:]}", flush=True)
    units = {name: unit for name, _, _, unit in cases}
    return [
        {
            "name": name,
            "unit": units[name],
            "rates": r,
            "median": statistics.median(r) if r else 0.0,
        }
        for name, r in rates.items()
    ]
