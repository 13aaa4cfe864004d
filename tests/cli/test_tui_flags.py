"""The TUI started with connection flags: they apply over a saved profile, as in ``copy``."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.profiles import ProfileStore, Secret
from sftp_s3_tui.requests import ConnectionFlags, app_request
from sftp_s3_tui.ui.app import SftpS3App
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.host_key import HostKeyScreen
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import make_app, server_profile, wait_for


async def test_accept_new_host_key_over_a_saved_profile_connects_without_asking(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known_hosts = tmp_path / "known_hosts"  # empty: the server is unknown
    store = ProfileStore(tmp_path / "profiles.toml")
    monkeypatch.setenv("TUI_FLAGS_PASSWORD", embedded_sftp.password or "")
    profile = server_profile(embedded_sftp, s3_endpoint, known_hosts=known_hosts, name="p")
    store.save(profile.with_secret("sftp.password", Secret.from_env("TUI_FLAGS_PASSWORD")))
    asking = app_request(ConnectionFlags(profile="p"), {})
    trusting = app_request(ConnectionFlags(profile="p", accept_new_host_key=True), {})

    for request, asks in ((asking, True), (trusting, False)):
        app = make_app(
            tmp_path,
            profiles_path=store.path,
            profile_name=request.profile_name,
            profile_overrides=request.with_flags,
        )
        async with app.run_test(size=(120, 40)) as pilot:
            wanted: type = HostKeyScreen if asks else BrowseScreen

            def up(app: SftpS3App = app, wanted: type = wanted) -> bool:
                return isinstance(app.screen, wanted)

            await wait_for(pilot, up, what=wanted.__name__)
            await pilot.pause()  # the headers' title watchers run before the app closes
            await app.close_all()

    assert embedded_sftp.server.host_public_key.split()[1] in known_hosts.read_text()
