"""The SFTP server families partners run, side by side (issue 26): ``--servers`` axis.

For each server (OpenSSH ``sshd``, ProFTPD mod_sftp, Dropbear + gesftpserver — the test
suite's fixtures, on loopback) one file is copied into moto (or SeaweedFS, ``--store``) by
the product and by rclone 1.75 with its defaults, and read by raw asyncssh at the size the
product's probe finds (256 KiB on ProFTPD and Dropbear, OpenSSH's advertised 255 KiB). Each
client is its own process, measured from outside (``bench/measure.py``); rounds interleave
the clients. ``--rtt-ms 100`` puts the latency proxy in front of each server and adds rclone
``--multi-thread-streams 4`` / ``8`` / ``16``. On loopback a floor client also runs
(``bench/clients/crt_copy.py``: asyncssh reads handed straight to awscrt, no botocore, no
product code): what the given stack alone reaches at that size, beside ours.
``--files N`` copies a folder of N small files (``--file-size``, 64 KiB) instead, against
rclone ``copy --sftp-disable-hashcheck`` at ``--transfers`` 4 (its default), 16 and 32 and
the floor client's ``--folder`` mode, and reports files/s and client CPU per file.

```
uv run python -m bench.families --servers openssh,proftpd,dropbear --size 64MiB --rounds 1
```

It prints a table and writes ``bench/FAMILIES.md`` and ``bench/families.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import wan_proxy
from bench.field import tool
from bench.measure import run_measured
from bench.servers import (
    BUCKET,
    MotoServer,
    SeaweedServer,
    precompile,
    start_moto,
    start_seaweed,
)
from sftp_s3_tui.demo import DEMO_REGION
from sftp_s3_tui.engine.units import parse_size
from tests.support.servers import OpenSshServer, SftpServerInfo
from tests.support.sftp_families import running

HERE = Path(__file__).resolve().parent
KiB = 1024
MiB = 1024 * KiB
#: What the product's probe settles on for each family (see engine/server_profile.py).
PROBED_READ = {"openssh": 255 * KiB, "proftpd": 256 * KiB, "dropbear": 256 * KiB}


@contextlib.contextmanager
def server(kind: str, base: Path) -> Iterator[SftpServerInfo]:
    if kind == "openssh":
        sshd = OpenSshServer(base)
        try:
            yield sshd.start()
        finally:
            sshd.stop()
    else:
        with running(kind, base) as info:  # type: ignore[arg-type]
            yield info


@contextlib.contextmanager
def far(info: SftpServerInfo, rtt_ms: float) -> Iterator[SftpServerInfo]:
    """``info`` behind bench.wan_proxy's latency line (its port added to known_hosts)."""
    if not rtt_ms:
        yield info
        return
    proxy = wan_proxy.start(info.host, info.port, rtt_ms / 1000)
    try:
        host_key = info.known_hosts.read_text().split(maxsplit=1)[1].strip()
        with info.known_hosts.open("a") as known:
            known.write(f"[{info.host}]:{proxy.port} {host_key}\n")
        yield dataclasses.replace(info, port=proxy.port)
    finally:
        proxy.stop()


def env_for(info: SftpServerInfo, sink: MotoServer, scratch: Path, kind: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "SSH_AUTH_SOCK")}
    config = scratch / "rclone.conf"
    config.touch()
    env.update(
        AWS_ACCESS_KEY_ID=sink.access_key_id,
        AWS_SECRET_ACCESS_KEY=sink.secret_access_key,
        AWS_REGION=DEMO_REGION,
        AWS_DEFAULT_REGION=DEMO_REGION,
        XDG_STATE_HOME=str(scratch / "state"),
        HOME=str(scratch),
        RCLONE_CONFIG=str(config),
        RCLONE_CONFIG_SRC_TYPE="sftp",
        RCLONE_CONFIG_SRC_HOST=info.host,
        RCLONE_CONFIG_SRC_PORT=str(info.port),
        RCLONE_CONFIG_SRC_USER=info.username,
        RCLONE_CONFIG_SRC_KEY_FILE=str(info.identity_file),
        RCLONE_CONFIG_SRC_KNOWN_HOSTS_FILE=str(info.known_hosts),
        RCLONE_CONFIG_DST_TYPE="s3",
        RCLONE_CONFIG_DST_PROVIDER="Other",
        RCLONE_CONFIG_DST_ENDPOINT=sink.url,
        RCLONE_CONFIG_DST_ACCESS_KEY_ID=sink.access_key_id,
        RCLONE_CONFIG_DST_SECRET_ACCESS_KEY=sink.secret_access_key,
        RCLONE_CONFIG_DST_REGION=DEMO_REGION,
        RCLONE_CONFIG_DST_FORCE_PATH_STYLE="true",
    )
    if kind == "dropbear":  # rclone offers RSA first; an ed25519-only Dropbear aborts
        env["RCLONE_SFTP_HOST_KEY_ALGORITHMS"] = "ssh-ed25519"
    env.pop("AWS_PROFILE", None)
    return env


