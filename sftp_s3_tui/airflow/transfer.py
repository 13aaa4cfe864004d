"""What one Airflow task does, without Airflow: expand sources, run the queue, summarise.

The operator is a thin shell over these functions, so they are tested on the real servers
without an Airflow installation.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import posixpath
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..engine.addresses import S3Location, parse_s3_url
from ..engine.config import ConflictPolicy, S3Endpoint, SftpEndpoint, TransferOptions
from ..engine.errors import HostKeyError, SftpAuthError, SourceNotFound, TransferError, UsageError
from ..engine.events import (
    Direction,
    EngineEvent,
    EventBus,
    ManifestKept,
    RunSelected,
    StoreChecked,
    TransferFinished,
    TransferNotice,
    TransferResult,
    TransferState,
)
from ..engine.nightly.options import RunOptions
from ..engine.nightly.run import PlanRules, RunObserver, RunReport, run_nightly
from ..engine.nightly.source_actions import SourceOutcome
from ..engine.plan.sources import PlanSource, expand
from ..engine.resume.journal import Journal
from ..engine.sftp.pool import SftpPool
from ..engine.transfer.queue import TransferQueue
from ..engine.units import format_size, format_speed, parse_size
from ..metrics import exporting
from ..paths import state_dir
from ..requests import TransferFlags
from ..requests import transfer_options as request_options

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Statuses that count as success: the object is at its key (copied now or before).
SUCCEEDED = (TransferState.DONE, TransferState.SKIPPED)


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code (an Airflow ``execute``).

    ``asyncio.run`` when no loop runs in this thread; otherwise (a caller that already runs
    a loop) a fresh loop in a helper thread, so the engine never shares someone else's loop.
    """

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="sftp-s3-engine")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _log_event(event: EngineEvent) -> None:
    if isinstance(event, RunSelected):
        for source, reason in event.waiting:
            log.info("waiting: %s: %s", source, reason)
        log.info(
            "copying %d file(s), %s, to %s (%d waiting, %d excluded)",
            event.files,
            format_size(event.bytes),
            event.dest,
            len(event.waiting),
            event.excluded,
        )
    elif isinstance(event, ManifestKept):
        log.warning("manifest kept in %s: %s", event.path, event.error)
    elif isinstance(event, TransferNotice):
        log.warning("%s", event.message)
    elif isinstance(event, StoreChecked):
        log.info("store check: %s", event.capabilities.summary())
    elif isinstance(event, TransferFinished):
        result = event.result
        where = f"s3://{result.bucket}/{result.key}"
        if result.status is TransferState.DONE:
            rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
            log.info(
                "copied %s → %s: %s in %.1fs (%s), sha256 %s",
                result.source,
                where,
                format_size(result.bytes),
                result.seconds,
                format_speed(rate),  # MiB/s, as sizes are MiB: one family everywhere
                result.sha256,
            )
        elif result.status is TransferState.SKIPPED:
            log.info("skipped %s → %s: %s", result.source, where, result.message)
        else:
            log.error("%s %s → %s: %s", result.status.value, result.source, where, result.message)


async def stream_to_s3(
    sftp: SftpEndpoint,
    paths: Sequence[str],
    dest: S3Location,
    s3: S3Endpoint,
    options: TransferOptions,
    *,
    base_path: str | None = None,
    journal: Journal | None = None,
    fail_on_missing: bool = True,
    push_gateway: str | None = None,
    metric_labels: Mapping[str, str] | None = None,
) -> list[TransferResult]:
    """Copy files, folders and globs from one SFTP server under ``dest`` on the engine.

    Raises the engine's :class:`~sftp_s3_tui.engine.errors.TransferError` when a source
    cannot be expanded (missing, no permission; a missing one is only logged when
    ``fail_on_missing`` is false); per-file failures are in the results. With a
    ``push_gateway``, the sampler the CLI and TUI use pushes live metrics during the copy
    and once at the end, grouped by ``metric_labels`` (an unreachable gateway only warns).
    """
    report = await nightly_to_s3(
        sftp,
        paths,
        dest,
        s3,
        options,
        RunOptions(),
        base_path=base_path,
        journal=journal,
        fail_on_missing=fail_on_missing,
        push_gateway=push_gateway,
        metric_labels=metric_labels,
    )
    return report.results


