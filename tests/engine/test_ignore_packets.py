"""asyncssh's empty ignore packet before each packet: dropped where the cipher is not CBC,
kept where it is (RFC 4251 §9.3.1's countermeasure is for CBC)."""

from __future__ import annotations

import logging

import asyncssh
import pytest

from sftp_s3_tui.engine.sftp.ignore_packets import skip_needless_ignore_packets


class _AnyoneServer(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return False  # no authentication: the login itself sends the packets counted


async def _ignore_packets_received(cipher: str, caplog: pytest.LogCaptureFixture) -> int:
    """Log in with ``cipher`` (both ways) and count the ignore packets the server got."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_factory=_AnyoneServer,
        server_host_keys=[key],
        encryption_algs=[cipher],
    )
    port = server.sockets[0].getsockname()[1]
    asyncssh.set_debug_level(3)
    try:
        with caplog.at_level(logging.DEBUG, logger="asyncssh"):
            async with asyncssh.connect(
                "127.0.0.1", port, username="u", known_hosts=None, encryption_algs=[cipher]
            ) as conn:
                assert conn.get_extra_info("send_cipher") == cipher
    finally:
        asyncssh.set_debug_level(1)
        server.close()
        await server.wait_closed()
    return sum("Received MSG_IGNORE" in r.getMessage() for r in caplog.records)


async def test_no_ignore_packets_with_gcm(caplog: pytest.LogCaptureFixture) -> None:
    assert skip_needless_ignore_packets()  # in place (connect.py's import did it), idempotent
    assert await _ignore_packets_received("aes128-gcm@openssh.com", caplog) == 0


async def test_cbc_keeps_its_ignore_packets(caplog: pytest.LogCaptureFixture) -> None:
    assert skip_needless_ignore_packets()
    assert await _ignore_packets_received("aes128-cbc", caplog) > 0
