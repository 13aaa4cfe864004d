"""Profiles in the TUI: create, save, connect, duplicate, delete; --profile NAME."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from textual.widgets import Checkbox, Input, OptionList, Select

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.profiles import ProfileStore, SftpAuth
from sftp_s3_tui.ui.screens.connect import ConnectScreen
from sftp_s3_tui.ui.screens.dialogs import ErrorScreen
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, wait_for


async def _type(pilot: Any, widget_id: str, text: str) -> None:
    field = pilot.app.screen.query_one(f"#{widget_id}", Input)
    field.focus()
    field.value = ""
    await pilot.press(*text)
    assert field.value == text


async def test_create_a_profile_save_it_and_connect_with_it(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    openssh_sftp.write_file("report.csv", b"a,b\n")
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        await _type(pilot, "f-name", "nightly")
        await _type(pilot, "f-host", openssh_sftp.host)
        await _type(pilot, "f-port", str(openssh_sftp.port))
        await _type(pilot, "f-user", openssh_sftp.username)
        app.screen.query_one("#f-auth", Select).value = SftpAuth.KEY
        await pilot.pause()  # the form enables the key fields
        await _type(pilot, "f-key", str(openssh_sftp.identity_file))
        await _type(pilot, "f-known-hosts", str(openssh_sftp.known_hosts))
        await _type(pilot, "f-folder", openssh_sftp.remote_root)
        await _type(pilot, "f-endpoint", s3_endpoint.endpoint_url or "")
        await _type(pilot, "f-region", "us-east-1")
        app.screen.query_one("#f-path-style", Checkbox).value = True
        await _type(pilot, "f-bucket", bucket)
        await pilot.press("f2")
        await wait_for(pilot, lambda: (tmp_path / "profiles.toml").exists(), what="saved")
        saved = tomllib.loads((tmp_path / "profiles.toml").read_text())
        table = saved["profiles"]["nightly"]
        assert table["sftp"]["host"] == openssh_sftp.host
        assert table["s3"]["bucket"] == bucket
        assert (tmp_path / "profiles.toml").stat().st_mode & 0o777 == 0o600
        options = app.screen.query_one("#profile-list", OptionList)
        assert options.get_option("p:nightly") is not None

        await pilot.press("f4")  # test-connect: logs in, lists buckets, stays here
        await wait_for(
            pilot, lambda: "✓" in str(getattr(app.screen, "status", "")), what="test result"
        )
        assert isinstance(app.screen, ConnectScreen) and app.session is None

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        await wait_for(pilot, lambda: [e.name for e in tree.entries] == ["report.csv"])
        assert "nightly: sftp://" in app.sub_title
        await app.close_all()


async def test_duplicate_and_delete_a_profile(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    from tests.ui.helpers import server_profile

    store.save(server_profile(openssh_sftp, s3_endpoint, name="base"))
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        screen = app.screen
        screen.query_one("#profile-list", OptionList).focus()
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen is not screen, what="the name prompt")
        await pilot.press(*"base copy 2", "enter")  # typing replaces the suggestion
        await wait_for(pilot, lambda: "base copy 2" in store.load().profiles)
        copy = store.profiles["base copy 2"]
        assert copy.sftp == store.profiles["base"].sftp
        assert app.screen is screen
        options = screen.query_one("#profile-list", OptionList)
        assert options.get_option_at_index(options.highlighted or 0).id == "p:base copy 2"
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.screen is not screen, what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: list(store.load().profiles) == ["base"])
        await app.close_all()


async def test_a_typed_password_without_keyring_is_not_saved_in_plain_text(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        await _type(pilot, "f-name", "secretive")
        await _type(pilot, "f-host", "sftp.example.com")
        await _type(pilot, "f-password", "hunter2-very-secret")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="an error")
        error = app.screen
        assert isinstance(error, ErrorScreen)
        assert "keyring" in error.message and "env:VARNAME" in error.hint
        profiles_file = tmp_path / "profiles.toml"
        assert not profiles_file.exists() or "hunter2" not in profiles_file.read_text()
        await app.close_all()


async def test_profile_option_connects_at_start(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    from tests.ui.helpers import server_profile

    openssh_sftp.write_file("x.bin", size=10)
    ProfileStore(tmp_path / "profiles.toml").save(
        server_profile(openssh_sftp, s3_endpoint, name="daily")
    )
    app = make_app(tmp_path, profile_name="daily")
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        await wait_for(pilot, lambda: [e.name for e in tree.entries] == ["x.bin"])
        await app.close_all()


async def test_test_and_connect_buttons_work_with_the_mouse(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    from sftp_s3_tui.ui.widgets.profile_form import ProfileForm
    from tests.ui.helpers import server_profile

    embedded_sftp.write_file("m.txt", b"m")
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        app.screen.query_one(ProfileForm).load(server_profile(embedded_sftp, s3_endpoint))
        await pilot.click("#test")
        await wait_for(
            pilot, lambda: "✓" in str(getattr(app.screen, "status", "")), what="test result"
        )
        await pilot.click("#connect")
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await app.close_all()


def _tested(app: object) -> bool:
    """The connect screen's status line shows a passed test."""
    return "✓" in str(getattr(getattr(app, "screen", None), "status", ""))
