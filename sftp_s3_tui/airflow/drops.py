"""A drop expectation checked by one Airflow task run (no Airflow import: tested without it).

A ``watch`` counts arrivals poll after poll; a task run is one pass, so its meaning is:
the run is the pickup of the drop due at the **last deadline at or before the run's end**
(schedule the task after the deadline: at 06:05 for "3 invoice_*.csv by 06:00"). The files
of the run whose names match — copied now, or skipped because they already landed — are that
drop's arrivals (for a delivery, the objects delivered or already there, by their key's
base name); fewer than expected is a late drop: the ``late`` hook fires once for the run
(and a ``drop.late`` JSON log line), and the task fails or only warns, as the operator says.
The counting is :class:`~sftp_s3_tui.observe.expectations.DropTracker`'s, the hook call the
observers' (:meth:`~sftp_s3_tui.observe.session.Observers.check_drops`), as in ``watch``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from ..engine.errors import UsageError
from ..observe.expectations import DropStatus, Expectation
from ..observe.session import Observers

#: Arrivals are placed this long before the deadline: inside its drop, and early enough
#: that the tracker's "a file after an unmet deadline" rule (a 1 s margin) never applies.
_BEFORE_DEADLINE = timedelta(seconds=2)


def parse_expect(value: str | Sequence[str] | None) -> tuple[Expectation, ...]:
    """The operator's ``expect``: one line or several, each ``[COUNT] GLOB by WHEN [ZONE]``
    (``3 invoice_*.csv by weekdays 06:00 Europe/Berlin``); checked, one line for a bad one."""
    if not value:
        return ()
    lines = [value] if isinstance(value, str) else list(value)
    expectations = []
    for line in lines:
        if not isinstance(line, str) or not line.strip():
            raise UsageError(f"expect {line!r} is not a drop", "e.g. '3 invoice_*.csv by 06:00'")
        expectations.append(Expectation.parse(line))
    return tuple(expectations)


def check_run_drops(
    observers: Observers, landed: Iterable[str]
) -> tuple[list[DropStatus], list[DropStatus]]:
    """(every drop's status, the late ones) for a run ending now (the observers' clock)
    whose files at ``landed`` (SFTP paths) are at their destination. Late drops fire the
    hooks through ``observers`` (once: the trackers are this run's)."""
    paths = list(landed)
    now = observers.clock()
    for tracker in observers.drops:
        before = tracker.expectation.previous_deadline(now) - _BEFORE_DEADLINE
        tracker.start(before)
        for path in paths:
            tracker.arrived(path, before)
    late: list[DropStatus] = []
    statuses = observers.check_drops(late.append)
    return statuses, late


def late_message(late: Sequence[DropStatus]) -> str:
    """One line naming each late drop: ``drop late: invoice_*.csv: 1/3 by Mon 06:00 CET
    (2 missing)``."""
    return "drop late: " + "; ".join(status.line() for status in late)


class TaskLog(Protocol):
    """An operator's ``self.log`` (a logging.Logger in Airflow 2, structlog's in 3)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...


def judge_drops(
    observers: Observers,
    landed: Iterable[str],
    summary: dict[str, Any],
    message: str | None,
    *,
    fail: bool,
    log: TaskLog,
) -> str | None:
    """An operator's ``expect`` drops for a run whose files at ``landed`` arrived: their
    statuses in ``summary["drops"]``, the late hook once per late drop, and the task's
    failure ``message`` with the late line added when ``fail`` (else logged as a warning)."""
    statuses, late = check_run_drops(observers, landed)
    summary["drops"] = [status.as_json() for status in statuses]
    for status in statuses:
        log.info("drop %s", status.line())
    if not late:
        return message
    text = late_message(late)
    if not fail:
        log.warning("%s", text)
        return message
    return f"{message}; {text}" if message else text
