"""What the objects a copy creates carry: storage class, encryption (SSE-S3 / SSE-KMS), tags,
content type (guessed from the name unless given) and user metadata.

One frozen value, turned into the arguments of the requests that create an object
(PutObject, CreateMultipartUpload, the sha256 copy) by :meth:`ObjectOptions.create_args`.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from .errors import UsageError

#: The engine's own metadata (and tag) names: the upload writes them, the conflict check and
#: the verification read them back. Users cannot set them.
META_SHA256 = "sha256"
META_MTIME = "source-mtime"
RESERVED_METADATA = frozenset({META_SHA256, META_MTIME})
MAX_TAGS = 10  # S3's limit per object
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata (keys + values)
SSE_NAMES = {
    "aes256": "AES256",
    "s3": "AES256",
    "sse-s3": "AES256",
    "aws:kms": "aws:kms",
    "kms": "aws:kms",
    "sse-kms": "aws:kms",
    "aws:kms:dsse": "aws:kms:dsse",
}
_STORAGE_CLASS = re.compile(r"^[A-Z][A-Z_]*$")
_META_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def parse_pairs(items: Iterable[str], what: str) -> tuple[tuple[str, str], ...]:
    """``["team=data", "src=partner"]`` → pairs; one clear line for a malformed item."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {item!r} is not KEY=VALUE", f"e.g. {what} team=data")
        pairs.append((key.strip(), value))
    return tuple(pairs)


def parse_sse(text: str | None) -> str | None:
    """``AES256``/``s3`` → ``AES256``; ``aws:kms``/``kms`` → ``aws:kms``."""
    if not text:
        return None
    try:
        return SSE_NAMES[text.strip().lower()]
    except KeyError as exc:
        raise UsageError(
            f"Unknown server-side encryption {text!r}", "use AES256 (SSE-S3) or aws:kms (SSE-KMS)"
        ) from exc


@dataclass(frozen=True)
class ObjectOptions:
    """Options of every object a copy writes (all optional).

    ``content_type``: ``None`` guesses from the file name (``application/octet-stream``
    when unknown), ``""`` sends none (the store's default).
    """

    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.storage_class is not None and not _STORAGE_CLASS.match(self.storage_class):
            raise UsageError(
                f"Not a storage class: {self.storage_class!r}",
                "e.g. STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR",
            )
        if self.sse is not None and self.sse not in SSE_NAMES.values():
            raise UsageError(f"Unknown server-side encryption {self.sse!r}", "AES256 or aws:kms")
        if self.sse_kms_key_id and not (self.sse or "").startswith("aws:kms"):
            raise UsageError(
                "--sse-kms-key-id needs SSE-KMS", "add --sse aws:kms (or leave the key id out)"
            )
        if len(self.tags) + 1 > MAX_TAGS:  # the engine adds its sha256 tag
            raise UsageError(
                f"{len(self.tags)} tags: S3 allows {MAX_TAGS} per object, one is the sha256",
                f"give at most {MAX_TAGS - 1} --tag",
            )
        for key, value in self.tags:
            if key == META_SHA256 or len(key) > 128 or len(value) > 256:
                raise UsageError(
                    f"Tag {key!r} cannot be used",
                    "tag keys are ≤ 128 characters (not 'sha256'), values ≤ 256",
                )
        size = 0
        for key, value in self.metadata:
            if not _META_KEY.match(key) or key.lower() in RESERVED_METADATA:
                raise UsageError(
                    f"Metadata key {key!r} cannot be used",
                    "letters, digits, - _ . (and not sha256 or source-mtime)",
                )
            if not value.isascii():
                raise UsageError(f"Metadata {key}={value!r} is not ASCII", "S3 metadata is ASCII")
            size += len(key) + len(value)
        if size > MAX_METADATA_BYTES:
            raise UsageError(f"Metadata is {size} bytes", f"S3 allows {MAX_METADATA_BYTES}")

    @classmethod
    def build(
        cls,
        *,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        tags: Iterable[str] | Mapping[str, str] = (),
        content_type: str | None = None,
        metadata: Iterable[str] | Mapping[str, str] = (),
    ) -> ObjectOptions:
        """From the fronts' strings (``KEY=VALUE`` lists or mappings)."""

        def pairs(
            value: Iterable[str] | Mapping[str, str], what: str
        ) -> tuple[tuple[str, str], ...]:
            if isinstance(value, Mapping):
                return tuple((str(k), str(v)) for k, v in value.items())
            return parse_pairs(value, what)

        kms = sse_kms_key_id or None
        return cls(
            storage_class=storage_class.upper() if storage_class else None,
            sse=parse_sse(sse) or ("aws:kms" if kms else None),
            sse_kms_key_id=kms,
            tags=pairs(tags, "--tag"),
            content_type=content_type,
            metadata=pairs(metadata, "--metadata"),
        )

    def content_type_for(self, key: str) -> str | None:
        if self.content_type is not None:
            return self.content_type or None
        guessed, _ = mimetypes.guess_type(key, strict=False)
        return guessed or "application/octet-stream"

    def tagging(self, extra: Mapping[str, str] | None = None) -> str:
        """The URL-encoded ``Tagging`` header value (user tags plus ``extra``)."""
        items = list(self.tags) + list((extra or {}).items())
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in items)

    def create_args(
        self, key: str, *, engine_metadata: Mapping[str, str] | None = None
    ) -> dict[str, object]:
        """Arguments for PutObject / CreateMultipartUpload / CopyObject creating ``key``."""
        args: dict[str, object] = {}
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        content_type = self.content_type_for(key)
        if content_type:
            args["ContentType"] = content_type
        metadata = dict(self.metadata)
        metadata.update(engine_metadata or {})
        if metadata:
            args["Metadata"] = metadata
        if self.tags:
            args["Tagging"] = self.tagging()
        return args
