"""Durable file writes: all or nothing, 0600, and the rename made to survive a power loss."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from secrets import token_hex


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(folder: Path) -> None:
    """Make a create, rename or unlink in ``folder`` durable (not possible on every platform)."""
    with suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, sync: bool = True) -> None:
    """Write ``data`` to ``path`` all or nothing: a private temp file, fsync, ``os.replace``,
    then fsync of the folder. The folder must exist; a failure leaves ``path`` as it was.

    ``sync=False`` skips both fsyncs: still all or nothing for a killed process (the page
    cache keeps what was written), only a power loss may lose the write."""
    temp = path.with_name(f".{path.name}.{token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # exactly this mode whatever the umask
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if sync:
        fsync_dir(path.parent)
