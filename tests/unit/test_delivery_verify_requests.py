"""The read back and the server's hash reach the engine from every delivery front: the CLI's
flags (``copy`` and ``watch``), a profile's ``[delivery]`` table (CLI and TUI) and the Airflow
operator's request."""

from __future__ import annotations

from pathlib import Path

from sftp_s3_tui.cli.parser import build_parser, run_flags
from sftp_s3_tui.engine.addresses import S3Location
from sftp_s3_tui.engine.config import S3Endpoint, SftpEndpoint, TransferOptions
from sftp_s3_tui.engine.plan.delivery import DeliveryTarget
from sftp_s3_tui.profiles import DeliverySettings, Profile, ProfileStore, SftpSettings
from sftp_s3_tui.requests import ConnectionFlags, RunFlags, TransferFlags
from sftp_s3_tui.requests.delivery import (
    delivery_request,
    folder_delivery_request,
    task_delivery_request,
)


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


def test_a_profiles_delivery_checks_reach_copy_watch_and_the_tui(tmp_path: Path) -> None:
    """``[delivery]`` in the profile: ``copy`` / ``watch --profile`` deliver with its checks
    (a flag adds one, none takes one away); the TUI's request carries what it is given."""
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile(
            name="flaky",
            sftp=SftpSettings(host="partner.example"),
            delivery=DeliverySettings(verify_readback=True),
        )
    )
    paths = ["s3://exports/daily/", "sftp://partner.example/inbox/"]
    flags = ConnectionFlags(profile="flaky")
    for every in (None, "5m"):
        request = delivery_request(
            paths, flags, TransferFlags(), {}, store=store, watch_every=every
        )
        assert (request.options.verify_readback, request.options.verify_server_hash) == (
            True,
            False,
        )
    both = delivery_request(
        paths, flags, TransferFlags(), {}, run=RunFlags(verify_server_hash=True), store=store
    )
    assert (both.options.verify_readback, both.options.verify_server_hash) == (True, True)
    plain = delivery_request(paths, ConnectionFlags(), TransferFlags(), {}, store=store)
    assert (plain.options.verify_readback, plain.options.verify_server_hash) == (False, False)

    endpoint = SftpEndpoint(host="partner.example")
    location = S3Location("exports", "daily/")
    tui = folder_delivery_request(
        location, "/inbox", endpoint, S3Endpoint(), TransferOptions(), verify_readback=True
    )
    assert (tui.options.verify_readback, tui.options.verify_server_hash) == (True, False)
    assert not folder_delivery_request(
        location, "/inbox", endpoint, S3Endpoint(), TransferOptions()
    ).options.verify_readback
