"""What the headless commands show: the live progress block, a line per file, notices,
warnings and the summary (the one line of an error that stopped a command is
:func:`.main.report`'s: it loads nothing of this).

Everything goes to stderr but ``--json`` records (stdout); with ``--log-format json`` the
lines are JSON objects too (:func:`log_as_json`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.events import (
    EngineEvent,
    EventBus,
    FilePlanned,
    ManifestKept,
    PartChanged,
    PartState,
    StoreChecked,
    TransferChecking,
    TransferFinished,
    TransferNotice,
    TransferQueued,
    TransferResult,
    TransferStarted,
    TransferState,
)
from ..engine.nightly.run import RunReport
from ..engine.nightly.source_actions import SourceOutcome
from ..engine.plan.preview import CopyPlan
from ..engine.plan.sources import FileJob
from ..engine.sftp.server_profile import ServerProfile
from ..engine.units import format_duration, format_size, format_speed
from ..exit_codes import EXIT_FAILED, EXIT_OK
from ..observe.session import Observers
from ..requests import CopyRequest
from ..tally import FileCounts

if TYPE_CHECKING:  # rich is imported only when a live block is shown (~0.1 s of start-up)
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live

_MARKS = {"done": "✓", "skipped": "→", "failed": "✗", "cancelled": "✗"}


def status_text(result: TransferResult) -> str:
    """``cancelled (unfinished upload aborted)``: the status, then the message without the
    status word it may start with (not "cancelled (cancelled; …)")."""
    status = result.status.value
    message = result.message or ""
    if message.startswith(status):
        rest = message[len(status) :]
        if not rest.strip(" ;:"):
            return status
        if not rest.startswith((";", ":")):
            return f"{status}{rest}"  # "cancelled before it started"
        message = rest.lstrip(" ;:")
    return f"{status} ({message})" if message else status


class JsonLines:
    """``--json`` records of a copy, one line per file, flushed at most every
    :attr:`FLUSH_SECONDS` (and before any other output: everything goes through stdout's
    one buffer, in order). A flush per file was a write(2) per file on the event loop, and
    a reader slow to drain the pipe held the whole copy at every line."""

    FLUSH_SECONDS = 0.1

    def __init__(self) -> None:
        self._pending: asyncio.TimerHandle | None = None

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        sys.stdout.flush()


class ConsoleProgress:
    """The live progress block on stderr, driven by engine events, and its one clock.

    Like rclone ``-P``: one unit family (MiB, MiB/s), every line cut to the terminal's width
    (80 columns fit), and the files in flight listed under the totals, each with its own
    share; beyond rclone, the files done / total, errors and retries on the totals line. A
    line per finished file is printed above it. The rate is the bytes sent over the time
    since :meth:`__enter__`, the same clock the summary reads (:attr:`elapsed`), so the last
    rate shown and the summary's agree.
    """

    #: Files in flight listed by name at most; the rest are counted ("and N more").
    SHOWN_IN_FLIGHT = 4
    BAR_WIDTH = 20

    def __init__(
        self,
        bus: EventBus,
        *,
        enabled: bool,
        console: Console | None = None,
        file_lines: bool = True,
    ) -> None:
        self.enabled = enabled
        #: A line per finished file (False: the front prints its own, e.g. a delivery's).
        self.file_lines = file_lines
        self.console: Console | None = None
        self.live: Live | None = None
        if enabled:  # rich only for a live block: --json and pipes start without it
            from rich.console import Console
            from rich.live import Live

            self.console = console or Console(stderr=True)
            self.live = Live(
                _Rendered(self),
                console=self.console,
                auto_refresh=True,
                refresh_per_second=4,
                transient=True,  # the summary line says where it ended
            )  # stdout and stderr written meanwhile go above the block (rich redirects them)
        self.started: float | None = None
        self.stopped: float | None = None
        self._names: dict[int, str] = {}
        #: Bytes each unfinished file added to the total (its queued size, or its size once
        #: started when the queue did not know it: an exact key's delivery).
        self._counted: dict[int, int] = {}
        #: Files whose parts are moving: name, size and bytes sent so far, by transfer id.
        self.in_flight: dict[int, _FileProgress] = {}
        self.files = self.done = self.errors = self.retries = 0
        self.total_bytes = self.sent_bytes = 0
        if enabled:
            bus.subscribe(self._on_event)

    def __enter__(self) -> ConsoleProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the clock and show the block (once; a run starts it as its copy starts)."""
        if self.started is not None:
            return
        self.started = time.monotonic()
        if self.live is not None:
            self.live.__enter__()

    def stop(self) -> None:
        """Stop the clock and take the block away (a display never started stays so)."""
        if self.started is None or self.stopped is not None:
            return
        self.stopped = time.monotonic()
        if self.live is not None:
            self.live.__exit__(None, None, None)

    @property
    def elapsed(self) -> float:
        """Seconds the display ran (so far): the clock of the rate and of the summary."""
        if self.started is None:
            return 0.0
        return (self.stopped or time.monotonic()) - self.started

    def print(self, text: str) -> None:
        """A line above the live block (or plain stderr when there is none)."""
        if self.console is not None:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def lines(self) -> list[str]:
        """The block as text: the totals, then the files in flight."""
        elapsed = self.elapsed
        total = max(self.total_bytes, self.sent_bytes)
        share = self.sent_bytes / total if total else 0.0
        filled = round(share * self.BAR_WIDTH)
        bar = "█" * filled + "░" * (self.BAR_WIDTH - filled)
        # The average since the start (the summary's figure); within the first second it
        # would be noise. An ETA only once a few seconds have told the rate.
        rate = self.sent_bytes / elapsed if elapsed >= 1 else 0.0
        left = total - self.sent_bytes
        speed = format_speed(rate) if elapsed >= 1 else "-/s"
        eta = f"ETA {format_duration(left / rate)}" if rate > 0 and elapsed >= 3 else "ETA -"
        head = (
            f"{share:4.0%} {bar} {format_size(self.sent_bytes)} / {format_size(total)}"
            f"  {speed}  {eta}"
        )
        counts = (
            f"files {self.done}/{self.files} · errors {self.errors} · retries {self.retries}"
            f" · {format_duration(elapsed)}"
        )
        lines = [head, counts]
        moving = list(self.in_flight.values())
        for item in moving[: self.SHOWN_IN_FLIGHT]:
            part = item.sent / item.size if item.size else 0.0
            line = f"  {part:4.0%} {format_size(item.size):>10}  {item.name}"
            lines.append(f"{line} · {item.checking}" if item.checking else line)
        if len(moving) > self.SHOWN_IN_FLIGHT:
            lines.append(f"  and {len(moving) - self.SHOWN_IN_FLIGHT} more in flight")
        return lines

    def _refresh(self) -> None:
        if self.live is not None and self.live.is_started:
            self.live.refresh()

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self._names[event.transfer_id] = event.key.rsplit("/", 1)[-1]
            self.files += 1
            self.total_bytes += event.size
            self._counted[event.transfer_id] = event.size
        elif isinstance(event, PartChanged):
            item = self.in_flight.get(event.transfer_id)
            if item is None:
                name = self._names.get(event.transfer_id, str(event.transfer_id))
                item = self.in_flight[event.transfer_id] = _FileProgress(name)
            if event.state is PartState.DONE:
                item.sent += event.size
                self.sent_bytes += event.size
            elif event.state is PartState.RETRIED:
                self.retries += 1
        elif isinstance(event, TransferStarted):
            item = self.in_flight.setdefault(
                event.transfer_id,
                _FileProgress(self._names.get(event.transfer_id, str(event.transfer_id))),
            )
            item.size = event.size
            item.checking = ""  # a check before the bytes (a resume's kept part) is over
            counted = self._counted.get(event.transfer_id, 0)
            if counted != event.size:
                self.total_bytes += event.size - counted
                self._counted[event.transfer_id] = event.size
        elif isinstance(event, TransferChecking):
            item = self.in_flight.get(event.transfer_id)
            if item is None:
                return
            item.checking = f"{event.check} {event.fraction:.0%}"
        elif isinstance(event, TransferFinished):
            self._finished(event)
        else:
            return
        self._refresh()

    def _finished(self, event: TransferFinished) -> None:
        result = event.result
        self.done += 1
        item = self.in_flight.pop(event.transfer_id, None)
        sent = item.sent if item is not None else 0
        counted = self._counted.pop(event.transfer_id, result.bytes)
        if result.status is TransferState.DONE:
            # Parts a resume found already uploaded count once the file is verified, so the
            # bar ends where the summary's bytes do.
            self.sent_bytes += max(0, result.bytes - sent)
        else:
            # A skipped or failed file leaves the total: the bar measures what is sent.
            self.total_bytes -= counted
            self.errors += result.status is not TransferState.SKIPPED
        name = self._names.pop(event.transfer_id, result.key)
        if self.file_lines:
            self.print(f"{_MARKS[result.status]} {name} {status_text(result)}")


@dataclass
class _FileProgress:
    """One file in flight on the progress block."""

    name: str
    size: int = 0
    sent: int = 0
    #: A check after the bytes are sent, and how far it is ("reading back 40%").
    checking: str = ""


class _Rendered:
    """The progress block as a rich renderable, every line cut to the console's width (a
    wrapped line would scroll the live block and leave copies of itself behind)."""

    def __init__(self, display: ConsoleProgress) -> None:
        self.display = display

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        width = options.max_width
        for line in self.display.lines():
            text = Text(line, no_wrap=True, overflow="ellipsis")
            text.truncate(width, overflow="ellipsis")
            yield text


class NoticePrinter:
    """Prints notices (a resume, a restart, a raised part size) on stderr: news to the user.

    A store's checksum check (done once per store and bucket) is a line of its own, said
    once: it is about the store, not about the file that happened to come first.
    """

    def __init__(self, display: ConsoleProgress) -> None:
        self.display = display
        self.keys: dict[int, str] = {}

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, TransferQueued):
            self.keys[event.transfer_id] = f"s3://{event.bucket}/{event.key}"
        elif isinstance(event, TransferFinished):
            self.keys.pop(event.transfer_id, None)  # held only while a file is under way
        elif isinstance(event, StoreChecked):
            self.display.print(f"sftp-s3-tui: store: {event.capabilities.summary()}")
        elif isinstance(event, TransferNotice):
            where = self.keys.get(event.transfer_id, f"transfer {event.transfer_id}")
            self.display.print(f"sftp-s3-tui: {where}: {event.message}")


