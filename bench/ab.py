"""``python -m bench.ab``: paired A/B runs of the product's variants and rclone (issue 29).

The servers start once (the bench's sshd and moto, or SeaweedFS with ``--store seaweedfs``);
then, round after round, every variant copies the same small-file folder and/or large file,
each as its own process measured from outside (wall, peak RSS, CPU from rusage), so the
variants of one round share the same background load. A variant is a value of
``SFTP_S3_CRT_DATA_PLANE`` (``off``, ``put``, ``all``), ``rclone`` (``copy``/``copyto
--sftp-disable-hashcheck``), or ``checkout=PATH`` (another checkout of the product, e.g. the
commit before a change: ``git archive <commit> | tar -x -C PATH``, then ``python -m
compileall -q PATH``, as the bench's environment writes no bytecode), which runs from PATH
with its own defaults.

    uv run python -m bench.ab --variants checkout=/tmp/base,put,off,rclone --small 2000
    uv run python -m bench.ab --store seaweedfs --small 1000 --large-mib 256 --rounds 1
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from .measure import run_measured
from .scenarios import Setup, base_env, product_argv, rclone_env
from .servers import (
    BUCKET,
    MotoServer,
    SeaweedServer,
    create_data,
    running_servers,
    start_seaweed,
)

GIB = 1 << 30


def _argv_env(
    setup: Setup,
    store: MotoServer | SeaweedServer,
    variant: str,
    source: str,
    dest: str,
    small: bool,
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one run of ``variant``."""
    access = store.access_key_id
    secret = store.secret_access_key
    if variant == "rclone":
        argv = [
            "rclone",
            "copy" if small else "copyto",
            f"src:{source.rstrip('/')}",
            f"dst:{dest.removeprefix('s3://')}",
            "--sftp-disable-hashcheck",
        ]
        env = rclone_env(setup)
        env.update(
            RCLONE_CONFIG_DST_ACCESS_KEY_ID=access, RCLONE_CONFIG_DST_SECRET_ACCESS_KEY=secret
        )
        return argv, env
    env = base_env(setup)
    env.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret)
    if variant.startswith("checkout="):
        env["PYTHONPATH"] = variant.removeprefix("checkout=")
    else:
        env["SFTP_S3_CRT_DATA_PLANE"] = variant
    return product_argv(setup, source, dest), env


def _label(variant: str) -> str:
    if variant.startswith("checkout="):
        return "checkout:" + Path(variant.removeprefix("checkout=")).name
    return variant[-24:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="off,put,rclone")
    parser.add_argument("--small", type=int, default=500, help="64 KiB files (0: none)")
    parser.add_argument("--large-mib", type=int, default=0, help="one file of this size")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", choices=("moto", "seaweedfs"), default="moto")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    base.chmod(0o755)  # sshd's password user reads the data folder
    large = args.large_mib << 20
    with running_servers(base) as (info, moto):
        data = create_data(info, [large] if large else [], args.small, 65536, 0)
        store: MotoServer | SeaweedServer = moto
        if args.store == "seaweedfs":
            store = start_seaweed(base / "seaweedfs")
        setup = Setup(info, store, data, base)  # type: ignore[arg-type]
        cases: list[tuple[str, str, int]] = []
        if args.small:
            cases.append(("small", data.small_folder + "/", args.small))
        if large:
            cases.append(("large", data.large[large], large))
        try:
            for round_, variant in itertools.product(range(args.rounds), args.variants.split(",")):
                for name, source, amount in cases:
                    small = name == "small"
                    dest = f"s3://{BUCKET}/ab-{round_}-{len(variant)}-{variant[-8:]}-{name}"
                    target = dest + "/" if small else dest
                    argv, env = _argv_env(setup, store, variant, source, target, small)
                    # ``python -m`` puts the working folder first on sys.path, before
                    # PYTHONPATH: another checkout runs from its own folder.
                    cwd = Path(env["PYTHONPATH"]) if "PYTHONPATH" in env else None
                    measured = run_measured(argv, env=env, cwd=cwd)
                    if measured.returncode:
                        print(f"{variant} {name} FAILED: {measured.stderr[-1000:]}")
                        continue
                    cpu = measured.cpu_seconds
                    if small:
                        rate = f"{amount / measured.seconds:7.1f} files/s"
                        cost = f"{cpu * 1000 / amount:6.2f} CPU ms/file"
                    else:
                        rate = f"{amount / measured.seconds / 1e6:7.1f} MB/s   "
                        cost = f"{cpu / (amount / GIB):6.2f} CPU s/GiB "
                    print(
                        f"r{round_} {_label(variant):24s} {name:5s} {rate} {cost} "
                        f"cpu {cpu:5.2f} s  rss {measured.peak_rss_bytes / 2**20:4.0f} MiB",
                        flush=True,
                    )
        finally:
            if store is not moto:
                store.stop()


if __name__ == "__main__":
    main()
