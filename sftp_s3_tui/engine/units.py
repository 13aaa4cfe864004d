"""Sizes, rates and durations: parsed from what people type, formatted for people.

One formatter family everywhere (binary: KiB, MiB, MiB/s, as rclone shows them), so the CLI,
the TUI and the Airflow log never disagree on a unit.
"""

from __future__ import annotations

import re

from .errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Parse ``8MiB``, ``512m``, ``1.5GiB`` or ``4096`` into bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"Not a size: {text!r}", "write it like 8MiB, 512MiB or 1GiB")
    number, unit, _ = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(?:b)?(?:/s|ps)?\s*$", re.IGNORECASE)


def parse_rate(text: str, name: str = "--bwlimit") -> int:
    """Parse a rate in bytes per second: ``20M`` (20 MB/s), ``500k``, ``1.5G``, ``8Mi``
    (8 MiB/s), ``0`` (unlimited); k/M/G are decimal, Ki/Mi/Gi binary, ``B`` and ``/s`` optional."""
    match = _RATE.match(text)
    if not match:
        raise UsageError(
            f"{name} {text!r} is not a rate", "write it like 20M (20 MB/s), 500k or 8Mi"
        )
    number, unit, binary = match.groups()
    if binary and not unit:
        raise UsageError(f"{name} {text!r} is not a rate", "write it like 20M, 500k or 8Mi")
    base = 1024 if binary else 1000
    power = " kmgt".index(unit.lower()) if unit else 0
    return int(float(number) * base**power)


def format_rate_limit(count: int) -> str:
    """``20000000`` → ``"20M"``, ``8388608`` → ``"8Mi"`` (whole units only; else the number)."""
    for base, suffix in ((1000, ""), (1024, "i")):
        for power, unit in ((4, "T"), (3, "G"), (2, "M"), (1, "k")):
            factor = base**power
            if count and count % factor == 0:
                shown = "K" if suffix and unit == "k" else unit
                return f"{count // factor}{shown}{suffix}"
    return str(count)


def format_size(count: float) -> str:
    """Human-readable binary size: ``412.0 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def format_speed(bytes_per_second: float) -> str:
    """A transfer rate in the same binary family as :func:`format_size`: ``38.4 MiB/s``
    (rclone's unit; one family everywhere, so a size and a rate can be compared by eye)."""
    return f"{format_size(bytes_per_second)}/s"


def format_duration(seconds: float) -> str:
    """``7.2s``, ``1m05s``, ``2h05m``: short enough for an 80-column progress line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
