"""The example DAG in a real Airflow, against the real sshd and moto: what a data team sees."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.airflow.conftest import REPO, AirflowEnv
from tests.airflow.connections import aws_connection, sftp_connection
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes, open_uploads, stored_sha256

# The first test may build the Airflow venv (a cold download takes minutes).
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]

EXAMPLE_DAG = REPO / "examples" / "airflow_dag.py"
SINGLE_COPY_DAG = Path(__file__).with_name("dags") / "single_copy.py"
PER_FILE_DAG = Path(__file__).with_name("dags") / "per_file.py"
MiB = 1 << 20


def test_example_dag_moves_a_folder_in_mapped_batches(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    files = {
        "customers.csv": openssh_sftp.write_file("drop/customers.csv", size=12 * MiB + 7, seed=1),
        "orders 2026-11.csv": openssh_sftp.write_file("drop/orders 2026-11.csv", b"id\n1\n2\n"),
        "ünïcode name.parquet": openssh_sftp.write_file(
            "drop/ünïcode name.parquet", size=300_000, seed=2
        ),
        "logs/app.log": openssh_sftp.write_file("drop/logs/app.log", size=6 * MiB, seed=3),
        "logs/2026/11/old.log": openssh_sftp.write_file(
            "drop/logs/2026/11/old.log", size=1234, seed=4
        ),
    }

    outcome = airflow_env.run_dag(
        EXAMPLE_DAG,
        "sftp_drop_to_s3",
        {
            "source_dir": openssh_sftp.remote_path("drop"),
            "bucket": bucket,
            "prefix": "partner-a/",
            "batch_size": 2,
        },
        {"sftp_default": sftp_connection(openssh_sftp), "aws_default": aws_connection(moto_server)},
    )

    assert outcome.state == "success", outcome.output[-8000:]
    assert outcome.task_states("copy") == ["success"] * 3  # 5 files in batches of 2
    expected = {f"partner-a/{name}": remote for name, remote in files.items()}
    assert keys(s3, bucket) == sorted(expected)
    for key, remote in expected.items():
        assert object_bytes(s3, bucket, key) == remote.read_bytes()
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == remote.size
        assert stored_sha256(s3, bucket, key) == remote.sha256
    assert open_uploads(s3, bucket) == []
    summaries = outcome.xcom_values("copy")
    assert sum(s["files"] for s in summaries) == 5
    assert sum(s["bytes"] for s in summaries) == sum(f.size for f in files.values())
    objects = {o["key"]: o for s in summaries for o in s["objects"]}
    assert {k: o["status"] for k, o in objects.items()} == dict.fromkeys(expected, "done")
    assert "copied sftp://" in outcome.output and "partner-a/customers.csv" in outcome.output
    (report,) = outcome.xcom_values("report")
    assert report["sha256"] == {key: remote.sha256 for key, remote in expected.items()}


def test_one_mapped_task_per_file_pushes_its_metrics(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    pushgateway: str,
) -> None:
    a = openssh_sftp.write_file("drop/a.csv", size=5 * MiB + 1, seed=6)
    b = openssh_sftp.write_file("drop/2026/b.csv", b"b\n")
    openssh_sftp.write_file("drop/notes.txt", b"not a csv\n")

    outcome = airflow_env.run_dag(
        PER_FILE_DAG,
        "per_file",
        {
            "source_dir": openssh_sftp.remote_path("drop"),
            "bucket": bucket,
            "push_gateway": pushgateway,
        },
        {
            "sftp_default": sftp_connection(openssh_sftp, auth="key_file"),
            "aws_default": aws_connection(moto_server),
        },
    )

    assert outcome.state == "success", outcome.output[-8000:]
    assert outcome.xcom_values("list_files") == [[b.remote_path, a.remote_path]]
    assert outcome.task_states("copy") == ["success", "success"]
    assert keys(s3, bucket) == ["landing/2026/b.csv", "landing/a.csv"]
    assert object_bytes(s3, bucket, "landing/a.csv") == a.read_bytes()
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    for map_index, remote in enumerate((b, a)):
        [line] = [
            line
            for line in metrics.splitlines()
            if line.startswith("sftp_s3_bytes_transferred_total{")
            and 'dag_id="per_file"' in line
            and f'map_index="{map_index}"' in line
        ]
        assert 'task_id="copy"' in line and 'job="sftp_s3_tui"' in line
        assert float(line.rsplit(" ", 1)[1]) == remote.size


def test_missing_source_fails_the_task_with_the_engine_message(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    missing = openssh_sftp.remote_path("drop/not-there.csv")

    outcome = airflow_env.run_dag(
        SINGLE_COPY_DAG,
        "single_copy",
        {"paths": [missing], "bucket": bucket, "key": "landing/"},
        {
            "sftp_default": sftp_connection(openssh_sftp, auth="key_file"),
            "aws_default": aws_connection(moto_server),
        },
    )

    assert outcome.state == "failed"
    assert outcome.task_states("copy") == ["failed"]
    assert f"{missing} does not exist on the SFTP server" in outcome.output
    assert keys(s3, bucket) == []


def test_unreadable_file_fails_the_task_and_still_lands_the_others(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    good = openssh_sftp.write_file("drop/good.csv", size=2 * MiB, seed=5)
    secret = openssh_sftp.write_file("drop/secret.csv", b"not for you\n")
    secret.local_path.chmod(0o600)  # root's file; the password user may list but not read it

    outcome = airflow_env.run_dag(
        SINGLE_COPY_DAG,
        "single_copy",
        {"paths": [openssh_sftp.remote_path("drop/")], "bucket": bucket, "key": "landing/"},
        {
            "sftp_default": sftp_connection(openssh_sftp, auth="password"),
            "aws_default": aws_connection(moto_server),
        },
    )

    assert outcome.task_states("copy") == ["failed"]
    assert "1 of 2 file(s) failed: " in outcome.output
    assert f"Permission denied reading {secret.remote_path}" in outcome.output
    assert keys(s3, bucket) == ["landing/good.csv"]
    assert object_bytes(s3, bucket, "landing/good.csv") == good.read_bytes()
    (summary,) = outcome.xcom_values("copy", key="transfer_summary")
    assert (summary["copied"], summary["failed"]) == (1, 1)


def test_unknown_host_key_fails_the_task_with_an_airflow_hint(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    remote = openssh_sftp.write_file("drop/a.csv", b"a\n")
    connection = sftp_connection(openssh_sftp, auth="key_file")
    connection["extra"]["known_hosts"] = str(tmp_path / "empty_known_hosts")

    outcome = airflow_env.run_dag(
        SINGLE_COPY_DAG,
        "single_copy",
        {"paths": [remote.remote_path], "bucket": bucket, "key": "landing/"},
        {"sftp_default": connection, "aws_default": aws_connection(moto_server)},
    )

    assert outcome.task_states("copy") == ["failed"]
    assert f"The host key of {openssh_sftp.host}:{openssh_sftp.port} is unknown" in outcome.output
    assert "put the key in the connection's host_key extra" in outcome.output
    assert not (tmp_path / "empty_known_hosts").exists()  # nothing trusted behind our back
