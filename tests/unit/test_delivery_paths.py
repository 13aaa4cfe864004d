"""Where an S3 key lands under the target folder, and which keys are refused by name."""

from __future__ import annotations

import pytest

from sftp_s3_tui.engine.addresses import S3Location
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.errors import UnsafeKey, UsageError
from sftp_s3_tui.engine.plan.delivery import DeliveryTarget, check_addresses, remote_path_for
from sftp_s3_tui.engine.sftp.writer import temporary_name
from sftp_s3_tui.requests import TransferFlags
from sftp_s3_tui.requests.delivery import task_delivery_request

PARTNER = SftpEndpoint(host="partner.example")
FOLDER = DeliveryTarget(PARTNER, "/in/", is_folder=True)


@pytest.mark.parametrize(
    ("key", "source", "target", "path"),
    [
        ("exports/a.csv", S3Location("b", "exports/"), FOLDER, "/in/a.csv"),
        ("exports/2026/11/b c.csv", S3Location("b", "exports/"), FOLDER, "/in/2026/11/b c.csv"),
        ("x/y/report.csv", S3Location("b", "x/y/report.csv"), FOLDER, "/in/report.csv"),
        ("Ünïcode.csv", S3Location("b", ""), FOLDER, "/in/Ünïcode.csv"),
        (
            "x/../weird",
            S3Location("b", "x/../weird"),
            DeliveryTarget(PARTNER, "/in/chosen.csv", False),
            "/in/chosen.csv",  # the user named the file: the key's name plays no part
        ),
    ],
)
def test_keys_map_to_paths_under_the_target(
    key: str, source: S3Location, target: DeliveryTarget, path: str
) -> None:
    assert remote_path_for(key, source, target) == path


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("exports/../../etc/passwd", "has a '..' segment"),
        ("exports/a/../../b", "has a '..' segment"),
        ("exports//root.csv", "starts with '/'"),
        ("exports/a//b.csv", "has an empty or '.' segment"),
        ("exports/./b.csv", "has an empty or '.' segment"),
        ("exports/new\nline.csv", "holds a control character ('\\n')"),
        ("exports/nul\x00.csv", "holds a control character ('\\x00')"),
    ],
)
def test_unsafe_keys_are_refused_by_name(key: str, why: str) -> None:
    with pytest.raises(UnsafeKey) as refused:
        remote_path_for(key, S3Location("b", "exports/"), FOLDER)
    assert refused.value.message == f"The key {key!r} {why}"


def test_a_prefix_needs_a_folder_target() -> None:
    with pytest.raises(UsageError) as refused:
        check_addresses(S3Location("b", "p/"), DeliveryTarget(PARTNER, "/in/x.csv", False))
    assert (
        refused.value.message
        == "s3://b/p/ is a prefix but sftp://partner.example/in/x.csv is not a folder"
    )


def test_the_temporary_name_is_a_dot_name_beside_the_target() -> None:
    assert temporary_name("/in/2026/report.csv", "ab12") == "/in/2026/.report.csv.ab12.partial"


def test_a_task_delivery_request_checks_its_addresses_as_copy_does() -> None:
    """The Airflow operator's request: bucket + key (or one s3:// address), a prefix only
    into a folder; the conflict policy skip-existing unless one is given."""
    folder = DeliveryTarget(SftpEndpoint(host="partner"), "/inbox/", True)
    request = task_delivery_request("exports", "daily/", folder, S3Endpoint(), TransferFlags())
    assert (request.source.bucket, request.source.key) == ("exports", "daily/")
    assert request.options.conflict is ConflictPolicy.SKIP_EXISTING
    request = task_delivery_request(
        None, "s3://exports/a b.csv", folder, S3Endpoint(), TransferFlags(conflict="overwrite")
    )
    assert request.source.key == "a b.csv"
    assert request.options.conflict is ConflictPolicy.OVERWRITE

    one_file = DeliveryTarget(SftpEndpoint(host="partner"), "/inbox/x.csv", False)
    for bucket, key, target, words in (
        ("exports", "s3://exports/x.csv", folder, "s3_bucket is set too"),
        (None, "x.csv", folder, "No S3 bucket"),
        ("exports", "", folder, "No S3 key"),
        ("exports", "daily/", one_file, "is not a folder"),
    ):
        with pytest.raises(UsageError, match=words):
            task_delivery_request(bucket, key, target, S3Endpoint(), TransferFlags())
