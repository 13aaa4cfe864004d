"""Secrets typed into the TUI stay out of TEXTUAL_LOG, screenshots, notifications and errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from textual import events
from textual.widgets import Input

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.screens.connect import ConnectScreen
from sftp_s3_tui.ui.screens.dialogs import ErrorScreen
from sftp_s3_tui.ui.widgets.profile_form import ProfileForm
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import make_app, server_profile, wait_for

PASSWORD = "Hu2-pw9Q"
PASSPHRASE = "Kx7-pass"
SECRET_KEY = "wJa-SeCr"

#: Types each secret into its field key by key, pastes one, submits (Enter), then leaves.
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from textual import events
    from textual.widgets import Input, Select
    from sftp_s3_tui.profiles import SftpAuth
    from sftp_s3_tui.ui.app import AppOptions, SftpS3App
    from sftp_s3_tui.ui.screens.connect import ConnectScreen

    async def main() -> None:
        folder = Path(sys.argv[1])
        password, passphrase, secret = sys.argv[2:5]
        app = SftpS3App(AppOptions(profiles_path=folder / "profiles.toml", journal_dir=None,
                                   read_user_config=False))
        async with app.run_test(size=(140, 60)) as pilot:
            while not isinstance(app.screen, ConnectScreen):
                await pilot.pause(0.05)
            screen = app.screen
            screen.query_one("#f-password", Input).focus()
            await pilot.press(*password)
            await pilot.press("tab")  # blurred: Input.Blurred carries the value
            screen.query_one("#f-auth", Select).value = SftpAuth.KEY
            await pilot.pause()
            screen.query_one("#f-passphrase", Input).focus()
            app.post_message(events.Paste(passphrase))  # a terminal's bracketed paste
            while screen.query_one("#f-passphrase", Input).value != passphrase:
                await pilot.pause(0.05)
            screen.query_one("#f-secret-key", Input).focus()
            await pilot.press(*secret)
            await pilot.press("enter")  # Input.Submitted (connect: an error, no host)
            while not app._notifications:  # "Enter a host (or pick a profile) first."
                await pilot.pause(0.05)
            values = [screen.query_one(f"#{i}", Input).value
                      for i in ("f-password", "f-passphrase", "f-secret-key")]
            print("typed:", values == [password, passphrase, secret])

    asyncio.run(main())
    """
)


def test_textual_log_never_holds_a_typed_secret(tmp_path: Path) -> None:
    """Reproduces issue 17: every keystroke's Input.Changed (and each Key) went to the log."""
    log = tmp_path / "textual.log"
    script = tmp_path / "type_secrets.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "TEXTUAL_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), PASSWORD, PASSPHRASE, SECRET_KEY],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "typed: True" in done.stdout
    text = log.read_text()
    # The log was written, and it saw the secret fields' messages (hidden)...
    assert "Input.Changed(input='f-password', value=<hidden>)" in text
    assert "Input.Blurred(input='f-password', value=<hidden>)" in text
    assert "Input.Submitted(input='f-secret-key', value=<hidden>)" in text
    assert "Paste(text=<hidden>)" in text
    assert "Key(key=<hidden>)" in text
    # ...and none of what was typed, whole or in part.
    for secret in (PASSWORD, PASSPHRASE, SECRET_KEY):
        assert secret not in text
        assert secret[:4] not in text
    typed_keys = [line for line in text.splitlines() if "f-password" in line and "Key(" in line]
    assert all("character" not in line for line in typed_keys)


async def test_a_secret_is_in_no_screenshot_notification_or_error(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    """A wrong password typed into the form: the refusal names no secret, nor does the screen."""
    profile = server_profile(embedded_sftp, s3_endpoint, password="placeholder")
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 60)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        form = app.screen.query_one(ProfileForm)
        form.load(profile)
        await pilot.pause()
        field = form.query_one("#f-password", Input)
        field.value = ""
        field.focus()
        await pilot.press(*PASSWORD)
        secret_key = form.query_one("#f-secret-key", Input)
        secret_key.focus()
        app.post_message(events.Paste(SECRET_KEY))
        await wait_for(pilot, lambda: secret_key.value == SECRET_KEY, what="the pasted key")
        form.query_one("#f-access-key", Input).value = "AKIDEXAMPLE"
        assert field.value == PASSWORD
        seen: list[str] = [app.export_screenshot()]
        assert PASSWORD not in repr(form.profile()) and PASSWORD not in str(form.profile())

        await pilot.press("ctrl+o")  # connect: the embedded server refuses the password
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), 30, "the refusal")
        screen: Any = app.screen
        seen += [screen.message, screen.hint, app.export_screenshot()]
        seen += [f"{n.title} {n.message}" for n in app._notifications]
        seen += [f"{e.message} {e.hint}" for e in app.errors]
        assert "refused" in screen.message.lower() or "login" in screen.error_title.lower()
        for text in seen:
            assert PASSWORD not in text and SECRET_KEY not in text
        await app.close_all()
