"""One mapped task per file: ``task(list_sftp_files)`` feeding ``.expand(sftp_path=…)``."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

try:  # Airflow 3
    from airflow.sdk import task
except ImportError:  # Airflow 2
    from airflow.decorators import task  # type: ignore[no-redef]

from sftp_s3_tui.airflow import StreamingSFTPToS3Operator, list_sftp_files

with DAG(
    dag_id="per_file",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"source_dir": "/drop", "bucket": "", "push_gateway": ""},
) as dag:
    files = task(list_sftp_files, task_id="list_files")(
        sftp_conn_id="sftp_default", path="{{ params.source_dir }}", pattern="*.csv"
    )
    StreamingSFTPToS3Operator.partial(
        task_id="copy",
        s3_bucket="{{ params.bucket }}",
        s3_key="landing/",
        sftp_base_path="{{ params.source_dir }}",
        push_gateway="{{ params.push_gateway }}",
        retries=0,
    ).expand(sftp_path=files)
