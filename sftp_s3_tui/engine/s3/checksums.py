"""Which checksums a store honours, and the checksums each part and object carries.

Stores differ where the engine is strict: which ``x-amz-checksum-*`` algorithms they accept,
whether they check them or only store what they are sent, whether they echo them, and whether
their ETag is an MD5. One probe per store and bucket (a throw-away multipart upload of a few
bytes, aborted) finds out before the first part of the session is sent; every transfer then
reuses the record.

The probe sends, for a candidate algorithm: a correct part (refused → the store rejects the
header; no echo → it ignores it; another value → it computes something else), then a part with
a wrong checksum (accepted → the store does not check it) and one with a wrong Content-MD5
(accepted → it does not check MD5 either).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import zlib
from dataclasses import dataclass, field, replace

from awscrt import checksums as crt

from ..aio import run_to_end
from ..config import ChecksumChoice
from ..errors import S3AccessDenied, TransferError, UsageError
from . import operations as s3
from .operations import S3Client

log = logging.getLogger(__name__)

AUTO_ORDER = (ChecksumChoice.CRC64NVME, ChecksumChoice.CRC32C, ChecksumChoice.CRC32)
# x-amz-checksum-* name of each algorithm (botocore's ChecksumAlgorithm values)
HEADER_NAME = {
    ChecksumChoice.CRC64NVME: "CRC64NVME",
    ChecksumChoice.CRC32C: "CRC32C",
    ChecksumChoice.CRC32: "CRC32",
    ChecksumChoice.SHA256: "SHA256",
}
FULL_OBJECT = {ChecksumChoice.CRC64NVME}  # the others are COMPOSITE on a multipart object
#: Where a store proved it checks one of these (it refused a wrong value), parts and objects
#: go without Content-MD5: the 64-bit CRC every part carries, checked by the store, and the
#: whole object's CRC64NVME checked at Complete and compared after it, replace it (AWS treats
#: x-amz-checksum-* as Content-MD5's successor). MD5 costs more CPU than everything else the
#: engine hashes together.
REPLACES_MD5 = {ChecksumChoice.CRC64NVME}
KMS_VALUES = {"aws:kms", "aws:kms:dsse"}
PROBE_BODY = b"sftp-s3-tui checksum probe"
TRANSIENT_CODES = {"", "InternalError", "SlowDown", "ServiceUnavailable", "500", "503"}


def _raw(value: int, width: int) -> bytes:
    return value.to_bytes(width, "big")


def checksum_of(algorithm: ChecksumChoice, data: memoryview | bytes) -> bytes:
    """The raw digest S3 computes for ``algorithm`` (big-endian CRCs, SHA-256 bytes)."""
    if algorithm is ChecksumChoice.CRC64NVME:
        return _raw(crt.crc64nvme(data), 8)
    if algorithm is ChecksumChoice.CRC32C:
        return _raw(crt.crc32c(data), 4)
    if algorithm is ChecksumChoice.CRC32:
        return _raw(zlib.crc32(data), 4)
    if algorithm is ChecksumChoice.SHA256:
        return hashlib.sha256(data).digest()
    raise ValueError(f"{algorithm} has no x-amz-checksum header")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class PartSums:
    """What one part (or a single-part object) is sent with: Content-MD5 and the checksum."""

    md5: bytes | None  # raw 16 bytes; None when not sent (``none``; a store checking CRC64NVME)
    checksum: bytes | None  # raw digest in the upload's algorithm; None for md5 / none
    # what SigV4 signs as the body's hash on http:// endpoints: its hex SHA-256, or
    # UNSIGNED-PAYLOAD for a store that ignores it (StoreCapabilities.payload_signed)
    payload_sha256: str | None = None

    @property
    def md5_hex(self) -> str:
        return self.md5.hex() if self.md5 else ""

    @property
    def checksum_b64(self) -> str:
        """The part's checksum as the journal keeps it ('' when the algorithm has none)."""
        if self.checksum is not None:
            return b64(self.checksum)
        return b64(self.md5) if self.md5 is not None else ""


