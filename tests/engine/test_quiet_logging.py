"""asyncssh's per-request and per-packet log messages: skipped unformatted while nobody
listens, made exactly as before once DEBUG is on (``-v -v``)."""

from __future__ import annotations

import logging

import asyncssh
import pytest

from sftp_s3_tui.engine.sftp.connect import open_connection
from sftp_s3_tui.engine.sftp.quiet_logging import quiet_asyncssh_logging
from tests.support.servers import SftpServerInfo


async def _stat_root(server: SftpServerInfo) -> None:
    conn = await open_connection(server.endpoint())
    try:
        async with conn.start_sftp_client() as sftp:
            assert (await sftp.stat(server.remote_path())).type == asyncssh.FILEXFER_TYPE_DIRECTORY
    finally:
        conn.close()
        await conn.wait_closed()


async def test_debug_messages_come_as_before_when_asked_for(
    openssh_sftp: SftpServerInfo, caplog: pytest.LogCaptureFixture
) -> None:
    assert quiet_asyncssh_logging()  # in place (connect.py's import did it) and idempotent
    with caplog.at_level(logging.WARNING, logger="asyncssh"):
        await _stat_root(openssh_sftp)
    assert not [r for r in caplog.records if r.name.startswith("asyncssh")]

    asyncssh.set_debug_level(3)
    try:
        with caplog.at_level(logging.DEBUG, logger="asyncssh"):
            await _stat_root(openssh_sftp)
    finally:
        asyncssh.set_debug_level(1)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("asyncssh")]
    assert any("Sending stat for" in m for m in messages), messages  # debug1, formatted
    assert any("Sent MSG_CHANNEL_DATA" in m for m in messages), messages  # a packet's log
