"""Metrics: one sampler for the screen and Prometheus."""

from sftp_s3_tui.metrics.prometheus import (
    MetricsExporter,
    SnapshotMetrics,
    default_instance,
    exporting,
    push_gateway_from_env,
)
from sftp_s3_tui.metrics.sampler import (
    PART_STATES,
    BufferPoolStats,
    Sampler,
    SftpLinkStats,
    Snapshot,
    TransferStats,
)

__all__ = [
    "PART_STATES",
    "BufferPoolStats",
    "MetricsExporter",
    "Sampler",
    "SftpLinkStats",
    "Snapshot",
    "SnapshotMetrics",
    "TransferStats",
    "default_instance",
    "exporting",
    "push_gateway_from_env",
]
