"""Which listed files a copy takes: include/exclude globs (rclone's rules), size and age.

Patterns match the path relative to the source folder the user named (``/in`` for
``sftp://h/in/`` and ``sftp://h/in/*.csv``), with rclone's semantics (its
``fs/filter/glob.go`` and ``rules.go``):

* rules are tried in order and the first that matches decides; when any ``--include`` is
  given, a file no rule matches is excluded, else it is included;
* ``*`` and ``?`` stay within one path segment, ``**`` crosses them, ``{a,b}`` and ``[…]`` as
  usual, ``\\`` escapes, ``{{regexp}}`` is a raw regular expression;
* a pattern starting with ``/`` is anchored at the source folder, any other matches the end
  of the path on whole segments (``*.csv`` matches ``a.csv`` and ``x/y/a.csv``; ``**/x.csv``
  needs at least one folder, so it does not match a top-level ``x.csv``);
* a pattern ending with ``/`` matches everything below such a folder;
* ``--filter '+ GLOB'`` / ``'- GLOB'`` (and ``--filter-from FILE``, one rule a line, ``#``
  and ``;`` comments, ``!`` clears the rules so far) come after ``--include`` / ``--exclude``.

One difference, on purpose: ``--include`` and ``--exclude`` apply in the order given (rclone
applies every ``--include`` before any ``--exclude`` and warns when both are given). An
``--exclude`` after every ``--include`` can never apply either way, so that is warned about.

The glob → regular expression translation is a port of rclone's ``globToRegexp`` rather than
wcmatch (used before): wcmatch's ``**/`` also matches no folder at all and it reads an
unclosed ``[`` as a literal, both unlike rclone, whose rules the README promises.
"""

from __future__ import annotations

import posixpath
import re
import time
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import UsageError
from .sources import FileJob

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# POSIX classes inside [...] (Go's regexp has them, Python's re does not).
_POSIX_CLASSES = {
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:alnum:]": "a-zA-Z0-9",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:space:]": " \\t\\n\\r\\f\\v",
    "[:xdigit:]": "0-9A-Fa-f",
    "[:punct:]": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}


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


def _bad(pattern: str, why: str) -> UsageError:
    return UsageError(
        f"The filter pattern {pattern!r} cannot be used: {why}",
        "a literal [ { } * ? is written with a backslash before it, e.g. '\\['",
    )


def _glob_to_regex(glob: str) -> str:
    """rclone's ``globToRegexp`` in path mode with anchors (fs/filter/glob.go), for Python."""
    original = glob
    out: list[str] = []
    if glob.startswith("/"):
        glob = glob[1:]
        out.append("^")
    else:
        out.append("(^|/)")
    stars = 0
    brace_depth = 0
    in_brackets = 0
    slashed = in_regexp = in_regexp_end = False
    last = nxt = ""

    def flush_stars() -> None:
        nonlocal stars
        if stars == 1:
            out.append("[^/]*")
        elif stars == 2:
            out.append(".*")
        elif stars > 2:
            raise _bad(original, "too many stars in a row (** is the most)")
        stars = 0

    for c in glob:
        last, nxt = nxt, c
        if slashed:
            out.append(re.escape(c))
            slashed = False
            continue
        if in_regexp_end:
            if c == "}":  # a regexp ending in }}}: the longest part is the regexp's
                out[-1] = "}"
                out.append(")")
                continue
            in_regexp_end = False
        if in_regexp:
            if c == "}" and last == "}":
                in_regexp, in_regexp_end = False, True
                out[-1] = ")"
            else:
                out.append(c)
            continue
        if c != "*":
            flush_stars()
        if in_brackets:
            out.append(c)
            if c == "[":
                in_brackets += 1
            elif c == "]":
                in_brackets -= 1
            continue
        if c == "\\":
            slashed = True
        elif c == "*":
            stars += 1
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            out.append(c)
            in_brackets += 1
        elif c == "]":
            raise _bad(original, "a ']' without its '['")
        elif c == "{":
            if brace_depth > 0 and last == "{":
                in_regexp = True  # {{ opens a raw regexp inside the ( the first { wrote
                brace_depth -= 1
            else:
                brace_depth += 1
                out.append("(")
        elif c == "}":
            if brace_depth <= 0:
                raise _bad(original, "a '}' without its '{'")
            out.append(")")
            brace_depth -= 1
        elif c == ",":
            out.append("|" if brace_depth > 0 else ",")
        else:
            out.append(re.escape(c))
    flush_stars()
    if in_brackets:
        raise _bad(original, "a '[' without its ']'")
    if brace_depth:
        raise _bad(original, "a '{' without its '}'")
    if in_regexp:
        raise _bad(original, "a '{{' without its '}}'")
    regex = "".join(out) + "$"
    for posix, ranges in _POSIX_CLASSES.items():
        regex = regex.replace(posix, ranges)
    return regex


def _compile(pattern: str) -> re.Pattern[str]:
    """One rclone pattern as a regular expression over the relative path; a pattern that
    cannot be one is refused with one line (rclone refuses it too)."""
    if not pattern or pattern == "/":
        raise UsageError(f"Empty filter pattern {pattern!r}", "give a glob such as *.csv")
    if pattern.endswith("/"):
        pattern += "**"
    regex = _glob_to_regex(pattern)
    try:
        with warnings.catch_warnings():  # "possible set difference": refused or meant
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(regex)
    except re.error as exc:
        raise _bad(pattern, str(exc)) from exc


