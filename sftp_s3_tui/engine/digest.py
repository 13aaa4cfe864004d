"""Whole-stream digests computed in byte order: SHA-256 and the CRC64NVME S3 verifies.

The SHA-256 state can be saved at part boundaries and restored after a crash, so a resumed
transfer need not re-read what it already uploaded. That uses OpenSSL's SHA256_* functions
(the library behind ``hashlib``) through ctypes; where they are not available the digest
still works but cannot be saved, and a resume re-reads the uploaded prefix to hash it.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
from dataclasses import dataclass

from awscrt import checksums

_CTX_SIZE = 128  # sizeof(SHA256_CTX) is 112; room to spare


def _load_openssl() -> ctypes.CDLL | None:
    try:
        import _hashlib

        lib = ctypes.CDLL(_hashlib.__file__)
        for name in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
            getattr(lib, name)
    except (ImportError, OSError, AttributeError):
        return None
    lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.SHA256_Init.argtypes = [ctypes.c_void_p]
    lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return lib


_OPENSSL = _load_openssl()


def b64(value: int, width: int) -> str:
    """Base64 of a big-endian integer, as S3 writes checksums."""
    return base64.b64encode(value.to_bytes(width, "big")).decode()


def crc64nvme(data: memoryview | bytes, previous: int = 0) -> int:
    return checksums.crc64nvme(data, previous)


def crc32(data: memoryview | bytes, previous: int = 0) -> int:
    return checksums.crc32(data, previous)


def crc32c(data: memoryview | bytes, previous: int = 0) -> int:
    return checksums.crc32c(data, previous)


def crc64nvme_combine(first: int, second: int, second_length: int) -> int:
    """The CRC64NVME of two blocks end to end, from each block's own CRC (no re-read)."""
    return checksums.combine_crc64nvme(first, second, second_length)


@dataclass(frozen=True)
class DigestState:
    """A saved point in the stream: bytes hashed so far and the digests' states."""

    position: int
    crc64nvme: int
    sha256_state: str  # base64 of the raw SHA256_CTX


class StreamDigest:
    """SHA-256 and CRC64NVME of a byte stream fed in order."""

    def __init__(self, state: DigestState | None = None) -> None:
        self.position = 0
        self.crc64nvme = 0
        self._ctx: ctypes.Array[ctypes.c_char] | None = None
        self._hashlib = None
        if _OPENSSL is not None:
            self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
            if state is None:
                _OPENSSL.SHA256_Init(self._ctx)
            else:
                raw = base64.b64decode(state.sha256_state)
                ctypes.memmove(self._ctx, raw, len(raw))
                self.position = state.position
                self.crc64nvme = state.crc64nvme
        else:
            if state is not None:
                raise ValueError("digest state cannot be restored without OpenSSL")
            self._hashlib = hashlib.sha256()

    def update(self, data: memoryview) -> None:
        """Feed the next bytes (a writable buffer's view); releases the GIL for the hash."""
        self.crc64nvme = checksums.crc64nvme(data, self.crc64nvme)
        if self._ctx is not None and _OPENSSL is not None:
            if len(data):
                pointer = ctypes.addressof(ctypes.c_char.from_buffer(data))
                _OPENSSL.SHA256_Update(self._ctx, pointer, len(data))
        elif self._hashlib is not None:
            self._hashlib.update(data)
        self.position += len(data)

    def save(self) -> DigestState | None:
        if self._ctx is None:
            return None
        raw = self._ctx.raw
        return DigestState(self.position, self.crc64nvme, base64.b64encode(raw).decode())

    def sha256_hex(self) -> str:
        if self._ctx is not None and _OPENSSL is not None:
            ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
            out = ctypes.create_string_buffer(32)
            _OPENSSL.SHA256_Final(out, ctx)
            return out.raw.hex()
        assert self._hashlib is not None
        return self._hashlib.hexdigest()

    def crc64nvme_b64(self) -> str:
        return b64(self.crc64nvme, 8)
