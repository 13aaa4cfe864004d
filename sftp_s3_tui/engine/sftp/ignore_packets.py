"""No empty ``SSH_MSG_IGNORE`` before each packet where the cipher needs none.

asyncssh sends an empty ignore packet before every packet once the connection is encrypted
(``SSHConnection.send_packet``). That is RFC 4251's countermeasure for CBC mode (§9.3.1:
a CBC packet's IV is the previous packet's last block, which an attacker can predict);
AES-GCM, ChaCha20-Poly1305 and CTR modes are not open to that attack, and OpenSSH does not
send one. For a small file it was half of the packets the client sends: each one padded
with random bytes, encrypted, written to the socket and decrypted by the server.
:func:`skip_needless_ignore_packets` drops only those empty ignore packets, only while the
cipher the connection sends with is not CBC; everything else asyncssh sends is unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import asyncssh.connection
import asyncssh.packet

from .patching import replace_once

_EMPTY = asyncssh.packet.String(b"")


def _sends_cbc(connection: Any) -> bool:
    """Whether the cipher ``connection`` sends with is a CBC one, or not known (an asyncssh
    without these attributes keeps its ignore packets)."""
    side = "_enc_alg_cs" if connection.is_client() else "_enc_alg_sc"
    name = getattr(connection, side, b"")
    return not isinstance(name, bytes) or not name or b"-cbc" in name


def _without_needless_ignore(send_packet: Callable[..., None]) -> Callable[..., None]:
    ignore = asyncssh.connection.MSG_IGNORE

    @functools.wraps(send_packet)
    def send_packet_without_needless_ignore(
        self: Any, pkttype: int, *args: bytes, **kwargs: Any
    ) -> None:
        if pkttype == ignore and args == (_EMPTY,) and not _sends_cbc(self):
            return
        send_packet(self, pkttype, *args, **kwargs)

    return send_packet_without_needless_ignore


def skip_needless_ignore_packets() -> bool:
    """Drop asyncssh's empty ignore packets on non-CBC ciphers (once per process); False
    where this asyncssh has no ``send_packet`` to wrap (then nothing is changed)."""
    connection_class = asyncssh.connection.SSHConnection
    if not hasattr(connection_class, "is_client"):
        return False
    return replace_once(connection_class, "send_packet", _without_needless_ignore)