def part_sums(
    algorithm: ChecksumChoice,
    data: memoryview | bytes,
    *,
    md5: bool = True,
    payload_sha256: bool | str = False,
) -> PartSums:
    """Hash one part for ``algorithm`` (thread-safe; OpenSSL and awscrt release the GIL).

    ``md5=False`` leaves Content-MD5 out (a store that checks CRC64NVME, see
    :data:`REPLACES_MD5`; ``md5`` and ``none`` uploads ignore it). ``payload_sha256``: True
    also computes the body's SHA-256 that SigV4 signs on a plain-http endpoint, here in the
    caller's worker thread instead of by botocore on the event loop; a string is signed in
    its place (``UNSIGNED-PAYLOAD``, see :func:`operations.body_signature`).
    """
    if payload_sha256 is True:
        sha: str | None = hashlib.sha256(data).hexdigest()
    else:
        sha = payload_sha256 or None
    if algorithm is ChecksumChoice.NONE:
        return PartSums(None, None, sha)
    if algorithm is ChecksumChoice.MD5:
        md5 = True
    digest = hashlib.md5(data, usedforsecurity=False).digest() if md5 else None
    checksum = checksum_of(algorithm, data) if algorithm in HEADER_NAME else None
    return PartSums(digest, checksum, sha)


def request_fields(algorithm: ChecksumChoice, sums: PartSums) -> dict[str, str]:
    """botocore parameters that send ``sums`` with a PutObject or UploadPart."""
    fields: dict[str, str] = {}
    if sums.md5 is not None:
        fields["ContentMD5"] = b64(sums.md5)
    name = HEADER_NAME.get(algorithm)
    if name is not None and sums.checksum is not None:
        fields["ChecksumAlgorithm"] = name
        fields[f"Checksum{name}"] = b64(sums.checksum)
    return fields


def composite(algorithm: ChecksumChoice, part_checksums: list[bytes]) -> str:
    """A COMPOSITE multipart checksum: the checksum of the parts' checksums, ``-N``."""
    return f"{b64(checksum_of(algorithm, b''.join(part_checksums)))}-{len(part_checksums)}"


def combined_crc(
    algorithm: ChecksumChoice, part_checksums: list[bytes], part_size: int, size: int
) -> str | None:
    """The FULL_OBJECT CRC of the whole object from its parts' CRCs (None for SHA-256)."""
    combine = {
        ChecksumChoice.CRC32: crt.combine_crc32,
        ChecksumChoice.CRC32C: crt.combine_crc32c,
        ChecksumChoice.CRC64NVME: crt.combine_crc64nvme,
    }.get(algorithm)
    if combine is None:
        return None
    width = 8 if algorithm is ChecksumChoice.CRC64NVME else 4
    whole = 0
    for number, raw in enumerate(part_checksums):
        length = min(part_size, size - number * part_size)
        whole = combine(whole, int.from_bytes(raw, "big"), length)
    return b64(_raw(whole, width))


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' MD5s, ``-N``."""
    joined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{joined}-{len(part_md5s)}"


