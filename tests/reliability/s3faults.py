"""S3 faults through the real server: moto's WSGI app behind a wrapper that fails chosen requests.

The wrapper names each request's S3 operation (UploadPart, CompleteMultipartUpload, …) and,
when an armed :class:`Rule` matches, answers with a real S3 XML error (500 InternalError,
503 SlowDown, 403 ExpiredToken / InvalidAccessKeyId) or resets the connection; or lets moto
act and then answers late (LATE) or only after a callback ran (THEN: another writer's request
landing while ours is in flight). Everything else goes to moto. moto's backends are
process-wide, so this server shares its buckets and objects with the session's
``moto_server``: the ordinary ``s3`` client sees what it stored.

It can also play a store that handles ``x-amz-checksum-*`` badly (:meth:`FaultyS3Server.checksums`):

* ``refuse``: any request carrying a checksum header of the chosen algorithms gets 400
  InvalidArgument or 501 NotImplemented (as stores that do not know CRC64NVME answer);
* ``ignore``: those headers are dropped before moto sees them, and no checksum comes back
  (no echo, nothing on HEAD, none in the Complete / ListParts XML);
* ``disagree``: moto stores and checks nothing differently, but every checksum value it
  answers (headers and XML) is altered, so it never matches the client's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs

from sftp_s3_tui.demo import LOOPBACK, EmbeddedS3Server

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
RESET = 0  # a rule "status" that resets the connection instead of answering
LATE = -1  # a rule "status" that lets moto act, then holds the answer back ``delay`` seconds
THEN = -2  # a rule "status" that lets moto act, then runs ``then()`` before answering

ChecksumBehaviour = Literal["refuse", "ignore", "disagree"]
CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
_CHECKSUM_REFUSALS = {
    400: ("InvalidArgument", "x-amz-checksum-{algorithm} is not supported by this store"),
    501: (
        "NotImplemented",
        "A header you provided implies functionality that is not implemented",
    ),
}
_XML_CHECKSUM = re.compile(
    rb"<Checksum(CRC32C?|CRC64NVME|SHA1|SHA256|Type|Algorithm)>([^<]*)</Checksum\1>"
)


def operation(environ: dict[str, Any]) -> str:
    """The S3 operation a request performs (the subset the engine uses)."""
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = environ.get("PATH_INFO", "/").strip("/")
    has_key = "/" in path
    if method == "PUT" and "partNumber" in query:
        return "UploadPartCopy" if "HTTP_X_AMZ_COPY_SOURCE" in environ else "UploadPart"
    if method == "PUT" and has_key:
        return "CopyObject" if "HTTP_X_AMZ_COPY_SOURCE" in environ else "PutObject"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "GET" and "uploadId" in query:
        return "ListParts"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    return f"{method} {'object' if has_key else 'bucket'}"


def access_key(environ: dict[str, Any]) -> str:
    """The access key id a SigV4 request was signed with ('' if unsigned)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    _, _, rest = auth.partition("Credential=")
    return rest.split("/", 1)[0]


@dataclass
class Rule:
    """Fail requests of ``operation`` (None: any): skip ``after`` matches, then fail ``times``
    of them (None: all). ``access_key`` narrows the rule to requests signed with that key.
    ``status`` RESET resets the connection; LATE lets moto act and answers ``delay`` s late;
    THEN lets moto act and runs ``then()`` (another client's request, say) before answering."""

    operation: str | None
    status: int
    code: str = ""
    message: str = ""
    after: int = 0
    times: int | None = 1
    access_key: str | None = None
    delay: float = 0.0
    then: Callable[[], object] | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, environ: dict[str, Any]) -> bool:
        if self.operation is not None and operation(environ) != self.operation:
            return False
        if self.access_key is not None and access_key(environ) != self.access_key:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass
class ChecksumMode:
    """How the store treats ``x-amz-checksum-*`` of ``algorithms`` (see the module doc)."""

    behaviour: ChecksumBehaviour
    algorithms: frozenset[str]
    status: int = 400
    hits: int = 0  # requests refused, stripped or answered with altered values

    def requested(self, environ: dict[str, Any]) -> list[str]:
        """The environ keys of this request that ask for one of our checksums."""
        found = []
        for key, value in environ.items():
            if not key.startswith("HTTP_X_AMZ_"):
                continue
            name = key[len("HTTP_X_AMZ_") :].lower()
            if name.startswith("checksum_") and name[len("checksum_") :] in self.algorithms:
                found.append(key)  # x-amz-checksum-crc64nvme: <value>
            elif name in ("sdk_checksum_algorithm", "checksum_algorithm") and (
                str(value).lower() in self.algorithms
            ):
                found.append(key)  # x-amz-checksum-algorithm: CRC64NVME
        if found and "HTTP_X_AMZ_CHECKSUM_TYPE" in environ:
            found.append("HTTP_X_AMZ_CHECKSUM_TYPE")
        return found

    def applies_to_answer(self, name: str) -> bool:
        """True when a checksum header or element ``name`` (e.g. 'crc64nvme') is ours."""
        if name in ("type", "algorithm"):  # kept as they are, unless the store ignores it all
            return self.behaviour == "ignore"
        return name in self.algorithms


