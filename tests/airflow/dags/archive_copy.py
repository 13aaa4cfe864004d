"""A one-task DAG that archives what it copies: the operator with ``move_to`` from the conf."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from sftp_s3_tui.airflow import StreamingSFTPToS3Operator

with DAG(
    dag_id="archive_copy",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={"paths": [], "bucket": "", "key": "", "move_to": ""},
) as dag:
    StreamingSFTPToS3Operator(
        task_id="copy",
        sftp_conn_id="sftp_default",
        sftp_paths="{{ params.paths }}",
        s3_bucket="{{ params.bucket }}",
        s3_key="{{ params.key }}",
        move_to="{{ params.move_to }}",
        retries=0,
    )
