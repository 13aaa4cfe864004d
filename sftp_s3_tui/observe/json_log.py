"""``--log-format json``: one JSON object per log event on stderr, for pipelines.

Every object has the same keys — ``time``, ``level``, ``event``, ``run_id``, ``file``,
``key``, ``part``, ``attempt``, ``error``, ``hint`` (null where they do not apply) — plus
``message`` and event-specific fields. Engine events become objects through
:meth:`JsonLog.on_event`; the front's warnings and notices through :meth:`JsonLog.log`;
library log records through :class:`JsonFormatter`. Every line is redacted of secrets.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from ..engine.events import (
    EngineEvent,
    PartChanged,
    PartState,
    TransferFinished,
    TransferNotice,
    TransferQueued,
    TransferState,
)
from ..redaction import redact

FIELDS = ("file", "key", "part", "attempt", "error", "hint")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_line(level: str, event: str, run_id: str | None, **fields: Any) -> str:
    """One redacted JSON object with the common keys first."""
    record: dict[str, Any] = {"time": _now(), "level": level, "event": event, "run_id": run_id}
    for name in FIELDS:
        record[name] = fields.pop(name, None)
    record.update(fields)
    return redact(json.dumps(record, ensure_ascii=False, default=str))


class JsonLog:
    """Writes log events of one run (``run_id``, changed per watch poll) as JSON lines."""

    def __init__(self, run_id: str | None = None, stream: TextIO | None = None) -> None:
        self.run_id = run_id
        self.stream = stream
        self._files: dict[int, tuple[str, str]] = {}  # transfer id → (source, s3 url)
        self._attempts: dict[tuple[int, int], int] = {}  # (transfer, part) → retries so far

    def log(self, event: str, level: str = "info", **fields: Any) -> None:
        stream = self.stream or sys.stderr
        stream.write(json_line(level, event, self.run_id, **fields) + "\n")
        stream.flush()

    def on_event(self, event: EngineEvent) -> None:
        """An :class:`~sftp_s3_tui.engine.events.EventBus` subscriber."""
        tid = event.transfer_id
        if isinstance(event, TransferQueued):
            where = (event.source, f"s3://{event.bucket}/{event.key}")
            self._files[tid] = where
            self.log("file.queued", file=where[0], key=where[1], size=event.size)
        elif isinstance(event, PartChanged) and event.state is PartState.RETRIED:
            attempt = self._attempts.get((tid, event.part_number), 1) + 1
            self._attempts[(tid, event.part_number)] = attempt
            source, key = self._files.get(tid, (None, None))
            self.log(
                "part.retried",
                "warning",
                file=source,
                key=key,
                part=event.part_number,
                attempt=attempt,
                side=event.side or None,
            )
        elif isinstance(event, TransferNotice):
            source, key = self._files.get(tid, (None, None))
            self.log("file.notice", file=source, key=key, message=event.message)
        elif isinstance(event, TransferFinished):
            self._finished(tid, event)

    def _finished(self, tid: int, event: TransferFinished) -> None:
        result = event.result
        self._files.pop(tid, None)
        for part in [k for k in self._attempts if k[0] == tid]:
            del self._attempts[part]
        failed = result.status not in (TransferState.DONE, TransferState.SKIPPED)
        self.log(
            f"file.{result.status.value}",
            "error" if failed else "info",
            file=result.source,
            key=f"s3://{result.bucket}/{result.key}",
            error=result.message or None if failed else None,
            message=None if failed else result.message or None,
            bytes=result.bytes,
            sha256=result.sha256,
            verified_by=result.verified_by or None,
        )


class JsonFormatter(logging.Formatter):
    """Log records (libraries, ``-v``) as the same JSON objects."""

    def __init__(self, run_id: Callable[[], str | None] = lambda: None) -> None:
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        error = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(
            record.levelname.lower(),
            "log",
            self.run_id(),
            logger=record.name,
            message=record.getMessage(),
            error=error,
        )


#: Whether ``--log-format json`` is on in this process (the CLI's last error line follows it).
active = False


def use_json_logging(run_id: Callable[[], str | None] = lambda: None) -> None:
    """Make the root logger's handlers write JSON objects."""
    global active
    active = True
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter(run_id))
