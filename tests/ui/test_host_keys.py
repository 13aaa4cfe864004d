"""Unknown and changed host keys: the dialog, and what each answer does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.host_key import HostKeyScreen
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import make_app, server_profile, wait_for


def _login_ended(app: Any) -> bool:
    return not any(w.group == "connect" and not w.is_finished for w in app.workers)


def dialog_text(screen: object) -> str:
    """The host-key dialog's text once it is mounted ("" before, or on another screen)."""
    if not isinstance(screen, HostKeyScreen) or not screen.is_mounted:
        return ""
    return " ".join(str(s.render()) for s in screen.query("Static"))


@pytest.mark.parametrize("answer", ["o", "a", "escape"])
async def test_unknown_host_key_asks_trust_once_always_or_refuse(
    answer: str, embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"  # empty: the server is unknown
    profile = server_profile(embedded_sftp, s3_endpoint, known_hosts=known_hosts)
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: dialog_text(app.screen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, HostKeyScreen)
        assert not dialog.error.changed
        assert dialog.error.fingerprint.startswith("ssh-ed25519 SHA256:")
        text = dialog_text(dialog)
        assert dialog.error.fingerprint in text
        await pilot.press(answer)
        if answer == "escape":
            connect = "ConnectScreen"
            await wait_for(pilot, lambda: type(app.screen).__name__ == connect, what="connect")
            await wait_for(pilot, lambda: _login_ended(app), what="the login's end")
            assert app.session is None
        else:
            await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen), what="browse")
        remembered = known_hosts.read_text() if known_hosts.exists() else ""
        assert (embedded_sftp.server.host_public_key.split()[1] in remembered) == (answer == "a")
        await app.close_all()


async def test_changed_host_key_is_refused_showing_both_fingerprints(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{embedded_sftp.host}]:{embedded_sftp.port} {other}")
    profile = server_profile(embedded_sftp, s3_endpoint, known_hosts=known_hosts)
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: dialog_text(app.screen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, HostKeyScreen) and dialog.error.changed
        text = dialog_text(dialog)
        assert "CHANGED" in text
        assert dialog.error.fingerprint in text
        assert dialog.error.known_fingerprints[0] in text
        assert not dialog.query("#once") and not dialog.query("#always")
        await pilot.press("o")  # no way to trust it
        assert app.screen is dialog
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not dialog, what="the dialog closed")
        await wait_for(pilot, lambda: _login_ended(app), what="the login's end")
        assert app.session is None
        await app.close_all()
