"""One exact object delivered to a file path over an existing file (``replace=True``: an
atomic posix-rename), its object deleted afterwards, with healthchecks-style pings."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from sftp_s3_tui.airflow import StreamingS3ToSFTPOperator

with DAG(
    dag_id="delivery_options",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"key": "", "path": "", "hook_url": ""},
) as dag:
    StreamingS3ToSFTPOperator(
        task_id="deliver",
        s3_key="{{ params.key }}",  # s3://bucket/key
        sftp_path="{{ params.path }}",
        sftp_conn_id="sftp_default",
        aws_conn_id="aws_default",
        replace=True,
        delete_source=True,
        part_size="1MiB",
        parts_in_flight=3,
        hook_url="{{ params.hook_url }}",
        retries=0,
    )
