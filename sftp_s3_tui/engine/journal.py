"""Crash-safe resume state: one append-only JSON-lines file per multipart transfer.

The first line (written atomically) names the upload; each later line records a finished
part or a digest checkpoint, appended and fsync'd. A torn last line after a crash is ignored.
Appending keeps disk writes to ~100 bytes a part, whatever the file size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_write
from .digest import DigestState


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

    def header(self) -> dict[str, object]:
        return {
            "source": self.source,
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "size": self.size,
            "mtime": self.mtime,
            "started": self.started,
            "checksum": self.checksum,
        }


def transfer_id(source: str, bucket: str, key: str) -> str:
    return hashlib.sha256(f"{source}\0{bucket}\0{key}".encode()).hexdigest()[:32]


class Journal:
    """The folder of journal files; ``None`` folder disables journaling."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, source: str, bucket: str, key: str) -> Path:
        return self.folder / f"{transfer_id(source, bucket, key)}.jsonl"

    def load(self, source: str, bucket: str, key: str) -> JournalEntry | None:
        return _read(self._path(source, bucket, key))

    def entries(self) -> list[JournalEntry]:
        """Every unfinished transfer recorded here (for the TUI's resume offer and cleanup)."""
        if not self.folder.is_dir():
            return []
        found = (_read(p) for p in sorted(self.folder.glob("*.jsonl")))
        return [e for e in found if e is not None]

    def start(self, entry: JournalEntry) -> JournalWriter:
        """Record a new upload (replacing any older record of the same transfer)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(entry.source, entry.bucket, entry.key)
        atomic_write(path, (json.dumps(entry.header()) + "\n").encode())
        return JournalWriter(path)

    def resume(self, entry: JournalEntry) -> JournalWriter:
        return JournalWriter(self._path(entry.source, entry.bucket, entry.key))

    def forget(self, source: str, bucket: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(source, bucket, key).unlink()


class JournalWriter:
    """Appends part and digest records to one transfer's journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._pending: list[bytes] = []

    def part_done(self, number: int, etag: str, checksum: str, *, sync: bool = True) -> None:
        self._append({"part": number, "etag": etag, "crc": checksum}, sync=sync)

    def digest_at(self, number: int, state: DigestState, *, sync: bool = True) -> None:
        self._append(
            {
                "digest_after": number,
                "position": state.position,
                "crc64": state.crc64nvme,
                "sha": state.sha256_state,
            },
            sync=sync,
        )

    def _append(self, record: dict[str, object], *, sync: bool) -> None:
        self._pending.append((json.dumps(record, separators=(",", ":")) + "\n").encode())
        if sync:
            self.flush()

    def flush(self) -> None:
        """Write and sync the records held back with ``sync=False``, in one write.

        Each synced append re-dirties the file's last page, which the kernel counts as a 4 KiB
        disk write: one append per part instead of two halves the journal's disk writes.
        """
        if self._pending:
            os.write(self._fd, b"".join(self._pending))
            self._pending.clear()
            os.fdatasync(self._fd) if hasattr(os, "fdatasync") else os.fsync(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.flush()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _read(path: Path) -> JournalEntry | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
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
