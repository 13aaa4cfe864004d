"""What an asyncssh or OS error means here: a dead connection (reset it, retry) or a file's
own failure (the connection stays), and the user-facing :class:`TransferError` for each."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from ..errors import (
    SftpReadError,
    SourceNotFound,
    SourcePermissionDenied,
    SourceReadFailed,
    TransferError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection (not the file) failed: lost, closed, stalled.

    A file's own error (an I/O error or refusal the server reports for one request) leaves
    the connection healthy for every other file on it.
    """
    if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return True
    if isinstance(exc, asyncssh.SFTPError):
        return False  # an answer from a live server about this one request
    return isinstance(
        exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError | OSError | TimeoutError
    )


def map_sftp_error(exc: BaseException, path: str) -> TransferError:
    """Turn an asyncssh/OS error about ``path`` into a user-facing error."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath | FileNotFoundError):
        return SourceNotFound(f"{path} does not exist on the SFTP server", "check the path")
    if isinstance(exc, asyncssh.SFTPPermissionDenied | PermissionError):
        return SourcePermissionDenied(
            f"Permission denied reading {path}", "check the SFTP user's rights on it"
        )
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return SftpReadError(f"Reading {path} timed out", "the server stalled; try again")
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    if isinstance(exc, asyncssh.SFTPError) and not is_connection_error(exc):
        return SourceReadFailed(
            f"The SFTP server failed reading {path}: {reason}",
            "the server reported an error for this file (an I/O error?); check it there",
        )
    return SftpReadError(f"Reading {path} failed: {reason}", "the connection may have dropped")


def quiet_read_teardown(loop: asyncio.AbstractEventLoop) -> None:
    """Drop asyncio's "Task exception was never retrieved" for asyncssh's own read-ahead
    (and pipelined write) requests that a closed or reset connection ended (a cancelled or
    finished read or write leaves them in flight; nobody is waiting for their blocks, and
    the awaited request already reported the failure). Every other report goes on as before.
    Installed once per loop: a handler already in place is not wrapped again."""
    previous = loop.get_exception_handler()
    if getattr(previous, "_quiet_read_teardown", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        future = context.get("future")
        coro = getattr(future, "get_coro", lambda: None)()
        if isinstance(context.get("exception"), asyncssh.Error | OSError) and getattr(
            coro, "__qualname__", ""
        ).startswith("_SFTPParallelIO."):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler._quiet_read_teardown = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