def floor_client(
    info: SftpServerInfo, sink: MotoServer, remote: str, tag: str, *extra: str
) -> list[str]:
    """argv of the given stack's floor (bench/clients/crt_copy.py): asyncssh reads handed to
    awscrt PUT_OBJECTs, nothing else (no botocore, no journal, no verification); ``extra``:
    ``--folder`` for a folder of files, ``--block-size N`` for one file."""
    floor = [sys.executable, "-m", "bench.clients.crt_copy", "--host", info.host]
    floor += ["--port", str(info.port), "--user", info.username, "--path", remote]
    floor += ["--identity", str(info.identity_file), "--known-hosts", str(info.known_hosts)]
    floor += ["--endpoint-url", sink.url, "--bucket", BUCKET, "--key", f"floor/{tag}"]
    return [*floor, "--region", DEMO_REGION, *extra]


def clients(
    kind: str,
    info: SftpServerInfo,
    sink: MotoServer,
    remote: str,
    tag: str,
    rtt_ms: float,
    local: Path | None = None,
) -> dict[str, list[str]]:
    """name → argv of every client of one cell."""
    login = ["--identity", str(info.identity_file), "--known-hosts", str(info.known_hosts)]
    raw = [sys.executable, "-m", "bench.clients.raw_sftp", "--host", info.host]
    raw += ["--port", str(info.port), "--user", info.username, *login, "--path", remote]
    raw += ["--block-size", str(PROBED_READ[kind]), "--requests", "64", "--window", str(16 * MiB)]
    product = [sys.executable, "-m", "sftp_s3_tui", "copy"]
    product += [f"sftp://{info.username}@{info.host}:{info.port}{remote}"]
    product += [f"s3://{BUCKET}/product/{tag}", *login, "--no-agent"]
    product += ["--endpoint-url", sink.url, "--path-style", "--json"]
    rclone = [tool("rclone"), "copyto", f"src:{remote}", f"dst:{BUCKET}/rclone/{tag}"]
    if rtt_ms:  # far: rclone's best multi-thread streams, hash check off (see below)
        return {
            f"raw asyncssh, {PROBED_READ[kind] // KiB} KiB reads": raw,
            "sftp-s3-tui copy": product,
            **{
                f"rclone copyto --multi-thread-streams {n}": [
                    *rclone[:-1],
                    f"dst:{BUCKET}/rclone-mts{n}/{tag}",
                    "--sftp-disable-hashcheck",
                    "--multi-thread-streams",
                    str(n),
                ]
                for n in (4, 8, 16)
            },
        }
    # rclone checks an md5sum it runs over SSH; ProFTPD and gesftpserver run no commands, so
    # the sums differ ("" vs the object's) and a defaults copy fails there: also without it.
    # The sink's limit: s5cmd (Go) uploads the same bytes from the local file, no SFTP at all.
    s5cmd = [
        tool("s5cmd"),
        "--endpoint-url",
        sink.url,
        "cp",
        str(local),
        f"s3://{BUCKET}/s5cmd/{tag}",
    ]
    floor = floor_client(info, sink, remote, tag, "--block-size", str(PROBED_READ[kind]))
    return {
        f"raw asyncssh, {PROBED_READ[kind] // KiB} KiB reads": raw,
        "sftp-s3-tui copy": product,
        "asyncssh + awscrt floor": floor,
        "rclone copyto (defaults)": rclone,
        "rclone copyto --sftp-disable-hashcheck": [
            *rclone[:-1],
            f"dst:{BUCKET}/rclone-nohash/{tag}",
            "--sftp-disable-hashcheck",
        ],
        # last: the store may still be busy with a write when the next client starts
        **({"s5cmd cp (the sink's limit)": s5cmd} if local is not None else {}),
    }


