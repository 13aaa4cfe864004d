"""Exit codes of every command, in a module of their own: ``--help`` prints them without
importing what parses requests (profiles, the engine's plan)."""

from __future__ import annotations

__all__ = [
    "CLEANUP_EXIT_CODES_HELP",
    "EXIT_CODES_HELP",
    "EXIT_CONNECTION",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOTHING_MATCHED",
    "EXIT_OK",
    "EXIT_USAGE",
]

#: Exit codes of every command (documented in README and ``--help``).
EXIT_OK = 0  # every file landed (or was skipped by the conflict policy)
EXIT_FAILED = 1  # some files failed; the others landed
EXIT_USAGE = 2  # a bad flag, address, profile or setting: nothing was copied
EXIT_NOTHING_MATCHED = 3  # a source matched no file
EXIT_CONNECTION = 4  # SFTP or S3 could not be reached or refused the login
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: unfinished uploads were aborted

EXIT_CODES_HELP = (
    "exit codes: 0 every file landed, 1 some files failed, 2 usage or settings error, "
    "3 nothing matched, 4 connection or login failed, 130 interrupted"
)

#: ``cleanup`` copies nothing: its own list.
CLEANUP_EXIT_CODES_HELP = (
    "exit codes: 0 listed (or aborted) every stale upload, 2 usage or settings error, "
    "4 connection or login failed, 130 interrupted"
)
