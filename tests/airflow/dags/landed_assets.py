"""A producer that lands a partner's files and a consumer scheduled on what landed: the
operator emits an Asset event per verified object through the ``partner-a-landed`` alias."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG
from airflow.sdk import AssetAlias, task

from sftp_s3_tui.airflow import StreamingSFTPToS3Operator

with DAG(
    dag_id="partner_drop",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"source": "", "bucket": "", "hook_url": ""},
) as producer:
    StreamingSFTPToS3Operator(
        task_id="land",
        sftp_conn_id="sftp_default",
        sftp_path="{{ params.source }}",
        s3_bucket="{{ params.bucket }}",
        s3_key="partner-a/",
        replace=True,
        retries=0,
        asset_alias="partner-a-landed",
        hook_url="{{ params.hook_url }}",
    )

with DAG(
    dag_id="partner_consumer",
    schedule=[AssetAlias("partner-a-landed")],
    start_date=datetime(2026, 1, 1),
    catchup=False,
) as consumer:

    @task
    def load(triggering_asset_events: dict | None = None) -> list[dict]:  # type: ignore[type-arg]
        """What a loader needs from each landed object's event (listed under the alias; Airflow
        also lists each under its own asset): where the object is and what it holds."""
        events = (triggering_asset_events or {})[AssetAlias("partner-a-landed")]
        return sorted(
            (
                {
                    "uri": event.asset.uri,
                    "bucket": event.extra["bucket"],
                    "key": event.extra["key"],
                    "sha256": event.extra["sha256"],
                }
                for event in events
            ),
            key=lambda loaded: loaded["uri"],
        )

    load()
