"""Real servers on loopback for the demo and the tests: asyncssh SFTP, moto S3, sample files.

Nothing here is mocked at the protocol level: the SFTP server speaks SSH on a TCP port and the S3
server answers HTTP, so the engine talks to them exactly as it would to production servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncssh

from sftp_s3_tui.engine.config import MiB, S3Endpoint, SftpEndpoint

LOOPBACK = "127.0.0.1"

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
DEMO_BUCKETS = ("landing", "archive")
DEMO_REGION = "us-east-1"
DEMO_ACCESS_KEY_ID = "testing"
DEMO_SECRET_ACCESS_KEY = "testing"

# moto keeps each object (and each multipart part) in a SpooledTemporaryFile whose in-memory
# limit defaults to ~5 MiB (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE, read from os.environ every time a
# key is created). Above it the data goes to a temp file: in the demo that would show up as
# *our* process's disk writes, contradicting the "0 B written to disk" the app is about.
# Objects therefore stay in memory (which moto's process RSS shows instead).
MOTO_KEY_BUFFER_SIZE = 64 * 1024**4  # 64 TiB: never spool to disk
_MOTO_BUFFER_ENV = "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"
_S3_STARTUP_TIMEOUT_SECONDS = 30.0
_TREE_READY = b"sample tree ready"

#: Fixed modification time of the sample tree (2026-11-20 09:30:00 UTC), for stable screenshots.
SAMPLE_MTIME = 1_795_167_000


# --------------------------------------------------------------------------------------------
# Deterministic content
# --------------------------------------------------------------------------------------------

_BLOCK = 1 * MiB


def pattern_blocks(size: int, seed: int = 0) -> Iterable[bytes]:
    """Yield ``size`` deterministic pseudo-random bytes in blocks of at most 1 MiB.

    One random 1 MiB block is reused, but every 4 KiB carries its absolute offset, so no two
    blocks are equal and a reordered or duplicated part changes the bytes.
    """
    base = bytearray(random.Random(seed).randbytes(_BLOCK))
    offset = 0
    while offset < size:
        block = bytearray(base)
        for pos in range(0, _BLOCK, 4096):
            block[pos : pos + 8] = (offset + pos).to_bytes(8, "big")
        n = min(_BLOCK, size - offset)
        yield bytes(block[:n]) if n < _BLOCK else bytes(block)
        offset += n


def pattern_bytes(size: int, seed: int = 0) -> bytes:
    """Return :func:`pattern_blocks` as one bytes object (for small sizes)."""
    return b"".join(pattern_blocks(size, seed))


def csv_blocks(size: int, seed: int = 0) -> Iterable[bytes]:
    """Yield ``size`` bytes of CSV-looking text (a header, then rows with unique ids)."""
    rng = random.Random(seed)
    names = ["Ada", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Jürgen"]
    cities = ["Berlin", "Lisbon", "Osaka", "Lagos", "Lima", "Oslo", "Montréal", "Pune"]
    header = b"id,customer,city,amount_eur,ordered_at\n"
    rows = []
    for i in range(10_000):
        rows.append(
            f"BBBBBBBB{i:05d},{rng.choice(names)} {rng.randrange(1000):03d},{rng.choice(cities)},"
            f"{rng.randrange(100, 999_999) / 100:.2f},2026-11-{1 + i % 28:02d}T"
            f"{i % 24:02d}:{i % 60:02d}:00Z\n"
        )
    template = "".join(rows)
    written = 0
    block_no = 0
    pending = header
    while written < size:
        pending += template.replace("BBBBBBBB", f"{block_no:08d}").encode()
        block_no += 1
        chunk = pending[: size - written]
        pending = b""
        written += len(chunk)
        yield chunk


def write_blocks(path: Path, blocks: Iterable[bytes], *, mtime: float | None = None) -> None:
    """Write ``blocks`` to ``path`` (creating parents) and optionally set its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for block in blocks:
            f.write(block)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


# --------------------------------------------------------------------------------------------
# Sample tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleFile:
    """One generated sample file: path relative to the tree root, size and content kind."""

    path: str
    size: int
    kind: str  # "csv", "binary", "json" or "text"
    seed: int
    large_only: bool = False


