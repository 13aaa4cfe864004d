"""Run ids: one UUID per copy or watch poll, shared by the manifest, lineage, hooks, logs and
metrics so each can be joined with the others."""

from __future__ import annotations

import os
import time
import uuid


def new_run_id() -> str:
    """A UUIDv7 (time-ordered, as OpenLineage recommends for run ids).

    Python 3.11 has no ``uuid.uuid7``, and OpenLineage's own generator costs its whole client
    import (over a second); the layout is RFC 9562's: 48 bits of Unix milliseconds, the
    version, 74 random bits and the variant.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # 62 random bits
    return str(uuid.UUID(int=value))
