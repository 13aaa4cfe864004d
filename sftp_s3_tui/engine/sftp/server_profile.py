"""What one SFTP server grants, found once per host per session: its server profile.

Servers differ more than their handshakes say. ProFTPD's mod_sftp and Green End's
gesftpserver (behind Dropbear) speak SFTP v3 without ``limits@openssh.com``, so a client that
trusts only the advertisement reads in 16 KiB blocks (asyncssh's safe default) although both
honour 256 KiB: a third to a half of their speed lost. Windows OpenSSH (the releases without
``limits@openssh.com``) answers any read above 100 KiB with 102,400 bytes. So where no limit
is advertised the largest read is *probed*: a few single READ requests of growing size at the
start of the first file read from the host; the largest one answered in full (or the length
of a short answer) becomes the host's block size.
A short answer is data, never EOF: the reads themselves ask again for the rest (asyncssh's
reader does), the probe only learns the size from it.

The rest of the profile is what the server says about itself: its banner, SFTP version and
extensions (posix-rename, fsync, statvfs, hardlink, check-file / md5-hash, limits) and the
limits it advertises (open handles among them). A value pinned on the endpoint
(``SftpEndpoint.read_block_bytes``) or by the options (``--sftp-block-size``) is used as given
and never probed: for a server that misbehaves under probing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import asyncssh

log = logging.getLogger(__name__)

KiB = 1024

#: Read sizes tried once per host, smallest first (4 single requests, ~480 KiB read once).
PROBE_READ_SIZES = (32 * KiB, 64 * KiB, 128 * KiB, 256 * KiB)
#: asyncssh's read size when a server advertises no limits (SAFE_SFTP_READ_LEN).
FALLBACK_READ_BYTES = 16 * KiB
#: The write size where no limit is advertised: the SFTP RFC's minimum (a server must take
#: 32 KiB of data in one write; asyncssh's own fallback is 16 KiB) …
RFC_WRITE_BYTES = 32 * KiB
#: … or OpenSSH's (255 KiB: a 256 KiB message less its header) for the servers known to
#: take whole 256 KiB messages without advertising it (ProFTPD's mod_sftp, OpenSSH before
#: limits@openssh.com, Dropbear's sftp-server or gesftpserver), or whose reads of
#: 256 KiB were seen answered in full. Writes are not probed: a server may drop the
#: connection on a message it finds too long.
WIDE_WRITE_BYTES = 255 * KiB
WIDE_WRITE_BANNERS = ("SSH-2.0-mod_sftp", "SSH-2.0-OpenSSH", "SSH-2.0-dropbear")
#: The server families whose plain rename was tested to refuse a taken name, as SFTP v3
#: says (tests/nightly/test_rename_probe.py runs the probe on each): OpenSSH's
#: sftp-server (it links, or looks, before it renames), ProFTPD's mod_sftp, and Dropbear
#: with gesftpserver. Publishing that must not replace a file does not probe them.
RENAME_REFUSING_BANNERS = ("SSH-2.0-OpenSSH", "SSH-2.0-mod_sftp", "SSH-2.0-dropbear")
#: A short answer below this is not taken as the server's read size (a file's tail, a
#: hiccup): the fallback stays.
MIN_READ_BYTES = 4 * KiB

#: Extensions worth showing, in the order they are shown (others are listed after them).
KNOWN_EXTENSIONS = (
    "posix-rename@openssh.com",
    "fsync@openssh.com",
    "statvfs@openssh.com",
    "fstatvfs@openssh.com",
    "hardlink@openssh.com",
    "limits@openssh.com",
    "check-file",
    "check-file-name",
    "check-file-handle",
    "md5-hash",
    "md5-hash-handle",
    "copy-data",
    "lsetstat@openssh.com",
)

#: asyncssh keeps only flags for the extensions it uses; these say which flag is which.
_FLAG_EXTENSIONS = {
    "_supports_posix_rename": "posix-rename@openssh.com",
    "_supports_statvfs": "statvfs@openssh.com",
    "_supports_fstatvfs": "fstatvfs@openssh.com",
    "_supports_hardlink": "hardlink@openssh.com",
    "_supports_fsync": "fsync@openssh.com",
    "_supports_lsetstat": "lsetstat@openssh.com",
    "_supports_limits": "limits@openssh.com",
    "_supports_copy_data": "copy-data",
}


@dataclass(frozen=True)
class ServerProfile:
    """What one SFTP server was found to grant (see the module's docstring)."""

    #: The server's SSH identification string (``SSH-2.0-OpenSSH_9.2p1 Debian-2``).
    banner: str = ""
    sftp_version: int = 0
    #: Every extension the server announced, known ones first.
    extensions: tuple[str, ...] = ()
    #: ``limits@openssh.com``'s read size and open handles (0: not advertised).
    advertised_read_bytes: int = 0
    advertised_open_handles: int = 0
    #: ``limits@openssh.com``'s write size (0: not advertised).
    advertised_write_bytes: int = 0
    #: The block size reads use, and where it came from: ``limits@openssh.com``,
    #: ``probed``, ``pinned`` or ``default`` (nothing learned yet: asyncssh's 16 KiB).
    read_bytes: int = FALLBACK_READ_BYTES
    read_source: str = "default"
    #: The largest single read the probe saw answered in full, and a short answer's length
    #: (0: none seen), e.g. 102,400 from a server that cuts reads above 100 KiB.
    largest_full_read_bytes: int = 0
    short_read_bytes: int = 0
    #: The SSH connections (each one SFTP session: a lane) the pool may open to the host,
    #: the most it held open at once, and how many logins or SFTP sessions the server refused
    #: while another connection of the host was open or opening (a cap, not a failure).
    connections_asked: int = 0
    connections_granted: int = 0
    connections_refused: int = 0
    #: How the server's plain SFTP rename treats an existing target, probed with two
    #: throw-away files in the folder a ``--move-to`` archives into or a skip-existing
    #: delivery publishes into: ``refuses`` (SFTP v3, OpenSSH), ``replaces`` (a race could
    #: clobber a file) or ``unknown`` (not probed, or the probe could not tell).
    rename_overwrites: str = "unknown"

    @property
    def connection_limit(self) -> int:
        """The connections the server grants at most (0: no refusal seen): as many as it held
        open when it refused one more."""
        return max(1, self.connections_granted) if self.connections_refused else 0

    @property
    def connection_limit_source(self) -> str:
        """Where :attr:`connection_limit` comes from: ``refused at N`` ('' when none)."""
        return f"refused at {self.connection_limit + 1}" if self.connection_limit else ""

    @property
    def write_bytes(self) -> int:
        """The block size writes use (see ``WIDE_WRITE_BYTES``): 16 KiB writes cost ProFTPD
        deliveries half their speed."""
        if self.advertised_write_bytes:
            return self.advertised_write_bytes
        if self.banner.startswith(WIDE_WRITE_BANNERS) or self.largest_full_read_bytes >= (
            256 * KiB
        ):
            return WIDE_WRITE_BYTES
        return RFC_WRITE_BYTES

    @property
    def posix_rename(self) -> bool:
        return "posix-rename@openssh.com" in self.extensions

    @property
    def hardlink(self) -> bool:
        """``hardlink@openssh.com``: a link refuses a taken name on every server, where some
        servers' plain rename replaces it (see ``rename_overwrites``)."""
        return "hardlink@openssh.com" in self.extensions

    @property
    def fsync(self) -> bool:
        return "fsync@openssh.com" in self.extensions

    @property
    def hash_extension(self) -> str:
        """The remote-hash extension offered ('' when none)."""
        found = [e for e in self.extensions if e.startswith(("check-file", "md5-hash"))]
        return found[0] if found else ""

    def summary(self) -> str:
        """One line for people: ``SFTP v3 · reads 256 KiB (probed) · posix-rename``."""
        parts = [f"SFTP v{self.sftp_version}" if self.sftp_version else "SFTP"]
        parts.append(f"reads {_size(self.read_bytes)} ({self.read_source})")
        if self.short_read_bytes:
            parts.append(f"cuts reads to {self.short_read_bytes:,} bytes")
        if self.advertised_open_handles:
            parts.append(f"{self.advertised_open_handles} handles")
        parts.append("posix-rename" if self.posix_rename else "plain rename only")
        if self.connection_limit:
            parts.append(
                f"grants {self.connection_limit} of {self.connections_asked} connections "
                f"({self.connection_limit_source})"
            )
        elif self.connections_asked:
            parts.append(f"{self.connections_granted} of {self.connections_asked} connections open")
        if self.rename_overwrites != "unknown":
            parts.append(f"plain rename {self.rename_overwrites} an existing file")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The profile as plain JSON values (``--json``, manifest rows)."""
        return {
            "banner": self.banner,
            "sftp_version": self.sftp_version,
            "extensions": list(self.extensions),
            "read_bytes": self.read_bytes,
            "read_source": self.read_source,
            "largest_full_read_bytes": self.largest_full_read_bytes,
            "short_read_bytes": self.short_read_bytes,
            "advertised_read_bytes": self.advertised_read_bytes,
            "advertised_open_handles": self.advertised_open_handles,
            "connections_asked": self.connections_asked,
            "granted_connections": self.connections_granted,
            "connection_limit": self.connection_limit,
            "connection_limit_source": self.connection_limit_source,
            "rename_overwrites": self.rename_overwrites,
        }


def _size(count: int) -> str:
    return f"{count // KiB} KiB" if count % KiB == 0 else f"{count:,} bytes"


def handshake_profile(
    conn: asyncssh.SSHClientConnection, client: asyncssh.SFTPClient, pinned_read_bytes: int
) -> ServerProfile:
    """What the server said at login: banner, version, extensions, advertised limits."""
    handler = client._handler  # asyncssh exposes the version and limits only there
    names = list(getattr(handler, "_sftp_s3_extensions", ()))
    for flag, name in _FLAG_EXTENSIONS.items():
        if getattr(handler, flag, False) and name not in names:
            names.append(name)
    ordered = [e for e in KNOWN_EXTENSIONS if e in names] + sorted(
        e for e in names if e not in KNOWN_EXTENSIONS
    )
    advertised = getattr(handler, "_supports_limits", False)
    limits = client.limits
    profile = ServerProfile(
        banner=str(conn.get_extra_info("server_version", "") or ""),
        sftp_version=int(client.version),
        extensions=tuple(ordered),
        advertised_read_bytes=int(limits.max_read_len) if advertised else 0,
        advertised_open_handles=int(limits.max_open_handles) if advertised else 0,
        advertised_write_bytes=int(limits.max_write_len) if advertised else 0,
    )
    if pinned_read_bytes > 0:
        return replace(profile, read_bytes=pinned_read_bytes, read_source="pinned")
    if profile.advertised_read_bytes:
        return replace(
            profile, read_bytes=profile.advertised_read_bytes, read_source="limits@openssh.com"
        )
    return profile


def _probe_sizes(profile: ServerProfile) -> list[int]:
    """The read sizes still worth trying: above the largest seen answered in full."""
    return [s for s in PROBE_READ_SIZES if s > profile.largest_full_read_bytes]


def needs_read_probe(profile: ServerProfile, file_size: int) -> bool:
    """True when a read of a ``file_size``-byte file can still teach the read size: not for
    a pinned size, nor for a server that advertises its limit (``limits@openssh.com``, which
    OpenSSH honours; trusting it costs no probe bytes), nor once a short answer was seen."""
    if profile.read_source != "default" and profile.read_source != "probed":
        return False
    if profile.short_read_bytes:
        return False
    sizes = _probe_sizes(profile)
    return bool(sizes) and file_size >= sizes[0]


async def probe_read_size(
    profile: ServerProfile, file: asyncssh.SFTPClientFile, file_size: int, timeout: float
) -> ServerProfile:
    """Send single READs of the probe sizes the file can answer in full, at once, from
    offset 0; the profile with what they showed (unchanged if the probe failed).

    A single request is needed: asyncssh's own readers ask again after a short answer,
    which keeps the data whole but hides the server's limit. So the handler's raw read is
    used (asyncssh has no public single-request read). The probe reads at most 480 KiB,
    once per host per session."""
    sizes = [s for s in _probe_sizes(profile) if s <= file_size]
    handler, handle = file._handler, file._handle
    if not sizes or handle is None:  # nothing to learn here, or closed meanwhile
        return profile

    async def one(size: int) -> int:
        data, _at_eof = await handler.read(handle, 0, size)
        return len(data)

    try:
        async with asyncio.timeout(timeout):
            answers = await asyncio.gather(*(one(size) for size in sizes))
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        log.info("read-size probe failed (%s); keeping %d-byte reads", exc, profile.read_bytes)
        return profile
    full = [s for s, got in zip(sizes, answers, strict=True) if got >= s]
    shorts = [got for s, got in zip(sizes, answers, strict=True) if got < s]
    largest_full = max([*full, profile.largest_full_read_bytes])
    short = min(shorts) if shorts else 0
    found = replace(profile, largest_full_read_bytes=largest_full, short_read_bytes=short)
    if short >= MIN_READ_BYTES:  # the server's real limit: read exactly that much
        return replace(found, read_bytes=max(short, largest_full), read_source="probed")
    if profile.advertised_read_bytes and not shorts:
        return found  # the advertisement holds (as far as this file could show)
    grew = largest_full > profile.read_bytes or profile.read_source == "default"
    if grew and largest_full >= MIN_READ_BYTES:
        return replace(found, read_bytes=largest_full, read_source="probed")
    return found


#: The throw-away files of the rename probe start with this (then a random token).
RENAME_PROBE_PREFIX = ".sftp-s3-rename-probe-"


async def probe_rename(client: asyncssh.SFTPClient, folder: str) -> str:
    """How the server's plain SFTP rename treats an existing target: ``refuses``,
    ``replaces`` or ``unknown``.

    Two small files with unique names are created in ``folder`` (exclusively: nothing of
    anyone's is touched), one is renamed onto the other with the plain (v3) rename, and
    what is left shows the answer; both are removed whatever happens. SFTP v3 says the
    rename must fail; OpenSSH's does, but a server that replaces would let a race clobber
    an archived file (``nightly.source_actions``) or a partner's file at a delivery's final
    name (``writer.RemoteWriter.publish``)."""
    token = secrets.token_hex(8)
    first = posixpath.join(folder, f"{RENAME_PROBE_PREFIX}{token}-a")
    second = posixpath.join(folder, f"{RENAME_PROBE_PREFIX}{token}-b")
    try:
        for name, body in ((first, b"a"), (second, b"b")):
            async with client.open(name, "xb") as file:
                await file.write(body)
        try:
            await client.rename(first, second)
        except asyncssh.SFTPError:
            async with client.open(second, "rb") as file:
                kept = await file.read()
            return "refuses" if kept == b"b" and await client.exists(first) else "unknown"
        async with client.open(second, "rb") as file:
            now = await file.read()
        return "replaces" if now == b"a" and not await client.exists(first) else "unknown"
    except (OSError, asyncssh.Error) as exc:
        log.info("the rename probe in %s could not tell: %s", folder, exc)
        return "unknown"
    finally:
        for name in (first, second):
            try:
                await client.remove(name)
            except asyncssh.SFTPNoSuchFile:
                pass  # renamed away, or never created
            except (OSError, asyncssh.Error) as exc:  # a server that refuses deletes
                log.warning("the rename probe could not remove %s: %s", name, exc)


def _keep_extension_names() -> None:
    """Let the SFTP client handler keep the names of the extensions a server announced.

    asyncssh logs them and keeps flags for the ones it uses, but not ``check-file`` or
    ``md5-hash``; its ``_log_extensions`` sees them all, so it also records them here."""
    handler_class: Any = getattr(asyncssh.sftp, "SFTPClientHandler", None)
    original = getattr(handler_class, "_log_extensions", None)
    if original is None or getattr(original, "_sftp_s3_keeps_names", False):
        return

    def log_extensions(self: Any, extensions: Any) -> None:
        with contextlib.suppress(Exception):
            self._sftp_s3_extensions = [
                bytes(name).decode("utf-8", "replace") for name, _ in extensions
            ]
        original(self, extensions)

    log_extensions._sftp_s3_keeps_names = True  # type: ignore[attr-defined]
    handler_class._log_extensions = log_extensions


_keep_extension_names()


@dataclass
class HostProfile:
    """A host's profile while the session runs: the first login fills it, the first big
    enough file's read probes it (once; other files wait for that probe)."""

    profile: ServerProfile | None = None
    probing: asyncio.Future[ServerProfile] | None = field(default=None, repr=False)
    #: The rename probe (``--move-to``, skip-existing deliveries), run once; the others wait.
    rename_probing: asyncio.Future[str] | None = field(default=None, repr=False)
