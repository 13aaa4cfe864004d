"""The command-line flags of observing (``copy`` and ``watch``), declared once here so the
CLI module only adds the group and reads it back."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .options import NOTIFY_CHOICES

if TYPE_CHECKING:
    from ..requests import ObserveFlags


def add_observe_options(parser: argparse.ArgumentParser, *, watch: bool) -> None:
    group = parser.add_argument_group("telling others (hooks, logs, lineage: OPENLINEAGE_URL)")
    group.add_argument(
        "--hook-url",
        metavar="URL",
        help="healthchecks.io-style pings: URL/start, URL on success, URL/fail (SFTP_S3_HOOK_URL)",
    )
    group.add_argument(
        "--notify-on",
        metavar="LIST",
        help=f"which pings to send: {','.join(NOTIFY_CHOICES)} (all)",
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="json: one JSON object per log event on stderr (text)",
    )
    if watch:
        group.add_argument(
            "--expect", metavar="GLOB", help="a drop: files matching GLOB are expected…"
        )
        group.add_argument("--expect-count", metavar="N", help="…N of them (1)…")
        group.add_argument(
            "--expect-by",
            metavar="WHEN",
            help="…by each deadline: HH:MM, 'weekdays HH:MM' or cron '0 6 * * 1-5'…",
        )
        group.add_argument("--expect-tz", metavar="ZONE", help="…in ZONE, e.g. Europe/Berlin (UTC)")


def observe_flags(args: argparse.Namespace) -> ObserveFlags:
    # requests is imported here, not at the top: building the parser (--help, a usage
    # error) must not load it
    from ..requests import ObserveFlags

    return ObserveFlags(
        hook_url=getattr(args, "hook_url", None),
        notify_on=getattr(args, "notify_on", None),
        log_format=getattr(args, "log_format", None),
        expect=getattr(args, "expect", None),
        expect_count=getattr(args, "expect_count", None),
        expect_by=getattr(args, "expect_by", None),
        expect_tz=getattr(args, "expect_tz", None),
    )
