"""Deliveries that pick up an export with an expectation: met, short (warn) and short
(fail). The deadline is midnight UTC, so it has always passed when the test runs."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from sftp_s3_tui.airflow import StreamingS3ToSFTPOperator

with DAG(
    dag_id="expected_delivery_drop",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"bucket": "", "inbox": "", "hook_url": ""},
) as dag:
    for task_id, expect, fail in (
        ("met", "1 invoice_*.csv by 00:00 UTC", True),
        ("short_warn", "2 invoice_*.csv by 00:00 UTC", False),
        ("short_fail", ["2 invoice_*.csv by 00:00 UTC", "1 orders.csv by 00:00 UTC"], True),
    ):
        StreamingS3ToSFTPOperator(
            task_id=task_id,
            s3_bucket="{{ params.bucket }}",
            s3_key="out/",
            sftp_path="{{ params.inbox }}/" + task_id + "/",
            sftp_conn_id="sftp_default",
            aws_conn_id="aws_default",
            retries=0,
            expect=expect,
            expect_fail=fail,
            hook_url="{{ params.hook_url }}/" + task_id,
            notify_on="late,fail",
        )
