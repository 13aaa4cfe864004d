"""Medians, the ratios that matter, the machine, and the Markdown that shows them."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

GiB = 1 << 30
MiB = 1 << 20

PRODUCT = "sftp-s3-tui copy --no-resume"
PRODUCT_JOURNAL = "sftp-s3-tui copy (journal on)"
RAW_S3 = "raw S3 multipart write (aioboto3)"
RCLONE_DEFAULT = "rclone copyto (defaults)"


def size_label(size: int) -> str:
    """1GiB, 256MiB, 1.5GiB: short, for keys and table rows."""
    if size >= GiB:
        return f"{size / GiB:g}GiB"
    return f"{size / MiB:g}MiB"


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (group, client): medians over the successful rounds."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    order: list[tuple[str, str]] = []
    for record in records:
        key = (str(record["group"]), str(record["name"]))
        if key not in grouped:
            order.append(key)
        grouped[key].append(record)
    rows = []
    for key in order:
        runs = grouped[key]
        ok = [r for r in runs if r["ok"]]
        first = runs[0]
        row: dict[str, Any] = {
            "group": key[0],
            "name": key[1],
            "family": first["family"],
            "unit": first["unit"],
            "amount": first["amount"],
            "notes": first.get("notes", ""),
            "rounds": len(runs),
            "ok_rounds": len(ok),
            "problems": sorted({str(r["problem"]) for r in runs if not r["ok"]}),
        }
        if ok:
            rates = [r["amount"] / r["seconds"] for r in ok]
            cpu = statistics.median(r["cpu_seconds"] for r in ok)
            moved_gib = int(first.get("bytes_moved") or first["amount"]) / GiB
            row.update(
                rate=statistics.median(rates),
                rate_min=min(rates),
                rate_max=max(rates),
                seconds=statistics.median(r["seconds"] for r in ok),
                peak_rss_bytes=statistics.median(r["peak_rss_bytes"] for r in ok),
                peak_rss_max_bytes=max(r["peak_rss_bytes"] for r in ok),
                cpu_seconds=cpu,
                cpu_seconds_per_gib=cpu / moved_gib if moved_gib else None,
                write_bytes=statistics.median(r["write_bytes"] for r in ok),
                write_bytes_max=max(r["write_bytes"] for r in ok),
            )
        rows.append(row)
    return rows


def _find(rows: list[dict[str, Any]], group: str, name: str) -> dict[str, Any] | None:
    for row in rows:
        if row["group"] == group and row["name"] == name and "rate" in row:
            return row
    return None


def _find_prefix(rows: list[dict[str, Any]], group: str, prefix: str) -> dict[str, Any] | None:
    for row in rows:
        if row["group"] == group and row["name"].startswith(prefix) and "rate" in row:
            return row
    return None


def _per_round(
    records: list[dict[str, Any]], group: str, a: str, b: str, cpu: bool = False
) -> list[float]:
    """a ÷ b in each round where both succeeded (names match by prefix).

    Pairing by round compares runs made minutes apart, under the same background load; on a
    shared machine that is steadier than a ratio of medians taken from different rounds.
    """

    def metric(record: dict[str, Any]) -> float:
        if cpu:
            return float(record["cpu_seconds"]) / float(record["amount"])
        return float(record["amount"]) / float(record["seconds"])

    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for record in records:
        if record["group"] != group or not record["ok"]:
            continue
        for side, prefix in (("a", a), ("b", b)):
            if str(record["name"]).startswith(prefix):
                by_round[int(record["round"])].setdefault(side, metric(record))
    return [v["a"] / v["b"] for _, v in sorted(by_round.items()) if "a" in v and "b" in v]


def ratios(
    rows: list[dict[str, Any]], records: list[dict[str, Any]], large: str, second: str
) -> list[dict[str, Any]]:
    """The figures the issues set targets for, each with its target and whether it is met.

    Speed and CPU ratios are medians of per-round ratios; the ratio of the medians is shown
    beside them.
    """
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, target: str, met: bool | None, detail: str) -> None:
        out.append({"name": name, "value": value, "target": target, "met": met, "detail": detail})

    def paired(
        name: str,
        group: str,
        a: str,
        b: str,
        target: str,
        ok: Any,
        of_medians: float | None,
        cpu: bool = False,
    ) -> None:
        values = _per_round(records, group, a, b, cpu)
        if not values:
            return
        value = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        extra = f"; ratio of medians {of_medians:.2f}" if of_medians is not None else ""
        add(name, value, target, bool(ok(value)), f"per round {rounds}{extra}")

    raw = _find(rows, large, RAW_S3)
    rclone = _find(rows, large, RCLONE_DEFAULT)
    for product_name in (PRODUCT, PRODUCT_JOURNAL):
        product = _find(rows, large, product_name)
        short = "product" if product_name == PRODUCT else "product (journal on)"
        if product and raw:
            paired(
                f"{short} ÷ raw S3 write, {large} (MB/s)",
                large,
                product_name,
                RAW_S3,
                "≥ 0.90",
                lambda v: v >= 0.9,
                product["rate"] / raw["rate"],
            )
        if product and rclone:
            paired(
                f"{short} ÷ rclone defaults, {large} (MB/s)",
                large,
                product_name,
                RCLONE_DEFAULT,
                "≥ 1.30",
                lambda v: v >= 1.3,
                product["rate"] / rclone["rate"],
            )
            paired(
                f"{short} CPU s/GiB ÷ rclone defaults' CPU s/GiB",
                large,
                product_name,
                RCLONE_DEFAULT,
                "≤ 1.00",
                lambda v: v <= 1.0,
                product["cpu_seconds_per_gib"] / rclone["cpu_seconds_per_gib"],
                cpu=True,
            )
        small_product = _find(rows, second, product_name)
        if product and small_product:
            value = product["peak_rss_max_bytes"] / small_product["peak_rss_max_bytes"]
            medians = product["peak_rss_bytes"] / small_product["peak_rss_bytes"]
            add(
                f"{short} peak RSS {large} ÷ {second}",
                value,
                "0.90 – 1.10",
                abs(value - 1) <= 0.1,
                f"max over rounds {product['peak_rss_max_bytes'] / MiB:.0f} MiB vs "
                f"{small_product['peak_rss_max_bytes'] / MiB:.0f} MiB; medians "
                f"{product['peak_rss_bytes'] / MiB:.0f} vs "
                f"{small_product['peak_rss_bytes'] / MiB:.0f} MiB ({medians:.2f})",
            )
        if product:
            value = product["write_bytes_max"]
            add(
                f"{short} disk write bytes, {large}",
                value,
                "< 1 MiB",
                value < MiB,
                f"{value / 1024:.0f} KiB (max over rounds)",
            )
    small = _find_prefix(rows, "small", "sftp-s3-tui copy folder")
    rclone_small = _find_prefix(rows, "small", "rclone copy --sftp-disable-hashcheck")
    put_loop = _find_prefix(rows, "small", "bare PutObject loop")
    if small and rclone_small:
        paired(
            "small files: product ÷ rclone --sftp-disable-hashcheck (files/s)",
            "small",
            small["name"],
            rclone_small["name"],
            "≥ 1.30",
            lambda v: v >= 1.3,
            small["rate"] / rclone_small["rate"],
        )
    if small and put_loop:
        paired(
            "small files: product ÷ bare PutObject loop (files/s)",
            "small",
            small["name"],
            put_loop["name"],
            "≥ 0.80",
            lambda v: v >= 0.8,
            small["rate"] / put_loop["rate"],
        )
    return out


def ratios_text(items: list[dict[str, Any]]) -> str:
    lines = ["Ratios (same run):"]
    for item in items:
        mark = "met" if item["met"] else "NOT met"
        value = item["value"]
        shown = f"{value:.2f}" if isinstance(value, float) and value < 1000 else f"{value}"
        lines.append(
            f"  {item['name']:<58} {shown:>10}  target {item['target']:<11} {mark}"
            f"  ({item['detail']})"
        )
    return "\n".join(lines)


def _command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def machine() -> dict[str, str]:
    """The machine and every version that could move the numbers."""
    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / GiB:.1f} GiB",
        "os": _os_name(),
        "python": platform.python_version(),
        "openssh": _command_version(["ssh", "-V"]),
        "rclone": _command_version(["rclone", "version"]),
        "commit": _command_version(["git", "rev-parse", "--short", "HEAD"]),
        "load average (1, 5, 15 min) at the end": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for package in (
        "asyncssh",
        "aioboto3",
        "aiobotocore",
        "botocore",
        "boto3",
        "moto",
        "awscrt",
        "cryptography",
    ):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / MiB:.0f} MiB"


def _fixed(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1024:
        return f"{value:.0f} B"
    if value < MiB:
        return f"{value / 1024:.0f} KiB"
    return f"{value / MiB:.0f} MiB"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | client | median | (min – max) | peak RSS | CPU s | CPU s/GiB | disk writes "
        "| ok |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "rate" not in row:
            lines.append(
                f"| {row['group']} | {row['name']} | failed | | | | | | 0/{row['rounds']} |"
            )
            continue
        if row["unit"] == "bytes":
            rate = f"{row['rate'] / 1e6:.1f} MB/s"
            spread = f"{row['rate_min'] / 1e6:.1f} – {row['rate_max'] / 1e6:.1f}"
        else:
            rate = f"{row['rate']:.0f} files/s"
            spread = f"{row['rate_min']:.0f} – {row['rate_max']:.0f}"
        per_gib = row["cpu_seconds_per_gib"]
        lines.append(
            f"| {row['group']} | {row['name']} | {rate} | {spread} | {_mib(row['peak_rss_bytes'])} "
            f"| {row['cpu_seconds']:.1f} | {_fixed(per_gib)} | {_bytes(row['write_bytes_max'])} "
            f"| {row['ok_rounds']}/{row['rounds']} |"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """bench/RESULTS.md: machine, table, ratios, extras; the prose sections are appended by hand."""
    config = results["config"]
    info = results["machine"]
    parts = [
        "# Benchmark results",
        "",
        f"`{' '.join(['uv run python -m bench', *config['argv']])}`: {config['rounds']} rounds, "
        f"interleaved; whole run {config['wall_seconds']:.0f} s.",
        "",
        "Every client is its own process, measured from outside: wall time from start to exit "
        "(start-up included), peak RSS of its process tree (polled every 20 ms), CPU user+sys "
        "from its rusage (children included), disk write bytes from the kernel's I/O "
        "accounting. MB/s is 10⁶ bytes per second. Medians over the rounds; peak RSS is the "
        "median and disk writes the maximum. Servers (sshd, moto) run on the same 2 cores and "
        "are not counted.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "## Results",
        "",
        table(results["summary"]),
        "",
        "## Ratios (same run)",
        "",
        "| ratio | value | target | met? | detail |",
        "|---|---:|---|---|---|",
    ]
    for item in results["ratios"]:
        value = item["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else _bytes(value)
        parts.append(
            f"| {item['name']} | {shown} | {item['target']} | {'yes' if item['met'] else '**no**'} "
            f"| {item['detail']} |"
        )
    copy = results.get("copy_object")
    if copy:
        parts += [
            "",
            "## The sha256 metadata CopyObject",
            "",
            f"A server-side CopyObject of the {copy['label']} object onto itself (what the engine "
            f"does after Complete to store `x-amz-meta-sha256`) took a median "
            f"{copy['median_seconds']:.2f} s on moto "
            f"({', '.join(f'{s:.2f}' for s in copy['seconds'])} s), against "
            f"{copy['upload_seconds']:.2f} s for the whole multipart upload of the same bytes "
            "by the "
            "raw client (start-up, parts and Complete).",
        ]
    tuning = results.get("tuning")
    if tuning:
        parts += [
            "",
            "## Engine knobs (`python -m bench --tune-only`: the engine with explicit options)",
            "",
            "| setting | median | runs |",
            "|---|---:|---|",
        ]
        for item in tuning:
            scale, unit = (1e6, "MB/s") if item.get("unit", "MB/s") == "MB/s" else (1, "files/s")
            runs = ", ".join(f"{r / scale:.1f}" for r in item["rates"])
            parts.append(f"| {item['name']} | {item['median'] / scale:.1f} {unit} | {runs} |")
    profile = results.get("profile")
    if profile:
        parts += [
            "",
            "## Profile of the product (cProfile, main thread, top by cumulative/own time)",
            "",
            "```",
            profile["top"].rstrip(),
            "```",
        ]
    notes = Path(__file__).with_name("NOTES.md")
    if notes.exists():
        parts += ["", notes.read_text().rstrip()]
    return "\n".join(parts) + "\n"
