"""Fixed figures for snapshot tests: a sampler snapshot and queue rows that never vary."""

from __future__ import annotations

from sftp_s3_tui.engine.config import MiB
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.metrics import Snapshot, TransferStats
from sftp_s3_tui.ui.widgets.transfer_list import TransferRow

SIZE = 300 * MiB
PARTS = 38


def _codes() -> bytes:
    # 18 done, one retried and now uploading, 3 uploading, 4 reading, the rest waiting
    return bytes([3] * 18 + [4] + [2] * 3 + [1] * 4 + [0] * (PARTS - 26))


def fixed_stats() -> TransferStats:
    return TransferStats(
        transfer_id=1,
        source="sftp://demo@demo-host/exports/customers_2026.csv",
        bucket="landing",
        key="2026-11/customers_2026.csv",
        state=TransferState.RUNNING,
        size=SIZE,
        bytes_done=18 * 8 * MiB,
        bytes_per_second=61.2e6,
        part_size=8 * MiB,
        parts_total=PARTS,
        parts_done=18,
        parts_in_flight=8,
        parts_retried=1,
        part_codes=_codes(),
        elapsed_seconds=2.5,
    )


def fixed_rows() -> list[TransferRow]:
    return [
        TransferRow(1, "customers_2026.csv", "2026-11/customers_2026.csv", SIZE),
        TransferRow(
            2,
            "orders 2026-11.csv",
            "2026-11/orders 2026-11.csv",
            48 * MiB,
            TransferState.DONE,
            bytes_done=48 * MiB,
            parts_done=6,
            parts_total=6,
        ),
        TransferRow(3, "ünïcode name.parquet", "2026-11/ünïcode name.parquet", 3 * MiB + 123),
        TransferRow(
            4,
            "README.txt",
            "2026-11/README.txt",
            2048,
            TransferState.FAILED,
            message="Permission denied reading /exports/README.txt",
        ),
    ]


def fixed_snapshot() -> Snapshot:
    history = tuple(float(v) * 1e6 for v in (0, 5, 22, 48, 57, 61, 60, 63, 59, 61, 62, 61))
    return Snapshot(
        at=100.0,
        wall_time=1_795_167_000.0,
        elapsed_seconds=12.0,
        bytes_transferred=(18 + 6) * 8 * MiB,
        bytes_per_second=61.2e6,
        throughput_history=history,
        parts_done=24,
        parts_in_flight=8,
        parts_retried_sftp=0,
        parts_retried_s3=1,
        parts_failed=0,
        files_queued=1,
        files_running=1,
        files_paused=0,
        files_done=1,
        files_failed=1,
        files_skipped=0,
        files_cancelled=0,
        transfers=(fixed_stats(),),
        rss_bytes=212 * MiB,
        disk_read_bytes=0,
        disk_write_bytes=0,
        cpu_seconds=3.0,
        cpu_percent=40.0,
        buffer_pool_bytes_in_use=64 * MiB,
        buffer_pool_budget_bytes=512 * MiB,
        sftp_read_seconds=(),
        s3_upload_seconds=(),
    )
