"""One socket write per loop turn for each SSH connection, not one per packet.

asyncssh writes each packet to the transport as it is made, and asyncio's transport sends
what it is given at once: every SFTP request of every small file was its own ``send``
system call, and its own wake-up of the server. :func:`coalesce_writes` has every SSH
connection in the process (the engine's, and the demo's embedded server's) gather the
packets made during one turn of the event loop and write them together at the end of that
turn (a ``call_soon``): the same bytes, in the same order, sent a loop turn later at most.
"""

from __future__ import annotations

import contextlib
from typing import Any

import asyncssh.connection

from .patching import replace_once

_PENDING = "_sftp_s3_tui_pending"


def _flush(conn: Any, transport: Any, pending: list[bytes]) -> None:
    if getattr(conn, _PENDING, None) is pending:
        setattr(conn, _PENDING, None)
    # As asyncssh's own _send: a lost connection is reported by connection_lost, not here.
    with contextlib.suppress(ConnectionError):
        transport.write(b"".join(pending))


def _send(self: Any, data: bytes) -> None:
    transport = self._transport
    if not transport:
        return
    pending: list[bytes] | None = getattr(self, _PENDING, None)
    if pending is None:
        pending = []
        setattr(self, _PENDING, pending)
        # The transport is taken now: a forced close clears self._transport, and what was
        # made before it is still written before the abort it schedules (call_soon order).
        self._loop.call_soon(_flush, self, transport, pending)
    pending.append(data)


def coalesce_writes() -> bool:
    """Gather each SSH connection's packets per loop turn (once per process); False where
    this asyncssh has no ``_send`` to replace."""
    return replace_once(asyncssh.connection.SSHConnection, "_send", lambda _own: _send)
