"""The demo environment: both servers, the sample tree, seeded buckets, one context manager."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncssh

from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint

from .content import csv_blocks, make_sample_tree_in_subprocess, pattern_bytes
from .s3_server import EmbeddedS3Server
from .settings import (
    DEMO_ACCESS_KEY_ID,
    DEMO_BUCKETS,
    DEMO_PASSWORD,
    DEMO_REGION,
    DEMO_SECRET_ACCESS_KEY,
    DEMO_USERNAME,
)
from .sftp_server import EmbeddedSftpServer

_SEED_OBJECTS = {
    "landing": {
        "2026-10/orders 2026-10.csv": 96 * 1024,
        "2026-10/customers.csv": 180 * 1024,
        "2026-10/logs/app-2026-10-31.log": 12 * 1024,
        "README.txt": 512,
    },
    "archive": {
        "2025/orders-2025.csv.gz": 64 * 1024,
    },
}


class DemoEnvironment:
    """Both demo servers on loopback over a temporary sample tree; stops everything on exit.

    The sample tree is written and moto runs in child processes, so this process's RSS and
    disk-write counters (what the app displays) show only the transfers.

    User ``demo``/``demo`` (or the generated client key at :attr:`identity_file`); buckets
    ``landing`` (with objects under ``2026-10/``) and ``archive``.
    """

    def __init__(
        self,
        *,
        sample_root: Path | str | None = None,
        large: bool = True,
        buckets: Sequence[str] = DEMO_BUCKETS,
        in_process_s3: bool = False,
    ) -> None:
        self._in_process_s3 = in_process_s3
        self._given_root = Path(sample_root) if sample_root is not None else None
        self._large = large
        self._buckets = tuple(buckets)
        self._tmp: Path | None = None
        self.sftp: EmbeddedSftpServer | None = None
        self.s3: EmbeddedS3Server | None = None
        self._client_key = asyncssh.generate_private_key("ssh-ed25519")
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="sftp-s3-demo-"))
        self._tmp = tmp
        self._stack.callback(shutil.rmtree, tmp, True)
        root = self._given_root or tmp / "sftp"
        self._client_key.write_private_key(self.identity_file)
        self.identity_file.chmod(0o600)

        s3 = EmbeddedS3Server(in_process=self._in_process_s3, log_file=tmp / "s3.log")
        self._stack.callback(s3.stop)  # safe even if start fails half-way
        await asyncio.gather(
            make_sample_tree_in_subprocess(root, large=self._large),
            asyncio.to_thread(s3.start),
        )
        self.s3 = s3
        await asyncio.to_thread(self._seed_buckets, s3)
        if s3.in_process:  # moto's state outlives the server thread
            self._stack.push_async_callback(asyncio.to_thread, self._delete_buckets, s3)

        sftp = EmbeddedSftpServer(
            root,
            users={DEMO_USERNAME: DEMO_PASSWORD},
            authorized_keys=[self._client_key.convert_to_public()],
        )
        await sftp.start()
        self.sftp = sftp
        self._stack.push_async_callback(sftp.stop)
        sftp.write_known_hosts(self.known_hosts)

    def _seed_buckets(self, s3: EmbeddedS3Server) -> None:
        client = s3.client()
        for bucket in self._buckets:
            s3.create_bucket(bucket)
            for n, (key, size) in enumerate(_SEED_OBJECTS.get(bucket, {}).items()):
                body = (
                    b"".join(csv_blocks(size, 500 + n))
                    if key.endswith(".csv")
                    else (pattern_bytes(size, 500 + n))
                )
                client.put_object(Bucket=bucket, Key=key, Body=body)

    def _delete_buckets(self, s3: EmbeddedS3Server) -> None:
        for bucket in self._buckets:
            s3.delete_bucket(bucket)

    def _require(self) -> tuple[EmbeddedSftpServer, EmbeddedS3Server]:
        if self.sftp is None or self.s3 is None:
            raise RuntimeError("DemoEnvironment is not started")
        return self.sftp, self.s3

    @property
    def tmp_dir(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("DemoEnvironment is not started")
        return self._tmp

    @property
    def sample_root(self) -> Path:
        return self._require()[0].root

    @property
    def host(self) -> str:
        return self._require()[0].host

    @property
    def port(self) -> int:
        return self._require()[0].port

    @property
    def username(self) -> str:
        return DEMO_USERNAME

    @property
    def password(self) -> str:
        return DEMO_PASSWORD

    @property
    def known_hosts(self) -> Path:
        return self.tmp_dir / "known_hosts"

    @property
    def identity_file(self) -> Path:
        return self.tmp_dir / "id_ed25519"

    @property
    def endpoint_url(self) -> str:
        return self._require()[1].endpoint_url

    @property
    def region(self) -> str:
        return DEMO_REGION

    @property
    def aws_access_key_id(self) -> str:
        return DEMO_ACCESS_KEY_ID

    @property
    def aws_secret_access_key(self) -> str:
        return DEMO_SECRET_ACCESS_KEY

    @property
    def buckets(self) -> tuple[str, ...]:
        return self._buckets

    @property
    def sftp_endpoint(self) -> SftpEndpoint:
        """Password login as ``demo``, host key checked against :attr:`known_hosts`."""
        return SftpEndpoint(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_agent=False,
            known_hosts=str(self.known_hosts),
        )

    @property
    def s3_endpoint(self) -> S3Endpoint:
        return self._require()[1].endpoint()
