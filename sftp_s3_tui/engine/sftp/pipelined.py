"""SFTP requests sent without a coroutine each, so that one task keeps several in flight.

asyncssh's requests are coroutines (``SFTPClientHandler._make_request``: send the packet,
then await the answer), so two requests in flight at once need a task for one of them.
For each small file that was a task, its steps and a timeout for the EOF probe sent
beside its read, and another for the close of its handle in the background. :func:`send`
sends one request and returns the future its answer comes to; :func:`answer` checks and
decodes that answer as ``_make_request`` does; :func:`dropped` is the callback of an
answer nobody waits for.

It uses asyncssh's request plumbing (``_send_request``, ``_return_types``,
``_packet_handlers``), as the check-file request of :mod:`.writer` does; the tests run it
against OpenSSH, ProFTPD, Dropbear and asyncssh's own server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh
from asyncssh.constants import FXP_STATUS


def send(handler: Any, pkttype: int, *args: bytes) -> asyncio.Future[Any]:
    """Send one request on ``handler`` (an ``SFTPClientHandler``); its raw answer comes to
    the returned future (cancel it to drop an answer still due)."""
    waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    handler._send_request(pkttype, args, waiter)
    return waiter


def answer(handler: Any, pkttype: int, reply: tuple[int, Any]) -> Any:
    """The decoded answer to a ``pkttype`` request, checked as asyncssh checks it: an error
    status raises its ``SFTPError`` (``SFTPEOFError`` at the end of a file)."""
    kind, packet = reply
    expected = handler._return_types.get(pkttype)
    if kind not in (FXP_STATUS, expected):
        raise asyncssh.SFTPBadMessage(f"Unexpected response type: {kind}")
    result = handler._packet_handlers[kind](handler, packet)
    if result is None and expected is not None:
        raise asyncssh.SFTPBadMessage("Unexpected FX_OK response")
    return result


def dropped(reply: asyncio.Future[Any]) -> None:
    """Done-callback of an answer nobody awaits: seen, so a lost link's error is not
    logged as never retrieved."""
    if not reply.cancelled():
        reply.exception()


def settle(*replies: asyncio.Future[Any]) -> None:
    """After a cancel or an error: drop the answers still due, see those already come."""
    for reply in replies:
        if not reply.done():
            reply.cancel()
        else:
            dropped(reply)
