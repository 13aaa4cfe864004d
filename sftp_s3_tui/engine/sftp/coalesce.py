"""One ``send()`` per event-loop turn for an SSH connection, not one per SSH packet.

asyncssh hands each packet it builds to the socket transport at once, and a transport with
an empty buffer sends it in its own system call: a small file's SFTP requests (open, read,
close, stat; a delivery's open, write, setstat, fstat, close, rename) each cost a
``send()``, and with 64 files in flight they were a fifth of the event loop's time in a
delivery of 2,000 small objects (py-spy). :class:`CoalescingTransport` gathers what one
turn of the loop writes and sends it together at the start of the next turn; a write of a
whole packet of data (``FLUSH_AT`` or more) goes out at once, after what was gathered
before it, so bulk data is never copied into a batch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

#: A write at least this big goes out at once (with what was gathered before it): joining
#: it into a batch would copy it, and a send of that size amortises its system call anyway.
FLUSH_AT = 16 * 1024


class CoalescingTransport:
    """Wraps an asyncio transport: writes made in one loop turn go out in one ``write``.

    Everything but writing, closing and the write buffer's size is the wrapped
    transport's. Order is kept: every write goes through :meth:`write`."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) >= FLUSH_AT:
            self._flush()
            self._transport.write(data)
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self._transport.is_closing():
            return  # as the transport itself drops writes after close
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def close(self) -> None:
        self._flush()  # a disconnect message written just before must still go out
        self._transport.close()

    def abort(self) -> None:
        """asyncssh aborts one loop turn after writing its disconnect message (which
        went out at once before): send what was gathered and abort a turn later, as then,
        so the server has as long as ever to read the message."""
        self._flush()
        self._loop.call_soon(self._transport.abort)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalesce_sends(conn: object) -> bool:
    """Put a :class:`CoalescingTransport` under an asyncssh connection; False (and nothing
    changed) where this asyncssh keeps its transport elsewhere."""
    transport = getattr(conn, "_transport", None)
    if not isinstance(transport, asyncio.Transport):
        log.debug("asyncssh's transport not found: each SSH packet is sent on its own")
        return False
    conn._transport = CoalescingTransport(transport)  # type: ignore[attr-defined]
    return True
