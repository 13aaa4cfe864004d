"""Partner SFTP servers that behave like the ones deliveries meet in the field, over real
SFTP (asyncssh, files on disk under ``base/root``):

* ``no-posix-rename``: offers no ``posix-rename@openssh.com`` (appliances, older servers);
  its plain rename refuses an existing target, as SFTP v3 says;
* ``no-rename``: refuses every rename (drop boxes that only let files be written);
* ``flips-a-byte``: stores the first byte of each file inverted (a disk or a server that
  changes what it was sent: every size and status still says all is well);
* ``replacing-rename``: its plain rename replaces an existing target (SFTP v3 says it must
  refuse; some servers do what ``posix-rename`` does), and it offers hard links.

``hidden_once`` names paths whose first ``stat`` / ``lstat`` says they are not there: a file
the partner puts at a name just after the client looked (the race a publish must survive).
``after_listing`` (path → bytes) puts files just after the client first lists a folder: the
same race, against a run's folder listing. ``looked`` records the path of every ``stat`` /
``lstat``.

asyncssh advertises its SFTP extensions from a class attribute of its server handler, so the
``no-posix-rename`` server hides the extension by patching that attribute for as long as it
runs (``monkeypatch``, this test process only: the CLI under test runs in another process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Literal

import asyncssh
import pytest
from asyncssh.sftp import SFTPServerHandler

from tests.support.nightly import key_login_sftp
from tests.support.servers import SftpServerInfo

Behaviour = Literal["no-posix-rename", "no-rename", "flips-a-byte", "replacing-rename"]


class _Partner(asyncssh.SFTPServer):
    """The stock asyncssh SFTP server, chrooted, with ``behaviour``'s refusals."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel,
        root: bytes,
        behaviour: Behaviour,
        hidden_once: set[str],
        after_listing: dict[str, bytes],
        looked: list[str],
    ) -> None:
        super().__init__(chan, chroot=root)
        self._behaviour = behaviour
        self._hidden_once = hidden_once
        self._after_listing = after_listing
        self._looked = looked

    def _hide(self, path: bytes) -> None:
        name = path.decode()
        self._looked.append(name)
        if name in self._hidden_once:
            self._hidden_once.discard(name)
            raise asyncssh.SFTPNoSuchFile(f"{name} is not there (yet)")

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        self._hide(path)
        return super().stat(path)  # type: ignore[return-value]

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        self._hide(path)
        return super().lstat(path)  # type: ignore[return-value]

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        async for entry in super().scandir(path):
            yield entry
        while self._after_listing:  # the partner's files land just after the listing
            name, data = self._after_listing.popitem()
            with open(self.map_path(name.encode()), "wb") as landed:
                landed.write(data)
                os.fsync(landed.fileno())

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        if self._behaviour == "no-rename":
            raise asyncssh.SFTPOpUnsupported("rename not supported")
        if self._behaviour == "replacing-rename":
            super().posix_rename(oldpath, newpath)  # replaces, as posix-rename does
            return
        super().rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("posix-rename not supported")

    def write(self, file_obj: object, offset: int, data: bytes) -> int | Awaitable[int]:
        if self._behaviour == "flips-a-byte" and offset == 0 and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return super().write(file_obj, offset, data)


@contextlib.asynccontextmanager
async def partner_sftp(
    base: Path,
    behaviour: Behaviour,
    monkeypatch: pytest.MonkeyPatch,
    hidden_once: set[str] | None = None,
    after_listing: dict[str, bytes] | None = None,
    looked: list[str] | None = None,
) -> AsyncIterator[SftpServerInfo]:
    """Run a partner server over ``base / "root"`` on the running loop."""
    monkeypatch.setattr(
        SFTPServerHandler,
        "_extensions",
        [e for e in SFTPServerHandler._extensions if e[0] != b"posix-rename@openssh.com"],
    )
    hidden = hidden_once if hidden_once is not None else set()
    landing = after_listing if after_listing is not None else {}
    seen = looked if looked is not None else []

    def partner(chan: asyncssh.SSHServerChannel, root: bytes) -> _Partner:
        return _Partner(chan, root, behaviour, hidden, landing, seen)

    async with key_login_sftp(base, partner) as info:
        yield info
