"""healthchecks.io-style hooks: ``URL/start`` when a run starts, ``URL`` when it succeeded,
``URL/fail`` when it failed or a drop is late, each carrying the run summary as JSON and
the run id as ``?rid=`` (healthchecks pairs a start with its end by it).

A call is retried briefly; an endpoint that stays down costs one warning and never fails
the copy. Bodies are built from counts and engine messages, redacted of every registered
secret before they leave.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..redaction import redact
from .dispatch import Dispatcher

log = logging.getLogger(__name__)

ATTEMPTS = 3
BACKOFF_SECONDS = (0.5, 1.0)  # waits between attempts
TIMEOUT_SECONDS = 5.0
USER_AGENT = "sftp-s3-tui hooks"


def display_url(url: str) -> str:
    """The URL without user info or query (either may hold a token) for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Hooks:
    """Sends a run's start / success / fail / late calls to ``url`` (those ``notify_on``
    allows: ``late``, ``fail``, ``success``; start goes whenever success or fail does)."""

    def __init__(
        self,
        url: str,
        notify_on: frozenset[str],
        dispatcher: Dispatcher,
        *,
        on_warning: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.notify_on = notify_on
        self.dispatcher = dispatcher
        self.on_warning = on_warning
        self.sleep = sleep
        self.sent = 0
        self.failed = 0
        self._warned = False

    def start(self, run_id: str, summary: Mapping[str, Any]) -> None:
        if self.notify_on & {"success", "fail"}:
            self._send("/start", run_id, {"event": "start", **summary})

    def finished(self, run_id: str, summary: Mapping[str, Any], *, ok: bool) -> None:
        if ok and "success" in self.notify_on:
            self._send("", run_id, {"event": "success", **summary})
        elif not ok and "fail" in self.notify_on:
            self._send("/fail", run_id, {"event": "fail", **summary})

    def late(self, run_id: str, drop: Mapping[str, Any]) -> None:
        if "late" in self.notify_on:
            self._send("/fail", run_id, {"event": "late", **drop})

    def _send(self, suffix: str, run_id: str, body: Mapping[str, Any]) -> None:
        data = redact(json.dumps({"run_id": run_id, **body}, default=str)).encode()
        url = f"{self.url}{suffix}?rid={run_id}"
        self.dispatcher.send(lambda: self._post(url, data))

    def _post(self, url: str, data: bytes) -> None:
        """In the dispatcher's thread: POST with a few quick retries."""
        import urllib.error  # here, not at start-up: most runs have no hook
        import urllib.request

        error = ""
        for attempt in range(ATTEMPTS):
            request = urllib.request.Request(
                url,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            )
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                    response.read()
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break  # the endpoint refused it: asking again will not help
            except (OSError, ValueError) as exc:
                error = str(getattr(exc, "reason", None) or exc)
            if attempt < ATTEMPTS - 1:
                self.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
        self.failed += 1
        message = (
            f"the hook {display_url(self.url)} did not answer ({redact(error)}); "
            "the copy goes on without it"
        )
        if self._warned:
            log.debug("%s", message)
            return
        self._warned = True
        log.debug("%s", message)
        if self.on_warning is not None:
            self.on_warning(message)
