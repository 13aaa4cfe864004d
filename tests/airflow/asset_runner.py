"""Run the producer DAG with ``dag.test()``, let Airflow's own scheduler code create the
runs that asset events call for, then run the consumer's asset-triggered run's tasks (as
``dag.test()`` runs a manual one, in process); print what happened as JSON (last stdout line).

Usage: ``python asset_runner.py DAG_FILE PRODUCER_ID CONSUMER_ID CONF_JSON``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from dag_runner import _decode, load_dag  # type: ignore[import-not-found]

MARK = "ASSET-RUNNER-OUTCOME "


def scheduler_creates_runs() -> None:
    """One pass of the scheduler's "create DAG runs" step (asset-triggered ones included)."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit

    runner = SchedulerJobRunner(job=Job())
    with create_session() as session, prohibit_commit(session) as guard:
        runner._create_dagruns_for_dags(guard, session)


def run_triggered(consumer: Any, run_id: str) -> str:
    """Run the tasks of the consumer's existing (asset-triggered) run to the end, with the
    minimal scheduling loop ``dag.test()`` uses; the run's final state."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    session = settings.Session()
    run = session.scalar(
        select(DagRun).where(DagRun.dag_id == consumer.dag_id, DagRun.run_id == run_id)
    )
    run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(consumer))
    run.state = DagRunState.RUNNING  # what the scheduler does when it starts a queued run
    session.commit()
    while run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        scheduled = [
            ti
            for ti in run.get_task_instances(session=session)
            if ti.state == TaskInstanceState.SCHEDULED
        ]
        if not scheduled and run.state == DagRunState.RUNNING:
            unfinished = [t.task_id for t in run.get_task_instances(session=session)]
            raise SystemExit(f"the consumer run is stuck: {unfinished}")
        for ti in scheduled:
            _run_task(ti=ti, task=consumer.task_dict[ti.task_id])
    return str(getattr(run.state, "value", run.state))


def main() -> None:
    path, producer_id, consumer_id, conf = sys.argv[1:5]
    producer = load_dag(path, producer_id)
    consumer = load_dag(path, consumer_id)
    run = producer.test(run_conf=json.loads(conf))
    from airflow import settings
    from sqlalchemy import text

    with settings.engine.connect() as db:
        events = [
            {"uri": uri, "extra": json.loads(extra) if isinstance(extra, str) else extra}
            for uri, extra in db.execute(
                text(
                    "SELECT asset.uri, asset_event.extra FROM asset_event "
                    "JOIN asset ON asset.id = asset_event.asset_id "
                    "WHERE asset_event.source_dag_id = :d ORDER BY asset.uri"
                ),
                {"d": producer_id},
            )
        ]
        tasks = [
            {"task_id": t, "state": s}
            for t, s in db.execute(
                text("SELECT task_id, state FROM task_instance WHERE dag_id = :d AND run_id = :r"),
                {"d": producer_id, "r": run.run_id},
            )
        ]
    scheduler_creates_runs()
    with settings.engine.connect() as db:
        consumer_runs: list[dict[str, Any]] = []
        for run_id, run_type, dr_id in db.execute(
            text("SELECT run_id, run_type, id FROM dag_run WHERE dag_id = :d"), {"d": consumer_id}
        ):
            consumed = [
                uri
                for (uri,) in db.execute(
                    text(
                        "SELECT asset.uri FROM dagrun_asset_event "
                        "JOIN asset_event ON asset_event.id = dagrun_asset_event.event_id "
                        "JOIN asset ON asset.id = asset_event.asset_id "
                        "WHERE dagrun_asset_event.dag_run_id = :r ORDER BY asset.uri"
                    ),
                    {"r": dr_id},
                )
            ]
            consumer_runs.append({"run_id": run_id, "run_type": run_type, "consumed": consumed})
    for consumer_run in consumer_runs:
        consumer_run["state"] = run_triggered(consumer, consumer_run["run_id"])
        with settings.engine.connect() as db:
            consumer_run["tasks"] = [
                {"task_id": t, "state": s, "value": _decode(v)}
                for t, s, v in db.execute(
                    text(
                        "SELECT task_instance.task_id, task_instance.state, xcom.value "
                        "FROM task_instance LEFT JOIN xcom ON xcom.dag_id = "
                        "task_instance.dag_id AND xcom.run_id = task_instance.run_id AND "
                        "xcom.task_id = task_instance.task_id AND xcom.key = 'return_value' "
                        "WHERE task_instance.dag_id = :d AND task_instance.run_id = :r"
                    ),
                    {"d": consumer_id, "r": consumer_run["run_id"]},
                )
            ]
    state = str(getattr(run.state, "value", run.state))
    result = {"state": state, "tasks": tasks, "events": events, "consumer_runs": consumer_runs}
    print(MARK + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
