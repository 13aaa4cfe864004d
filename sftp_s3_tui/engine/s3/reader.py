"""Reading objects for delivery: what an object is (size, ETag, stored checksum, mtime),
the objects under a prefix, and ranged GETs straight into a pool buffer.

Every ranged GET carries ``If-Match: <ETag>``, so an object replaced while it is being
delivered fails the delivery (412) instead of mixing the bytes of two versions.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import S3Error, SourceChanged, SourceNotFound, TransferError
from .checksums import etag_md5
from .operations import S3Client, _plane, error_code, map_s3_error

#: Bytes asked of the response stream at a time while filling a buffer.
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One S3 object as HEAD describes it: what a delivery reads and checks against."""

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: float  # seconds since the epoch
    version_id: str | None = None
    crc64nvme: str | None = None  # base64, the full-object CRC64NVME the store holds
    single_part_md5: bytes | None = None  # the ETag's MD5, when the ETag is one
    #: base64 full-object CRC32C / CRC32 the store holds (a composite one, ``…-N``, is not
    #: kept: it is a checksum of the parts' checksums)
    crc32c: str | None = None
    crc32: str | None = None

    @property
    def ordered_check(self) -> str:
        """The check that needs the bytes in one order, when no CRC64NVME (which combines
        over segments) is stored: the fastest the store holds — ``crc32c``, ``crc32`` (C,
        several GB/s), else the ETag's ``md5`` — or ``""`` (no CRC64NVME check needed)."""
        if self.crc64nvme:
            return ""
        if self.crc32c:
            return "crc32c"
        if self.crc32:
            return "crc32"
        return "md5" if self.single_part_md5 is not None else ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def object_info(bucket: str, key: str, head: dict[str, Any]) -> ObjectInfo:
    """An :class:`ObjectInfo` from a HEAD answer (``ChecksumMode=ENABLED``).

    The ETag is an MD5 of the bytes only for a single-part object stored without SSE-KMS or
    SSE-C (those make the ETag opaque); a multipart ETag ends in ``-N``.
    """
    etag = str(head.get("ETag", ""))
    encrypted = head.get("ServerSideEncryption") == "aws:kms" or head.get("SSECustomerAlgorithm")
    md5 = None if encrypted else etag_md5(etag)
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=int(head.get("ContentLength", 0)),
        etag=etag,
        last_modified=head["LastModified"].timestamp(),
        version_id=head.get("VersionId") or None,
        crc64nvme=head.get("ChecksumCRC64NVME") or None,
        single_part_md5=md5,
        crc32c=_full_object(head.get("ChecksumCRC32C")),
        crc32=_full_object(head.get("ChecksumCRC32")),
    )


def _full_object(value: Any) -> str | None:
    """A stored checksum of the whole object's bytes; None for none or a composite one."""
    text = str(value or "")
    return text if text and "-" not in text else None


def listed_info(bucket: str, key: str, etag: str, size: int, mtime: float) -> ObjectInfo:
    """What a listing already says of an object (no HEAD): its checksum and encryption are
    not known yet, so the ETag's MD5 stands in until :func:`open_object`'s answer tells
    (an SSE-KMS ETag looks like an MD5 too; the answer then withdraws it)."""
    return ObjectInfo(bucket, key, size, etag, mtime, single_part_md5=etag_md5(etag))


async def describe_object(client: S3Client, bucket: str, key: str) -> ObjectInfo:
    """HEAD one object with its checksum; :class:`SourceNotFound` when it is not there."""
    what = f"Reading s3://{bucket}/{key}"
    try:
        head = await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise SourceNotFound(f"s3://{bucket}/{key} does not exist", "check the key") from exc
        raise map_s3_error(exc, what) from exc
    except BotoCoreError as exc:
        raise map_s3_error(exc, what) from exc
    return object_info(bucket, key, head)


