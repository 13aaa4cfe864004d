"""``StreamingS3ToSFTPOperator`` in a real Airflow, from moto to the real sshd: the example
DAG delivers a prefix byte for byte with nothing left beside it, tells OpenLineage (s3:// in,
sftp:// out), and a key that would leave the inbox fails the task with one clear line."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.airflow.conftest import REPO, AirflowEnv
from tests.airflow.connections import aws_connection, sftp_connection
from tests.support.receiver import http_receiver
from tests.support.servers import SftpServerInfo

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]

DELIVERY_DAG = REPO / "examples" / "airflow_delivery_dag.py"
OPTIONS_DAG = Path(__file__).with_name("dags") / "delivery_options.py"
MiB = 1 << 20


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, temporary ones included, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def connections(server: SftpServerInfo, moto: EmbeddedS3Server) -> dict[str, Any]:
    return {"sftp_partner": sftp_connection(server), "aws_default": aws_connection(moto)}


def test_the_example_dag_delivers_a_prefix_whole_and_tells_lineage(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = pattern(3 * MiB + 5, seed=1)
    s3.put_object(Bucket=bucket, Key="partner-a/2026-11-25/report.csv", Body=report)
    s3.put_object(Bucket=bucket, Key="partner-a/2026-11-25/detail/lines.csv", Body=b"id\n1\n")
    modified = s3.head_object(Bucket=bucket, Key="partner-a/2026-11-25/report.csv")["LastModified"]
    inbox = openssh_sftp.remote_path("inbox")

    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        outcome = airflow_env.run_dag(
            DELIVERY_DAG,
            "s3_export_to_partner",
            {"bucket": bucket, "prefix": "partner-a/2026-11-25/", "inbox": inbox + "/"},
            connections(openssh_sftp, moto_server),
        )
        lineage = [r.json() for r in receiver.at("/api/v1/lineage")]

    assert outcome.state == "success", outcome.output[-8000:]
    landed = openssh_sftp.root / "inbox"
    # Byte for byte, the prefix's layout kept, no temporary file left beside them.
    assert files_under(landed) == {"report.csv": report, "detail/lines.csv": b"id\n1\n"}
    assert os.stat(landed / "report.csv").st_mtime == int(modified.timestamp())
    (summary,) = outcome.xcom_values("deliver")
    assert (summary["delivered"], summary["failed"], summary["bytes"]) == (2, 0, len(report) + 5)
    records = {o["path"]: o for o in summary["objects"]}
    assert records[f"{inbox}/report.csv"]["verified_by"] == "crc32+size"
    assert f"delivered s3://{bucket}/partner-a/2026-11-25/report.csv" in outcome.output

    complete = [
        e
        for e in lineage
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == "s3_export_to_partner.deliver"
    ]
    assert complete, json.dumps(lineage)[:4000]
    inputs = {(d["namespace"], d["name"]) for d in complete[-1]["inputs"]}
    assert (f"s3://{bucket}", "partner-a/2026-11-25/report.csv") in inputs
    outputs = {(d["namespace"], d["name"]): d for d in complete[-1]["outputs"]}
    namespace = f"sftp://{openssh_sftp.host}:{openssh_sftp.port}"
    facet = outputs[(namespace, f"{inbox}/report.csv")]["facets"]["sftpS3File"]
    assert facet["size"] == len(report) and facet["verifiedBy"] == "crc32+size"
    assert facet["hostKeyFingerprint"]


def test_a_key_that_would_leave_the_inbox_fails_the_task_with_one_line(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="exports/ok.csv", Body=b"fine\n")
    s3.put_object(Bucket=bucket, Key="exports/../../escape.csv", Body=b"evil\n")

    outcome = airflow_env.run_dag(
        DELIVERY_DAG,
        "s3_export_to_partner",
        {"bucket": bucket, "prefix": "exports/", "inbox": openssh_sftp.remote_path("in") + "/"},
        connections(openssh_sftp, moto_server),
    )

    assert outcome.task_states("deliver") == ["failed"], outcome.output[-8000:]
    line = (
        f"1 of 2 object(s) failed: s3://{bucket}/exports/../../escape.csv: "
        "The key 'exports/../../escape.csv' has a '..' segment"
    )
    assert line in outcome.output, outcome.output[-8000:]
    assert files_under(openssh_sftp.root) == {"in/ok.csv": b"fine\n"}  # nothing else, no temp
    (summary,) = outcome.xcom_values("deliver", key="transfer_summary")
    assert (summary["delivered"], summary["failed"]) == (1, 1)


def test_replace_swaps_the_partners_file_whole_and_delete_source_follows(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    data = pattern(5 * MiB + 3, seed=4)
    s3.put_object(Bucket=bucket, Key="out/today.csv", Body=data)
    old = openssh_sftp.write_file("inbox/current.csv", b"yesterday\n")

    with http_receiver() as receiver:
        outcome = airflow_env.run_dag(
            OPTIONS_DAG,
            "delivery_options",
            {
                "key": f"s3://{bucket}/out/today.csv",
                "path": old.remote_path,
                "hook_url": f"{receiver.url}/ping/deliver",
            },
            {
                "sftp_default": sftp_connection(openssh_sftp),
                "aws_default": aws_connection(moto_server),
            },
        )
        pings = [(r.path, r.json()) for r in receiver.requests]

    assert outcome.state == "success", outcome.output[-8000:]
    assert files_under(openssh_sftp.root / "inbox") == {"current.csv": data}  # no temp file
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)  # deleted after delivery
    (summary,) = outcome.xcom_values("deliver")
    (record,) = summary["objects"]
    assert record["status"] == "done" and record["source_deleted"] is True
    assert [path for path, _ in pings] == ["/ping/deliver/start", "/ping/deliver"]
    body = pings[1][1]
    assert body["event"] == "success" and body["delivered"] == 1 and body["bytes"] == len(data)
