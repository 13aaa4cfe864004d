"""After the upload: compare what S3 holds with what was read, and remove what does not match.

Each object is checked by the strongest comparison the store makes meaningful: its own
checksum of the bytes (only where the probe saw it refuse a wrong one, so the value is not
just our header echoed), else its ETag against the MD5 computed here (plain for one part,
MD5 of the parts' MD5s for multipart; not with SSE-KMS / SSE-C), else the size alone. The
result names it (``verified_by``), so nothing is called verified that was not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from secrets import token_hex
from typing import Any, NoReturn

from ..config import ChecksumChoice
from ..errors import StoreChecksumWrong, TransferError, VerificationFailed
from ..object_options import META_SHA256
from ..s3 import operations as s3
from ..s3.checksums import HEADER_NAME, KMS_VALUES, StoreCapabilities
from ..s3.operations import PreconditionFailed, S3Client

NOT_IF_MATCH = {"NotImplemented", "InvalidArgument", "InvalidRequest", "501"}
GONE = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class Expected:
    """What the object must look like, from what was read and sent."""

    size: int
    sha256: str
    algorithm: ChecksumChoice
    checksum: str | None  # the store's Checksum<ALG> for the object ("b64" or "b64-N")
    etag: str | None  # MD5 hex, or "hex-N" for multipart; None when not known here
    multipart: bool
    sha256_in_metadata: bool = False
    checksum_full: str | None = None  # the same as a FULL_OBJECT value, for stores that
    # answer a composite upload with the whole object's CRC (moto does)

    def checksum_kind(self, *, full_object: bool) -> str:
        """``crc64nvme-full-object`` / ``crc32c-composite``: what a checksum match proves."""
        return f"{self.algorithm.value}-{'full-object' if full_object else 'composite'}"


@dataclass(frozen=True)
class Published:
    """The object our request published: its ETag and version (to delete only ours)."""

    etag: str | None = None
    version_id: str | None = None

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Published:
        return cls(answer.get("ETag"), answer.get("VersionId"))

    @property
    def own_version(self) -> str | None:
        """A version id that names our object alone. ``null`` does not: an unversioned or
        versioning-suspended bucket gives it to every new object (moto answers Complete
        with it), so ``DELETE ?versionId=null`` removes whoever's object is current."""
        return self.version_id if self.version_id and self.version_id != "null" else None

    def is_not(self, head: dict[str, Any] | None) -> bool:
        """True when ``head`` (a HEAD of the key) shows another object than ours: its ETag is
        not the one our request was answered with (both known)."""
        theirs = _etag(head.get("ETag") if head else None)
        return bool(theirs and _etag(self.etag) and theirs != _etag(self.etag))


def _etag(value: object) -> str:
    return str(value).strip('"') if value else ""


