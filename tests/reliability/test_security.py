"""Secrets stay secret; host keys and TLS certificates are checked unless the user opts out."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sftp_s3_tui.demo import EmbeddedS3Server
from sftp_s3_tui.engine.config import HostKeyPolicy, S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.errors import TransferError
from sftp_s3_tui.engine.events import TransferState
from tests.engine.helpers import copy
from tests.servers import SftpServerInfo
from tests.test_cli_copy import run_cli, source_url

from .conftest import assert_nothing_written, assert_object
from .proxy import FaultProxy
from .s3faults import FaultyS3Server

SFTP_SECRET = "sftp-Pass/word+0123456789"
AWS_SECRET = "aws/Secret+Key-9876543210abcdefXYZ"


def secret_env(server: SftpServerInfo) -> dict[str, str]:
    assert server.password_user
    return {"SFTP_PASSWORD": SFTP_SECRET, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}


async def test_no_secret_in_engine_logs_results_or_errors(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Everything at DEBUG (asyncssh, botocore, the engine), a success and two failures."""
    remote = openssh_sftp.write_file("in/a.csv", size=6 << 20, seed=51)
    assert openssh_sftp.password_user and openssh_sftp.password
    good_sftp = openssh_sftp.endpoint("password")
    bad_sftp = replace(good_sftp, password=SFTP_SECRET)
    s3_endpoint = s3_faults.endpoint(moto_server, secret_access_key=AWS_SECRET)
    s3_faults.fail(None, 403, code="SignatureDoesNotMatch", after=1, times=None)
    texts: list[str] = [repr(bad_sftp), repr(s3_endpoint)]

    with caplog.at_level(logging.DEBUG):
        [refused_s3] = await copy(good_sftp, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)
        s3_faults.clear()
        [done] = await copy(good_sftp, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)
        with pytest.raises(TransferError) as refused_sftp:
            await copy(bad_sftp, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)

    assert refused_s3.status is TransferState.FAILED and done.status is TransferState.DONE
    assert "refused the login" in str(refused_sftp.value)
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    texts += [str(refused_s3.as_json()), str(done.as_json()), str(refused_sftp.value)]
    assert len(caplog.records) > 20, "DEBUG logging was not captured"
    for text in texts:
        assert SFTP_SECRET not in text and openssh_sftp.password not in text
        assert AWS_SECRET not in text


def test_no_secret_in_cli_output_with_vv_json_and_metrics(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    pushgateway: str,
    pushgateway_server: Any,
) -> None:
    openssh_sftp.write_file("in/a.csv", size=6 << 20, seed=52)
    assert openssh_sftp.password_user and openssh_sftp.password and s3_endpoint.endpoint_url
    common = [
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--no-agent",
        "--endpoint-url",
        s3_endpoint.endpoint_url,
        "--push-gateway",
        pushgateway,
        "--json",
    ]
    url = source_url(openssh_sftp, "in/a.csv", user=openssh_sftp.password_user)

    good = run_cli(
        "-vv",
        "copy",
        url,
        f"s3://{bucket}/",
        *common,
        env={"SFTP_PASSWORD": openssh_sftp.password, "AWS_SECRET_ACCESS_KEY": AWS_SECRET},
    )
    bad = run_cli(
        "-vv",
        "copy",
        url,
        f"s3://{bucket}/again/",
        *common,
        env={"SFTP_PASSWORD": SFTP_SECRET, "AWS_SECRET_ACCESS_KEY": AWS_SECRET},
    )

    assert good.returncode == 0, good.stderr
    assert bad.returncode == 4 and "refused the login" in bad.stderr
    metrics = pushgateway_server.metrics_text()
    for text in (good.stdout, good.stderr, bad.stdout, bad.stderr, metrics):
        assert openssh_sftp.password not in text and SFTP_SECRET not in text
        assert AWS_SECRET not in text


def test_host_keys_are_checked_by_default(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """No --known-hosts: ~/.ssh/known_hosts (absent here) is used, and unknown means refused."""
    openssh_sftp.write_file("in/a.csv", b"a")
    assert s3_endpoint.endpoint_url
    default_known_hosts = Path.home() / ".ssh" / "known_hosts"
    assert not default_known_hosts.exists()

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "in/a.csv"),
        f"s3://{bucket}/",
        "--identity",
        str(openssh_sftp.identity_file),
        "--no-agent",
        "--endpoint-url",
        s3_endpoint.endpoint_url,
    )

    assert done.returncode == 4
    assert "is unknown" in done.stderr and "SHA256:" in done.stderr
    assert not default_known_hosts.exists()
    assert SftpEndpoint(host="h").host_key_policy is HostKeyPolicy.STRICT
    assert_nothing_written(s3, bucket)


# ---------------------------------------------------------------------------------- TLS


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed; returns (cert, key) PEM paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def https_s3(moto_server: EmbeddedS3Server, tmp_path: Path) -> Iterator[tuple[FaultProxy, Path]]:
    """moto behind a TLS-terminating proxy with a self-signed certificate."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with FaultProxy(moto_server.host, moto_server.port, tls=context) as proxy:
        yield proxy, cert


async def test_tls_is_verified_unless_explicitly_disabled(
    openssh_sftp: SftpServerInfo,
    https_s3: tuple[FaultProxy, Path],
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    proxy, _cert = https_s3
    remote = openssh_sftp.write_file("in/a.csv", size=70_000, seed=53)
    args = [
        "--identity",
        str(openssh_sftp.identity_file),
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--no-agent",
        "--endpoint-url",
        proxy.url,
    ]
    assert proxy.url.startswith("https://")

    # In process with one attempt: botocore would retry the handshake with backoff (~20 s).
    endpoint = moto_server.endpoint(endpoint_url=proxy.url, max_attempts=1)
    assert endpoint.verify_tls, "verification is on unless the user turns it off"
    [refused] = await copy(
        openssh_sftp.endpoint(), [remote.remote_path], f"s3://{bucket}/", endpoint
    )
    assert refused.status is TransferState.FAILED
    assert "TLS certificate is not trusted" in refused.message
    assert "AWS_CA_BUNDLE" in refused.message and "--no-verify-tls" in refused.message
    assert_nothing_written(s3, bucket)

    insecure = await asyncio.to_thread(
        run_cli,
        "copy",
        source_url(openssh_sftp, "in/a.csv"),
        f"s3://{bucket}/",
        *args,
        "--no-verify-tls",
    )
    assert insecure.returncode == 0, insecure.stderr
    assert_object(s3, bucket, "a.csv", remote.read_bytes())


def test_a_private_ca_from_aws_ca_bundle_is_trusted(
    openssh_sftp: SftpServerInfo, https_s3: tuple[FaultProxy, Path], s3: Any, bucket: str
) -> None:
    """Verification stays on and uses the standard AWS_CA_BUNDLE (MinIO / corporate CAs)."""
    proxy, cert = https_s3
    remote = openssh_sftp.write_file("in/a.csv", size=70_000, seed=54)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "in/a.csv"),
        f"s3://{bucket}/",
        "--identity",
        str(openssh_sftp.identity_file),
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--no-agent",
        "--endpoint-url",
        proxy.url,
        env={"AWS_CA_BUNDLE": str(cert)},
    )

    assert done.returncode == 0, done.stderr
    assert_object(s3, bucket, "a.csv", remote.read_bytes())
