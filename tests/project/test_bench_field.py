"""The field benchmark's verdicts: from measured runs to the targets' MET / NOT MET.

No benchmark runs here (and no timing): the runs are given, as ``python -m bench.field``
records them, and the test checks what its report concludes from them.
"""

from __future__ import annotations

from typing import Any

from bench import field

MiB = 1 << 20
SIZE = 256 * MiB


def record(
    name: str,
    role: str,
    rtt_ms: float,
    sink: str,
    megabytes_per_second: float,
    *,
    round_number: int = 1,
    case: str = "large",
    cpu_seconds: float = 1.0,
    peak_rss_mib: int = 150,
    ok: bool = True,
) -> dict[str, Any]:
    amount = SIZE if case == "large" else 2000
    rate = megabytes_per_second * 1e6 if case == "large" else megabytes_per_second
    return {
        "name": name,
        "role": role,
        "rtt_ms": rtt_ms,
        "sink": sink,
        "case": case,
        "cell": f"{rtt_ms:g} ms · {sink or '(read only)'}",
        "unit": "bytes" if case == "large" else "files",
        "amount": amount,
        "bytes_moved": SIZE if case == "large" else 2000 * 64 * 1024,
        "round": round_number,
        "ok": ok,
        "problem": "" if ok else "exit 1: boom",
        "notes": "",
        "seconds": amount / rate,
        "peak_rss_bytes": peak_rss_mib * MiB,
        "cpu_seconds": cpu_seconds,
        "write_bytes": 0,
        "stderr_tail": "",
    }


CONFIG = {"small_count": 2000, "small_size": 64 * 1024, "memory_budget": 512 * MiB}
CONFIG["rss_overhead"] = 128 * MiB


def one_round(n: int) -> list[dict[str, Any]]:
    """A round in which the product wins at 50 ms and on small files, and loses at 100 ms."""
    runs = [
        record("raw asyncssh, 64 MiB window, 128 × 255 KiB", "raw", 0, "", 300, round_number=n),
        record("raw asyncssh, 16 MiB window × 4 connections", "raw", 0, "", 250, round_number=n),
        record("s5cmd cp (defaults)", "s5cmd", 0, "moto", 120, round_number=n),
        record("s5cmd cp (defaults)", "s5cmd", 0, "seaweedfs", 150, round_number=n),
        record(
            "sftp-s3-tui copy, one 64 KiB file (baseline RSS)",
            "baseline",
            0,
            "moto",
            1,
            peak_rss_mib=90,
            round_number=n,
        ),
    ]
    for sink, product, default, streams in (("moto", 100, 70, 80), ("seaweedfs", 140, 90, 95)):
        runs += [
            record(field.PRODUCT, "product", 0, sink, product, cpu_seconds=1.0, round_number=n),
            record(
                field.RCLONE_DEFAULT, "rclone", 0, sink, default, cpu_seconds=1.5, round_number=n
            ),
            record(
                "rclone copyto --multi-thread-streams 8", "rclone", 0, sink, streams, round_number=n
            ),
        ]
    for rtt, product, default, streams, raw in ((50, 60, 30, 40, 70), (100, 30, 20, 25, 60)):
        runs += [
            record(
                "raw asyncssh, 64 MiB window, 128 × 255 KiB", "raw", rtt, "", raw, round_number=n
            ),
            record(field.PRODUCT, "product", rtt, "seaweedfs", product, round_number=n),
            record(field.RCLONE_DEFAULT, "rclone", rtt, "seaweedfs", default, round_number=n),
            record(
                "rclone copyto --multi-thread-streams 8",
                "rclone",
                rtt,
                "seaweedfs",
                streams,
                round_number=n,
            ),
        ]
    small: dict[str, Any] = {"case": "small", "round_number": n}
    runs += [
        record(field.SMALL_PRODUCT, "product", 50, "seaweedfs", 150, **small),
        record("rclone copy --transfers 32", "rclone", 50, "seaweedfs", 80, **small),
        record("rclone copy --transfers 64", "rclone", 50, "seaweedfs", 100, **small),
    ]
    return runs


