"""A watch started from the TUI, against real sshd + moto: it ships a file dropped while it
runs, once, shows it in the queue and in the watches list, and stops cleanly."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.events import EngineEvent, PartChanged, PartState, TransferState
from sftp_s3_tui.profiles.model import TransferDefaults
from sftp_s3_tui.ui.screens.browse import BrowseScreen
from sftp_s3_tui.ui.screens.dialogs import ConfirmScreen
from sftp_s3_tui.ui.screens.watch import WatchDialog, WatchesScreen
from sftp_s3_tui.ui.watches import WatchPhase
from sftp_s3_tui.ui.widgets.remote_tree import RemoteTree
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _shown(app: Any, kind: type[Screen[Any]], part: str) -> bool:
    """``kind`` is the screen and its ``part`` is there (pushed is not enough: it composes
    after)."""
    screen = app.screen
    return isinstance(screen, kind) and screen.is_mounted and bool(screen.query(part))


def _queued(session: Any, key: str) -> list[Any]:
    return [t for t in session.queue.transfers.values() if t.job.key == key]


async def test_a_watch_started_on_a_folder_ships_a_dropped_file_once(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    server = openssh_sftp
    server.write_file("drop/first.csv", b"id\n1\n")
    server.write_file("drop/first.csv.part", b"still being written")
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        browse = app.screen
        tree = browse.query_one(RemoteTree)
        tree.table.move_cursor(row=tree.table.get_row_index(server.remote_path("drop")))
        await pilot.press("w")
        await wait_for(pilot, lambda: _shown(app, WatchDialog, "#watch-done-file"), what="dialog")
        dialog = app.screen
        assert dialog.query_one("#watch-dest", Input).value == f"s3://{bucket}/in/"
        dialog.query_one("#watch-every", Input).value = "0.3s"
        dialog.query_one("#watch-exclude", Input).value = "*.part"
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen is browse, what="the watch to start")
        session = app.session
        assert session is not None
        await wait_for(pilot, lambda: session.watches.active, what="a running watch")
        (running,) = session.watches.active
        status = running.status
        await wait_for(pilot, lambda: status.shipped == 1, timeout=30, what="the first file")
        assert _keys(s3, bucket) == ["in/drop/first.csv"]

        # dropped while the watch runs: shipped at the next poll, once
        server.write_file("drop/second.csv", b"id\n2\n")
        await wait_for(pilot, lambda: status.shipped == 2, timeout=30, what="the dropped file")
        polls = status.polls
        await wait_for(pilot, lambda: status.polls >= polls + 2, timeout=30, what="more polls")
        assert status.phase in (WatchPhase.IDLE, WatchPhase.POLLING)
        assert status.shipped == 2 and status.failed == 0
        assert _keys(s3, bucket) == ["in/drop/first.csv", "in/drop/second.csv"]
        (shipped,) = _queued(session, "in/drop/second.csv")  # in the queue, like any transfer
        assert shipped.state is TransferState.DONE
        assert len(_queued(session, "in/drop/first.csv")) == 1
        body = s3.get_object(Bucket=bucket, Key="in/drop/second.csv")["Body"].read()
        assert body == b"id\n2\n"

        # the watches list shows it; x stops it
        await pilot.press("W")
        await wait_for(pilot, lambda: _shown(app, WatchesScreen, "#watches-table"), what="list")
        table = app.screen.query_one("#watches-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the watch's row")
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[0] == f"{status.source} → s3://{bucket}/in/"
        assert row[1] == "0.3s" and row[4] == "2" and row[5] == "0" and row[7] == "0"
        await pilot.press("x")
        await wait_for(pilot, lambda: not running.running, timeout=30, what="the stop")
        assert status.phase is WatchPhase.STOPPED and status.next_poll is None
        await wait_for(pilot, lambda: "stopped" in str(table.get_row_at(0)[8]))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))

        # stopped: a file dropped now is not shipped
        server.write_file("drop/third.csv", b"id\n3\n")
        assert not running.running  # stopped: no poll can run any more
        assert not _queued(session, "in/drop/third.csv")
        await app.close_all()
    assert _keys(s3, bucket) == ["in/drop/first.csv", "in/drop/second.csv"]


async def test_the_watches_list_says_when_an_expected_drop_is_late(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """Two invoices are due by 06:00 Berlin time; one came. Before six the list says 1/2,
    after six it says one is missing (the watch's clock is the test's, not the wall's)."""
    server = openssh_sftp
    server.write_file("drop/invoice_1.csv", b"n\n1\n")
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    clock = {"now": datetime(2026, 12, 7, 5, 0, tzinfo=ZoneInfo("Europe/Berlin"))}
    async with app.run_test(size=(170, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        session = app.session
        assert session is not None
        session.watches.clock = lambda: clock["now"]
        tree = app.screen.query_one(RemoteTree)
        tree.table.move_cursor(row=tree.table.get_row_index(server.remote_path("drop")))
        await pilot.press("w")
        await wait_for(pilot, lambda: _shown(app, WatchDialog, "#watch-expect"), what="dialog")
        app.screen.query_one("#watch-every", Input).value = "0.3s"
        app.screen.query_one(
            "#watch-expect", Input
        ).value = "2 invoice_*.csv by weekdays 06:00 Europe/Berlin"
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: session.watches.active, what="a running watch")
        (running,) = session.watches.active
        status = running.status
        await wait_for(pilot, lambda: status.shipped == 1, timeout=30, what="the first invoice")

        await pilot.press("W")
        await wait_for(pilot, lambda: _shown(app, WatchesScreen, "#watches-table"), what="list")
        table = app.screen.query_one("#watches-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the watch's row")
        drops = app.screen.query_one("#watches-drops", Static)
        drop = table.get_column_index("drop")
        await wait_for(pilot, lambda: str(table.get_row_at(0)[drop]) == "1/2")
        assert str(drops.render()) == f"#{status.id} invoice_*.csv: 1/2 by Mon 06:00 CET (on time)"

        clock["now"] = datetime(2026, 12, 7, 6, 1, tzinfo=ZoneInfo("Europe/Berlin"))
        late = f"#{status.id} invoice_*.csv: 1/2 by Mon 06:00 CET (1 missing)"
        await wait_for(pilot, lambda: str(drops.render()) == late, timeout=30, what="lateness")
        assert table.get_row_at(0)[drop].spans[0].style == "bold red"
        await app.close_all()


async def test_quitting_stops_a_watch_mid_upload_and_leaves_no_upload(
    openssh_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    """Quitting while the watch's file is being uploaded (one part landed, the rest held):
    the watch stops, its multipart upload is aborted (none left open), nothing lands."""
    server = openssh_sftp
    server.write_file("drop/big.bin", size=16 * 1024 * 1024 + 1, seed=4)  # three parts
    profile = server_profile(server, s3_endpoint, bucket=bucket, prefix="in/")
    profile = replace(profile, transfer=TransferDefaults(parts_in_flight=1))  # one at a time
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        tree = app.screen.query_one(RemoteTree)
        tree.table.move_cursor(row=tree.table.get_row_index(server.remote_path("drop")))
        session = app.session
        assert session is not None

        def hold_after_first_part(event: EngineEvent) -> None:
            """What a user's ``p`` does: the upload is open, its other parts held."""
            if isinstance(event, PartChanged) and event.state is PartState.DONE:
                transfer = session.queue.transfers.get(event.transfer_id)
                if transfer is not None and transfer.state is TransferState.RUNNING:
                    session.queue.pause(event.transfer_id)

        session.bus.subscribe(hold_after_first_part)
        await pilot.press("w")
        await wait_for(pilot, lambda: _shown(app, WatchDialog, "#watch-done-file"), what="dialog")
        app.screen.query_one("#watch-every", Input).value = "0.3s"
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: session.watches.active, what="a running watch")
        (running,) = session.watches.active

        def uploading() -> bool:
            transfers = _queued(session, "in/drop/big.bin")
            return bool(transfers) and transfers[0].state is TransferState.PAUSED

        await wait_for(pilot, uploading, timeout=30, what="the upload, held after a part")
        await pilot.press("ctrl+q")  # the quit dialog names the watch's transfer
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="quit?")
        await pilot.press("y")  # abort it
        await wait_for(pilot, lambda: not running.running, timeout=30, what="the watch's end")
    assert running.status.phase is WatchPhase.STOPPED
    (transfer,) = _queued(session, "in/drop/big.bin")
    assert transfer.state is TransferState.CANCELLED
    assert _keys(s3, bucket) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
