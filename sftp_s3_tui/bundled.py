"""The files that come with the package but are not code: the monitoring stack (Grafana
dashboard and provisioning, Prometheus config) and the example Airflow DAGs.

A wheel carries them under ``sftp_s3_tui/_bundled/`` (pyproject's force-include); a source
checkout has them at the repository's top. ``sftp-s3-tui monitoring export DIR`` and
``sftp-s3-tui examples export DIR`` copy them out.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from .engine.errors import UsageError

#: What can be exported: the command's name → the folder it copies.
BUNDLES = {"monitoring": "monitoring", "examples": "examples"}


def bundle_dir(name: str) -> Traversable:
    """The folder of bundle ``name``: the wheel's copy (read through importlib.resources, so a
    zipped install works too), else the source checkout's."""
    packaged = resources.files(__package__ or "sftp_s3_tui") / "_bundled" / BUNDLES[name]
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / BUNDLES[name]
    if checkout.is_dir():
        return checkout
    raise UsageError(f"The {name} files are not installed with this copy of sftp-s3-tui")


def _files(folder: Traversable, relative: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for entry in folder.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            found += _files(entry, (*relative, entry.name))
        else:
            found.append((*relative, entry.name))
    return sorted(found)


def export_bundle(name: str, dest: Path, *, force: bool = False) -> list[Path]:
    """Copy bundle ``name`` into ``dest`` (created); the files written, in order.

    An existing file is never overwritten unless ``force``: a dashboard someone edited stays
    (the refusal names the first such file)."""
    source = bundle_dir(name)
    files = _files(source)
    targets = [dest.joinpath(*parts) for parts in files]
    if not force:
        taken = [t for t in targets if t.exists()]
        if taken:
            raise UsageError(f"{taken[0]} exists", "add --force to overwrite")
    for parts, target in zip(files, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.joinpath(*parts).read_bytes())
    return targets
