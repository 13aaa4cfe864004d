"""The connect form and what connecting says when something is wrong, against real servers."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Select

from sftp_s3_tui.engine.config import ChecksumChoice, ConflictPolicy, HostKeyPolicy, MiB, S3Endpoint
from sftp_s3_tui.profiles import ProfileStore, Secret, SftpAuth
from sftp_s3_tui.ui.screens.connect import ConnectScreen
from sftp_s3_tui.ui.screens.dialogs import ErrorScreen
from sftp_s3_tui.ui.widgets.profile_form import ProfileForm
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


async def test_key_login_disables_the_password_and_tab_skips_it(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    profile = server_profile(openssh_sftp, s3_endpoint)
    assert profile.sftp.auth is SftpAuth.KEY
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        form = app.screen.query_one(ProfileForm)
        form.load(profile)
        await pilot.pause()
        assert form.query_one("#f-password", Input).disabled
        assert not form.query_one("#f-key", Input).disabled
        form.query_one("#f-auth", Select).focus()
        await pilot.press("tab")
        assert app.focused is form.query_one("#f-key", Input)  # the password is skipped

        form.query_one("#f-auth", Select).value = SftpAuth.PASSWORD
        await pilot.pause()
        assert not form.query_one("#f-password", Input).disabled
        assert form.query_one("#f-key", Input).disabled
        assert form.query_one("#f-passphrase", Input).disabled

        box = form.query_one("#f-path-style", Checkbox)
        box.value = False
        await pilot.pause()
        assert "✓" not in str(box.render()) and "X" not in str(box.render())
        box.value = True
        await pilot.pause()
        assert "✓" in str(box.render())
        assert "✓" in str(form.query_one("#f-verify-tls", Checkbox).render())  # on by default
        await app.close_all()


async def test_every_profile_field_round_trips_through_the_form_and_the_store(
    tmp_path: Path, s3_endpoint: S3Endpoint, openssh_sftp: SftpServerInfo
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 60)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        form = app.screen.query_one(ProfileForm)
        form.load(server_profile(openssh_sftp, s3_endpoint, bucket="landing", name="full"))
        await pilot.pause()
        form.query_one("#f-part-size", Input).value = "16MiB"
        form.query_one("#f-memory", Input).value = "256MiB"
        form.query_one("#f-parts-in-flight", Input).value = "4"
        form.query_one("#f-s3-concurrency", Input).value = "12"
        form.query_one("#f-conflict", Select).value = ConflictPolicy.IF_NEWER
        form.query_one("#f-storage-class", Input).value = "standard_ia"
        form.query_one("#f-sse", Select).value = "AES256"
        form.query_one("#f-host-key-policy", Select).value = HostKeyPolicy.ACCEPT_NEW
        form.query_one("#f-checksum", Select).value = ChecksumChoice.CRC32C
        form.query_one("#f-verify-tls", Checkbox).value = False
        await pilot.pause()
        profile = form.profile()
        assert profile.transfer.part_size == 16 * MiB
        assert profile.transfer.memory_budget == 256 * MiB
        assert profile.transfer.parts_in_flight == 4
        assert profile.transfer.s3_concurrency == 12
        assert profile.transfer.sftp_concurrency is None  # left empty: the engine's default
        assert profile.transfer.conflict is ConflictPolicy.IF_NEWER
        assert profile.s3.storage_class == "STANDARD_IA"
        assert profile.s3.server_side_encryption == "AES256"
        assert profile.sftp.host_key_policy is HostKeyPolicy.ACCEPT_NEW
        assert profile.transfer.checksum is ChecksumChoice.CRC32C
        assert profile.s3.verify_tls is False
        await pilot.press("f2")  # save
        await wait_for(pilot, lambda: (tmp_path / "profiles.toml").exists(), what="saved")

        stored = ProfileStore(tmp_path / "profiles.toml")
        stored.load()
        again = stored.get("full")
        assert again.transfer == profile.transfer
        assert (again.s3.storage_class, again.s3.server_side_encryption) == (
            "STANDARD_IA",
            "AES256",
        )
        form.load(again)  # and back into the form: the same profile comes out
        await pilot.pause()
        assert form.profile().transfer == profile.transfer

        form.query_one("#f-parts-in-flight", Input).value = "many"
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "Parts in flight: 'many' is not a whole number" in app.screen.message  # type: ignore[attr-defined]
        await app.close_all()


async def test_a_missing_key_file_is_reported_as_such(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    profile = server_profile(openssh_sftp, s3_endpoint)
    missing = tmp_path / "no_such_key"
    profile = replace(profile, sftp=replace(profile.sftp, key_file=str(missing)))
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error")
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        assert screen.message == f"The key file {missing} does not exist"
        assert "Key file" in screen.hint and "host name" not in screen.hint
        assert app.session is None
        await app.close_all()


async def test_a_refused_password_has_a_hint_in_the_forms_words(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint, password="no"))
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error")
        hint = app.screen.hint  # type: ignore[attr-defined]
        assert "Password or Key file field" in hint
        assert "--identity" not in hint and "SFTP_PASSWORD" not in hint
        await app.close_all()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_closed_s3_port_is_reported_naming_the_url(
    embedded_sftp: SftpServerInfo, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, S3Endpoint(endpoint_url=url)))
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error")
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        assert screen.message.startswith(f"Cannot reach the S3 endpoint {url}")
        assert "Endpoint URL" in screen.hint
        await app.close_all()


async def test_an_endpoint_that_is_not_s3_gets_a_plain_message(
    embedded_sftp: SftpServerInfo, tmp_path: Path
) -> None:
    url = f"http://{embedded_sftp.host}:{embedded_sftp.port}"  # an SSH server, not S3
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, S3Endpoint(endpoint_url=url)))
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), 60, "the error")
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        assert screen.message == f"{url} does not answer like an S3 server"
        assert "Bad status line" not in screen.message + screen.hint
        await app.close_all()


async def test_a_start_folder_that_does_not_exist_falls_back_to_the_root(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    embedded_sftp.write_file("here.txt", b"x")
    profile = server_profile(embedded_sftp, s3_endpoint)
    profile = replace(profile, sftp=replace(profile.sftp, remote_folder="/no/such/folder"))
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        assert tree.path == "/" and [e.name for e in tree.entries] == ["here.txt"]
        messages = [n.message for n in app._notifications]
        assert any("The start folder /no/such/folder cannot be opened" in m for m in messages)
        await app.close_all()


async def test_an_unset_password_variable_is_named_as_the_profile_names_it(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A profile whose password is ``env:SFTP_PASSWORD``, started where it is not set: the
    error names SFTP_PASSWORD (the TUI once turned it into "Password") and the form field."""
    monkeypatch.delenv("SFTP_PASSWORD", raising=False)
    profile = server_profile(embedded_sftp, s3_endpoint)
    profile = replace(
        profile, sftp=replace(profile.sftp, password=Secret.from_env("SFTP_PASSWORD"))
    )
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error")
        screen = app.screen
        assert screen.message == (  # type: ignore[attr-defined]
            "Profile 'test' takes the SFTP password from the environment variable "
            "SFTP_PASSWORD, which is not set"
        )
        assert screen.hint == (  # type: ignore[attr-defined]
            "set SFTP_PASSWORD before starting sftp-s3-tui, or edit the profile's Password field"
        )
        await app.close_all()
