"""Bad input and refusals: each gets one clear message and leaves nothing in S3."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sftp_s3_tui.engine.config import HostKeyPolicy, S3Endpoint
from sftp_s3_tui.engine.errors import (
    BucketNotFound,
    HostKeyError,
    SftpAuthError,
    SourceNotFound,
)
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.sftp.pool import SftpPool
from tests.support.servers import SftpServerInfo
from tests.support.transfers import copy, keys, open_uploads


async def test_missing_source_says_so(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    with pytest.raises(SourceNotFound, match="does not exist"):
        await copy(
            sftp_server.endpoint(),
            [sftp_server.remote_path("nope.csv")],
            f"s3://{bucket}/",
            s3_endpoint,
        )


async def test_permission_denied_names_the_file(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("secret.csv", b"top secret")
    remote.local_path.chmod(0o000)

    [result] = await copy(
        openssh_sftp.endpoint("password"), [remote.remote_path], f"s3://{bucket}/", s3_endpoint
    )

    assert result.status is TransferState.FAILED
    assert "Permission denied reading" in result.message and "secret.csv" in result.message
    assert keys(s3, bucket) == []


async def test_wrong_password_is_refused(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    endpoint = replace(sftp_server.endpoint("password"), password="wrong")
    with pytest.raises(SftpAuthError, match="refused the login"):
        await copy(endpoint, [sftp_server.remote_path("x")], f"s3://{bucket}/", s3_endpoint)


async def test_unknown_host_key_is_refused_with_its_fingerprint(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    endpoint = sftp_server.endpoint(known_hosts=str(empty))

    with pytest.raises(HostKeyError) as caught:
        await copy(endpoint, [sftp_server.remote_path("x")], f"s3://{bucket}/", s3_endpoint)

    assert "unknown" in caught.value.message
    assert caught.value.fingerprint.split()[1].startswith("SHA256:")
    assert not caught.value.changed
    assert empty.read_text() == ""


async def test_a_key_trusted_once_holds_for_every_connection_of_the_session(
    sftp_server: SftpServerInfo, tmp_path: Path
) -> None:
    """The TUI's "trust once": refused first, then trusted for this pool only — its second
    connection (a big file read over two) logs in without asking again, nothing recorded."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    endpoint = sftp_server.endpoint(known_hosts=str(empty), connections=2)
    async with SftpPool() as pool:
        with pytest.raises(HostKeyError) as caught:
            await pool.client(endpoint)
        trusted = replace(endpoint, trusted_host_keys=(caught.value.key_line,))

        listing = await pool.listdir(trusted, sftp_server.remote_root)
        first = await pool.lease(trusted, slot=0)
        second = await pool.lease(endpoint, slot=1)  # a caller still holding the first endpoint

        assert isinstance(listing, list)
        assert first.client is not second.client
        assert (await second.client.stat(sftp_server.remote_root)).type is not None
        pool.release(trusted, first)
        pool.release(endpoint, second)
    assert empty.read_text() == ""


async def test_accept_new_host_key_records_it_once(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    remote = sftp_server.write_file("in/a.csv", b"a")
    known = tmp_path / "ssh" / "known_hosts"
    endpoint = sftp_server.endpoint(
        known_hosts=str(known), host_key_policy=HostKeyPolicy.ACCEPT_NEW
    )

    await copy(endpoint, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)
    recorded = known.read_text()
    # Now strict checking passes with the recorded key.
    strict = replace(endpoint, host_key_policy=HostKeyPolicy.STRICT)
    [result] = await copy(strict, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)

    assert f"[{sftp_server.host}]:{sftp_server.port} ssh-" in recorded
    assert result.status is TransferState.DONE
    assert known.read_text() == recorded


async def test_changed_host_key_is_refused_even_with_accept_new(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    known = tmp_path / "known_hosts"
    line = impostor.export_public_key().decode().strip()
    known.write_text(f"[{sftp_server.host}]:{sftp_server.port} {line}\n")
    endpoint = sftp_server.endpoint(
        known_hosts=str(known), host_key_policy=HostKeyPolicy.ACCEPT_NEW
    )

    with pytest.raises(HostKeyError) as caught:
        await copy(endpoint, [sftp_server.remote_path("x")], f"s3://{bucket}/", s3_endpoint)

    error = caught.value
    assert error.changed and "CHANGED" in error.message
    assert impostor.get_fingerprint("sha256") in error.message
    assert error.fingerprint.split()[1] in error.message
    assert known.read_text().count("\n") == 1


async def test_missing_bucket_fails_clearly(
    sftp_server: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any
) -> None:
    remote = sftp_server.write_file("in/a.csv", b"a")

    [result] = await copy(
        sftp_server.endpoint(), [remote.remote_path], "s3://no-such-bucket-here/", s3_endpoint
    )

    assert result.status is TransferState.FAILED
    assert "does not exist" in result.message
    assert BucketNotFound.title == "Bucket not found"


async def test_wrong_s3_endpoint_fails_without_hanging(
    sftp_server: SftpServerInfo, bucket: str, s3: Any
) -> None:
    remote = sftp_server.write_file("in/a.csv", b"a")
    dead = S3Endpoint(
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        access_key_id="x",
        secret_access_key="y",
        path_style=True,
        max_attempts=1,
    )

    [result] = await copy(sftp_server.endpoint(), [remote.remote_path], f"s3://{bucket}/", dead)

    assert result.status is TransferState.FAILED
    assert "reach" in result.message or "unreachable" in result.message
    assert open_uploads(s3, bucket) == []


async def test_a_name_that_is_no_valid_key_fails_alone(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    embedded_sftp.write_file("drop/good.csv", b"ok")
    embedded_sftp.write_file("drop/bad\x07bell.csv", b"no")

    results = await copy(
        embedded_sftp.endpoint(),
        [embedded_sftp.remote_path("drop/")],
        f"s3://{bucket}/",
        s3_endpoint,
    )

    by_status = {r.status: r for r in results}
    assert set(by_status) == {TransferState.DONE, TransferState.FAILED}
    assert "control character" in by_status[TransferState.FAILED].message
    assert keys(s3, bucket) == ["good.csv"]
