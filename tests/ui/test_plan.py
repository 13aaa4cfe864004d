"""Deciding before copying: the conflict choice and the plan dialog, against real servers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.plan import PlanScreen
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _plan_rows(screen: PlanScreen) -> list[tuple[str, str]]:
    """(decision, file) of every row the dialog lists."""
    table = screen.query_one("#plan-table", DataTable)
    rows = []
    for index in range(table.row_count):
        cells = table.get_row_at(index)
        rows.append((str(cells[0]), str(cells[1])))
    return rows


def _all_finished(app: Any, count: int) -> bool:
    session = app.session
    transfers = session.queue.transfers.values() if session else []
    return len(transfers) == count and all(t.state.finished for t in transfers)


async def test_copy_onto_an_existing_key_asks_first_and_honours_the_choice(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"o" * 512)
    embedded_sftp.write_file("a.csv", size=2048, seed=1)
    new = embedded_sftp.write_file("b.csv", size=300, seed=2)
    profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        browse = app.screen
        tree = browse.query_one(RemoteTree)
        await pilot.press("space", "space")  # a.csv, b.csv
        assert sorted(tree.selected) == ["/a.csv", "/b.csv"]
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        # the profile's default (overwrite) is chosen; the dialog says what it would do
        assert _plan_rows(plan) == [("! overwrite", "/a.csv"), ("+ copy", "/b.csv")]
        totals = str(plan.query_one("#plan-totals").render())
        assert "1 new (300 B)" in totals and "1 overwritten (2.0 KiB)" in totals
        assert "512 B" in str(plan.query_one("#plan-table", DataTable).get_row_at(0)[3])
        await pilot.press("2")  # skip existing
        await wait_for(pilot, lambda: _plan_rows(plan)[0][0] == "– skip")
        assert "1 skipped (2.0 KiB)" in str(plan.query_one("#plan-totals").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is browse)
        await wait_for(pilot, lambda: _all_finished(app, 1), timeout=60, what="the copy")
        assert any("1 skipped (skip existing)" in n.message for n in app._notifications)

        # again, choosing overwrite: the object is replaced
        await pilot.press("up", "space")  # a.csv
        assert list(tree.selected) == ["/a.csv"]
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
        await pilot.press("1", "y")
        await wait_for(pilot, lambda: _all_finished(app, 2), timeout=60, what="the overwrite")
        await app.close_all()
    assert s3.get_object(Bucket=bucket, Key="in/a.csv")["ContentLength"] == 2048
    body = s3.get_object(Bucket=bucket, Key="in/b.csv")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == new.sha256


async def test_cancelling_the_plan_queues_nothing(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    s3.put_object(Bucket=bucket, Key="a.csv", Body=b"old")
    embedded_sftp.write_file("a.csv", b"new content")
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint, bucket=bucket))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanScreen), what="the plan")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert app.session is not None and not app.session.queue.transfers
        await app.close_all()
    assert s3.get_object(Bucket=bucket, Key="a.csv")["Body"].read() == b"old"


async def test_a_file_picked_alone_and_inside_its_selected_folder_is_queued_once(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    embedded_sftp.write_file("data/x.csv", b"x")
    embedded_sftp.write_file("data/y.csv", b"y")
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint, bucket=bucket))
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        await pilot.press("space")  # data/
        await pilot.press("up", "enter")  # open data/
        await wait_for(pilot, lambda: tree.path == "/data" and tree.ready)
        await pilot.press("down", "space")  # x.csv as well
        assert sorted(tree.selected) == ["/data", "/data/x.csv"]
        await pilot.press("c")
        await wait_for(pilot, lambda: _all_finished(app, 2), timeout=60, what="the copy")
        await app.close_all()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert keys == ["data/x.csv", "data/y.csv"]
