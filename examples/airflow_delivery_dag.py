"""Example DAG: deliver the day's export from S3 to a partner's SFTP inbox.

``StreamingS3ToSFTPOperator`` streams each object (ranged GETs straight into SFTP writes: no
file on the worker's disk), writes it under a temporary name beside the final one and renames
it into place, so the partner never picks up half a file; each file is verified against the
object's checksum and gets the object's LastModified as its mtime. A file already at the final
name is kept (``skip-existing``) unless ``conflict_policy`` says otherwise.

Connections (UI, secrets backend, or environment):
    AIRFLOW_CONN_SFTP_PARTNER='{"conn_type": "sftp", "host": "sftp.partner.example",
        "port": 22, "login": "inbound", "extra": {"key_file": "/secrets/id_ed25519",
        "known_hosts": "/secrets/known_hosts"}}'
    AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}'

Trigger with other parameters: ``airflow dags trigger s3_export_to_partner --conf
'{"bucket": "exports", "prefix": "partner-a/2026-11-25/", "inbox": "/inbox/"}'``.
"""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from sftp_s3_tui.airflow import StreamingS3ToSFTPOperator

with DAG(
    dag_id="s3_export_to_partner",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["sftp-s3-tui"],
    params={"bucket": "exports", "prefix": "partner-a/", "inbox": "/inbox/"},
) as dag:
    StreamingS3ToSFTPOperator(
        task_id="deliver",
        s3_bucket="{{ params.bucket }}",
        s3_key="{{ params.prefix }}",  # a key, or a prefix ending in / (its objects)
        sftp_path="{{ params.inbox }}",  # a file, or a folder ending in /
        sftp_conn_id="sftp_partner",
        aws_conn_id="aws_default",
        conflict_policy="skip-existing",  # the partner's file is theirs; or if-different …
        part_size="8MiB",
        memory_budget="128MiB",
        retries=0,
    )
