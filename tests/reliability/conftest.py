"""Fixtures of the reliability suite: fault proxies in front of sshd and S3, a faulty S3."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import S3Store, SftpServerInfo
from tests.support.transfers import stored_sha256

from .s3faults import FaultyS3Server


def proxied(info: SftpServerInfo, proxy: FaultProxy, folder: Path) -> SftpServerInfo:
    """``info`` as seen through ``proxy``: its port, and a known_hosts that trusts the
    server's key at the proxy's address (so the host key is still checked)."""
    known = folder / f"known_hosts-{proxy.port}"
    lines = info.known_hosts.read_text().replace(f"]:{info.port} ", f"]:{proxy.port} ")
    known.write_text(lines)
    return replace(info, port=proxy.port, known_hosts=known)


@pytest.fixture
def sshd_proxy(openssh_sftp: SftpServerInfo) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's real sshd."""
    with FaultProxy(openssh_sftp.host, openssh_sftp.port) as proxy:
        yield proxy


@pytest.fixture
def via_proxy(
    openssh_sftp: SftpServerInfo, sshd_proxy: FaultProxy, tmp_path: Path
) -> SftpServerInfo:
    """The real sshd (per-test folder) reached through ``sshd_proxy``."""
    return proxied(openssh_sftp, sshd_proxy, tmp_path)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[EmbeddedS3Server]:
    """moto in this process, so the faulty S3's WSGI app shares its in-memory buckets."""
    with EmbeddedS3Server(in_process=True) as server:
        yield server


@pytest.fixture(scope="session")
def faulty_s3(moto_server: EmbeddedS3Server) -> Iterator[FaultyS3Server]:
    """moto behind the fault-injecting WSGI wrapper (same buckets as ``moto_server``)."""
    with FaultyS3Server() as server:
        yield server


@pytest.fixture
def s3_faults(faulty_s3: FaultyS3Server) -> Iterator[FaultyS3Server]:
    """``faulty_s3`` with no rule armed at the start and the end of the test."""
    faulty_s3.clear()
    yield faulty_s3
    faulty_s3.clear()


@pytest.fixture
def faulty_endpoint(s3_faults: FaultyS3Server, moto_server: EmbeddedS3Server) -> S3Endpoint:
    """The engine's endpoint for the faulty S3."""
    endpoint: S3Endpoint = s3_faults.endpoint(moto_server)
    return endpoint


@pytest.fixture
def s3_proxy(s3_store: S3Store) -> Iterator[FaultProxy]:
    """A fault proxy in front of the test's S3 store (moto unless marked ``all_stores``)."""
    with FaultProxy(s3_store.host, s3_store.port) as proxy:
        yield proxy


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_object(s3: Any, bucket: str, key: str, expected: bytes) -> None:
    """The object holds exactly ``expected``, and its stored sha256 says so."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(body) == len(expected)
    assert sha256(body) == sha256(expected)
    assert stored_sha256(s3, bucket, key) == sha256(expected)


def assert_nothing_written(s3: Any, bucket: str) -> None:
    """No object and no multipart upload in ``bucket``."""
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []
