"""Example DAG: land a partner's SFTP drop folder in S3, many workers sharing the files.

One task lists the folder into batches; the streaming operator is mapped over them (one task
per batch), so the drop is spread over the workers; a last task reports what landed. Keys keep
the folder's layout under the prefix (``sftp_base_path``).

Connections (UI, secrets backend, or environment):
    AIRFLOW_CONN_SFTP_DEFAULT='{"conn_type": "sftp", "host": "sftp.partner.example",
        "port": 22, "login": "landing", "extra": {"key_file": "/secrets/id_ed25519",
        "known_hosts": "/secrets/known_hosts"}}'
    AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}'

Trigger with other parameters: ``airflow dags trigger sftp_drop_to_s3 --conf
'{"source_dir": "/drop/2026-11-25", "bucket": "landing", "prefix": "partner-a/"}'``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from airflow import DAG

try:  # Airflow 3
    from airflow.sdk import task
except ImportError:  # Airflow 2
    from airflow.decorators import task  # type: ignore[no-redef]

from sftp_s3_tui.airflow import StreamingSFTPToS3Operator, list_sftp_files

with DAG(
    dag_id="sftp_drop_to_s3",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["sftp-s3-tui"],
    params={
        "source_dir": "/drop",
        "pattern": "*",
        "bucket": "landing",
        "prefix": "partner-a/",
        "batch_size": 50,
    },
) as dag:

    @task
    def list_batches(params: dict[str, Any] | None = None) -> list[list[str]]:
        """The drop's files in batches of ``batch_size``: one mapped copy task per batch."""
        assert params is not None
        found = list_sftp_files(
            "sftp_default",
            params["source_dir"],
            params["pattern"],
            batch_size=int(params["batch_size"]),
        )
        return cast(list[list[str]], found)

    copies = StreamingSFTPToS3Operator.partial(
        task_id="copy",
        sftp_conn_id="sftp_default",
        s3_conn_id="aws_default",
        s3_bucket="{{ params.bucket }}",
        s3_key="{{ params.prefix }}",
        sftp_base_path="{{ params.source_dir }}",
        replace=True,
        part_size="8MiB",
        memory_budget="128MiB",
        parts_in_flight=4,
    ).expand(sftp_paths=list_batches())

    @task
    def report(summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """Totals over every batch, and each object's key and sha256."""
        objects = [o for s in summaries for o in s["objects"]]
        total = {
            "files": len(objects),
            "bytes": sum(s["bytes"] for s in summaries),
            "sha256": {o["key"]: o["sha256"] for o in objects},
        }
        print(f"landed {total['files']} file(s), {total['bytes']} bytes")
        return total

    report(copies.output)