def verdicts(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in field.targets(records, CONFIG)}


def test_each_target_gets_its_figure_and_verdict() -> None:
    found = verdicts(one_round(1) + one_round(2))

    far = found["50 ms, seaweedfs: product ÷ rclone best (MB/s)"]
    assert far["value"] == 1.5 and far["met"] is True  # 60 against rclone's best, 40
    assert "multi-thread-streams 8" in far["detail"]
    ceiling = found["50 ms, seaweedfs: product ÷ min(raw SFTP ceiling, sink limit) (MB/s)"]
    assert round(ceiling["value"], 3) == round(60 / 70, 3) and ceiling["met"] is True
    assert found["100 ms, seaweedfs: product ÷ rclone best (MB/s)"]["met"] is False  # 30 / 25
    assert (
        found["100 ms, seaweedfs: product ÷ min(raw SFTP ceiling, sink limit) (MB/s)"]["met"]
        is False
    )

    loopback = found["0 ms, moto: product ÷ rclone defaults (MB/s)"]
    assert round(loopback["value"], 3) == round(100 / 70, 3) and loopback["met"] is True
    cpu = found["0 ms, moto: product CPU s/GiB ÷ rclone defaults' CPU s/GiB"]
    assert round(cpu["value"], 3) == round(1.0 / 1.5, 3) and cpu["met"] is True
    s5cmd = found["0 ms, seaweedfs: product ÷ s5cmd best (MB/s)"]
    assert round(s5cmd["value"], 3) == round(140 / 150, 3) and s5cmd["met"] is True
    # On loopback the sink (s5cmd, 120 MB/s into moto) is lower than the raw SFTP read.
    limited = found["0 ms, moto: product ÷ min(raw SFTP ceiling, sink limit) (MB/s)"]
    assert "s5cmd" in limited["detail"] and limited["met"] is None  # no target at 0 ms

    small = found["2000 × 64 KiB at 50 ms, seaweedfs: product ÷ rclone best --transfers (files/s)"]
    assert small["value"] == 1.5 and small["met"] is True and "transfers 64" in small["detail"]

    memory = found["100 ms: product peak RSS (max over rounds and sinks)"]
    assert memory["met"] is True and memory["target"] == f"≤ {90 + 512 + 128} MiB"


def test_ratios_pair_runs_of_the_same_round() -> None:
    """A slow round for everyone does not make the product look slow against a fast round."""
    first = one_round(1)
    second = [{**r, "seconds": r["seconds"] * 2} if r["rtt_ms"] == 50 else r for r in one_round(2)]
    far = verdicts(first + second)["50 ms, seaweedfs: product ÷ rclone best (MB/s)"]
    assert far["detail"].startswith("per round 1.50, 1.50")


def test_a_failed_client_is_reported_not_counted() -> None:
    runs = one_round(1)
    runs = [
        {**r, "ok": False, "problem": "exit 1: boom"}
        if r["role"] == "product" and r["rtt_ms"] == 100
        else r
        for r in runs
    ]
    found = verdicts(runs)
    assert found["100 ms, seaweedfs: product ÷ rclone best (MB/s)"]["value"] is None
    rows = field.summarize(runs)
    text = field.markdown(
        {
            "config": {
                **CONFIG,
                "argv": [],
                "wall_seconds": 1.0,
                "sizes": {"0": SIZE},
                "rounds": 1,
                "rounds_at": {},
            },
            "machine": {"cpu": "test"},
            "summary": rows,
            "targets": field.targets(runs, CONFIG),
        }
    )
    assert "| 100 ms · seaweedfs | sftp-s3-tui copy | failed |" in text
    assert "exit 1: boom" in text
    assert "| 100 ms, seaweedfs: product ÷ rclone best (MB/s) | – | ≥ 1.50 | NO DATA |" in text
