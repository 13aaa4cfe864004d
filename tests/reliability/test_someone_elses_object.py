"""Someone writes the key while our upload is being published (issue 24, case 2).

The partner's own process, a second pipeline or a person with the console puts an object at
the key between our CompleteMultipartUpload and our HEAD. The check then sees
their object, not ours. Their object must survive byte for byte: nothing of ours may be
"cleaned up" by deleting whatever the key holds (moto answers Complete on an unversioned
bucket with VersionId ``null``, and ``DELETE ?versionId=null`` removes the current object,
whoever wrote it). Our transfer fails with one line; the source stays; no upload stays open.

(A single PutObject is verified by its own answer, the ETag being the MD5 of the bytes it
stored: an overwrite after that answer is one more later writer, as one a minute later is.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import MiB, keys, sha256

from .s3faults import THEN, FaultyS3Server

THEIRS = b"the partner's own data.bin, put at the same moment\n" * 1000


def test_an_object_put_over_ours_while_our_upload_completes_survives_and_we_fail_in_one_line(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    remote = openssh_sftp.write_file("drop/data.bin", size=12 * MiB + 5, seed=251)
    raced = s3_faults.fail(
        "CompleteMultipartUpload",
        THEN,
        then=lambda: s3.put_object(Bucket=bucket, Key="data.bin", Body=THEIRS),
    )

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/data.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, faulty_endpoint),
        "--part-size",
        "5MiB",
        "--delete-source",
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )

    assert raced.fired == 1, "the other writer's PutObject landed while ours was published"
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if "someone else's object" in x]
    assert f"s3://{bucket}/data.bin now holds someone else's object" in line
    assert "left in place" in line
    body = s3.get_object(Bucket=bucket, Key="data.bin")["Body"].read()
    assert sha256(body) == sha256(THEIRS), "their object is untouched"
    assert keys(s3, bucket) == ["data.bin"]
    assert remote.local_path.exists() and sha256(remote.read_bytes()) == remote.sha256
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []


def test_an_object_put_over_ours_before_the_sha256_tag_keeps_no_tag_of_ours_and_the_source_stays(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """Their PutObject lands right after our check's HEAD, before our sha256 tag (an
    unversioned bucket: no version id names our object). Their object must not carry our
    sha256 (a later run's compare policy would skip the file on it), and with
    ``--delete-source`` the source must stay: the file fails with one line."""
    remote = openssh_sftp.write_file("drop/data.bin", size=12 * MiB + 5, seed=252)
    landed: list[object] = []

    def theirs_after_our_check() -> None:
        # the first HEAD that finds the key is our check's (the key is empty before Complete)
        if not landed and s3.list_objects_v2(Bucket=bucket).get("KeyCount"):
            landed.append(s3.put_object(Bucket=bucket, Key="data.bin", Body=THEIRS))

    s3_faults.fail("HeadObject", THEN, times=None, then=theirs_after_our_check)

    done = run_cli(
        "copy",
        source_url(openssh_sftp, "drop/data.bin"),
        f"s3://{bucket}/",
        *key_args(openssh_sftp, faulty_endpoint),
        "--part-size",
        "5MiB",
        "--delete-source",
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )

    assert landed, "the other writer's PutObject landed between our check and our tag"
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [x for x in done.stderr.splitlines() if "someone else's object" in x]
    assert f"s3://{bucket}/data.bin now holds someone else's object" in line
    assert "left in place" in line
    body = s3.get_object(Bucket=bucket, Key="data.bin")["Body"].read()
    assert sha256(body) == sha256(THEIRS), "their object is untouched"
    tags = s3.get_object_tagging(Bucket=bucket, Key="data.bin")["TagSet"]
    assert [t for t in tags if t["Key"] == "sha256"] == [], "no sha256 of ours on their object"
    assert remote.local_path.exists() and sha256(remote.read_bytes()) == remote.sha256
    assert (s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []) == []