async def nightly_to_s3(
    sftp: SftpEndpoint,
    paths: Sequence[str],
    dest: S3Location,
    s3: S3Endpoint,
    options: TransferOptions,
    run: RunOptions,
    *,
    base_path: str | None = None,
    journal: Journal | None = None,
    fail_on_missing: bool = True,
    push_gateway: str | None = None,
    metric_labels: Mapping[str, str] | None = None,
    observer: RunObserver | None = None,
) -> RunReport:
    """:func:`stream_to_s3` with the nightly run: filters, readiness gate, a manifest and
    the verified move or delete of sources (``run``), as ``copy`` does them. ``observer``
    is told each file's manifest row (lineage, asset events)."""
    if not paths:
        raise UsageError("No SFTP path to copy", "set sftp_path or sftp_paths")
    bus = EventBus()
    bus.subscribe(_log_event)
    sources = [PlanSource(sftp, path) for path in paths]
    async with (
        TransferQueue(s3, options, bus=bus, journal=journal) as queue,
        exporting(
            bus,
            queue.buffers,
            push_gateway_url=push_gateway,
            instance="airflow",
            labels=metric_labels,
            on_warning=lambda text: log.warning("metrics: %s", text),
            direction=Direction.SFTP_TO_S3,
        ),
    ):
        return await run_nightly(
            queue,
            sources,
            dest,
            run,
            rules=PlanRules(
                base_path=base_path,
                on_missing=None if fail_on_missing else _log_missing,
                exact_key_hint="end s3_key with / to copy into a prefix",
                unique_hint="copy them to different prefixes or set sftp_base_path",
            ),
            spool_dir=state_dir() / "manifests",
            on_outcome=_log_outcome,
            observer=observer,
        )


def _log_outcome(outcome: SourceOutcome) -> None:
    if outcome.ok:
        where = f" → {outcome.target}" if outcome.target else ""
        note = f" ({outcome.note})" if outcome.note else ""
        log.info("%s %s%s%s", outcome.action, outcome.path, where, note)
    else:
        log.warning("kept %s: %s", outcome.path, outcome.reason)


def _log_missing(source: PlanSource, exc: SourceNotFound) -> None:
    log.warning("skipping %s: %s", source.path, exc)


def destination(s3_bucket: str | None, s3_key: str) -> S3Location:
    """``s3_bucket`` + ``s3_key`` (a key, or a prefix ending in ``/``), or an ``s3://`` key."""
    if s3_key.startswith("s3://"):
        if s3_bucket:
            raise UsageError(
                f"s3_key {s3_key!r} is a full s3:// address and s3_bucket is set too",
                "give the bucket in one place only",
            )
        return parse_s3_url(s3_key)
    if not s3_bucket:
        raise UsageError("No S3 bucket", "set s3_bucket, or give s3_key as s3://bucket/key")
    return parse_s3_url(f"s3://{s3_bucket}/{s3_key.lstrip('/')}")


def _bytes(value: int | str | None, name: str) -> int | None:
    if value is None:
        return None
    size = parse_size(value) if isinstance(value, str) else int(value)
    if size <= 0:
        raise UsageError(f"{name} must be positive, not {value!r}", "")
    return size


def transfer_options(
    *,
    conflict: ConflictPolicy,
    part_size: int | str | None = None,
    memory_budget: int | str | None = None,
    parts_in_flight: int | None = None,
    files_in_flight: int | None = None,
    checksum: str | None = None,
    resume_in_s3: bool = False,
) -> TransferOptions:
    """Engine options from operator arguments (sizes as bytes or text like ``16MiB``),
    checked by the same rule as every front's."""
    flags = TransferFlags(
        part_size=_bytes(part_size, "part_size"),
        memory_budget=_bytes(memory_budget, "memory_budget"),
        parts_in_flight=None if parts_in_flight is None else int(parts_in_flight),
        files_in_flight=None if files_in_flight is None else int(files_in_flight),
        conflict=ConflictPolicy(conflict).value,
        checksum=checksum,
        resume_in_s3=resume_in_s3,
    )
    return request_options(flags, names={})


