"""Crash-safe record of a delivery in progress (S3 → SFTP): which temporary file on the
destination belongs to it, so a run killed with SIGKILL (or a power cut) leaves nothing the
next run does not find.

One small JSON file per destination file (keyed by host, port, user and final path), written
atomically *before* the temporary file is created and removed once the file is in place or
its temporary file is gone. While a run delivers the file it holds an exclusive ``flock`` on
the record's lock file, so two overlapping runs never remove each other's temporary file:
the second one fails with :class:`DeliveryBusy`. The lock file goes with the record (so a
watch delivering new names every day does not leave a lock file per name behind); whoever
takes a lock checks that it still names the file there. A record found without a live lock is a
crashed run's: its temporary file is removed (or, when the object is unchanged, resumed)
by the next delivery of the same file.

An object of one part keeps its record in the lock file itself (written before its
temporary file is created, so a torn one names nothing): one local file per object, not two.

The record also carries what a resume needs: the object's ETag / VersionId and size, and
the bytes written so far in order with the CRC64NVME of that prefix (checkpointed every few
parts: a few hundred bytes of disk a checkpoint, never the data).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..durable import atomic_write
from ..errors import TransferError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one run at a time
    fcntl = None  # type: ignore[assignment]


class DeliveryBusy(TransferError):
    """Another run is delivering the same destination file right now."""

    title = "Delivery in progress elsewhere"


@dataclass(frozen=True)
class DeliveryState:
    """What the record says: the temporary file, the object it holds, how much is written."""

    temp_path: str
    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int
    inplace: bool = False
    written: int = 0  # bytes [0, written) are on the server, in order
    crc64nvme: int = 0  # of those bytes


class DeliveryRecord:
    """The record of one destination file, locked for as long as this run delivers it."""

    def __init__(self, folder: Path, destination: str) -> None:
        stem = hashlib.sha256(destination.encode()).hexdigest()[:32]
        self.destination = destination
        self.path = folder / f"{stem}.json"
        self._lock_path = folder / f"{stem}.lock"
        self._lock_fd: int | None = None
        #: The state is in the lock file itself (see :meth:`write`'s ``first``).
        self._in_lock = False
        #: :meth:`forget` removed the lock file: a later state goes to the JSON file.
        self._forgotten = False

    def claim(self) -> DeliveryState | None:
        """Lock the record; what a crashed run left (None: nothing). :class:`DeliveryBusy`
        when another live run holds it."""
        try:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:  # the folder is made once, not checked per object
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TransferError(
                f"The delivery record folder {self.path.parent} cannot be written: {exc.strerror}",
                "free disk space or fix the folder's permissions",
            ) from exc
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DeliveryBusy(
                    f"Another run is delivering {self.destination} right now",
                    "wait for it to finish",
                ) from None
            if not self._still_there(fd):
                # its holder removed it (forget) between our open and our lock: a lock on
                # a file nobody else can open means nothing; take the one there now
                os.close(fd)
                return self.claim()
        self._lock_fd = fd
        return self.read()

    def _still_there(self, fd: int) -> bool:
        try:
            return os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def read(self) -> DeliveryState | None:
        """What the record says: the held lock file's content when it has any (a one-part
        object's record), else the JSON file's."""
        try:
            data = os.pread(self._lock_fd, 1 << 16, 0) if self._lock_fd is not None else b""
            self._in_lock = bool(data)
            return DeliveryState(**json.loads(data or self.path.read_bytes()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, state: DeliveryState, *, sync: bool = True, first: bool = False) -> None:
        """Record ``state`` all or nothing (fsync'd before anything else happens, unless
        ``sync`` is False: see :func:`atomic_write`).

        ``first`` (with ``sync`` False): ``state`` names a temporary file not created yet,
        so it is written into the held lock file instead of a JSON file of its own: a kill
        that tears it leaves no file it should have named, and a small object costs one
        file created and removed, not two (an ext4 without a journal, as on the bench
        machine, looks through its recently removed inodes at each create: a delivery of
        2,000 small objects spent ~1 ms of CPU per object on its records there, measured
        with perf; a journaled ext4 skips that look)."""
        data = json.dumps(asdict(state)).encode()
        fd = self._lock_fd
        try:
            if first and not sync and fd is not None and not self._forgotten:
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
                self._in_lock = True
                return
            atomic_write(self.path, data, sync=sync)
            if self._in_lock and fd is not None:
                os.ftruncate(fd, 0)  # the JSON file says it now
                self._in_lock = False
        except OSError as exc:
            raise TransferError(
                f"The delivery record {self.path} cannot be written: {exc.strerror}",
                "free disk space or fix the folder's permissions",
            ) from exc

    def checkpoint(self, state: DeliveryState, written: int, crc: int) -> DeliveryState:
        """Record that ``[0, written)`` is on the server with CRC64NVME ``crc``."""
        updated = replace(state, written=written, crc64nvme=crc)
        self.write(updated)
        return updated

    def forget(self) -> None:
        """The temporary file is gone (published or removed): nothing to find any more. The
        lock file goes too, while still held (see :meth:`claim`)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self._lock_path.unlink()
            self._forgotten = True
            self._in_lock = False

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None
