"""Watches started from the TUI: the engine's ``watch`` on the session's queue, one task each.

Textual-free. Each watch polls one SFTP folder into one S3 prefix with the filters and the
readiness gate the user chose; the files it ships are transfers on the session's queue (the
TUI lists them like any other), and its state file is the one ``sftp-s3-tui watch`` keeps for
the same source and destination, so neither ships again what the other shipped. Stopping a
watch cancels only its own poll's transfers (their uploads are aborted) and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ..engine.addresses import S3Location
from ..engine.config import SftpEndpoint
from ..engine.events import TransferState
from ..engine.nightly.options import RunOptions
from ..engine.nightly.run import RunObserver
from ..engine.nightly.watch import PollReport, Watcher, WatchHooks, WatchSource, WatchState
from ..engine.plan.sources import FileJob
from ..engine.transfer.queue import TransferQueue
from ..observe.expectations import DropStatus, Expectation
from ..observe.options import ObserveOptions
from ..observe.session import Clock, ObservedRun, Observers, utc_now

log = logging.getLogger(__name__)

#: Makes a watch's observers: (job name, job type, its drop expectations) → lineage and
#: hooks as the session configures them (:meth:`Session.observers`).
ObserversFactory = Callable[[str, str, tuple[Expectation, ...]], Observers]


def quiet_observers(
    job_name: str, job_type: str, expectations: tuple[Expectation, ...]
) -> Observers:
    """Drop trackers only: no lineage, no hooks (a watch outside a session's settings)."""
    return Observers(
        ObserveOptions(expectations=expectations),
        job_name=job_name,
        job_type=job_type,
        lineage=False,
    )


class WatchPhase(StrEnum):
    STARTING = "starting"
    POLLING = "polling"
    IDLE = "idle"  # between polls
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class WatchSpec:
    """What to watch: a folder, where its files go, how often, which files and when."""

    folder: str
    dest: S3Location
    every_seconds: float
    run: RunOptions = field(default_factory=RunOptions)
    expectations: tuple[Expectation, ...] = ()  # drops due by a deadline


@dataclass
class WatchStatus:
    """Where a watch stands (times are epoch seconds; ``None``: not yet)."""

    id: int
    source: str
    dest: str
    every_seconds: float
    phase: WatchPhase = WatchPhase.STARTING
    polls: int = 0
    last_poll: float | None = None
    next_poll: float | None = None
    listed: int = 0
    shipped: int = 0  # files copied by this watch since it started
    #: Files found already at the destination (same size and source time, or skipped by the
    #: conflict policy) since it started: not sent, and not counted as shipped.
    already_there: int = 0
    waiting: int = 0  # not ready at the last poll
    failed: int = 0  # failed at the last poll (tried again at the next)
    message: str = ""  # the last poll's listing errors, or why the watch ended
    drops: list[DropStatus] = field(default_factory=list)  # each expectation's drop


class RunningWatch:
    """One watch task on ``queue``; :meth:`stop` ends it cleanly."""

    def __init__(
        self,
        watch_id: int,
        queue: TransferQueue,
        endpoint: SftpEndpoint,
        spec: WatchSpec,
        state_folder: Path,
        clock: Clock = utc_now,
        observers: ObserversFactory = quiet_observers,
    ) -> None:
        self.spec = spec
        self.clock = clock
        #: Each poll is one run (lineage START then COMPLETE or FAIL, the hooks), as for
        #: ``sftp-s3-tui watch``; the drop trackers fire the ``late`` hook once per deadline.
        self.observers = observers(f"watch:{spec.dest}", "WATCH_POLL", spec.expectations)
        self.observers.clock = clock
        self.observers.start_drops()
        self.drops = self.observers.drops
        self._poll_run: ObservedRun | None = None  # the poll under way's run
        self._poll_started = time.monotonic()
        self.queue = queue
        self.endpoint = endpoint
        source = f"{endpoint.display}{spec.folder}"
        self._state_folder = state_folder
        self.status = WatchStatus(watch_id, source, str(spec.dest), spec.every_seconds)
        self.status.drops = [t.status(clock()) for t in self.drops]
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.create_task(
            self._run(), name=f"tui-watch-{watch_id}"
        )

    @property
    def id(self) -> int:
        return self.status.id

    @property
    def running(self) -> bool:
        return not self.task.done()

    async def _run(self) -> None:
        status = self.status
        status.phase = WatchPhase.POLLING
        run = self.spec.run
        state: WatchState | None = None
        try:
            # Locked for this watch: another one (a CLI watch, say) may hold it; then the
            # panel says who, as for a corrupt state.
            state = WatchState.for_watch(self._state_folder, [status.source], self.spec.dest)
            watcher = Watcher(
                self.queue,
                [WatchSource(self.endpoint, self.spec.folder)],
                self.spec.dest,
                run,
                state=state,
                every_seconds=self.spec.every_seconds,
                hooks=WatchHooks(
                    on_file=self._landed,
                    on_poll=self._polled,
                    observe_poll=self._begin_poll,
                ),
                forget_finished=False,  # the TUI lists them (details, retry)
            )
            await watcher.run(self._stop)
        except asyncio.CancelledError:
            status.phase = WatchPhase.STOPPED
            raise
        except Exception as exc:  # the watch ends; the panel says why
            log.warning("watch of %s failed: %s", status.source, exc, exc_info=True)
            status.phase = WatchPhase.FAILED
            status.message = str(exc)
            status.next_poll = None
            if self._poll_run is not None:  # its poll's run ends too
                self.observers.end(self._poll_run, self._summary(), ok=False, error=str(exc))
                self._poll_run = None
            return
        finally:
            if state is not None:
                state.close()
            await self.observers.close()  # the last poll's events and hooks go out
        status.phase = WatchPhase.STOPPED
        status.next_poll = None

    def _summary(self, **more: object) -> dict[str, object]:
        """What a poll's hooks carry (no user, no secret)."""
        status = self.status
        return {"command": "watch", "source": status.source, "dest": status.dest, **more}

    def _begin_poll(self, number: int) -> RunObserver | None:
        """A poll starts: its run (START, ``/start``); the rows go to lineage if it is on."""
        self._poll_started = time.monotonic()
        run = self._poll_run = self.observers.begin(self._summary(poll=number))
        return run if self.observers.lineage is not None else None

    def _landed(self, job: FileJob, result: object) -> None:
        if getattr(result, "status", None) is TransferState.DONE:
            self.observers.file_landed(job.path)

    def _polled(self, poll: PollReport) -> None:
        status = self.status
        now = time.time()
        if self._poll_run is not None:
            failed = len(poll.run.failed)
            summary = self._summary(
                poll=poll.number,
                listed=poll.listed,
                copied=sum(r.status is TransferState.DONE for r in poll.run.results),
                failed=failed,
                waiting=len(poll.run.waiting),
                seconds=round(time.monotonic() - self._poll_started, 3),
                errors=poll.errors,
            )
            error = "; ".join(poll.errors) or (f"{failed} file(s) failed" if failed else None)
            self.observers.end(self._poll_run, summary, ok=error is None, error=error)
            self._poll_run = None

        def on_late(drop: DropStatus) -> None:
            log.warning("drop late: %s", drop.line())

        status.drops = self.observers.check_drops(on_late)
        status.polls = poll.number
        status.last_poll = now
        status.next_poll = None if self._stop.is_set() else now + self.spec.every_seconds
        status.listed = poll.listed
        results = poll.run.results
        status.shipped += sum(r.status is TransferState.DONE for r in results)
        skipped = sum(r.status is TransferState.SKIPPED for r in results)
        status.already_there += poll.already_there + skipped
        status.waiting = len(poll.run.waiting)
        status.failed = len(poll.run.failed)
        status.message = "; ".join(poll.errors)
        if not self._stop.is_set():
            status.phase = WatchPhase.IDLE

    def poll_started(self) -> None:
        """Note a poll under way (the engine says when one ends, not when it begins)."""
        status = self.status
        due = status.next_poll
        if status.phase is WatchPhase.IDLE and due is not None and time.time() >= due:
            status.phase = WatchPhase.POLLING

    async def stop(self) -> None:
        """Ask the watch to stop (its poll's transfers are cancelled) and wait until it has."""
        if self.running:
            self.status.phase = WatchPhase.STOPPING
            self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self.task)


