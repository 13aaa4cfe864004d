"""A real Apache Airflow for the ``airflow``-marked tests, in a venv of its own.

Airflow is too heavy (and too pinned) for the project's venv, so a session fixture builds a
separate one with ``uv`` — ``sftp-s3-tui[airflow]`` (editable) with Airflow pinned — and caches
it, keyed by the Airflow version, the Python version, this checkout and the project's
dependencies: ``$SFTP_S3_AIRFLOW_VENV_DIR`` or ``~/.cache/sftp-s3-tui-airflow-venv``. DAGs
run there in a subprocess (``dag.test()``, SQLite metadata DB in a temporary ``AIRFLOW_HOME``).

``SFTP_S3_AIRFLOW_VERSIONS`` (space-separated) picks the Airflow versions tested.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import unavailable

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("dag_runner.py")
OUTCOME_MARK = "DAG-RUNNER-OUTCOME "

#: Airflow 2 (last 2.10 line) and Airflow 3 (newest): the operator supports both.
AIRFLOW_VERSIONS = os.environ.get("SFTP_S3_AIRFLOW_VERSIONS", "2.10.5 3.3.2").split()

# Read at import, before the session fixture points HOME at a temporary folder.
CACHE_ROOT = Path(
    os.environ.get("SFTP_S3_AIRFLOW_VENV_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sftp-s3-tui-airflow-venv"
)
INSTALL_TIMEOUT_SECONDS = 1200


def requirements(version: str) -> list[str]:
    """What the venv installs: the extra users install, with the Airflow under test pinned."""
    return [f"apache-airflow=={version}", "-e", f"{REPO}[airflow]"]


def venv_key(version: str) -> str:
    """What the cached venv depends on: a change to any of it builds a new one."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    material = json.dumps(
        [
            requirements(version),
            sys.version,
            project["dependencies"],
            project["optional-dependencies"],
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def build_venv(version: str) -> Path:
    """The cached venv with ``apache-airflow==version`` and this project; built if missing."""
    uv = shutil.which("uv")
    if uv is None:
        unavailable("uv not found; it builds the Airflow test venv (pip install uv)")
    target = CACHE_ROOT / f"airflow-{version}-{venv_key(version)}"
    python = target / "bin" / "python"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (CACHE_ROOT / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (xdist, parallel CI jobs)
        if (target / ".complete").exists():
            return python
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        steps = [
            [uv, "venv", "--quiet", "--python", sys.executable, str(target)],
            [uv, "pip", "install", "--python", str(python), *requirements(version)],
        ]
        for step in steps:
            try:
                done = _run(step, timeout=INSTALL_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                unavailable(f"installing Airflow {version} took over {INSTALL_TIMEOUT_SECONDS}s")
            if done.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                unavailable(
                    f"cannot build the Airflow {version} venv: {' '.join(step[:3])} failed:\n"
                    + done.stderr[-3000:]
                )
        (target / ".complete").write_text(f"{time.monotonic() - started:.1f}s\n")
    return python


@dataclass(frozen=True)
class DagOutcome:
    """What a ``dag.test()`` run left behind: run state, task states, XComs and the log."""

    state: str
    tasks: list[dict[str, Any]]
    xcom: list[dict[str, Any]]
    output: str

    def task_states(self, task_id: str) -> list[str]:
        return [t["state"] for t in self.tasks if t["task_id"] == task_id]

    def xcom_values(self, task_id: str, key: str = "return_value") -> list[Any]:
        return [x["value"] for x in self.xcom if x["task_id"] == task_id and x["key"] == key]


@dataclass(frozen=True)
class AirflowEnv:
    """One Airflow version, ready to run DAG files against connections given per run."""

    version: str
    python: Path
    home: Path

    def environ(self, connections: dict[str, dict[str, Any]]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            PYTHONWARNINGS="ignore",
        )
        for conn_id, fields in connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(fields)
        return env

    def run_dag(
        self,
        dag_file: Path,
        dag_id: str,
        conf: dict[str, Any],
        connections: dict[str, dict[str, Any]],
        timeout: float = 600,
    ) -> DagOutcome:
        """``dag.test(run_conf=conf)`` in the Airflow venv, in a fresh process.

        The file is copied into the DAGs folder first: Airflow 3 runs only DAGs it has parsed.
        """
        installed = self.home / "dags" / dag_file.name
        shutil.copyfile(dag_file, installed)
        done = _run(
            [str(self.python), str(RUNNER), str(installed), dag_id, json.dumps(conf)],
            env=self.environ(connections),
            timeout=timeout,
            cwd=self.home,
        )
        output = done.stdout + done.stderr
        line = next(
            (x for x in reversed(done.stdout.splitlines()) if x.startswith(OUTCOME_MARK)), None
        )
        assert done.returncode == 0 and line, f"dag.test() did not finish:\n{output[-8000:]}"
        result = json.loads(line[len(OUTCOME_MARK) :])
        return DagOutcome(result["state"], result["tasks"], result["xcom"], output)


@pytest.fixture(scope="session", params=AIRFLOW_VERSIONS, ids=lambda v: f"airflow-{v}")
def airflow_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowEnv]:
    """A cached Airflow venv and a fresh SQLite metadata DB (``airflow db migrate``)."""
    version = request.param
    python = build_venv(version)
    home = tmp_path_factory.mktemp(f"airflow-home-{version}")
    (home / "dags").mkdir()
    env = AirflowEnv(version, python, home)
    migrate = _run(
        [str(python), "-m", "airflow", "db", "migrate"],
        env=env.environ({}),
        timeout=600,
        cwd=home,
    )
    assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stderr[-5000:]}"
    yield env
