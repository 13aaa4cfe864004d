"""The built wheel and sdist as a package index would show and install them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The wheel and the sdist `uv build` makes of this checkout (from uv's cache when it
    can: the build backend is fetched only the first time)."""
    out = tmp_path_factory.mktemp("dist")
    command = ["uv", "build", "--quiet", "--out-dir", str(out), str(ROOT)]
    built = subprocess.run([*command, "--offline"], capture_output=True, text=True)
    if built.returncode != 0:
        built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_says_who_what_and_under_which_licence(dist: tuple[Path, Path]) -> None:
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
        [licence] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(licence).decode().startswith("MIT License")
    headers, _, description = metadata.partition("\n\n")
    assert "License-Expression: MIT" in headers
    assert "Author: " in headers
    assert "Classifier: Programming Language :: Python :: 3.11" in headers
    assert "Classifier: Environment :: Console" in headers
    # On a package index a relative link or image points nowhere.
    relative = re.findall(r"\]\((?!https?://|#)[^)]*\)", description)
    assert not relative, relative[:5]
    assert "sftp-s3-tui --demo" in description and "pipx install" in description


def test_the_wheel_carries_the_dashboard_and_the_example_dags_and_hands_them_out(
    dist: tuple[Path, Path], tmp_path: Path
) -> None:
    wheel, _ = dist
    # Import the package from the wheel itself (pure Python: a zip on sys.path works), not
    # from this checkout, so only what the wheel holds can be exported.
    env = {**os.environ, "PYTHONPATH": str(wheel)}
    for name in ("monitoring", "examples"):
        done = subprocess.run(
            [sys.executable, "-m", "sftp_s3_tui", name, "export", str(tmp_path / name)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,  # not this checkout's folder, which would come first on sys.path
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import sftp_s3_tui; print(sftp_s3_tui.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(wheel)), where.stdout
    dashboard = tmp_path / "monitoring/grafana/dashboards/sftp-s3-streaming.json"
    assert json.loads(dashboard.read_text())["title"]
    assert (
        dashboard.read_bytes()
        == (ROOT / "monitoring/grafana/dashboards/sftp-s3-streaming.json").read_bytes()
    )
    assert (tmp_path / "monitoring/prometheus/prometheus.yml").is_file()
    assert (tmp_path / "examples/nightly_dag.py").read_bytes() == (
        ROOT / "examples/nightly_dag.py"
    ).read_bytes()


def test_the_sdist_has_the_licence_and_not_the_lock(dist: tuple[Path, Path]) -> None:
    _, sdist = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "LICENSE" in names and "pyproject.toml" in names
    assert "uv.lock" not in names
