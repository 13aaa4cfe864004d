"""A real Prometheus push gateway for the metrics tests (import ``pushgateway_url`` to use it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PUSHGATEWAY_NAMES = ("prometheus-pushgateway", "pushgateway")


def _find_pushgateway() -> str | None:
    explicit = os.environ.get("PUSHGATEWAY_BIN")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in PUSHGATEWAY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(reason: str) -> None:
    if os.environ.get("SFTP_S3_REQUIRE_INTEROP") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pushgateway_url() -> Iterator[str]:
    """Start ``prometheus-pushgateway`` on a free local port; yields ``http://127.0.0.1:PORT``."""
    binary = _find_pushgateway()
    if binary is None:
        _missing("prometheus-pushgateway is not installed (set PUSHGATEWAY_BIN or install it)")
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            # Debian's build persists to /var/lib/prometheus by default: keep groups in memory,
            # so runs (and other fixtures) never see each other's pushes.
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    _missing(f"pushgateway exited: {log.read().decode(errors='replace')}")
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("pushgateway did not become ready within 15 s")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
