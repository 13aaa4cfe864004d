"""A delivery watch (S3 → SFTP) interrupted mid-delivery: Ctrl-C stops it cleanly, nothing
is left at a final or temporary name, and the next watch delivers the object whole, once;
after a kill -9 the next watch resumes the delivery from its verified prefix."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args
from tests.support.delivery import files_under, pattern, target_url
from tests.support.fault_proxy import FaultProxy
from tests.support.servers import SftpServerInfo, default_sigint
from tests.support.watcher import Watcher, wait_for

from .test_delivery_faults import _killed_mid_delivery

MiB = 1 << 20


def test_ctrl_c_mid_delivery_stops_the_watch_and_leaves_no_file(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    data = pattern(12 * MiB, seed=28)
    s3.put_object(Bucket=bucket, Key="out/slow.bin", Body=data)
    sshd_proxy.throttle(512 * 1024, "up")  # slow enough to be interrupted mid-write
    folder = via_proxy.root / "partner"
    args = [
        sys.executable,
        "-m",
        "sftp_s3_tui",
        "watch",
        f"s3://{bucket}/out/",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--every",
        "0.3s",
        "--json",
    ]
    child = subprocess.Popen(
        args,
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
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()

    assert child.returncode == 0, stderr  # a watch stops on Ctrl-C as on SIGTERM
    assert "stopped after 1 poll(s); 0 object version(s) delivered" in stderr
    assert "Traceback" not in stderr
    assert '"source"' not in stdout  # the cut delivery is not reported as one
    assert files_under(via_proxy.root) == {}  # no .partial, nothing at partner/slow.bin

    # the next watch was not told it was delivered: it delivers it, whole, once
    again = Watcher(args)
    try:
        wait_for(lambda: any("source" in line for line in again.lines))
        polls = again.polls()
        wait_for(lambda: again.polls() >= polls + 2)
    finally:
        code, err = again.stop()
    assert code == 0, err
    (row,) = [line for line in again.lines if "source" in line]
    assert row["status"] == "done" and row["bytes"] == len(data)
    assert files_under(via_proxy.root) == {"partner/slow.bin": data}


def test_after_kill_9_the_next_watch_resumes_the_delivery_and_delivers_it_once(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_endpoint: S3Endpoint,
    s3: Any,
    bucket: str,
) -> None:
    data = pattern(16 * MiB, seed=29)
    s3.put_object(Bucket=bucket, Key="out/resume.bin", Body=data)
    sshd_proxy.throttle(2 * MiB, "up")
    command = [
        "watch",
        f"s3://{bucket}/out/",
        target_url(via_proxy, "partner/"),
        *key_args(via_proxy, s3_endpoint),
        "--part-size",
        "1MiB",
        "--every",
        "0.3s",
        "--json",
    ]
    record = _killed_mid_delivery(command, via_proxy.remote_path("partner"), sshd_proxy, 2 * MiB)
    assert not (via_proxy.root / "partner" / "resume.bin").exists()

    again = Watcher([sys.executable, "-m", "sftp_s3_tui", *command])  # the lock died with it
    try:
        wait_for(lambda: any("source" in line for line in again.lines))
        polls = again.polls()
        wait_for(lambda: again.polls() >= polls + 2)
    finally:
        code, err = again.stop()
    assert code == 0, err
    (row,) = [line for line in again.lines if "source" in line]
    assert row["status"] == "done" and row["verified_by"] == "crc32+size"
    assert f"resumed {record['temp_path']} from byte {record['written']} " in row["message"]
    assert files_under(via_proxy.root) == {"partner/resume.bin": data}
