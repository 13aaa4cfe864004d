"""The Textual app: screens, bindings, command palette, themes, and ``run_app`` for the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from .. import paths
from ..engine.config import TransferOptions
from ..engine.errors import ConfigError, HostKeyError, TransferError, UsageError
from ..engine.events import EngineEvent, TransferFinished, TransferState
from ..engine.resume.journal import Journal, JournalEntry
from ..exit_codes import EXIT_INTERRUPTED
from ..profiles import (
    Profile,
    ProfileStore,
    S3Settings,
    Secret,
    SftpAuth,
    SftpSettings,
    SshHost,
    import_aws_profiles,
    import_ssh_config,
)
from ..requests import AppRequest, ObserveFlags, observe_options
from .commands import MainCommands
from .messages import ConnectRequested, DisconnectRequested, ErrorRaised
from .screens.browse import BrowseScreen
from .screens.connect import ConnectScreen
from .screens.connection_details import ConnectionDetailsScreen
from .screens.dialogs import ConfirmScreen, ErrorScreen
from .screens.help import HelpScreen
from .screens.host_key import HostKeyScreen
from .session import Session, Target
from .widgets.profile_form import ProfileForm
from .wording import for_the_tui

log = logging.getLogger(__name__)

DARK, LIGHT = "textual-dark", "textual-light"
DEMO_MEMORY_NOTE = (
    "demo: the embedded S3 server runs inside this process and keeps every object in memory, "
    "so RSS grows with what you copy (a real S3 would not)"
)
#: How many recent errors ``SftpS3App.errors`` keeps.
ERRORS_KEPT = 20


@dataclass
class AppOptions:
    """How the app starts; the CLI fills it from its arguments, tests build it directly."""

    demo: bool = False
    demo_large: bool = True
    profile_name: str | None = None
    initial: Profile | None = None
    profiles_path: Path | None = None
    journal_dir: Path | None = field(default_factory=paths.journal_dir)
    #: Where deliveries in progress are recorded (None: the CLI's folder in the state dir).
    delivery_record_dir: Path | None = None
    push_gateway: str | None = None
    metrics_port: int | None = None
    sampler_interval: float = 0.5
    transfer_options: TransferOptions | None = None
    read_user_config: bool = True
    subtitle: str | None = None
    #: The command line's connection flags over a saved profile (``--profile``).
    profile_overrides: Callable[[Profile], Profile] | None = None


def demo_profile(env: object) -> Profile:
    """A temporary profile for the demo servers (never saved)."""
    from ..demo import DemoEnvironment

    assert isinstance(env, DemoEnvironment)
    return Profile(
        name="demo",
        sftp=SftpSettings(
            host=env.host,
            port=env.port,
            user=env.username,
            auth=SftpAuth.PASSWORD,
            password=Secret.literal(env.password),
            known_hosts=str(env.known_hosts),
            remote_folder="/exports",
        ),
        s3=S3Settings(
            access_key_id=env.aws_access_key_id,
            secret_access_key=Secret.literal(env.aws_secret_access_key),
            region=env.region,
            endpoint_url=env.endpoint_url,
            path_style=True,
            bucket="landing",
            prefix="2026-11/",
        ),
    )


class SftpS3App(App[int]):
    """sftp-s3-tui: connect, browse SFTP, pick a bucket, queue transfers and watch them."""

    CSS_PATH = "app.tcss"
    TITLE = "sftp-s3-tui"
    COMMANDS = App.COMMANDS | {MainCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "question_mark",
            "help",
            "Help",
            key_display="?",
            tooltip="these keys, grouped by where they work",
        ),
        Binding(
            "ctrl+t",
            "toggle_dark_light",
            "Theme",
            show=False,
            tooltip="switch between dark and light",
        ),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            key_display="^q",
            priority=True,
            tooltip="quit (asks first while transfers run)",
        ),
    ]

    def __init__(self, options: AppOptions | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        self.session: Session | None = None
        #: The last few errors shown to the user (newest last): a hook for tests, bounded.
        self.errors: deque[TransferError] = deque(maxlen=ERRORS_KEPT)
        self._stack = contextlib.AsyncExitStack()
        self._resources_closed = False
        self.store = ProfileStore(self.options.profiles_path)
        self.theme = DARK

    # start ----------------------------------------------------------------------------------
    def on_load(self) -> None:
        # From Python 3.12 textual runs its loop with asyncio's eager task factory. The
        # engine and the demo's asyncssh server share this loop, and both are built and
        # tested with ordinary tasks: run eagerly, asyncssh 2.24's server-side
        # keyboard-interactive auth never sends its challenge, so the demo's password
        # login hung until its timeout. Ordinary tasks, as under Python 3.11.
        loop = asyncio.get_running_loop()
        loop.set_task_factory(None)
        # A closed terminal window (SIGHUP) or a kill (SIGTERM) ends the app as a quit that
        # aborts what runs, with nobody to ask: without this the process just died, its
        # uploads left open and the demo's files (~0.6 GB) left in the temp folder.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._ended_by_signal)

    async def on_mount(self) -> None:
        options = self.options
        self.store.load()
        for problem in self.store.problems:
            self.notify(
                f"{problem.message}\n{problem.hint}",
                title=problem.title,
                severity="warning",
                timeout=12,
            )
        ssh_hosts: list[SshHost] = []
        aws_names: list[str] = []
        if options.read_user_config:
            try:
                ssh_hosts = import_ssh_config()
                aws_names = [p.name for p in import_aws_profiles()]
            except TransferError as exc:
                self.notify_error(exc)
        await self.push_screen(ConnectScreen(self.store, ssh_hosts, aws_names, options.initial))
        if options.subtitle:
            self.sub_title = options.subtitle
        if options.demo:
            self.start_demo()
        elif options.profile_name:
            try:
                profile = self.store.get(options.profile_name)
                if options.profile_overrides is not None:
                    profile = options.profile_overrides(profile)
            except TransferError as exc:
                self.show_error(exc)
            else:
                self.connect(profile)
        elif options.initial is not None and options.initial.sftp.host:
            self.connect(options.initial)

    @work(group="demo", exit_on_error=False)
    async def start_demo(self) -> None:
        """Start the embedded servers on this loop; they stop when the app closes."""
        from ..demo import DemoEnvironment

        self._set_status("Starting the demo servers (generating sample files)…")
        env = await self._stack.enter_async_context(DemoEnvironment(large=self.options.demo_large))
        profile = demo_profile(env)
        screen = self._connect_screen()
        if screen is not None:
            screen.query_one(ProfileForm).load(profile)
        self.connect(profile)

    def _connect_screen(self) -> ConnectScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, ConnectScreen):
                return screen
        return None

    def _set_status(self, text: str | Text) -> None:
        screen = self._connect_screen()
        if screen is not None:
            screen.status = text

    # connecting -----------------------------------------------------------------------------
    @work(exclusive=True, group="connect", exit_on_error=False)
    async def connect(self, profile: Profile, *, test_only: bool = False) -> None:
        """Log in to SFTP (asking about unknown host keys), open S3, then browse."""
        options = self.options
        try:
            target = Target(
                name=profile.name,
                sftp=profile.sftp_endpoint(),
                s3=profile.s3_endpoint(),
                options=profile.transfer_options(options.transfer_options),
                start_folder=profile.sftp.remote_folder or "/",
                bucket=profile.s3.bucket,
                prefix=profile.s3.prefix,
                delivery=profile.delivery,
            )
            # The profile's [notify] hooks (or SFTP_S3_HOOK_URL), as copy and watch use them.
            observe = observe_options(ObserveFlags(), os.environ, profile)
        except TransferError as exc:
            self.show_error(exc)
            return
        if not target.sftp.host:
            self.notify("Enter a host (or pick a profile) first.", severity="warning")
            return
        problem = key_file_problem(profile)
        if problem is not None:
            self.show_error(problem)
            return
        journal = Journal(options.journal_dir) if options.journal_dir and not test_only else None
        session = Session(
            target,
            journal=journal,
            delivery_record_dir=options.delivery_record_dir,
            sampler_interval=options.sampler_interval,
            push_gateway=None if test_only else options.push_gateway,
            metrics_port=None if test_only else options.metrics_port,
            on_metrics_warning=lambda text: self.notify(text, severity="warning", timeout=10),
            memory_note=DEMO_MEMORY_NOTE if options.demo and profile.name == "demo" else "",
            observe=observe,
            on_observe_warning=lambda text: self.notify(text, severity="warning", timeout=10),
        )
        self._set_status(Text(f"Connecting to {target.sftp.display}…", style="italic"))
        try:
            await session.open()
            if not await self._log_in(session):
                await session.close()
                self._set_status("")
                return
            self._set_status(Text(f"Listing buckets at {target.s3.display}…", style="italic"))
            buckets = await session.list_buckets()
            if target.bucket:
                try:
                    await session.check_bucket(target.bucket)
                except TransferError as exc:  # still browse: another bucket may do
                    self.notify_error(exc)
        except TransferError as exc:
            await session.close()
            self._set_status(Text(f"✗ {exc.title}", style="bold red"))
            self.show_error(exc)
            return
        except BaseException:
            await session.close()
            raise
        if test_only:
            await session.close()
            message = f"✓ SFTP login and S3 work: {len(buckets)} bucket(s) visible"
            self._set_status(Text(message, style="bold green"))
            self.notify(message, title="Connection test")
            return
        self._set_status("")
        await self._open_session(session)

    async def _log_in(self, session: Session) -> bool:
        """Open the SSH connection, asking the user about unknown host keys."""
        while True:
            try:
                await session.connect()
                return True
            except HostKeyError as exc:
                choice = await self.push_screen_wait(HostKeyScreen(exc))
                if choice == "once":
                    session.trust_once(exc.key_line)
                elif choice == "always":
                    await session.trust_always(exc.host, exc.port, exc.key_line)
                else:
                    self.notify(
                        f"Not connected: the host key of {exc.host} was refused.",
                        severity="warning",
                    )
                    return False

    async def _open_session(self, session: Session) -> None:
        await self._close_session()
        self.session = session
        self.sub_title = self.options.subtitle or session.target.label
        session.bus.subscribe(self._on_engine_event)
        await self.push_screen(BrowseScreen(session))
        entries = session.resumable()
        if entries:
            self._offer_resume(session, entries)

    @work(group="resume", exit_on_error=False)
    async def _offer_resume(self, session: Session, entries: list[JournalEntry]) -> None:
        body = Text(
            f"{len(entries)} transfer(s) from {session.target.sftp.display} did not "
            "finish last time:\n\n"
        )
        for entry in entries[:8]:
            body.append(f"  {entry.source} → s3://{entry.bucket}/{entry.key}\n")
        body.append("\nResume them where they stopped?")
        if await self.push_screen_wait(
            ConfirmScreen("Resume transfers?", body, "Resume", "Not now")
        ):
            try:
                transfers = await session.resume(entries)
            except TransferError as exc:
                self.notify_error(exc)
                return
            self.notify(f"Resuming {len(transfers)} transfer(s).")

    def _on_engine_event(self, event: EngineEvent) -> None:
        """Notify failures, and say so once everything queued has finished."""
        if not isinstance(event, TransferFinished) or self.session is None:
            return
        result = event.result
        if result.status is TransferState.FAILED:
            name = result.key.rsplit("/", 1)[-1]
            self.notify(result.message, title=f"✗ {name} failed", severity="error", timeout=10)
        if not self.session.unfinished:  # O(1): no walk over every transfer per finish
            queue, deliveries = self.session.queue, self.session.deliveries
            done = queue.outcomes[TransferState.DONE] + deliveries.count(TransferState.DONE)
            total = len(queue.transfers) + len(deliveries.items)
            self.notify(
                f"All transfers finished: {done} of {total} copied.",
                title="Done",
                timeout=6,
            )

    # messages from the screens --------------------------------------------------------------
    @on(ConnectRequested)
    def _connect_requested(self, message: ConnectRequested) -> None:
        self.connect(message.profile, test_only=message.test_only)

    @on(DisconnectRequested)
    def _disconnect_requested(self) -> None:
        self._disconnect()

    @on(ErrorRaised)
    def _error_raised(self, message: ErrorRaised) -> None:
        if message.modal:
            self.show_error(message.error)
        else:
            self.notify_error(message.error)

    @work(group="disconnect", exit_on_error=False)
    async def _disconnect(self) -> None:
        aborted = await self._confirm_abort("Disconnect?")
        if aborted is None:
            return
        await self._close_session()
        while not isinstance(self.screen, ConnectScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        self.sub_title = self.options.subtitle or ""
        if aborted:
            self.notify(aborted_text(aborted), title="Aborted", severity="warning", timeout=15)

    async def _confirm_abort(self, title: str) -> list[str] | None:
        """None when the user keeps the transfers running; else the unfinished transfers
        (``source → s3://…``) that closing will abort (empty when nothing runs)."""
        session = self.session
        if session is None:
            return []
        unfinished = self._unfinished(session)
        if not unfinished:
            return []
        body = (
            f"{len(unfinished)} transfer(s) have not finished. If you go on, "
            "their uploads are aborted (nothing partial is left in S3, no temporary file on "
            "the SFTP side); they can be queued again later."
        )
        paused = [d for d in session.deliveries.unfinished() if d.state is TransferState.PAUSED]
        if paused:
            # Removed, not kept for a next run: a .partial file in a partner's folder that
            # only a later delivery of the same object would ever clean up is litter.
            body += (
                f"\n\n{len(paused)} paused deliver{'y' if len(paused) == 1 else 'ies'} kept "
                "the part already sent, to resume from; that temporary file is removed too "
                "(nothing is left behind; a later delivery starts over)."
            )
        dialog = ConfirmScreen(title, body, yes="Abort them", no="Keep running", safe_is_no=True)
        if not await self.push_screen_wait(dialog):
            return None
        return self._unfinished(session)  # again: some may have ended while it asked

    @staticmethod
    def _unfinished(session: Session) -> list[str]:
        """The transfers and deliveries that have not finished, as closing names them."""
        running = [t for t in session.queue.transfers.values() if not t.state.finished]
        return [f"{t.job.source} → s3://{t.job.bucket}/{t.job.key}" for t in running] + [
            f"{d.label} (paused)" if d.state is TransferState.PAUSED else d.label
            for d in session.deliveries.unfinished()
        ]

    async def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def close_all(self) -> None:
        """Stop transfers, close connections, stop the demo servers (idempotent)."""
        if self._resources_closed:
            return
        self._resources_closed = True
        await self._close_session()
        await self._stack.aclose()

    async def on_unmount(self) -> None:
        await self.close_all()

    # errors ---------------------------------------------------------------------------------
    def show_error(self, error: TransferError) -> None:
        """An error that stops what the user was doing: a modal with the hint."""
        error = for_the_tui(error)
        self.errors.append(error)
        self.push_screen(ErrorScreen(error.title, error.message, error.hint))

    def notify_error(self, error: TransferError) -> None:
        """An error the user can work around: a notification with the hint."""
        error = for_the_tui(error)
        self.errors.append(error)
        text = f"{error.message}\n{error.hint}" if error.hint else error.message
        self.notify(text, title=error.title, severity="error", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in a worker is reported as text, never as a traceback on screen."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            log.error("%s failed", event.worker.name, exc_info=error)
            if isinstance(error, TransferError):
                self.show_error(error)
            else:
                self.show_error(
                    TransferError(
                        f"{event.worker.name}: {type(error).__name__}: {error}",
                        "this is a bug; please report it with the steps that led here",
                    )
                )

    # actions --------------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_connection_details(self) -> None:
        """The S3 store's capability record and the SFTP link's RTT and ceiling (key i)."""
        if self.session is None:
            self.notify("Not connected.", severity="warning")
        elif not isinstance(self.screen, ConnectionDetailsScreen):
            self.push_screen(ConnectionDetailsScreen(self.session))

    def action_toggle_dark_light(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    async def action_quit(self) -> None:
        self._quit()

    def _ended_by_signal(self) -> None:
        self._stop_for_signal()

    @work(group="quit", exit_on_error=False)
    async def _stop_for_signal(self) -> None:
        session = self.session
        running = [] if session is None else self._unfinished(session)
        await self.close_all()
        self.exit(EXIT_INTERRUPTED, message=aborted_text(running) if running else None)

    @work(group="quit", exit_on_error=False)
    async def _quit(self) -> None:
        aborted = await self._confirm_abort("Quit?")
        if aborted is None:
            return
        await self.close_all()
        self.exit(0, message=aborted_text(aborted) if aborted else None)


def key_file_problem(profile: Profile) -> ConfigError | None:
    """A key login whose key file is missing: said as such, not as a network error."""
    key_file = profile.sftp.key_file
    if profile.sftp.auth is not SftpAuth.KEY or not key_file:
        return None
    path = Path(key_file).expanduser()
    if path.is_file():
        return None
    what = "is a folder" if path.is_dir() else "does not exist"
    return ConfigError(
        f"The key file {key_file} {what}",
        "choose your private key in Key file (e.g. ~/.ssh/id_ed25519), or log in another way",
    )


def aborted_text(aborted: list[str], shown: int = 10) -> str:
    """What closing aborted, for the notification or the line printed after quitting."""
    lines = [f"Aborted {len(aborted)} unfinished transfer(s); nothing partial was left in S3:"]
    lines += [f"  {item}" for item in aborted[:shown]]
    if len(aborted) > shown:
        lines.append(f"  … and {len(aborted) - shown} more")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# CLI entry


def run_app(request: AppRequest) -> int:
    """Run the TUI until the user quits; everything it started is stopped before returning."""
    options = AppOptions(
        demo=request.demo,
        profile_name=request.profile_name,
        initial=request.initial,
        profile_overrides=request.with_flags,
        push_gateway=request.push_gateway,
        metrics_port=request.metrics_port,
    )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "The TUI needs a terminal (its input or output is not one)",
            "run it in a terminal, or use `sftp-s3-tui copy SOURCE… DEST` in scripts",
        )
    if request.demo and importlib.util.find_spec("moto") is None:
        raise ConfigError(
            "--demo needs moto for its embedded S3 server",
            "install sftp-s3-tui[demo], or run `uv run sftp-s3-tui --demo` in a checkout",
        )
    # The imports' objects (botocore's models above all) live as long as the process: move them
    # out of the collector's sight, or every full collection walks them and stalls the loop.
    gc.freeze()
    app = SftpS3App(options)

    async def main() -> int | None:
        try:
            return await app.run_async()
        finally:
            await app.close_all()

    result = asyncio.run(main())
    return result or 0