def etag_md5(etag: str) -> bytes | None:
    """The MD5 an ETag holds (None when it is not a plain MD5, e.g. SSE-KMS or multipart)."""
    value = etag.strip('"')
    if len(value) != 32:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class StoreCapabilities:
    """What the probe found for one store and bucket (shown in the TUI's connection details).

    ``algorithm`` is what every part carries. ``checksum_checked``: the store refused a wrong
    value of it, so a stored checksum proves the bytes. ``md5_checked``: it refused a wrong
    Content-MD5. ``etag_is_md5``: part ETags are the MD5 of the part (not with SSE-KMS/SSE-C).
    ``payload_signed``: on a plain-http endpoint, SigV4 signs each body's SHA-256 — kept
    unless the probe found that the store stores a body whose signed SHA-256 is wrong and
    takes ``UNSIGNED-PAYLOAD``: then the hash protects nothing and costs ~0.5 CPU s per GiB
    (the checksum, Content-MD5 and ETag checks still prove the bytes). Over https botocore
    and the CRT send ``UNSIGNED-PAYLOAD`` with the checksum header anyway.
    """

    endpoint: str
    bucket: str
    requested: ChecksumChoice
    algorithm: ChecksumChoice
    checksum_checked: bool = False
    md5_checked: bool = False
    etag_is_md5: bool = True
    findings: tuple[str, ...] = ()  # one line per thing learnt ("CRC64NVME: refused (…)")
    payload_signed: bool = True

    def summary(self) -> str:
        """One line for people: what is sent and what the store checks."""
        checks = []
        if self.algorithm in HEADER_NAME:
            name = HEADER_NAME[self.algorithm]
            checks.append(f"{name} {'checked' if self.checksum_checked else 'not checked'}")
        if self.algorithm is not ChecksumChoice.NONE:
            checks.append(f"Content-MD5 {'checked' if self.md5_checked else 'not checked'}")
            checks.append("ETag is MD5" if self.etag_is_md5 else "ETag is not an MD5")
        if not self.sends_md5 and self.algorithm is not ChecksumChoice.NONE:
            checks.append("no Content-MD5 sent: the store checks the CRC64NVME")
        if not self.payload_signed:
            checks.append("payload SHA-256 not checked: bodies go UNSIGNED-PAYLOAD")
        return f"{self.endpoint} / {self.bucket}: checksum {self.algorithm} ({', '.join(checks)})"

    @property
    def sends_md5(self) -> bool:
        """Whether parts and PutObjects carry Content-MD5: always, unless the store proved it
        checks a checksum that replaces it (:data:`REPLACES_MD5`)."""
        if self.algorithm is ChecksumChoice.NONE:
            return False
        return not (self.checksum_checked and self.algorithm in REPLACES_MD5)


@dataclass
class StoreProbes:
    """The capability records of a session, one per (endpoint, bucket, requested choice)."""

    records: dict[tuple[str, str, ChecksumChoice], StoreCapabilities] = field(default_factory=dict)
    _locks: dict[tuple[str, str, ChecksumChoice], asyncio.Lock] = field(default_factory=dict)

    def known(self) -> list[StoreCapabilities]:
        return list(self.records.values())

    async def capabilities(
        self,
        client: S3Client,
        endpoint: str,
        bucket: str,
        key: str,
        requested: ChecksumChoice,
        *,
        encrypted: bool = False,
    ) -> tuple[StoreCapabilities, bool]:
        """The store's record, probing it (once; concurrent callers wait) the first time.

        Returns the record and whether this call probed (so the caller can tell the user).
        """
        index = (endpoint, bucket, requested)
        found = self.records.get(index)
        if found is not None:
            return found, False
        lock = self._locks.setdefault(index, asyncio.Lock())
        async with lock:
            found = self.records.get(index)
            if found is not None:
                return found, False
            record = await probe(client, endpoint, bucket, key, requested, encrypted=encrypted)
            self.records[index] = record
            return record, True

    def downgrade(self, record: StoreCapabilities, finding: str) -> StoreCapabilities:
        """``auto`` learnt only from a completed object that the store computes
        ``record.algorithm`` wrongly: MD5 alone from now on (the next CRC might be wrong too,
        and each lesson costs a file sent again)."""
        replaced = replace(
            record,
            algorithm=ChecksumChoice.MD5,
            checksum_checked=False,
            findings=(*record.findings, finding),
        )
        self.records[(record.endpoint, record.bucket, record.requested)] = replaced
        return replaced


SESSION_PROBES = StoreProbes()  # the process's records: the TUI, the CLI and Airflow reuse them


