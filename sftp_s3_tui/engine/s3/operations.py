"""S3 side: client factory, bucket/prefix listing, multipart primitives and error mapping.

Every S3 request the engine makes goes through a function here, so each maps botocore's
errors to one user-facing :class:`TransferError` the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import hashlib
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aioboto3
import aiobotocore.session
import aiohttp.payload
import botocore.auth
import botocore.loaders
import botocore.utils
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    SSLError,
)
from botocore.handlers import set_operation_specific_signer

from ..config import S3Endpoint
from ..errors import BucketNotFound, S3AccessDenied, S3Error, TransferError
from .crt_data_plane import CrtDataPlane, open_plane

S3Client = Any  # aiobotocore's client is generated at run time

#: (Content-Length, hex SHA-256) of the body the current task is about to send, when the
#: engine hashed it already (:func:`upload_part`, :func:`put_object` with ``payload_sha256``).
_PAYLOAD_SHA256: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "payload_sha256", default=None
)
KNOWN_PAYLOAD_SIGNER = "s3v4-sftp-s3-tui-known-payload"
#: As ``payload_sha256``: SigV4 signs no body hash (a store whose probe showed it ignores it).
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@contextlib.contextmanager
def _sending(body: bytearray, payload_sha256: str | None) -> Iterator[None]:
    """Within: the signer takes ``payload_sha256`` as ``body``'s SHA-256 (if given)."""
    token = _PAYLOAD_SHA256.set((str(len(body)), payload_sha256) if payload_sha256 else None)
    try:
        yield
    finally:
        _PAYLOAD_SHA256.reset(token)


def _known_payload(request: Any) -> str | None:
    """The precomputed SHA-256 of ``request``'s body, if this task set one for its length."""
    known = _PAYLOAD_SHA256.get()
    if known is None or request.headers.get("Content-Length") != known[0]:
        return None
    return known[1]


def _known_payload_signer(base: type) -> type:
    """botocore's S3 SigV4 signer (``base``: its CRT or pure-Python one), taking the body's
    SHA-256 the engine computed in a worker thread instead of hashing the body on the event
    loop. On a plain-http endpoint SigV4 signs every body's SHA-256; the signature and what
    the store checks are the same (a wrong value is refused as XAmzContentSHA256Mismatch)."""

    class KnownPayloadAuth(base):  # type: ignore[misc, valid-type]
        def _should_sha256_sign_payload(self, request: Any) -> bool:
            if _known_payload(request) is not None:
                return True
            return bool(super()._should_sha256_sign_payload(request))

        def _get_existing_sha256(self, request: Any) -> str | None:  # the CRT signer
            return _known_payload(request) or super()._get_existing_sha256(request)

        def _crt_request_from_aws_request(self, aws_request: Any) -> Any:
            if _known_payload(aws_request) is None:
                return super()._crt_request_from_aws_request(aws_request)
            # botocore's request without its body (it would copy it, and need not read it)
            import awscrt.http

            url = urlsplit(aws_request.url)
            path = url.path or "/"
            if aws_request.params:
                path += "?" + "&".join(f"{k}={v}" for k, v in aws_request.params.items())
            elif url.query:
                path += f"?{url.query}"
            headers = awscrt.http.HttpHeaders(aws_request.headers.items())
            return awscrt.http.HttpRequest(method=aws_request.method, path=path, headers=headers)

        def payload(self, request: Any) -> str:  # the pure-Python signer
            return _known_payload(request) or str(super().payload(request))

    return KnownPayloadAuth


botocore.auth.AUTH_TYPE_MAPS.setdefault(
    KNOWN_PAYLOAD_SIGNER, _known_payload_signer(botocore.auth.AUTH_TYPE_MAPS["s3v4"])
)


def _choose_known_payload_signer(
    context: dict[str, Any], signing_name: str, signature_version: Any, **_: Any
) -> str | None:
    """Sign with :data:`KNOWN_PAYLOAD_SIGNER` where botocore would use plain SigV4 for S3
    (its own choice, asked first; None lets botocore's handlers decide as usual)."""
    chosen = set_operation_specific_signer(context=context, signing_name=signing_name)
    return KNOWN_PAYLOAD_SIGNER if (chosen or signature_version) == "s3v4" else None


