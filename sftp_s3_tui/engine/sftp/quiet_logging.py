"""asyncssh's per-packet log calls, skipped before their arguments are formatted when
nobody listens.

asyncssh logs each SFTP request (``debug1``) and each SSH packet (``_log_packet``) and
formats the message's arguments first: ``debug1`` turns every argument to text before the
logger checks its level, and ``_log_packet`` builds the packet's name and size before
``packet`` checks asyncssh's debug level (3 by default is off). With logging off that was
about a quarter of asyncssh's CPU per SFTP request (cProfile of 4,000 stats in flight: ~20
of ~75 µs). :func:`quiet_asyncssh_logging` puts the level checks first; with DEBUG on (``-v
-v``, or an application that enables asyncssh's logger) every message is made as before.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import asyncssh.logging
import asyncssh.packet

from .patching import replace_once


def _debug1_when_enabled(debug1: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(debug1)
    def debug1_when_enabled(self: Any, msg: str, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(logging.DEBUG):
            debug1(self, msg, *args, **kwargs)

    return debug1_when_enabled


def _log_packet_when_enabled(log_packet: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(log_packet)
    def log_packet_when_enabled(self: Any, *args: Any, **kwargs: Any) -> None:
        logger = self.logger
        if logger._debug_level >= 3 and logger.isEnabledFor(logging.DEBUG):
            log_packet(self, *args, **kwargs)

    return log_packet_when_enabled


def quiet_asyncssh_logging() -> bool:
    """Check asyncssh's log levels before it formats (once per process); False where this
    asyncssh has not the methods it wraps (then nothing is changed)."""
    logger_class = getattr(asyncssh.logging, "SSHLogger", None)
    packet_class = getattr(asyncssh.packet, "SSHPacketLogger", None)
    debug1 = getattr(logger_class, "debug1", None)
    log_packet = getattr(packet_class, "_log_packet", None)
    if debug1 is None or log_packet is None or not hasattr(logger_class, "_debug_level"):
        return False  # the wrapper reads the class's debug level: without it, change nothing
    return replace_once(logger_class, "debug1", _debug1_when_enabled) and replace_once(
        packet_class, "_log_packet", _log_packet_when_enabled
    )
