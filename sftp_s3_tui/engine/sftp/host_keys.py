"""Host keys: known_hosts matching as OpenSSH does, the decision on keys it does not list,
fingerprints, and the user-facing error for a refused key.

A refused host key is never retried or softened: the error says which key the server showed
and what known_hosts holds, so the user can tell a re-keyed server from an attack.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncssh

from ..config import HostKeyPolicy, SftpEndpoint
from ..errors import HostKeyError


def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


class HostKeyGate(asyncssh.SSHClient):
    """Decides on host keys asyncssh did not find in known_hosts, and remembers what it saw.

    As OpenSSH does: a certificate signed by a ``@cert-authority`` of the host is accepted
    (by asyncssh) without being recorded; a plain key of such a host is judged like any other
    (refused, or recorded under accept-new); a ``@revoked`` key, or a CA that known_hosts does
    not trust, is refused under every policy.
    """

    def __init__(
        self,
        endpoint: SftpEndpoint,
        known_hosts: bytes,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._known_hosts = known_hosts
        #: Told "connected", "auth" and "authenticated" as the login gets there (the pool
        #: times them to tell a far host before the login ends: see connect.LoginClock).
        self._on_phase = on_phase
        self.presented: asyncssh.SSHKey | None = None
        self.known: tuple[asyncssh.SSHKey, ...] = ()
        self.revoked: tuple[asyncssh.SSHKey, ...] = ()
        self.untrusted_ca: asyncssh.SSHKey | None = None
        self.accepted_new = False

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        if self._on_phase is not None:
            self._on_phase("connected")

    def begin_auth(self, username: str) -> None:
        if self._on_phase is not None:
            self._on_phase("auth")

    def auth_completed(self) -> None:
        if self._on_phase is not None:
            self._on_phase("authenticated")

    def match(self, host: str, addr: str, port: int | None) -> tuple[Sequence[object], ...]:
        """known_hosts matched for asyncssh, with ``@revoked [host]:port`` lines kept.

        asyncssh drops port-specific ``@revoked`` lines when no trusted key matches the port
        (it falls back to the port-less match), so they are matched here as plain lines.
        """
        matched = asyncssh.match_known_hosts(self._known_hosts, host, addr, port)
        revoked_lines = [
            line.strip()[len(b"@revoked") :].strip()
            for line in self._known_hosts.splitlines()
            if line.strip().startswith(b"@revoked")
        ]
        as_plain = b"\n".join(revoked_lines)
        revoked = list(matched[2])
        for key in asyncssh.match_known_hosts(as_plain, host, addr, port)[0]:
            if key not in revoked:
                revoked.append(key)
        self.revoked = tuple(revoked)
        return (matched[0], matched[1], revoked, *matched[3:])

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented = key
        if key in self.revoked:
            return False
        trusted_lines = self._endpoint.trusted_host_keys
        if any(asyncssh.import_public_key(line) == key for line in trusted_lines):
            return True
        known = asyncssh.match_known_hosts(self._known_hosts, host, addr, port)[0]
        self.known = tuple(known)
        if not self.known and self._endpoint.host_key_policy is HostKeyPolicy.ACCEPT_NEW:
            self.accepted_new = True
            return True
        return False

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.untrusted_ca = key
        return False


def host_key_algs(known_hosts: bytes, host: str, port: int) -> str | None:
    """``'default'`` (certificates and plain keys) when only a CA of ``host`` is known.

    asyncssh offers only certificate algorithms then, so a host showing a plain key could
    not be reached at all; OpenSSH prefers certificates but still takes plain keys.
    """
    matched = asyncssh.match_known_hosts(known_hosts, host, "", port if port != 22 else None)
    return "default" if matched[1] and not matched[0] else None


def known_hosts_line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    """The OpenSSH known_hosts line for ``key`` at ``host:port``."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {key.export_public_key().decode().strip()}\n"


def remember_host_key(path: Path, host: str, port: int, key_line: str) -> None:
    """Append a host key to a known_hosts file (created 0600 with its folder if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.import_public_key(key_line)
    with open(path, "a", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write(known_hosts_line(host, port, key))


def read_known_hosts(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def host_key_error(endpoint: SftpEndpoint, gate: HostKeyGate) -> HostKeyError:
    where = f"{endpoint.host}:{endpoint.port}"
    key = gate.presented
    seen = fingerprint(key) if key else "unknown"
    line = key.export_public_key().decode().strip() if key else ""
    if (key in gate.revoked) if key is not None else bool(gate.revoked):
        revoked = tuple(fingerprint(k) for k in gate.revoked)
        return HostKeyError(
            f"The host key of {where} is REVOKED in known_hosts ({', '.join(revoked)})",
            "this may be an attack; ask the server's administrator "
            f"(see {endpoint.known_hosts_path})",
            host=endpoint.host,
            port=endpoint.port,
            fingerprint=seen if key else revoked[0],
            known_fingerprints=revoked,
        )
    if gate.untrusted_ca is not None:
        ca = fingerprint(gate.untrusted_ca)
        return HostKeyError(
            f"The host certificate of {where} is signed by a CA known_hosts does not trust ({ca})",
            f"verify the CA, then add a @cert-authority line to {endpoint.known_hosts_path}",
            host=endpoint.host,
            port=endpoint.port,
            fingerprint=ca,
            known_fingerprints=(ca,),
        )
    if gate.known:
        known = tuple(fingerprint(k) for k in gate.known)
        return HostKeyError(
            f"The host key of {where} has CHANGED: the server shows {seen}, "
            f"known_hosts has {', '.join(known)}",
            "this may be an attack; if the server was really re-keyed, remove the old line "
            f"from {endpoint.known_hosts_path}",
            host=endpoint.host,
            port=endpoint.port,
            fingerprint=seen,
            known_fingerprints=known,
            key_line=line,
        )
    return HostKeyError(
        f"The host key of {where} is unknown ({seen})",
        f"verify the fingerprint, then {{setting}} or add it to {endpoint.known_hosts_path}",
        setting="accept_new_host_key",
        host=endpoint.host,
        port=endpoint.port,
        fingerprint=seen,
        key_line=line,
    )
