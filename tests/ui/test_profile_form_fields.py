"""The profile form shows every profile field: the SFTP link (jump host, connections, SSH
window, bandwidth limit, symlinked folders) and the objects' options (KMS key, content type,
tags, metadata) round trip through the form, the store and a real connection; bad values get
one line each, and the profile file is left as it was."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from textual.widgets import Checkbox, Input, Select

from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.profiles import (
    DeliverySettings,
    NotifySettings,
    Profile,
    ProfileStore,
    S3Settings,
    SftpSettings,
    TransferDefaults,
)
from sftp_s3_tui.ui.screens.connect import ConnectScreen
from sftp_s3_tui.ui.screens.dialogs import ErrorScreen
from sftp_s3_tui.ui.widgets.profile_form import LABELS, ProfileForm
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


async def _type(pilot: Any, widget_id: str, text: str) -> None:
    field = pilot.app.screen.query_one(f"#{widget_id}", Input)
    field.focus()
    field.value = ""
    await pilot.press(*text)
    assert field.value == text


def test_every_profile_field_has_a_place_in_the_form() -> None:
    """Each SftpSettings / S3Settings / TransferDefaults / DeliverySettings field is edited
    by the form."""
    source = (Path(__file__).parents[2] / "sftp_s3_tui/ui/widgets/profile_form.py").read_text()
    for settings in (SftpSettings, S3Settings, TransferDefaults, DeliverySettings):
        for f in fields(settings):
            assert f"{f.name}=" in source or f'"{f.name}"' in source, f.name


async def test_link_and_object_fields_round_trip_and_reach_the_engine(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    openssh_sftp.write_file("in.csv", b"a\n")
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 70)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        form = app.screen.query_one(ProfileForm)
        form.load(server_profile(openssh_sftp, s3_endpoint, bucket=bucket, name="far"))
        await pilot.pause()
        kms = form.query_one("#f-kms-key", Input)
        assert kms.disabled  # no SSE-KMS chosen: the key id does not apply
        await _type(pilot, "f-connections", "3")  # typed; the rest set as a paste would
        values = {
            "f-window": "8MiB",
            "f-bwlimit": "50M",
            "f-jump": "etl@bastion.example:2222",
            "f-content-type": "text/csv",
            "f-tags": "team=data, src=partner",
            "f-metadata": "batch=42",
        }
        for widget_id, text in values.items():
            form.query_one(f"#{widget_id}", Input).value = text
        form.query_one("#f-follow-symlinks", Checkbox).value = True
        form.query_one("#f-sse", Select).value = "aws:kms"
        await pilot.pause()
        assert not kms.disabled
        kms.value = "alias/landing"
        profile = form.profile()
        sftp, s3 = profile.sftp, profile.s3
        assert (sftp.connections, sftp.window, sftp.bwlimit) == (3, 8 * MiB, 50_000_000)
        assert (sftp.jump, sftp.follow_symlinks) == ("etl@bastion.example:2222", True)
        assert (s3.server_side_encryption, s3.sse_kms_key_id) == ("aws:kms", "alias/landing")
        assert s3.content_type == "text/csv"
        assert s3.tags == (("team", "data"), ("src", "partner"))
        assert s3.metadata == (("batch", "42"),)

        await pilot.press("f2")
        await wait_for(pilot, lambda: (tmp_path / "profiles.toml").exists(), what="saved")
        table = tomllib.loads((tmp_path / "profiles.toml").read_text())["profiles"]["far"]
        assert table["sftp"]["connections"] == 3
        assert table["sftp"]["jump"] == "etl@bastion.example:2222"
        assert table["sftp"]["follow_symlinks"] is True
        assert table["s3"]["sse_kms_key_id"] == "alias/landing"
        assert table["s3"]["tags"] == {"team": "data", "src": "partner"}
        store = ProfileStore(tmp_path / "profiles.toml")
        store.load()
        again = store.get("far")
        assert again == profile
        form.load(again)  # and back into the form: the same profile comes out
        await pilot.pause()
        assert form.profile() == again
        assert form.query_one("#f-window", Input).value == "8MiB"
        assert form.query_one("#f-bwlimit", Input).value == "50M"

        # connect (no bastion here, and no KMS on the test store)
        form.query_one("#f-jump", Input).value = ""
        form.query_one("#f-sse", Select).clear()
        await pilot.pause()
        assert kms.disabled
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: browse_ready(app), 60, "browse")
        session = app.session
        assert session is not None
        endpoint = session.target.sftp
        assert (endpoint.connections, endpoint.window_bytes) == (3, 8 * MiB)
        assert (endpoint.bwlimit_bytes_per_second, endpoint.follow_symlinks) == (50_000_000, True)
        assert endpoint.jump is None
        objects = session.target.options.object_options
        assert objects.tags == (("team", "data"), ("src", "partner"))
        assert (objects.content_type, objects.sse, objects.sse_kms_key_id) == (
            "text/csv",
            None,
            None,
        )
        link = session.queue.sftp.link(endpoint)
        assert link is not None and link.window_bytes == 8 * MiB
        await app.close_all()


async def test_bad_values_get_one_line_each_and_the_profile_file_is_left_alone(
    openssh_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(server_profile(openssh_sftp, s3_endpoint, name="nightly"))
    before = (tmp_path / "profiles.toml").read_bytes()
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 70)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        form = app.screen.query_one(ProfileForm)
        await pilot.pause()
        assert form.query_one("#f-name", Input).value == "nightly"
        bad = {
            "f-connections": "0",
            "f-window": "1KiB",
            "f-bwlimit": "fast",
            "f-jump": "not a host",
            "f-tags": "oops",
            "f-metadata": "bad key=1",
            "f-endpoint": "localhost:9000",
            "f-part-size": "1MiB",
            "f-storage-class": "cold storage",
        }
        for widget_id, text in bad.items():
            form.query_one(f"#{widget_id}", Input).value = text
        await pilot.pause()
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error")
        screen: Any = app.screen
        lines = screen.message.splitlines()
        labels = [line.split(":", 1)[0] for line in lines]
        assert sorted(labels) == sorted(
            [
                "Connections",
                "SSH window",
                "Bandwidth limit",
                "Jump host",
                "Tags",
                "Metadata",
                "Endpoint URL",
                "Part size",
                "Storage class",
            ]
        )
        assert set(labels) <= set(LABELS.values())
        message = screen.message
        assert "Connections: must be from 1 to 64, not 0" in message
        assert "SSH window: must be from 256KiB to 1GiB" in message
        assert "Bandwidth limit: 'fast' is not a rate" in message
        assert "Jump host: 'not a host' is not [user@]host[:port]" in message
        assert "Tags: 'oops' is not KEY=VALUE" in message
        assert "Part size: must be from 5MiB to 5GiB" in message
        assert "Endpoint URL: 'localhost:9000' is not an http:// or https:// URL" in message
        assert "Traceback" not in message and "bug" not in message
        assert (tmp_path / "profiles.toml").read_bytes() == before  # never clobbered
        for widget_id in bad:
            assert form.query_one(f"#{widget_id}", Input).has_class("-invalid"), widget_id
        await pilot.press("escape")

        await pilot.press("ctrl+o")  # connecting refuses the same way
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="the error")
        assert app.screen.message == message  # type: ignore[attr-defined]
        assert app.session is None
        await pilot.press("escape")
        form.query_one("#f-connections", Input).value = "2"
        for widget_id in set(bad) - {"f-connections"}:
            form.query_one(f"#{widget_id}", Input).value = ""
        assert form.profile().sftp.connections == 2
        assert not form.query_one("#f-connections", Input).has_class("-invalid")
        await app.close_all()


async def test_the_delivery_checks_show_in_the_form_and_notify_is_kept(tmp_path: Path) -> None:
    """A profile's ``[delivery]`` checks are two boxes of the form, ticked as saved; its
    ``[notify]`` hooks (not in the form) come out of the form as they went in."""
    profile = Profile(
        name="flaky",
        sftp=SftpSettings(host="sftp.flaky.example"),
        notify=NotifySettings(hook_url="https://hooks.example/ping", notify_on="fail"),
        delivery=DeliverySettings(verify_readback=True),
    )
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 70)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConnectScreen))
        form = app.screen.query_one(ProfileForm)
        form.load(profile)
        readback = form.query_one("#f-verify-readback", Checkbox)
        server_hash = form.query_one("#f-verify-server-hash", Checkbox)
        await wait_for(pilot, lambda: readback.value, what="the form loaded")
        assert not server_hash.value
        assert form.profile() == profile
        readback.value, server_hash.value = False, True
        changed = form.profile()
        assert changed.delivery == DeliverySettings(verify_server_hash=True)
        assert changed.notify == profile.notify
        await app.close_all()
