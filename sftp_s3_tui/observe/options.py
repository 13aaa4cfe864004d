"""The observing settings of a run, as the request layer builds them from flags and profiles."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.errors import UsageError
from .expectations import Expectation

#: What ``--notify-on`` may name: a late drop, a failed run, a run that succeeded.
NOTIFY_CHOICES = ("late", "fail", "success")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ObserveOptions:
    """Hooks, log format and drop expectations (lineage is configured by OpenLineage's own
    variables and file, read where it is emitted)."""

    hook_url: str | None = None
    notify_on: frozenset[str] = frozenset(NOTIFY_CHOICES)
    log_format: str = "text"
    expectations: tuple[Expectation, ...] = ()

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json"


def parse_notify_on(text: str | None) -> frozenset[str]:
    """``late,fail,success`` (any subset); None or empty: all of them."""
    if not text:
        return frozenset(NOTIFY_CHOICES)
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(NOTIFY_CHOICES))
    if unknown:
        raise UsageError(
            f"--notify-on {text!r}: unknown {', '.join(unknown)}",
            f"choose from {','.join(NOTIFY_CHOICES)}",
        )
    return frozenset(names)


def check_hook_url(url: str | None) -> str | None:
    """An http(s) URL, or None."""
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(
            f"--hook-url {url!r} is not an http(s) URL", "e.g. https://hc-ping.com/UUID"
        )
    return url.rstrip("/")


def check_log_format(text: str | None) -> str:
    value = (text or "text").lower()
    if value not in LOG_FORMATS:
        raise UsageError(f"--log-format {text!r} is not known", "use text or json")
    return value


def observe_options(
    *,
    hook_url: str | None = None,
    notify_on: str | None = None,
    log_format: str | None = None,
    expectations: tuple[Expectation, ...] = (),
) -> ObserveOptions:
    """The checked settings (one clear line for a bad value)."""
    return ObserveOptions(
        hook_url=check_hook_url(hook_url),
        notify_on=parse_notify_on(notify_on),
        log_format=check_log_format(log_format),
        expectations=expectations,
    )
