"""Deciding before copying: the conflict choice and the plan dialog, against real servers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.plan.preview import CopyPlan
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.plan import PlanScreen
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.cli import key_args, run_cli, source_url
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _plan_rows(screen: PlanScreen) -> list[tuple[str, str]]:
    """(decision, file) of every row the dialog lists."""
    table = screen.query_one("#plan-table", DataTable)
    rows = []
    for index in range(table.row_count):
        cells = table.get_row_at(index)
        rows.append((str(cells[0]), str(cells[1])))
    return rows


def _plan_shown(app: Any) -> bool:
    """The plan dialog is up and filled (pushed is not enough: it composes after)."""
    screen = app.screen
    if not isinstance(screen, PlanScreen) or not screen.is_mounted:
        return False
    tables = screen.query("#plan-table")
    return bool(tables) and tables.first(DataTable).row_count > 0


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
        await wait_for(pilot, lambda: _plan_shown(app), what="the plan")
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
        await wait_for(pilot, lambda: _plan_shown(app), what="the plan")
        await pilot.press("1", "y")
        await wait_for(pilot, lambda: _all_finished(app, 2), timeout=60, what="the overwrite")
        await app.close_all()
    assert s3.get_object(Bucket=bucket, Key="in/a.csv")["ContentLength"] == 2048
    body = s3.get_object(Bucket=bucket, Key="in/b.csv")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == new.sha256


async def test_overwrite_rewrites_an_identical_object_and_if_different_skips_it(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """The policy chosen in the dialog is the one the queue runs: "Overwrite" sends the file
    again even when the object is the same bytes (it used to be compared and skipped)."""
    embedded_sftp.write_file("a.csv", size=4096, seed=3)
    profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket)
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        browse = app.screen

        def states() -> list[str]:
            assert app.session is not None
            return [t.state.value for t in app.session.queue.transfers.values()]

        def first_row() -> tuple[str, str]:
            assert isinstance(app.screen, PlanScreen)
            return _plan_rows(app.screen)[0]

        await pilot.press("space", "c")  # nothing at the key: no dialog, straight in
        await wait_for(pilot, lambda: _all_finished(app, 1), timeout=60, what="the copy")
        first = s3.head_object(Bucket=bucket, Key="a.csv")["LastModified"]
        await asyncio.sleep(1.1)  # S3 dates have whole seconds
        await pilot.press("space", "c")
        await wait_for(pilot, lambda: _plan_shown(app), what="the plan")
        assert first_row() == ("! overwrite", "/a.csv")
        await pilot.press("1", "y")  # overwrite
        await wait_for(pilot, lambda: _all_finished(app, 2), timeout=60, what="the overwrite")
        assert states() == ["done", "done"]
        assert s3.head_object(Bucket=bucket, Key="a.csv")["LastModified"] > first
        await pilot.press("space", "c")
        await wait_for(pilot, lambda: _plan_shown(app), what="the plan")
        second = s3.head_object(Bucket=bucket, Key="a.csv")["LastModified"]
        await pilot.press("4")  # if different: same size and mtime (or sha256): left as it is
        await wait_for(pilot, lambda: first_row()[0] in ("≟ compare", "– skip"))
        compared = first_row()[0] == "≟ compare"
        await pilot.press("y")
        if compared:  # queued, hashed, and skipped for the same sha256
            await wait_for(pilot, lambda: _all_finished(app, 3), timeout=60, what="the compare")
            assert states() == ["done", "done", "skipped"]
        else:  # decided in the plan: not queued
            await wait_for(pilot, lambda: app.screen is browse)
            assert any("1 skipped (if different)" in n.message for n in app._notifications)
        await app.close_all()
    assert s3.head_object(Bucket=bucket, Key="a.csv")["LastModified"] == second


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
        await wait_for(pilot, lambda: _plan_shown(app), what="the plan")
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


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A plan row without its ``source`` (the fronts name the server alike but not
    identically: the path is compared instead)."""
    return {k: v for k, v in row.items() if k != "source"}


def _dialog_plan(plan: CopyPlan) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows = [f.as_json() for f in plan.files]
    for row, planned in zip(rows, plan.files, strict=True):
        assert str(row["source"]).endswith(planned.path)
    return [_comparable(r) for r in rows], plan.totals()


async def _cli_plan(
    server: SftpServerInfo, s3_endpoint: S3Endpoint, bucket: str, policy: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``copy --dry-run --json`` of the same folder into the same prefix."""
    done = await asyncio.to_thread(
        run_cli,
        "copy",
        source_url(server, "drop"),
        f"s3://{bucket}/in/",
        *key_args(server, s3_endpoint),
        "--conflict",
        policy,
        "--dry-run",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    *rows, totals = [json.loads(line) for line in done.stdout.splitlines()]
    assert totals.pop("plan") is True
    return [_comparable(r) for r in rows], totals


async def test_the_dialog_shows_the_plan_copy_dry_run_prints(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """The same folder and destination: after choosing ``if newer`` in the dialog (the
    engine plans again), its rows and totals are those ``copy --dry-run --json`` prints."""
    server = openssh_sftp
    server.write_file("drop/same.csv", size=700, seed=1)  # same size as its object
    server.write_file("drop/grown.csv", size=900, seed=2)  # an older, smaller object
    server.write_file("drop/big.bin", size=8 * 1024 * 1024 + 3, seed=3)  # new: two 8 MiB parts
    server.write_file("drop/new.txt", b"new")
    old = 1_700_000_000
    for name in ("same.csv", "grown.csv"):
        os.utime(server.root / "drop" / name, (old, old))  # older than their objects
    s3.put_object(Bucket=bucket, Key="in/drop/same.csv", Body=b"s" * 700)
    s3.put_object(Bucket=bucket, Key="in/drop/grown.csv", Body=b"g" * 10)
    # The CLI runs beside the TUI (it only reads).
    cli = asyncio.ensure_future(_cli_plan(server, s3_endpoint, bucket, "if-newer"))
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        tree.table.move_cursor(row=tree.table.get_row_index(server.remote_path("drop")))
        await pilot.press("C")  # always plan
        await wait_for(pilot, lambda: _plan_shown(app), what="the plan")
        dialog = app.screen
        assert isinstance(dialog, PlanScreen)
        rows, totals = _dialog_plan(dialog.plan)  # the profile's policy: overwrite
        assert {r["key"]: r["decision"] for r in rows} == {
            "in/drop/big.bin": "copy",
            "in/drop/grown.csv": "overwrite",
            "in/drop/new.txt": "copy",
            "in/drop/same.csv": "overwrite",
        }
        assert totals["files"] == 4 and totals["parts"] == 2 + 1 + 1 + 1

        await pilot.press("3")  # if newer: the two older sources are skipped
        await wait_for(pilot, lambda: not dialog.planning and dialog.policy.value == "if-newer")
        rows, totals = _dialog_plan(dialog.plan)
        assert (rows, totals) == await cli
        assert totals["skip"] == 2 and totals["files"] == 2
        text = str(dialog.query_one("#plan-totals").render())
        assert "2 new (8.0 MiB)" in text and "2 skipped (1.6 KiB)" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        await app.close_all()
    assert s3.get_object(Bucket=bucket, Key="in/drop/grown.csv")["ContentLength"] == 10
