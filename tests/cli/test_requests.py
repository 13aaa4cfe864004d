"""One request layer under every front: flags anywhere on the line, one rule for each setting."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.cli.parser import build_parser, connection_flags
from sftp_s3_tui.engine.addresses import parse_sftp_url
from sftp_s3_tui.engine.config import HostKeyPolicy, MiB, S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.profiles import (
    Profile,
    ProfileStore,
    S3Settings,
    SftpAuth,
    SftpSettings,
    TransferDefaults,
)
from sftp_s3_tui.requests import (
    ConnectionFlags,
    TransferFlags,
    app_request,
    copy_request,
    s3_endpoint,
    sftp_endpoint,
    transfer_options,
)
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes, open_uploads


def test_connection_options_before_the_command_are_used(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("early/a.csv", b"id\n1\n")

    done = run_cli(
        *key_args(openssh_sftp, s3_endpoint),  # --identity … --no-agent, then the command
        "copy",
        source_url(openssh_sftp, "early/a.csv"),
        f"s3://{bucket}/early/",
    )

    assert done.returncode == 0, done.stderr
    assert object_bytes(s3, bucket, "early/a.csv") == remote.read_bytes()


def test_options_before_after_and_on_both_sides_of_the_command() -> None:
    parser = build_parser()
    before = connection_flags(parser.parse_args(["--user", "x", "-i", "k", "copy", "s", "d"]))
    after = connection_flags(parser.parse_args(["copy", "--user", "x", "-i", "k", "s", "d"]))
    both = connection_flags(
        parser.parse_args(["-i", "k1", "--region", "eu-west-1", "copy", "-i", "k2", "s", "d"])
    )

    assert before == after and (before.user, before.identity) == ("x", ("k",))
    assert both.identity == ("k1", "k2") and both.region == "eu-west-1"


def test_cleanup_uses_the_profile_s3_and_bucket(
    s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    ProfileStore().save(
        Profile(
            name="cleanup-target",
            sftp=SftpSettings(host="sftp.invalid"),
            s3=S3Settings(endpoint_url=s3_endpoint.endpoint_url, path_style=True, bucket=bucket),
        )
    )
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="stale.bin")["UploadId"]

    listed = run_cli("cleanup", "--profile", "cleanup-target", "--older-than", "0s")
    aborted = run_cli("--profile", "cleanup-target", "cleanup", "--older-than", "0s", "--abort")

    assert listed.returncode == 0, listed.stderr
    assert f"s3://{bucket}/stale.bin" in listed.stdout
    assert aborted.returncode == 0, aborted.stderr
    assert "aborted 1 upload(s)" in aborted.stderr
    assert upload_id not in [u["UploadId"] for u in open_uploads(s3, bucket)]


def test_cleanup_refuses_metrics_options_it_cannot_honour(bucket: str) -> None:
    # ``cleanup --push-gateway`` is not an option of cleanup (test_cli_startup.py); given
    # before the command, where every command's options go, it is refused by name.
    done = run_cli("--push-gateway", "http://127.0.0.1:9", "cleanup", f"s3://{bucket}")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sftp-s3-tui: error: cleanup exports no metrics — "
        "drop --push-gateway / --metrics-port for cleanup"
    ]


def test_a_budget_of_one_part_is_one_rule_for_profiles_and_flags(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """A profile the TUI runs (budget = one part) is not refused by ``copy --profile``."""
    remote = openssh_sftp.write_file("budget/big.bin", size=11 * MiB + 3, seed=4)
    ProfileStore().save(
        Profile(
            name="tight",
            sftp=SftpSettings(
                host=openssh_sftp.host,
                port=openssh_sftp.port,
                user=openssh_sftp.username,
                auth=SftpAuth.KEY,
                key_file=str(openssh_sftp.identity_file),
                known_hosts=str(openssh_sftp.known_hosts),
            ),
            s3=S3Settings(endpoint_url=s3_endpoint.endpoint_url, path_style=True, bucket=bucket),
            transfer=TransferDefaults(part_size=5 * MiB, memory_budget=5 * MiB),
        )
    )

    done = run_cli("copy", "--profile", "tight", remote.remote_path, "--no-agent")
    too_small = run_cli(
        "copy", "--profile", "tight", remote.remote_path, "--memory", "4MiB", "--no-agent"
    )

    assert done.returncode == 0, done.stderr
    assert object_bytes(s3, bucket, "big.bin") == remote.read_bytes()
    assert too_small.returncode == 2
    assert "smaller than one part" in too_small.stderr and "raise --memory" in too_small.stderr


def test_transfer_options_check_themselves() -> None:
    assert TransferOptions(part_size=8 * MiB, memory_budget=8 * MiB).validated()
    with pytest.raises(UsageError, match="parts_in_flight must be positive"):
        TransferOptions(parts_in_flight=0).validated()
    with pytest.raises(UsageError, match="--concurrency must be positive"):
        transfer_options(TransferFlags(parts_in_flight=-1))
    with pytest.raises(UsageError, match="smaller than one part"):
        TransferOptions(part_size=64 * MiB, memory_budget=32 * MiB).validated()
    assert ("files_in_flight", "must be positive, not 0") in TransferOptions(
        files_in_flight=0
    ).problems()


def test_user_and_region_fall_back_to_the_environment_in_every_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"USER": "local-user", "AWS_DEFAULT_REGION": "eu-north-1"}
    flags = ConnectionFlags()
    plain = sftp_endpoint(parse_sftp_url("sftp://host.example/in"), flags, env)
    profile = Profile(name="p", sftp=SftpSettings(host="host.example"))
    from_profile = sftp_endpoint(
        parse_sftp_url("sftp://host.example/in"), flags, env, profile.sftp_endpoint()
    )

    assert plain.username == from_profile.username == "local-user"
    assert s3_endpoint(flags, env).region == "eu-north-1"
    assert s3_endpoint(flags, env, S3Endpoint(endpoint_url="http://x:1")).region == "eu-north-1"
    assert s3_endpoint(flags, {**env, "AWS_REGION": "us-west-2"}).region == "us-west-2"
    assert s3_endpoint(ConnectionFlags(region="ap-south-1"), env).region == "ap-south-1"
    monkeypatch.setenv("AWS_REGION", "sa-east-1")  # a saved profile, as the TUI uses it
    assert profile.s3_endpoint().region == "sa-east-1"
    assert Profile("q", SftpSettings("h"), S3Settings(region="eu-west-3")).s3_endpoint().region == (
        "eu-west-3"
    )


def test_several_sources_into_one_key_is_refused_by_the_one_rule(bucket: str) -> None:
    done = run_cli("copy", "sftp://h.invalid/a", "sftp://h.invalid/b", f"s3://{bucket}/one.csv")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"sftp-s3-tui: error: 2 sources but s3://{bucket}/one.csv names one key — "
        "end DEST with / to copy into a prefix"
    ]


def test_copy_request_from_a_profile_with_flags_over_it(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile(
            name="p",
            sftp=SftpSettings(host="files.example", user="etl"),
            s3=S3Settings(bucket="landing", prefix="in/"),
        )
    )
    flags = ConnectionFlags(profile="p", no_agent=True, accept_new_host_key=True, port=2222)

    request = copy_request(["/drop/a.csv"], flags, TransferFlags(), {}, store=store)

    (source,) = request.sources
    assert (source.endpoint.host, source.endpoint.port, source.endpoint.username) == (
        "files.example",
        2222,
        "etl",
    )
    assert not source.endpoint.use_agent
    assert source.endpoint.host_key_policy is HostKeyPolicy.ACCEPT_NEW
    assert str(request.dest) == "s3://landing/in/"


def test_the_tui_takes_no_verify_tls_no_agent_and_accept_new_host_key() -> None:
    flags = ConnectionFlags(no_verify_tls=True, no_agent=True, accept_new_host_key=True)
    env = {"SFTP_HOST": "files.example", "SFTP_PASSWORD": "pw"}

    initial = app_request(flags, env).initial
    saved = Profile(name="saved", sftp=SftpSettings(host="files.example"))
    over_saved = app_request(ConnectionFlags(profile="saved", **_tui_flags()), {}).with_flags(saved)

    for profile in (initial, over_saved):
        assert profile is not None
        sftp = profile.sftp_endpoint(password="pw")
        assert not sftp.use_agent and sftp.host_key_policy is HostKeyPolicy.ACCEPT_NEW
        assert profile.s3_endpoint().verify_tls is False


def _tui_flags() -> dict[str, Any]:
    return {"no_verify_tls": True, "no_agent": True, "accept_new_host_key": True}


def test_sha256_metadata_flag_is_accepted_and_stored(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("meta/big.bin", size=11 * MiB, seed=9)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "meta/big.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--sha256-metadata",
    )

    assert done.returncode == 0, done.stderr
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["Metadata"].get("sha256") == hashlib.sha256(remote.read_bytes()).hexdigest()


def test_json_ends_with_a_summary_and_skipped_files_moved_nothing(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("j/a.csv", b"a,b\n1,2\n")
    args = [
        source_url(openssh_sftp, "j/a.csv"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
    ]
    first = run_cli("copy", *args, "--json")

    again = run_cli("copy", *args, "--json", "--conflict", "skip-existing")

    assert first.returncode == 0 and again.returncode == 0, again.stderr
    record, summary = (json.loads(line) for line in again.stdout.splitlines())
    assert (record["status"], record["bytes"], record["size"]) == ("skipped", 0, remote.size)
    assert summary["summary"] is True
    assert (summary["files"], summary["skipped"], summary["bytes"]) == (1, 1, 0)
    assert keys(s3, bucket) == ["a.csv"]


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--endpoint-url", "localhost:9000", "is not an http:// or https:// URL"),
        ("--region", "us east", "is not an AWS region name"),
        ("--aws-profile", "no-such-profile", "No AWS profile named 'no-such-profile'"),
        ("--identity", "/no/such/key", "No key file at /no/such/key"),
    ],
)
def test_bad_connection_values_are_one_line_and_exit_2(
    flag: str, value: str, words: str, bucket: str
) -> None:
    done = run_cli("copy", "sftp://h.invalid/a.csv", f"s3://{bucket}/", flag, value)

    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert "Traceback" not in done.stderr


def test_known_hosts_that_is_a_folder_or_unreadable_is_one_line(
    tmp_path: Path, bucket: str
) -> None:
    unreadable = tmp_path / "known_hosts"
    unreadable.write_text("")
    unreadable.chmod(0)

    folder = run_cli("copy", "sftp://h.invalid/a", f"s3://{bucket}/", "--known-hosts", "/tmp")
    locked = run_cli(
        "copy", "sftp://h.invalid/a", f"s3://{bucket}/", "--known-hosts", str(unreadable)
    )

    assert folder.returncode == 2 and "--known-hosts /tmp is a folder" in folder.stderr
    if os.geteuid() != 0:  # root reads any file
        assert locked.returncode == 2 and "Cannot read --known-hosts" in locked.stderr
    for done in (folder, locked):
        assert "Traceback" not in done.stderr


def test_env_file_only_from_where_the_user_says(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    remote = openssh_sftp.write_file("envfile/a.csv", b"x\n")
    assert s3_endpoint.endpoint_url
    settings = tmp_path / "settings.env"
    settings.write_text(f"S3_BUCKET={bucket}\nAWS_ENDPOINT_URL={s3_endpoint.endpoint_url}\n")
    trap = tmp_path / "drop"
    trap.mkdir()
    (trap / ".env").write_text("AWS_ENDPOINT_URL=http://127.0.0.1:9\nS3_BUCKET=elsewhere\n")
    args = [source_url(openssh_sftp, "envfile/a.csv"), *key_args(openssh_sftp, s3_endpoint)[:4]]
    args += ["--no-agent"]

    import subprocess
    import sys

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sftp_s3_tui", "copy", *args, *extra],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=trap,  # a shared drop folder with a .env in it
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )

    ignored = run()
    loaded = run("--env-file", str(settings))

    assert ignored.returncode == 2 and "No destination" in ignored.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert f"read 2 setting(s) from {settings}" in loaded.stderr
    assert object_bytes(s3, bucket, "a.csv") == remote.read_bytes()


def test_the_checksum_choice_is_one_option_in_every_front(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    from sftp_s3_tui.airflow.transfer import transfer_options as operator_options
    from sftp_s3_tui.engine.config import ChecksumChoice, ConflictPolicy

    remote = openssh_sftp.write_file("sum/a.csv", b"id\n1\n2\n")
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile(
            "sums", SftpSettings("h"), transfer=TransferDefaults(checksum=ChecksumChoice.SHA256)
        )
    )

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "sum/a.csv"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, s3_endpoint),
        "--checksum",
        "crc32c",
    )
    bogus = run_cli("copy", "sftp://h.invalid/a", f"s3://{bucket}/", "--checksum", "crc99")

    assert done.returncode == 0, done.stderr
    assert object_bytes(s3, bucket, "a.csv") == remote.read_bytes()
    assert bogus.returncode == 2 and "invalid choice: 'crc99'" in bogus.stderr
    assert transfer_options(TransferFlags(checksum="md5")).checksum is ChecksumChoice.MD5
    assert store.get("sums").transfer_options().checksum is ChecksumChoice.SHA256
    assert 'checksum = "sha256"' in store.path.read_text()
    options = operator_options(conflict=ConflictPolicy.OVERWRITE, checksum="crc32")
    assert options.checksum is ChecksumChoice.CRC32
    with pytest.raises(UsageError, match="Unknown checksum 'crc99'"):
        operator_options(conflict=ConflictPolicy.OVERWRITE, checksum="crc99")


def test_a_profile_whose_key_file_is_missing_is_one_line_not_a_network_error(
    bucket: str,
) -> None:
    ProfileStore().save(
        Profile(
            "lost-key",
            SftpSettings("sftp.invalid", auth=SftpAuth.KEY, key_file="/no/such/id_partner"),
        )
    )

    done = run_cli("copy", "--profile", "lost-key", "/in/a.csv", f"s3://{bucket}/")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sftp-s3-tui: error: No key file at /no/such/id_partner — check profile 'lost-key'"
    ]


def test_the_tui_without_a_terminal_refuses_with_one_line() -> None:
    done = run_cli()  # stdin and stdout are pipes here

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sftp-s3-tui: error: The TUI needs a terminal (its input or output is not one) — "
        "run it in a terminal, or use `sftp-s3-tui copy SOURCE… DEST` in scripts"
    ]


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--port", "0"], {}, "--port 0 is not a port"),
        (["--metrics-port", "70000"], {}, "--metrics-port 70000 is not a port"),
        (["--concurrency", "0"], {}, "--concurrency must be positive, not 0"),
        (["--env-file", "/no/such/file.env"], {}, "No env file at /no/such/file.env"),
        ([], {"SFTP_PORT": "twenty-two"}, "SFTP_PORT='twenty-two' is not a port"),
        ([], {"AWS_ENDPOINT_URL": "minio:9000"}, "AWS_ENDPOINT_URL 'minio:9000' is not an http"),
    ],
)
def test_more_bad_values_are_one_line_and_exit_2(
    args: list[str], env: dict[str, str], words: str, bucket: str
) -> None:
    done = run_cli("copy", "sftp://h.invalid/a.csv", f"s3://{bucket}/", *args, env=env)

    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr


def test_an_unreachable_s3_endpoint_is_one_line_naming_it_and_exit_4(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint
) -> None:
    from sftp_s3_tui.demo import free_port

    openssh_sftp.write_file("closed/a.csv", b"a")
    closed = f"http://127.0.0.1:{free_port()}"
    args = [
        a if a != s3_endpoint.endpoint_url else closed for a in key_args(openssh_sftp, s3_endpoint)
    ]

    done = run_cli("copy", source_url(openssh_sftp, "closed/a.csv"), "s3://landing/", *args)

    assert done.returncode == 4
    assert done.stderr.strip().splitlines() == [
        f"sftp-s3-tui: Opening bucket 'landing': cannot reach the S3 endpoint ({closed}) — "
        "check --endpoint-url and network"
    ]


def test_follow_symlinks_is_a_flag_of_copy(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    remote = openssh_sftp.write_file("links-elsewhere/b.csv", b"b\n")
    openssh_sftp.write_file("links/a.csv", b"a\n")
    (openssh_sftp.root / "links" / "linked").symlink_to(openssh_sftp.root / "links-elsewhere")
    args = [source_url(openssh_sftp, "links/"), *key_args(openssh_sftp, s3_endpoint)]

    skipping = run_cli("copy", *args[:1], f"s3://{bucket}/skip/", *args[1:])
    following = run_cli("copy", *args[:1], f"s3://{bucket}/follow/", *args[1:], "--follow-symlinks")
    bad_jump = run_cli("copy", *args[:1], f"s3://{bucket}/", "--jump", "two words")

    assert skipping.returncode == 0, skipping.stderr
    assert following.returncode == 0, following.stderr
    assert keys(s3, bucket) == ["follow/a.csv", "follow/linked/b.csv", "skip/a.csv"]
    assert object_bytes(s3, bucket, "follow/linked/b.csv") == remote.read_bytes()
    assert bad_jump.returncode == 2 and "--jump 'two words' is not [user@]host[:port]" in (
        bad_jump.stderr
    )


def test_a_profile_keeps_its_jump_host_and_link_choice(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile("hop", SftpSettings("inner.example", jump="ops@bastion:2222", follow_symlinks=True))
    )

    endpoint = store.get("hop").sftp_endpoint()

    assert (endpoint.jump, endpoint.follow_symlinks) == ("ops@bastion:2222", True)
    assert 'jump = "ops@bastion:2222"' in store.path.read_text()


def test_a_copy_request_is_built_without_the_s3_stack() -> None:
    """The SSH logins start before aioboto3 and botocore are imported (~0.4 s of imports):
    building a ``copy`` request, nightly options and all, pulls in neither."""
    code = (
        "import sys\n"
        "from sftp_s3_tui.cli.parser import build_parser, copy_request_of\n"
        "args = build_parser().parse_args(['copy', 'sftp://u@h/in/*.csv', 's3://bkt/p/',"
        " '--include', '*.csv', '--min-age', '5m', '--manifest', 's3://bkt/m.jsonl',"
        " '--move-to', '/done'])\n"
        "request = copy_request_of(args, {'SFTP_PASSWORD': 'x'})\n"
        "assert request.run.manifest == 's3://bkt/m.jsonl'\n"
        "print(sorted(m for m in ('aioboto3', 'botocore', 'aiobotocore') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