#: Slices a part body is written in: each goes to the socket as a view of the pool buffer and
#: the writer waits for the socket between them, so asyncio (Python 3.11) copies at most the
#: unsent rest of one slice into its own buffer.
BODY_SLICE = 1 << 20


class BufferBody(aiohttp.payload.Payload):
    """A request body sent straight from a pool buffer, without the copies aiohttp's bytes
    payload makes on Python < 3.12.9 (a slice of the whole body, then headers + body joined
    into one new bytes: two 8 MiB copies per part, and the RSS for them).

    It is also the file-like object botocore expects of a streaming body (``read``, ``seek``,
    ``tell``), so a retry rewinds it and a signer that must hash it can."""

    def __init__(self, buffer: bytearray) -> None:
        super().__init__(buffer, size=len(buffer), content_type="application/octet-stream")
        self.buffer = buffer
        self._length = len(buffer)
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = self._length if size is None or size < 0 else min(self._length, self._position + size)
        data = bytes(memoryview(self.buffer)[self._position : end])
        self._position = end
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._length}[whence]
        self._position = max(0, min(self._length, base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    def __len__(self) -> int:
        return self._length

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.buffer.decode(encoding, errors)

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        end = self._length if content_length is None else min(self._length, content_length)
        view = memoryview(self.buffer)
        try:
            await writer.write(b"")  # the headers alone: not joined with (copied into) the body
            for start in range(0, end, BODY_SLICE):
                await writer.write(view[start : min(start + BODY_SLICE, end)])
        finally:
            view.release()


def _no_expect_continue(request: Any, **_: Any) -> None:
    """botocore asks for ``Expect: 100-continue`` on every file-like body, and aiohttp then
    waits for the store's 100 before sending it: a round trip per part to a far store. A
    :class:`BufferBody` is sent as a bytes body would be, at once."""
    if isinstance(request.body, BufferBody) and "Expect" in request.headers:
        del request.headers["Expect"]


def signs_payload(client: S3Client) -> bool:
    """Whether SigV4 signs each body's SHA-256 for ``client`` (botocore does on http://; on
    https:// with a checksum header it sends UNSIGNED-PAYLOAD)."""
    return not str(client.meta.endpoint_url).startswith("https:")


def body_signature(client: S3Client, payload_signed: bool) -> bool | str:
    """What each body is signed with on ``client`` (``part_sums``' ``payload_sha256``) for a
    store whose probe says ``payload_signed``: over https nothing of ours (False: botocore
    sends UNSIGNED-PAYLOAD with the checksum header); on http the body's SHA-256, computed
    in a worker thread (True), unless the store ignores it: then ``UNSIGNED-PAYLOAD``, so
    botocore does not hash the body on the event loop either."""
    if not signs_payload(client):
        return False
    return True if payload_signed else UNSIGNED_PAYLOAD


_ACCESS_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "403",
}


@dataclass(frozen=True, slots=True)
class S3Entry:
    """A common prefix (folder) or an object under a listed prefix."""

    name: str
    key: str
    size: int = 0
    is_prefix: bool = False
    modified: float = 0.0  # an object's LastModified, seconds since the epoch


class PreconditionFailed(S3Error):
    """A conditional write found the key already taken (skip-existing lost the race)."""

    title = "Key exists"
    retryable = False


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def map_s3_error(exc: BaseException, what: str) -> TransferError:
    """Turn a botocore error while doing ``what`` into a user-facing error."""
    error = _map_s3_error(exc, what)
    if isinstance(exc, ClientError) and isinstance(error, S3Error):
        error.code = error_code(exc)
    return error


def _map_s3_error(exc: BaseException, what: str) -> TransferError:
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        if code in ("NoSuchBucket",):
            return BucketNotFound(
                f"{what}: the bucket does not exist", "create it or choose another bucket"
            )
        if code in _ACCESS_CODES:
            return S3AccessDenied(
                f"{what}: access denied ({code})",
                "check the AWS credentials (profile, keys, expiry) and the bucket policy",
            )
        if code in ("PreconditionFailed", "412"):
            return PreconditionFailed(f"{what}: the key already exists", "")
        return S3Error(f"{what}: {code}: {message}", "S3 refused the request")
    if isinstance(exc, NoCredentialsError):
        return S3AccessDenied(
            f"{what}: no AWS credentials found",
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, SSLError):
        return S3Error(
            f"{what}: the endpoint's TLS certificate is not trusted ({exc})",
            "set AWS_CA_BUNDLE to its CA certificate, or pass --no-verify-tls (unsafe)",
        )
    if isinstance(exc, EndpointConnectionError):
        return S3Error(
            f"{what}: cannot reach the S3 endpoint",
            "check {setting} and network",
            setting="endpoint_url",
        )
    if isinstance(exc, BotoCoreError | OSError):
        return S3Error(f"{what}: {exc}", "the S3 endpoint may be unreachable")
    return S3Error(f"{what}: {exc}", "")


def session_for(endpoint: S3Endpoint) -> aioboto3.Session:
    """An aioboto3 session: explicit keys or profile, else the standard AWS chain."""
    kwargs: dict[str, str] = {}
    if endpoint.profile:
        kwargs["profile_name"] = endpoint.profile
    if endpoint.access_key_id and endpoint.secret_access_key:
        kwargs["aws_access_key_id"] = endpoint.access_key_id
        kwargs["aws_secret_access_key"] = endpoint.secret_access_key
        if endpoint.session_token:
            kwargs["aws_session_token"] = endpoint.session_token
    if endpoint.region:
        kwargs["region_name"] = endpoint.region
    botocore_session = aiobotocore.session.get_session()
    loader = _data_loader()
    botocore_session.register_component("data_loader", loader)
    parsers = botocore_session.get_component("response_parser_factory")
    parsers.set_parser_defaults(timestamp_parser=_timestamp)
    session = aioboto3.Session(botocore_session=botocore_session, **kwargs)
    # boto3 appends its data folder to the loader's search paths for each new session
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


def _timestamp(value: str) -> datetime:
    """A response's timestamp: ISO 8601 (a listing's LastModified) by ``datetime``, anything
    else (HTTP dates in headers, epoch seconds) by botocore's own parser. dateutil, which
    botocore's parser uses, was ~2 % of a delivery of 2,000 small objects (py-spy), all of
    it reading the listing's dates."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return botocore.utils.parse_timestamp(value)


@functools.cache
def _data_loader() -> botocore.loaders.Loader:
    """One botocore data loader for every session: its cache keeps S3's models after the
    first client (or :func:`warm_up`), and a new session's client skips ~0.1 s of JSON."""
    loader: botocore.loaders.Loader = aiobotocore.session.get_session().get_component("data_loader")
    return loader


def warm_up() -> None:
    """Read what creating an S3 client reads (S3's service model, its endpoint rules, the
    partitions): in a thread while the SSH logins run, so the event loop, which is carrying
    the logins' round trips, is not held up by it when the client is created."""
    loader = _data_loader()
    loader.load_data("sdk-default-configuration")
    loader.load_service_model("s3", "service-2")
    loader.load_service_model("s3", "endpoint-rule-set-1")
    loader.load_data("partitions")
    loader.load_data_with_path("endpoints")


@contextlib.asynccontextmanager
async def open_client(endpoint: S3Endpoint, *, connections: int = 32) -> AsyncIterator[S3Client]:
    """An S3 client with standard retries and a connection pool sized for the uploads."""
    config = AioConfig(
        retries={"mode": "standard", "max_attempts": endpoint.max_attempts},
        max_pool_connections=connections,
        connect_timeout=endpoint.connect_timeout_seconds,
        read_timeout=endpoint.read_timeout_seconds,
        s3={"addressing_style": "path" if endpoint.path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = session_for(endpoint)
    kwargs: dict[str, Any] = {"config": config, "verify": _verify(endpoint)}
    if endpoint.endpoint_url:
        kwargs["endpoint_url"] = endpoint.endpoint_url
    if endpoint.region:
        kwargs["region_name"] = endpoint.region
    async with session.client("s3", **kwargs) as client:
        _resolve_endpoints_per_bucket(client)
        client.meta.events.register("before-sign.s3.PutObjectTagging", _md5_instead_of_crc)
        for operation in ("UploadPart", "PutObject"):
            client.meta.events.register(
                f"choose-signer.s3.{operation}", _choose_known_payload_signer
            )
            client.meta.events.register(f"before-sign.s3.{operation}", _no_expect_continue)
        client._sftp_s3_crt_plane = open_plane(client, endpoint, connections)
        yield client


def _plane(client: S3Client) -> CrtDataPlane | None:
    """The client's CRT data plane for PutObject/UploadPart, when selected (crt_data_plane)."""
    plane: CrtDataPlane | None = getattr(client, "_sftp_s3_crt_plane", None)
    return plane


def _verify(endpoint: S3Endpoint) -> bool | None:
    """botocore's ``verify``: None (not True) keeps verification on and honours AWS_CA_BUNDLE.

    A plain ``http://`` endpoint has no TLS to verify: False there spares each client's
    connector loading the CA bundle on the event loop (~60 ms per client here).
    """
    if not endpoint.verify_tls:
        return False
    url = (endpoint.endpoint_url or "").lower()
    return False if url.startswith("http://") else None


def _resolve_endpoints_per_bucket(client: S3Client) -> None:
    """Let botocore's endpoint cache hit for every object of a bucket.

    S3's endpoint rule set declares ``Key``, ``Prefix`` and ``CopySource`` parameters that no
    rule reads, and they are part of the cache's key: each new key re-evaluated the whole
    rule set, ~0.5 ms of the event loop's CPU per request (botocore issue 3528, fixed the
    same way by dropping them in botocore PR 3692; aiobotocore has its own copy of that
    code). Parameters a rule does reference are kept, so a rule set that starts using one
    is still honoured. Does nothing when botocore's internals differ.
    """
    resolver = getattr(client, "_ruleset_resolver", None)
    definitions = getattr(resolver, "_param_definitions", None)
    loader = getattr(client, "_loader", None)
    if not isinstance(definitions, dict) or loader is None:
        return
    try:
        rules = loader.load_service_model("s3", "endpoint-rule-set-1")["rules"]
    except Exception:  # an optimisation only: keep botocore as it is
        return
    referenced = _references(rules)
    unread = {"Key", "Prefix", "CopySource"} - referenced
    if unread & definitions.keys():
        resolver._param_definitions = {  # type: ignore[union-attr]
            name: definition for name, definition in definitions.items() if name not in unread
        }


def _references(rules: Any) -> set[str]:
    """The parameter names an endpoint rule tree reads (its ``{"ref": name}`` nodes and
    ``{name}`` templates)."""
    found: set[str] = set()
    stack = [rules]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and "{" in node:
            found.update(re.findall(r"\{([A-Za-z]+)[}#]", node))
    return found


def _md5_instead_of_crc(request: Any, **_: Any) -> None:
    """PutObjectTagging must carry a checksum; botocore adds CRC32, which stores that refuse
    x-amz-checksum-* reject. Content-MD5 is the one every store takes."""
    headers = request.headers
    for name in [h for h in headers if h.lower().startswith(("x-amz-checksum-", "x-amz-sdk-c"))]:
        del headers[name]
    body = request.body if isinstance(request.body, bytes) else b""
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    headers["Content-MD5"] = base64.b64encode(digest).decode()


async def list_buckets(client: S3Client) -> list[str]:
    try:
        response = await client.list_buckets()
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, "Listing buckets") from exc
    return sorted(b["Name"] for b in response.get("Buckets", []))


async def list_prefix(
    client: S3Client, bucket: str, prefix: str = "", *, limit: int = 5000
) -> list[S3Entry]:
    """Folders (common prefixes) and objects directly under ``prefix``."""
    entries: list[S3Entry] = []
    paginator = client.get_paginator("list_objects_v2")
    try:
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                key = common["Prefix"]
                entries.append(S3Entry(key[len(prefix) :], key, is_prefix=True))
            for obj in page.get("Contents", []):
                if obj["Key"] != prefix:
                    name, modified = obj["Key"][len(prefix) :], obj["LastModified"].timestamp()
                    entries.append(S3Entry(name, obj["Key"], obj["Size"], modified=modified))
            if len(entries) >= limit:
                break
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Listing s3://{bucket}/{prefix}") from exc
    return entries


async def head_object(client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """HEAD an object with its checksum; None when it does not exist."""
    try:
        return await client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise map_s3_error(exc, f"Checking s3://{bucket}/{key}") from exc
    except BotoCoreError as exc:
        raise map_s3_error(exc, f"Checking s3://{bucket}/{key}") from exc


async def check_bucket(client: S3Client, bucket: str) -> None:
    """Fail early, with a clear message, when the bucket is missing or not ours to write."""
    try:
        await client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            raise BucketNotFound(
                f"The bucket {bucket!r} does not exist", "create it or choose another bucket"
            ) from exc
        raise map_s3_error(exc, f"Opening bucket {bucket!r}") from exc
    except BotoCoreError as exc:
        raise map_s3_error(exc, f"Opening bucket {bucket!r}") from exc


async def abort_upload(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload; an upload that is already gone is fine."""
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if error_code(exc) not in ("NoSuchUpload", "404"):
            raise map_s3_error(exc, f"Aborting the upload of s3://{bucket}/{key}") from exc
    except BotoCoreError as exc:
        raise map_s3_error(exc, f"Aborting the upload of s3://{bucket}/{key}") from exc


async def list_uploaded_parts(
    client: S3Client, bucket: str, key: str, upload_id: str
) -> dict[int, str] | None:
    """Part number → ETag of an upload in progress; None when the upload is gone."""
    parts: dict[int, str] = {}
    paginator = client.get_paginator("list_parts")
    try:
        async for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                parts[part["PartNumber"]] = part["ETag"]
    except ClientError as exc:
        if error_code(exc) in ("NoSuchUpload", "404"):
            return None
        raise map_s3_error(exc, f"Listing parts of s3://{bucket}/{key}") from exc
    return parts


@contextlib.asynccontextmanager
async def deadline(seconds: float, what: str) -> AsyncIterator[None]:
    """Bound one request; a stalled S3 becomes a retryable :class:`S3Error`."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise S3Error(f"{what}: S3 did not answer within {seconds:.0f} s", "S3 stalled") from exc


async def put_object(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytearray,
    *,
    payload_sha256: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """PutObject of one in-memory body; ``params`` are the request's other fields.
    ``payload_sha256``: the body's hex SHA-256, if already computed (SigV4 on http)."""
    what = f"Writing s3://{bucket}/{key}"
    plane = _plane(client)
    try:
        if plane is not None:
            crt_answer = await plane.send(
                "PutObject", bucket, key, body, payload_sha256, what, **params
            )
            if crt_answer is not None:
                return crt_answer
        with _sending(body, payload_sha256):
            response: dict[str, Any] = await client.put_object(
                Bucket=bucket, Key=key, Body=BufferBody(body), ContentLength=len(body), **params
            )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, what) from exc
    return response


async def create_upload(client: S3Client, bucket: str, key: str, **params: Any) -> str:
    """CreateMultipartUpload; returns the upload id."""
    try:
        response = await client.create_multipart_upload(Bucket=bucket, Key=key, **params)
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Starting the upload of s3://{bucket}/{key}") from exc
    return str(response["UploadId"])


async def upload_part(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    body: bytearray,
    *,
    payload_sha256: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """UploadPart straight from ``body`` (a pool buffer sized exactly, so no copy).
    ``payload_sha256``: the body's hex SHA-256, if already computed (SigV4 on http)."""
    what = f"Uploading part {number} of s3://{bucket}/{key}"
    plane = _plane(client)
    try:
        if plane is not None:
            query = f"?partNumber={number}&uploadId={quote(upload_id, safe='')}"
            crt_answer = await plane.send(
                "UploadPart", bucket, key, body, payload_sha256, what, query, **params
            )
            if crt_answer is not None:
                return crt_answer
        with _sending(body, payload_sha256):
            response: dict[str, Any] = await client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=BufferBody(body),
                ContentLength=len(body),
                **params,
            )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, what) from exc
    return response


async def complete_upload(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    parts: list[dict[str, Any]],
    **params: Any,
) -> dict[str, Any]:
    """CompleteMultipartUpload; a lost conditional write raises :class:`PreconditionFailed`."""
    try:
        response: dict[str, Any] = await client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **params,
        )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Completing s3://{bucket}/{key}") from exc
    return response


async def copy_part(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    byte_range: str,
    **params: Any,
) -> str:
    """UploadPartCopy of a range of the object onto itself; returns the part's ETag.
    ``params`` may carry a condition on the source (CopySourceIfMatch)."""
    try:
        response = await client.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": bucket, "Key": key},
            CopySourceRange=byte_range,
            **params,
        )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Copying part {number} of s3://{bucket}/{key}") from exc
    return str(response["CopyPartResult"]["ETag"])


async def copy_object_onto_itself(
    client: S3Client, bucket: str, key: str, **params: Any
) -> dict[str, Any]:
    """CopyObject of a key onto itself (to replace its metadata); the answer. ``params`` may
    carry a condition on the source (CopySourceIfMatch: a lost one raises
    :class:`PreconditionFailed`)."""
    try:
        answer: dict[str, Any] = await client.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key}, **params
        )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Copying s3://{bucket}/{key} onto itself") from exc
    return answer


