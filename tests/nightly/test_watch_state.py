"""One watch per state: a second watch of the same drop into the same prefix stops with one
line saying who holds it, and a state that is not one (binary garbage, a folder) stops the
watch with one line naming the file, which is left as it is."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.support.transfers import keys
from tests.support.watcher import Watcher, wait_for


def watch_args(server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str) -> list[str]:
    return [
        "watch",
        source_url(server, "drop/"),
        f"s3://{bucket}/in/",
        *key_args(server, s3_endpoint),
        "--every",
        "0.3s",
        "--json",
    ]


def test_a_second_watch_of_the_same_drop_says_who_holds_it_and_exits(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str
) -> None:
    for n in range(3):
        openssh_sftp.write_file(f"drop/f{n}.csv", f"{n}\n".encode())
    args = watch_args(openssh_sftp, s3_endpoint, bucket)
    first = Watcher([sys.executable, "-m", "sftp_s3_tui", *args])
    try:
        wait_for(lambda: first.polls() >= 1)

        second = run_cli(*args, timeout=60)

        assert second.returncode == 1, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert re.search(
            rf"another watch of these sources into this destination is running "
            rf"\(pid {first.process.pid} on \S+, since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ; lock ",
            lines[0],
        ), lines[0]
        assert "stop it first" in lines[0]
        openssh_sftp.write_file("drop/later.csv", b"later\n")  # the first one goes on
        wait_for(lambda: len(keys(s3, bucket)) == 4)
    finally:
        code, err = first.stop()
    assert code == 0, err
    assert sorted(first.files()) == ["in/f0.csv", "in/f1.csv", "in/f2.csv", "in/later.csv"]

    third = Watcher([sys.executable, "-m", "sftp_s3_tui", *args])  # the lock was released
    try:
        wait_for(lambda: third.polls() >= 1)
    finally:
        code, err = third.stop()
    assert code == 0, err
    assert third.files() == []  # nothing shipped twice


def state_path_of(err: str) -> Path:
    found = re.search(r"state in (\S+\.jsonl)", err)
    assert found, err
    return Path(found[1])


def test_a_corrupt_watch_state_is_one_line_and_left_as_it_is(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str
) -> None:
    openssh_sftp.write_file("drop/a.csv", b"a\n")
    args = watch_args(openssh_sftp, s3_endpoint, bucket)
    first = Watcher([sys.executable, "-m", "sftp_s3_tui", *args])
    try:
        wait_for(lambda: first.files() == ["in/a.csv"])
    finally:
        code, err = first.stop()
    assert code == 0, err
    state = state_path_of(err)

    garbage = bytes(range(256)) * 4
    state.write_bytes(garbage)
    binary = run_cli(*args, timeout=60)
    assert binary.returncode == 1, binary.stderr
    assert binary.stderr.strip().splitlines() == [
        f"sftp-s3-tui: the watch state {state} cannot be read (binary data at byte 128); it was "
        f"left as it is — move it aside (mv {state} {state}.bad) and start again: the watch "
        "then finds what is in S3 already and ships only the rest"
    ]
    assert state.read_bytes() == garbage  # never overwritten

    state.write_text('{"id": "x"}\nnot json\n{"id": "y"}\n')
    lines = run_cli(*args, timeout=60)
    assert lines.returncode == 1 and "(line 2 is not a state row)" in lines.stderr
    assert len(lines.stderr.strip().splitlines()) == 1

    state.unlink()
    state.mkdir()
    folder = run_cli(*args, timeout=60)
    assert folder.returncode == 1, folder.stderr
    assert folder.stderr.strip().splitlines() == [
        f"sftp-s3-tui: the watch state {state} cannot be read (Is a directory); it was left "
        f"as it is — move it aside (mv {state} {state}.bad) and start again: the watch then "
        "finds what is in S3 already and ships only the rest"
    ]
    assert state.is_dir()
