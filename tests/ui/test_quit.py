"""Quitting or disconnecting mid-run: the safe choice has the focus, and the user is told what
was aborted."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button

from sftp_s3_tui.engine.addresses import parse_s3_url
from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.ui.screens.connect import ConnectScreen
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from sftp_s3_tui.ui.watches import WatchSpec
from tests.support.fault_proxy import proxied
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


@pytest.fixture
def slow_sftp(embedded_sftp: SftpServerInfo, tmp_path: Path) -> Iterator[SftpServerInfo]:
    """The embedded server behind a proxy throttled to 256 KiB/s: a copy stays running."""
    with proxied(embedded_sftp, tmp_path / "known_hosts-proxy") as (server, proxy):
        proxy.throttle(256 * 1024, "down")
        yield server


def _running(app: Any) -> bool:
    session = app.session
    return session is not None and any(
        t.state.value == "running" for t in session.queue.transfers.values()
    )


async def test_quit_mid_run_focuses_keep_running_then_says_what_was_aborted(
    slow_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow_sftp.write_file("big.bin", size=16 * MiB, seed=5)
    app = make_app(tmp_path, initial=server_profile(slow_sftp, s3_endpoint, bucket=bucket))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("c")
        await wait_for(pilot, lambda: _running(app), timeout=60, what="a running copy")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        focused = app.focused
        assert isinstance(focused, Button) and focused.id == "no"
        assert "Keep running" in str(focused.label)
        await pilot.press("enter")  # the default keeps the work
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert _running(app)

        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")  # abort them
        await wait_for(pilot, lambda: app._exit, timeout=60, what="the app to exit")
    gc.collect()  # an HTTP session nobody closed says so when it is collected
    await asyncio.sleep(0.1)  # (through the loop's exception handler)
    leaks = [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()]
    assert leaks == [], "quitting mid-run left connections open"
    printed = capsys.readouterr().err
    assert "Aborted 1 unfinished transfer(s); nothing partial was left in S3" in printed
    assert f"big.bin → s3://{bucket}/big.bin" in printed
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_disconnect_mid_run_notifies_what_was_aborted(
    slow_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    slow_sftp.write_file("big.bin", size=16 * MiB, seed=6)
    app = make_app(tmp_path, initial=server_profile(slow_sftp, s3_endpoint, bucket=bucket))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("c")
        await wait_for(pilot, lambda: _running(app), timeout=60, what="a running copy")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen), timeout=60)

        def told() -> bool:
            messages = [n.message for n in app._notifications]
            return any("Aborted 1 unfinished transfer(s)" in m and "big.bin" in m for m in messages)

        await wait_for(pilot, told, what="the notification of what was aborted")
        await app.close_all()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("how", ["copy", "watch"])
async def test_an_app_torn_down_mid_run_leaves_no_http_session_open(
    slow_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    """The app ends while a copy (or a watch's copy) runs, without the quit dialog's orderly
    close (the terminal closed, an error): its S3 client is still closed, and the upload
    still aborted."""
    slow_sftp.write_file("drop/big.bin", size=16 * MiB, seed=7)
    app = make_app(tmp_path, initial=server_profile(slow_sftp, s3_endpoint, bucket=bucket))
    with pytest.raises(RuntimeError, match="the terminal went away"):
        async with app.run_test(size=(150, 45)) as pilot:
            await wait_for(pilot, lambda: browse_ready(app), what="browse")
            if how == "copy":
                await pilot.press("c")
            else:
                dest = parse_s3_url(f"s3://{bucket}/in/")
                folder = slow_sftp.remote_path("drop")
                assert app.session is not None
                await app.session.start_watch(WatchSpec(folder, dest, 0.3))
            await wait_for(pilot, lambda: _running(app), timeout=60, what="a running copy")
            raise RuntimeError("the terminal went away")
    await app.close_all()  # what run_app's finally does
    gc.collect()
    await asyncio.sleep(0.1)
    leaks = [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()]
    assert leaks == [], "the app's end left an HTTP session open"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