def sample_files(*, large: bool = True) -> list[SampleFile]:
    """The sample tree's files (the big ones only when ``large``)."""
    files = [
        SampleFile("exports/customers_2026.csv", 300 * MiB, "csv", 1, large_only=True),
        SampleFile("exports/orders 2026-11.csv", 48 * MiB if large else 3 * MiB, "csv", 2),
        SampleFile("exports/ünïcode name.parquet", 3 * MiB + 123, "binary", 3),
        SampleFile("exports/README.txt", 2 * 1024, "text", 4),
        SampleFile("exports/empty.csv", 0, "csv", 5),
        SampleFile("exports/logs/2026-11/backup.tar.gz", 200 * MiB, "binary", 6, large_only=True),
        SampleFile("partners/globex/in/shipments.csv", 12 * MiB + 7, "csv", 7),
    ]
    for day in range(1, 21):
        size = 4 * 1024 + day * 37 * 1024
        files.append(
            SampleFile(f"exports/logs/2026-11/app-2026-11-{day:02d}.log", size, "text", 100 + day)
        )
    for i in range(200):
        size = 1024 + (i * 7919) % (16 * 1024)
        files.append(SampleFile(f"partners/acme/in/invoice_{i:04d}.json", size, "json", 1000 + i))
    return [f for f in files if large or not f.large_only]


_WORDS = ("lorem", "ipsum", "transfer", "part", "upload", "checksum", "partner", "export")


