"""The user's story in the real app against real servers: connect, browse, queue, watch."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.aio import ROUND_BUDGET_SECONDS
from sftp_s3_tui.engine.config import MiB, S3Endpoint
from sftp_s3_tui.engine.errors import BucketNotFound, SftpAuthError
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.dialogs import ErrorScreen
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import make_app, server_profile, wait_for


def _browsing(app: Any) -> bool:
    if not isinstance(app.screen, BrowseScreen) or not app.screen.query(RemoteTree):
        return False
    tree = app.screen.query_one(RemoteTree)
    return tree.entries != [] and tree.ready


async def test_connect_browse_select_two_files_and_copy_them(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    big = embedded_sftp.write_file("data/big file.bin", size=21 * MiB + 5, seed=1)
    embedded_sftp.write_file("data/small.csv", b"id,name\n1,Ada\n")
    embedded_sftp.write_file("data/other.bin", size=1000, seed=3)
    profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: _browsing(app), what="the browse screen")
        tree = app.screen.query_one(RemoteTree)
        assert [e.name for e in tree.entries] == ["data"]
        await pilot.press("enter")  # open data/
        await wait_for(
            pilot, lambda: tree.path == "/data" and len(tree.entries) == 3 and tree.ready
        )
        # rows: .., big file.bin, other.bin, small.csv
        await pilot.press("down", "space", "down", "space")
        assert sorted(tree.selected) == ["/data/big file.bin", "/data/small.csv"]
        await pilot.press("c")
        session = app.session
        assert session is not None
        # the app draws on the transfers' loop: their heavy steps share its turns
        assert session.queue.loop_share.budget_seconds == ROUND_BUDGET_SECONDS
        await wait_for(pilot, lambda: len(session.queue.transfers) == 2, what="queued")
        await wait_for(
            pilot,
            lambda: all(t.state.finished for t in session.queue.transfers.values()),
            timeout=60,
            what="transfers to finish",
        )
        assert {t.state for t in session.queue.transfers.values()} == {TransferState.DONE}
        panel = app.screen.query_one(TransferPanel)
        await wait_for(pilot, lambda: "All done" in str(panel.query_one("#summary").render()))
        summary = str(panel.query_one("#summary").render())
        assert "2 copied" in summary
        rows = panel.transfer_list.rows_by_id.values()
        assert sorted((r.name, r.state) for r in rows) == [
            ("big file.bin", TransferState.DONE),
            ("small.csv", TransferState.DONE),
        ]
        assert tree.selected == {}  # the selection was queued and cleared
        await app.close_all()
    body = s3.get_object(Bucket=bucket, Key="in/big file.bin")["Body"].read()
    assert len(body) == big.size and hashlib.sha256(body).hexdigest() == big.sha256
    assert s3.get_object(Bucket=bucket, Key="in/small.csv")["Body"].read() == b"id,name\n1,Ada\n"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert sorted(keys) == ["in/big file.bin", "in/small.csv"]


async def test_bad_password_shows_the_login_error_with_a_hint(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    profile = server_profile(embedded_sftp, s3_endpoint, password="wrong")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), what="an error")
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        assert screen.error_title == "SFTP login refused"
        assert "refused the login" in screen.message
        assert "password" in screen.hint
        assert isinstance(app.errors[-1], SftpAuthError)
        await pilot.press("enter")
        assert app.session is None
        assert type(app.screen).__name__ == "ConnectScreen"
        await app.close_all()


async def test_copy_to_a_missing_bucket_shows_a_message(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    embedded_sftp.write_file("a.txt", b"hello")
    profile = server_profile(embedded_sftp, s3_endpoint, bucket="no-such-bucket-here")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: _browsing(app), what="the browse screen")
        # the profile's default bucket is missing: said at once, browsing still works
        assert isinstance(app.errors[-1], BucketNotFound)
        app.errors.clear()
        await pilot.press("c")  # copy the file under the cursor
        await wait_for(pilot, lambda: app.errors, what="an error message")
        error = app.errors[-1]
        assert isinstance(error, BucketNotFound)
        assert "no-such-bucket-here" in error.message
        assert any("does not exist" in n.message for n in app._notifications)
        assert app.session is not None and not app.session.queue.transfers
        await app.close_all()


async def test_a_10000_entry_folder_loads_without_freezing_and_filters(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    folder = embedded_sftp.root / "many"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"part-{i:05d}.json").write_bytes(b"{}")
    profile = server_profile(embedded_sftp, s3_endpoint)
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: _browsing(app), what="the browse screen")
        tree = app.screen.query_one(RemoteTree)
        # Not frozen: while the rows are added, the loop keeps turning, so this watcher sees
        # the table part-filled several times (counted in rows seen, not in seconds). It is
        # started before the key and takes every turn of the loop (sleep(0)): the pilot's
        # press may itself wait out the whole fill on a quiet machine, and a timer of the
        # watcher's own could fall due only after several batches on a loaded one.
        part_filled: set[int] = set()

        async def watch_fill() -> None:
            while not (tree.path == "/many" and tree.ready):
                await asyncio.sleep(0)
                if tree.path == "/many" and 1 < tree.table.row_count < 10_001:
                    part_filled.add(tree.table.row_count)

        watcher = asyncio.ensure_future(watch_fill())
        await pilot.press("enter")
        await asyncio.wait_for(watcher, 60)
        assert tree.table.row_count == 10_001  # with ".."
        assert len(part_filled) >= 3, f"the folder appeared in one go: {sorted(part_filled)}"
        await pilot.press("slash", *"0999")
        await wait_for(pilot, lambda: tree.ready and tree.table.row_count == 1 + 11)
        assert "11/10000 match" in str(app.screen.query_one("#remote-header").render())
        await app.close_all()
