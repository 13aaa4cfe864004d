"""The fault proxy's own modes: latency as a delay line, a flipped byte a real S3 refuses."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import sys
import time
from asyncio.subprocess import PIPE
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import fault_proxy as proxy_module
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import S3Store

RTT_SECONDS = 2.0  # long, so a loaded box still sends every chunk within RTT/2


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_latency_delays_every_chunk_by_half_the_rtt_each_way_in_parallel() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = proxy_module.start("127.0.0.1", port, rtt_seconds=RTT_SECONDS)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        chunks = [bytes([n]) * 1000 for n in range(5)]
        sent_at: list[float] = []
        for n, chunk in enumerate(chunks):
            writer.write(chunk)
            await writer.drain()
            sent_at.append(time.monotonic())
            # The proxy takes the next chunk while the earlier ones still wait: a delay line.
            await proxy.wait_for(functools.partial(_holds, wanted=1000 * (n + 1)))
        assert proxy.bytes_delayed > 1000, "several chunks are held at once"
        echoed = await asyncio.wait_for(reader.readexactly(5000), timeout=30)
        round_trip = time.monotonic() - sent_at[-1]
        assert echoed == b"".join(chunks), "order and bytes are kept"
        assert round_trip >= RTT_SECONDS - 0.01, "the last chunk came back no sooner than RTT"
        await proxy.wait_for(lambda p: p.bytes_up == p.bytes_down == 5000)
        writer.close()
        await writer.wait_closed()
        await proxy.wait_for(lambda p: p.open_connections == 0)
    finally:
        proxy.stop()
        server.close()
        await server.wait_closed()


async def test_the_proxy_runs_as_its_own_process_for_the_bench() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    command = [sys.executable, "-m", "tests.support.fault_proxy", "127.0.0.1", str(port)]
    process = await asyncio.create_subprocess_exec(
        *command, "--rtt-seconds", "0.2", stdin=PIPE, stdout=PIPE
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        proxy_port = int(await asyncio.wait_for(process.stdout.readline(), timeout=60))
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
        started = time.monotonic()
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), timeout=30) == b"ping"
        assert time.monotonic() - started >= 0.2 - 0.01
        writer.close()
        await writer.wait_closed()
        process.stdin.close()  # the parent going away ends it
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        server.close()
        await server.wait_closed()


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("s3_store", ["seaweedfs"], indirect=True)
def test_a_flipped_byte_is_refused_by_seaweedfs_then_the_retry_lands(
    s3_store: S3Store, s3: Any, bucket: str
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    with FaultProxy(s3_store.host, s3_store.port) as proxy:
        client = _client_through(s3_store, proxy.url)
        proxy.flip_byte(nth=1, match="/corrupt.bin")
        with pytest.raises(ClientError) as refused:
            client.put_object(Bucket=bucket, Key="corrupt.bin", Body=data, ContentMD5=_md5(data))
        assert refused.value.response["Error"]["Code"] == "BadDigest"
        assert proxy.flips == 1
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        client.put_object(Bucket=bucket, Key="corrupt.bin", Body=data, ContentMD5=_md5(data))
        assert proxy.flips == 1, "the flip happens once"
    assert s3.get_object(Bucket=bucket, Key="corrupt.bin")["Body"].read() == data


def _client_through(store: S3Store, url: str) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = store.endpoint(endpoint_url=url)
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        config=Config(
            s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}
        ),
    )


def test_the_flip_finds_the_nth_matching_body_across_chunks_and_requests() -> None:
    from tests.support.fault_proxy import _FlipRule, _HttpRequests

    def request(target: str, body: bytes) -> bytes:
        head = f"PUT {target} HTTP/1.1\r\nHost: s3\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    stream = (
        request("/b/k?partNumber=1", b"a" * 10)
        + b"GET /b/k?partNumber=9 HTTP/1.1\r\nHost: s3\r\n\r\n"  # no body: not counted
        + request("/b/k?partNumber=2", b"b" * 10)
        + request("/b/k?partNumber=3", b"c" * 10)
    )
    rule = _FlipRule(nth=2, match=b"partNumber=")
    parser = _HttpRequests()
    out = b"".join(parser.feed(stream[i : i + 7], rule)[0] for i in range(0, len(stream), 7))

    assert len(out) == len(stream)
    changed = [i for i, (x, y) in enumerate(zip(out, stream, strict=True)) if x != y]
    assert len(changed) == 1 and stream[changed[0]] == ord("b"), "one byte of part 2's body"
    ssh = b"SSH-2.0-OpenSSH_9.2\r\n" + bytes(range(256))
    assert _HttpRequests().feed(ssh, _FlipRule(nth=1, match=b""))[0] == ssh


def _holds(proxy: FaultProxy, *, wanted: int) -> bool:
    """The proxy has taken ``wanted`` bytes in (held or sent on)."""
    return proxy.bytes_delayed + proxy.bytes_up >= wanted
