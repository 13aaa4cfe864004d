"""A drop expectation on the delivery operator, in a real Airflow from moto to the real sshd:
the task run is the pickup of the export due at the last deadline, counts the objects
delivered whose key's base name matches, fires the late hook once when some are missing and
fails the task (or only warns, as asked) — as the upload operator's ``expect`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.airflow.conftest import AirflowEnv
from tests.airflow.connections import aws_connection, sftp_connection
from tests.support.delivery import files_under
from tests.support.receiver import http_receiver
from tests.support.servers import SftpServerInfo

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]

DAG = Path(__file__).with_name("dags") / "expected_delivery_drop.py"


def test_a_short_export_fires_the_late_hook_once_and_fails_or_warns(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="out/2026/invoice_1.csv", Body=b"n\n1\n")
    s3.put_object(Bucket=bucket, Key="out/notes.txt", Body=b"not an invoice\n")

    with http_receiver() as receiver:
        outcome = airflow_env.run_dag(
            DAG,
            "expected_delivery_drop",
            {
                "bucket": bucket,
                "inbox": openssh_sftp.remote_path("inbox"),
                "hook_url": f"{receiver.url}/ping",
            },
            {
                "sftp_default": sftp_connection(openssh_sftp),
                "aws_default": aws_connection(moto_server),
            },
        )
        pings = [(r.path, r.json()) for r in receiver.requests]

    # Delivered in every case: the expectation judges the drop, not the delivery.
    assert files_under(openssh_sftp.root / "inbox") == {
        f"{task}/{name}": body
        for task in ("met", "short_fail", "short_warn")
        for name, body in (("2026/invoice_1.csv", b"n\n1\n"), ("notes.txt", b"not an invoice\n"))
    }
    assert outcome.task_states("met") == ["success"], outcome.output[-8000:]
    assert outcome.task_states("short_warn") == ["success"], outcome.output[-8000:]
    assert outcome.task_states("short_fail") == ["failed"], outcome.output[-8000:]

    (met,) = outcome.xcom_values("met")
    (drop,) = met["drops"]
    assert drop["drop"] == "invoice_*.csv" and drop["deadline"].endswith("00:00:00+00:00")
    assert (drop["expected"], drop["arrived"], drop["missing"]) == (1, 1, 0)

    (warned,) = outcome.xcom_values("short_warn")
    assert [(d["expected"], d["arrived"], d["missing"]) for d in warned["drops"]] == [(2, 1, 1)]
    assert "drop late: invoice_*.csv: 1/2 by" in outcome.output

    (failed,) = outcome.xcom_values("short_fail", key="transfer_summary")
    assert [(d["drop"], d["arrived"], d["missing"]) for d in failed["drops"]] == [
        ("invoice_*.csv", 1, 1),
        ("orders.csv", 0, 1),
    ]
    assert "orders.csv: 0/1 by" in outcome.output

    late = [(path, body["drop"]) for path, body in pings if body["event"] == "late"]
    assert sorted(late) == [
        ("/ping/short_fail/fail", "invoice_*.csv"),
        ("/ping/short_fail/fail", "orders.csv"),
        ("/ping/short_warn/fail", "invoice_*.csv"),
    ]
    fails = [body for path, body in pings if body["event"] == "fail"]
    assert [path for path, body in pings if body["event"] == "fail"] == ["/ping/short_fail/fail"]
    assert "drop late" in fails[0]["error"]
    assert [path for path, _ in pings if path.startswith("/ping/met")] == ["/ping/met/start"]