async def verify_object(
    client: S3Client,
    bucket: str,
    key: str,
    expected: Expected,
    store: StoreCapabilities,
    published: Published,
    endpoint: str = "",
) -> str:
    """HEAD the object and compare; the ``verified_by`` name, or raise (the object removed)."""
    head = await s3.head_object(client, bucket, key)
    if head is None:
        raise VerificationFailed(
            f"s3://{bucket}/{key} is missing right after the upload",
            "another writer may have deleted it; transfer it again",
        )
    problems: list[str] = []
    verified_by = "size-only"
    if head.get("ContentLength") != expected.size:
        problems.append(f"size {head.get('ContentLength')} ≠ {expected.size}")
    stored = head.get("Metadata", {}).get(META_SHA256)
    if (stored is not None or expected.sha256_in_metadata) and stored != expected.sha256:
        problems.append(f"stored sha256 {stored} ≠ {expected.sha256}")
    etag = str(head.get("ETag", "")).strip('"')
    encrypted = head.get("ServerSideEncryption") in KMS_VALUES or "SSECustomerAlgorithm" in head
    # Only an ETag shaped like ours is an MD5 to compare; another shape (a store that makes
    # its own multipart ETags) proves nothing either way.
    md5_shaped = bool(re.fullmatch(r"[0-9a-f]{32}(-\d+)?", etag)) and (
        ("-" in etag) == ("-" in (expected.etag or ""))
    )
    if expected.etag and store.etag_is_md5 and not encrypted and md5_shaped:
        if etag != expected.etag:
            problems.append(f"S3's ETag {etag} ≠ the MD5 computed here {expected.etag}")
        else:
            verified_by = "md5-etag"
    name = HEADER_NAME.get(expected.algorithm)
    theirs = head.get(f"Checksum{name}") if name else None
    ours = expected.checksum
    wrong = ""
    if theirs and ours:
        # A composite upload may be answered without its "-N" suffix, or (some stores) with
        # the whole object's value: either is a function of the bytes, so either may match.
        kinds = {ours: "-" not in ours}
        if "-" in ours and "-" not in theirs:
            kinds = {ours.split("-")[0]: False}
            if expected.checksum_full:
                kinds[expected.checksum_full] = True
        if theirs not in kinds:
            wrong = f"S3's {name} {theirs} ≠ {ours}"
            problems.append(wrong)
        elif store.checksum_checked:
            verified_by = expected.checksum_kind(full_object=kinds[theirs])
    if problems and published.is_not(head):
        await _someone_elses(client, bucket, key, published, head)
    if problems == [wrong] and verified_by == "md5-etag":
        # The bytes are right (the ETag is their MD5) but the stored checksum is not: readers
        # that check it would refuse the object, so it goes, and the store's limit is named.
        outcome = await _delete_ours(client, bucket, key, published)
        raise StoreChecksumWrong(
            f"{endpoint or 's3'} computes {name} differently: its {name} of s3://{bucket}/{key} "
            f"is {theirs}, the bytes' is {ours} (their MD5 matches)",
            f"{outcome}; use --checksum md5 (or auto) with this store",
        )
    if problems:
        await reject(client, bucket, key, "; ".join(problems), published)
    return verified_by


async def reject(
    client: S3Client, bucket: str, key: str, problem: str, ours: Published
) -> NoReturn:
    """Remove the object our request published (only ours) and fail the transfer."""
    outcome = await _delete_ours(client, bucket, key, ours)
    raise VerificationFailed(
        f"s3://{bucket}/{key} does not match the source: {problem}", f"{outcome}; transfer it again"
    )


async def _someone_elses(
    client: S3Client, bucket: str, key: str, ours: Published, head: dict[str, Any]
) -> NoReturn:
    """The key holds another writer's object (it replaced ours after we published): theirs
    is never touched; our own version goes only where a real version id names it."""
    left = "it was left in place"
    if ours.own_version:
        try:
            await s3.delete_object(client, bucket, key, VersionId=ours.own_version)
            left += "; our version was removed"
        except TransferError as exc:
            left += f"; our version could not be removed ({exc.message})"
    raise VerificationFailed(
        f"s3://{bucket}/{key} now holds someone else's object (ETag {_etag(head.get('ETag'))}, "
        f"ours was {_etag(ours.etag)})",
        f"{left}; transfer it again once the other writer is done",
    )


async def _delete_ours(client: S3Client, bucket: str, key: str, ours: Published) -> str:
    """Delete the key only while it provably holds our object; what happened, for the hint.

    Proof is a real version id (ours alone), else a HEAD showing the ETag our request was
    answered with, followed by a DELETE with If-Match on that ETag where the store honours
    it (probed: a store that ignores it would delete anyone's object), else an unconditional
    DELETE right after the HEAD (a small race remains). Without proof the object stays.
    """
    try:
        if ours.own_version:
            await s3.delete_object(client, bucket, key, VersionId=ours.own_version)
            return "our version of the object was removed"
        if not ours.etag:
            return (
                "the object was left in place: it could not be proven ours "
                "(S3 named no ETag or version for it)"
            )
        head = await s3.head_object(client, bucket, key)
        if head is None:
            return "the object is already gone"
        if ours.is_not(head):
            return "the object was left in place: the key now holds another writer's object"
        honoured = await _honours_if_match(client, bucket, key)
        try:
            await s3.delete_object(
                client, bucket, key, **({"IfMatch": ours.etag} if honoured else {})
            )
        except PreconditionFailed:
            return "the object was left in place: the key now holds another writer's object"
        except TransferError as exc:
            if getattr(exc, "code", "") not in GONE:
                raise
            return "the object is already gone"
        if honoured:
            return "the object was removed"
        return "the object was removed (checked by HEAD first: the store ignores If-Match)"
    except TransferError as exc:
        return f"the object could not be removed ({exc.message})"


