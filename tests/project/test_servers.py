"""The test servers are real: clients log in, host keys are checked, bytes come back intact."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

import asyncssh
import psutil
import pytest
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry, Counter, push_to_gateway

from sftp_s3_tui.demo import DemoEnvironment, EmbeddedS3Server, make_sample_tree, sample_files
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint
from tests.support.servers import (
    PushGateway,
    S3Store,
    SeaweedFsServer,
    SftpServerInfo,
    read_back,
    sha256_file,
)


def port_is_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


async def test_sshd_key_login_reads_file_with_host_key_checked(sshd: SftpServerInfo) -> None:
    file = sshd.write_file("key/data.bin", size=3 * 1024 * 1024 + 17, seed=1)
    data = await read_back(sshd, file.remote_path, "key")
    assert hashlib.sha256(data).hexdigest() == file.sha256 == sha256_file(file.local_path)


async def test_sshd_password_login_reads_file(openssh_sftp: SftpServerInfo) -> None:
    file = openssh_sftp.write_file("password/hello.txt", b"hello from sshd\n")
    assert file.remote_path.startswith(str(openssh_sftp.root))
    assert await read_back(openssh_sftp, file.remote_path, "password") == b"hello from sshd\n"


async def test_sshd_rejects_unknown_host_key(sshd: SftpServerInfo, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    other.write_text(f"[127.0.0.1]:{sshd.port} {stranger}")
    options = sshd.connect_options("key") | {"known_hosts": str(other)}
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect(**options):
            pass


async def test_sshd_rejects_wrong_password(sshd: SftpServerInfo) -> None:
    options = sshd.connect_options("password") | {"password": "wrong"}
    with pytest.raises(asyncssh.PermissionDenied):
        async with asyncssh.connect(**options):
            pass


async def test_embedded_server_serves_utf8_names_by_key_and_password(
    embedded_sftp: SftpServerInfo,
) -> None:
    file = embedded_sftp.write_file("in/ünïcode name.csv", b"id,name\n1,J\xc3\xbcrgen\n")
    assert file.remote_path == "/in/ünïcode name.csv"
    for auth in ("key", "password"):
        assert await read_back(embedded_sftp, file.remote_path, auth) == file.read_bytes()
    assert embedded_sftp.server.bytes_read == 2 * file.size


async def test_embedded_server_is_chrooted(embedded_sftp: SftpServerInfo) -> None:
    embedded_sftp.write_file("a.txt", b"a")
    async with (
        asyncssh.connect(**embedded_sftp.connect_options()) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert sorted(await sftp.listdir("/..")) == [".", "..", "a.txt"]
        assert await sftp.realpath("/../..") == "/"


async def test_embedded_server_stop_closes_client_connections(
    embedded_sftp: SftpServerInfo,
) -> None:
    server = embedded_sftp.server
    conn = await asyncssh.connect(**embedded_sftp.connect_options())
    assert server.connection_count == 1
    await server.close_connections()
    await asyncio.wait_for(conn.wait_closed(), timeout=5)
    assert server.connection_count == 0
    conn = await asyncssh.connect(**embedded_sftp.connect_options())
    await server.stop()
    await asyncio.wait_for(conn.wait_closed(), timeout=5)
    assert not port_is_open(embedded_sftp.host, embedded_sftp.port)


async def test_both_servers_give_the_same_bytes(sftp_server: SftpServerInfo) -> None:
    file = sftp_server.write_file("nested dir/ünï file.bin", size=9 * 1024 * 1024 + 5, seed=7)
    assert await read_back(sftp_server, file.remote_path, "key") == file.read_bytes()
    endpoint = sftp_server.endpoint()
    assert isinstance(endpoint, SftpEndpoint)
    assert endpoint.port == sftp_server.port
    assert endpoint.known_hosts_path == sftp_server.known_hosts
    assert sftp_server.endpoint("password").password == sftp_server.password


def test_moto_put_and_get(s3: Any, bucket: str, s3_endpoint: S3Endpoint) -> None:
    assert s3_endpoint.path_style and s3_endpoint.endpoint_url
    s3.put_object(Bucket=bucket, Key="dir/ünï.txt", Body=b"payload")
    assert s3.get_object(Bucket=bucket, Key="dir/ünï.txt")["Body"].read() == b"payload"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def _upload_two_part_object(s3: Any, bucket: str, key: str) -> int:
    """A 6 MiB + 1 KiB multipart object: both parts above moto's default 5 MiB spool size."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    parts = [b"a" * (6 * 1024 * 1024), b"b" * 1024]
    etags = [
        s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=n, Body=body
        )["ETag"]
        for n, body in enumerate(parts, start=1)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
    )
    return sum(map(len, parts))


