"""A manifest that cannot be written mid-run (the audit swapped the file for a folder; disk
full and EIO fail the same write): the run fails with one line per file it affected, and no
source is moved without its row."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from tests.reliability.conftest import proxied
from tests.support.cli import key_args, source_url
from tests.support.fault_proxy import FaultProxy
from tests.support.nightly import manifest_rows
from tests.support.servers import SftpServerInfo


def test_a_manifest_swapped_for_a_folder_mid_run_fails_the_run_and_keeps_sources(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, s3: Any, bucket: str, tmp_path: Path
) -> None:
    names = [f"f{n}.bin" for n in range(6)]
    for n, name in enumerate(names):
        openssh_sftp.write_file(f"drop/{name}", size=256 * 1024, seed=n)
    manifest = tmp_path / "nightly.jsonl"
    with FaultProxy(openssh_sftp.host, openssh_sftp.port) as proxy:
        slow = proxied(openssh_sftp, proxy, tmp_path)
        proxy.throttle(512 * 1024, which="down")  # a file every ~0.5 s: the swap lands midway
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sftp_s3_tui",
                "copy",
                source_url(slow, "drop/"),
                f"s3://{bucket}/in/",
                *key_args(slow, s3_endpoint),
                "--files",
                "1",
                "--move-to",
                slow.remote_path("processed"),
                "--manifest",
                str(manifest),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if manifest.exists() and manifest.read_bytes().count(b'"kind":"file"') >= 1:
                    break
                time.sleep(0.02)
            assert process.poll() is None, "the run ended before the manifest was swapped"
            kept = manifest.rename(tmp_path / "kept.jsonl")  # the audit's swap
            manifest.mkdir()
            _, err = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert process.returncode == 1, err
    assert "Traceback" not in err
    recorded = {Path(r["source"]["path"]).name for r in manifest_rows(kept) if r["kind"] == "file"}
    moved = sorted(p.name for p in (openssh_sftp.root / "processed").iterdir())
    left = sorted(p.name for p in (openssh_sftp.root / "drop").iterdir())
    assert moved == sorted(recorded)  # every moved source has its row, and only those moved
    assert left and sorted(moved + left) == names  # the others stayed in the drop
    lines = err.splitlines()
    for name in left:  # one line per file the manifest failure affected, naming it
        line = next(x for x in lines if x.endswith("its source was kept") and f"/{name}:" in x)
        assert f"copied to s3://{bucket}/in/{name}, but the manifest {manifest}" in line
        assert "could not be written: Is a directory" in line
    for name in moved:  # moved with its row; its move's own row may have failed
        said = [x for x in lines if f"/{name}:" in x and "the manifest" in x]
        assert all("and its source moved → " in x for x in said), said
    summary = re.search(r"(\d+) copied, 0 skipped, (\d+) failed", lines[-1])
    assert summary, lines[-1]
    copied, failed = int(summary[1]), int(summary[2])
    assert copied + failed == len(names) and failed >= len(left)
