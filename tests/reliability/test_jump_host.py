"""A partner's server behind a bastion: the copy goes through the jump host (ProxyJump)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.errors import HostKeyError, TransferError
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.sftp.connect import jump_endpoint
from sftp_s3_tui.engine.transfer.queue import TransferQueue
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import OpenSshServer, SftpServerInfo, sshd_base_dir
from tests.support.transfers import MiB, copy

from .conftest import assert_object, proxied


@pytest.fixture(scope="module")
def bastion() -> Iterator[SftpServerInfo]:
    """A second real sshd, used only as the jump host."""
    base = sshd_base_dir()
    server = OpenSshServer(base)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_a_copy_through_a_jump_host_lands_and_its_bytes_pass_the_bastion(
    openssh_sftp: SftpServerInfo,
    bastion: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    remote = openssh_sftp.write_file("in/behind.bin", size=6 * MiB + 5, seed=21)
    with FaultProxy(bastion.host, bastion.port) as to_bastion:
        jump = proxied(bastion, to_bastion, tmp_path)
        known_hosts = tmp_path / "known_hosts"  # both hosts' keys, checked for both hops
        known_hosts.write_text(openssh_sftp.known_hosts.read_text() + jump.known_hosts.read_text())
        endpoint = openssh_sftp.endpoint(
            jump=f"{bastion.username}@{jump.host}:{jump.port}",
            known_hosts=str(known_hosts),
            identity_files=(str(openssh_sftp.identity_file), str(bastion.identity_file)),
        )

        [result] = await copy(endpoint, [remote.remote_path], f"s3://{bucket}/", s3_endpoint)

        assert result.status is TransferState.DONE and result.sha256 == remote.sha256
        assert to_bastion.connections == 1
        assert to_bastion.bytes_down > remote.size  # the file came through the bastion
    assert_object(s3, bucket, "behind.bin", remote.read_bytes())


async def test_an_unknown_jump_host_key_is_refused(
    openssh_sftp: SftpServerInfo, bastion: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    """The bastion's host key is checked like the server's: unknown → refused, one line."""
    endpoint = openssh_sftp.endpoint(
        jump=f"{bastion.username}@{bastion.host}:{bastion.port}",
        identity_files=(str(openssh_sftp.identity_file), str(bastion.identity_file)),
    )
    async with TransferQueue(s3_endpoint) as queue:
        with pytest.raises(HostKeyError, match=f"{bastion.port} is unknown"):
            await queue.expand(
                endpoint, openssh_sftp.remote_path(), parse_s3_url(f"s3://{bucket}/")
            )


def test_jump_specs_are_parsed_and_bad_ones_refused() -> None:
    base = SftpEndpoint(host="partner.example", username="me", identity_files=("~/.ssh/k",))
    hop = jump_endpoint(replace(base, jump="ops@bastion.example:2222"))
    assert hop is not None
    assert (hop.username, hop.host, hop.port) == ("ops", "bastion.example", 2222)
    assert hop.jump is None and hop.identity_files == base.identity_files
    plain = jump_endpoint(replace(base, jump="bastion"))
    assert plain is not None and (plain.username, plain.port) == ("me", 22)
    with pytest.raises(TransferError, match="no valid port"):
        jump_endpoint(replace(base, jump="bastion:http"))
