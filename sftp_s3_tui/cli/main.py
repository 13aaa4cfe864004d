"""The entry point: ``sftp-s3-tui`` (the TUI), ``sftp-s3-tui copy|watch|cleanup …``
(headless), ``--demo``; parses (:mod:`.parser`) and hands the request to its runner.

What a command needs is imported in :func:`main` once it is known, so ``--help`` and a
usage error load only the parser.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ..engine.errors import ConfigError, TransferError, UsageError
from ..exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .parser import build_parser, connection_flags, copy_request_of, delivery_request_of

if TYPE_CHECKING:
    from types import ModuleType

    from ..engine.sftp.pool import SftpPool
    from ..requests import CopyRequest
    from ..requests.delivery import DeliveryRequest

log = logging.getLogger("sftp_s3_tui")


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("asyncssh", "botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    from ..redaction import install_log_redaction, register_secret
    from ..requests import app_request, cleanup_request, load_env_file
    from ..requests.delivery import is_delivery

    if getattr(args, "log_format", None) == "json":
        from ..observe.json_log import use_json_logging

        use_json_logging()

    install_log_redaction()
    env = os.environ
    try:
        if args.env_file:
            count = load_env_file(args.env_file, env)
            print(f"sftp-s3-tui: read {count} setting(s) from {args.env_file}", file=sys.stderr)
        for name in ("SFTP_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            register_secret(env.get(name))
        flags = connection_flags(args)
        if args.command == "copy" and is_delivery(args.paths):  # S3 → SFTP
            from ..engine.sftp.libraries import quick_library_lookups

            with quick_library_lookups():  # asyncssh (the request needs it too), not S3
                from ..engine.sftp.pool import SftpPool

            delivery = delivery_request_of(args, env)
            if delivery.dry_run:  # no login: the plan only
                from .delivery import run_delivery

                return _run(run_delivery(delivery))
            return _run(_deliver(delivery, SftpPool()))
        if args.command == "copy":
            from ..engine.sftp.libraries import quick_library_lookups

            with quick_library_lookups():  # asyncssh only, imported before the loop runs
                from ..engine.sftp.pool import SftpPool

            return _run(_copy(copy_request_of(args, env), SftpPool()))
        if args.command == "watch" and is_delivery(args.paths):  # S3 → SFTP
            from .delivery_watch import run_delivery_watch

            return _run_watch(run_delivery_watch, delivery_request_of(args, env))
        if args.command == "watch":
            from .run import run_watch

            return _run_watch(run_watch, copy_request_of(args, env))
        if args.command == "cleanup":
            from .run import run_cleanup

            cleanup = cleanup_request(
                args.bucket, flags, env, older_than=args.older_than, abort=args.abort
            )
            return _run(run_cleanup(cleanup))
        if args.command in ("monitoring", "examples"):
            return _export(args.command, args.dir, force=args.force)
        from ..ui.app import run_app

        return run_app(app_request(flags, env, demo=args.demo))
    except TransferError as exc:
        return report(exc)
    except KeyboardInterrupt:  # before the copy started (loading a profile, say)
        print("sftp-s3-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _export(name: str, dest: str, *, force: bool) -> int:
    """``monitoring export DIR`` / ``examples export DIR``: the files, one line each."""
    from pathlib import Path

    from ..bundled import export_bundle

    for path in export_bundle(name, Path(dest), force=force):
        print(path)
    print(f"sftp-s3-tui: {name} files written to {dest}", file=sys.stderr)
    return EXIT_OK


def report(exc: TransferError) -> int:
    """One stderr line for an error that stopped the whole command; its exit code."""
    from ..observe import json_log
    from ..requests import CLI_NAMES, exit_code_for

    code = EXIT_USAGE if isinstance(exc, UsageError | ConfigError) else exit_code_for(exc)
    message, hint = exc.worded(CLI_NAMES)
    text = f"{message} — {hint}" if hint else message
    if json_log.active:  # --log-format json: the line is a JSON object too
        line = json_log.json_line("error", "error", None, error=message, hint=hint or None)
        print(line, file=sys.stderr)
    elif code == EXIT_USAGE:
        print(f"sftp-s3-tui: error: {text}", file=sys.stderr)
    else:
        print(f"sftp-s3-tui: {text}", file=sys.stderr)
    return code


def _run_watch(run_watch: Callable[..., Awaitable[int]], request: object) -> int:
    """Run ``watch``: SIGTERM and Ctrl-C ask it to stop (the poll under way is aborted, its
    sources untouched) and it exits 0."""

    import asyncio
    import contextlib
    import signal

    async def watched() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await run_watch(request, stop)

    try:
        return asyncio.run(watched())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("sftp-s3-tui: interrupted; unfinished uploads were aborted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _load_s3_stack() -> ModuleType:
    """The headless front and the S3 stack it needs, and S3's models read (run in a thread)."""
    import importlib

    from ..engine.s3.operations import warm_up

    headless = importlib.import_module("sftp_s3_tui.cli.run")
    warm_up()
    return headless


async def _copy(request: CopyRequest, sftp: SftpPool) -> int:
    """``copy``: the SSH logins start first, and the S3 stack (aioboto3, botocore, aiohttp:
    most of a second) is imported in a thread meanwhile, so the handshake's round trips to a
    far host cost no extra start-up time."""
    import asyncio

    async with sftp:  # closed again by the queue; a no-op then
        logins = sftp.start_logins([source.endpoint for source in request.sources])
        try:
            headless = await asyncio.to_thread(_load_s3_stack)
        except BaseException:
            logins.discard()
            raise
        run_copy: Callable[..., Awaitable[int]] = headless.run_copy
        return await run_copy(request, sftp=sftp, logins=logins)


def _load_delivery_front() -> ModuleType:
    """The delivery front and the S3 stack it needs, and S3's models read (in a thread)."""
    import importlib

    from ..engine.s3.operations import warm_up

    front = importlib.import_module("sftp_s3_tui.cli.delivery")
    warm_up()
    return front


async def _deliver(request: DeliveryRequest, sftp: SftpPool) -> int:
    """``copy s3://… sftp://…``: as for a copy, the login to the partner starts first and
    the S3 stack is imported in a thread meanwhile; at 100 ms the login is about a second
    of round trips, and a far handshake starts the lanes' logins before it ends."""
    import asyncio

    async with sftp:  # closed again by the delivery; a no-op then
        logins = sftp.start_logins([request.target.endpoint])
        try:
            front = await asyncio.to_thread(_load_delivery_front)
            run_delivery: Callable[..., Awaitable[int]] = front.run_delivery
            return await run_delivery(request, sftp=sftp, logins=logins)
        finally:
            logins.discard()  # a run that stopped early says nothing of them


def _run(coro: Awaitable[int]) -> int:
    """Run a headless command; SIGTERM cancels like Ctrl-C (uploads are aborted)."""
    import asyncio
    import contextlib
    import signal

    async def guarded() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await coro

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("sftp-s3-tui: interrupted; unfinished uploads were aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