#: rclone's ``--transfers`` tried for a folder of small files (4 is its default).
RCLONE_TRANSFERS = (4, 16, 32)


def small_clients(
    info: SftpServerInfo, sink: MotoServer, folder: str, tag: str
) -> dict[str, list[str]]:
    """name → argv of every client of a small-files cell: the product's folder copy at its
    defaults, and rclone's ``copy`` with its hash check off at each ``--transfers``
    (ProFTPD and gesftpserver run no ``md5sum``: the check fails there)."""
    login = ["--identity", str(info.identity_file), "--known-hosts", str(info.known_hosts)]
    product = [sys.executable, "-m", "sftp_s3_tui", "copy"]
    product += [f"sftp://{info.username}@{info.host}:{info.port}{folder}/"]
    product += [f"s3://{BUCKET}/product/{tag}/", *login, "--no-agent"]
    product += ["--endpoint-url", sink.url, "--path-style", "--quiet"]
    cell = {
        "sftp-s3-tui copy": product,
        "asyncssh + awscrt floor": floor_client(info, sink, folder, tag, "--folder"),
    }
    for transfers in RCLONE_TRANSFERS:
        cell[f"rclone copy --transfers {transfers}"] = [
            tool("rclone"),
            "copy",
            f"src:{folder}",
            f"dst:{BUCKET}/rclone-t{transfers}/{tag}/",
            "--sftp-disable-hashcheck",
            "--transfers",
            str(transfers),
        ]
    return cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.families", description=__doc__)
    parser.add_argument("--servers", default="openssh,proftpd,dropbear")
    parser.add_argument("--size", type=parse_size, default=parse_size("64MiB"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="latency proxy in front")
    parser.add_argument(
        "--store", choices=("moto", "seaweedfs"), default="moto", help="the S3 sink (moto)"
    )
    parser.add_argument(
        "--files", type=int, default=0, help="a folder of N small files instead of one file"
    )
    parser.add_argument("--file-size", type=parse_size, default=parse_size("64KiB"))
    args = parser.parse_args(argv)
    records: list[dict[str, Any]] = []
    started = time.time()
    precompile(HERE.parent)  # a fresh venv would time compiling its imports, not the copy
    with tempfile.TemporaryDirectory(prefix="bench-families-") as scratch_dir:
        scratch = Path(scratch_dir)
        sink: MotoServer | SeaweedServer = (
            start_seaweed(scratch / "seaweedfs")
            if args.store == "seaweedfs"
            else start_moto(scratch / "moto.log")
        )
        try:
            for kind in args.servers.split(","):
                base = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
                with server(kind, base) as direct, far(direct, args.rtt_ms) as info:
                    if args.files:
                        for number in range(args.files):
                            direct.write_file(
                                f"small/f{number:05d}.bin", size=args.file_size, seed=number
                            )
                        remote = info.remote_path("small")
                        local = None
                    else:
                        written = direct.write_file("big.bin", size=args.size)
                        remote, local = written.remote_path, written.local_path
                    env = env_for(info, sink, scratch, kind)
                    for round_number in range(args.rounds):
                        tag = f"{kind}-{round_number}"
                        cell = (
                            small_clients(info, sink, remote, tag)
                            if args.files
                            else clients(kind, info, sink, remote, tag, args.rtt_ms, local)
                        )
                        for name, command in cell.items():
                            measured = run_measured(command, env=env, cwd=HERE.parent)
                            if args.files:
                                rate = args.files / measured.seconds
                            else:
                                rate = args.size / measured.seconds / 1e6
                            record = {
                                "server": kind,
                                "client": name,
                                "round": round_number,
                                "seconds": round(measured.seconds, 2),
                                "mb_per_s": round(rate, 1),  # files/s with --files
                                "files": args.files,
                                "cpu_seconds": round(measured.cpu_seconds, 2),
                                "peak_rss_mib": round(measured.peak_rss_bytes / MiB, 1),
                                "ok": measured.returncode == 0,
                                "stderr_tail": measured.stderr[-400:],
                            }
                            records.append(record)
                            unit = "files/s" if args.files else "MB/s"
                            print(f"{kind:9} {name:32} {rate:7.1f} {unit}  ok={record['ok']}")
                            sys.stdout.flush()
                            sink.empty_bucket()
        finally:
            sink.stop()
    load = os.getloadavg()
    results = {
        "size": args.size,
        "rtt_ms": args.rtt_ms,
        "store": args.store,
        "files": args.files,
        "file_size": args.file_size,
        "rounds": args.rounds,
        "started": started,
        "seconds": round(time.time() - started),
        "load_average": load,
        "records": records,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    default_size = parse_size("64MiB")
    suffix = f"-{args.size // MiB}MiB" if args.size != default_size and not args.files else ""
    suffix += f"-{args.rtt_ms:g}ms" if args.rtt_ms else ""
    suffix += "-seaweedfs" if args.store == "seaweedfs" else ""
    suffix = f"-{args.files}files{suffix}" if args.files else suffix
    (args.out / f"families{suffix}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"FAMILIES{suffix}.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def _median(records: list[dict[str, Any]], server: str, prefix: str) -> float:
    rates = [
        r["mb_per_s"]
        for r in records
        if r["server"] == server and r["client"].startswith(prefix) and r["ok"]
    ]
    return statistics.median(rates) if rates else 0.0


def markdown(results: dict[str, Any]) -> str:
    records = results["records"]
    size = results["size"] // MiB
    one, five, fifteen = results["load_average"]
    lines = [
        f"# SFTP server families: one {size} MiB file, loopback, into "
        f"{results.get('store', 'moto')}",
        "",
        f"{results['rounds']} round(s), {results['seconds']} s, load average at the end "
        f"{one:.1f} / {five:.1f} / {fifteen:.1f} on 2 cores (other sessions' test suites).",
        "",
        "| server | raw asyncssh (probed size) MB/s | s5cmd, the sink's limit MB/s "
        "| sftp-s3-tui MB/s | rclone defaults MB/s | rclone no hashcheck MB/s "
        "| ÷ rclone defaults (≥ 1.2) | ÷ raw (≥ 0.8) | ÷ min(raw, s5cmd) "
        "| 1.2 × rclone defaults ÷ s5cmd | asyncssh + awscrt floor MB/s "
        "| floor ÷ rclone defaults |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if results.get("files"):  # small files, at any RTT
        return files_markdown(results)
    if results.get("rtt_ms"):
        return far_markdown(results)
    for server in dict.fromkeys(r["server"] for r in records):
        raw = _median(records, server, "raw")
        s5cmd = _median(records, server, "s5cmd")
        ours = _median(records, server, "sftp-s3-tui")
        rclone = _median(records, server, "rclone copyto (defaults)")
        nohash = _median(records, server, "rclone copyto --sftp")
        vs_rclone = f"{ours / rclone:.2f}" if rclone else "– (rclone failed)"
        vs_raw = f"{ours / raw:.2f}" if raw else "–"
        limit = min(rate for rate in (raw, s5cmd) if rate) if raw or s5cmd else 0.0
        vs_limit = f"{ours / limit:.2f}" if limit else "–"
        # Above 1.00 the ≥ 1.2 × rclone target asks for more than the store takes from a
        # local file: no SFTP → S3 client can reach it on this machine.
        target = f"{1.2 * rclone / s5cmd:.2f}" if rclone and s5cmd else "–"
        # The floor client (bench/clients/crt_copy.py): where even it is below 1.2 × rclone,
        # the target asks more than the given stack alone delivers here (a floor, not a cap).
        floor = _median(records, server, "asyncssh + awscrt")
        vs_floor = f"{floor / rclone:.2f}" if floor and rclone else "–"
        lines.append(
            f"| {server} | {raw:.1f} | {s5cmd:.1f} | {ours:.1f} | {rclone:.1f} | {nohash:.1f} "
            f"| {vs_rclone} | {vs_raw} | {vs_limit} | {target} | {floor:.1f} | {vs_floor} |"
        )
    failed = [r for r in records if not r["ok"]]
    for record in failed:
        lines.append(f"\nFAILED: {record['server']} {record['client']}: {record['stderr_tail']}")
    return "\n".join(lines) + "\n"


def far_markdown(results: dict[str, Any]) -> str:
    records = results["records"]
    one, five, fifteen = results["load_average"]
    lines = [
        f"# SFTP server families at {results['rtt_ms']:g} ms: one "
        f"{results['size'] // MiB} MiB file into {results.get('store', 'moto')}",
        "",
        f"{results['rounds']} round(s), {results['seconds']} s, load average at the end "
        f"{one:.1f} / {five:.1f} / {fifteen:.1f} on 2 cores.",
        "",
        "| server | raw asyncssh MB/s | sftp-s3-tui MB/s | rclone best MB/s (streams) "
        "| ÷ rclone best (≥ 1.5) |",
        "|---|---:|---:|---:|---:|",
    ]
    for server in dict.fromkeys(r["server"] for r in records):
        raw = _median(records, server, "raw")
        ours = _median(records, server, "sftp-s3-tui")
        best_name, best = max(
            (
                (r["client"].rsplit(" ", 1)[-1], _median(records, server, r["client"]))
                for r in records
                if r["server"] == server and r["client"].startswith("rclone")
            ),
            key=lambda item: item[1],
            default=("–", 0.0),
        )
        ratio = f"{ours / best:.2f}" if best else "–"
        lines.append(f"| {server} | {raw:.1f} | {ours:.1f} | {best:.1f} ({best_name}) | {ratio} |")
    return "\n".join(lines) + "\n"


def files_markdown(results: dict[str, Any]) -> str:
    """The small-files table: files/s and client CPU per file, ours against rclone's best
    ``--transfers`` (issue 26: ≥ 1.2 on loopback; issue 29: ≥ 1.5 at 50 ms)."""
    records = results["records"]
    one, five, fifteen = results["load_average"]
    link = f"at {results['rtt_ms']:g} ms" if results.get("rtt_ms") else "loopback"
    lines = [
        f"# SFTP server families: {results['files']} × {results['file_size'] // KiB} KiB "
        f"files, {link}, into {results.get('store', 'moto')}",
        "",
        f"{results['rounds']} round(s), {results['seconds']} s, load average at the end "
        f"{one:.1f} / {five:.1f} / {fifteen:.1f} on 2 cores.",
        "",
        "| server | sftp-s3-tui files/s | CPU ms/file | rclone best files/s (--transfers) "
        f"| CPU ms/file | ÷ rclone best (≥ {'1.5' if results.get('rtt_ms') else '1.2'}) "
        "| asyncssh + awscrt floor files/s "
        "| CPU ms/file | floor's CPU ÷ rclone's |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    files = results["files"]

    def cpu_ms(server: str, client: str) -> float:
        spent = [
            r["cpu_seconds"] for r in records if r["server"] == server and r["client"] == client
        ]
        return statistics.median(spent) * 1000 / files if spent else 0.0

    for server in dict.fromkeys(r["server"] for r in records):
        ours = _median(records, server, "sftp-s3-tui")
        best, best_client = 0.0, ""
        for transfers in RCLONE_TRANSFERS:
            client = f"rclone copy --transfers {transfers}"
            rate = _median(records, server, client)
            if rate > best:
                best, best_client = rate, client
        ratio = f"{ours / best:.2f}" if best else "–"
        floor = _median(records, server, "asyncssh + awscrt")
        floor_cpu, rclone_cpu = (
            cpu_ms(server, "asyncssh + awscrt floor"),
            cpu_ms(server, best_client),
        )
        floor_ratio = f"{floor_cpu / rclone_cpu:.2f}" if floor_cpu and rclone_cpu else "–"
        lines.append(
            f"| {server} | {ours:.1f} | {cpu_ms(server, 'sftp-s3-tui copy'):.2f} "
            f"| {best:.1f} ({best_client.rpartition(' ')[2]}) | {rclone_cpu:.2f} "
            f"| {ratio} | {floor:.1f} | {floor_cpu:.2f} | {floor_ratio} |"
        )
    failed = [r for r in records if not r["ok"]]
    for record in failed:
        lines.append(f"\nFAILED: {record['server']} {record['client']}: {record['stderr_tail']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
