"""Running the CLI as a user does (a subprocess) and the flags that point it at the test servers."""

from __future__ import annotations

import os
import subprocess
import sys

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.servers import SftpServerInfo


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sftp_s3_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def source_url(server: SftpServerInfo, relative: str, user: str | None = None) -> str:
    user = user or server.username
    return f"sftp://{user}@{server.host}:{server.port}{server.remote_path(relative)}"


def key_args(server: SftpServerInfo, s3_endpoint: S3Endpoint) -> list[str]:
    assert s3_endpoint.endpoint_url
    return [
        "--identity",
        str(server.identity_file),
        "--known-hosts",
        str(server.known_hosts),
        "--endpoint-url",
        s3_endpoint.endpoint_url,
        "--no-agent",
    ]
