"""Watching an S3 prefix and delivering each new object version to a partner's SFTP folder,
as a user runs it: ``sftp-s3-tui watch s3://bucket/prefix/ sftp://host/folder/`` against
real sshd + S3, read line by line (--json)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, target_url
from tests.support.observe import json_lines
from tests.support.receiver import http_receiver
from tests.support.servers import SftpServerInfo
from tests.support.watcher import Watcher, wait_for


def watch(server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, *flags: str) -> Watcher:
    return Watcher(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "watch",
            f"s3://{bucket}/out/",
            target_url(server, "partner/"),
            *key_args(server, s3_endpoint),
            "--every",
            "0.3s",
            "--json",
            *flags,
        ]
    )


def results(watcher: Watcher, status: str | None = None) -> list[dict[str, Any]]:
    """The watch's per-object records so far (of ``status`` only, when given)."""
    return [
        line
        for line in list(watcher.lines)
        if "source" in line and (status is None or line["status"] == status)
    ]


def delivered(watcher: Watcher, name: str) -> int:
    return sum(r["source"].endswith(f"/out/{name}") for r in results(watcher, "done"))


@pytest.mark.all_stores
@pytest.mark.sftp_families
def test_each_new_version_is_delivered_once_and_a_restart_delivers_nothing_twice(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\n")
    s3.put_object(Bucket=bucket, Key="out/2026/b.csv", Body=b"b,2\n")
    s3.put_object(Bucket=bucket, Key="elsewhere.csv", Body=b"not under the prefix")
    folder = openssh_sftp.root / "partner"
    flags = ("--conflict", "overwrite", "--done-file", ".done")

    watcher = watch(openssh_sftp, s3_endpoint, bucket, *flags)
    try:
        wait_for(lambda: len(results(watcher, "done")) == 2)
        s3.put_object(Bucket=bucket, Key="out/c.csv", Body=b"c,3\n")  # uploaded while it runs
        wait_for(lambda: delivered(watcher, "c.csv") == 1)
        s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a,1\na,11\n")  # new bytes
        wait_for(lambda: delivered(watcher, "a.csv") == 2)
        polls = watcher.polls()
        wait_for(lambda: watcher.polls() >= polls + 2)  # two more polls: nothing new
    finally:
        code, err = watcher.stop()

    assert code == 0, err
    assert "Traceback" not in err
    assert [delivered(watcher, n) for n in ("a.csv", "2026/b.csv", "c.csv")] == [2, 1, 1]
    assert len(results(watcher)) == 4  # nothing skipped, nothing failed
    assert all(r["verified_by"] == "crc32+size" for r in results(watcher))
    assert files_under(folder) == {  # the new bytes replaced a.csv; no temporary file
        "a.csv": b"a,1\na,11\n",
        "a.csv.done": b"",
        "2026/b.csv": b"b,2\n",
        "2026/b.csv.done": b"",
        "c.csv": b"c,3\n",
        "c.csv.done": b"",
    }

    # restarted, it remembers: two polls later nothing was delivered again, not even the
    # file the partner picked up (and removed) meanwhile
    (folder / "c.csv").unlink()
    again = watch(openssh_sftp, s3_endpoint, bucket, *flags)
    try:
        wait_for(lambda: again.polls() >= 2)
    finally:
        code, err = again.stop()
    assert code == 0, err
    assert results(again) == []
    assert not (folder / "c.csv").exists()


def test_a_new_version_replaces_the_partners_file_only_under_a_replacing_policy(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"first\n")
    folder = openssh_sftp.root / "partner"

    watcher = watch(openssh_sftp, s3_endpoint, bucket)  # the default: skip-existing
    try:
        wait_for(lambda: delivered(watcher, "a.csv") == 1)
        s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"second, longer\n")
        wait_for(lambda: len(results(watcher, "skipped")) == 1)
        polls = watcher.polls()
        wait_for(lambda: watcher.polls() >= polls + 2)  # said once, not at every poll
    finally:
        code, err = watcher.stop()

    assert code == 0, err
    (skipped,) = results(watcher, "skipped")
    assert skipped["message"] == "exists"
    assert len(results(watcher)) == 2
    assert files_under(folder) == {"a.csv": b"first\n"}  # the partner's file was kept


