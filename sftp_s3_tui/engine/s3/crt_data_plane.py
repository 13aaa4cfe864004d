"""PutObject, UploadPart and small GetObjects through awscrt's S3 client: the data plane in C.

Why it is here: botocore's per-request work (serialising the parameters, the endpoint rule
set, the SigV4 signature, the user agent, the event hooks, aiohttp's request machinery) costs
2.3–2.6 CPU ms per request on the event loop, and on a small file that is most of what the
product spends (issue 29). awscrt's ``S3Client`` (already a dependency: botocore signs with
it) does the same request in C — the HTTP/1.1 connection pool, SigV4, the retry strategy —
for 0.7–0.9 CPU ms, and off the event loop. Measured here (``python -m bench.ab``, paired
runs, CPU from rusage, start-up included; bench/NOTES.md, issue 29), the same code with this
off → on: 2,000 × 64 KiB into moto 2.84 → 2.24 and 2.39 → 1.78 CPU ms per file (rclone
1.35–1.40), 1,000 into SeaweedFS 2.25 → 1.72 (rclone 0.95). That is PutObject, hence the
default ``put``. UploadPart through the CRT saved nothing per GiB (256 MiB into moto:
6.4–7.3 CPU s/GiB either way) and its copy of each part in flight added 30–40 MiB of peak
RSS, so parts stay on botocore by default.

GetObject of a whole object that fits one pool buffer (a delivery's listed small object,
:func:`reader.open_object`) goes the same way: its body is written by the CRT's thread
straight into the buffer, no Python copy. 300 GETs of 64 KiB from moto, 4 at once: 1.13–1.20
CPU ms per GET through botocore, 0.33–0.46 through the CRT. A GET of a range or of a bigger
object stays on botocore, whose body streams part after part into the pool's buffers.

What stays as it was:

- The request carries exactly what the botocore path sends: the checksums the store probe
  chose and the engine computed (``x-amz-checksum-*``, ``x-amz-sdk-checksum-algorithm``,
  ``Content-MD5``), metadata, object options and conditions. The CRT computes none of its own.
  The headers come from the botocore parameters through S3's service model, so a parameter
  is spelled as botocore spells it; a value that is not a string (none the engine sends
  today) makes that one request go through botocore.
- On ``http://`` endpoints the payload SHA-256 the engine computed is signed (as botocore
  does there); over https the body is ``UNSIGNED-PAYLOAD`` with its checksum header, as
  botocore sends it.
- The endpoint (custom URL, path-style or virtual-hosted, region) is the one botocore's
  endpoint rules resolve for the bucket, once per bucket; a bucket the store says is in
  another region (301, PermanentRedirect, AuthorizationHeaderMalformed) goes back to
  botocore, which follows the redirect. Credentials are botocore's
  resolved ones (whatever the chain: keys, profile, SSO, IMDS, web identity), frozen before
  each request (so a refresh is seen) and handed to the CRT as static credentials.
- Behind an HTTP proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` or botocore's
  ``proxies``) every request stays on botocore, which honours it.
- TLS: ``--no-verify-tls`` turns peer verification off, ``AWS_CA_BUNDLE`` replaces the trust
  store; a plain-http endpoint uses ``S3RequestTlsMode.DISABLED``.
- Errors become the botocore path's errors (a ``ClientError`` from the store's XML error, then
  :func:`operations.map_s3_error`), so the engine's retries with backoff, the precondition
  handling and the messages are the same. The CRT retries 5xx and connection errors itself,
  with backoff, up to the endpoint's ``max_attempts``, like botocore's standard mode.
- A cancel (the engine's deadline, Ctrl-C, a failed sibling part) cancels the CRT request
  and waits until the CRT has let go of the body: the pool buffer is never reused while the
  CRT could still read it.

The body is read from the pool's buffer by the CRT through ``readinto`` on a memoryview: no
Python copy. (The CRT keeps its own copy of a DEFAULT request's body for its retries: one
memcpy in C per request.)

Selected with ``SFTP_S3_CRT_DATA_PLANE`` (``all``/``1``, ``put``, ``off``/``0``); the default
is :data:`DEFAULT_MODE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import io
import os
import threading
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

from ..config import S3Endpoint
from ..errors import S3Error

ENV = "SFTP_S3_CRT_DATA_PLANE"
#: What goes through the CRT unless the environment says otherwise (``0``/``off``: nothing;
#: ``put``: PutObject, i.e. every file of one part; ``single``: the objects of one request,
#: PutObject and a small object's GetObject; ``1``/``all``: those and UploadPart).
DEFAULT_MODE = "single"

_OPERATIONS = ("PutObject", "UploadPart", "GetObject")
_MODES = {
    "0": (),
    "off": (),
    "false": (),
    "no": (),
    "put": ("PutObject",),
    "single": ("PutObject", "GetObject"),
    "1": _OPERATIONS,
    "all": _OPERATIONS,
    "on": _OPERATIONS,
    "true": _OPERATIONS,
    "yes": _OPERATIONS,
}


def selected() -> frozenset[str]:
    """The operations sent through the CRT (the environment, else :data:`DEFAULT_MODE`);
    none where the installed awscrt lacks what the plane uses (see :func:`crt_supported`)."""
    value = os.environ.get(ENV, "").strip().lower() or DEFAULT_MODE
    chosen = frozenset(_MODES.get(value, _MODES[DEFAULT_MODE]))
    return chosen if chosen and crt_supported() else frozenset()


@functools.cache
def crt_supported() -> bool:
    """True when awscrt's S3 client takes what the plane gives it (a retry config, a
    connect timeout, a cap on connections). The declared floor (awscrt 0.31, what the
    checksums need) predates them, and an Airflow worker may pin an older awscrt through
    botocore[crt]: there every request stays on botocore instead of failing."""
    try:
        import awscrt.s3
    except ImportError:
        return False
    if not hasattr(awscrt.s3, "S3RetryConfig"):
        return False
    wanted = {"retry_config", "connect_timeout_ms", "max_active_connections_override"}
    try:
        accepted = set(inspect.signature(awscrt.s3.S3Client).parameters)
    except (TypeError, ValueError):
        return False
    return wanted <= accepted


@dataclass(frozen=True)
class _Route:
    """Where a bucket's objects are: from botocore's endpoint rules, once per bucket."""

    secure: bool
    host: str  # the Host header (with a port when not the scheme's default)
    base_path: str  # "/bucket" path-style, "" virtual-hosted
    region: str
    service: str


@dataclass(frozen=True)
class _Shape:
    """An operation's header parameters, from S3's service model."""

    headers: dict[str, str]  # botocore parameter → header name
    prefixed: dict[str, str]  # map parameters (Metadata) → header prefix
    answers: dict[str, str]  # response header (lower case) → botocore field
    query: dict[str, str]  # botocore parameter → query string name (VersionId…)


def _shape(service_model: Any, operation: str) -> _Shape:
    model = service_model.operation_model(operation)
    headers: dict[str, str] = {}
    prefixed: dict[str, str] = {}
    query: dict[str, str] = {}
    for name, member in model.input_shape.members.items():
        where = member.serialization.get("location")
        if where == "header":
            headers[name] = member.serialization.get("name", name)
        elif where == "headers":
            prefixed[name] = member.serialization.get("name", "")
        elif where == "querystring":
            query[name] = member.serialization.get("name", name)
    answers = {
        member.serialization.get("name", name).lower(): name
        for name, member in model.output_shape.members.items()
        if member.serialization.get("location") == "header"
    }
    return _Shape(headers, prefixed, answers, query)


class _ViewReader(io.RawIOBase):
    """The body as the CRT reads it: ``readinto`` straight from the pool buffer's view."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, into: Any) -> int:
        n = min(len(into), len(self._view) - self._at)
        into[:n] = self._view[self._at : self._at + n]
        self._at += n
        return n

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._at, 2: len(self._view)}[whence]
        self._at = max(0, min(len(self._view), base + offset))
        return self._at

    def tell(self) -> int:
        return self._at


