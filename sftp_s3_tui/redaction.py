"""Keep secret values out of logs and output.

Code that handles a secret (a profile resolving a password, say) registers it with
:func:`register_secret`; :func:`redact` and :class:`RedactingFilter` then replace every
registered value with ``***`` wherever it shows up. A short secret (under
:data:`SHORT_SECRET_LENGTH` characters) is masked only where it stands alone, not inside
other words: masking every ``a`` in a log would both mangle it and give the secret away.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
SHORT_SECRET_LENGTH = 8

_lock = threading.Lock()
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret so later output is redacted."""
    if value:
        with _lock:
            _registered.add(value)


def registered_secrets() -> frozenset[str]:
    """The secrets registered so far in this process."""
    with _lock:
        return frozenset(_registered)


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    with _lock:
        _registered.clear()


def redact(text: str, secrets: Iterable[str | None] | None = None) -> str:
    """Return ``text`` with every secret replaced by ``***``.

    ``secrets`` defaults to the registered ones. Longer secrets are replaced first, so a
    secret that contains another is masked whole.
    """
    values = registered_secrets() if secrets is None else {s for s in secrets if s}
    for value in sorted(values, key=len, reverse=True):
        if value not in text:
            continue
        if len(value) >= SHORT_SECRET_LENGTH:
            text = text.replace(value, MASK)
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record's message, arguments and traceback.

    Attach it to handlers (``handler.addFilter(RedactingFilter())``), not loggers: a logger's
    filters do not see records propagated from child loggers.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        self._secrets = None if secrets is None else frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = registered_secrets() if self._secrets is None else self._secrets
        if not secrets:
            return True
        message = record.getMessage()
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one :class:`RedactingFilter` to every handler of ``logger`` (default: root)."""
    target = logger or logging.getLogger()
    redacting = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting
