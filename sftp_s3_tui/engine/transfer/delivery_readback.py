"""``--verify-readback``: the temporary file read back over SFTP before it is published, its
SHA-256 compared with that of the bytes read from S3; ``--verify-server-hash``: the same
comparison with the SHA-256 the server computes itself (``check-file-handle``).

The other checks compare what was *read from S3* with the store's checksum and the size the
server reports; neither sees a byte the server or its disk changed on the way in. This is a
second pass over the link (the whole file comes back), so it is asked for, never implied.

The bytes read from S3 may come from several GETs at once, and a SHA-256 cannot be combined,
so :class:`~.delivery_stream.Digest` keeps one per GET's range (a resumed prefix's range
first); the file is read back once, in order, and each range's SHA-256 compared with its own.
The server's hash is asked of the whole file only (see :func:`check_server_hash`), so for it
the digest keeps one SHA-256 in byte order instead, the object read by one GET.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

from ..config import MiB
from ..errors import VerificationFailed
from ..s3.reader import ObjectInfo
from ..sftp.writer import RemoteWriter
from .buffers import BufferPool
from .delivery_stream import HASH_OFF_LOOP

#: The read back's chunk at most (two are held at once: one read ahead while one is hashed).
READ_BACK_CHUNK = 8 * MiB

#: The read back as a row and the progress block name it (``TransferChecking.check``).
READING_BACK = "reading back"

#: The hint of every read-back failure.
HINT = "nothing was left at the final name; run the copy again"


async def check_read_back(
    writer: RemoteWriter,
    info: ObjectInfo,
    ranges: list[tuple[int, int, bytes]],
    buffers: BufferPool,
    part_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Read ``writer.temp_path`` back and compare each ``(begin, end, sha256)`` range of
    the bytes read from S3 with it; :class:`VerificationFailed` naming the first range that
    differs (or where the file ended early). ``on_progress`` hears the bytes read back so
    far: 0 first, then after each chunk (a long read back is seen moving, not hanging)."""
    path = writer.temp_path
    chunk = min(READ_BACK_CHUNK, max(1, part_size // 2))  # two fit where a part does
    held = await buffers.acquire(2 * chunk)  # the budget counts the chunks read back
    try:
        if on_progress is not None:
            on_progress(0)
        offset = await _compare(writer, path, info.size, ranges, chunk, on_progress)
    finally:
        buffers.release(held)
    if offset < info.size:
        raise VerificationFailed(
            f"Read back over SFTP, {path} ends at byte {offset:,}; {info.url} has "
            f"{info.size:,} bytes",
            HINT,
        )


async def _compare(
    writer: RemoteWriter,
    path: str,
    size: int,
    ranges: list[tuple[int, int, bytes]],
    chunk: int,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Feed the file's bytes to each range's SHA-256 in order, comparing each as it ends
    (``on_progress``: the bytes compared so far, after each chunk); how many bytes were
    read back."""
    index = 0
    hasher = hashlib.sha256()
    offset = 0
    async for data in writer.read_back(path, size, chunk, ahead=True):
        view = memoryview(data)
        while view:
            begin, end, expected = ranges[index]
            piece, view = view[: end - offset], view[end - offset :]
            if len(piece) >= HASH_OFF_LOOP:
                await asyncio.to_thread(hasher.update, piece)
            else:
                hasher.update(piece)
            offset += len(piece)
            if offset == end:
                if hasher.digest() != expected:
                    raise VerificationFailed(
                        f"Read back over SFTP, bytes {begin:,}–{end:,} of {path} differ from "
                        f"the bytes read from S3 (SHA-256 {hasher.hexdigest()[:16]}…, "
                        f"expected {expected.hex()[:16]}…)",
                        HINT,
                    )
                index += 1
                hasher = hashlib.sha256()
        if on_progress is not None:
            on_progress(offset)
    return offset


async def check_server_hash(writer: RemoteWriter, size: int, whole: Any) -> tuple[bool, str]:
    """``--verify-server-hash``: the server hashes the temporary file itself (SHA-256 by
    ``check-file-handle``), compared with ``whole``, the SHA-256 of the bytes read from S3 in
    order; ``(True, "")`` when it matched, ``(False, why not)`` when the server could not
    hash it, :class:`VerificationFailed` when it differs. Nothing crosses the link but the
    hash (``size``: the file's, for how long the server may take).

    Only the whole file is asked for (offset 0, length 0: to the end). ProFTPD 1.3.8 hashes
    other bytes than asked for a range with a length that ends inside the file (seen here
    for a range of 1 MiB + 3 bytes; whole files and ranges to the end come back right)."""
    if size == 0:
        return False, ""  # an empty file: nothing to hash (ProFTPD refuses offset 0 of 0)
    path = writer.temp_path
    theirs, why = await writer.server_sha256(path, size)
    if why:
        return False, why
    expected: bytes = whole.digest()
    if theirs != expected:
        raise VerificationFailed(
            f"The server's SHA-256 of {path} differs from the bytes read from S3 "
            f"({theirs.hex()[:16]}…, expected {expected.hex()[:16]}…)",
            HINT,
        )
    return True, ""
