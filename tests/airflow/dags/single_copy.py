"""A one-task DAG for the failure tests: the operator on explicit paths from the run's conf."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from sftp_s3_tui.airflow import StreamingSFTPToS3Operator

with DAG(
    dag_id="single_copy",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={"paths": [], "bucket": "", "key": ""},
) as dag:
    StreamingSFTPToS3Operator(
        task_id="copy",
        sftp_conn_id="sftp_default",
        sftp_paths="{{ params.paths }}",
        s3_bucket="{{ params.bucket }}",
        s3_key="{{ params.key }}",
        replace=True,
        retries=0,
    )
