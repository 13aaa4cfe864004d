"""``python -m bench``: start the servers, make the data, run every client, write the results."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.units import format_size, parse_size

from . import extras, report
from .measure import run_measured
from .scenarios import Scenario, Setup, large_file_scenarios, product_only, small_file_scenarios
from .servers import create_data, precompile, running_servers

HERE = Path(__file__).resolve().parent
FAMILIES = ("product", "raw-sftp", "openssh-sftp", "raw-s3", "rclone", "spool", "put-loop")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="large file")
    parser.add_argument(
        "--second-size",
        type=parse_size,
        default=parse_size("256MiB"),
        help="the smaller file the product's peak RSS is compared with",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=2000, help="small files")
    parser.add_argument("--small-size", type=parse_size, default=parse_size("64KiB"))
    parser.add_argument(
        "--md5-subset",
        type=int,
        default=200,
        help="files for rclone's default (remote md5sum) small-file run, which is slow",
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=FAMILIES, help="leave a client out"
    )
    parser.add_argument("--no-small", action="store_true", help="skip the small-files case")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--no-extras", action="store_true", help="skip the CopyObject timing")
    parser.add_argument(
        "--tune-only",
        nargs="?",
        const="all",
        choices=("all", "large", "small"),
        help="only sweep the engine's knobs (large file, small files or both); "
        "merges into tuning.json",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only render RESULTS.md again from results.json (and tuning.json)",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md/results.json go")
    return parser.parse_args(argv)


def check(setup: Setup, scenario: Scenario) -> str:
    """'' when the client's output landed (right size / count); else what is wrong."""
    client = setup.moto.client()
    if scenario.key is not None:
        head = client.head_object(Bucket="bench", Key=scenario.key)
        if head["ContentLength"] != scenario.amount:
            return f"object has {head['ContentLength']} bytes, expected {scenario.amount}"
    if scenario.prefix is not None:
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket="bench", Prefix=scenario.prefix
        ):
            count += len(page.get("Contents", []))
        if count != scenario.amount:
            return f"{count} objects under {scenario.prefix}, expected {scenario.amount}"
    return ""


