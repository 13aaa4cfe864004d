"""Run one DAG file with ``dag.test()`` inside the Airflow venv; print the outcome as JSON.

Usage: ``python dag_runner.py DAG_FILE DAG_ID CONF_JSON``. Connections come from
``AIRFLOW_CONN_*`` variables, the metadata DB from ``AIRFLOW_HOME`` (SQLite). The last stdout
line is ``{"state": …, "tasks": [{"task_id", "map_index", "state"}], "xcom": [...]}``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

MARK = "DAG-RUNNER-OUTCOME "


def load_dag(path: str, dag_id: str) -> Any:
    spec = importlib.util.spec_from_file_location("dag_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if getattr(value, "dag_id", None) == dag_id and hasattr(value, "test"):
            return value
    raise SystemExit(f"no DAG {dag_id!r} in {path}")


def _decode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def outcome(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow import settings
    from sqlalchemy import text

    with settings.engine.connect() as db:
        tasks = [
            {"task_id": t, "map_index": m, "state": s}
            for t, m, s in db.execute(
                text(
                    "SELECT task_id, map_index, state FROM task_instance "
                    "WHERE dag_id = :d AND run_id = :r ORDER BY task_id, map_index"
                ),
                {"d": dag_id, "r": run_id},
            )
        ]
        xcom = [
            {"task_id": t, "map_index": m, "key": k, "value": _decode(v)}
            for t, m, k, v in db.execute(
                text(
                    "SELECT task_id, map_index, key, value FROM xcom "
                    "WHERE dag_id = :d AND run_id = :r ORDER BY task_id, map_index"
                ),
                {"d": dag_id, "r": run_id},
            )
        ]
    return {"tasks": tasks, "xcom": xcom}


def main() -> None:
    path, dag_id, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    dag = load_dag(path, dag_id)
    run = dag.test(run_conf=conf)
    result = {"state": str(getattr(run.state, "value", run.state)), "run_id": run.run_id}
    result.update(outcome(dag_id, run.run_id))
    print(MARK + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
