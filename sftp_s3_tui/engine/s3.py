"""S3 side: client factory, bucket/prefix listing, multipart primitives and error mapping."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    SSLError,
)

from .config import S3Endpoint
from .errors import BucketNotFound, S3AccessDenied, S3Error, TransferError

S3Client = Any  # aiobotocore's client is generated at run time

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
        return S3Error(f"{what}: cannot reach the S3 endpoint", "check --endpoint-url and network")
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
    return aioboto3.Session(**kwargs)


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
    # verify=None (not True) keeps verification on and lets botocore honour AWS_CA_BUNDLE.
    kwargs: dict[str, Any] = {"config": config, "verify": None if endpoint.verify_tls else False}
    if endpoint.endpoint_url:
        kwargs["endpoint_url"] = endpoint.endpoint_url
    if endpoint.region:
        kwargs["region_name"] = endpoint.region
    async with session.client("s3", **kwargs) as client:
        yield client


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