async def _honours_if_match(client: S3Client, bucket: str, key: str) -> bool:
    """Whether the store honours If-Match on DeleteObject: asked of a key that does not exist
    (beside ``key``, so the same rights cover it), with an ETag nothing has. A store that
    honours it answers 412 (SeaweedFS) or 404 NoSuchKey (moto); one that ignores it deletes
    "nothing" and answers 204 (found on moto 5 and SeaweedFS 4.48, 2026-12-06: both honour
    it, and keep the object on a wrong ETag)."""
    folder, _, _ = key.rpartition("/")
    probe = f"{folder}/" if folder else ""
    probe += f".sftp-s3-tui-if-match-probe-{token_hex(8)}"
    try:
        await s3.delete_object(client, bucket, probe, IfMatch=f'"{token_hex(16)}"')
    except PreconditionFailed:
        return True
    except TransferError as exc:
        if getattr(exc, "code", "") in GONE:
            return True
        if getattr(exc, "code", "") in NOT_IF_MATCH:
            return False
        raise
    return False


#: The probe, for the delivery's conditional delete of its source.
honours_if_match = _honours_if_match


async def tag_ours(
    client: S3Client,
    bucket: str,
    key: str,
    sha256: str,
    ours: Published,
    keep: tuple[tuple[str, str], ...] = (),
) -> None:
    """Tag the object our request published with its ``sha256`` (and the user's tags), never
    another writer's: a later run's compare policy would skip the file on their object.

    PutObjectTagging takes no If-Match (on AWS, SeaweedFS or moto), so the strongest proof
    is a real version id: the tag names our version, whatever is current (both stores tag a
    version exactly, probed 2026-12-07). Without one (an unversioned bucket: moto answers
    ``null``, SeaweedFS nothing) the key is tagged and then HEADed: our ETag still there
    proves the tag is on our object (an object put between would have to hold our bytes).
    Another ETag means the tag may be on theirs: our sha256 tag is taken off it and the
    transfer fails (the source stays); tags of theirs that our PutObjectTagging replaced
    cannot be restored (S3 keeps no history of them). A tag the store refuses is only a
    notice (raised as TransferError for the caller to word).
    """
    version = ours.own_version
    await s3.put_tag(
        client,
        bucket,
        key,
        META_SHA256,
        sha256,
        keep=keep,
        **({"VersionId": version} if version else {}),
    )
    if version or not ours.etag:
        return
    head = await s3.head_object(client, bucket, key)
    if head is not None and not ours.is_not(head):
        return
    if head is None:
        raise VerificationFailed(
            f"s3://{bucket}/{key} was deleted while its sha256 was being tagged",
            "another writer may have deleted it; transfer it again",
        )
    left = "it was left in place"
    tags = await s3.get_tags(client, bucket, key)
    if tags is not None and (META_SHA256, sha256) in tags:
        rest = [(k, v) for k, v in tags if (k, v) != (META_SHA256, sha256)]
        try:
            if rest:
                await s3.put_tags(client, bucket, key, rest)
            else:
                await s3.delete_tags(client, bucket, key)
            left += " and our sha256 tag taken off it"
        except TransferError as exc:
            left += f"; our sha256 tag could not be taken off it ({exc.message})"
    raise VerificationFailed(
        f"s3://{bucket}/{key} now holds someone else's object (ETag {_etag(head.get('ETag'))}, "
        f"ours was {_etag(ours.etag)})",
        f"{left}; transfer it again once the other writer is done",
    )