def _text_blocks(size: int, seed: int) -> Iterable[bytes]:
    """ASCII log-like lines, exactly ``size`` bytes."""
    rng = random.Random(seed)
    line = " ".join(rng.choice(_WORDS) for _ in range(12)) + "\n"
    data = (f"# sample {seed}\n" + line * (size // len(line) + 2)).encode()
    yield data[:size]


def _json_blocks(size: int, seed: int) -> Iterable[bytes]:
    """One valid JSON document of exactly ``size`` bytes (padded in a "notes" field)."""
    rng = random.Random(seed)
    head = (
        f'{{"invoice": "INV-{seed:06d}", "partner": "acme", '
        f'"amount_eur": {rng.randrange(100, 999_999) / 100:.2f}, "notes": "'
    )
    tail = '"}\n'
    pad = size - len(head) - len(tail)
    if pad < 0:
        raise ValueError(f"a JSON sample needs at least {len(head) + len(tail)} bytes")
    notes = (" ".join(rng.choice(_WORDS) for _ in range(pad // 5 + 1)))[:pad]
    yield (head + notes + tail).encode()


def make_sample_tree(root: Path, *, large: bool = True) -> list[Path]:
    """Create the deterministic sample tree under ``root`` and return the files' paths.

    Files that already exist with the right size are kept, so a persistent root is cheap to
    reuse. Every file and folder gets the same fixed mtime (:data:`SAMPLE_MTIME`).
    """
    root = Path(root)
    written: list[Path] = []
    for spec in sample_files(large=large):
        path = root / spec.path
        written.append(path)
        if path.is_file() and path.stat().st_size == spec.size:
            os.utime(path, (SAMPLE_MTIME, SAMPLE_MTIME))
            continue
        if spec.kind == "csv":
            blocks = csv_blocks(spec.size, spec.seed)
        elif spec.kind == "binary":
            blocks = pattern_blocks(spec.size, spec.seed)
        elif spec.kind == "json":
            blocks = _json_blocks(spec.size, spec.seed)
        else:
            blocks = _text_blocks(spec.size, spec.seed)
        write_blocks(path, blocks, mtime=SAMPLE_MTIME)
    (root / "partners/acme/out").mkdir(parents=True, exist_ok=True)
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.utime(dirpath, (SAMPLE_MTIME, SAMPLE_MTIME))
    return written


async def make_sample_tree_in_subprocess(root: Path, *, large: bool = True) -> None:
    """:func:`make_sample_tree` in a detached grandchild process.

    Linux adds a child's I/O counters to its parent's when the parent reaps it, so a plain child
    would put the tree's hundreds of MB into *our* write_bytes. ``sh -c '… &'`` exits at once and
    the grandchild, reaped by init, is awaited through the pipe it holds open until it ends.
    """
    command = [sys.executable, "-m", "sftp_s3_tui.demo", "make-tree", str(root)]
    if not large:
        command.append("--small")
    process = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        '"$@" &',
        "sh",
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = await process.stdout.read()  # EOF when the grandchild exits
    await process.wait()
    if _TREE_READY not in output:
        raise RuntimeError(f"writing the sample tree failed: {output.decode(errors='replace')}")


# --------------------------------------------------------------------------------------------
# SFTP
# --------------------------------------------------------------------------------------------


def die_with_parent() -> None:
    """``preexec_fn`` for server processes: SIGTERM them when their parent dies (Linux only).

    Keeps a killed test run from leaving servers behind on loopback ports. The signal fires
    when the *thread* that started the child exits, so only use it from long-lived threads.
    """
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free a moment ago (for servers that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def known_hosts_entry(host: str, port: int, public_key: str) -> str:
    """Return an OpenSSH known_hosts line (``[host]:port`` for non-default ports)."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {public_key}"


def openssh_public_key(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA…`` without a comment."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{algorithm} {blob}"


class SftpServerStats:
    """Counters of what clients did, shared by all sessions of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.read_requests = 0
        self.files_opened = 0

    def add_read(self, size: int) -> None:
        with self._lock:
            self.bytes_read += size
            self.read_requests += 1

    def reset(self) -> None:
        with self._lock:
            self.bytes_read = self.read_requests = self.files_opened = 0


class _CountingSFTPServer(asyncssh.SFTPServer):
    """The stock asyncssh SFTP server, chrooted, counting bytes handed to clients."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: bytes, stats: SftpServerStats):
        super().__init__(chan, chroot=root)
        self._stats = stats

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        self._stats.files_opened += 1
        return super().open(path, pflags, attrs)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)
        self._stats.add_read(len(data))
        return data


class _AuthServer(asyncssh.SSHServer):
    """Password auth against a dict; public-key auth against a set of allowed keys."""

    def __init__(
        self,
        passwords: Mapping[str, str],
        public_keys: frozenset[bytes],
        connections: set[asyncssh.SSHServerConnection],
    ):
        self._passwords = passwords
        self._public_keys = public_keys
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return bool(self._passwords)

    def validate_password(self, username: str, password: str) -> bool:
        return username in self._passwords and self._passwords[username] == password

    def public_key_auth_supported(self) -> bool:
        return bool(self._public_keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data in self._public_keys


class EmbeddedSftpServer:
    """An in-process asyncssh SFTP server on loopback, serving ``root`` as ``/``.

    ``users`` maps usernames to passwords; ``authorized_keys`` (public keys as ``SSHKey`` or
    OpenSSH strings) may log in as any user. Port 0 picks a free port. It runs on the event
    loop that calls :meth:`start`, so start it from the loop the client uses.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        users: Mapping[str, str] | None = None,
        authorized_keys: Sequence[asyncssh.SSHKey | str] = (),
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.root = Path(root).resolve()
        self.users = dict(users or {})
        self._authorized = frozenset(
            (asyncssh.import_public_key(k) if isinstance(k, str) else k).public_data
            for k in authorized_keys
        )
        self._host = host
        self._requested_port = port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.stats = SftpServerStats()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    async def start(self) -> Self:
        """Start listening; returns self."""
        root = os.fsencode(self.root)
        stats = self.stats
        self._acceptor = await asyncssh.listen(
            self._host,
            self._requested_port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _AuthServer(self.users, self._authorized, self._connections),
            sftp_factory=lambda chan: _CountingSFTPServer(chan, root, stats),
            allow_scp=False,
            reuse_address=True,
        )
        return self

    async def stop(self) -> None:
        """Stop listening and close every open client connection."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        await self.close_connections()

    async def close_connections(self) -> None:
        """Drop every client connection (the listener keeps accepting new ones)."""
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        for conn in connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)
        self._connections.difference_update(connections)

    @property
    def connection_count(self) -> int:
        """Client connections currently open."""
        return len(self._connections)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._acceptor is None:
            raise RuntimeError("EmbeddedSftpServer is not started")
        return self._acceptor.get_port()

    @property
    def bytes_read(self) -> int:
        """Bytes of file data all clients have read so far."""
        return self.stats.bytes_read

    @property
    def host_public_key(self) -> str:
        return openssh_public_key(self.host_key)

    @property
    def known_hosts_line(self) -> str:
        """``[127.0.0.1]:PORT ssh-ed25519 AAAA…``"""
        return known_hosts_entry(self.host, self.port, self.host_public_key)

    def write_known_hosts(self, path: Path | str) -> Path:
        """Write a known_hosts file holding only this server's key; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.known_hosts_line + "\n")
        return path


# --------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------


def _moto_wsgi_server(host: str, port: int) -> Any:
    """moto's S3 WSGI app (what ``ThreadedMotoServer`` runs) bound to ``host:port``, quiet."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
        def log_request(self, *args: object, **kwargs: object) -> None:
            pass

    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=QuietHandler)


def _serve_s3_child(host: str, port: int) -> None:
    """Child-process entry: serve moto, print the bound port, exit when the parent goes away."""
    server = _moto_wsgi_server(host, port)
    print(server.server_address[1], flush=True)

    def exit_with_parent() -> None:
        sys.stdin.buffer.read()  # EOF once the parent closes the pipe or dies
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    server.serve_forever()


class EmbeddedS3Server:
    """moto's S3 on loopback: in a child process (default) or in a thread of this process.

    In a child process the app's own RSS and disk-write counters show only the app, not the
    objects moto holds, and each server has its own state. ``in_process=True`` shares moto's
    process-wide backends (use unique bucket names) and starts faster. Either way objects are
    kept in memory (see :data:`MOTO_KEY_BUFFER_SIZE`) and request logging is off.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        in_process: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self.in_process = in_process
        self._log_file = log_file
        self._port: int | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._saved_buffer_env: str | None = None

    def start(self) -> Self:
        """Start serving; returns once the socket accepts connections."""
        if self.in_process:
            self._start_thread()
        else:
            self._start_process()
        return self

    def _start_thread(self) -> None:
        self._saved_buffer_env = os.environ.get(_MOTO_BUFFER_ENV)
        if self._saved_buffer_env is None:
            os.environ[_MOTO_BUFFER_ENV] = str(MOTO_KEY_BUFFER_SIZE)
        self._server = _moto_wsgi_server(self._host, self._requested_port)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-s3", daemon=True
        )
        self._thread.start()

    def _start_process(self) -> None:
        env = dict(os.environ)
        env.setdefault(_MOTO_BUFFER_ENV, str(MOTO_KEY_BUFFER_SIZE))
        command = [sys.executable, "-m", "sftp_s3_tui.demo", "s3-server"]
        command += ["--host", self._host, "--port", str(self._requested_port)]
        with contextlib.ExitStack() as stack:
            stderr: Any = subprocess.DEVNULL
            if self._log_file is not None:
                stderr = stack.enter_context(self._log_file.open("ab"))
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,  # no die_with_parent: start() may run in a short-lived thread
            )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], _S3_STARTUP_TIMEOUT_SECONDS)
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"moto S3 server did not start (see {self._log_file})")
        self._port = int(line)

    def stop(self) -> None:
        """Stop serving and close the listening socket (or end the child process)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            if self._saved_buffer_env is None:
                os.environ.pop(_MOTO_BUFFER_ENV, None)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            for pipe in (self._process.stdin, self._process.stdout):
                if pipe is not None:
                    pipe.close()
            self._process = None
        self._port = None

    @property
    def pid(self) -> int:
        """The process serving S3 (this one when ``in_process``)."""
        return self._process.pid if self._process is not None else os.getpid()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedS3Server is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def endpoint(self, **overrides: Any) -> S3Endpoint:
        """An :class:`S3Endpoint` for this server with the dummy credentials."""
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region": DEMO_REGION,
            "access_key_id": DEMO_ACCESS_KEY_ID,
            "secret_access_key": DEMO_SECRET_ACCESS_KEY,
            "path_style": True,
        }
        values.update(overrides)
        return S3Endpoint(**values)

    def client(self) -> Any:
        """A synchronous boto3 S3 client for this server (for setup and assertions)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=DEMO_REGION,
            aws_access_key_id=DEMO_ACCESS_KEY_ID,
            aws_secret_access_key=DEMO_SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )

    def create_bucket(self, name: str) -> None:
        """Create ``name`` (already existing is fine: moto's state is process-wide)."""
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def delete_bucket(self, name: str) -> None:
        """Abort uploads, delete every object (and version) and the bucket itself."""
        client = self.client()
        try:
            uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        except client.exceptions.NoSuchBucket:
            return
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
        client.delete_bucket(Bucket=name)


# --------------------------------------------------------------------------------------------
# Demo environment
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Child-process entry points
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sftp_s3_tui.demo s3-server | make-tree ROOT [--small]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sftp_s3_tui.demo")
    commands = parser.add_subparsers(dest="command", required=True)
    s3 = commands.add_parser("s3-server", help="serve moto S3; prints the bound port")
    s3.add_argument("--host", default=LOOPBACK)
    s3.add_argument("--port", type=int, default=0)
    tree = commands.add_parser("make-tree", help="write the sample tree")
    tree.add_argument("root", type=Path)
    tree.add_argument("--small", action="store_true", help="leave out the big files")
    args = parser.parse_args(argv)
    if args.command == "s3-server":
        _serve_s3_child(args.host, args.port)
    else:
        files = make_sample_tree(args.root, large=not args.small)
        sys.stdout.buffer.write(_TREE_READY + f" {len(files)} files\n".encode())


if __name__ == "__main__":
    main()