def task_message(exc: TransferError) -> str:
    """The engine's message for a task log, with hints in Airflow's terms (not CLI flags)."""
    hint = exc.hint
    if isinstance(exc, HostKeyError) and not exc.changed:
        hint = (
            "verify the fingerprint, then put the key in the connection's host_key extra or in "
            "its known_hosts file, or set no_host_key_check: true to trust it on first use"
        )
    elif isinstance(exc, SftpAuthError) and "private key" not in exc.message:
        hint = "check the connection's login, password, key_file or private_key"
    return f"{exc.title}: {exc.message} — {hint}" if hint else f"{exc.title}: {exc.message}"


def summarize(
    results: Sequence[TransferResult], seconds: float, report: RunReport | None = None
) -> dict[str, Any]:
    """The task's XCom: counts, bytes and one entry (key, bytes, sha256, status) per file;
    with a nightly ``report`` also the waiting files and what happened to sources."""
    copied = [r for r in results if r.status is TransferState.DONE]
    summary = _summary(results, copied, seconds)
    if report is not None:
        summary["waiting"] = [
            {"source": job.source, "key": job.key, "reason": why} for job, why in report.waiting
        ]
        summary["excluded"] = len(report.excluded)
        summary["source_actions"] = [o.as_json() for o in report.outcomes]
    return summary


def _summary(
    results: Sequence[TransferResult], copied: Sequence[TransferResult], seconds: float
) -> dict[str, Any]:
    return {
        "files": len(results),
        "copied": len(copied),
        "skipped": sum(r.status is TransferState.SKIPPED for r in results),
        "failed": sum(r.status not in SUCCEEDED for r in results),
        "bytes": sum(r.bytes for r in copied),
        "seconds": round(seconds, 3),
        "objects": [r.as_json() for r in results],
    }


def failure_message(results: Sequence[TransferResult]) -> str | None:
    """One message naming every file that did not land, or ``None`` when all did."""
    failed = [r for r in results if r.status not in SUCCEEDED]
    if not failed:
        return None
    lines = [f"{r.source}: {r.message or r.status.value}" for r in failed]
    return f"{len(failed)} of {len(results)} file(s) failed: " + "; ".join(lines)


async def list_files(
    sftp: SftpEndpoint, path: str, pattern: str = "*", *, recursive: bool = True
) -> list[tuple[str, int]]:
    """``(path, size)`` of the files under a folder (or matching a glob) whose names match."""
    async with SftpPool() as pool:
        if recursive:
            jobs = await expand(pool, sftp, path, S3Location(bucket="listing", key=""))
            found = [(job.path, job.size) for job in jobs]
        else:
            entries = await pool.listdir(sftp, path)
            found = [(e.path, e.size) for e in entries if not e.is_dir]
    return sorted((p, s) for p, s in found if fnmatch.fnmatch(posixpath.basename(p), pattern))


def batches(
    files: Sequence[tuple[str, int]],
    batch_size: int | None = None,
    batch_bytes: int | None = None,
) -> list[list[str]]:
    """Split ``(path, size)`` pairs into batches of at most ``batch_size`` files and roughly
    ``batch_bytes`` bytes (a file larger than that gets a batch of its own)."""
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, not {batch_size}", "")
    out: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for path, size in files:
        full = batch_size is not None and len(current) >= batch_size
        heavy = batch_bytes is not None and current and current_bytes + size > batch_bytes
        if full or heavy:
            out.append(current)
            current, current_bytes = [], 0
        current.append(path)
        current_bytes += size
    if current:
        out.append(current)
    return out
