"""Small text helpers shared by the widgets: sizes, rates, durations, times."""

from __future__ import annotations

import time

from ..engine.units import format_size, format_speed

__all__ = ["format_duration", "format_mtime", "format_rate", "format_size"]


def format_rate(bytes_per_second: float) -> str:
    """``58.4 MiB/s``: the binary family of the sizes beside it, as the CLI, the Airflow log
    and rclone show rates (one unit family everywhere)."""
    return format_speed(bytes_per_second)


def format_duration(seconds: float | None) -> str:
    """``1m21s`` style; ``—`` when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_mtime(mtime: int) -> str:
    """Local time of a modification stamp, to the minute."""
    if mtime <= 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))