def parse_filter_rule(rule: str) -> tuple[bool, str] | None:
    """A ``--filter`` rule: ``+ GLOB`` (include), ``- GLOB`` (exclude), ``!`` (None: clear)."""
    if rule == "!":
        return None
    if rule.startswith(("+ ", "- ")):
        return rule[0] == "+", rule[2:]
    raise UsageError(
        f"The filter rule {rule!r} is not one", "write '+ GLOB' to include, '- GLOB' to exclude"
    )


def read_filter_file(path: str) -> list[str]:
    """The rules of a ``--filter-from`` file: one a line; blank, ``#`` and ``;`` lines skipped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(
            f"--filter-from {path} cannot be read: {why}",
            "give a file of '+ GLOB' / '- GLOB' lines",
        ) from exc
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and line[0] not in "#;"]


def _dead_excludes(rules: Iterable[tuple[bool, str]]) -> list[str]:
    """Warnings for each --exclude after every --include: it can never apply."""
    ordered = list(rules)
    last_include = max((n for n, (inc, _) in enumerate(ordered) if inc), default=-1)
    includes = [p for inc, p in ordered if inc]
    notes = []
    for number, (include, pattern) in enumerate(ordered):
        if not include and number > last_include >= 0:
            suggested = " ".join(
                [f"--filter '- {pattern}'", *(f"--filter '+ {p}'" for p in includes)]
            )
            notes.append(
                f"--exclude {pattern!r} comes after every --include, so it never applies (the "
                "first matching rule decides, and what no --include takes is left out anyway); "
                f"put it first, or say the order with {suggested}"
            )
    return notes


@dataclass(frozen=True)
class FileFilter:
    """The user's filters; ``rules`` are ``(include, pattern)`` pairs tried in order.

    ``exclude_unmatched``: whether a file no rule matches is left out — rclone's implicit
    ``- **`` after ``--include`` rules (None: when any rule includes). ``notes`` are warnings
    for the user (an ``--exclude`` that can never apply). Times are epoch seconds: a file
    passes ``newer_than`` when its mtime is at or after it, ``older_than`` when at or before
    it. Sizes are inclusive bounds in bytes.
    """

    rules: tuple[tuple[bool, str], ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    newer_than: float | None = None
    older_than: float | None = None
    exclude_unmatched: bool | None = None
    notes: tuple[str, ...] = ()
    _compiled: tuple[tuple[bool, str, re.Pattern[str]], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # A bad pattern fails when the filter is made, with one line.
        compiled = tuple((inc, pattern, _compile(pattern)) for inc, pattern in self.rules)
        object.__setattr__(self, "_compiled", compiled)
        if self.exclude_unmatched is None:
            object.__setattr__(self, "exclude_unmatched", any(inc for inc, _ in self.rules))
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
        filters: Iterable[str] = (),
        min_size: int | None = None,
        max_size: int | None = None,
        newer_than: str | None = None,
        older_than: str | None = None,
        now: float | None = None,
    ) -> FileFilter:
        """From the fronts' values: ordered ``rules`` (``--include`` / ``--exclude`` as given),
        or ``exclude`` rules then ``include`` (the order that keeps every exclude alive), then
        ``filters``, rclone's ``+ GLOB`` / ``- GLOB`` / ``!`` rules in order."""
        ordered = list(rules) or [(False, p) for p in exclude] + [(True, p) for p in include]
        notes = _dead_excludes(ordered)
        exclude_unmatched = any(inc for inc, _ in ordered)  # --include's implicit "- **"
        for line in filters:
            rule = parse_filter_rule(line)
            if rule is None:
                ordered = []  # "!" clears the rules so far, as in rclone
            else:
                ordered.append(rule)
        return cls(
            rules=tuple(ordered),
            min_size=min_size,
            max_size=max_size,
            newer_than=parse_when(newer_than, now=now) if newer_than else None,
            older_than=parse_when(older_than, now=now) if older_than else None,
            exclude_unmatched=exclude_unmatched,
            notes=tuple(notes),
        )

    @property
    def active(self) -> bool:
        return bool(self.rules) or any(
            v is not None for v in (self.min_size, self.max_size, self.newer_than, self.older_than)
        )

    def why_excluded(self, job: FileJob, root: str) -> str | None:
        """Why ``job`` is left out (``None``: it passes)."""
        return self.why_excluded_entry(relative_path(job.path, root), job.size, job.mtime)

    def why_excluded_entry(self, relative: str, size: int, mtime: float) -> str | None:
        """Why a file (or object) at ``relative`` is left out (``None``: it passes)."""
        job = _Entry(size, mtime)
        if self.rules or self.exclude_unmatched:
            for include, pattern, regex in self._compiled:
                if regex.search(relative):
                    if not include:
                        return f"excluded by --exclude {pattern}"
                    break
            else:
                if self.exclude_unmatched:
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


@dataclass(frozen=True, slots=True)
class _Entry:
    size: int
    mtime: float


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
