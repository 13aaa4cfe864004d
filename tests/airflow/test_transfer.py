"""The operator's work without Airflow, on the real sshd and moto: what each task does."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from sftp_s3_tui.airflow.connections import ConnectionFields, sftp_endpoint_from_connection
from sftp_s3_tui.airflow.transfer import (
    batches,
    destination,
    list_files,
    stream_to_s3,
    transfer_options,
)
from sftp_s3_tui.engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint
from sftp_s3_tui.engine.errors import SourceNotFound, UsageError
from sftp_s3_tui.engine.events import TransferState
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys, object_bytes

OPTIONS = transfer_options(conflict=ConflictPolicy.OVERWRITE, part_size="5MiB")


def endpoint_from_connection(server: SftpServerInfo) -> SftpEndpoint:
    """The endpoint the operator builds from an SFTP connection holding the key as text."""
    return sftp_endpoint_from_connection(
        ConnectionFields(
            conn_id="sftp_default",
            host=server.host,
            port=server.port,
            login=server.username,
            extra={
                "private_key": server.identity_file.read_text(),
                "known_hosts": str(server.known_hosts),
                "look_for_keys": False,
            },
        )
    )


async def test_mapped_files_keep_the_folder_layout_with_a_base_path(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    sftp = endpoint_from_connection(openssh_sftp)
    nested = openssh_sftp.write_file("drop/logs/app.log", size=6 << 20, seed=1)
    top = openssh_sftp.write_file("drop/orders.csv", b"id\n1\n")
    drop = openssh_sftp.remote_path("drop")

    listed = await list_files(sftp, drop)
    assert listed == [(nested.remote_path, nested.size), (top.remote_path, top.size)]
    assert await list_files(sftp, drop, "*.csv") == [(top.remote_path, top.size)]
    assert await list_files(sftp, drop, recursive=False) == [(top.remote_path, top.size)]

    dest = destination(bucket, "partner-a/")
    for batch in batches(listed, batch_size=1):  # what one mapped task per file does
        results = await stream_to_s3(sftp, batch, dest, s3_endpoint, OPTIONS, base_path=drop)
        assert [r.status for r in results] == [TransferState.DONE]

    assert keys(s3, bucket) == ["partner-a/logs/app.log", "partner-a/orders.csv"]
    assert object_bytes(s3, bucket, "partner-a/logs/app.log") == nested.read_bytes()


async def test_replace_false_skips_what_is_already_there(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    sftp = endpoint_from_connection(openssh_sftp)
    remote = openssh_sftp.write_file("in/a.csv", b"new\n")
    s3.put_object(Bucket=bucket, Key="a.csv", Body=b"old\n")
    skip = transfer_options(conflict=ConflictPolicy.SKIP_EXISTING)

    (result,) = await stream_to_s3(
        sftp, [remote.remote_path], destination(bucket, ""), s3_endpoint, skip
    )

    assert result.status is TransferState.SKIPPED
    assert object_bytes(s3, bucket, "a.csv") == b"old\n"


async def test_missing_sources_fail_or_are_skipped_as_asked(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    sftp = endpoint_from_connection(openssh_sftp)
    remote = openssh_sftp.write_file("in/a.csv", b"a\n")
    paths = [openssh_sftp.remote_path("in/gone.csv"), remote.remote_path]
    dest = destination(bucket, "x/")

    with pytest.raises(SourceNotFound, match=r"gone\.csv does not exist"):
        await stream_to_s3(sftp, paths, dest, s3_endpoint, OPTIONS)
    assert keys(s3, bucket) == []

    results = await stream_to_s3(sftp, paths, dest, s3_endpoint, OPTIONS, fail_on_missing=False)
    assert [r.key for r in results] == ["x/a.csv"]


async def test_several_files_need_a_prefix_and_distinct_keys(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    sftp = endpoint_from_connection(openssh_sftp)
    a = openssh_sftp.write_file("one/a.csv", b"1\n")
    b = openssh_sftp.write_file("two/a.csv", b"2\n")
    both = [a.remote_path, b.remote_path]

    with pytest.raises(UsageError, match="names one key"):
        await stream_to_s3(sftp, both, destination(bucket, "a.csv"), s3_endpoint, OPTIONS)
    with pytest.raises(UsageError, match="would both land at"):
        await stream_to_s3(sftp, both, destination(bucket, "x/"), s3_endpoint, OPTIONS)


async def test_the_sampler_pushes_the_copy_to_the_gateway(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, pushgateway: str
) -> None:
    sftp = endpoint_from_connection(openssh_sftp)
    remote = openssh_sftp.write_file("in/a.csv", size=1000, seed=2)
    await stream_to_s3(
        sftp,
        [remote.remote_path],
        destination(bucket, ""),
        s3_endpoint,
        OPTIONS,
        push_gateway=pushgateway,
        metric_labels={"dag_id": "drop", "task_id": "copy", "map_index": "3"},
    )

    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    series = [
        line
        for line in text.splitlines()
        if line.startswith("sftp_s3_bytes_transferred_total{") and 'dag_id="drop"' in line
    ]
    assert len(series) == 1
    assert 'map_index="3"' in series[0] and 'task_id="copy"' in series[0]
    assert 'job="sftp_s3_tui"' in series[0]
    assert float(series[0].rsplit(" ", 1)[1]) == 1000
