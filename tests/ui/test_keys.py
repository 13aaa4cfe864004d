"""Keys go to the right widget: the filter box, the destination box, going up a folder."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Tree

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.widgets.bucket_picker import BucketPicker
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _names(tree: RemoteTree) -> list[str]:
    return [str(tree.table.get_row_at(i)[2]) for i in range(tree.table.row_count)]


async def test_the_filter_takes_globs_and_down_or_space_go_back_to_the_list(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    for name in ("orders.csv", "customers.CSV", "notes.txt", "csv-readme.md"):
        embedded_sftp.write_file(name, b"x")
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        screen = app.screen
        tree = screen.query_one(RemoteTree)
        box = tree.query_one("#remote-filter", Input)
        await pilot.press("slash", *"*.csv")
        assert box.has_focus and box.value == "*.csv"
        await wait_for(pilot, lambda: tree.ready and tree.table.row_count == 2)
        assert _names(tree) == ["customers.CSV", "orders.csv"]  # a glob, not a substring
        # the footer keeps the way out and quitting (f5 and ^d work here too, from ? and the
        # palette: the 80-column footer has no room for them)
        shown = {b.binding.action for b in screen.active_bindings.values() if b.binding.show}
        assert {"leave", "quit"} <= shown
        assert "reload" in {b.binding.action for b in screen.active_bindings.values()}
        await pilot.press("down")
        assert tree.table.has_focus and box.value == "*.csv"  # moved, not typed
        await pilot.press("space")  # selects the row under the cursor
        assert list(tree.selected) == ["/customers.CSV"]

        await pilot.press("slash", "backspace", "backspace", "backspace", "backspace", "backspace")
        await pilot.press(*"csv")  # no glob characters: a substring, case-blind
        await wait_for(pilot, lambda: tree.ready and tree.table.row_count == 3)
        await pilot.press("space")
        assert tree.table.has_focus and box.value == "csv"
        await pilot.press("slash", "escape")
        assert tree.table.has_focus
        await app.close_all()


async def test_escape_leaves_the_destination_box_and_up_lands_on_the_folder_left(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path
) -> None:
    for folder in ("alpha", "beta", "gamma"):
        embedded_sftp.write_file(f"{folder}/f.txt", b"x")
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint, bucket=bucket))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        await pilot.press("down", "down", "enter")  # into gamma/
        await wait_for(pilot, lambda: tree.path == "/gamma" and tree.ready)
        await pilot.press("backspace")  # up
        await wait_for(pilot, lambda: tree.path == "/" and tree.ready)
        entry = tree.cursor_entry()
        assert entry is not None and entry.name == "gamma"

        picker = app.screen.query_one(BucketPicker)
        picker.query_one("#s3-destination", Input).focus()
        await pilot.press("escape")
        assert picker.query_one(Tree).has_focus
        await app.close_all()
