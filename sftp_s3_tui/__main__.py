"""``python -m sftp_s3_tui`` and the ``sftp-s3-tui`` command."""

import atexit
import contextlib
import os
import sys
import threading


def _exit_now(code: int) -> None:
    """Exit with ``code`` without the interpreter's teardown.

    Tearing down the modules of botocore, asyncssh and textual frees millions of objects
    one by one: 0.7 s of CPU after the last line was printed on a loaded 2-core host (a
    delivery of 64 MiB took 1.2 s). Everything that matters still runs first: threads
    that are not daemons finish, atexit handlers run (coverage, logging), the streams are
    flushed; then the process ends at once.
    """
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def entry() -> None:
    """The command line's entry point: :func:`cli.main`, then a prompt exit."""
    try:
        from .cli.main import main
    except KeyboardInterrupt:  # Ctrl-C while starting: one line, never a traceback
        sys.stderr.write("sftp-s3-tui: interrupted\n")
        sys.exit(130)
    try:
        code = main()
    except BrokenPipeError:
        # stdout's reader left (`... --json | head -1`): end quietly, as `cat` does; the
        # engine's cleanups already ran while the error unwound the run
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it
    _exit_now(code)


if __name__ == "__main__":
    entry()
