"""Keeping start-up's long-lived objects out of the garbage collector's walks."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Take what start-up built (botocore's service models, asyncssh, rich: ~100k objects
    that live as long as the process) out of the garbage collector's reach.

    Otherwise every full collection walks them all, and one took 90-120 ms of the event
    loop's CPU during a copy of many small files (measured: bench/many_files.py; in a
    delivery of 2,000 small objects the collector was ~6 % of the loop's samples). Frozen
    objects are never collected; what a run allocates afterwards still is. Called once the
    imports are done and again once connected (the login's objects live as long)."""
    gc.freeze()
