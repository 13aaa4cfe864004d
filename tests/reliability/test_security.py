"""Secrets stay secret; host keys and TLS certificates are checked unless the user opts out."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sftp_s3_tui.demo import EmbeddedS3Server
from sftp_s3_tui.engine.config import HostKeyPolicy, S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.errors import HostKeyError, TransferError
from sftp_s3_tui.engine.events import TransferState
from tests.support.cli import run_cli, source_url
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import SftpServerInfo
from tests.support.transfers import copy

from .conftest import assert_nothing_written, assert_object
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


# --------------------------------------------------------------------------------------------
# known_hosts markers: @cert-authority and @revoked, as OpenSSH reads them
# --------------------------------------------------------------------------------------------


class _PasswordLogin(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == SFTP_SECRET


@contextlib.asynccontextmanager
async def _sshd(
    root: Path, host_key: asyncssh.SSHKey, signed_by: asyncssh.SSHKey | None
) -> AsyncIterator[int]:
    """An asyncssh SFTP server over ``root``; with ``signed_by`` it shows a host certificate."""
    keys: list[Any] = [host_key]
    if signed_by is not None:
        cert = signed_by.generate_host_certificate(host_key, "sftp", principals=["127.0.0.1"])
        keys = [(host_key, cert)]
    acceptor = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=keys,
        server_factory=_PasswordLogin,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=os.fsencode(root)),
    )
    try:
        yield acceptor.sockets[0].getsockname()[1]
    finally:
        acceptor.close()
        await acceptor.wait_closed()


def _ca_line(ca: asyncssh.SSHKey) -> str:
    return f"@cert-authority 127.0.0.1 {ca.export_public_key().decode().strip()}\n"


def _endpoint(port: int, known: Path, policy: HostKeyPolicy) -> SftpEndpoint:
    return SftpEndpoint(
        host="127.0.0.1",
        port=port,
        username="etl",
        password=SFTP_SECRET,
        use_agent=False,
        known_hosts=str(known),
        host_key_policy=policy,
    )


@pytest.mark.parametrize("policy", [HostKeyPolicy.STRICT, HostKeyPolicy.ACCEPT_NEW])
async def test_a_host_certificate_signed_by_a_known_ca_is_trusted_and_not_recorded(
    policy: HostKeyPolicy, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(b"certified\n")
    ca = asyncssh.generate_private_key("ssh-ed25519")
    known = tmp_path / "known_hosts"
    known.write_text(_ca_line(ca))

    async with _sshd(tmp_path, asyncssh.generate_private_key("ssh-ed25519"), ca) as port:
        [result] = await copy(
            _endpoint(port, known, policy), ["/a.csv"], f"s3://{bucket}/", s3_endpoint
        )

    assert result.status is TransferState.DONE
    assert_object(s3, bucket, "a.csv", b"certified\n")
    assert known.read_text() == _ca_line(ca)


async def test_a_plain_key_of_a_ca_covered_host_is_judged_like_any_unknown_key(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """As OpenSSH: refused when strict, recorded under accept-new (not "no compatible key")."""
    (tmp_path / "a.csv").write_bytes(b"plain\n")
    ca = asyncssh.generate_private_key("ssh-ed25519")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    known = tmp_path / "known_hosts"
    known.write_text(_ca_line(ca))

    async with _sshd(tmp_path, host_key, None) as port:
        strict = _endpoint(port, known, HostKeyPolicy.STRICT)
        with pytest.raises(HostKeyError) as refused:
            await copy(strict, ["/a.csv"], f"s3://{bucket}/", s3_endpoint)
        assert_nothing_written(s3, bucket)
        accept_new = replace(strict, host_key_policy=HostKeyPolicy.ACCEPT_NEW)
        [result] = await copy(accept_new, ["/a.csv"], f"s3://{bucket}/", s3_endpoint)

    assert "unknown" in refused.value.message and not refused.value.changed
    assert host_key.get_fingerprint("sha256") in refused.value.message
    assert result.status is TransferState.DONE
    assert_object(s3, bucket, "a.csv", b"plain\n")
    public = host_key.export_public_key().decode().strip()
    assert known.read_text() == _ca_line(ca) + f"[127.0.0.1]:{port} {public}\n"


async def test_a_certificate_from_an_untrusted_ca_is_refused_even_with_accept_new(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(b"x")
    trusted, rogue = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(2))
    known = tmp_path / "known_hosts"
    known.write_text(_ca_line(trusted))

    async with _sshd(tmp_path, asyncssh.generate_private_key("ssh-ed25519"), rogue) as port:
        endpoint = _endpoint(port, known, HostKeyPolicy.ACCEPT_NEW)
        with pytest.raises(HostKeyError) as refused:
            await copy(endpoint, ["/a.csv"], f"s3://{bucket}/", s3_endpoint)

    assert "CA known_hosts does not trust" in refused.value.message
    assert rogue.get_fingerprint("sha256") in refused.value.message
    assert refused.value.changed  # nothing to "trust once": the TUI only offers to close
    assert_nothing_written(s3, bucket)
    assert known.read_text() == _ca_line(trusted)


@pytest.mark.parametrize("pattern", ["[127.0.0.1]:{port}", "127.0.0.1"])
async def test_a_revoked_host_key_is_refused_even_with_accept_new_or_trust_once(
    pattern: str, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(b"x")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    public = host_key.export_public_key().decode().strip()
    known = tmp_path / "known_hosts"

    async with _sshd(tmp_path, host_key, None) as port:
        revoked = f"@revoked {pattern.format(port=port)} {public}\n"
        known.write_text(revoked)
        endpoint = replace(
            _endpoint(port, known, HostKeyPolicy.ACCEPT_NEW), trusted_host_keys=(public,)
        )
        with pytest.raises(HostKeyError) as refused:
            await copy(endpoint, ["/a.csv"], f"s3://{bucket}/", s3_endpoint)

    assert "REVOKED" in refused.value.message and refused.value.changed
    assert host_key.get_fingerprint("sha256") in refused.value.message
    assert_nothing_written(s3, bucket)
    assert known.read_text() == revoked
