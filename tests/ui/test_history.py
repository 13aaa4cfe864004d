"""The history screen: past runs read from their manifests (JSON lines, one row per file)."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable, Input

from sftp_s3_tui.engine.config import S3Endpoint
from sftp_s3_tui.ui.screens.dialogs import PromptScreen
from sftp_s3_tui.ui.screens.history import HistoryScreen
from tests.support.servers import SftpServerInfo
from tests.ui.helpers import browse_ready, make_app, server_profile, wait_for


def _row(path: str, status: str, finished: str, size: int, sha: str | None) -> str:
    """A manifest row in the shape the copy's ``--manifest`` writes."""
    return json.dumps(
        {
            "kind": "file",
            "status": status,
            "reason": None if status == "done" else "Permission denied reading " + path,
            "source": {"host": "sftp.partner.example", "port": 22, "path": path, "size": size},
            "bucket": "landing",
            "key": "in/" + path.rsplit("/", 1)[-1],
            "bytes": size if status == "done" else 0,
            "sha256": sha,
            "verified_by": "crc64nvme-full-object" if status == "done" else None,
            "started": finished,
            "finished": finished,
        }
    )


async def test_history_lists_past_runs_newest_first_with_their_checksums(
    embedded_sftp: SftpServerInfo, s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    embedded_sftp.write_file("a.txt", b"a")
    runs = tmp_path / "manifests"
    runs.mkdir()
    (runs / "2026-11-20.jsonl").write_text(
        _row("/out/orders.csv", "done", "2026-11-20T02:00:05.000Z", 2048, "ab" * 32) + "\n"
    )
    (runs / "2026-11-21.jsonl").write_text(
        _row("/out/customers.csv", "done", "2026-11-21T02:00:09.000Z", 4096, "cd" * 32)
        + "\n"
        + _row("/out/secret.csv", "failed", "2026-11-21T02:00:10.000Z", 10, None)
        + "\n{not json\n"
    )
    app = make_app(tmp_path, initial=server_profile(embedded_sftp, s3_endpoint))
    async with app.run_test(size=(170, 45)) as pilot:
        await wait_for(pilot, lambda: browse_ready(app), what="browse")
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = str(runs)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="the rows")
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(3)]
        assert [r[1] for r in rows] == ["failed", "done", "done"]  # newest first
        assert rows[1][2] == "sftp.partner.example:/out/customers.csv"
        assert rows[1][3] == "s3://landing/in/customers.csv"
        assert rows[1][5] == "cdcdcdcdcdcd…" and rows[1][6] == "crc64nvme-full-object"
        summary = str(screen.query_one("#history-summary").render())
        assert "3 file(s): 2 done, 1 failed" in summary and "6.0 KiB landed" in summary
        assert "2026-11-21.jsonl line 3: not a manifest row" in summary
        await pilot.press("escape")
        await app.close_all()
