"""The observers of one command (``copy`` or ``watch``): a run id per copy or watch poll,
shared by the manifest rows, OpenLineage events, hook calls, JSON log lines and the
``sftp_s3_run_info`` metric; drop expectations checked after each poll.

The fronts create one :class:`Observers` per command; it is a no-op where nothing is
configured (and imports no OpenLineage then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .dispatch import Dispatcher
from .expectations import DropStatus, DropTracker
from .hooks import Hooks
from .json_log import JsonLog
from .lineage import Lineage, lineage_configured
from .options import ObserveOptions
from .runid import new_run_id

#: Files a run's lineage events list at most (a run of millions of files still sends one
#: bounded COMPLETE event; the manifest has every row).
LINEAGE_FILES = 10_000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ObservedRun:
    """One copy or watch poll: its run id and the rows of the files it moved."""

    run_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped_rows: int = 0
    keep_rows: bool = False

    def row(self, row: dict[str, Any]) -> None:
        """A manifest row of this run (the engine's :class:`RunObserver` call)."""
        if not self.keep_rows:
            return
        if len(self.rows) < LINEAGE_FILES:
            self.rows.append(row)
        else:
            self.dropped_rows += 1


class Observers:
    """Lineage, hooks, JSON log and drop trackers of one command."""

    def __init__(
        self,
        options: ObserveOptions,
        *,
        job_name: str,
        job_type: str = "COPY",
        gate: str | None = None,
        on_warning: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
        clock: Clock = utc_now,
        lineage: bool = True,
    ) -> None:
        self.options = options
        self.clock = clock
        self.dispatcher = Dispatcher()
        self.lineage = (
            Lineage(
                job_name,
                self.dispatcher,
                job_type=job_type,
                gate=gate,
                on_warning=on_warning,
                env=env,
            )
            if lineage and lineage_configured(env)
            else None
        )
        self.hooks = (
            Hooks(options.hook_url, options.notify_on, self.dispatcher, on_warning=on_warning)
            if options.hook_url
            else None
        )
        self.json_log = JsonLog() if options.json_logs else None
        self.drops = [DropTracker(e) for e in options.expectations]
        self.current: ObservedRun | None = None

    def begin(
        self, summary: Mapping[str, Any] | None = None, *, keep_rows: bool = False
    ) -> ObservedRun:
        """A new run (a copy, or one watch poll): START events and the ``/start`` hook.
        Its rows are kept for lineage (or when ``keep_rows``: the Airflow operator's)."""
        run = ObservedRun(new_run_id(), keep_rows=keep_rows or self.lineage is not None)
        self.current = run
        if self.json_log is not None:
            self.json_log.run_id = run.run_id
            self.json_log.log("run.start", **dict(summary or {}))
        if self.lineage is not None:
            self.lineage.start(run.run_id)
        if self.hooks is not None:
            self.hooks.start(run.run_id, summary or {})
        return run

    def end(
        self,
        run: ObservedRun,
        summary: Mapping[str, Any],
        *,
        ok: bool,
        error: str | None = None,
    ) -> None:
        """COMPLETE or FAIL, the success or ``/fail`` hook, a ``run.end`` log line."""
        body = {**summary, **({"error": error} if error else {})}
        if self.json_log is not None:
            self.json_log.log(
                "run.end", "info" if ok else "error", **{"error": error, **dict(summary)}
            )
        if self.lineage is not None:
            if ok:
                self.lineage.complete(run.run_id, run.rows)
            else:
                self.lineage.fail(run.run_id, run.rows, error or "some files failed")
        if self.hooks is not None:
            self.hooks.finished(run.run_id, body, ok=ok)

    # -- drops ------------------------------------------------------------------------------

    def start_drops(self) -> None:
        now = self.clock()
        for tracker in self.drops:
            tracker.start(now)

    def file_landed(self, path: str) -> None:
        now = self.clock()
        for tracker in self.drops:
            tracker.arrived(path, now)

    def check_drops(self, on_late: Callable[[DropStatus], None] | None = None) -> list[DropStatus]:
        """After a poll: fire the hooks once for each deadline that passed unmet; returns
        every drop's status (for the gauges and the screen)."""
        now = self.clock()
        run_id = self.current.run_id if self.current else new_run_id()
        for tracker in self.drops:
            for late in tracker.check(now):
                if self.json_log is not None:
                    self.json_log.log("drop.late", "warning", **late.as_json())
                if self.hooks is not None:
                    self.hooks.late(run_id, late.as_json())
                if on_late is not None:
                    on_late(late)
        return [tracker.status(now) for tracker in self.drops]

    async def close(self) -> None:
        """Send what is still queued (bounded wait)."""
        await self.dispatcher.close()
