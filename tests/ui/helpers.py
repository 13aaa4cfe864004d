"""Helpers for driving the real app with a Pilot."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.profiles import Profile, S3Settings, Secret, SftpAuth, SftpSettings
from sftp_s3_tui.ui.app import AppOptions, SftpS3App
from tests.support.servers import SftpServerInfo


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            screen = pilot.app.screen
            raise AssertionError(f"timed out waiting for {what or condition} on {screen!r}")
        await pilot.pause(0.05)


def server_profile(
    info: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    *,
    bucket: str | None = None,
    prefix: str = "",
    password: str | None = None,
    known_hosts: Path | None = None,
    name: str = "test",
) -> Profile:
    """A profile for a test server: password login (embedded) or key login (sshd)."""
    if password is not None or info.kind == "asyncssh":
        sftp = SftpSettings(
            host=info.host,
            port=info.port,
            user=info.password_user,
            auth=SftpAuth.PASSWORD,
            password=Secret.literal(password if password is not None else info.password or ""),
            known_hosts=str(known_hosts or info.known_hosts),
            remote_folder=info.remote_root,
        )
    else:
        sftp = SftpSettings(
            host=info.host,
            port=info.port,
            user=info.username,
            auth=SftpAuth.KEY,
            key_file=str(info.identity_file),
            known_hosts=str(known_hosts or info.known_hosts),
            remote_folder=info.remote_root,
        )
    return Profile(
        name=name,
        sftp=sftp,
        s3=S3Settings(
            endpoint_url=s3_endpoint.endpoint_url,
            region=s3_endpoint.region or "us-east-1",
            path_style=True,
            bucket=bucket,
            prefix=prefix,
        ),
    )


def make_app(tmp_path: Path, **options: Any) -> SftpS3App:
    """The real app, isolated from the user's profiles, journal and ssh config."""
    options.setdefault("profiles_path", tmp_path / "profiles.toml")
    options.setdefault("journal_dir", tmp_path / "journal")
    options.setdefault("read_user_config", False)
    options.setdefault("sampler_interval", 0.1)
    return SftpS3App(AppOptions(**options))


def browse_ready(app: Any) -> bool:
    """The browse screen is up, its remote folder listed and shown."""
    from sftp_s3_tui.ui.screens.browse import BrowseScreen
    from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree

    screen = app.screen
    if not isinstance(screen, BrowseScreen) or not screen.query(RemoteTree):
        return False
    tree = screen.query_one(RemoteTree)
    return tree.ready and bool(tree.entries)


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain text (the lines a person reads in tmux)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()
