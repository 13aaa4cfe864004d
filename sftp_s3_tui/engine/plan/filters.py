"""Which listed files a copy takes: include/exclude globs (rclone's rules), size and age.

Patterns match the path relative to the source folder the user named (``/in`` for
``sftp://h/in/`` and ``sftp://h/in/*.csv``), with rclone's semantics:

* rules are tried in the order given and the first that matches decides; when any include
  rule is given, a file no rule matches is excluded, else it is included;
* ``*`` stays within one path segment, ``**`` crosses them, ``{a,b}`` and ``[…]`` as usual;
* a pattern starting with ``/`` is anchored at the source folder, any other matches the end
  of the path on whole segments (``*.csv`` matches ``a.csv`` and ``x/y/a.csv``);
* a pattern ending with ``/`` matches everything below such a folder.
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from wcmatch import glob

from ..errors import UsageError
from .sources import FileJob

_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``24h``, ``7d``, ``2w`` (a bare number is seconds) → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"Not a duration: {text!r}", "write it like 30s, 5m, 24h or 7d")
    number, unit = match.groups()
    return float(number) * _SECONDS[(unit or "s").lower()]


def parse_when(text: str, *, now: float | None = None) -> float:
    """A point in time as epoch seconds: an age (``24h`` = a day ago) or an ISO date/time
    (``2026-11-30``, ``2026-11-30T06:00``; UTC unless an offset is given)."""
    now = time.time() if now is None else now
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(
            f"Not a time or age: {text!r}", "write an age like 24h or a date like 2026-11-30"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _compile(pattern: str) -> str:
    """One rclone pattern as a wcmatch GLOBSTAR pattern over the relative path."""
    if not pattern or pattern in ("/",):
        raise UsageError(f"Empty filter pattern {pattern!r}", "give a glob such as *.csv")
    if pattern.endswith("/"):
        pattern += "**"
    if pattern.startswith("/"):
        return pattern.lstrip("/")
    return "**/" + pattern


@dataclass(frozen=True)
class FileFilter:
    """The user's filters; ``rules`` are ``(include, pattern)`` pairs in command-line order.

    Times are epoch seconds: a file passes ``newer_than`` when its mtime is at or after it,
    ``older_than`` when at or before it. Sizes are inclusive bounds in bytes.
    """

    rules: tuple[tuple[bool, str], ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    newer_than: float | None = None
    older_than: float | None = None

    def __post_init__(self) -> None:
        for _, pattern in self.rules:
            _compile(pattern)  # a bad pattern fails when the filter is made, with one line
        low, high = self.min_size, self.max_size
        if low is not None and high is not None and low > high:
            raise UsageError(
                f"--min-size {low} is larger than --max-size {high}", "no file could pass"
            )

    @classmethod
    def build(
        cls,
        *,
        rules: Iterable[tuple[bool, str]] = (),
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        min_size: int | None = None,
        max_size: int | None = None,
        newer_than: str | None = None,
        older_than: str | None = None,
        now: float | None = None,
    ) -> FileFilter:
        """From the fronts' values: ordered ``rules``, or ``exclude`` rules then ``include``
        (rclone's advice when the order is unknown: excludes first)."""
        ordered = list(rules) or [(False, p) for p in exclude] + [(True, p) for p in include]
        return cls(
            rules=tuple(ordered),
            min_size=min_size,
            max_size=max_size,
            newer_than=parse_when(newer_than, now=now) if newer_than else None,
            older_than=parse_when(older_than, now=now) if older_than else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.rules) or any(
            v is not None for v in (self.min_size, self.max_size, self.newer_than, self.older_than)
        )

    def why_excluded(self, job: FileJob, root: str) -> str | None:
        """Why ``job`` is left out (``None``: it passes)."""
        relative = relative_path(job.path, root)
        if self.rules:
            verdict: bool | None = None
            for include, pattern in self.rules:
                if glob.globmatch(relative, _compile(pattern), flags=_FLAGS):
                    verdict = include
                    if not include:
                        return f"excluded by --exclude {pattern}"
                    break
            if verdict is None and any(include for include, _ in self.rules):
                return "matches no --include"
        if self.min_size is not None and job.size < self.min_size:
            return f"smaller than --min-size ({job.size} < {self.min_size} bytes)"
        if self.max_size is not None and job.size > self.max_size:
            return f"larger than --max-size ({job.size} > {self.max_size} bytes)"
        if self.newer_than is not None and job.mtime < self.newer_than:
            return f"modified {_iso(job.mtime)}, before --newer-than {_iso(self.newer_than)}"
        if self.older_than is not None and job.mtime > self.older_than:
            return f"modified {_iso(job.mtime)}, after --older-than {_iso(self.older_than)}"
        return None


def source_root(path: str) -> str:
    """The folder a source's relative paths start from: a glob's folder, else the path."""
    base = posixpath.basename(path.rstrip("/"))
    if any(ch in base for ch in "*?["):
        return posixpath.dirname(path.rstrip("/")) or "/"
    return path.rstrip("/") or "/"


def relative_path(path: str, root: str) -> str:
    """``path`` relative to ``root``; the file name when it is the root itself (one file)."""
    root = root.rstrip("/") or "/"
    if path != root and (root == "/" or path.startswith(root + "/")):
        return path[len(root) :].lstrip("/")
    return posixpath.basename(path)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def filter_jobs(
    jobs: AsyncIterable[FileJob] | Iterable[FileJob],
    file_filter: FileFilter,
    root: str,
    *,
    on_excluded: Callable[[FileJob, str], None] | None = None,
) -> AsyncIterator[FileJob]:
    """Yield the jobs that pass ``file_filter``, as they stream out of a listing."""
    if isinstance(jobs, AsyncIterable):
        async for job in jobs:
            reason = file_filter.why_excluded(job, root)
            if reason is None:
                yield job
            elif on_excluded is not None:
                on_excluded(job, reason)
    else:
        for job in jobs:
            reason = file_filter.why_excluded(job, root)
            if reason is None:
                yield job
            elif on_excluded is not None:
                on_excluded(job, reason)
