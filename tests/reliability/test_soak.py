"""Soak: mixed transfers with periodic faults for SOAK_SECONDS (default 1200), then a report.

Not in the default run. Run it with::

    SOAK_SECONDS=1200 uv run pytest -m soak tests/reliability/test_soak.py -s

The engine runs in its own process (``soak_worker.py``), so its RSS is measured apart from
moto, the proxies and the faulty S3 that live in the test process. The report (printed, and
written as JSON to SOAK_REPORT, default ./soak-report.json) gives transfers attempted /
succeeded / failed, bytes verified, orphaned uploads (must be 0), leftover journal entries
(must be 0), objects left by failed transfers (must be 0) and the engine's RSS after the
warm-up and at the end (must not grow by more than RSS_MARGIN).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.demo import EmbeddedS3Server
from sftp_s3_tui.engine.config import TransferOptions
from tests.support.fault_proxy import DOWN, UP, FaultProxy
from tests.support.servers import RemoteFile, SftpServerInfo
from tests.support.transfers import MiB

from .conftest import sha256
from .s3faults import RESET, FaultyS3Server

SIZES = [0, 1, 100_000, 5 * MiB - 1, 5 * MiB + 1, 12 * MiB + 7, 23 * MiB]
RSS_MARGIN = 32 * MiB
ROUND_TIMEOUT_SECONDS = 120
WARM_UP_ROUNDS = 3
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "1200"))
#: After the warm-up the rounds cycle through these kinds: a mixed round with a random fault,
#: an interrupt during upload start, a many-file folder and a folder with a FIFO in it.
ROUND_KINDS = ["mixed", "interrupt", "mixed", "many-files", "mixed", "fifo"]
INTERRUPT_FILES = 8  # of 5 MiB + 1 B, all started at once, cancelled 0-100 ms after the start
MANY_FILES = 200


@dataclass
class SoakReport:
    seconds: float = 0.0
    rounds: int = 0
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    bytes_verified: int = 0
    orphaned_uploads: int = 0
    journal_entries_left: int = 0
    objects_of_failed_transfers: int = 0
    rss_start_bytes: int = 0
    rss_end_bytes: int = 0
    rss_max_bytes: int = 0
    interrupt_rounds: int = 0
    cancelled: int = 0
    many_file_rounds: int = 0
    fifo_rounds: int = 0
    fifos_refused: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


class Midway:
    """Runs an action once a proxy has moved another 2 MiB (a fault in mid-transfer)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def arm(self, proxy: FaultProxy, action: Callable[[], None]) -> None:
        start = proxy.bytes_up + proxy.bytes_down

        def run() -> None:
            while not self._stop.wait(0.005):
                if proxy.bytes_up + proxy.bytes_down > start + 2 * MiB:
                    action()
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def disarm(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._stop.clear()


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 900)
def test_soak(
    via_proxy: SftpServerInfo,
    sshd_proxy: FaultProxy,
    s3_faults: FaultyS3Server,
    moto_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    budget = float(SOAK_SECONDS)
    report_path = Path(os.environ.get("SOAK_REPORT", "soak-report.json"))
    with (
        FaultProxy(s3_faults.host, s3_faults.port) as s3_proxy,
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.soak_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as worker,
    ):
        try:
            soak = Soak(worker, via_proxy, sshd_proxy, s3_proxy, s3_faults, s3, bucket, tmp_path)
            report = soak.run(
                budget,
                moto_server.endpoint(endpoint_url=s3_proxy.url, max_attempts=3),
                random.Random(int(os.environ.get("SOAK_SEED", "8"))),
            )
        finally:
            assert worker.stdin
            worker.stdin.close()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()

    report_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    with capsys.disabled():
        print("\nsoak report:", json.dumps(asdict(report), indent=2), sep="\n")
    assert report.orphaned_uploads == 0
    assert report.journal_entries_left == 0
    assert report.objects_of_failed_transfers == 0
    assert report.succeeded > report.failed
    assert report.rss_end_bytes - report.rss_start_bytes < RSS_MARGIN


@dataclass
class Soak:
    """The soak's rounds: arm a fault, have the worker copy a fresh folder, check S3."""

    worker: subprocess.Popen[str]
    via_proxy: SftpServerInfo
    sshd_proxy: FaultProxy
    s3_proxy: FaultProxy
    s3_faults: FaultyS3Server
    s3: Any
    bucket: str
    tmp_path: Path

    def faults(self, midway: Midway) -> dict[str, Callable[[random.Random], object]]:
        sshd, s3p, s3f = self.sshd_proxy, self.s3_proxy, self.s3_faults
        return {
            "none": lambda r: None,
            "sftp-cut-once": lambda r: sshd.cut_after(r.randint(1, 20) * MiB, DOWN),
            "sftp-cut-always": lambda r: sshd.cut_after(r.randint(2, 8) * MiB, DOWN, repeat=True),
            "sftp-stall-3s": lambda r: midway.arm(sshd, lambda: sshd.stall(3.0)),
            "sftp-throttle": lambda r: sshd.throttle(r.randint(8, 40) * MiB, DOWN),
            "s3-500-part": lambda r: s3f.fail("UploadPart", 500, after=r.randint(0, 3)),
            "s3-503-any": lambda r: s3f.fail(None, 503, after=r.randint(0, 6), times=2),
            "s3-reset-complete": lambda r: s3f.fail("CompleteMultipartUpload", RESET),
            "s3-cut-upload": lambda r: s3p.cut_after(r.randint(1, 15) * MiB, UP),
            "s3-stall-2s": lambda r: midway.arm(s3p, lambda: s3p.stall(2.0)),
        }

    def write_round(
        self, kind: str, number: int, rng: random.Random
    ) -> tuple[list[RemoteFile], Path | None]:
        """The round's folder: its regular files, and the FIFO beside them in a FIFO round."""
        count, sizes = rng.randint(1, 4), SIZES
        if kind == "interrupt":
            count, sizes = INTERRUPT_FILES, [5 * MiB + 1]
        elif kind == "many-files":
            count, sizes = MANY_FILES, [0, 1, 100, 4096, 100_000]
        files = [
            self.via_proxy.write_file(
                f"r{number}/f{i}.bin", size=rng.choice(sizes), seed=rng.randrange(1 << 30)
            )
            for i in range(count)
        ]
        fifo = None
        if kind == "fifo":
            fifo = self.via_proxy.root / f"r{number}" / "pipe.fifo"
            os.mkfifo(fifo, 0o644)
        return files, fifo

    def run(self, budget: float, s3_endpoint: Any, rng: random.Random) -> SoakReport:
        journal = self.tmp_path / "journal"
        sftp_endpoint = self.via_proxy.endpoint(
            request_timeout_seconds=2.0, connect_timeout_seconds=3.0
        )
        options = TransferOptions(
            part_size=5 * MiB,
            parts_in_flight=3,
            memory_budget=48 * MiB,
            files_in_flight=3,
            attempts=4,
            backoff_seconds=0.05,
            backoff_max_seconds=1.0,
            upload_timeout_seconds=10.0,
        )
        midway = Midway()
        faults = self.faults(midway)
        report = SoakReport()
        counts: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        rss: list[int] = []
        began = time.monotonic()
        number = 0
        while number < WARM_UP_ROUNDS + 1 or time.monotonic() - began < budget:
            number += 1
            kind = "mixed" if number <= WARM_UP_ROUNDS else ROUND_KINDS[number % len(ROUND_KINDS)]
            files, fifo = self.write_round(kind, number, rng)
            name = "none" if number <= 2 or kind != "mixed" else rng.choice(sorted(faults))
            counts[name] += 1
            faults[name](rng)
            round_options = options
            if kind == "interrupt":  # every file starts its upload at once
                round_options = replace(options, files_in_flight=INTERRUPT_FILES)
                report.interrupt_rounds += 1
            report.many_file_rounds += kind == "many-files"
            report.fifo_rounds += kind == "fifo"
            request: dict[str, object] = {
                "sftp": _pickled(sftp_endpoint),
                "s3": _pickled(s3_endpoint),
                "options": _pickled(round_options),
                "journal": str(journal),
                "source": self.via_proxy.remote_path(f"r{number}/"),
                "dest": f"s3://{self.bucket}/r{number}/",
            }
            if kind == "interrupt":
                request["cancel_after_seconds"] = rng.uniform(0.0, 0.1)
            assert self.worker.stdin
            self.worker.stdin.write(json.dumps(request) + "\n")
            self.worker.stdin.flush()
            answer = _read_answer(self.worker)
            midway.disarm()
            for proxy in (self.sshd_proxy, self.s3_proxy):
                proxy.clear()
                proxy.throttle(None)
            self.s3_faults.clear()
            rss.append(answer["rss"])
            results = answer.get("results") or [
                {
                    "key": f"r{number}/{f.remote_path.rsplit('/', 1)[1]}",
                    "status": "failed",
                    "message": answer["error"],
                }
                for f in files
            ]
            if fifo is not None:
                results = _check_fifo(fifo, results, report)
            if kind in ("many-files", "fifo"):  # no fault: every regular file lands
                assert all(r["status"] == "done" for r in results), [
                    (r["key"], r["status"], r.get("message")) for r in results
                ]
            _check_round(self.s3, self.bucket, files, results, report, failures)
            uploads = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads") or []
            report.orphaned_uploads += len(uploads)
            for upload in uploads:  # counted once; cleaned so later rounds start clean
                self.s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            for remote in files:
                remote.local_path.unlink()
            if fifo is not None:
                fifo.unlink()
        report.seconds = round(time.monotonic() - began, 1)
        report.rounds = number
        report.rss_start_bytes = rss[WARM_UP_ROUNDS - 1]
        report.rss_end_bytes = rss[-1]
        report.rss_max_bytes = max(rss)
        report.journal_entries_left = len(list(journal.glob("*.jsonl"))) if journal.exists() else 0
        report.faults = dict(counts)
        report.failures = dict(failures)
        return report


def _pickled(config: object) -> str:
    """A config object for the worker (pickled: enums and nested options survive)."""
    return base64.b64encode(pickle.dumps(config)).decode()


def _read_answer(worker: subprocess.Popen[str]) -> dict[str, Any]:
    """The worker's answer to one round, within ROUND_TIMEOUT_SECONDS (a hang fails)."""
    assert worker.stdout
    answer: list[str] = []
    reader = threading.Thread(target=lambda: answer.append(worker.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(ROUND_TIMEOUT_SECONDS)
    assert answer and answer[0], f"the engine hung or died (exit {worker.poll()})"
    parsed: dict[str, Any] = json.loads(answer[0])
    return parsed


def _check_fifo(
    fifo: Path, results: list[dict[str, Any]], report: SoakReport
) -> list[dict[str, Any]]:
    """The FIFO was refused by its type, with one line; the other results are returned."""
    refused = [r for r in results if r["key"].endswith(fifo.name)]
    assert len(refused) == 1, results
    message = refused[0].get("message", "")
    assert refused[0]["status"] == "failed", refused[0]
    assert "not a regular file" in message and "\n" not in message, message
    report.fifos_refused += 1
    return [r for r in results if r is not refused[0]]


def _check_round(
    s3: Any,
    bucket: str,
    files: list[RemoteFile],
    results: list[dict[str, Any]],
    report: SoakReport,
    failures: Counter[str],
) -> None:
    """Every success is byte-exact in S3; every failure left no object behind."""
    by_name = {f.remote_path.rsplit("/", 1)[1]: f for f in files}
    assert len(results) == len(files)
    for result in results:
        report.attempted += 1
        source = by_name[result["key"].rsplit("/", 1)[1]]
        if result["status"] == "done":
            body = s3.get_object(Bucket=bucket, Key=result["key"])["Body"].read()
            assert sha256(body) == source.sha256 == result["sha256"], result
            report.succeeded += 1
            report.bytes_verified += len(body)
            s3.delete_object(Bucket=bucket, Key=result["key"])
        else:
            report.cancelled += result["status"] == "cancelled"
            report.failed += 1
            failures[re.sub(r"\S*/\S*", "…", result.get("message", ""))[:90]] += 1
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=result["key"]).get("Contents", [])
            if any(o["Key"] == result["key"] for o in listed):
                report.objects_of_failed_transfers += 1


CONCURRENT_ROUNDS = int(os.environ.get("SOAK_CONCURRENT_ROUNDS", "6"))


@dataclass
class ConcurrentReport:
    """Rounds of two ``copy`` runs on one drop with one ``s3://`` manifest, and two
    ``watch`` processes started at once on one state."""

    rounds: int = 0
    files: int = 0
    copied: int = 0  # by either run (the other skipped it: skip-existing)
    skipped: int = 0
    failed: int = 0
    moved: int = 0
    left_in_drop: int = 0
    manifest_rows_printed: int = 0  # rows both runs reported (--json), every round so far
    manifest_rows_in_object: int = 0
    moved_without_row: int = 0
    watch_refused: int = 0  # the second watcher, refused by the lock
    watch_shipped_twice: int = 0
    tracebacks: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # message → count


@pytest.mark.soak
@pytest.mark.timeout(CONCURRENT_ROUNDS * 300 + 300)
def test_soak_concurrent_runs_on_one_drop_manifest_and_state(
    openssh_sftp: SftpServerInfo, moto_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    """A cron overlap every round: both runs copy the same drop (skip-existing, --move-to)
    into one prefix with one s3:// manifest; then two watchers of one folder start at once.
    Nothing is lost (every file is in S3 byte-exact and in the drop or the archive), every
    moved source has its row, the object holds every row either run reported, one watcher
    runs and the other is refused, and no file is shipped twice."""
    endpoint = moto_server.endpoint()
    assert endpoint.endpoint_url
    common = [
        "--identity",
        str(openssh_sftp.identity_file),
        "--known-hosts",
        str(openssh_sftp.known_hosts),
        "--endpoint-url",
        endpoint.endpoint_url,
        "--no-agent",
        "--json",
    ]
    url = f"sftp://{openssh_sftp.username}@{openssh_sftp.host}:{openssh_sftp.port}"
    manifest_key = "manifests/soak.jsonl"
    rng = random.Random(int(os.environ.get("SOAK_SEED", "8")))
    report = ConcurrentReport()
    for number in range(1, CONCURRENT_ROUNDS + 1):
        report.rounds = number
        drop, archive = f"drop{number}", f"processed{number}"
        files = [
            openssh_sftp.write_file(
                f"{drop}/f{i}.bin", size=rng.choice(SIZES[:5]), seed=rng.randrange(1 << 30)
            )
            for i in range(rng.randint(3, 8))
        ]
        report.files += len(files)
        args = [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "copy",
            f"{url}{openssh_sftp.remote_path(drop + '/')}",
            f"s3://{bucket}/in{number}/",
            *common,
            "--conflict",
            "skip-existing",
            "--move-to",
            openssh_sftp.remote_path(archive),
            "--manifest",
            f"s3://{bucket}/{manifest_key}",
        ]
        runs = [
            subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=240) for run in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            report.tracebacks += "Traceback" in err
            assert run.returncode in (0, 1), err
            for line in out.splitlines():
                record = json.loads(line)
                if record.get("summary"):
                    continue
                report.manifest_rows_printed += 1  # a file's result or its source's outcome
                status = record.get("status")
                report.copied += status == "done"
                report.skipped += status == "skipped"
                report.failed += status == "failed"
                if status == "failed":
                    why = re.sub(r"\S*/\S*", "…", record.get("message", ""))[:120]
                    report.failures[why] = report.failures.get(why, 0) + 1
        body = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().decode()
        rows = [json.loads(line) for line in body.splitlines()]
        report.manifest_rows_in_object = len(rows)
        recorded = {
            r["source"]["path"] for r in rows if r["kind"] == "file" and r["status"] == "done"
        }
        archived = openssh_sftp.root / archive
        for remote in files:
            name = remote.remote_path.rsplit("/", 1)[1]
            got = s3.get_object(Bucket=bucket, Key=f"in{number}/{name}")["Body"].read()
            assert sha256(got) == remote.sha256, name
            moved, left = archived / name, openssh_sftp.root / drop / name
            assert moved.exists() != left.exists(), name  # in one place, never lost
            kept = moved if moved.exists() else left
            assert sha256(kept.read_bytes()) == remote.sha256, name
            report.moved += moved.exists()
            report.left_in_drop += left.exists()
            report.moved_without_row += moved.exists() and remote.remote_path not in recorded
        assert report.manifest_rows_in_object == report.manifest_rows_printed, report

        # two watchers of one folder, started at once: one runs, one is refused
        wfiles = [
            openssh_sftp.write_file(f"wdrop/r{number}-{i}.csv", f"{number},{i}\n".encode())
            for i in range(2)
        ]
        wargs = [
            sys.executable,
            "-m",
            "sftp_s3_tui",
            "watch",
            f"{url}{openssh_sftp.remote_path('wdrop/')}",
            f"s3://{bucket}/w/",
            *common,
            "--every",
            "0.5s",
        ]
        watchers = [
            subprocess.Popen(wargs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        expected = {f"w/{f.remote_path.rsplit('/', 1)[1]}" for f in wfiles}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="w/").get("Contents", [])
            one_refused = any(w.poll() is not None for w in watchers)
            if one_refused and expected <= {o["Key"] for o in listed}:
                break
            time.sleep(0.2)
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.send_signal(signal.SIGTERM)
        finished = [w.communicate(timeout=120) for w in watchers]
        codes = sorted(w.returncode for w in watchers)
        assert codes == [0, 1], (codes, [err for _, err in finished])
        refused = next(err for w, (_, err) in zip(watchers, finished, strict=True) if w.returncode)
        assert "another watch of these sources into this destination is running" in refused
        report.watch_refused += 1
        shipped = Counter(
            json.loads(line)["key"]
            for out, _ in finished
            for line in out.splitlines()
            if '"key"' in line and json.loads(line).get("status") == "done"
        )
        report.watch_shipped_twice += sum(n > 1 for n in shipped.values())
        assert set(shipped) == expected, shipped  # this round's files, once each

    print("\nconcurrent soak report:", json.dumps(asdict(report), indent=2), sep="\n")
    assert report.tracebacks == 0
    assert report.moved_without_row == 0
    assert report.watch_shipped_twice == 0
