"""A user lands the partner's files with the storage class, encryption, tags, content type
and metadata their data lake expects — on one-part and multipart objects alike."""

from __future__ import annotations

from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint, TransferOptions
from sftp_s3_tui.engine.errors import UsageError
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.engine.object_options import ObjectOptions
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, copy, stored_sha256

PART = 5 * MiB


def tags(s3: Any, bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


@pytest.mark.parametrize("sha256_metadata", [False, True])
async def test_objects_carry_the_options(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    sha256_metadata: bool,
) -> None:
    small = openssh_sftp.write_file("d/orders.csv", b"id\n1\n")
    big = openssh_sftp.write_file("d/dump.parquet", size=PART + 3, seed=1)
    options = TransferOptions(
        part_size=PART,
        sha256_metadata=sha256_metadata,
        object_options=ObjectOptions.build(
            storage_class="standard_ia",
            sse="AES256",
            tags=["team=data", "source=partner"],
            metadata={"batch": "2026-12-01"},
        ),
    )

    results = await copy(
        openssh_sftp.endpoint(),
        [openssh_sftp.remote_path("d/")],
        f"s3://{bucket}/in/",
        s3_endpoint,
        options=options,
    )

    assert {r.status for r in results} == {TransferState.DONE}
    for remote, key, content_type in (
        (small, "in/orders.csv", "text/csv"),
        (big, "in/dump.parquet", "application/octet-stream"),  # unknown to mimetypes
    ):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["StorageClass"] == "STANDARD_IA"
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentType"] == content_type
        assert head["Metadata"]["batch"] == "2026-12-01"
        got = tags(s3, bucket, key)
        assert {k: got[k] for k in ("team", "source")} == {"team": "data", "source": "partner"}
        assert stored_sha256(s3, bucket, key) == remote.sha256  # the engine's record kept


def test_cli_flags_and_bad_values(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    openssh_sftp.write_file("d/report.json", b"{}")
    common = [
        source_url(openssh_sftp, "d/report.json"),
        f"s3://{bucket}/r.json",
        *key_args(openssh_sftp, s3_endpoint),
    ]
    done = run_cli(
        "copy",
        *common,
        "--content-type",
        "application/vnd.partner+json",
        "--tag",
        "team=data",
        "--metadata",
        "origin=sftp",
        "--sse",
        "AES256",
    )
    assert done.returncode == 0, done.stderr
    head = s3.head_object(Bucket=bucket, Key="r.json")
    assert head["ContentType"] == "application/vnd.partner+json"
    assert head["Metadata"]["origin"] == "sftp" and head["ServerSideEncryption"] == "AES256"
    assert tags(s3, bucket, "r.json") == {"team": "data"}

    bad = run_cli("copy", *common, "--tag", "oops")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "sftp-s3-tui: error: --tag 'oops' is not KEY=VALUE — e.g. --tag team=data"
    ]
    kms = run_cli("copy", *common, "--sse", "AES256", "--sse-kms-key-id", "k1")
    assert kms.returncode == 2 and "needs SSE-KMS" in kms.stderr and "Traceback" not in kms.stderr


def test_option_values_are_checked() -> None:
    with pytest.raises(UsageError, match="storage class"):
        ObjectOptions.build(storage_class="fast please")
    with pytest.raises(UsageError, match="cannot be used"):
        ObjectOptions.build(metadata=["sha256=x"])
    with pytest.raises(UsageError, match="S3 allows 10"):
        ObjectOptions.build(tags=[f"t{n}=v" for n in range(10)])
    assert ObjectOptions.build(sse_kms_key_id="arn:k").sse == "aws:kms"
    assert ObjectOptions(content_type="").content_type_for("a.csv") is None


def test_a_profile_keeps_object_options_and_flags_override_them(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    from sftp_s3_tui.profiles import (
        Profile,
        ProfileStore,
        S3Settings,
        Secret,
        SftpAuth,
        SftpSettings,
    )

    remote = openssh_sftp.write_file("p/orders.csv", b"id\n7\n")
    assert openssh_sftp.password_user and openssh_sftp.password
    profile = Profile(
        name="lake",
        sftp=SftpSettings(
            host=openssh_sftp.host,
            port=openssh_sftp.port,
            user=openssh_sftp.password_user,
            auth=SftpAuth.PASSWORD,
            password=Secret.from_env("LAKE_PASSWORD"),
            known_hosts=str(openssh_sftp.known_hosts),
        ),
        s3=S3Settings(
            endpoint_url=s3_endpoint.endpoint_url,
            region="us-east-1",
            path_style=True,
            bucket=bucket,
            prefix="lake/",
            storage_class="STANDARD_IA",
            tags=(("team", "data"),),
            metadata=(("owner", "etl"),),
        ),
    )
    ProfileStore().save(profile)
    saved = ProfileStore().get("lake")
    assert saved.s3.tags == (("team", "data"),) and saved.s3.metadata == (("owner", "etl"),)

    done = run_cli(
        "copy",
        "--profile",
        "lake",
        remote.remote_path,
        "--tag",
        "team=finance",
        env={"LAKE_PASSWORD": openssh_sftp.password},
    )

    assert done.returncode == 0, done.stderr
    head = s3.head_object(Bucket=bucket, Key="lake/orders.csv")
    assert head["StorageClass"] == "STANDARD_IA" and head["Metadata"]["owner"] == "etl"
    assert tags(s3, bucket, "lake/orders.csv") == {"team": "finance"}  # the flag wins
