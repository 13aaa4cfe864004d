"""An SSH connection's packets written in one turn of the event loop leave in one send:
many small SFTP requests in flight (a run of small files) cost a few system calls, not one
each, and every answer still comes back right — on each real server family."""

from __future__ import annotations

import asyncio
import os

import pytest

from sftp_s3_tui.engine.sftp.coalesce import FLUSH_AT, CoalescingTransport, coalesce_sends
from sftp_s3_tui.engine.sftp.connect import open_connection
from tests.support.servers import SftpServerInfo


class CountedWrites:
    """Counts the writes reaching the socket transport under the coalescing one."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.writes = 0
        self.bytes = 0
        self._write = transport.write

        def write(data: bytes | bytearray | memoryview) -> None:
            self.writes += 1
            self.bytes += len(data)
            self._write(data)

        transport.write = write  # type: ignore[method-assign]


@pytest.mark.sftp_families
async def test_requests_made_together_leave_together_and_all_are_answered(
    openssh_sftp: SftpServerInfo,
) -> None:
    names = {f"f{n:03d}.csv": os.urandom(100 + n) for n in range(200)}
    for name, data in names.items():
        openssh_sftp.write_file(f"many/{name}", data)
    big = os.urandom(3 * FLUSH_AT + 5)  # writes of whole data packets go out at once
    conn = await open_connection(openssh_sftp.endpoint())
    try:
        coalescing = conn._transport  # type: ignore[attr-defined]
        assert isinstance(coalescing, CoalescingTransport)
        counted = CountedWrites(coalescing._transport)
        async with conn.start_sftp_client() as sftp:
            folder = openssh_sftp.remote_path("many")
            before = counted.writes
            sizes = await asyncio.gather(*(sftp.stat(f"{folder}/{n}") for n in names))
            stats = counted.writes - before
            assert [s.size for s in sizes] == [len(d) for d in names.values()]
            # 200 requests asked in one turn: far fewer sends than requests
            assert stats <= 20, stats

            handles = asyncio.Semaphore(32)  # gesftpserver grants few handles at once

            async def read(name: str) -> bytes:
                async with handles, sftp.open(f"{folder}/{name}", "rb") as f:
                    return await f.read()

            assert await asyncio.gather(*(read(n) for n in names)) == list(names.values())
            async with sftp.open(f"{folder}/big.bin", "wb") as f:
                await f.write(big)
        assert (openssh_sftp.root / "many" / "big.bin").read_bytes() == big
    finally:
        conn.close()
        await conn.wait_closed()


async def test_closing_sends_what_was_written_before_it(openssh_sftp: SftpServerInfo) -> None:
    """asyncssh writes its disconnect message and aborts the transport a turn later: the
    message must reach the socket transport first, not be dropped with the batch."""
    conn = await open_connection(openssh_sftp.endpoint())
    coalescing = conn._transport  # type: ignore[attr-defined]
    assert isinstance(coalescing, CoalescingTransport)
    counted = CountedWrites(coalescing._transport)
    conn.close()
    await conn.wait_closed()
    assert counted.writes == 1 and counted.bytes > 0  # the disconnect message


def test_a_connection_whose_transport_is_not_a_socket_is_left_as_it_is() -> None:
    class Tunnelled:
        _transport = object()  # a channel of a jump host's connection, say

    conn = Tunnelled()
    assert coalesce_sends(conn) is False
    assert type(conn._transport) is object
