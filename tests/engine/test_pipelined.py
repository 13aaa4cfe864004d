"""SFTP requests sent as futures (no task each) answer as asyncssh's own requests do."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest
from asyncssh.constants import FXP_FSTAT, FXP_READ
from asyncssh.packet import String, UInt32, UInt64

from sftp_s3_tui.engine.sftp import pipelined
from tests.support.servers import SftpServerInfo


async def test_two_reads_in_flight_from_one_task_answer_as_asyncssh_would(
    sftp_server: SftpServerInfo,
) -> None:
    remote = sftp_server.write_file("p/a.bin", b"abcdef")
    async with (
        asyncssh.connect(
            sftp_server.host,
            port=sftp_server.port,
            username=sftp_server.username,
            client_keys=[str(sftp_server.identity_file)],
            known_hosts=str(sftp_server.known_hosts),
            agent_path=None,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        file = await sftp.open(remote.remote_path, "rb")
        handler, handle = file._handler, file._handle
        assert handle is not None
        read = pipelined.send(handler, FXP_READ, String(handle), UInt64(0), UInt32(100))
        probe = pipelined.send(handler, FXP_READ, String(handle), UInt64(6), UInt32(1))
        stat = pipelined.send(handler, FXP_FSTAT, String(handle))
        data, _at_eof = pipelined.answer(handler, FXP_READ, await read)
        assert data == b"abcdef"
        with pytest.raises(asyncssh.SFTPEOFError):  # nothing past the end
            pipelined.answer(handler, FXP_READ, await probe)
        with pytest.raises(asyncssh.SFTPBadMessage):  # attributes are no read's answer
            pipelined.answer(handler, FXP_READ, await stat)
        gone = pipelined.send(handler, FXP_READ, String(b"no such handle"), UInt64(0), UInt32(1))
        with pytest.raises(asyncssh.SFTPError):
            pipelined.answer(handler, FXP_READ, await gone)

        late = pipelined.send(handler, FXP_READ, String(handle), UInt64(0), UInt32(6))
        pipelined.settle(late)  # dropped while due: its answer, when it comes, is ignored
        assert late.cancelled()
        await file.close()
        assert (await sftp.stat(remote.remote_path)).size == 6  # the session goes on
    await asyncio.sleep(0)
