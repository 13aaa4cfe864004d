"""Expectations for a drop: "3 files matching ``invoice_*.csv`` on weekdays by 06:00
Europe/Berlin", and the tracker that says what arrived, what is late and what is missing.

Deadlines come from a cron calendar (``croniter``, a maintained library) in the drop's time
zone (``zoneinfo``), so daylight saving time moves them as the partner's clock does. The
tracker takes the time as an argument everywhere: a watch passes its clock, tests pass theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..engine.errors import UsageError

_EXPECT_LINE = re.compile(r"^(?:(\d+)\s+)?(\S+)\s+by\s+(.+)$")
_TIME_OF_DAY = re.compile(r"^(?:(daily|weekdays)\s+)?([01]?\d|2[0-3]):([0-5]\d)$")


def deadline_cron(text: str) -> str:
    """A deadline calendar: a 5-field cron expression, or ``06:00`` (daily) or
    ``weekdays 06:00``; checked by croniter."""
    from croniter import croniter

    spec = " ".join(text.split())
    match = _TIME_OF_DAY.match(spec.lower())
    if match:
        days = "1-5" if match.group(1) == "weekdays" else "*"
        spec = f"{int(match.group(3))} {int(match.group(2))} * * {days}"
    if len(spec.split()) != 5 or not croniter.is_valid(spec):
        raise UsageError(
            f"--expect-by {text!r} is not a deadline",
            "give HH:MM, 'weekdays HH:MM' or a cron expression like '0 6 * * 1-5'",
        )
    return spec


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--expect-tz {name!r} is not a time zone", "e.g. Europe/Berlin") from exc


@dataclass(frozen=True)
class Expectation:
    """``count`` files whose names match ``pattern``, due at each time of ``cron`` in ``tz``."""

    pattern: str
    count: int
    cron: str
    tz: str = "UTC"
    name: str = ""

    @property
    def label(self) -> str:
        """The drop's name in metrics, hooks and the watches screen."""
        return self.name or self.pattern

    def describe(self) -> str:
        return f"{self.count} × {self.pattern} by {self.cron} {self.tz}"

    @classmethod
    def build(
        cls, pattern: str, count: int | str | None, by: str, tz: str | None, name: str = ""
    ) -> Expectation:
        """Checked values (one line for a bad one)."""
        if not pattern or "/" in pattern:
            raise UsageError(f"--expect {pattern!r} is not a file name pattern", "e.g. 'inv_*.csv'")
        try:
            number = 1 if count in (None, "") else int(count)
        except ValueError:
            number = 0
        if number < 1:
            raise UsageError(f"--expect-count {count!r} is not a positive number", "e.g. 3")
        zone = tz or "UTC"
        time_zone(zone)
        return cls(pattern, number, deadline_cron(by), zone, name)

    @classmethod
    def parse(cls, text: str) -> Expectation:
        """One line as a user writes it (the TUI's field, a profile's or operator's list):
        ``[COUNT] GLOB by WHEN [ZONE]``, e.g. ``3 invoice_*.csv by weekdays 06:00
        Europe/Berlin`` or ``orders.csv by 0 6 * * 1-5``."""
        match = _EXPECT_LINE.match(" ".join(text.split()))
        if not match:
            raise UsageError(
                f"Expect {text!r} is not a drop",
                "write [COUNT] GLOB by WHEN [ZONE], e.g. 3 invoice_*.csv by weekdays 06:00 "
                "Europe/Berlin",
            )
        count, pattern, when = match.group(1), match.group(2), match.group(3)
        zone = None
        words = when.split()
        if len(words) > 1 and ("/" in words[-1] or words[-1] == "UTC"):
            zone, when = words[-1], " ".join(words[:-1])
        return cls.build(pattern, count, when, zone)

    def matches(self, path: str) -> bool:
        return fnmatchcase(path.rsplit("/", 1)[-1], self.pattern)

    def next_deadline(self, now: datetime) -> datetime:
        from croniter import croniter

        local = now.astimezone(ZoneInfo(self.tz))
        return croniter(self.cron, local).get_next(datetime)  # type: ignore[no-any-return]

    def previous_deadline(self, now: datetime) -> datetime:
        """The last deadline at or before ``now`` (croniter's get_prev is strictly before)."""
        from croniter import croniter

        local = now.astimezone(ZoneInfo(self.tz)) + timedelta(seconds=1)
        return croniter(self.cron, local).get_prev(datetime)  # type: ignore[no-any-return]