async def probe(
    client: S3Client,
    endpoint: str,
    bucket: str,
    key: str,
    requested: ChecksumChoice,
    *,
    encrypted: bool = False,
) -> StoreCapabilities:
    """Find the strongest of ``requested`` the store honours (see the module docstring).

    The probe uses a multipart upload at ``key`` that is always aborted, so nothing is
    published. A store that refuses every candidate leaves MD5 (``auto``) or fails with one
    line naming the flag that works around it (an explicit choice).
    """
    if requested is ChecksumChoice.NONE:
        return StoreCapabilities(endpoint, bucket, requested, requested, etag_is_md5=False)
    candidates = AUTO_ORDER if requested is ChecksumChoice.AUTO else (requested,)
    findings: list[str] = []
    for algorithm in candidates:
        result = await _try(client, bucket, key, algorithm, encrypted=encrypted)
        findings.append(result.finding)
        log.info("probe %s/%s: %s", endpoint, bucket, result.finding)
        if result.usable:
            return StoreCapabilities(
                endpoint,
                bucket,
                requested,
                algorithm,
                result.checksum_checked,
                result.md5_checked,
                result.etag_is_md5,
                tuple(findings),
                result.payload_signed,
            )
        if requested is not ChecksumChoice.AUTO:
            name = HEADER_NAME.get(algorithm, str(algorithm))
            raise UsageError(
                f"{endpoint} cannot take {name} checksums: {result.finding}",
                "use --checksum auto (or md5) for this store",
            )
    md5 = await _try(client, bucket, key, ChecksumChoice.MD5, encrypted=encrypted)
    findings.append(md5.finding)
    return StoreCapabilities(
        endpoint,
        bucket,
        requested,
        ChecksumChoice.MD5,
        False,
        md5.md5_checked,
        md5.etag_is_md5,
        tuple(findings),
        md5.payload_signed,
    )


@dataclass(frozen=True)
class _Trial:
    usable: bool
    finding: str
    checksum_checked: bool = False
    md5_checked: bool = False
    etag_is_md5: bool = False
    payload_signed: bool = True


#: A SHA-256 no probe body has: signed as the body's, a store that checks it refuses the part.
WRONG_PAYLOAD_SHA256 = "0" * 64


async def _try(
    client: S3Client, bucket: str, key: str, algorithm: ChecksumChoice, *, encrypted: bool
) -> _Trial:
    """One candidate: a throw-away upload with a good part, a bad checksum and a bad MD5.
    It runs to its end (the upload aborted) even if the transfer is cancelled meanwhile: a
    cancel while CreateMultipartUpload is on the wire would leave an upload open in S3."""
    return await run_to_end(_trial(client, bucket, key, algorithm, encrypted=encrypted))


async def _trial(
    client: S3Client, bucket: str, key: str, algorithm: ChecksumChoice, *, encrypted: bool
) -> _Trial:
    name = HEADER_NAME.get(algorithm, "MD5")
    params: dict[str, str] = {}
    if algorithm in HEADER_NAME:
        params["ChecksumAlgorithm"] = name
        if algorithm in FULL_OBJECT:
            params["ChecksumType"] = "FULL_OBJECT"
    try:
        upload_id = await s3.create_upload(client, bucket, key, **params)
    except TransferError as exc:
        if algorithm is ChecksumChoice.MD5 or _transient(exc):
            raise
        return _Trial(False, f"{name}: CreateMultipartUpload refused it ({_reason(exc)})")
    try:
        trial = await _parts(client, bucket, key, upload_id, algorithm, encrypted)
    finally:
        try:
            await s3.abort_upload(client, bucket, key, upload_id)
            left_open = ""
        except TransferError as exc:
            log.warning("could not abort the probe upload %s: %s", upload_id, exc)
            left_open = f"; its probe upload {upload_id} could not be aborted ({_reason(exc)})"
    return replace(trial, finding=trial.finding + left_open) if left_open else trial


