"""The destination side and the SFTP list working together: objects with size and date, marks
for files already there, refresh after a copy; sorting, glob selection, folder sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Input

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.screens.dialogs import PromptScreen
from sftp_s3_tui.ui.widgets.bucket_picker import BucketPicker
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _column(tree: RemoteTree, column: str) -> dict[str, str]:
    """File name → the text of ``column`` in its row."""
    table = tree.table
    return {
        str(table.get_cell(key, "name")): str(table.get_cell(key, column))
        for key in table.rows
        if key.value != "\0up"
    }


def _leaves(picker: BucketPicker) -> dict[str, str]:
    """Object name → its label, for every loaded object leaf of the bucket tree."""
    found: dict[str, str] = {}
    pending = [picker.s3_tree.root]
    while pending:
        node = pending.pop()
        pending.extend(node.children)
        if node.data is not None and node.data.is_object:
            label = str(node.label)
            found[label.split("  ")[0]] = label
    return found


async def test_files_already_at_the_destination_are_marked_and_the_tree_refreshes(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, s3: Any, tmp_path: Path
) -> None:
    embedded_sftp.write_file("a.csv", b"same")
    embedded_sftp.write_file("b.csv", b"longer now")
    embedded_sftp.write_file("c.csv", b"new")
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"SAME")
    s3.put_object(Bucket=bucket, Key="in/b.csv", Body=b"short")
    profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        picker = app.screen.query_one(BucketPicker)
        await wait_for(pilot, lambda: len(tree.existing) == 2, what="the marks")
        assert _column(tree, "dest") == {"a.csv": "=", "b.csv": "≠", "c.csv": ""}
        assert "= 2 at the destination" in str(app.screen.query_one("#remote-header").render())
        await wait_for(pilot, lambda: {"a.csv", "b.csv"} <= set(_leaves(picker)), what="objects")
        label = _leaves(picker)["a.csv"]
        assert "4 B" in label and "20" in label  # size and a date (year 20xx)

        await pilot.press("down", "down", "c")  # copy c.csv: nothing there, no dialog
        await wait_for(pilot, lambda: "c.csv" in _leaves(picker), timeout=60, what="refresh")
        await wait_for(pilot, lambda: _column(tree, "dest")["c.csv"] == "=", what="c's mark")
        await app.close_all()
    assert s3.get_object(Bucket=bucket, Key="in/c.csv")["Body"].read() == b"new"


async def test_sort_by_size_and_date_select_by_glob_and_count_a_folder(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    embedded_sftp.write_file("small.csv", b"1", mtime=1_700_000_300)
    embedded_sftp.write_file("large.json", b"1" * 900, mtime=1_700_000_100)
    embedded_sftp.write_file("medium.csv", b"1" * 50, mtime=1_700_000_200)
    embedded_sftp.write_file("logs/one.log", b"1" * 100)
    embedded_sftp.write_file("logs/deeper/two.log", b"1" * 200)
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        names = lambda: list(_column(tree, "name"))  # noqa: E731

        assert names() == ["logs/", "large.json", "medium.csv", "small.csv"]
        await pilot.press("o")  # by size, largest first (folders first)
        await wait_for(pilot, lambda: tree.ready and names()[1] == "large.json")
        assert names() == ["logs/", "large.json", "medium.csv", "small.csv"]
        await pilot.press("o")  # by date, newest first
        await wait_for(pilot, lambda: tree.ready and names()[1] == "small.csv")
        assert names() == ["logs/", "small.csv", "medium.csv", "large.json"]

        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "*.csv"
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(tree.selected) == 2)
        assert sorted(tree.selected) == ["/medium.csv", "/small.csv"]

        tree.table.move_cursor(row=0)  # logs/
        await pilot.press("z")
        await wait_for(pilot, lambda: "/logs" in tree.folder_sizes, what="the folder size")
        assert tree.folder_sizes["/logs"] == 300
        assert _column(tree, "size")["logs/"] == "300 B"
        await app.close_all()
