"""S3 → SFTP delivery helpers: the target address, test bytes, and what landed on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.support.servers import SftpServerInfo


def target_url(server: SftpServerInfo, relative: str, user: str | None = None) -> str:
    """``sftp://user@host:port/<root>/relative`` (a trailing / kept: a folder)."""
    user = user or server.username
    path = server.remote_path(relative.rstrip("/")) + ("/" if relative.endswith("/") else "")
    return f"sftp://{user}@{server.host}:{server.port}{path}"


def pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (temporary ones included) by its relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def records(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *rows, summary = [json.loads(line) for line in stdout.splitlines()]
    return rows, summary
