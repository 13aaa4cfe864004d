"""The TUI needs a terminal: refuse at once, with one message, when there is none."""

from __future__ import annotations

import sys
from typing import TextIO

from ..engine.errors import ConfigError


def require_terminal(stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """Raise ``ConfigError`` when stdin or stdout is not a terminal (output piped or
    redirected, no tty under cron); without this the TUI would spin writing escape codes."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    for name, stream in (("output", stdout), ("input", stdin)):
        if stream is None or not stream.isatty():
            raise ConfigError(
                f"The TUI needs a terminal, but its {name} is not one",
                "run it in a terminal; for scripts and pipes use `sftp-s3-tui copy SOURCE… DEST`",
            )