class Watches:
    """The watches of one session, in the order they were started."""

    def __init__(
        self,
        queue: TransferQueue,
        state_folder: Path,
        clock: Clock = utc_now,
        observers: ObserversFactory = quiet_observers,
    ) -> None:
        self.queue = queue
        self.state_folder = state_folder
        self.clock = clock  # drop deadlines are judged by it (tests pass theirs)
        self.observers = observers  # each watch's lineage and hooks
        self._watches: dict[int, RunningWatch] = {}
        self._next_id = 1

    def start(self, endpoint: SftpEndpoint, spec: WatchSpec) -> RunningWatch:
        """Start watching (or the watch already running for the same folder and prefix)."""
        for running in self._watches.values():
            same = running.spec.folder == spec.folder and running.spec.dest == spec.dest
            if same and running.running:
                return running  # one watch per source and destination (one state file)
        started = RunningWatch(
            self._next_id,
            self.queue,
            endpoint,
            spec,
            self.state_folder,
            self.clock,
            self.observers,
        )
        self._watches[started.id] = started
        self._next_id += 1
        return started

    def get(self, watch_id: int) -> RunningWatch | None:
        return self._watches.get(watch_id)

    def statuses(self) -> list[WatchStatus]:
        for running in self._watches.values():
            running.poll_started()
        return [w.status for w in self._watches.values()]

    @property
    def active(self) -> list[RunningWatch]:
        return [w for w in self._watches.values() if w.running]

    async def stop(self, watch_id: int) -> None:
        running = self._watches.get(watch_id)
        if running is not None:
            await running.stop()

    async def stop_all(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._watches.values()))