def test_moto_process_writes_nothing_to_disk(
    moto_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    assert moto_server.pid != os.getpid()
    moto = psutil.Process(moto_server.pid)
    # A first upload on a fresh install imports moto's S3 handlers and writes their bytecode:
    # that is Python's cache, not the objects. Only the second upload is measured.
    _upload_two_part_object(s3, bucket, "warm-up.bin")
    written_before = moto.io_counters().write_bytes
    size = _upload_two_part_object(s3, bucket, "big.bin")
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == size
    assert moto.io_counters().write_bytes == written_before


def test_in_process_moto_keeps_objects_in_memory() -> None:
    with EmbeddedS3Server(in_process=True) as server:
        port = server.port
        server.create_bucket("in-process-memory")
        try:
            _upload_two_part_object(server.client(), "in-process-memory", "big.bin")
            from moto.s3.models import s3_backends

            bucket = s3_backends["123456789012"]["global"].buckets["in-process-memory"]
            assert bucket.keys["big.bin"]._value_buffer._rolled is False  # no temp file
        finally:
            server.delete_bucket("in-process-memory")
    assert not port_is_open(server.host, port)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_seaweedfs_is_a_working_s3(seaweedfs_server: SeaweedFsServer) -> None:
    s3 = seaweedfs_server.client()
    bucket = "seaweed-works"
    seaweedfs_server.create_bucket(bucket)
    try:
        md5 = _md5_b64(b"payload")
        s3.put_object(Bucket=bucket, Key="dir/ünï.txt", Body=b"payload", ContentMD5=md5)
        assert s3.get_object(Bucket=bucket, Key="dir/ünï.txt")["Body"].read() == b"payload"
        size = _upload_two_part_object(s3, bucket, "big.bin")
        head = s3.head_object(Bucket=bucket, Key="big.bin")
        assert head["ContentLength"] == size
        assert head["ETag"].endswith('-2"')
        body = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
        assert body == b"a" * (6 * 1024 * 1024) + b"b" * 1024
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        seaweedfs_server.delete_bucket(bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_seaweedfs_refuses_a_bad_content_md5_and_a_bad_part_checksum(
    seaweedfs_server: SeaweedFsServer,
) -> None:
    s3 = seaweedfs_server.client()
    bucket = "seaweed-digests"
    seaweedfs_server.create_bucket(bucket)
    try:
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=bucket, Key="k", Body=b"payload", ContentMD5=_md5_b64(b"other"))
        assert refused.value.response["Error"]["Code"] == "BadDigest"
        upload = s3.create_multipart_upload(Bucket=bucket, Key="m", ChecksumAlgorithm="CRC32")
        zero_crc = base64.b64encode(b"\0\0\0\0").decode()
        with pytest.raises(ClientError) as bad_part:
            s3.upload_part(
                Bucket=bucket,
                Key="m",
                UploadId=upload["UploadId"],
                PartNumber=1,
                Body=b"part",
                ChecksumCRC32=zero_crc,
            )
        assert bad_part.value.response["Error"]["Code"] == "BadDigest"
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    finally:
        seaweedfs_server.delete_bucket(bucket)


@pytest.mark.all_stores
def test_every_store_gives_a_fresh_bucket_and_lists_open_uploads(
    s3_store: S3Store, s3: Any, bucket: str, s3_endpoint: S3Endpoint
) -> None:
    assert bucket == s3_store.bucket and s3_endpoint.endpoint_url == s3_store.endpoint_url
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    upload = s3.create_multipart_upload(Bucket=bucket, Key="open.bin")
    assert [u["UploadId"] for u in s3_store.open_uploads()] == [upload["UploadId"]]
    s3.abort_multipart_upload(Bucket=bucket, Key="open.bin", UploadId=upload["UploadId"])
    assert s3_store.open_uploads() == []


def test_pushgateway_accepts_a_push(fresh_pushgateway: PushGateway, pushgateway: str) -> None:
    assert fresh_pushgateway.url == pushgateway
    registry = CollectorRegistry()
    counter = Counter("sftp_s3_test_pushes", "A test counter.", registry=registry)
    counter.inc(3)
    push_to_gateway(pushgateway, job="sftp-s3-test", registry=registry)
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'sftp_s3_test_pushes_total{instance="",job="sftp-s3-test"} 3' in text
    fresh_pushgateway.wipe()
    assert "sftp_s3_test_pushes_total" not in fresh_pushgateway.metrics_text()


def test_environment_is_isolated_from_the_user(isolated_environment: Path) -> None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    assert Path.home() == isolated_environment
    assert os.environ["XDG_CONFIG_HOME"].startswith(str(isolated_environment))
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert "AWS_PROFILE" not in os.environ and "SSH_AUTH_SOCK" not in os.environ
    assert not Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).exists()
    assert isinstance(keyring.get_keyring(), FailKeyring)