def result_record(result: TransferResult, server: ServerProfile | None = None) -> dict[str, object]:
    """A file's ``--json`` record: ``bytes`` is what this run moved (0 for a skipped file),
    ``size`` the file's size, ``server`` the SFTP server's profile (read size, extensions)."""
    record = result.as_json()
    record["size"] = result.bytes
    if result.status is not TransferState.DONE:
        record["bytes"] = 0
    if server is not None:
        record["server"] = server.to_json()
    return record


def summary_record(results: list[TransferResult], seconds: float) -> dict[str, object]:
    """The final ``--json`` record: counts, bytes moved, time, and the exit code."""
    tally = RunTally()
    for result in results:
        tally.add(result)
    return tally.summary(seconds)


#: Failures named one per line at the end; beyond that they are counted ("and N more").
FAILED_LINES = 100


class RunTally(FileCounts):
    """A run's summary from running counts: nothing per file is kept but the first
    :data:`FAILED_LINES` failures (every one is a ``--json`` row as it happens)."""

    def __init__(self) -> None:
        super().__init__()
        self.excluded = 0
        self.failures: list[TransferResult] = []
        #: Why files were skipped (the conflict policy's reasons: a handful of texts).
        self.skip_reasons: Counter[str] = Counter()
        #: The most transfer records the queue held at once (a check that they stay bounded).
        self.most_held = 0

    def add(self, result: TransferResult) -> None:
        self.count(result.status, result.bytes)
        if result.status is TransferState.SKIPPED:
            self.skip_reasons[result.message or "skipped"] += 1
        elif result.status is not TransferState.DONE and len(self.failures) < FAILED_LINES:
            self.failures.append(result)


#: The running command's observers while ``--log-format json`` is on: warnings and notices
#: then go out as JSON objects.
_json_observers: Observers | None = None


def warn(text: str) -> None:
    """``sftp-s3-tui: warning: …`` on stderr (a JSON object under ``--log-format json``)."""
    if _json_observers is not None and _json_observers.json_log is not None:
        _json_observers.json_log.log("warning", "warning", message=text)
        return
    print(f"sftp-s3-tui: warning: {text}", file=sys.stderr)


def say(text: str) -> None:
    """``sftp-s3-tui: …`` on stderr: news for the user (JSON under ``--log-format json``)."""
    if _json_observers is not None and _json_observers.json_log is not None:
        _json_observers.json_log.log("notice", message=text)
        return
    print(f"sftp-s3-tui: {text}", file=sys.stderr, flush=True)


def log_as_json(observers: Observers) -> None:
    """Route :func:`warn` and :func:`say` through ``observers``' JSON log when it has one
    (``--log-format json``): then every line on stderr is a JSON object."""
    global _json_observers
    _json_observers = observers if observers.json_log is not None else None