@dataclass
class _Drop:
    deadline: datetime
    arrived: int = 0
    late: int = 0  # of ``arrived``, how many came after the deadline
    alerted: bool = False


@dataclass(frozen=True)
class DropStatus:
    """What the watch shows for a drop: the deadline it tracks and its counts.

    ``late`` counts files that arrived after their deadline; ``missing`` the files still
    outstanding once the deadline has passed (0 before it)."""

    name: str
    deadline: datetime
    expected: int
    arrived: int
    late: int
    missing: int

    @property
    def overdue(self) -> bool:
        return self.missing > 0

    def line(self) -> str:
        when = self.deadline.strftime("%a %H:%M %Z")
        state = f"{self.missing} missing" if self.missing else "on time"
        if self.late:
            state += f", {self.late} late"
        return f"{self.name}: {self.arrived}/{self.expected} by {when} ({state})"

    def as_json(self) -> dict[str, object]:
        return {
            "drop": self.name,
            "deadline": self.deadline.isoformat(),
            "expected": self.expected,
            "arrived": self.arrived,
            "late": self.late,
            "missing": self.missing,
        }


@dataclass
class DropTracker:
    """Counts arrivals against an expectation's deadlines and reports each deadline that
    passes unmet exactly once (:meth:`check`)."""

    expectation: Expectation
    _drops: dict[datetime, _Drop] = field(default_factory=dict)

    def _drop(self, deadline: datetime) -> _Drop:
        drop = self._drops.get(deadline)
        if drop is None:
            drop = self._drops[deadline] = _Drop(deadline)
        return drop

    def start(self, now: datetime) -> None:
        """Track from ``now`` on: the first drop is the next deadline's."""
        self._drop(self.expectation.next_deadline(now))

    def arrived(self, path: str, at: datetime) -> bool:
        """Count a landed file (True when it matched). A file landing after an unmet
        deadline completes that drop first (late); otherwise it counts for the next one."""
        expectation = self.expectation
        if not expectation.matches(path):
            return False
        previous = self._drops.get(expectation.previous_deadline(at))
        if previous is not None and previous.arrived < expectation.count:
            previous.arrived += 1
            previous.late += 1
        else:
            self._drop(expectation.next_deadline(at)).arrived += 1
        return True

    def check(self, now: datetime) -> list[DropStatus]:
        """The drops whose deadline has passed unmet and that were not reported before."""
        expectation = self.expectation
        self._drop(expectation.next_deadline(now))
        due = []
        for drop in sorted(self._drops.values(), key=lambda d: d.deadline):
            if drop.deadline <= now and not drop.alerted and drop.arrived < expectation.count:
                drop.alerted = True
                due.append(self._status(drop, now))
        # Keep the last passed deadline (late files may still complete it) and the next.
        passed = [d for d in self._drops if d <= now]
        for old in sorted(passed)[:-1]:
            del self._drops[old]
        return due

    def status(self, now: datetime) -> DropStatus:
        """The drop to show: the last deadline's while it is incomplete or the next drop has
        no file yet (so a late drop's outcome stays visible), else the next deadline's."""
        expectation = self.expectation
        upcoming = self._drop(expectation.next_deadline(now))
        passed = [d for d in self._drops.values() if d.deadline <= now]
        if passed:
            last = max(passed, key=lambda d: d.deadline)
            if last.arrived < expectation.count or not upcoming.arrived:
                return self._status(last, now)
        return self._status(upcoming, now)

    def _status(self, drop: _Drop, now: datetime) -> DropStatus:
        count = self.expectation.count
        missing = max(0, count - drop.arrived) if drop.deadline <= now else 0
        return DropStatus(
            self.expectation.label, drop.deadline, count, drop.arrived, drop.late, missing
        )
