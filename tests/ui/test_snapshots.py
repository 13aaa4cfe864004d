"""Snapshots of every screen with deterministic data (fixed names, sizes, times, figures).

Listings come from the real demo servers (fixed sample tree and mtimes); ports are hidden
behind a fixed subtitle; live figures (RSS, MiB/s) are replaced by a fixed sampler snapshot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.widgets import Input

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import SftpEndpoint
from sftp_s3_tui.engine.errors import HostKeyError
from sftp_s3_tui.engine.events import TransferResult, TransferState
from sftp_s3_tui.engine.plan.sources import FileJob
from sftp_s3_tui.engine.transfer.queue import Transfer
from sftp_s3_tui.observe.expectations import DropStatus
from sftp_s3_tui.profiles import (
    Profile,
    ProfileStore,
    S3Settings,
    SftpAuth,
    SftpSettings,
)
from sftp_s3_tui.ui.app import AppOptions, SftpS3App
from sftp_s3_tui.ui.screens.detail import TransferDetailScreen
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen, ErrorScreen
from sftp_s3_tui.ui.screens.help import HelpScreen
from sftp_s3_tui.ui.screens.host_key import HostKeyScreen
from sftp_s3_tui.ui.screens.transfers import TransfersScreen
from sftp_s3_tui.ui.screens.watch import WatchDialog, WatchesScreen
from sftp_s3_tui.ui.watches import WatchPhase, WatchStatus
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.ui.helpers import (
    _error_app,
    _plan_screen,
    browsing,
    demo_app,
    freeze_panel,
    frozen,
    wait_for,
    watches_listed,
)

NARROW = (100, 32)
WIDE = (150, 44)
#: The default terminal: every screen and dialog is also taken at this size.
SMALL = (80, 24)


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Modification times shown in UTC on every machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture(autouse=True)
def fixed_object_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bucket tree shows each object's upload time; the demo uploads at test time."""
    monkeypatch.setattr(
        "sftp_s3_tui.ui.widgets.bucket_picker.format_mtime",
        lambda mtime: "2026-11-20 09:30" if mtime else "",
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_connect_screen(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile(
            name="partner-drop",
            sftp=SftpSettings(
                host="sftp.partner.example",
                user="etl",
                auth=SftpAuth.KEY,
                key_file="~/.ssh/id_ed25519",
                remote_folder="/outgoing",
            ),
            s3=S3Settings(aws_profile="data", region="eu-west-1", bucket="landing"),
        )
    )
    store.save(
        Profile(
            name="minio-lab",
            sftp=SftpSettings(host="10.0.0.7", port=2222, user="lab"),
            s3=S3Settings(endpoint_url="http://minio:9000", path_style=True, bucket="raw"),
        )
    )
    app = SftpS3App(
        AppOptions(
            journal_dir=None, read_user_config=False, profiles_path=tmp_path / "profiles.toml"
        )
    )
    assert snap_compare(app, terminal_size=SMALL if small else WIDE)


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_browse_screen_narrow(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        await browsing(pilot)
        await pilot.press("down", "down", "space", "down", "space")

    assert snap_compare(
        demo_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_browse_and_transfers_wide(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        await browsing(pilot)
        panel = pilot.app.screen.query_one(TransferPanel)
        freeze_panel(panel)
        await wait_for(pilot, lambda: frozen(panel), what="the fixed rows")

    assert snap_compare(
        demo_app(tmp_path), terminal_size=SMALL if small else WIDE, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_transfers_screen(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        await browsing(pilot)
        app = pilot.app
        await app.push_screen(TransfersScreen(app.session))
        await wait_for(pilot, lambda: app.screen.query(TransferPanel), what="the transfers")
        panel = app.screen.query_one(TransferPanel)
        freeze_panel(panel)
        await wait_for(pilot, lambda: frozen(panel), what="the fixed rows")

    assert snap_compare(
        demo_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_help_screen(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        await browsing(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")

    assert snap_compare(
        demo_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_unknown_host_key_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    error = HostKeyError(
        "The host key of sftp.partner.example:22 is unknown",
        "",
        host="sftp.partner.example",
        port=22,
        fingerprint="ssh-ed25519 SHA256:Xq0t9I3w2m9QmKx8JvEo0zXh4Jm3dXl1rDkqB3l6P2E",
    )

    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(HostKeyScreen(error))

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_changed_host_key_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    error = HostKeyError(
        "The host key of sftp.partner.example:22 has CHANGED",
        "",
        host="sftp.partner.example",
        port=22,
        fingerprint="ssh-ed25519 SHA256:Xq0t9I3w2m9QmKx8JvEo0zXh4Jm3dXl1rDkqB3l6P2E",
        known_fingerprints=("ssh-rsa SHA256:7b1Yc2Q0cQhH0y9b6lVv5m1mJb0qC6k8sQx3R1aT2wU",),
    )

    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(HostKeyScreen(error))

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_error_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(
            ErrorScreen(
                "SFTP login refused",
                "sftp://etl@sftp.partner.example refused the login for etl",
                "check the user name, password or key (and SFTP_PASSWORD / --identity)",
            )
        )

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_plan_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(_plan_screen())
        await wait_for(pilot, lambda: pilot.app.screen.query("#plan-table"), what="the plan")

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else WIDE, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_transfer_detail_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    job = FileJob(
        SftpEndpoint("demo-host", username="demo"),
        "/exports/README.txt",
        2048,
        1_795_100_000,
        "landing",
        "2026-11/README.txt",
    )
    result = TransferResult(
        source=job.source,
        bucket=job.bucket,
        key=job.key,
        bytes=2048,
        seconds=0.4,
        parts=0,
        sha256=None,
        status=TransferState.FAILED,
        message="Permission denied reading /exports/README.txt — check the SFTP user's rights",
    )
    transfer = Transfer(4, job, TransferState.FAILED, result)

    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(TransferDetailScreen(transfer))
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TransferDetailScreen))

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else WIDE, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_quit_mid_run_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        dialog = ConfirmScreen(
            "Quit?",
            "2 transfer(s) have not finished. If you go on, their uploads are aborted "
            "(nothing partial is left in S3); they can be queued again later.",
            yes="Abort them",
            no="Keep running",
            safe_is_no=True,
        )
        await pilot.app.push_screen(dialog)
        await wait_for(pilot, lambda: getattr(pilot.app.focused, "id", None) == "no", what="focus")

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else NARROW, run_before=run_before
    )


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_watch_dialog(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def run_before(pilot: Any) -> None:
        dest = parse_s3_url("s3://landing/2026-11/")
        dialog = WatchDialog("/outgoing", "sftp://etl@sftp.partner.example/outgoing", dest)
        await pilot.app.push_screen(dialog)
        dialog.query_one("#watch-include", Input).value = "*.csv"
        dialog.query_one("#watch-done-file", Input).value = ".done"
        dialog.query_one("#watch-expect", Input).value = "3 invoice_*.csv by weekdays 06:00"
        for field in dialog.query(Input):
            field.cursor_blink = False  # a blinking cursor makes the snapshot flaky
        await wait_for(pilot, lambda: pilot.app.screen is dialog, what="the watch dialog")

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else WIDE, run_before=run_before
    )


def _watch_statuses() -> list[WatchStatus]:
    at = 1_795_100_000.0  # 2026-11-19 14:53:20 UTC
    return [
        WatchStatus(
            1,
            "sftp://etl@sftp.partner.example/outgoing",
            "s3://landing/2026-11/",
            60.0,
            phase=WatchPhase.IDLE,
            polls=42,
            last_poll=at,
            next_poll=at + 60,
            listed=12,
            shipped=9,
            waiting=2,
            drops=[
                DropStatus(
                    "invoice_*.csv",
                    datetime(2026, 11, 19, 6, 0, tzinfo=ZoneInfo("Europe/Berlin")),
                    expected=3,
                    arrived=2,
                    late=0,
                    missing=1,
                )
            ],
        ),
        WatchStatus(
            2,
            "sftp://etl@sftp.partner.example/refunds",
            "s3://landing/refunds/",
            300.0,
            phase=WatchPhase.POLLING,
            polls=3,
            last_poll=at - 300,
            next_poll=at,
            shipped=1,
            failed=1,
            message="",
        ),
        WatchStatus(
            3,
            "sftp://etl@sftp.partner.example/archive",
            "s3://landing/archive/",
            30.0,
            phase=WatchPhase.STOPPED,
            polls=7,
            last_poll=at - 900,
        ),
    ]


@pytest.mark.parametrize("small", [False, True], ids=["own-size", "80x24"])
def test_watches_list(snap_compare: Any, tmp_path: Path, small: bool) -> None:
    async def stop(watch_id: int) -> None:
        raise AssertionError("nothing is stopped in this snapshot")

    async def run_before(pilot: Any) -> None:
        await pilot.app.push_screen(WatchesScreen(_watch_statuses, stop, live=False))
        await wait_for(pilot, lambda: watches_listed(pilot.app), what="the watches")

    assert snap_compare(
        _error_app(tmp_path), terminal_size=SMALL if small else WIDE, run_before=run_before
    )
