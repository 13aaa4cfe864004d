"""The read back and the server's hash reach the engine from every delivery front: the CLI's
flags (``copy`` and ``watch``) and the Airflow operator's request."""

from __future__ import annotations

from sftp_s3_tui.cli.parser import build_parser, run_flags
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.plan.delivery import DeliveryTarget
from sftp_s3_tui.requests import TransferFlags, task_delivery_request


def test_the_task_request_carries_both_checks_and_neither_by_default() -> None:
    folder = DeliveryTarget(SftpEndpoint(host="partner"), "/inbox/", True)
    plain = task_delivery_request("exports", "daily/", folder, S3Endpoint(), TransferFlags())
    checked = task_delivery_request(
        "exports",
        "daily/",
        folder,
        S3Endpoint(),
        TransferFlags(),
        verify_readback=True,
        verify_server_hash=True,
    )
    assert (plain.options.verify_readback, plain.options.verify_server_hash) == (False, False)
    assert (checked.options.verify_readback, checked.options.verify_server_hash) == (True, True)


def test_copy_and_watch_take_both_flags() -> None:
    parser = build_parser()
    for command in ("copy", "watch"):
        args = parser.parse_args(
            [command, "s3://b/p/", "sftp://h/in/", "--verify-readback", "--verify-server-hash"]
        )
        flags = run_flags(args)
        assert (flags.verify_readback, flags.verify_server_hash) == (True, True)
