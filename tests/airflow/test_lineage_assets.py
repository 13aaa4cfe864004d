"""In a real Airflow 3: the partner's files land, a consumer DAG is scheduled because they
did (Asset events through an AssetAlias, keys known only at run time), and the OpenLineage
provider sends the operator's lineage — each file's sftp:// input and s3:// output with what
the transfer knows — to a catalog (a loopback HTTP receiver here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from tests.airflow.conftest import AIRFLOW_VERSIONS, AirflowEnv
from tests.airflow.connections import aws_connection, sftp_connection
from tests.support.receiver import http_receiver
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1800)]

DAGS = Path(__file__).with_name("dags")
RUNNER = Path(__file__).with_name("asset_runner.py")
MARK = "ASSET-RUNNER-OUTCOME "


def run_producer(
    env: AirflowEnv, conf: dict[str, Any], connections: dict[str, Any], extra_env: dict[str, str]
) -> tuple[dict[str, Any], str]:
    dag_file = env.home / "dags" / "landed_assets.py"
    dag_file.write_text((DAGS / "landed_assets.py").read_text())
    done = subprocess.run(
        [
            str(env.python),
            str(RUNNER),
            str(dag_file),
            "partner_drop",
            "partner_consumer",
            *[json.dumps(conf)],
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=env.home,
        env={**env.environ(connections), **extra_env, "PYTHONPATH": str(RUNNER.parent)},
    )
    output = done.stdout + done.stderr
    line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith(MARK)), None)
    assert done.returncode == 0 and line, output[-8000:]
    return json.loads(line[len(MARK) :]), output


# Assets through an AssetAlias, scheduled on by this test's consumer DAG: Airflow 3 only, so
# the test takes the Airflow 3 venvs of the versions under test (not a skip on Airflow 2).
@pytest.mark.parametrize(
    "airflow_env",
    [v for v in AIRFLOW_VERSIONS if v.startswith("3")],
    indirect=True,
    ids=lambda v: f"airflow-{v}",
)
def test_landed_files_schedule_the_consumer_and_reach_the_lineage_catalog(
    airflow_env: AirflowEnv,
    openssh_sftp: SftpServerInfo,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    a = openssh_sftp.write_file("drop/a.csv", b"id\n1\n")
    b = openssh_sftp.write_file("drop/b.csv", size=300_000, seed=9)

    with http_receiver() as receiver:
        outcome, output = run_producer(
            airflow_env,
            {
                "source": openssh_sftp.remote_path("drop/"),
                "bucket": bucket,
                "hook_url": f"{receiver.url}/ping/land",
            },
            {
                "sftp_default": sftp_connection(openssh_sftp),
                "aws_default": aws_connection(moto_server),
            },
            {
                "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                    {"type": "http", "url": receiver.url}
                ),
                "AIRFLOW__OPENLINEAGE__NAMESPACE": "partner-pipelines",
                # a new consumer DAG is live at once (as after unpausing it in the UI)
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            },
        )
        lineage = [r.json() for r in receiver.at("/api/v1/lineage")]
        pings = [r.path for r in receiver.requests if r.path.startswith("/ping")]

    assert outcome["state"] == "success", output[-8000:]
    assert keys(s3, bucket) == ["partner-a/a.csv", "partner-a/b.csv"]

    # Asset events: one per landed object, with what the transfer verified.
    events = {e["uri"]: e["extra"] for e in outcome["events"]}
    uris = [f"s3://{bucket}/partner-a/a.csv", f"s3://{bucket}/partner-a/b.csv"]
    assert sorted(events) == uris
    assert events[uris[0]]["sha256"] == a.sha256 and events[uris[1]]["sha256"] == b.sha256
    assert events[uris[1]]["size"] == b.size
    assert events[uris[0]]["source"].endswith(a.remote_path)

    # Airflow's scheduler creates the consumer's run because of those events.
    assert len(outcome["consumer_runs"]) == 1, json.dumps(outcome)[:3000] + output[-6000:]
    (consumer,) = outcome["consumer_runs"]
    assert consumer["run_type"] == "asset_triggered"
    assert consumer["consumed"] == uris
    # ... and runs it: its task read each event's extra (bucket, key, sha256).
    assert consumer["state"] == "success", json.dumps(consumer)[:3000] + output[-6000:]
    (loaded,) = [t for t in consumer["tasks"] if t["task_id"] == "load"]
    assert loaded["state"] == "success"
    assert loaded["value"] == [
        {"uri": uris[0], "bucket": bucket, "key": "partner-a/a.csv", "sha256": a.sha256},
        {"uri": uris[1], "bucket": bucket, "key": "partner-a/b.csv", "sha256": b.sha256},
    ]

    # The OpenLineage provider sent the operator's datasets.
    complete = [
        e
        for e in lineage
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == "partner_drop.land"
    ]
    assert complete, json.dumps(lineage)[:4000]
    outputs = {d["name"]: d for d in complete[-1]["outputs"]}
    assert {"partner-a/a.csv", "partner-a/b.csv"} <= set(outputs)
    facet = outputs["partner-a/b.csv"]["facets"]["sftpS3File"]
    assert facet["sha256"] == b.sha256 and facet["size"] == b.size and facet["verifiedBy"]
    inputs = {(d["namespace"], d["name"]) for d in complete[-1]["inputs"]}
    assert (f"sftp://{openssh_sftp.host}:{openssh_sftp.port}", b.remote_path) in inputs

    # The hooks: start and success.
    assert pings == ["/ping/land/start", "/ping/land"]