def say_kept_rows(event: EngineEvent) -> None:
    """A bus subscriber: where a manifest's rows went when its upload failed."""
    if isinstance(event, ManifestKept):
        say(
            f"the manifest's rows were kept in {event.path} (the next run with --manifest "
            f"{event.target} merges them): {event.error}"
        )


def plan_row_printer(as_json: bool) -> Callable[[EngineEvent], None]:
    """A bus subscriber: prints each file of a ``--dry-run`` plan as soon as it is decided."""

    def show(event: EngineEvent) -> None:
        if not isinstance(event, FilePlanned):
            return
        planned = event.planned
        if as_json:
            print(json.dumps(planned.as_json(), ensure_ascii=False), flush=True)
        else:
            print(CopyPlan(files=[planned]).table()[0], flush=True)

    return show


def print_plan_totals(plan: CopyPlan, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"plan": True, **plan.totals()}), flush=True)
    else:
        print(plan.summary(), file=sys.stderr)


def outcome_printer(request: CopyRequest) -> Callable[[SourceOutcome], None]:
    def show(outcome: SourceOutcome) -> None:
        if request.json:
            print(json.dumps(outcome.as_json(), ensure_ascii=False), flush=True)
        elif not outcome.ok:
            say(f"{outcome.path}: kept: {outcome.reason}")
        elif not request.quiet:
            where = f" → {outcome.target}" if outcome.target else ""
            note = f" ({outcome.note})" if outcome.note else ""
            say(f"{outcome.path}: {outcome.action}{where}{note}")

    return show


def _waiting_record(job: FileJob, reason: str) -> dict[str, object]:
    return {
        "source": job.source,
        "bucket": job.bucket,
        "key": job.key,
        "bytes": 0,
        "size": job.size,
        "status": "waiting",
        "message": reason,
    }


def print_report(request: CopyRequest, tally: RunTally, report: RunReport, seconds: float) -> int:
    if request.json:
        for job, reason in report.waiting:
            print(json.dumps(_waiting_record(job, reason), ensure_ascii=False), flush=True)
        summary = tally.summary(seconds)
        if report.waiting or tally.excluded:
            summary.update(waiting=len(report.waiting), excluded=tally.excluded)
        print(json.dumps(summary), flush=True)
    if _json_observers is not None:  # each failure and the summary are JSON objects already
        for job, reason in report.waiting:
            say(f"{job.source}: waiting: {reason}")
        return EXIT_FAILED if tally.failed else EXIT_OK
    for result in tally.failures:
        print(f"sftp-s3-tui: {result.source}: {result.message}", file=sys.stderr)
    for line in report.unrecorded:  # waiting files whose row could not be written
        say(line)
    if tally.failed > len(tally.failures):
        more = tally.failed - len(tally.failures)
        print(
            f"sftp-s3-tui: and {more} more failed"
            + (" (each is a --json row)" if request.json else " (--json lists every file)"),
            file=sys.stderr,
        )
    if not request.json and not request.quiet:
        for job, reason in report.waiting:
            say(f"{job.source}: waiting: {reason}")
        for line in summary_lines(tally, seconds, waiting=len(report.waiting)):
            print(line, file=sys.stderr)
    return EXIT_FAILED if tally.failed or report.unrecorded else EXIT_OK


def summary_lines(tally: RunTally, seconds: float, *, waiting: int = 0) -> list[str]:
    """The end of a CLI copy for people: what moved, at what rate, and what was skipped and
    why (a rerun that sent nothing says so, not "0.0 MiB in 0.2s")."""
    extra = f", {waiting} waiting" if waiting else ""
    extra += f", {tally.excluded} excluded" if tally.excluded else ""
    skipped = ""
    if tally.skip_reasons:
        reasons = "; ".join(
            f"{count} {reason}" if len(tally.skip_reasons) > 1 else reason
            for reason, count in tally.skip_reasons.most_common(3)
        )
        more = len(tally.skip_reasons) - 3
        skipped = f" (already there: {reasons}{f'; {more} other reasons' if more > 0 else ''})"
    if tally.copied == 0 and tally.failed == 0:
        if tally.skipped:
            return [f"nothing to send: {tally.skipped} skipped{skipped}{extra}"]
        return [f"nothing to send: no file{extra}"]
    rate = tally.bytes / seconds if seconds > 0 else 0.0
    return [
        f"{tally.copied} copied, {tally.skipped} skipped, {tally.failed} failed{extra}; "
        f"{format_size(tally.bytes)} in {format_duration(seconds)} ({format_speed(rate)})",
        *([f"{tally.skipped} skipped{skipped}"] if tally.skipped else []),
    ]
