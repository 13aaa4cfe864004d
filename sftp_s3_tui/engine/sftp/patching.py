"""Replacing one of asyncssh's methods once per process: the one way the engine's changes to
asyncssh (:mod:`.quiet_logging`, :mod:`.ignore_packets`, :mod:`.coalesced_writes`) go in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_PATCHED = "_sftp_s3_tui_patched"


def replace_once(owner: Any, name: str, make: Callable[[Any], Callable[..., Any]]) -> bool:
    """Set ``owner.name`` to ``make(current method)`` unless that was done already; False
    where ``owner`` has no such method (then nothing is changed)."""
    current = getattr(owner, name, None)
    if current is None:
        return False
    if getattr(current, _PATCHED, False):
        return True
    replacement = make(current)
    setattr(replacement, _PATCHED, True)
    setattr(owner, name, replacement)
    return True
