"""Example DAG: the nightly partner drop — copy what is complete, verify, archive, record.

Every night at 02:00 one task lands the partner's finished CSV files in S3: only ``*.csv``,
each only once its ``.done`` file exists and it has not changed for five minutes; a rerun
(``replace=False``) skips what already landed without reading it again; each verified file
and its done file are moved to ``/processed/`` on the SFTP server; a JSON-lines manifest of
the run (source, key, bytes, sha256, ETag, what it was verified by, …) goes next to the data.
Files not ready yet are reported as waiting (the task still succeeds) and picked up by the
next run.

The same run as one command::

    sftp-s3-tui copy sftp://landing@sftp.partner.example/drop/ s3://landing/partner-a/2026-12-01/ \\
        --include '*.csv' --done-file .done --min-age 5m --conflict skip-existing \\
        --move-to /processed/ --manifest s3://landing/manifests/partner-a/2026-12-01.jsonl

Connections as for ``airflow_dag.py`` (``sftp_default``, ``aws_default``).
"""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from sftp_s3_tui.airflow import StreamingSFTPToS3Operator

with DAG(
    dag_id="partner_nightly_drop",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["sftp-s3-tui", "nightly"],
    params={"drop": "/drop/", "bucket": "landing", "partner": "partner-a"},
) as dag:
    StreamingSFTPToS3Operator(
        task_id="land_drop",
        sftp_conn_id="sftp_default",
        s3_conn_id="aws_default",
        sftp_path="{{ params.drop }}",
        s3_bucket="{{ params.bucket }}",
        s3_key="{{ params.partner }}/{{ ds }}/",
        replace=False,  # a rerun skips what landed, deciding from a listing before reading
        include=["*.csv"],
        done_file=".done",  # x.csv waits for x.csv.done
        min_age="5m",  # and for five quiet minutes
        move_to="/processed/",  # only after the object is verified and the source unchanged
        manifest="s3://{{ params.bucket }}/manifests/{{ params.partner }}/{{ ds }}.jsonl",
        storage_class="STANDARD_IA",
        tags={"partner": "{{ params.partner }}", "run": "{{ ds }}"},
        part_size="16MiB",
        memory_budget="256MiB",
    )
