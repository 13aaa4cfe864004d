"""The clients the benchmark compares, as command lines with their environment."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sftp_s3_tui.demo import DEMO_ACCESS_KEY_ID, DEMO_REGION, DEMO_SECRET_ACCESS_KEY
from tests.support.servers import SftpServerInfo

from .servers import BUCKET, DataSet, MotoServer

PART_SIZE = 8 << 20
PARTS_IN_FLIGHT = 8
PUT_LOOP_CONCURRENCY = 32

Unit = Literal["bytes", "files"]


@dataclass(frozen=True)
class Scenario:
    """One client doing one job; ``family`` is what ``--skip`` names."""

    name: str
    family: str
    group: str  # "1GiB", "256MiB", "small", …
    argv: list[str]
    env: dict[str, str]
    amount: int  # bytes or files moved
    unit: Unit
    key: str | None = None  # the object written (checked and deleted after the run)
    prefix: str | None = None  # the prefix written by a many-files run
    writes_s3: bool = True
    bytes_moved: int = 0  # for CPU per GiB (0: ``amount`` is bytes)
    notes: str = field(default="", compare=False)


@dataclass(frozen=True)
class Setup:
    """Where everything is: servers, data, scratch folder."""

    info: SftpServerInfo
    moto: MotoServer
    data: DataSet
    scratch: Path


def base_env(setup: Setup) -> dict[str, str]:
    """Our environment with moto's dummy credentials, no CA bundle, no agent, own state dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "SSH_AUTH_SOCK")}
    env.update(
        AWS_ACCESS_KEY_ID=DEMO_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DEMO_SECRET_ACCESS_KEY,
        AWS_REGION=DEMO_REGION,
        AWS_DEFAULT_REGION=DEMO_REGION,
        XDG_STATE_HOME=str(setup.scratch / "state"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("AWS_PROFILE", None)
    return env


def _sftp_args(info: SftpServerInfo) -> list[str]:
    return [
        "--host",
        info.host,
        "--port",
        str(info.port),
        "--user",
        info.username,
        "--identity",
        str(info.identity_file),
        "--known-hosts",
        str(info.known_hosts),
    ]


def _python(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def product_argv(setup: Setup, remote_path: str, dest: str, *extra: str) -> list[str]:
    """``sftp-s3-tui copy`` (run as ``python -m sftp_s3_tui`` to skip uv's own start-up)."""
    info = setup.info
    return [
        *_python("sftp_s3_tui"),
        "copy",
        f"sftp://{info.username}@{info.host}:{info.port}{remote_path}",
        dest,
        "--identity",
        str(info.identity_file),
        "--known-hosts",
        str(info.known_hosts),
        "--no-agent",
        "--endpoint-url",
        setup.moto.url,
        "--path-style",
        "--part-size",
        f"{PART_SIZE >> 20}MiB",
        "--concurrency",
        str(PARTS_IN_FLIGHT),
        "--json",
        *extra,
    ]


def rclone_env(setup: Setup) -> dict[str, str]:
    """rclone remotes ``src`` (sftp) and ``dst`` (s3, provider Other) from environment only."""
    info = setup.info
    config = setup.scratch / "rclone.conf"
    config.touch()
    env = base_env(setup)
    env.update(
        RCLONE_CONFIG=str(config),
        RCLONE_CONFIG_SRC_TYPE="sftp",
        RCLONE_CONFIG_SRC_HOST=info.host,
        RCLONE_CONFIG_SRC_PORT=str(info.port),
        RCLONE_CONFIG_SRC_USER=info.username,
        RCLONE_CONFIG_SRC_KEY_FILE=str(info.identity_file),
        RCLONE_CONFIG_SRC_KNOWN_HOSTS_FILE=str(info.known_hosts),
        RCLONE_CONFIG_DST_TYPE="s3",
        RCLONE_CONFIG_DST_PROVIDER="Other",
        RCLONE_CONFIG_DST_ENDPOINT=setup.moto.url,
        RCLONE_CONFIG_DST_ACCESS_KEY_ID=DEMO_ACCESS_KEY_ID,
        RCLONE_CONFIG_DST_SECRET_ACCESS_KEY=DEMO_SECRET_ACCESS_KEY,
        RCLONE_CONFIG_DST_REGION=DEMO_REGION,
        RCLONE_CONFIG_DST_FORCE_PATH_STYLE="true",
    )
    return env


RCLONE_TUNED = [
    "--s3-chunk-size",
    "8M",
    "--s3-upload-concurrency",
    str(PARTS_IN_FLIGHT),
    "--sftp-disable-hashcheck",
]


def openssh_batch(setup: Setup, remote_path: str) -> Path:
    batch = setup.scratch / f"sftp-batch-{Path(remote_path).name}"
    batch.write_text(f'get "{remote_path}" /dev/null\n')
    return batch


def large_file_scenarios(setup: Setup, size: int, label: str) -> list[Scenario]:
    """Every client on one large file."""
    info, moto, env = setup.info, setup.moto, base_env(setup)
    remote = setup.data.large[size]
    local = setup.data.large_local[size]
    s3 = ["--endpoint-url", moto.url, "--bucket", BUCKET]
    scenarios = [
        Scenario(
            "raw SFTP read (asyncssh, discarded)",
            "raw-sftp",
            label,
            [*_python("bench.clients.raw_sftp"), *_sftp_args(info), "--path", remote],
            env,
            size,
            "bytes",
            writes_s3=False,
        ),
        Scenario(
            "OpenSSH sftp get → /dev/null",
            "openssh-sftp",
            label,
            [
                "sftp",
                "-q",
                "-F",
                "/dev/null",
                "-b",
                str(openssh_batch(setup, remote)),
                "-i",
                str(info.identity_file),
                "-P",
                str(info.port),
                "-o",
                f"UserKnownHostsFile={info.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                f"{info.username}@{info.host}",
            ],
            env,
            size,
            "bytes",
            writes_s3=False,
        ),
        Scenario(
            "raw S3 multipart write (aioboto3)",
            "raw-s3",
            label,
            [
                *_python("bench.clients.raw_s3"),
                *s3,
                "--key",
                f"raw-s3/{label}",
                "--file",
                str(local),
                "--part-size",
                str(PART_SIZE),
                "--concurrency",
                str(PARTS_IN_FLIGHT),
            ],
            env,
            size,
            "bytes",
            key=f"raw-s3/{label}",
        ),
        Scenario(
            "raw S3 multipart write + CRC64NVME",
            "raw-s3",
            label,
            [
                *_python("bench.clients.raw_s3"),
                *s3,
                "--key",
                f"raw-s3-crc/{label}",
                "--file",
                str(local),
                "--part-size",
                str(PART_SIZE),
                "--concurrency",
                str(PARTS_IN_FLIGHT),
                "--checksum",
            ],
            env,
            size,
            "bytes",
            key=f"raw-s3-crc/{label}",
        ),
        Scenario(
            "sftp-s3-tui copy --no-resume",
            "product",
            label,
            product_argv(setup, remote, f"s3://{BUCKET}/product/{label}", "--no-resume"),
            env,
            size,
            "bytes",
            key=f"product/{label}",
        ),
        Scenario(
            "sftp-s3-tui copy (journal on)",
            "product",
            label,
            product_argv(setup, remote, f"s3://{BUCKET}/product-journal/{label}"),
            env,
            size,
            "bytes",
            key=f"product-journal/{label}",
        ),
        Scenario(
            "rclone copyto (defaults)",
            "rclone",
            label,
            ["rclone", "copyto", f"src:{remote}", f"dst:{BUCKET}/rclone/{label}"],
            rclone_env(setup),
            size,
            "bytes",
            key=f"rclone/{label}",
        ),
        Scenario(
            "rclone copyto (tuned)",
            "rclone",
            label,
            [
                "rclone",
                "copyto",
                f"src:{remote}",
                f"dst:{BUCKET}/rclone-tuned/{label}",
                *RCLONE_TUNED,
            ],
            rclone_env(setup),
            size,
            "bytes",
            key=f"rclone-tuned/{label}",
            notes="--s3-chunk-size 8M --s3-upload-concurrency 8 --sftp-disable-hashcheck",
        ),
        Scenario(
            "temp file, then upload (Airflow-style)",
            "spool",
            label,
            [
                *_python("bench.clients.spool"),
                *_sftp_args(info),
                "--path",
                remote,
                "--endpoint-url",
                moto.url,
                "--bucket",
                BUCKET,
                "--key",
                f"spool/{label}",
            ],
            env,
            size,
            "bytes",
            key=f"spool/{label}",
        ),
    ]
    return scenarios


def product_only(setup: Setup, size: int, label: str) -> list[Scenario]:
    """The product on a second size (for memory vs size) and the raw S3 limit beside it."""
    return [
        s
        for s in large_file_scenarios(setup, size, label)
        if s.family == "product" or s.name == "raw S3 multipart write (aioboto3)"
    ]


def small_file_scenarios(setup: Setup) -> list[Scenario]:
    """Many small files: the product, rclone (hash check off and on), a bare PutObject loop."""
    data, env = setup.data, base_env(setup)
    count, subset = data.small_count, data.subset_count
    scenarios = [
        Scenario(
            f"sftp-s3-tui copy folder ({count} files)",
            "product",
            "small",
            product_argv(setup, data.small_folder + "/", f"s3://{BUCKET}/product-small/"),
            env,
            count,
            "files",
            prefix="product-small/",
            bytes_moved=count * data.small_size,
        ),
        Scenario(
            f"sftp-s3-tui copy folder --files 32 --s3-concurrency 32 ({count} files)",
            "product",
            "small",
            product_argv(
                setup,
                data.small_folder + "/",
                f"s3://{BUCKET}/product-small-32/",
                "--files",
                "32",
                "--s3-concurrency",
                "32",
            ),
            env,
            count,
            "files",
            prefix="product-small-32/",
            bytes_moved=count * data.small_size,
        ),
        Scenario(
            f"rclone copy --sftp-disable-hashcheck ({count} files)",
            "rclone",
            "small",
            [
                "rclone",
                "copy",
                f"src:{data.small_folder}",
                f"dst:{BUCKET}/rclone-small/",
                "--sftp-disable-hashcheck",
            ],
            rclone_env(setup),
            count,
            "files",
            prefix="rclone-small/",
            bytes_moved=count * data.small_size,
        ),
        Scenario(
            f"bare PutObject loop, {PUT_LOOP_CONCURRENCY} at once ({count} files)",
            "put-loop",
            "small",
            [
                *_python("bench.clients.put_loop"),
                "--endpoint-url",
                setup.moto.url,
                "--bucket",
                BUCKET,
                "--prefix",
                "put-loop/",
                "--count",
                str(count),
                "--size",
                str(data.small_size),
                "--concurrency",
                str(PUT_LOOP_CONCURRENCY),
            ],
            env,
            count,
            "files",
            prefix="put-loop/",
            bytes_moved=count * data.small_size,
        ),
    ]
    if subset:  # --md5-subset 0 leaves rclone's slow default run out
        scenarios.append(
            Scenario(
                f"rclone copy, default md5 check ({subset} files)",
                "rclone",
                "small",
                ["rclone", "copy", f"src:{data.subset_folder}", f"dst:{BUCKET}/rclone-small-md5/"],
                rclone_env(setup),
                subset,
                "files",
                prefix="rclone-small-md5/",
                bytes_moved=subset * data.small_size,
            )
        )
    return scenarios
