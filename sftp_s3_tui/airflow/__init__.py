"""Apache Airflow integration: ``StreamingSFTPToS3Operator``, ``StreamingS3ToSFTPOperator``
and ``list_sftp_files``.

Install with ``pip install 'sftp-s3-tui[airflow]'``. Importing this package does not import
Airflow; the operator and the listing helper load it on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connections import (
    conflict_policy_for,
    connection_fields,
    s3_endpoint_from_connection,
    sftp_endpoint_from_connection,
)

if TYPE_CHECKING:
    from .delivery_operator import StreamingS3ToSFTPOperator
    from .operators import StreamingSFTPToS3Operator, list_sftp_files

__all__ = [
    "StreamingS3ToSFTPOperator",
    "StreamingSFTPToS3Operator",
    "conflict_policy_for",
    "connection_fields",
    "list_sftp_files",
    "s3_endpoint_from_connection",
    "sftp_endpoint_from_connection",
]

_LAZY = {"StreamingSFTPToS3Operator", "list_sftp_files", "SUMMARY_XCOM_KEY"}


def __getattr__(name: str) -> Any:
    if name == "StreamingS3ToSFTPOperator":
        from . import delivery_operator

        return delivery_operator.StreamingS3ToSFTPOperator
    if name in _LAZY:
        from . import operators

        return getattr(operators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