@dataclass
class FaultyApp:
    """The WSGI wrapper: armed rules first, then the checksum mode, then moto."""

    app: WsgiApp
    rules: list[Rule] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # operations whose answer went out
    lock: threading.Lock = field(default_factory=threading.Lock)
    checksum_mode: ChecksumMode | None = None
    #: AWS's own check of the signed body hash (moto and SeaweedFS ignore it): None off;
    #: "check" refuses a wrong ``x-amz-content-sha256``; "strict" refuses UNSIGNED-PAYLOAD too.
    payload_check: Literal["check", "strict"] | None = None
    #: each PUT's (operation, path, x-amz-content-sha256), in order
    payload_sha256s: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = list(self._answer(environ, start_response))
        with self.lock:
            self.answered.append(operation(environ))
        return answer

    def _answer(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        with self.lock:
            self.requests.append(operation(environ))
            rule = next((r for r in self.rules if r.matches(environ)), None)
            mode = self.checksum_mode
            payload_check = self.payload_check
        if environ["REQUEST_METHOD"] == "PUT":
            refused = self._payload_refused(environ, payload_check)
            if refused is not None:
                return _error(environ, start_response, 400, *refused)
        if rule is None and mode is not None:
            return self._with_checksum_mode(mode, environ, start_response)
        if rule is None:
            return self.app(environ, start_response)
        if rule.status == LATE:
            answer = list(self.app(environ, start_response))
            time.sleep(rule.delay)
            return answer
        if rule.status == THEN:
            answer = list(self.app(environ, start_response))
            assert rule.then is not None, "a THEN rule needs then="
            rule.then()
            return answer
        if rule.status == RESET:
            _reset(environ)
            start_response("500 Reset", [("Content-Length", "0")])  # goes nowhere: reset
            return []
        _drain(environ)
        code, message = ERRORS.get(rule.status, ("", ""))
        return _error(
            environ, start_response, rule.status, rule.code or code, rule.message or message
        )

    def _payload_refused(
        self, environ: dict[str, Any], check: Literal["check", "strict"] | None
    ) -> tuple[str, str] | None:
        """Note a PUT's ``x-amz-content-sha256``; under ``check`` compare it with the body's
        SHA-256, as AWS does (the body is read and handed on to moto unchanged)."""
        claimed = environ.get("HTTP_X_AMZ_CONTENT_SHA256", "")
        with self.lock:
            tagging = "tagging" in environ.get("QUERY_STRING", "")  # operation() says PutObject
            what = "PutObjectTagging" if tagging else operation(environ)
            self.payload_sha256s.append((what, environ.get("PATH_INFO", ""), claimed))
        if check is None:
            return None
        if claimed == "UNSIGNED-PAYLOAD":
            if check == "strict":
                return "AccessDenied", "UNSIGNED-PAYLOAD is not accepted on this endpoint"
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if claimed and hashlib.sha256(body).hexdigest() != claimed:
            return (
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        return None

    def _with_checksum_mode(
        self, mode: ChecksumMode, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        asked = mode.requested(environ)
        if asked and mode.behaviour == "refuse":
            with self.lock:
                mode.hits += 1
            _drain(environ)
            algorithm = next(
                (k[len("HTTP_X_AMZ_CHECKSUM_") :].lower() for k in asked if "_CHECKSUM_" in k),
                "",
            )
            code, message = _CHECKSUM_REFUSALS[mode.status]
            return _error(
                environ,
                start_response,
                mode.status,
                code,
                message.format(algorithm=algorithm or environ.get(asked[0], "")),
            )
        if mode.behaviour == "ignore":
            for key in asked:
                del environ[key]
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None  # moto never uses write()

        answer = self.app(environ, capture)
        try:
            body = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        headers, altered = _answer_headers(mode, captured["headers"])
        if b"<Checksum" in body[: 1 << 20] and _is_xml(headers):
            body, altered_xml = _answer_xml(mode, body)
            altered = altered or altered_xml
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        if altered or asked:
            with self.lock:
                mode.hits += 1
        start_response(captured["status"], headers, captured["exc_info"])
        return [body]


def _is_xml(headers: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "content-type" and "xml" in v for k, v in headers)


def _altered(value: str) -> str:
    """A checksum of the same shape as ``value`` that is not ``value``."""
    core, dash, count = value.partition("-")
    try:
        raw = bytearray(base64.b64decode(core, validate=True))
    except ValueError:
        return value + "x"
    raw[0] ^= 0x5A
    return base64.b64encode(bytes(raw)).decode() + dash + count


def _answer_headers(
    mode: ChecksumMode, headers: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], bool]:
    out: list[tuple[str, str]] = []
    altered = False
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("x-amz-checksum-") and mode.applies_to_answer(lower[15:]):
            altered = True
            if mode.behaviour == "ignore":
                continue
            if lower != "x-amz-checksum-type":
                value = _altered(value)
        elif lower == "x-amz-sdk-checksum-algorithm" and mode.behaviour == "ignore":
            continue
        out.append((name, value))
    return out, altered


def _answer_xml(mode: ChecksumMode, body: bytes) -> tuple[bytes, bool]:
    altered = False

    def replace(match: re.Match[bytes]) -> bytes:
        nonlocal altered
        name = match.group(1).decode().lower()
        if not mode.applies_to_answer(name):
            return match.group(0)
        altered = True
        if mode.behaviour == "ignore":
            return b""
        if name in ("type", "algorithm"):
            return match.group(0)
        tag = match.group(1)
        value = _altered(match.group(2).decode()).encode()
        return b"<Checksum" + tag + b">" + value + b"</Checksum" + tag + b">"

    return _XML_CHECKSUM.sub(replace, body), altered


def _error(
    environ: dict[str, Any], start_response: StartResponse, status: int, code: str, message: str
) -> list[bytes]:
    """An S3 XML error answer."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()
    start_response(
        f"{status} {code}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def _drain(environ: dict[str, Any]) -> None:
    """Read the request body, as S3 does before it answers an error."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while length > 0:
        block = stream.read(min(length, 1 << 20))
        if not block:
            break
        length -= len(block)


def _reset(environ: dict[str, Any]) -> None:
    """Drop the connection with a RST, mid-request (the body is left unread)."""
    sock: socket.socket | None = environ.get("werkzeug.socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)


class FaultyS3Server:
    """moto's S3 app behind :class:`FaultyApp`, served by werkzeug on loopback in a thread."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.app: FaultyApp | None = None

    def start(self) -> Self:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
            def log_request(self, *args: object, **kwargs: object) -> None:
                pass

            def log_error(self, *args: object, **kwargs: object) -> None:
                pass

        self.app = FaultyApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, 0, self.app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faulty-s3", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

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
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail(self, operation: str | None, status: int, **rule: Any) -> Rule:
        """Arm a rule (see :class:`Rule`); returns it so a test can read ``fired``."""
        assert self.app is not None
        armed = Rule(operation, status, **rule)
        with self.app.lock:
            self.app.rules.append(armed)
        return armed

    def checksums(
        self,
        behaviour: ChecksumBehaviour | None,
        *,
        algorithms: Iterable[str] = CHECKSUM_ALGORITHMS,
        status: int = 400,
    ) -> ChecksumMode | None:
        """Play a store that refuses / ignores / disagrees on ``x-amz-checksum-*`` of
        ``algorithms`` (lower case, e.g. ``("crc64nvme",)``) until :meth:`clear`;
        ``status`` 400 (InvalidArgument) or 501 (NotImplemented) for ``refuse``.
        Returns the mode (``hits`` counts the requests it changed); None turns it off."""
        assert self.app is not None
        if status not in _CHECKSUM_REFUSALS:
            raise ValueError(f"status must be one of {sorted(_CHECKSUM_REFUSALS)}")
        mode = None
        if behaviour is not None:
            mode = ChecksumMode(behaviour, frozenset(a.lower() for a in algorithms), status)
        with self.app.lock:
            self.app.checksum_mode = mode
        return mode

    def payload_hashes(self, check: Literal["check", "strict"] | None) -> None:
        """Play a store that checks each PUT's signed body SHA-256 (``check``; ``strict``:
        and refuses UNSIGNED-PAYLOAD) until :meth:`clear`; None: ignore it, as moto does."""
        assert self.app is not None
        with self.app.lock:
            self.app.payload_check = check

    @property
    def payload_sha256s(self) -> list[tuple[str, str, str]]:
        """Each PUT's (operation, path, ``x-amz-content-sha256``) so far."""
        assert self.app is not None
        with self.app.lock:
            return list(self.app.payload_sha256s)

    def clear(self) -> None:
        assert self.app is not None
        with self.app.lock:
            self.app.rules.clear()
            self.app.requests.clear()
            self.app.answered.clear()
            self.app.checksum_mode = None
            self.app.payload_check = None
            self.app.payload_sha256s.clear()

    @property
    def answered(self) -> list[str]:
        """The operations answered since the last :meth:`clear`, in order."""
        assert self.app is not None
        with self.app.lock:
            return list(self.app.answered)

    @property
    def requests(self) -> list[str]:
        """The operations received since the last :meth:`clear`, in order."""
        assert self.app is not None
        with self.app.lock:
            return list(self.app.requests)

    def endpoint(self, moto: EmbeddedS3Server, **overrides: Any) -> Any:
        """The engine's S3Endpoint for this server (moto's dummy credentials)."""
        return moto.endpoint(endpoint_url=self.endpoint_url, **overrides)