async def list_objects(client: S3Client, bucket: str, prefix: str) -> AsyncIterator[str]:
    """Every key under ``prefix`` (all depths), as the listing pages arrive."""
    paginator = client.get_paginator("list_objects_v2")
    try:
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield str(entry["Key"])
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Listing s3://{bucket}/{prefix}") from exc


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One entry of a listing: what filters look at before anything is read."""

    key: str
    size: int
    mtime: float  # LastModified, seconds since the epoch
    etag: str = ""  # what a watch tells one version of the key from another by


async def list_object_entries(
    client: S3Client, bucket: str, prefix: str
) -> AsyncIterator[ListedObject]:
    """Every object under ``prefix`` (all depths) with its size and LastModified."""
    paginator = client.get_paginator("list_objects_v2")
    try:
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield ListedObject(
                    str(entry["Key"]),
                    int(entry.get("Size", 0)),
                    entry["LastModified"].timestamp() if "LastModified" in entry else 0.0,
                    str(entry.get("ETag", "")),
                )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Listing s3://{bucket}/{prefix}") from exc


class RangeBody:
    """The body of one ranged GET, read into buffers one after another.

    One GET can fill many part buffers: a store answers each GET's first byte only after a
    round trip (and moto copies the whole object for every ranged GET), so a stream reads
    a long range once and hands out its parts as they arrive.
    """

    def __init__(
        self,
        info: ObjectInfo,
        offset: int,
        length: int,
        body: Any,
        described: ObjectInfo | None = None,
    ) -> None:
        self.info = info
        #: What a whole-object GET's answer says the object is (see :func:`open_object`).
        self.described = described
        self.position = offset  # the object offset of the next byte
        self.end = offset + length
        self._body = body  # aiobotocore's StreamingBody: read(n) gives at most n

    async def fill(self, view: memoryview) -> None:
        """The next ``len(view)`` bytes of the range into ``view``; a short body is an
        error, never padding. The body is copied as it arrives, one network chunk held."""
        what = f"Reading {self.info.url}"
        filled = 0
        try:
            while filled < len(view):
                chunk = await self._body.read(min(_READ_CHUNK, len(view) - filled))
                if not chunk:
                    break
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        except aiohttp.ClientPayloadError as exc:  # the body cut short (a reset, a proxy)
            raise S3Error(
                f"{what}: the connection to the store dropped at offset {self.position + filled}",
                "nothing was left at the final name; run the copy again",
            ) from exc
        except (BotoCoreError, OSError, aiohttp.ClientError) as exc:
            raise map_s3_error(exc, what) from exc
        if filled != len(view):
            raise S3Error(
                f"{what}: the store sent {filled} of {len(view)} bytes at offset {self.position}",
                "the connection may have dropped; run the copy again",
            )
        self.position += filled


class WholeBody(RangeBody):
    """A whole object of one buffer, fetched by the CRT data plane straight into the buffer
    :meth:`fill` is given; ``described`` is known once it is filled."""

    def __init__(self, client: S3Client, info: ObjectInfo) -> None:
        super().__init__(info, 0, info.size, None)
        self._client = client

    async def fill(self, view: memoryview) -> None:
        info, plane = self.info, _plane(self._client)
        assert plane is not None and len(view) == info.size
        what = f"Reading {info.url}"
        params = _get_params(info, {"IfMatch": info.etag, "ChecksumMode": "ENABLED"})
        try:
            answer = await plane.get_into(info.bucket, info.key, view, what, **params)
        except ClientError as exc:
            raise _get_error(exc, info) from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, what) from exc
        if answer is None:  # the bucket's route is botocore's after all
            async with _get(self._client, info, params) as answer:
                await RangeBody(info, 0, info.size, answer["Body"]).fill(view)
        self.described = object_info(info.bucket, info.key, answer)
        self.position = self.end


@contextlib.asynccontextmanager
async def open_object(
    client: S3Client, info: ObjectInfo, *, one_buffer: bool = False
) -> AsyncIterator[RangeBody]:
    """The whole object in one GET (If-Match the listed ETag, with its checksum): its
    answer describes the object as a HEAD would, so a one-part object costs one request.

    S3 returns a stored checksum only for a GET of the whole object, never of a range;
    the answer's headers are those of HEAD, so :func:`object_info` reads them alike.
    ``one_buffer``: the object is read into one buffer, so the CRT data plane (when it takes
    GetObject) can fetch it at :meth:`RangeBody.fill`; ``described`` is set then."""
    plane = _plane(client)
    if one_buffer and plane is not None and plane.takes("GetObject"):
        yield WholeBody(client, info)
        return
    async with _get(client, info, {"IfMatch": info.etag, "ChecksumMode": "ENABLED"}) as answer:
        described = object_info(info.bucket, info.key, answer)
        if described.size != info.size:  # the same ETag: never, unless the store errs
            raise SourceChanged(
                f"{info.url} has {described.size} bytes, its listing said {info.size}",
                "nothing was left at the final name; run the copy again",
            )
        yield RangeBody(info, 0, described.size, answer["Body"], described)


@contextlib.asynccontextmanager
async def open_range(
    client: S3Client, info: ObjectInfo, offset: int, length: int
) -> AsyncIterator[RangeBody]:
    """One ranged GET (If-Match the ETag, the version if known) of ``length`` bytes from
    ``offset``; its body is closed on leaving, read to the end or not."""
    end = offset + length - 1
    params: dict[str, Any] = {"Range": f"bytes={offset}-{end}", "IfMatch": info.etag}
    async with _get(client, info, params) as answer:
        yield RangeBody(info, offset, length, answer["Body"])


@contextlib.asynccontextmanager
async def _get(
    client: S3Client, info: ObjectInfo, params: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """One GET's answer (the version if known); its body is closed on leaving, read to the
    end or not. A changed ETag is :class:`SourceChanged`."""
    what = f"Reading {info.url}"
    try:
        response = await client.get_object(
            Bucket=info.bucket, Key=info.key, **_get_params(info, params)
        )
    except ClientError as exc:
        raise _get_error(exc, info) from exc
    except (BotoCoreError, OSError, aiohttp.ClientError) as exc:
        raise map_s3_error(exc, what) from exc
    try:
        yield response
    finally:
        response["Body"].close()


def _get_params(info: ObjectInfo, params: dict[str, Any]) -> dict[str, Any]:
    """A GET's parameters with the version read, when known."""
    return {**params, "VersionId": info.version_id} if info.version_id else params


def _get_error(exc: ClientError, info: ObjectInfo) -> TransferError:
    """A GET's error: a changed ETag (412) is :class:`SourceChanged`."""
    if error_code(exc) in ("PreconditionFailed", "412"):
        return SourceChanged(
            f"{info.url} changed while it was being delivered",
            "nothing was left at the final name; run the copy again",
        )
    return map_s3_error(exc, f"Reading {info.url}")
