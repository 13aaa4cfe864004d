"""A data team's archiving task in a real Airflow, against the real sshd and moto: an archive
folder inside the drop is refused before anything moves, and a reused name never replaces
yesterday's archived file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.airflow.conftest import AirflowEnv
from tests.airflow.connections import aws_connection, sftp_connection
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]

ARCHIVE_DAG = Path(__file__).with_name("dags") / "archive_copy.py"


def test_the_task_refuses_an_archive_inside_the_drop_and_keeps_yesterdays_file(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"monday\n")
    drop = openssh_sftp.remote_path("drop")
    connections = {
        "sftp_default": sftp_connection(openssh_sftp, auth="key_file"),
        "aws_default": aws_connection(moto_server),
    }

    def run(day: str, move_to: str) -> Any:
        conf = {"paths": [f"{drop}/"], "bucket": bucket, "key": f"{day}/", "move_to": move_to}
        return airflow_env.run_dag(ARCHIVE_DAG, "archive_copy", conf, connections)

    inside = run("mon", f"{drop}/processed/")
    assert inside.task_states("copy") == ["failed"]
    assert f"--move-to {drop}/processed/ is inside the source {drop}/" in inside.output
    assert keys(s3, bucket) == []
    assert (openssh_sftp.root / "drop" / "a.csv").read_bytes() == b"monday\n"

    processed = openssh_sftp.remote_path("processed")
    monday = run("mon", processed)
    openssh_sftp.write_file("drop/a.csv", b"tuesday\n")
    tuesday = run("tue", processed)
    assert monday.task_states("copy") == tuesday.task_states("copy") == ["success"]
    archive = {p.name: p.read_bytes() for p in (openssh_sftp.root / "processed").iterdir()}
    assert archive.pop("a.csv") == b"monday\n"
    [(name, body)] = archive.items()
    assert name.startswith("a.csv.") and body == b"tuesday\n"
    assert f"{processed}/a.csv already held an archived file" in tuesday.output
    assert object_bytes(s3, bucket, "mon/a.csv") == b"monday\n"
    assert object_bytes(s3, bucket, "tue/a.csv") == b"tuesday\n"
