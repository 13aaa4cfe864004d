"""Delivering S3 objects to a partner's SFTP folder, as a user runs it:
``sftp-s3-tui copy s3://bucket/key|prefix/ sftp://host/folder/`` against real sshd + S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.config import Config

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import (
    files_under,
    past_second_of,
    pattern,
    put_crc64nvme_multipart,
    records,
    target_url,
)
from tests.support.servers import SftpServerInfo, unavailable

MiB = 1 << 20


@pytest.mark.all_stores
@pytest.mark.sftp_families
def test_one_object_lands_whole_verified_with_its_mtime(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    data = pattern(3 * MiB + 5, seed=1)
    s3.put_object(Bucket=bucket, Key="exports/report 2026-11.csv", Body=data)
    modified = s3.head_object(Bucket=bucket, Key="exports/report 2026-11.csv")["LastModified"]
    past_second_of(modified)

    done = run_cli(
        "copy",
        f"s3://{bucket}/exports/report 2026-11.csv",
        target_url(openssh_sftp, "outbound/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "1MiB",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), summary = records(done.stdout)
    assert row["status"] == "done" and row["bytes"] == len(data)
    assert row["verified_by"] == "crc32+size"  # the CRC32 boto3 stored with it (not the MD5)
    assert summary["copied"] == 1 and summary["exit_code"] == 0
    landed = openssh_sftp.root / "outbound"
    assert files_under(landed) == {"report 2026-11.csv": data}  # no .partial left beside it
    assert os.stat(landed / "report 2026-11.csv").st_mtime == int(modified.timestamp())


@pytest.mark.all_stores
@pytest.mark.sftp_families
def test_multipart_object_verified_by_its_full_object_crc64nvme(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    data = pattern(11 * MiB + 3, seed=2)
    put_crc64nvme_multipart(s3, bucket, "big.bin", data, 5 * MiB)

    done = run_cli(
        "copy",
        f"s3://{bucket}/big.bin",
        target_url(openssh_sftp, "drop/big.bin"),  # an exact file name
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "5MiB",
        "--memory",
        "10MiB",  # two parts at a time: memory stays bounded whatever the object's size
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["verified_by"] == "crc64nvme+size"
    assert files_under(openssh_sftp.root / "drop") == {"big.bin": data}


@pytest.mark.all_stores
@pytest.mark.sftp_families
def test_prefix_keeps_relative_paths_and_empty_objects(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    objects = {
        "exports/a.csv": b"id\n1\n",
        "exports/2026/11/b.csv": pattern(70_000, seed=3),
        "exports/2026/11/c d ü.csv": b"x" * 10,
        "exports/zero.bin": b"",
    }
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key="exports/empty-folder/", Body=b"")  # a folder marker
    s3.put_object(Bucket=bucket, Key="elsewhere.csv", Body=b"not under the prefix")

    done = run_cli(
        "copy",
        f"s3://{bucket}/exports/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 0, done.stderr
    assert files_under(openssh_sftp.root / "in") == {
        key.removeprefix("exports/"): body for key, body in objects.items()
    }
    assert "4 delivered, 0 skipped, 0 failed" in done.stderr


def test_dry_run_lists_the_plan_and_writes_nothing(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="p/x/y.csv", Body=b"1")

    plan = run_cli(
        "copy",
        f"s3://{bucket}/p/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--dry-run",
    )

    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines() == [
        f"s3://{bucket}/p/x/y.csv → {openssh_sftp.remote_path('in')}/x/y.csv"
    ]
    assert not (openssh_sftp.root / "in").exists()


def test_keys_that_would_leave_the_folder_are_refused_by_name(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="exports/ok.csv", Body=b"fine")
    s3.put_object(Bucket=bucket, Key="exports/../../escape.csv", Body=b"evil")
    s3.put_object(Bucket=bucket, Key="exports/bell\x07.csv", Body=b"evil")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} >= {
        "exports/../../escape.csv"
    }  # the store kept the key as given

    try:
        done = run_cli(
            "copy",
            f"s3://{bucket}/exports/",
            target_url(openssh_sftp, "partner/in/"),
            *key_args(openssh_sftp, s3_endpoint),
        )
    finally:  # the bucket's teardown lists versions as XML, which cannot carry \x07
        s3.delete_object(Bucket=bucket, Key="exports/bell\x07.csv")

    assert done.returncode == 1
    assert "The key 'exports/../../escape.csv' has a '..' segment" in done.stderr
    assert "The key 'exports/bell\\x07.csv' holds a control character" in done.stderr
    assert "Traceback" not in done.stderr
    assert files_under(openssh_sftp.root) == {"partner/in/ok.csv": b"fine"}


@pytest.mark.sftp_families
def test_an_existing_file_is_kept_by_default_and_replaced_atomically_on_request(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="daily.csv", Body=b"new export\n")
    openssh_sftp.write_file("out/daily.csv", b"what the partner already has\n")
    args = [f"s3://{bucket}/daily.csv", target_url(openssh_sftp, "out/")]

    kept = run_cli("copy", *args, *key_args(openssh_sftp, s3_endpoint))

    assert kept.returncode == 0, kept.stderr
    assert "skipped (exists)" in kept.stderr
    assert files_under(openssh_sftp.root / "out") == {
        "daily.csv": b"what the partner already has\n"
    }

    replaced = run_cli(
        "copy", *args, *key_args(openssh_sftp, s3_endpoint), "--conflict", "overwrite", "--json"
    )

    assert replaced.returncode == 0, replaced.stderr
    (row,), _ = records(replaced.stdout)
    assert row["status"] == "done"
    assert files_under(openssh_sftp.root / "out") == {"daily.csv": b"new export\n"}


def test_read_only_target_folder_is_one_clear_line_and_the_object_stays(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    if openssh_sftp.password_user is None or openssh_sftp.password is None:
        unavailable("needs the password user (the sshd fixture makes it when run as root)")
    s3.put_object(Bucket=bucket, Key="feed.csv", Body=b"a,b\n")
    locked = openssh_sftp.root / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # the password user may read, not write

    done = run_cli(
        "copy",
        f"s3://{bucket}/feed.csv",
        target_url(openssh_sftp, "locked/", user=openssh_sftp.password_user),
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--endpoint-url",
        str(s3_endpoint.endpoint_url),
        "--no-agent",
        "--delete-source",
        env={"SFTP_PASSWORD": openssh_sftp.password},
    )

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "✗" in line]
    assert errors == [
        f"sftp-s3-tui: ✗ s3://{bucket}/feed.csv: Permission denied writing "
        f"{openssh_sftp.remote_path('locked')}/.feed.csv."
        + errors[0].split("/.feed.csv.")[1]  # the temporary name's random token
    ]
    assert "the SFTP user may not write into" in errors[0]
    assert "Traceback" not in done.stderr
    assert list(locked.iterdir()) == []
    assert s3.get_object(Bucket=bucket, Key="feed.csv")["Body"].read() == b"a,b\n"


@pytest.mark.all_stores
@pytest.mark.sftp_families
def test_delete_source_removes_the_object_only_after_a_verified_delivery(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="send/once.csv", Body=b"ship me\n")

    done = run_cli(
        "copy",
        f"s3://{bucket}/send/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--delete-source",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["source_deleted"] is True and row["verified_by"] == "crc32+size"
    assert files_under(openssh_sftp.root / "in") == {"once.csv": b"ship me\n"}
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="send/")


def test_a_prefix_into_a_file_path_is_one_usage_line(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    done = run_cli(
        "copy",
        f"s3://{bucket}/exports/",
        target_url(openssh_sftp, "in"),
        *key_args(openssh_sftp, s3_endpoint),
    )

    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "is not a folder — end the sftp:// destination with / to deliver every object into it"
    )
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_refused_login_is_one_line_and_exit_4(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Any
) -> None:
    """The login starts while the S3 stack is imported: its refusal is still the run's one
    line (not a traceback from the import thread's side), and nothing is read or written."""
    import asyncssh

    stranger = tmp_path / "id_stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(stranger)
    stranger.chmod(0o600)
    s3.put_object(Bucket=bucket, Key="exports/a.csv", Body=b"a,b\n")
    args = key_args(openssh_sftp, s3_endpoint)
    args[args.index("--identity") + 1] = str(stranger)

    done = run_cli("copy", f"s3://{bucket}/exports/a.csv", target_url(openssh_sftp, "in/"), *args)

    assert done.returncode == 4, done.stderr
    assert "refused the login" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert files_under(openssh_sftp.root) == {}


@pytest.mark.parametrize("s3_store", ["moto_without_awscrt"], indirect=True)
def test_a_checksum_that_disagrees_with_the_bytes_fails_and_leaves_nothing(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """This store records a wrong full-object CRC64NVME for a multipart object (the CRC32
    value; tests/README.md): the bytes read disagree with it, so nothing is delivered."""
    data = pattern(6 * MiB, seed=7)
    put_crc64nvme_multipart(s3, bucket, "odd.bin", data, 5 * MiB)
    assert s3.head_object(Bucket=bucket, Key="odd.bin", ChecksumMode="ENABLED").get(
        "ChecksumCRC64NVME"
    )

    done = run_cli(
        "copy",
        f"s3://{bucket}/odd.bin",
        target_url(openssh_sftp, "out/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--delete-source",
    )

    assert done.returncode == 1
    assert f"✗ s3://{bucket}/odd.bin: The bytes read have CRC64NVME" in (done.stderr)
    assert files_under(openssh_sftp.root / "out") == {}
    assert s3.head_object(Bucket=bucket, Key="odd.bin")["ContentLength"] == len(data)


@pytest.mark.all_stores
def test_a_listed_multipart_object_is_checked_by_the_crc64nvme_its_get_answers(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    data = pattern(10 * MiB + 7, seed=4)
    key = "drop/big.bin"
    put_crc64nvme_multipart(s3, bucket, key, data, 5 * MiB)

    done = run_cli(
        "copy",
        f"s3://{bucket}/drop/",  # a prefix: the listing describes it, no HEAD
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--part-size",
        "4MiB",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["verified_by"] == "crc64nvme+size"
    assert files_under(openssh_sftp.root / "in") == {"big.bin": data}


def test_a_reader_that_stops_reading_ends_the_run_quietly_and_cleanly(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """`copy ... --json | head -1`: the pipe closes after the first row; the run ends
    with SIGPIPE's status, no traceback, and no temporary file left behind."""
    # more rows than a pipe holds (200 x ~400 bytes > 64 KiB): the run must meet the closed
    # pipe whatever the machine's load, however fast it delivers
    long = "x" * 120
    for n in range(200):
        s3.put_object(Bucket=bucket, Key=f"rows/{n:03d}-{long}.csv", Body=pattern(512, seed=n))
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            f"s3://{bucket}/rows/",
            target_url(openssh_sftp, "in/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    first = json.loads(child.stdout.readline())
    child.stdout.close()  # what `head -1` does once it has its line
    stderr = child.stderr.read().decode()
    code = child.wait(timeout=120)

    assert first["status"] == "done"
    assert code == 141, stderr
    assert "Traceback" not in stderr
    landed = files_under(openssh_sftp.root / "in")
    assert all(not name.startswith(".") for name in landed)  # no .partial left
    assert all(data == pattern(512, seed=int(name[:3])) for name, data in landed.items())


@pytest.mark.all_stores
def test_the_check_is_the_stored_checksum_else_the_etags_md5(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """CRC32C or CRC32 when the store holds one (C, several GB/s), the ETag's MD5 for an
    object stored with no checksum (~0.6 GB/s): each delivered byte for byte."""
    plain = boto3.client(
        "s3",
        endpoint_url=s3_endpoint.endpoint_url,
        region_name=s3_endpoint.region or "us-east-1",
        aws_access_key_id=s3_endpoint.access_key_id,
        aws_secret_access_key=s3_endpoint.secret_access_key,
        config=Config(request_checksum_calculation="when_required"),
    )
    objects = {
        "drop/c.bin": ("CRC32C", pattern(70_000, seed=7)),
        "drop/d.bin": ("CRC32", pattern(70_001, seed=8)),
    }
    for key, (algorithm, data) in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=algorithm)
    bare = pattern(70_002, seed=9)
    plain.put_object(Bucket=bucket, Key="drop/e.bin", Body=bare)  # stored with no checksum

    done = run_cli(
        "copy",
        f"s3://{bucket}/drop/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, s3_endpoint),
        "--json",
    )

    assert done.returncode == 0, done.stderr
    rows, _ = records(done.stdout)
    by = {row["source"].rsplit("/", 1)[1]: row["verified_by"] for row in rows}
    assert by == {"c.bin": "crc32c+size", "d.bin": "crc32+size", "e.bin": "md5+size"}
    assert files_under(openssh_sftp.root / "in") == {
        "c.bin": objects["drop/c.bin"][1],
        "d.bin": objects["drop/d.bin"][1],
        "e.bin": bare,
    }