def test_sample_tree_is_deterministic(tmp_path: Path) -> None:
    first = make_sample_tree(tmp_path / "a", large=False)
    second = make_sample_tree(tmp_path / "b", large=False)
    assert len(first) > 200
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        assert a.stat().st_mtime == b.stat().st_mtime
    assert (tmp_path / "a/exports/orders 2026-11.csv").read_bytes().startswith(b"id,customer,")
    for spec in sample_files(large=False):
        assert (tmp_path / "a" / spec.path).stat().st_size == spec.size
        if spec.kind == "json":
            json.loads((tmp_path / "a" / spec.path).read_text())


async def test_demo_environment_serves_tree_and_buckets_then_stops() -> None:
    me = psutil.Process()
    written_before = me.io_counters().write_bytes
    async with DemoEnvironment(large=False) as env:
        # The sample tree (~20 MB here) is written by a detached process: not on our counters.
        assert me.io_counters().write_bytes - written_before < 1024 * 1024
        host, port, endpoint_url = env.host, env.port, env.endpoint_url
        sftp_endpoint = env.sftp_endpoint
        async with (
            asyncssh.connect(
                sftp_endpoint.host,
                sftp_endpoint.port,
                username=sftp_endpoint.username,
                password=sftp_endpoint.password,
                known_hosts=sftp_endpoint.known_hosts,
                client_keys=None,
                agent_path=None,
                config=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            assert {"exports", "partners"} <= set(await sftp.listdir("/"))
            exports = set(await sftp.listdir("/exports"))
            assert {"orders 2026-11.csv", "ünïcode name.parquet", "logs"} <= exports
            assert len(await sftp.listdir("/partners/acme/in")) >= 202
        async with asyncssh.connect(
            env.host,
            env.port,
            username=env.username,
            client_keys=[str(env.identity_file)],
            known_hosts=str(env.known_hosts),
            agent_path=None,
            config=None,
        ) as conn:
            with pytest.raises(asyncssh.ChannelOpenError):  # SFTP only, no shell
                await conn.run("true")
            async with conn.start_sftp_client() as sftp:
                assert await sftp.getsize("/exports/ünïcode name.parquet") == 3 * 1024 * 1024 + 123

        s3 = env.s3.client() if env.s3 else None
        assert s3 is not None and env.s3_endpoint.endpoint_url == endpoint_url
        assert {"landing", "archive"} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
        keys = [
            o["Key"] for o in s3.list_objects_v2(Bucket="landing", Prefix="2026-10/")["Contents"]
        ]
        assert "2026-10/orders 2026-10.csv" in keys
        tmp_dir = env.tmp_dir
        known_hosts = tmp_dir.parent / f"{tmp_dir.name}-known_hosts"
        known_hosts.write_text(env.known_hosts.read_text())
    with pytest.raises((OSError, asyncssh.Error)):  # nothing of ours answers any more
        await asyncssh.connect(
            host, port, known_hosts=str(known_hosts), username="demo", password="demo"
        )
    assert not port_is_open("127.0.0.1", int(endpoint_url.rsplit(":", 1)[1]))
    assert not tmp_dir.exists()
    known_hosts.unlink()
