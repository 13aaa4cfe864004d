"""asyncssh's import asks ctypes for liboqs and nettle: from the linker's cache only, so no
compiler runs at start-up (issue 29), and ctypes is itself again afterwards."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from sftp_s3_tui.engine.sftp.libraries import quick_library_lookups


def test_lookups_come_from_the_cache_and_ctypes_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.delitem(sys.modules, "asyncssh", raising=False)
    original = ctypes.util.find_library
    with quick_library_lookups():
        if sys.platform != "linux":  # only Linux's find_library runs a compiler
            assert ctypes.util.find_library is original
            return
        assert ctypes.util.find_library is not original
        assert ctypes.util.find_library("c") == original("c")  # in the cache: the same answer
        assert ctypes.util.find_library("no-such-library-xyz") is None
    assert ctypes.util.find_library is original


def test_with_ld_library_path_or_asyncssh_loaded_nothing_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ctypes.util.find_library
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    with quick_library_lookups():
        assert ctypes.util.find_library is original
    monkeypatch.delenv("LD_LIBRARY_PATH")
    monkeypatch.setitem(sys.modules, "asyncssh", sys.modules.get("asyncssh") or object())
    with quick_library_lookups():
        assert ctypes.util.find_library is original
