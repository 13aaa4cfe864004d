"""Keys given as text (from a secret store) log in like key files; a bad one says so."""

from __future__ import annotations

from typing import Any

import asyncssh
import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.errors import SftpAuthError
from sftp_s3_tui.engine.events import TransferState
from tests.support.servers import SftpServerInfo
from tests.support.transfers import copy, object_bytes


async def test_private_key_text_logs_in(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("in/a.csv", b"a,b\n1,2\n")
    endpoint = openssh_sftp.endpoint(
        identity_files=(), private_keys=(openssh_sftp.identity_file.read_text(),)
    )

    (result,) = await copy(endpoint, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)

    assert result.status is TransferState.DONE
    assert object_bytes(s3, bucket, "a.csv") == remote.read_bytes()


async def test_encrypted_private_key_text_needs_its_passphrase(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    key = asyncssh.read_private_key(str(openssh_sftp.identity_file))
    encrypted = key.export_private_key("pkcs8-pem", passphrase="s3cret").decode()
    remote = openssh_sftp.write_file("in/b.csv", b"b\n")

    ok = openssh_sftp.endpoint(identity_files=(), private_keys=(encrypted,), passphrase="s3cret")
    (result,) = await copy(ok, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)
    assert result.status is TransferState.DONE

    wrong = openssh_sftp.endpoint(identity_files=(), private_keys=(encrypted,), passphrase="no")
    with pytest.raises(SftpAuthError, match=r"private key .* could not be loaded"):
        await copy(wrong, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)


def test_private_keys_stay_out_of_repr(openssh_sftp: SftpServerInfo) -> None:
    text = openssh_sftp.identity_file.read_text()
    assert text not in repr(openssh_sftp.endpoint(private_keys=(text,)))