def test_delete_source_deletes_each_object_once_it_is_delivered(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a\n")

    watcher = watch(openssh_sftp, s3_endpoint, bucket, "--delete-source")
    try:
        wait_for(lambda: delivered(watcher, "a.csv") == 1)
        s3.put_object(Bucket=bucket, Key="out/b.csv", Body=b"b\n")
        wait_for(lambda: delivered(watcher, "b.csv") == 1)
    finally:
        code, err = watcher.stop()

    assert code == 0, err
    assert all(r["source_deleted"] for r in results(watcher))
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert files_under(openssh_sftp.root / "partner") == {"a.csv": b"a\n", "b.csv": b"b\n"}


def test_min_age_delivers_an_object_once_it_is_old_enough(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    """``watch --min-age 3s`` lists again each poll: an object put meanwhile waits until its
    LastModified is 3 s old, then lands. Bounded from below only (the file's ctime is when
    it was published), so a slow machine delays it without failing the test."""
    watcher = watch(openssh_sftp, s3_endpoint, bucket, "--min-age", "3s")
    try:
        wait_for(lambda: watcher.polls() >= 1)
        s3.put_object(Bucket=bucket, Key="out/late.csv", Body=b"l,1\n")
        modified = s3.head_object(Bucket=bucket, Key="out/late.csv")["LastModified"].timestamp()
        wait_for(lambda: delivered(watcher, "late.csv") == 1)
    finally:
        code, err = watcher.stop()

    assert code == 0, err
    landed = openssh_sftp.root / "partner" / "late.csv"
    assert landed.read_bytes() == b"l,1\n"
    assert landed.stat().st_ctime >= modified + 3  # published no sooner than --min-age allows


def test_bad_input_is_one_line(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    base = [*key_args(openssh_sftp, s3_endpoint), "--every", "1s"]
    cases = {
        # a prefix into a file path
        (f"s3://{bucket}/out/", target_url(openssh_sftp, "partner")): "is not a folder",
        (f"s3://{bucket}/out/", target_url(openssh_sftp, "p/"), "--every", "0"): "positive",
        (f"s3://{bucket}/out/", target_url(openssh_sftp, "p/"), "--move-to", "/x"): "--move-to",
        (f"s3://{bucket}/out/", target_url(openssh_sftp, "p/"), "--expect", "*.csv"): "--expect-by",
        ("s3://no-such-bucket-here/out/", target_url(openssh_sftp, "p/")): "does not exist",
    }
    for args, said in cases.items():
        done = run_cli("watch", *base, *args, timeout=60)  # the last --every wins
        assert done.returncode != 0, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], done.stderr


def test_each_poll_is_a_run_heard_of_as_a_delivery_is(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3.put_object(Bucket=bucket, Key="out/orders.csv", Body=b"id\n1\n")
    manifest = tmp_path / "manifest.jsonl"
    with http_receiver() as receiver:
        monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
        watcher = watch(
            openssh_sftp,
            s3_endpoint,
            bucket,
            "--hook-url",
            f"{receiver.url}/ping/abc",
            "--log-format",
            "json",
            "--manifest",
            str(manifest),
        )
        try:
            wait_for(lambda: delivered(watcher, "orders.csv") == 1)
            # the object's line comes before its poll's heartbeat: wait for two polls'
            # heartbeats, not one more than was counted when the line came
            wait_for(lambda: watcher.polls() >= 2)
        finally:
            code, err = watcher.stop()
        events = [r.json() for r in receiver.at("/api/v1/lineage")]
        starts, successes = receiver.at("/ping/abc/start"), receiver.at("/ping/abc")

    assert code == 0, err
    # one lineage run per poll; the one that delivered names the object in, the file out
    completes = [e for e in events if e["eventType"] == "COMPLETE"]
    assert len(completes) >= 2 and len(starts) >= 2 and len(successes) >= 2
    (delivering,) = [e for e in completes if e["inputs"]]
    assert delivering["job"]["facets"]["jobType"]["jobType"] == "DELIVERY"
    assert [(d["namespace"], d["name"]) for d in delivering["inputs"]] == [
        (f"s3://{bucket}", "out/orders.csv")
    ]
    assert [d["name"] for d in delivering["outputs"]] == [
        openssh_sftp.remote_path("partner/orders.csv")
    ]
    # --log-format json: the object's line is a JSON record with its key
    logged = [line for line in json_lines(err) if line.get("event") == "file.done"]
    assert [line["key"] for line in logged] == [f"s3://{bucket}/out/orders.csv"]
    # --manifest: its row, durable
    (row,) = json_lines(manifest.read_text())
    assert row["status"] == "done" and row["key"] == "out/orders.csv"


def test_objects_a_copy_delivered_already_are_noted_not_sent_again(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="out/a.csv", Body=b"a\n")
    s3.put_object(Bucket=bucket, Key="out/b.csv", Body=b"b\n")
    copied = run_cli(
        "copy",
        f"s3://{bucket}/out/",
        target_url(openssh_sftp, "partner/"),
        *key_args(openssh_sftp, s3_endpoint),
    )
    assert copied.returncode == 0, copied.stderr
    folder = openssh_sftp.root / "partner"
    before = {p.name: p.stat().st_ino for p in folder.iterdir()}

    watcher = watch(openssh_sftp, s3_endpoint, bucket, "--conflict", "overwrite")
    try:
        wait_for(lambda: watcher.polls() >= 2)
    finally:
        code, err = watcher.stop()

    assert code == 0, err
    assert results(watcher) == []  # not replaced, though the policy would replace them
    first = next(line for line in watcher.lines if line.get("poll") == 1)
    assert first["already_there"] == 2 and first["copied"] == 0
    assert {p.name: p.stat().st_ino for p in folder.iterdir()} == before
