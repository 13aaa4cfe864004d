"""OpenLineage datasets and facets of a copy, built from manifest rows.

This module imports the OpenLineage client (over a second of start-up): only
:mod:`.lineage` (once lineage is configured) and the Airflow operator import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.generated.base import DatasetFacet

from .lineage import DELIVERY

#: Where the custom facet's schema is described (the README section on lineage).
FILE_FACET_SCHEMA = (
    "https://github.com/abyssnlp/sftp-streaming-s3/blob/main/README.md#lineage-facets"
)
FILE_FACET_KEY = "sftpS3File"


@attr.define
class SftpS3FileDatasetFacet(DatasetFacet):
    """What the transfer knows of one file: its size and SHA-256, what the object was
    verified by, the object's ETag / VersionId, the SFTP host key, the readiness gate and
    what was done to the source afterwards."""

    size: int | None = attr.field(default=None)
    sha256: str | None = attr.field(default=None)
    verifiedBy: str | None = attr.field(default=None)  # OpenLineage fields are camelCase
    etag: str | None = attr.field(default=None)
    versionId: str | None = attr.field(default=None)
    hostKeyFingerprint: str | None = attr.field(default=None)
    readinessGate: str | None = attr.field(default=None)
    sourceAction: str | None = attr.field(default=None)
    status: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FILE_FACET_SCHEMA


def sftp_namespace(host: str, port: int | None) -> str:
    """OpenLineage's naming for a file on a server: ``sftp://host:port`` + the path."""
    return f"sftp://{host}:{port or 22}"


def file_facet(row: Mapping[str, Any], gate: str | None) -> SftpS3FileDatasetFacet:
    source = row.get("source") or {}
    return SftpS3FileDatasetFacet(
        size=row["size"] if "size" in row else source.get("size"),
        sha256=row.get("sha256"),
        verifiedBy=row.get("verified_by"),
        etag=row.get("etag"),
        versionId=row.get("version_id"),
        hostKeyFingerprint=row.get("host_key"),
        readinessGate=gate,
        sourceAction=row.get("source_action"),
        status=row.get("status"),
    )


def datasets(
    rows: Iterable[Mapping[str, Any]], gate: str | None = None
) -> tuple[list[InputDataset], list[OutputDataset]]:
    """Per landed file (rows with status ``done``), each with the file facet: input
    ``sftp://host:port`` + path and output ``s3://bucket`` + key — or, for a delivery row
    (``direction`` :data:`DELIVERY`, the SFTP side under ``target``), the reverse."""
    inputs: list[InputDataset] = []
    outputs: list[OutputDataset] = []
    for row in rows:
        if row.get("kind", "file") != "file" or row.get("status") != "done":
            continue
        delivery = row.get("direction") == DELIVERY
        remote = (row.get("target") if delivery else row.get("source")) or {}
        facet = file_facet(row, gate)
        file_side = (
            sftp_namespace(remote.get("host", ""), remote.get("port")),
            remote.get("path", ""),
        )
        object_side = (f"s3://{row.get('bucket')}", str(row.get("key")))
        read, written = (object_side, file_side) if delivery else (file_side, object_side)
        inputs.append(InputDataset(namespace=read[0], name=read[1], facets={FILE_FACET_KEY: facet}))
        outputs.append(
            OutputDataset(namespace=written[0], name=written[1], facets={FILE_FACET_KEY: facet})
        )
    return inputs, outputs
