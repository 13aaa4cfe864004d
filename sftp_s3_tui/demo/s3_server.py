"""The embedded S3 server (moto on loopback), in a child process or a thread."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sftp_s3_tui.engine.config import S3Endpoint

from .settings import (
    _MOTO_BUFFER_ENV,
    _S3_STARTUP_TIMEOUT_SECONDS,
    DEMO_ACCESS_KEY_ID,
    DEMO_REGION,
    DEMO_SECRET_ACCESS_KEY,
    LOOPBACK,
    MOTO_KEY_BUFFER_SIZE,
)


def _moto_wsgi_server(host: str, port: int) -> Any:
    """moto's S3 WSGI app (what ``ThreadedMotoServer`` runs) bound to ``host:port``, quiet."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    handler: type[WSGIRequestHandler] = WSGIRequestHandler  # older moto (the demo allows 5.0)
    with contextlib.suppress(ImportError):  # moto >= 5.2.5 keeps x-amz-meta-a_b headers
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        handler = MotoRequestHandler

    class QuietHandler(handler):  # type: ignore[misc, valid-type]
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
