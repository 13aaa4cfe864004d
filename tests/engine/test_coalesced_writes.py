"""Each SSH connection writes the packets of one loop turn together: fewer writes, the same
bytes in the same order, and nothing made before a close is lost."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import asyncssh

from sftp_s3_tui.engine.sftp.coalesced_writes import coalesce_writes
from tests.support.servers import SftpServerInfo


def _count_writes(conn: asyncssh.SSHClientConnection) -> list[int]:
    """The sizes of the writes ``conn`` makes to its socket's transport from now on."""
    transport: Any = conn._transport  # type: ignore[attr-defined]
    sizes: list[int] = []
    write = transport.write

    def counted(data: bytes) -> None:
        sizes.append(len(data))
        write(data)

    transport.write = counted
    return sizes


async def test_requests_made_in_one_loop_turn_leave_in_one_write(
    openssh_sftp: SftpServerInfo,
) -> None:
    assert coalesce_writes()  # in place (connect.py's import did it), idempotent
    files = [openssh_sftp.write_file(f"drop/f{i}.csv", size=1000 + i, seed=i) for i in range(8)]
    options = openssh_sftp.connect_options()
    async with asyncssh.connect(**options) as conn, conn.start_sftp_client() as sftp:
        writes = _count_writes(conn)
        # gather's eight tasks take their first step in the same loop turn
        sizes = await asyncio.gather(*(sftp.getsize(f.remote_path) for f in files))
        requests = list(writes)
    assert sizes == [1000 + i for i in range(8)], "every answer is its own request's"
    assert len(requests) == 1, f"eight stat requests in {len(requests)} writes"


async def test_the_packets_made_before_a_close_still_leave(
    openssh_sftp: SftpServerInfo,
) -> None:
    """A close right after a request: the request and the disconnect message are written
    before the transport closes (the server logs a clean disconnect, not a lost link)."""
    remote = openssh_sftp.write_file("drop/last.csv", size=5000, seed=3)
    async with asyncssh.connect(**openssh_sftp.connect_options()) as conn:
        sftp = await conn.start_sftp_client()
        writes = _count_writes(conn)
        assert await sftp.getsize(remote.remote_path) == 5000
        conn.close()  # its disconnect packet is made now and written a turn later
        await asyncio.wait_for(conn.wait_closed(), timeout=10)
    assert len(writes) >= 2, "the request and the disconnect were both written"


class _Watched(asyncssh.SSHServer):
    """An SSH server that notes how each connection ended."""

    ended: ClassVar[list[Exception | None]] = []

    def begin_auth(self, username: str) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended.append(exc)


async def test_a_server_sees_the_clean_disconnect_of_a_closed_connection() -> None:
    """Without its disconnect packet the server would see the link lost (an error)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    _Watched.ended = []
    server = await asyncssh.listen("127.0.0.1", 0, server_factory=_Watched, server_host_keys=[key])
    try:
        port = server.sockets[0].getsockname()[1]
        conn = await asyncssh.connect("127.0.0.1", port, username="u", known_hosts=None)
        conn.close()
        await asyncio.wait_for(conn.wait_closed(), timeout=10)
        async with asyncio.timeout(10):
            while not _Watched.ended:
                await asyncio.sleep(0.01)
    finally:
        server.close()
        await server.wait_closed()
    assert _Watched.ended == [None], "a clean disconnect by the application"
