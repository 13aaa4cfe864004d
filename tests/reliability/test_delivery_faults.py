"""Delivering S3 → SFTP when the link fails: the final name holds the whole file or
nothing, no temporary file is left, and the user reads one clear line."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.transfer.delivery_options import DeliveryOptions
from sftp_s3_tui.paths import state_dir
from tests.support.cli import key_args, run_cli
from tests.support.delivery import files_under, pattern, records, target_url
from tests.support.fault_proxy import DOWN, UP, FaultProxy
from tests.support.servers import S3Store, SftpServerInfo, default_sigint, unavailable

from .s3faults import THEN, FaultyS3Server

MiB = 1 << 20


@pytest.mark.sftp_families
def test_ssh_cut_mid_write_leaves_no_temporary_file_and_nothing_at_the_final_name(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="nightly/big.bin", Body=pattern(16 * MiB, seed=5))
    s3.put_object(Bucket=bucket, Key="nightly/small.csv", Body=b"1,2\n")
    sshd_proxy.cut_after(6 * MiB, UP)  # once: the cleanup's new connection gets through

    done = run_cli(
        "copy",
        f"s3://{bucket}/nightly/big.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "2MiB",
    )

    assert sshd_proxy.cuts == 1
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, done.stderr
    assert (
        f"✗ s3://{bucket}/nightly/big.bin: The SSH connection dropped while writing" in (errors[0])
    )
    assert "Traceback" not in done.stderr
    assert files_under(via_proxy.root) == {}  # no .partial, nothing at partner/big.bin


@pytest.mark.sftp_families
def test_ctrl_c_mid_delivery_removes_the_temporary_file(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="slow.bin", Body=pattern(12 * MiB, seed=6))
    sshd_proxy.throttle(512 * 1024, "up")  # slow enough to be interrupted mid-write
    folder = via_proxy.root / "partner"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            f"s3://{bucket}/slow.bin",
            target_url(via_proxy, "partner/"),
            *key_args(via_proxy, s3_endpoint),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder.exists() and any(p.stat().st_size for p in folder.iterdir())):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the temporary file never grew"
            time.sleep(0.1)
        assert [p.name.endswith(".partial") for p in folder.iterdir()] == [True]
        child.send_signal(signal.SIGINT)
        sshd_proxy.throttle(None)  # let the cleanup's requests through at once
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()

    assert child.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert files_under(via_proxy.root) == {}


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs mounted at ``folder`` (root only), unmounted afterwards: a destination
    disk that fills up, or one that refuses every write (``ro``, even for root)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


@pytest.mark.sftp_families
def test_a_full_destination_disk_is_one_line_and_leaves_nothing(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="big.bin", Body=pattern(6 * MiB, seed=21))
    with tmpfs(openssh_sftp.root / "small", "2m") as folder:
        done = run_cli(
            "copy",
            f"s3://{bucket}/big.bin",
            target_url(openssh_sftp, "small/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--part-size",
            "1MiB",
            "--delete-source",
        )
        left = files_under(folder)

    assert done.returncode == 1
    error = one_error(done.stderr)
    assert f"✗ s3://{bucket}/big.bin: The destination is full writing " in error
    assert openssh_sftp.remote_path("small") in error  # the folder on the server is named
    assert left == {}  # neither the final name nor the temporary file
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == 6 * MiB


@pytest.mark.sftp_families
def test_a_read_only_target_folder_is_one_line_and_the_object_stays(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="feed.csv", Body=b"a,b\n")
    with tmpfs(openssh_sftp.root / "locked", "1m", read_only=True) as folder:
        done = run_cli(
            "copy",
            f"s3://{bucket}/feed.csv",
            target_url(openssh_sftp, "locked/"),
            *key_args(openssh_sftp, s3_endpoint),
            "--delete-source",
        )
        left = files_under(folder)

    assert done.returncode == 1
    error = one_error(done.stderr)
    assert f"The folder {openssh_sftp.remote_path('locked')} on " in error
    assert "is read-only" in error
    assert left == {}
    assert s3.get_object(Bucket=bucket, Key="feed.csv")["Body"].read() == b"a,b\n"


def test_a_get_reset_mid_body_leaves_nothing_at_the_final_name(
    openssh_sftp: SftpServerInfo,
    s3_store: S3Store,
    s3_proxy: FaultProxy,
    s3: Any,
    bucket: str,
) -> None:
    data = pattern(12 * MiB, seed=22)
    s3.put_object(Bucket=bucket, Key="cut.bin", Body=data)
    endpoint = s3_store.endpoint(endpoint_url=s3_proxy.url, max_attempts=1)
    s3_proxy.cut_after(5 * MiB, DOWN)  # once, in the middle of a ranged GET's body

    done = run_cli(
        "copy",
        f"s3://{bucket}/cut.bin",
        target_url(openssh_sftp, "partner/"),
        *key_args(openssh_sftp, endpoint),
        "--part-size",
        "4MiB",
        "--delete-source",
    )

    assert s3_proxy.cuts == 1
    assert done.returncode == 1, done.stderr
    error = one_error(done.stderr)
    assert f"✗ s3://{bucket}/cut.bin: Reading s3://{bucket}/cut.bin: the connection to " in error
    assert files_under(openssh_sftp.root / "partner") == {}
    assert s3.head_object(Bucket=bucket, Key="cut.bin")["ContentLength"] == len(data)

    again = run_cli(
        "copy",
        f"s3://{bucket}/cut.bin",
        target_url(openssh_sftp, "partner/"),
        *key_args(openssh_sftp, endpoint),
    )

    assert again.returncode == 0, again.stderr
    assert files_under(openssh_sftp.root / "partner") == {"cut.bin": data}


@pytest.mark.sftp_families
@pytest.mark.parametrize("size", [12 * MiB, 3 * MiB], ids=["parts", "one-part"])
def test_kill_9_mid_delivery_the_next_run_removes_the_temporary_file(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    size: int,
) -> None:
    """A one-part object's record lives in its lock file (no JSON record): found all the
    same after the kill."""
    data = pattern(size, seed=23)
    s3.put_object(Bucket=bucket, Key="slow.bin", Body=data)
    sshd_proxy.throttle(512 * 1024, "up")
    folder = via_proxy.root / "partner"
    command = [
        "copy",
        f"s3://{bucket}/slow.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
    ]
    child = subprocess.Popen(
        [sys.executable, "-m", "sftp_s3_tui", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder.exists() and any(p.stat().st_size for p in folder.iterdir())):
            assert child.poll() is None, "the delivery ended before it could be killed"
            assert time.monotonic() < deadline, "the temporary file never grew"
            time.sleep(0.1)
        child.kill()  # SIGKILL: no cleanup runs
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    (left,) = folder.iterdir()
    assert left.name.startswith(".slow.bin.") and left.name.endswith(".partial")
    if size <= DeliveryOptions.part_size:  # one part: the record is the lock file's, alone
        records_dir = state_dir() / "deliveries"
        assert list(records_dir.glob("*.json")) == []
        assert [p for p in records_dir.glob("*.lock") if left.name in p.read_text()]
    sshd_proxy.throttle(None)

    again = run_cli(*command, "--json")

    assert again.returncode == 0, again.stderr
    (row,), _ = records(again.stdout)
    assert row["status"] == "done"
    temp = f"{via_proxy.remote_path('partner')}/{left.name}"
    # killed before its first checkpoint, it is removed; after one, resumed (see below)
    assert f"the temporary file {temp}" in row["message"] or f"resumed {temp}" in row["message"]
    assert files_under(folder) == {"slow.bin": data}


def test_delete_source_keeps_an_object_replaced_after_it_was_read(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="feed.csv", Body=b"first\n")

    def replaced() -> None:  # another writer, once our GET has its answer
        s3.put_object(Bucket=bucket, Key="feed.csv", Body=b"second\n")

    s3_faults.fail("GET object", THEN, then=replaced)

    done = run_cli(
        "copy",
        f"s3://{bucket}/feed.csv",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, faulty_endpoint),
        "--delete-source",
        "--json",
    )

    assert done.returncode == 0, done.stderr
    (row,), _ = records(done.stdout)
    assert row["status"] == "done" and "source_deleted" not in row
    assert "changed after it was read, so it was kept" in row["message"]
    assert files_under(openssh_sftp.root / "in") == {"feed.csv": b"first\n"}
    assert s3.get_object(Bucket=bucket, Key="feed.csv")["Body"].read() == b"second\n"


def _record_of(folder: str) -> dict[str, Any] | None:
    """The delivery record (in this session's state folder) of a file in ``folder``."""
    for path in (state_dir() / "deliveries").glob("*.json"):
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now
        if record["temp_path"].startswith(folder + "/"):
            return record
    return None


def _killed_mid_delivery(
    command: list[str], folder: str, proxy: FaultProxy, at_least: int
) -> dict[str, Any]:
    """Run the CLI, SIGKILL it once its record says ``at_least`` bytes are written; the
    record it left."""
    child = subprocess.Popen(
        [sys.executable, "-m", "sftp_s3_tui", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while (record := _record_of(folder)) is None or record["written"] < at_least:
            assert child.poll() is None, "the delivery ended before it could be killed"
            assert time.monotonic() < deadline, "the delivery never got that far"
            time.sleep(0.1)
        child.kill()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    proxy.throttle(None)
    return record


@pytest.mark.sftp_families
@pytest.mark.parametrize("changed", [False, True], ids=["unchanged", "object-replaced"])
def test_after_kill_9_the_next_run_resumes_from_the_verified_prefix_or_starts_over(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
    changed: bool,
) -> None:
    data = pattern(16 * MiB, seed=24)
    s3.put_object(Bucket=bucket, Key="resume.bin", Body=data)
    sshd_proxy.throttle(2 * MiB, "up")
    command = [
        "copy",
        f"s3://{bucket}/resume.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "1MiB",
    ]
    record = _killed_mid_delivery(command, via_proxy.remote_path("partner"), sshd_proxy, 2 * MiB)
    left = via_proxy.root / "partner" / record["temp_path"].rsplit("/", 1)[1]
    assert left.stat().st_size >= record["written"]
    assert not (via_proxy.root / "partner" / "resume.bin").exists()
    if changed:
        data = pattern(16 * MiB, seed=25)
        s3.put_object(Bucket=bucket, Key="resume.bin", Body=data)

    again = run_cli(*command, "--json")

    assert again.returncode == 0, again.stderr
    (row,), _ = records(again.stdout)
    assert row["status"] == "done" and row["verified_by"] == "crc32+size"
    if changed:
        assert "the object changed since" in row["message"]
        assert "started over" in row["message"]
    else:
        assert f"resumed {record['temp_path']} from byte {record['written']} " in row["message"]
    assert files_under(via_proxy.root / "partner") == {"resume.bin": data}
    assert _record_of(via_proxy.remote_path("partner")) is None


@pytest.mark.sftp_families
def test_after_kill_9_of_an_inplace_delivery_its_partial_file_is_removed_and_redone(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    """--inplace risks a partial file at the final name (said when it runs); the record
    lets the next run tell that file from the partner's and replace it."""
    data = pattern(16 * MiB, seed=26)
    s3.put_object(Bucket=bucket, Key="inplace.bin", Body=data)
    sshd_proxy.throttle(2 * MiB, "up")
    command = [
        "copy",
        f"s3://{bucket}/inplace.bin",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "1MiB",
        "--inplace",
    ]
    record = _killed_mid_delivery(command, via_proxy.remote_path("partner"), sshd_proxy, MiB)
    final = via_proxy.root / "partner" / "inplace.bin"
    assert record["temp_path"] == via_proxy.remote_path("partner/inplace.bin")
    assert 0 < final.stat().st_size < len(data)  # what --inplace risks

    again = run_cli(*command, "--json")  # the default conflict policy: skip-existing

    assert again.returncode == 0, again.stderr
    (row,), _ = records(again.stdout)
    assert row["status"] == "done" and row["published_by"] == "in place"
    assert "it was written in place; started over" in row["message"]
    assert files_under(via_proxy.root / "partner") == {"inplace.bin": data}


def test_a_listed_small_object_costs_one_get_and_is_checked_by_its_answer(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    small = {f"drop/{n}.csv": pattern(64 * 1024 + n, seed=n) for n in range(3)}
    for key, data in small.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert s3_faults.app is not None
    s3_faults.app.requests.clear()

    done = run_cli(
        "copy",
        f"s3://{bucket}/drop/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, faulty_endpoint),
        "--json",
    )

    assert done.returncode == 0, done.stderr
    rows, _ = records(done.stdout)
    assert sorted(row["verified_by"] for row in rows) == ["crc32+size"] * 3
    assert files_under(openssh_sftp.root / "in") == {
        key.removeprefix("drop/"): data for key, data in small.items()
    }
    asked = s3_faults.app.requests
    assert "HeadObject" not in asked  # the listing and the GET's answer describe each object
    assert asked.count("GET object") == 3


def test_an_object_replaced_after_the_listing_is_not_delivered(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="drop/feed.csv", Body=b"first\n")

    def replaced() -> None:  # another writer, between our listing and our GET
        s3.put_object(Bucket=bucket, Key="drop/feed.csv", Body=b"second, longer\n")

    s3_faults.fail("GET bucket", THEN, then=replaced)

    done = run_cli(
        "copy",
        f"s3://{bucket}/drop/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, faulty_endpoint),
    )

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, done.stderr
    assert "changed while it was being delivered" in errors[0]
    assert "Traceback" not in done.stderr
    assert files_under(openssh_sftp.root) == {}  # no .partial, nothing at in/feed.csv


def test_bytes_that_do_not_match_the_stored_crc32_are_not_delivered(
    openssh_sftp: SftpServerInfo,
    s3_faults: FaultyS3Server,
    faulty_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="drop/feed.csv", Body=pattern(9000, seed=3))
    s3_faults.checksums("disagree", algorithms={"crc32"})  # the store answers another CRC32

    done = run_cli(
        "copy",
        f"s3://{bucket}/drop/",
        target_url(openssh_sftp, "in/"),
        *key_args(openssh_sftp, faulty_endpoint),
    )

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, done.stderr
    assert "The bytes read have CRC32" in errors[0] and "the store holds" in errors[0]
    assert "Traceback" not in done.stderr
    assert files_under(openssh_sftp.root) == {}  # nothing at in/feed.csv, no .partial
