"""asyncssh's import without a compiler run: library lookups from the linker's cache."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quick_library_lookups() -> Iterator[None]:
    """Within: ``ctypes.util.find_library`` asks the dynamic linker's cache only.

    asyncssh looks for liboqs (post-quantum key exchange) and nettle (UMAC) when it is
    imported. On Linux ``find_library`` tries ``ldconfig -p``, then gcc, then ld for each
    name: where liboqs is not installed that is seven processes and ~40 ms of CPU at every
    start (issue 29). ``ctypes.cdll.LoadLibrary`` loads a bare soname only from the cache,
    the default folders or LD_LIBRARY_PATH, so the cache answers the same; with
    LD_LIBRARY_PATH set, or asyncssh already imported, nothing changes.
    """
    if sys.platform != "linux" or os.environ.get("LD_LIBRARY_PATH") or "asyncssh" in sys.modules:
        yield
        return
    import ctypes.util

    from_cache = getattr(ctypes.util, "_findSoname_ldconfig", None)
    if from_cache is None:  # another Python's ctypes: leave it alone
        yield
        return
    original = ctypes.util.find_library
    ctypes.util.find_library = from_cache
    try:
        yield
    finally:
        ctypes.util.find_library = original
