"""Crash-safe resume state: one append-only JSON-lines file per multipart upload, locked.

A record is keyed by the S3 endpoint (and, for stores other than AWS, the account where it is
known) plus bucket and key: the same bucket/key on AWS and on a MinIO never share a record. The
first line (written atomically) names the upload; each later line records a finished part or a
digest checkpoint, appended and fsync'd. A torn last line after a crash is ignored. Appending
keeps disk writes to ~100 bytes a part, whatever the file size.

A run that uploads a key holds an exclusive lock (``fcntl.flock``) on the key's lock file for
as long as the transfer runs, so two overlapping runs (cron, an Airflow zombie task) never
resume the same upload or replace each other's record: the second gets :class:`JournalBusy`.
A record is never overwritten by a new upload: if the old upload could not be aborted its
record is kept aside (``*.kept.jsonl``), still listed by :meth:`Journal.entries` so ``cleanup``
finds the upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from types import TracebackType
from urllib.parse import urlsplit

from ..digest import DigestState
from ..durable import atomic_write, fsync_dir
from ..errors import JournalWriteFailed, TransferError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one run at a time
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

AWS = "aws"  # the endpoint identity of AWS S3 itself, whatever its regional URL


class JournalError(JournalWriteFailed):
    """The resume journal cannot be read or written (disk full, read-only, a folder in the way)."""

    title = "Resume journal unusable"


class JournalBusy(TransferError):
    """Another run holds the record of this key: it is uploading the same object right now."""

    title = "Upload in progress elsewhere"


_HINT = "free disk space or fix the folder's permissions, or run with --no-resume"
#: For errors before the upload starts (claiming the record): S3 was not touched.
BEFORE_UPLOAD = f"{_HINT}; nothing was uploaded"


def _journal_error(exc: OSError, what: str, path: Path, hint: str = _HINT) -> JournalError:
    reason = exc.strerror or type(exc).__name__
    return JournalError(f"The resume journal cannot {what} {path}: {reason}", hint)


def endpoint_identity(endpoint_url: str | None) -> str:
    """Who holds the buckets: ``aws`` for AWS S3 (bucket names are global, so every regional
    or virtual-host URL is the same store), else the URL's scheme, host and port, lower-cased."""
    if not endpoint_url:
        return AWS
    parts = urlsplit(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
    host = (parts.hostname or "").lower()
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return AWS
    if host.endswith(".amazonaws.com.cn"):
        return "aws-cn"
    scheme = parts.scheme.lower() or "https"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"


def account_identity(access_key_id: str | None = None, profile: str | None = None) -> str:
    """A short, non-secret name for the credentials (a hash of the access key id, else the
    profile name); empty when neither is known."""
    if access_key_id:
        return "key:" + hashlib.sha256(access_key_id.encode()).hexdigest()[:12]
    if profile:
        return f"profile:{profile}"
    return ""


@dataclass
class JournalEntry:
    """What a restart needs to continue one multipart upload."""

    source: str
    bucket: str
    key: str
    upload_id: str
    part_size: int
    size: int
    mtime: int
    started: float = field(default_factory=time.time)
    checksum: str = "crc64nvme"  # the upload's checksum algorithm (ChecksumChoice value)
    parts: dict[int, tuple[str, str]] = field(default_factory=dict)  # n → (etag, checksum b64)
    digest: dict[int, DigestState] = field(default_factory=dict)  # after part n
    endpoint: str = ""  # endpoint_identity() of the store; "" in records of older versions
    account: str = ""  # account_identity() where it is part of the key
    #: The fingerprint(s) of the SFTP server's host key the source was read from: with
    #: ``source`` (endpoint and path), size and mtime, what proves a rerun reads the same file.
    #: "" in records of older versions (never resumed: not provably the same source).
    host_key: str = ""
    login: str = ""  # the user the source was read as (the URL may name none)
    #: True for the record of an upload that could not be aborted when a new one replaced it:
    #: kept so that ``cleanup`` finds the upload, never resumed.
    kept: bool = False
    path: Path | None = field(default=None, compare=False, repr=False)  # where it was read

    def header(self) -> dict[str, object]:
        return {
            "source": self.source,
            "endpoint": self.endpoint,
            "account": self.account,
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "size": self.size,
            "mtime": self.mtime,
            "started": self.started,
            "checksum": self.checksum,
            "host_key": self.host_key,
            "login": self.login,
        }

    @property
    def destination(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def record_id(endpoint: str, account: str, bucket: str, key: str) -> str:
    """The file name stem of a key's record and lock."""
    return hashlib.sha256(f"{endpoint}\0{account}\0{bucket}\0{key}".encode()).hexdigest()[:32]


class Journal:
    """The folder of journal records (the user's state dir, or a test's tmp dir)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def for_endpoint(self, endpoint: str, account: str = "") -> EndpointJournal:
        """The records of one store (and account): what a transfer queue works with."""
        return EndpointJournal(self, endpoint, account)

    def entries(self, endpoint: str | None = None) -> list[JournalEntry]:
        """Every upload recorded here (of ``endpoint`` only, if given): the unfinished ones a
        run can resume, and the kept ones whose upload only ``cleanup`` can still abort."""
        try:
            paths = sorted(self.folder.glob("*.jsonl")) if self.folder.is_dir() else []
        except OSError as exc:
            raise _journal_error(exc, "list", self.folder) from exc
        found = []
        for path in paths:
            try:
                entry = _read(path)
            except JournalError as exc:
                log.warning("%s", exc)
                continue
            if entry is not None and (endpoint is None or entry.endpoint == endpoint):
                found.append(entry)
        return found

    def resumable(self, endpoint: str) -> list[JournalEntry]:
        """The unfinished uploads of ``endpoint`` a run can continue (the TUI's resume offer)."""
        return [e for e in self.entries(endpoint) if not e.kept]

    def forget(self, entry: JournalEntry) -> None:
        """Drop a record (its upload was aborted or is not wanted); refuses, with
        :class:`JournalBusy`, while a run is uploading that key."""
        if entry.path is None:
            return
        if entry.kept or not entry.endpoint:  # nothing appends to these: no lock needed
            _unlink(entry.path)
            return
        with self.for_endpoint(entry.endpoint, entry.account).claim(
            entry.bucket, entry.key
        ) as claim:
            if claim.entry is not None and claim.entry.upload_id == entry.upload_id:
                claim.forget()

    def _stem(self, endpoint: str, account: str, bucket: str, key: str) -> Path:
        return self.folder / record_id(endpoint, account, bucket, key)


class EndpointJournal:
    """The journal as one transfer queue sees it: records of its own store."""

    def __init__(self, journal: Journal, endpoint: str, account: str = "") -> None:
        self.journal = journal
        self.endpoint = endpoint
        self.account = account

    @property
    def folder(self) -> Path:
        return self.journal.folder

    def entries(self) -> list[JournalEntry]:
        """The records of this store and account (kept ones included)."""
        return [e for e in self.journal.entries(self.endpoint) if e.account == self.account]

    def resumable(self) -> list[JournalEntry]:
        """The unfinished uploads a run on this store and account can continue."""
        return [e for e in self.entries() if not e.kept]

    def claim(self, bucket: str, key: str) -> JournalClaim:
        """Lock the record of ``bucket``/``key`` for this run, and load it.

        Raises :class:`JournalBusy` when another run holds it, :class:`JournalError` when the
        journal folder cannot be used. Release it (``with`` or :meth:`JournalClaim.release`)
        when the transfer ends.
        """
        stem = self.journal._stem(self.endpoint, self.account, bucket, key)
        destination = f"s3://{bucket}/{key}"
        claim = JournalClaim(self, bucket, key, stem)
        claim._lock(destination)
        try:
            claim.entry = _read(claim.path)
        except JournalError as exc:
            claim.release()
            raise JournalError(exc.message, BEFORE_UPLOAD) from exc
        except BaseException:
            claim.release()
            raise
        return claim


class JournalClaim:
    """This run's hold on one key's record: load it, start or resume it, forget or keep it."""

    def __init__(self, journal: EndpointJournal, bucket: str, key: str, stem: Path) -> None:
        self.journal = journal
        self.bucket = bucket
        self.key = key
        self.path = stem.with_suffix(".jsonl")
        self.lock_path = stem.with_suffix(".lock")
        self.entry: JournalEntry | None = None  # the live record, if there is one
        self._lock_fd: int | None = None

    # locking ----------------------------------------------------------------------------
    def _lock(self, destination: str) -> None:
        folder = self.lock_path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except FileExistsError as exc:
            exc.strerror = "it is a file, not a folder"
            raise _journal_error(exc, "create", folder, BEFORE_UPLOAD) from exc
        except OSError as exc:
            raise _journal_error(exc, "create", folder, BEFORE_UPLOAD) from exc
        if fcntl is None:  # pragma: no cover
            return
        for _ in range(100):  # another run may remove the lock file between open and flock
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise _journal_error(exc, "lock", self.lock_path, BEFORE_UPLOAD) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise JournalBusy(
                    f"{destination} is being uploaded by another run{holder}",
                    "this run leaves it alone; run again once that one has ended",
                ) from None
            except OSError as exc:
                os.close(fd)
                raise _journal_error(exc, "lock", self.lock_path, BEFORE_UPLOAD) from exc
            try:
                same = _same_file(fd, self.lock_path)
            except OSError:
                same = False
            if same:
                self._lock_fd = fd
                with contextlib.suppress(OSError):
                    holder = f"{socket.gethostname()} pid {os.getpid()} since {time.ctime()}"
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, holder.encode(), 0)
                return
            os.close(fd)  # the file we locked was removed meanwhile: lock the new one
        raise JournalError(f"Could not lock {self.lock_path}", "another run keeps replacing it")

    def release(self) -> None:
        """Let other runs have this key again."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # while still locked: see _lock's retry
        with contextlib.suppress(OSError):
            os.close(fd)

    def __enter__(self) -> JournalClaim:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # the record -------------------------------------------------------------------------
    def new_entry(
        self,
        source: str,
        upload_id: str,
        part_size: int,
        size: int,
        mtime: int,
        checksum: str = "crc64nvme",
        host_key: str = "",
        login: str = "",
    ) -> JournalEntry:
        """A record for a new upload of this key (not written yet: see :meth:`start`)."""
        return JournalEntry(
            source=source,
            bucket=self.bucket,
            key=self.key,
            upload_id=upload_id,
            part_size=part_size,
            size=size,
            mtime=mtime,
            checksum=checksum,
            host_key=host_key,
            login=login,
            endpoint=self.journal.endpoint,
            account=self.journal.account,
        )

    def start(self, entry: JournalEntry) -> JournalWriter:
        """Record a new upload of this key. A live record of another upload is never
        overwritten: it is kept aside (its upload could not be aborted, or it would have
        been forgotten)."""
        entry.endpoint, entry.account = self.journal.endpoint, self.journal.account
        try:
            if self.entry is not None and self.entry.upload_id != entry.upload_id:
                self.keep()
            atomic_write(self.path, (json.dumps(entry.header()) + "\n").encode())
        except OSError as exc:
            raise _journal_error(exc, "write", self.path) from exc
        entry.path = self.path
        self.entry = entry
        return JournalWriter(self.path)

    def adopt(self, entry: JournalEntry) -> None:
        """Make a record found elsewhere (another machine's, kept in S3) this key's live
        record here, parts and digest checkpoints included."""
        entry.endpoint, entry.account, entry.kept = (
            self.journal.endpoint,
            self.journal.account,
            False,
        )
        lines = [json.dumps(entry.header()).encode() + b"\n"]
        lines += (_part_line(n, etag, crc) for n, (etag, crc) in sorted(entry.parts.items()))
        lines += (_digest_line(n, state) for n, state in sorted(entry.digest.items()))
        try:
            if self.entry is not None and self.entry.upload_id != entry.upload_id:
                self.keep()
            atomic_write(self.path, b"".join(lines))
        except OSError as exc:
            raise _journal_error(exc, "write", self.path) from exc
        entry.path = self.path
        self.entry = entry

    def resume(self) -> JournalWriter:
        """Append to the live record (its upload continues)."""
        assert self.entry is not None, "nothing to resume"
        return JournalWriter(self.path)

    def forget(self) -> None:
        """The live record's upload completed or was aborted: drop the record."""
        try:
            _unlink(self.path)
        except OSError as exc:
            raise _journal_error(exc, "remove", self.path) from exc
        self.entry = None

    def keep(self) -> None:
        """The live record's upload is still open (its abort failed): move the record aside,
        where ``cleanup`` still finds it, so a new upload of the key can be recorded."""
        if self.entry is None:
            return
        kept = self.path.with_name(f"{self.path.stem}.{token_hex(4)}.kept.jsonl")
        try:
            os.replace(self.path, kept)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _journal_error(exc, "move aside", self.path) from exc
        fsync_dir(self.path.parent)
        log.warning(
            "upload %s of %s is still open; its record is kept in %s for cleanup",
            self.entry.upload_id,
            self.entry.destination,
            kept,
        )
        self.entry = None


class JournalWriter:
    """Appends part and digest records to one transfer's journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise _journal_error(exc, "open", path) from exc
        self._pending: list[bytes] = []
        self._taking = threading.Lock()  # held only to swap the pending list
        self._writing = threading.Lock()  # one write + sync at a time

    def part_done(self, number: int, etag: str, checksum: str, *, sync: bool = True) -> None:
        self._append(_part_line(number, etag, checksum), sync=sync)

    def digest_at(self, number: int, state: DigestState, *, sync: bool = True) -> None:
        self._append(_digest_line(number, state), sync=sync)

    def _append(self, line: bytes, *, sync: bool) -> None:
        with self._taking:
            self._pending.append(line)
        if sync:
            self.flush()

    def flush(self) -> None:
        """Write and sync the records held back with ``sync=False``, in one write.

        Each synced append re-dirties the file's last page, which the kernel counts as a 4 KiB
        disk write: one append per part instead of two halves the journal's disk writes.
        Safe from a worker thread (the engine syncs off the event loop) while records are
        appended on the loop.
        """
        with self._writing:
            with self._taking:
                pending, self._pending = self._pending, []
            if not pending:
                return
            data = b"".join(pending)
            try:
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(28, "No space left on device (short write)")
                os.fdatasync(self._fd) if hasattr(os, "fdatasync") else os.fsync(self._fd)
            except OSError as exc:
                raise _journal_error(exc, "write", self.path) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError, JournalError):
            self.flush()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _line(record: dict[str, object]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _part_line(number: int, etag: str, checksum: str) -> bytes:
    return _line({"part": number, "etag": etag, "crc": checksum})


def _digest_line(number: int, state: DigestState) -> bytes:
    return _line(
        {
            "digest_after": number,
            "position": state.position,
            "crc64": state.crc64nvme,
            "sha": state.sha256_state,
        }
    )


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)


def _same_file(fd: int, path: Path) -> bool:
    mine, theirs = os.fstat(fd), os.stat(path)
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return f" ({text})"
    return ""


def _lines(path: Path) -> Iterator[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except UnicodeDecodeError:
        log.warning("ignoring %s: not a journal record", path)
        return
    except OSError as exc:
        raise _journal_error(exc, "read", path) from exc
    yield from text.splitlines()


def _read(path: Path) -> JournalEntry | None:
    lines = list(_lines(path))
    try:
        head = json.loads(lines[0])
        entry = JournalEntry(
            source=head["source"],
            bucket=head["bucket"],
            key=head["key"],
            upload_id=head["upload_id"],
            part_size=int(head["part_size"]),
            size=int(head["size"]),
            mtime=int(head["mtime"]),
            started=float(head.get("started", 0)),
            checksum=str(head.get("checksum", "crc64nvme")),
            endpoint=str(head.get("endpoint", "")),
            account=str(head.get("account", "")),
            host_key=str(head.get("host_key", "")),
            login=str(head.get("login", "")),
            kept=path.name.endswith(".kept.jsonl") or not head.get("endpoint"),
            path=path,
        )
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    for line in lines[1:]:
        try:
            record = json.loads(line)
            if "part" in record:
                entry.parts[int(record["part"])] = (record["etag"], record["crc"])
            elif "digest_after" in record:
                entry.digest[int(record["digest_after"])] = DigestState(
                    int(record["position"]), int(record["crc64"]), record["sha"]
                )
        except (ValueError, KeyError, TypeError):
            break  # a torn last line: everything before it stands
    return entry