async def _parts(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    algorithm: ChecksumChoice,
    encrypted: bool,
) -> _Trial:
    name = HEADER_NAME.get(algorithm, "MD5")
    sums = part_sums(algorithm, PROBE_BODY)
    body = bytearray(PROBE_BODY)
    try:
        answer = await s3.upload_part(
            client, bucket, key, upload_id, 1, body, **request_fields(algorithm, sums)
        )
    except TransferError as exc:
        if algorithm is ChecksumChoice.MD5 or _transient(exc):
            raise
        return _Trial(False, f"{name}: the store refused the header ({_reason(exc)})")
    sse = answer.get("ServerSideEncryption") in KMS_VALUES or "SSECustomerAlgorithm" in answer
    etag_is_md5 = not (encrypted or sse) and etag_md5(str(answer.get("ETag", ""))) == sums.md5
    if algorithm in HEADER_NAME:
        assert sums.checksum is not None
        echoed = answer.get(f"Checksum{name}")
        if echoed is None:
            return _Trial(False, f"{name}: the store ignores it (no checksum in its answer)")
        if echoed != b64(sums.checksum):
            return _Trial(
                False, f"{name}: the store answers {echoed}, not {b64(sums.checksum)} (disagrees)"
            )
    checksum_checked = False
    if algorithm in HEADER_NAME:
        assert sums.checksum is not None
        wrong = bytes(len(sums.checksum))
        bad = {**request_fields(algorithm, sums), f"Checksum{name}": b64(wrong)}
        checksum_checked = await _refused(client, bucket, key, upload_id, body, bad)
    md5_wrong = {**request_fields(algorithm, sums), "ContentMD5": b64(bytes(16))}
    md5_checked = await _refused(client, bucket, key, upload_id, body, md5_wrong)
    checked = [f"{name} checked" if checksum_checked else f"{name} not checked"]
    if algorithm is not ChecksumChoice.MD5:
        checked.append("Content-MD5 checked" if md5_checked else "Content-MD5 not checked")
    checked.append("ETag is MD5" if etag_is_md5 else "ETag is not an MD5")
    payload_signed = True
    if s3.signs_payload(client):  # plain http: is the signed body SHA-256 worth its cost?
        good = request_fields(algorithm, sums)
        if await _refused(
            client, bucket, key, upload_id, body, good, payload_sha256=WRONG_PAYLOAD_SHA256
        ):
            checked.append("payload SHA-256 checked")
        elif await _refused(
            client, bucket, key, upload_id, body, good, payload_sha256=s3.UNSIGNED_PAYLOAD
        ):
            checked.append("payload SHA-256 not checked, UNSIGNED-PAYLOAD refused")
        else:
            payload_signed = False
            checked.append("payload SHA-256 not checked")
    return _Trial(
        True,
        f"{name}: accepted ({', '.join(checked)})",
        checksum_checked,
        md5_checked,
        etag_is_md5,
        payload_signed,
    )


async def _refused(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    body: bytearray,
    fields: dict[str, str],
    *,
    payload_sha256: str | None = None,
) -> bool:
    """Whether the store refuses a part sent with a wrong value in ``fields`` (or signed
    with ``payload_sha256`` as its body's SHA-256)."""
    try:
        await s3.upload_part(
            client, bucket, key, upload_id, 2, body, payload_sha256=payload_sha256, **fields
        )
    except TransferError as exc:
        if _transient(exc):
            raise
        return True
    return False


def _transient(exc: TransferError) -> bool:
    """An error that says nothing about the checksum: access, a server error, the network."""
    return isinstance(exc, S3AccessDenied) or getattr(exc, "code", "") in TRANSIENT_CODES


def _reason(exc: TransferError) -> str:
    """The store's error code and message, without our own "Doing X:" prefix."""
    return exc.message.split(": ", 1)[-1]