_bootstrap_lock = threading.Lock()
_bootstrap: Any = None


def _shared_bootstrap() -> Any:
    """One CRT event-loop group for the process (its threads run the requests' I/O)."""
    global _bootstrap
    with _bootstrap_lock:
        if _bootstrap is None:
            from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup

            group = EventLoopGroup()
            _bootstrap = ClientBootstrap(group, DefaultHostResolver(group))
        return _bootstrap


class CrtDataPlane:
    """PutObject and UploadPart of in-memory bodies through one ``awscrt.s3.S3Client``."""

    def __init__(
        self, client: Any, endpoint: S3Endpoint, connections: int, operations: frozenset[str]
    ) -> None:
        self._client = client
        self._operations = operations
        self._endpoint = endpoint
        self._connections = connections
        model = client.meta.service_model
        self._shapes = {operation: _shape(model, operation) for operation in _OPERATIONS}
        self._routes: dict[str, _Route | None] = {}
        self._crt: Any = None
        self._secure: bool | None = None
        self._provider: Any = None
        self._frozen: tuple[str, str, str | None] | None = None

    def takes(self, operation: str) -> bool:
        """Whether ``operation`` is sent through the CRT (as selected)."""
        return operation in self._operations

    # the parts botocore resolves ----------------------------------------------------------
    async def _route(self, bucket: str) -> _Route | None:
        """The bucket's endpoint as botocore's rules resolve it; None: leave it to botocore."""
        if bucket in self._routes:
            return self._routes[bucket]
        client = self._client
        operation = client.meta.service_model.operation_model("PutObject")
        context: dict[str, Any] = {
            "client_region": client.meta.region_name,
            "client_config": client.meta.config,
            "has_streaming_input": True,
            "auth_type": None,
        }
        route: _Route | None = None
        try:
            url, extra_headers, _ = await client._resolve_endpoint_ruleset(
                operation, {"Bucket": bucket, "Key": "k"}, context
            )
        except Exception:  # botocore will say what is wrong with the request
            url, extra_headers = None, None
        if url and not extra_headers:
            parts = urlsplit(url)
            signing = context.get("signing", {})
            route = _Route(
                secure=parts.scheme == "https",
                host=parts.netloc,
                base_path=parts.path.rstrip("/"),
                region=signing.get("region") or client.meta.region_name or "us-east-1",
                service=signing.get("signing_name") or "s3",
            )
        self._routes[bucket] = route
        return route

    async def _credentials(self) -> Any:
        """botocore's credentials, frozen now (a refreshable one refreshes), as a CRT provider."""
        from awscrt.auth import AwsCredentialsProvider
        from botocore.exceptions import NoCredentialsError

        credentials = self._client._request_signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        key = (frozen.access_key, frozen.secret_key, frozen.token or None)
        if key != self._frozen:
            self._provider = AwsCredentialsProvider.new_static(*key)
            self._frozen = key
        return self._provider

    def _s3_client(self, route: _Route) -> Any:
        """The CRT client, made at the first request (TLS as the endpoint's scheme says)."""
        if self._crt is not None:
            return self._crt
        from awscrt.io import ClientTlsContext, TlsContextOptions
        from awscrt.s3 import S3Client, S3RequestTlsMode, S3RetryConfig

        options: dict[str, Any] = {}
        if route.secure:
            tls = TlsContextOptions()
            if not self._endpoint.verify_tls:
                tls.verify_peer = False
            else:
                bundle = os.environ.get("AWS_CA_BUNDLE")
                if bundle:
                    tls.override_default_trust_store_from_path(None, bundle)
            options["tls_connection_options"] = ClientTlsContext(tls).new_connection_options()
            options["tls_mode"] = S3RequestTlsMode.ENABLED
        else:
            options["tls_mode"] = S3RequestTlsMode.DISABLED
        self._crt = S3Client(
            bootstrap=_shared_bootstrap(),
            region=route.region,
            max_active_connections_override=self._connections,
            retry_config=S3RetryConfig(max_retries=max(1, self._endpoint.max_attempts - 1)),
            connect_timeout_ms=int(self._endpoint.connect_timeout_seconds * 1000),
            **options,
        )
        self._secure = route.secure
        return self._crt

    # the requests -------------------------------------------------------------------------
    async def send(
        self,
        operation: str,
        bucket: str,
        key: str,
        body: bytearray,
        payload_sha256: str | None,
        what: str,
        query: str = "",
        **params: Any,
    ) -> dict[str, Any] | None:
        """One PutObject/UploadPart; its answer as botocore gives it, or None when this
        request is botocore's to send (a parameter or an endpoint the CRT path does not take)."""
        if operation not in self._operations:
            return None
        headers = self._headers(operation, params)
        if headers is None:
            return None
        return await self._request(
            operation, "PUT", bucket, key, memoryview(body), payload_sha256, headers, query, what
        )

    async def get_into(
        self, bucket: str, key: str, into: memoryview, what: str, **params: Any
    ) -> dict[str, Any] | None:
        """One GetObject of a whole object of exactly ``len(into)`` bytes, its body written
        into ``into`` by the CRT; its answer as botocore gives it (without ``Body``), or None
        when this request is botocore's to send. A body of another size is an S3Error."""
        if "GetObject" not in self._operations:
            return None
        shape = self._shapes["GetObject"]
        query = ""
        if "VersionId" in params:
            version = params.pop("VersionId")
            if not isinstance(version, str):
                return None
            query = f"?{shape.query['VersionId']}={quote(version, safe='')}"
        headers = self._headers("GetObject", params)
        if headers is None:
            return None
        answer = await self._request(
            "GetObject", "GET", bucket, key, None, None, headers, query, what, into
        )
        if answer is not None:
            if "LastModified" in answer:  # botocore's type: a datetime
                answer["LastModified"] = parsedate_to_datetime(answer["LastModified"])
            answer["ContentLength"] = int(answer.get("ContentLength", -1))
            if answer["ContentLength"] != len(into) or answer["_received"] != len(into):
                raise S3Error(
                    f"{what}: the store sent {answer['_received']} bytes of an object of "
                    f"{len(into)}",
                    "the connection may have dropped; run the copy again",
                )
            del answer["_received"]
        return answer

    def _headers(self, operation: str, params: dict[str, Any]) -> list[tuple[str, str]] | None:
        """The request headers of botocore parameters, spelled by S3's service model; None
        when one cannot go in a header as it is (the request is then botocore's)."""
        shape = self._shapes[operation]
        headers: list[tuple[str, str]] = []
        for name, value in params.items():
            if name in shape.prefixed and isinstance(value, dict):
                prefix = shape.prefixed[name]
                for field, text in value.items():
                    if not isinstance(text, str):
                        return None
                    headers.append((prefix + field, text))
            elif name in shape.headers and isinstance(value, str):
                headers.append((shape.headers[name], value))
            else:
                return None
        return headers

    async def _request(
        self,
        operation: str,
        method: str,
        bucket: str,
        key: str,
        body: memoryview | None,
        payload_sha256: str | None,
        headers: list[tuple[str, str]],
        query: str,
        what: str,
        into: memoryview | None = None,
    ) -> dict[str, Any] | None:
        """One request through the CRT, or None when its bucket's route is botocore's."""
        route = await self._route(bucket)
        if route is None or (self._secure is not None and self._secure != route.secure):
            return None
        provider = await self._credentials()
        crt = self._s3_client(route)
        from botocore.exceptions import ClientError

        call = _Call(operation, method, key, body, payload_sha256, headers, query, what, into)
        try:
            return await self._exchange(crt, route, provider, call)
        except ClientError as exc:
            if not _elsewhere(exc):
                raise
            # The bucket is in another region than the rules assumed: botocore follows the
            # redirect (and remembers the region); this bucket's requests stay with botocore.
            self._routes[bucket] = None
            return None

    async def _exchange(
        self, crt: Any, route: _Route, provider: Any, call: _Call
    ) -> dict[str, Any]:
        from awscrt.auth import (
            AwsSignatureType,
            AwsSignedBodyHeaderType,
            AwsSignedBodyValue,
            AwsSigningAlgorithm,
            AwsSigningConfig,
        )
        from awscrt.http import HttpHeaders, HttpRequest
        from awscrt.s3 import S3RequestType

        view, into = call.body, call.into
        path = f"{route.base_path}/{quote(call.key, safe='/~')}{call.query}"
        request_headers = HttpHeaders([("Host", route.host), *call.headers])
        if view is not None:
            request_headers.add("Content-Length", str(len(view)))
            stream: Any = _ViewReader(view)
            signed_body = call.payload_sha256 or AwsSignedBodyValue.UNSIGNED_PAYLOAD
        else:
            stream = None
            signed_body = AwsSignedBodyValue.EMPTY_SHA256
        request = HttpRequest(call.method, path, request_headers, stream)
        signing = AwsSigningConfig(
            algorithm=AwsSigningAlgorithm.V4,
            signature_type=AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=provider,
            region=route.region,
            service=route.service,
            use_double_uri_encode=False,
            should_normalize_uri_path=False,
            signed_body_value=signed_body,
            signed_body_header_type=AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        answer: dict[str, Any] = {}

        received = [0]

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            answer["status"] = status_code
            answer["headers"] = headers

        def on_body(chunk: bytes, offset: int, **_: Any) -> None:
            # a CRT thread, while the loop waits for on_done: the buffer is this request's
            assert into is not None
            end = offset + len(chunk)
            if end <= len(into):
                into[offset:end] = chunk
            received[0] = max(received[0], end)

        def on_done(
            error: BaseException | None = None,
            error_body: bytes | None = None,
            status_code: int | None = None,
            **_: Any,
        ) -> None:
            answer["error_body"] = error_body
            answer["error_status"] = status_code
            _hand_back(loop, done, error)

        s3_request = crt.make_request(
            type=S3RequestType.DEFAULT,
            request=request,
            operation_name=call.operation,
            signing_config=signing,
            on_headers=on_headers,
            on_body=on_body if into is not None else None,
            on_done=on_done,
        )
        try:
            error = await asyncio.shield(done)
        except asyncio.CancelledError:
            s3_request.cancel()  # and wait: the CRT may still be reading the buffer
            while not done.done():
                try:
                    await asyncio.shield(done)
                except asyncio.CancelledError:
                    continue
            raise
        finally:
            if view is not None:
                view.release()
        if error is not None:
            scheme = "https" if route.secure else "http"
            raise _client_error(
                error, answer, call.operation, call.what, f"{scheme}://{route.host}"
            )
        parsed = self._answer(call.operation, answer)
        if into is not None:
            parsed["_received"] = received[0]
        return parsed

    def _answer(self, operation: str, answer: dict[str, Any]) -> dict[str, Any]:
        """The response headers as botocore's parsed answer (ETag, Checksum*, VersionId…)."""
        names = self._shapes[operation].answers
        headers: list[tuple[str, str]] = answer.get("headers", [])
        parsed: dict[str, Any] = {}
        for name, value in headers:
            field = names.get(name.lower())
            if field is not None:
                parsed[field] = value
        parsed["ResponseMetadata"] = {
            "HTTPStatusCode": answer.get("status", 200),
            "HTTPHeaders": {name.lower(): value for name, value in headers},
        }
        return parsed


@dataclass(frozen=True)
class _Call:
    """One request: what goes out (a body for PUT) and where a GET's body goes (``into``)."""

    operation: str
    method: str
    key: str
    body: memoryview | None
    payload_sha256: str | None
    headers: list[tuple[str, str]]
    query: str
    what: str
    into: memoryview | None = None


def _hand_back(loop: asyncio.AbstractEventLoop, done: asyncio.Future[Any], error: Any) -> None:
    """From a CRT thread to the loop: the request ended (``error`` None when it succeeded)."""

    def settle() -> None:
        if not done.done():
            done.set_result(error)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        loop.call_soon_threadsafe(settle)


def _client_error(
    error: BaseException, answer: dict[str, Any], operation: str, what: str, url: str
) -> BaseException:
    """The CRT's failure as the botocore path raises it (then mapped by the caller): the
    store's error answer as a ``ClientError``, a lost connection as botocore's
    ``EndpointConnectionError``."""
    from awscrt.exceptions import AwsCrtError
    from awscrt.s3 import S3ResponseError
    from botocore.exceptions import ClientError, EndpointConnectionError

    status = answer.get("error_status") or getattr(error, "status_code", None)
    body = answer.get("error_body") or getattr(error, "body", None)
    if (status and status >= 300) or isinstance(error, S3ResponseError):
        code, message = _error_fields(body)
        if not code and isinstance(error, AwsCrtError):
            code = _CRT_CODES.get(error.name, "")
        headers = getattr(error, "headers", None) or []
        return ClientError(
            {
                "Error": {"Code": code or str(status), "Message": message},
                "ResponseMetadata": {
                    "HTTPStatusCode": status,
                    "HTTPHeaders": {k.lower(): v for k, v in headers},
                },
            },
            operation,
        )
    if isinstance(error, AwsCrtError):
        if "TLS" in error.name or "SSL" in error.name:
            return S3Error(
                f"{what}: the endpoint's TLS connection failed ({error.name})",
                "set AWS_CA_BUNDLE to its CA certificate, or pass --no-verify-tls (unsafe)",
            )
        if error.name in _CRT_CODES:
            code = _CRT_CODES[error.name]
            return ClientError({"Error": {"Code": code, "Message": error.message}}, operation)
        return EndpointConnectionError(endpoint_url=url, error=f"{error.name}: {error.message}")
    return error


#: The CRT's names for error answers whose body it did not hand over, as S3 codes.
_CRT_CODES = {
    "AWS_ERROR_S3_INTERNAL_ERROR": "InternalError",
    "AWS_ERROR_S3_SLOW_DOWN": "SlowDown",
    "AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED": "RequestTimeTooSkewed",
    "AWS_ERROR_S3_INVALID_RESPONSE_STATUS": "",
}


def _elsewhere(exc: Any) -> bool:
    """Whether the store answered that the bucket lives in another region."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status in (301, 307) or error.get("Code") in _REDIRECT_CODES


_REDIRECT_CODES = {"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed"}


def _error_fields(body: bytes | None) -> tuple[str, str]:
    """Code and Message of an S3 XML error body ('' where absent or unreadable)."""
    if not body:
        return "", ""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return "", body[:200].decode("utf-8", "replace")
    return root.findtext("Code") or "", root.findtext("Message") or ""


#: botocore sends through these; the CRT's S3 client here takes no proxy: stay on botocore.
_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")


def _proxied(client: Any) -> bool:
    """Whether botocore would go through an HTTP proxy (environment or ``proxies`` config)."""
    if any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES):
        return True
    return bool(getattr(client.meta.config, "proxies", None))


def open_plane(client: Any, endpoint: S3Endpoint, connections: int) -> CrtDataPlane | None:
    """The CRT data plane for ``client`` when selected (:func:`selected`), else None."""
    operations = selected()
    if not operations or _proxied(client):
        return None
    try:
        return CrtDataPlane(client, endpoint, connections, operations)
    except Exception:  # botocore's internals differ: stay on botocore
        return None
