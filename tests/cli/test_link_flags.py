"""The SFTP link knobs (connections, window, bwlimit, jump, follow-symlinks) in every front:
flags, saved profiles and Airflow connections all reach the same SftpEndpoint fields."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.airflow.connections import (
    ConnectionFields,
    sftp_endpoint_from_connection,
    with_link,
)
from sftp_s3_tui.cli.parser import build_parser, connection_flags
from sftp_s3_tui.engine.config import MiB, S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.errors import ConfigError, UsageError
from sftp_s3_tui.engine.units import format_rate_limit, parse_rate
from sftp_s3_tui.profiles import Profile, ProfileStore, SftpSettings
from sftp_s3_tui.requests import (
    ConnectionFlags,
    TransferFlags,
    app_request,
    copy_request,
)
from tests.support.cli import key_args, run_cli, source_url
from tests.support.metrics import metric_value
from tests.support.servers import SftpServerInfo
from tests.support.transfers import object_bytes, open_uploads, sha256, stored_sha256

LINK_ARGS = [
    "--connections",
    "2",
    "--window",
    "64MiB",
    "--bwlimit",
    "20M",
    "--jump",
    "ops@bastion.example:2200",
    "--follow-symlinks",
]


@pytest.mark.parametrize(
    ("text", "bytes_per_second"),
    [
        ("20M", 20_000_000),
        ("20MB/s", 20_000_000),
        ("500k", 500_000),
        ("1.5G", 1_500_000_000),
        ("8Mi", 8 * MiB),
        ("8MiB", 8 * MiB),
        ("64Ki", 64 * 1024),
        ("0", 0),
    ],
)
def test_a_rate_takes_decimal_and_binary_suffixes(text: str, bytes_per_second: int) -> None:
    assert parse_rate(text) == bytes_per_second
    assert parse_rate(format_rate_limit(bytes_per_second)) == bytes_per_second


def test_the_flags_reach_the_sftp_endpoint_before_or_after_the_command() -> None:
    parser = build_parser()
    after = connection_flags(parser.parse_args(["copy", *LINK_ARGS, "/in/a.csv", "s3://b/"]))
    before = connection_flags(parser.parse_args([*LINK_ARGS, "copy", "/in/a.csv", "s3://b/"]))
    assert before == after

    request = copy_request(
        ["sftp://etl@files.example/in/a.csv", "s3://landing/"], after, TransferFlags(), {}
    )

    (source,) = request.sources
    endpoint = source.endpoint
    assert endpoint.connections == 2
    assert endpoint.window_bytes == 64 * MiB
    assert endpoint.bwlimit_bytes_per_second == 20_000_000
    assert endpoint.jump == "ops@bastion.example:2200"
    assert endpoint.follow_symlinks is True


def test_without_the_flags_the_engine_defaults_stay() -> None:
    request = copy_request(
        ["sftp://files.example/in/a.csv", "s3://landing/"], ConnectionFlags(), TransferFlags(), {}
    )

    (source,) = request.sources
    defaults = SftpEndpoint(host="files.example")
    assert (source.endpoint.connections, source.endpoint.window_bytes) == (
        defaults.connections,
        defaults.window_bytes,
    )
    assert source.endpoint.bwlimit_bytes_per_second == 0 and source.endpoint.jump is None
    assert source.endpoint.follow_symlinks is False


def test_flags_go_over_a_profile_s_link_fields(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile(
            name="far",
            sftp=SftpSettings(
                host="files.example", connections=6, window=32 * MiB, jump="bastion.example"
            ),
        )
    )
    flags = ConnectionFlags(profile="far", bwlimit="8Mi", connections=3)

    request = copy_request(["/in/a.csv", "s3://landing/"], flags, TransferFlags(), {}, store=store)

    (source,) = request.sources
    assert source.endpoint.connections == 3  # the flag wins
    assert source.endpoint.window_bytes == 32 * MiB  # the profile's
    assert source.endpoint.jump == "bastion.example"
    assert source.endpoint.bwlimit_bytes_per_second == 8 * MiB


def test_the_tui_takes_the_link_flags_into_its_profile(tmp_path: Path) -> None:
    flags = ConnectionFlags(connections=2, bwlimit="20M", jump="bastion", window="8MiB")

    request = app_request(flags, {"SFTP_HOST": "files.example"})

    assert request.initial is not None
    sftp = request.initial.sftp
    assert (sftp.connections, sftp.window, sftp.bwlimit, sftp.jump) == (
        2,
        8 * MiB,
        20_000_000,
        "bastion",
    )
    assert request.initial.sftp_endpoint().bwlimit_bytes_per_second == 20_000_000


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bwlimit", "fast"], "--bwlimit 'fast' is not a rate"),
        (["--bwlimit=-5M"], "--bwlimit '-5M' is not a rate"),
        (["--bwlimit", "20X"], "--bwlimit '20X' is not a rate"),
        (["--connections", "0"], "--connections must be from 1 to 64, not 0"),
        (["--connections", "500"], "--connections must be from 1 to 64, not 500"),
        (["--window", "1k"], "--window must be from 256KiB to 1GiB"),
        (["--window", "big"], "--window 'big' is not a size"),
        (["--jump", "ops@"], "--jump 'ops@' is not [user@]host[:port]"),
        (["--jump", "bastion:ssh"], "--jump 'bastion:ssh' is not [user@]host[:port]"),
    ],
)
def test_a_bad_link_value_is_one_line_and_exit_2(args: list[str], words: str, bucket: str) -> None:
    done = run_cli("copy", "sftp://h.invalid/a.csv", f"s3://{bucket}/", *args)

    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_a_profile_keeps_its_link_fields_across_a_save_and_a_load(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    profile = Profile(
        name="partner",
        sftp=SftpSettings(
            host="files.example",
            connections=8,
            window=64 * MiB,
            bwlimit=20_000_000,
            jump="ops@bastion.example:2200",
            follow_symlinks=True,
        ),
    )
    ProfileStore(path).save(profile)

    text = path.read_text()
    loaded = ProfileStore(path).get("partner")

    assert loaded == profile
    for line in (
        "connections = 8",
        'window = "64MiB"',
        'bwlimit = "20M"',
        'jump = "ops@bastion.example:2200"',
        "follow_symlinks = true",
    ):
        assert line in text
    endpoint = loaded.sftp_endpoint()
    assert (endpoint.connections, endpoint.window_bytes, endpoint.bwlimit_bytes_per_second) == (
        8,
        64 * MiB,
        20_000_000,
    )
    assert endpoint.jump == "ops@bastion.example:2200" and endpoint.follow_symlinks


def test_a_profile_file_with_a_bad_link_value_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[profiles.partner.sftp]\nhost = "files.example"\nbwlimit = "fast"\nconnections = 0\n'
    )

    result = ProfileStore(path).load()

    problems = " ".join(str(p) for p in result.problems)
    assert "sftp.bwlimit" in problems and "rate" in problems
    assert "sftp.connections" in problems
    assert "partner" not in result.profiles


def test_a_profile_with_a_bad_window_or_jump_does_not_validate() -> None:
    profile = Profile(name="p", sftp=SftpSettings(host="h", window=1024, jump="a b"))

    fields = [f for f, _ in profile.validate()]

    assert "sftp.window" in fields and "sftp.jump" in fields


def test_airflow_connection_extras_and_operator_arguments_set_the_link() -> None:
    fields = ConnectionFields(
        conn_id="partner",
        host="files.example",
        login="etl",
        extra={
            "connections": "3",
            "window": "32MiB",
            "bwlimit": "20M",
            "proxy_jump": "ops@bastion.example",
            "follow_symlinks": "true",
        },
    )

    endpoint = sftp_endpoint_from_connection(fields)
    overridden = with_link(endpoint, connections=5, bwlimit=0)

    assert endpoint.connections == 3 and endpoint.window_bytes == 32 * MiB
    assert endpoint.bwlimit_bytes_per_second == 20_000_000
    assert endpoint.jump == "ops@bastion.example" and endpoint.follow_symlinks
    assert overridden.connections == 5 and overridden.bwlimit_bytes_per_second == 0
    assert overridden.window_bytes == 32 * MiB


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"bwlimit": "fast"}, "Connection 'partner': extra: bwlimit 'fast' is not a rate"),
        ({"connections": "many"}, "'connections' is 'many', not a count"),
        ({"connections": 0}, "'connections' must be from 1 to 64"),
        ({"jump": "a b"}, "'jump' 'a b' is not [user@]host[:port]"),
        ({"follow_symlinks": "maybe"}, "'follow_symlinks' is 'maybe', not true or false"),
    ],
)
def test_a_bad_connection_extra_is_one_clear_message(extra: dict[str, Any], words: str) -> None:
    fields = ConnectionFields(conn_id="partner", host="files.example", extra=extra)

    with pytest.raises(ConfigError) as caught:
        sftp_endpoint_from_connection(fields)

    assert words in str(caught.value)


def test_copy_with_two_connections_and_a_bwlimit_lands_the_bytes(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    fresh_pushgateway: Any,
) -> None:
    """A user tames a partner's server with ``--connections 2 --bwlimit 40M``: the file lands
    whole, and the pushed link figures show the limit as the host's read ceiling."""
    remote = openssh_sftp.write_file("far/customers.csv", size=13 * MiB + 11, seed=21)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "far/customers.csv"),
        f"s3://{bucket}/landing/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--connections",
        "2",
        "--window",
        "64MiB",
        "--bwlimit",
        "40M",
        "--json",
        "--push-gateway",
        fresh_pushgateway.url,
    )

    assert done.returncode == 0, done.stderr
    data = object_bytes(s3, bucket, "landing/customers.csv")
    assert data == remote.read_bytes() and sha256(data) == remote.sha256
    assert stored_sha256(s3, bucket, "landing/customers.csv") == remote.sha256
    assert open_uploads(s3, bucket) == []
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert any(row.get("sha256") == remote.sha256 for row in rows)
    with urllib.request.urlopen(f"{fresh_pushgateway.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    # 64 MiB per round trip on loopback is far beyond 40 MB/s: the limit is the ceiling.
    assert metric_value(text, "sftp_s3_sftp_read_ceiling_bytes_per_second") == 40_000_000
    assert 1 <= metric_value(text, "sftp_s3_sftp_connections") <= 2
    assert metric_value(text, "sftp_s3_sftp_rtt_seconds") > 0


def test_the_request_layer_refuses_a_bad_rate_without_the_cli() -> None:
    with pytest.raises(UsageError) as caught:
        copy_request(
            ["sftp://h.example/a", "s3://b/"], ConnectionFlags(bwlimit="1x"), TransferFlags(), {}
        )

    assert str(caught.value).startswith("--bwlimit '1x' is not a rate")


def test_a_single_hop_proxyjump_from_ssh_config_becomes_the_profile_s_jump(
    tmp_path: Path,
) -> None:
    from sftp_s3_tui.profiles import import_ssh_config

    config = tmp_path / "ssh_config"
    config.write_text(
        "Host inner\n    HostName 10.0.0.5\n    ProxyJump ops@bastion.example:2200\n"
        "Host deep\n    HostName 10.0.0.6\n    ProxyJump a.example,b.example\n"
    )

    hosts = {host.alias: host for host in import_ssh_config(config)}

    inner = hosts["inner"].to_profile()
    assert inner.sftp.jump == "ops@bastion.example:2200" and inner.validate() == []
    assert inner.sftp_endpoint().jump == "ops@bastion.example:2200"
    assert hosts["deep"].to_profile().sftp.jump is None  # a chain: not one bastion
