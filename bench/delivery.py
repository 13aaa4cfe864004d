"""Deliveries S3 → a partner's SFTP (issue 28), side by side with rclone 1.75.

For each SFTP server family (the test suite's OpenSSH ``sshd``, ProFTPD mod_sftp, Dropbear +
gesftpserver, on loopback; ``--rtt-ms`` puts the latency proxy in front) the same objects in
moto (or SeaweedFS, ``--store``) are delivered by the product (``copy s3://… sftp://…``) and
by rclone ``copyto`` / ``copy`` at its defaults and with its hash check off (ProFTPD and
gesftpserver run no ``md5sum``, so rclone's defaults fail there), and on loopback by the
floor client (``bench/clients/crt_deliver.py``: awscrt's GETs written by asyncssh, nothing
else): what the given stack alone reaches, beside ours. ``--files N`` delivers N
small objects of ``--file-size`` instead of one ``--size`` object and adds rclone's
``--transfers`` settings; ``--rtt-ms`` adds rclone's ``--multi-thread-streams``. Every client
is its own process measured from outside (``bench/measure.py``): wall time, peak RSS, CPU
(rusage), disk write bytes. Rounds interleave the clients; what each delivered is compared
with the object and removed after the round.

```
uv run python -m bench.delivery --servers openssh,proftpd,dropbear --size 64MiB --rounds 1
uv run python -m bench.delivery --servers openssh --files 500 --file-size 64KiB
uv run python -m bench.delivery --servers openssh --files 2000 --store seaweedfs
```

It prints a table and writes ``bench/DELIVERY*.md`` and ``bench/delivery*.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.families import env_for, far, server
from bench.field import tool
from bench.measure import run_measured
from bench.servers import BUCKET, MotoServer, SeaweedServer, precompile, start_moto, start_seaweed
from sftp_s3_tui.demo import DEMO_REGION
from sftp_s3_tui.engine.units import parse_size
from tests.support.servers import SftpServerInfo

HERE = Path(__file__).resolve().parent
KiB = 1024
MiB = 1024 * KiB


def _pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(f"bench-delivery-{seed}".encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def upload_sources(sink: MotoServer, args: argparse.Namespace) -> dict[str, bytes]:
    """The objects every client delivers: key → bytes (kept to check what landed)."""
    client, objects = sink.client(), {}
    if args.files:
        for index in range(args.files):
            key = f"many/part-{index:05d}.bin"
            objects[key] = _pattern(args.file_size, index)
    else:
        objects["big.bin"] = _pattern(args.size, 0)
    for key, data in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=data)
    return objects


def clients(
    info: SftpServerInfo, sink: MotoServer, tag: str, args: argparse.Namespace
) -> dict[str, tuple[list[str], str]]:
    """name → (argv, the folder under the server's root it delivers into)."""
    login = ["--identity", str(info.identity_file), "--known-hosts", str(info.known_hosts)]
    many = bool(args.files)
    source = f"s3://{BUCKET}/many/" if many else f"s3://{BUCKET}/big.bin"
    cells: dict[str, tuple[list[str], str]] = {}

    def target(name: str) -> tuple[str, str]:
        folder = f"out/{name}-{tag}"
        remote = info.remote_path(folder)
        return folder, (remote + "/" if many else f"{remote}/big.bin")

    folder, remote = target("product")
    product = [sys.executable, "-m", "sftp_s3_tui", "copy", source]
    product += [f"sftp://{info.username}@{info.host}:{info.port}{remote}", *login, "--no-agent"]
    product += ["--endpoint-url", sink.url, "--path-style", "--json"]
    cells["sftp-s3-tui copy"] = (product, folder)
    if not args.rtt_ms:  # the given stack's floor: CRT GETs written by asyncssh, nothing else
        folder, remote = target("floor")
        floor = [sys.executable, "-m", "bench.clients.crt_deliver", "--host", info.host]
        floor += ["--port", str(info.port), "--user", info.username, *login]
        floor += ["--endpoint-url", sink.url, "--bucket", BUCKET, "--region", DEMO_REGION]
        floor += ["--prefix", "many/"] if many else ["--key", "big.bin"]
        floor += ["--target", remote.rstrip("/")]
        cells["asyncssh + awscrt floor"] = (floor, folder)
    verb = "copy" if many else "copyto"
    rclone_source = f"dst:{BUCKET}/many" if many else f"dst:{BUCKET}/big.bin"
    variants: dict[str, list[str]] = {
        "rclone (defaults)": [],
        "rclone --sftp-disable-hashcheck": ["--sftp-disable-hashcheck"],
    }
    if many:
        for transfers in (16, 32):
            variants[f"rclone --transfers {transfers}"] = [
                "--sftp-disable-hashcheck",
                "--transfers",
                str(transfers),
            ]
    if args.rtt_ms and not many:
        for streams in (4, 8, 16):
            variants[f"rclone --multi-thread-streams {streams}"] = [
                "--sftp-disable-hashcheck",
                "--multi-thread-streams",
                str(streams),
                "--multi-thread-cutoff",
                "1M",
            ]
    for index, (name, extra) in enumerate(variants.items()):
        folder, remote = target(f"rclone{index}")
        cells[name] = ([tool("rclone"), verb, rclone_source, f"src:{remote}", *extra], folder)
    return cells


def landed_ok(info: SftpServerInfo, folder: str, objects: dict[str, bytes]) -> bool:
    """Every object landed byte-exact (and nothing else: no temporary file left)."""
    root = info.root / folder
    found = {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}
    wanted = {key.rsplit("/", 1)[-1]: data for key, data in objects.items()}
    if set(found) != set(wanted):
        return False
    return all(found[name].read_bytes() == data for name, data in wanted.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__)
    parser.add_argument("--servers", default="openssh,proftpd,dropbear")
    parser.add_argument("--size", type=parse_size, default=parse_size("64MiB"))
    parser.add_argument("--files", type=int, default=0, help="N small objects instead of one")
    parser.add_argument("--file-size", type=parse_size, default=parse_size("64KiB"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="latency proxy in front")
    parser.add_argument(
        "--store", choices=("moto", "seaweedfs"), default="moto", help="the S3 source (moto)"
    )
    args = parser.parse_args(argv)
    records: list[dict[str, Any]] = []
    started = time.time()
    total = args.files * args.file_size if args.files else args.size
    precompile(HERE.parent)
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as scratch_dir:
        scratch = Path(scratch_dir)
        sink: MotoServer | SeaweedServer = (
            start_seaweed(scratch / "seaweedfs")
            if args.store == "seaweedfs"
            else start_moto(scratch / "moto.log")
        )
        try:
            objects = upload_sources(sink, args)
            for kind in args.servers.split(","):
                base = Path(tempfile.mkdtemp(prefix=f"bench-delivery-{kind}-"))
                with server(kind, base) as direct, far(direct, args.rtt_ms) as info:
                    (direct.root / "out").mkdir(exist_ok=True)
                    env = env_for(info, sink, scratch, kind)
                    for round_number in range(args.rounds):
                        tag = f"{kind}-{round_number}"
                        for name, (command, folder) in clients(info, sink, tag, args).items():
                            measured = run_measured(command, env=env, cwd=HERE.parent)
                            ok = measured.returncode == 0 and landed_ok(direct, folder, objects)
                            rate = total / measured.seconds / 1e6
                            record = {
                                "server": kind,
                                "client": name,
                                "round": round_number,
                                "seconds": round(measured.seconds, 2),
                                "mb_per_s": round(rate, 1),
                                "files_per_s": round(len(objects) / measured.seconds, 1),
                                "cpu_seconds": round(measured.cpu_seconds, 3),
                                "cpu_ms_per_file": round(
                                    1000 * measured.cpu_seconds / len(objects), 2
                                ),
                                "peak_rss_mib": round(measured.peak_rss_bytes / MiB, 1),
                                "write_bytes": measured.write_bytes,
                                "ok": ok,
                                "stderr_tail": measured.stderr[-400:],
                            }
                            records.append(record)
                            print(
                                f"{kind:9} {name:36} {rate:7.1f} MB/s "
                                f"{record['files_per_s']:8.1f} files/s "
                                f"cpu {record['cpu_seconds']:6.2f} s  ok={ok}"
                            )
                            sys.stdout.flush()
                            shutil.rmtree(direct.root / folder, ignore_errors=True)
                shutil.rmtree(base, ignore_errors=True)
        finally:
            sink.stop()
    results = {
        "total_bytes": total,
        "files": len(objects),
        "rtt_ms": args.rtt_ms,
        "store": args.store,
        "rounds": args.rounds,
        "started": started,
        "seconds": round(time.time() - started),
        "load_average": os.getloadavg(),
        "records": records,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = (
        (f"-{args.files}files" if args.files else "")
        + (f"-{args.rtt_ms:g}ms" if args.rtt_ms else "")
        + (f"-{args.store}" if args.store != "moto" else "")
    )
    (args.out / f"delivery{suffix}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"DELIVERY{suffix}.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def _median(records: list[dict[str, Any]], server_kind: str, client: str, field: str) -> float:
    values = [
        r[field]
        for r in records
        if r["server"] == server_kind and r["client"] == client and r["ok"]
    ]
    return statistics.median(values) if values else 0.0


def markdown(results: dict[str, Any]) -> str:
    records = results["records"]
    one, five, fifteen = results["load_average"]
    what = (
        f"{results['files']} objects, {results['total_bytes'] // KiB} KiB in all"
        if results["files"] > 1
        else f"one {results['total_bytes'] // MiB} MiB object"
    )
    far_line = f" at {results['rtt_ms']:g} ms RTT" if results["rtt_ms"] else " on loopback"
    lines = [
        f"# Deliveries S3 → SFTP: {what} from {results.get('store', 'moto')}{far_line}",
        "",
        f"{results['rounds']} round(s), {results['seconds']} s, load average at the end "
        f"{one:.1f} / {five:.1f} / {fifteen:.1f} on 2 cores. Medians of the rounds; CPU is "
        "the client's own (rusage); ok = exit 0 and every file byte-exact, nothing else left.",
        "",
        "| server | client | MB/s | files/s | CPU s | CPU ms/file | peak RSS MiB | ok |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    servers = list(dict.fromkeys(r["server"] for r in records))
    for kind in servers:
        for client in dict.fromkeys(r["client"] for r in records if r["server"] == kind):
            rows = [r for r in records if r["server"] == kind and r["client"] == client]
            ok = all(r["ok"] for r in rows)
            lines.append(
                f"| {kind} | {client} | {_median(records, kind, client, 'mb_per_s'):.1f} "
                f"| {_median(records, kind, client, 'files_per_s'):.1f} "
                f"| {_median(records, kind, client, 'cpu_seconds'):.2f} "
                f"| {_median(records, kind, client, 'cpu_ms_per_file'):.2f} "
                f"| {_median(records, kind, client, 'peak_rss_mib'):.0f} "
                f"| {'yes' if ok else 'NO'} |"
            )
    lines += [
        "",
        "| server | ours ÷ rclone defaults | ours ÷ rclone's best | floor ÷ rclone's best |",
        "|---|---:|---:|---:|",
    ]
    for kind in servers:
        ours = _median(records, kind, "sftp-s3-tui copy", "mb_per_s")
        defaults = _median(records, kind, "rclone (defaults)", "mb_per_s")
        best = max(
            (
                _median(records, kind, r["client"], "mb_per_s")
                for r in records
                if r["server"] == kind and r["client"].startswith("rclone")
            ),
            default=0.0,
        )
        vs_defaults = f"{ours / defaults:.2f}" if defaults else "– (rclone failed)"
        vs_best = f"{ours / best:.2f}" if best else "–"
        # bench/clients/crt_deliver.py: what the given stack alone reaches (not a cap)
        floor = _median(records, kind, "asyncssh + awscrt floor", "mb_per_s")
        floor_vs_best = f"{floor / best:.2f}" if floor and best else "–"
        lines.append(f"| {kind} | {vs_defaults} | {vs_best} | {floor_vs_best} |")
    for record in (r for r in records if not r["ok"]):
        lines.append(f"\nNOT OK: {record['server']} {record['client']}: {record['stderr_tail']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