async def get_tags(client: S3Client, bucket: str, key: str) -> list[tuple[str, str]] | None:
    """The object's tags; None when they cannot be read (or there is no object)."""
    try:
        tags = await client.get_object_tagging(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError):
        return None
    return [(str(t["Key"]), str(t["Value"])) for t in tags.get("TagSet", [])]


async def put_tags(
    client: S3Client, bucket: str, key: str, tags: Sequence[tuple[str, str]], **params: Any
) -> None:
    """PutObjectTagging: the object's whole tag set becomes ``tags``; ``params`` may name
    the version (VersionId) to tag."""
    tag_set = [{"Key": k, "Value": v} for k, v in tags]
    try:
        await client.put_object_tagging(
            Bucket=bucket, Key=key, Tagging={"TagSet": tag_set}, **params
        )
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Tagging s3://{bucket}/{key}") from exc


async def delete_tags(client: S3Client, bucket: str, key: str) -> None:
    """DeleteObjectTagging (an empty PutObjectTagging is refused by some stores)."""
    try:
        await client.delete_object_tagging(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Removing the tags of s3://{bucket}/{key}") from exc


async def put_tag(
    client: S3Client,
    bucket: str,
    key: str,
    name: str,
    value: str,
    *,
    keep: Sequence[tuple[str, str]] = (),
    **params: Any,
) -> None:
    """Set the object's tags to ``name=value`` plus ``keep`` (the user's tags: a
    PutObjectTagging replaces the whole set); ``params`` may name the version to tag."""
    tags = [(k, v) for k, v in keep if k != name] + [(name, value)]
    await put_tags(client, bucket, key, tags, **params)


async def delete_object(client: S3Client, bucket: str, key: str, **params: Any) -> None:
    """DeleteObject; ``params`` may carry a condition (IfMatch) or a VersionId."""
    try:
        await client.delete_object(Bucket=bucket, Key=key, **params)
    except (ClientError, BotoCoreError) as exc:
        raise map_s3_error(exc, f"Deleting s3://{bucket}/{key}") from exc


async def get_small_object(client: S3Client, bucket: str, key: str) -> bytes | None:
    """The whole body of a small object (a resume record); None when there is none."""
    try:
        response = await client.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise map_s3_error(exc, f"Reading s3://{bucket}/{key}") from exc
    except BotoCoreError as exc:
        raise map_s3_error(exc, f"Reading s3://{bucket}/{key}") from exc
    return data