def run_one(setup: Setup, scenario: Scenario, round_number: int) -> dict[str, object]:
    measurement = run_measured(scenario.argv, env=scenario.env, cwd=HERE.parent)
    problem = ""
    if measurement.returncode != 0:
        problem = f"exit {measurement.returncode}: {measurement.stderr.strip()[-500:]}"
    elif scenario.writes_s3:
        try:
            problem = check(setup, scenario)
        except Exception as exc:
            problem = f"check failed: {exc!r}"
    if scenario.writes_s3:
        setup.moto.empty_bucket()
    rate = scenario.amount / measurement.seconds
    shown = f"{rate / 1e6:7.1f} MB/s" if scenario.unit == "bytes" else f"{rate:7.1f} files/s"
    print(
        f"  [{round_number}] {scenario.group:>7} {scenario.name:<48} {shown}  "
        f"rss {format_size(measurement.peak_rss_bytes):>10}  cpu {measurement.cpu_seconds:6.2f}s"
        f"  writes {format_size(measurement.write_bytes):>9}"
        + (f"  FAILED {problem}" if problem else ""),
        flush=True,
    )
    record = {
        "name": scenario.name,
        "family": scenario.family,
        "group": scenario.group,
        "unit": scenario.unit,
        "amount": scenario.amount,
        "round": round_number,
        "ok": not problem,
        "problem": problem,
        "notes": scenario.notes,
        "bytes_moved": scenario.bytes_moved or scenario.amount,
        **{k: v for k, v in asdict(measurement).items() if k not in ("stdout", "stderr")},
    }
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped and the temp folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.report_only:
        write_markdown(args.out)
        return 0
    if args.tune_only:
        return tune_only(args)
    began = time.monotonic()
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    base = Path(tempfile.mkdtemp(prefix="sftp-s3-bench-"))
    base.chmod(0o755)
    label = report.size_label(args.size)
    second = report.size_label(args.second_size)
    records: list[dict[str, object]] = []
    results: dict[str, Any] = {}
    precompile(HERE.parent)
    print(f"bytecode compiled after {time.monotonic() - began:.0f}s", flush=True)
    try:
        with running_servers(base) as (info, moto):
            print(f"servers up: sshd {info.host}:{info.port}, moto {moto.url}", flush=True)
            data = create_data(
                info,
                [args.size, args.second_size],
                0 if args.no_small else args.small_count,
                args.small_size,
                0 if args.no_small else args.md5_subset,
            )
            scratch = base / "scratch"
            scratch.mkdir()
            setup = Setup(info, moto, data, scratch)
            scenarios = large_file_scenarios(setup, args.size, label)
            scenarios += product_only(setup, args.second_size, second)
            if not args.no_small:
                scenarios += small_file_scenarios(setup)
            scenarios = [s for s in scenarios if s.family not in args.skip]
            print(f"data ready after {time.monotonic() - began:.0f}s", flush=True)
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}/{args.rounds}", flush=True)
                shift = (round_number - 1) * 3 % max(len(scenarios), 1)
                for scenario in scenarios[shift:] + scenarios[:shift]:
                    records.append(run_one(setup, scenario, round_number))
            if not args.no_extras:
                results["copy_object"] = extras.time_copy_object(setup, args.size)
            if not args.no_profile and "product" not in args.skip:
                results["profile"] = extras.profile_product(setup, args.size, label, args.out)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results["runs"] = records
    results["summary"] = report.summarize(records)
    results["ratios"] = report.ratios(results["summary"], records, label, second)  # type: ignore[arg-type]
    results["machine"] = report.machine()
    results["machine"]["load average (1, 5, 15 min) at the start"] = load_at_start
    results["config"] = {
        "size": args.size,
        "second_size": args.second_size,
        "rounds": args.rounds,
        "small_count": args.small_count,
        "small_size": args.small_size,
        "md5_subset": args.md5_subset,
        "skip": args.skip,
        "argv": sys.argv[1:],
        "wall_seconds": round(time.monotonic() - began, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(args.out)
    print()
    print(report.ratios_text(results["ratios"]))  # type: ignore[arg-type]
    print(f"\nwrote {args.out / 'RESULTS.md'} and results.json in {time.monotonic() - began:.0f}s")
    return 0


def write_markdown(out: Path) -> None:
    """RESULTS.md from results.json, with tuning.json's sweep when there is one."""
    results = json.loads((out / "results.json").read_text())
    config = results["config"]
    results["ratios"] = report.ratios(
        results["summary"],
        results["runs"],
        report.size_label(config["size"]),
        report.size_label(config["second_size"]),
    )
    tuning = out / "tuning.json"
    if tuning.exists():
        results["tuning"] = json.loads(tuning.read_text())
    (out / "RESULTS.md").write_text(report.markdown(results))


def tune_only(args: argparse.Namespace) -> int:
    """Servers and the large file only, then the knob sweep; writes tuning.json."""
    base = Path(tempfile.mkdtemp(prefix="sftp-s3-bench-"))
    base.chmod(0o755)
    try:
        with running_servers(base) as (info, moto):
            small = args.small_count if args.tune_only in ("small", "all") else 0
            data = create_data(info, [args.size], small, args.small_size, 0)
            scratch = base / "scratch"
            scratch.mkdir()
            setup = Setup(info, moto, data, scratch)
            label = report.size_label(args.size)
            tuning = extras.sweep(setup, args.size, label, args.rounds, args.tune_only)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "tuning.json"
    earlier = json.loads(path.read_text()) if path.exists() else []
    names = {item["name"] for item in tuning}
    merged = [item for item in earlier if item["name"] not in names] + tuning
    path.write_text(json.dumps(merged, indent=2) + "\n")
    if (args.out / "results.json").exists():
        write_markdown(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
