"""Inspecting a transfer after the fact: Enter on its row shows everything, copyable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.engine.events import TransferState
from sftp_s3_tui.ui.screens.detail import TransferDetailScreen
from sftp_s3_tui.ui.widgets.transfer_panel import TransferPanel
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _fields(text: str) -> dict[str, str]:
    """The detail view's ``label  value`` lines as a dict (values stripped)."""
    pairs = (line.split("  ", 1) for line in text.splitlines())
    return {label.strip(): value.strip() for label, value in pairs}


async def test_enter_on_a_failed_and_a_done_transfer_shows_their_details(
    embedded_sftp: SftpServerInfo,
    s3_endpoint: S3Endpoint,
    bucket: str,
    s3: Any,
    tmp_path: Path,
) -> None:
    good = embedded_sftp.write_file("good.csv", size=3000, seed=4)
    embedded_sftp.write_file("bad\x01name.csv", b"x")  # no valid S3 key: this file fails
    profile = server_profile(embedded_sftp, s3_endpoint, bucket=bucket, prefix="in/")
    app = make_app(tmp_path, initial=profile)
    async with app.run_test(size=(150, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("a", "c")  # select all, copy
        session = app.session
        assert session is not None
        await wait_for(
            pilot,
            lambda: (
                len(session.queue.transfers) == 2
                and all(t.state.finished for t in session.queue.transfers.values())
            ),
            timeout=60,
            what="both transfers to end",
        )
        states = {t.job.path: t.state for t in session.queue.transfers.values()}
        assert states == {"/bad\x01name.csv": TransferState.FAILED, "/good.csv": TransferState.DONE}
        panel = app.screen.query_one(TransferPanel)
        table = panel.transfer_list
        failed_row = next(r for r in table.rows_by_id.values() if r.state is TransferState.FAILED)
        await wait_for(pilot, lambda: str(table.cells(failed_row.transfer_id)[3]) == "fail")
        bar = str(table.cells(failed_row.transfer_id)[2])
        assert "█" * 16 not in bar  # never a full bar for a failed file

        await pilot.press("t")  # focus the queue
        index = table.index_of(failed_row.transfer_id)
        assert index is not None
        table.move_cursor(row=index)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TransferDetailScreen), what="details")
        detail = app.screen
        assert isinstance(detail, TransferDetailScreen)
        text = detail.text
        fields = _fields(text)
        assert fields["State"] == "failed"
        assert "control character" in fields["Error"]
        assert "rename the file" in fields["Hint"]
        assert fields["Source"].endswith("/bad\x01name.csv")
        await pilot.press("c")  # copy the text
        assert app.clipboard == text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TransferDetailScreen))

        done_row = next(r for r in table.rows_by_id.values() if r.state is TransferState.DONE)
        table.focus()
        index = table.index_of(done_row.transfer_id)
        assert index is not None
        table.move_cursor(row=index)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TransferDetailScreen), what="details")
        fields = _fields(app.screen.text)  # type: ignore[attr-defined]
        assert fields["State"] == "done"
        assert fields["sha256"] == good.sha256
        assert fields["Verified by"] not in ("", "none")  # what the object was compared by
        assert fields["Destination"] == f"s3://{bucket}/in/good.csv"
        assert fields["Size"] == "2.9 KiB (3,000 bytes)"
        await app.close_all()
